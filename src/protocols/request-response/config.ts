/**
 * Request-response's options and the protocols it speaks.
 *
 * @module
 */
import { ConfigError } from '../../core/errors.js'
import { checkDelay } from '../../core/timers.js'

/**
 * Which direction of a protocol this node speaks:
 * - `inbound`: it answers requests (the protocol is listed for inbound streams) and sends none;
 * - `outbound`: it sends requests and answers none (remotes see the protocol as unsupported);
 * - `full`: both.
 */
export type ProtocolSupport = 'inbound' | 'outbound' | 'full'

/** One protocol id and the direction this node speaks it in. */
export interface ProtocolConfig {
  /** A protocol id, e.g. `'/my-app/files/1.0.0'`. */
  readonly protocol: string
  /** Default `full`. */
  readonly support?: ProtocolSupport
}

/** Request-response's options. */
export interface Config {
  /**
   * How long a request may take, in ms (default: 10 000). For an outbound request it counts
   * from `sendRequest` (including a dial and waiting for a free stream) to the response; for
   * an inbound one from its stream's negotiation to our response being written.
   */
  readonly requestTimeout: number
  /**
   * Requests in flight at once per connection and direction (default: 100). Outbound requests
   * over the limit wait in the handler for a stream; inbound streams over it are reset.
   */
  readonly maxConcurrentStreams: number
}

/** Defaults (as rust-libp2p's). */
export const defaultConfig: Config = Object.freeze({ requestTimeout: 10_000, maxConcurrentStreams: 100 })

/** Validate `options` over the defaults; throws `ConfigError` naming the bad field. */
export function config (options: Partial<Config> = {}): Config {
  const result = { ...defaultConfig, ...options }
  const timeout = result.requestTimeout
  if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0) {
    throw new ConfigError('requestTimeout', `must be a positive number of milliseconds, got ${String(timeout)}`)
  }
  checkDelay('requestTimeout', timeout)
  const max = result.maxConcurrentStreams
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new ConfigError('maxConcurrentStreams', `must be a positive integer, got ${String(max)}`)
  }
  return Object.freeze(result)
}

/** The protocols split by direction, in the order given. */
export interface Protocols {
  /** Protocols we answer requests on (listed for inbound streams). */
  readonly inbound: readonly string[]
  /** Protocols we propose, in order of preference, when sending a request. */
  readonly outbound: readonly string[]
}

/** Validate `protocols` and split them by direction; throws `ConfigError` naming the bad one. */
export function protocols (list: ReadonlyArray<string | ProtocolConfig>): Protocols {
  if (!Array.isArray(list) || list.length === 0) throw new ConfigError('protocols', 'at least one protocol is needed')
  const inbound: string[] = []
  const outbound: string[] = []
  const seen = new Set<string>()
  for (const entry of list) {
    const { protocol, support = 'full' } = typeof entry === 'string' ? { protocol: entry } : entry
    if (typeof protocol !== 'string' || !protocol.startsWith('/') || protocol.includes('\n')) {
      throw new ConfigError('protocols', `a protocol id starts with "/" and has no newline, got ${JSON.stringify(protocol)}`)
    }
    if (support !== 'inbound' && support !== 'outbound' && support !== 'full') {
      throw new ConfigError('protocols', `support of ${protocol} must be "inbound", "outbound" or "full", got ${String(support)}`)
    }
    if (seen.has(protocol)) throw new ConfigError('protocols', `${protocol} is listed twice`)
    seen.add(protocol)
    if (support !== 'outbound') inbound.push(protocol)
    if (support !== 'inbound') outbound.push(protocol)
  }
  return Object.freeze({ inbound: Object.freeze(inbound), outbound: Object.freeze(outbound) })
}
