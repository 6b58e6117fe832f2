/**
 * The protocol ids and the options of AutoNAT v2's client and server.
 *
 * @module
 */
import { ConfigError } from '../../../core/errors.js'
import { isGlobalAddress } from '../../../core/global-address.js'
import { checkDelay } from '../../../core/timers.js'
import type { AddressPolicy } from '../../../core/global-address.js'

/** Client → server: "dial me back on one of these addresses". */
export const DIAL_REQUEST_PROTOCOL = '/libp2p/autonat/2/dial-request'
/** Server → client, on the new connection: the nonce. */
export const DIAL_BACK_PROTOCOL = '/libp2p/autonat/2/dial-back'

/** The least dial data a server asks for (the spec's 30,000 bytes). */
export const DIAL_DATA_MIN = 30_000
/** The most dial data a server asks for, and a client sends (the spec's 100,000 bytes). */
export const DIAL_DATA_MAX = 100_000

/** The client's options, as rust-libp2p's `autonat::v2::client::Config` (durations in ms). */
export interface ClientConfig {
  /** Candidate addresses kept for testing, the most recent first (default: 10). */
  readonly maxCandidates: number
  /** Time between two probes (default: 5 s). */
  readonly probeInterval: number
  /** Time for one probe, from opening the stream to the server's answer (default: 30 s). */
  readonly timeout: number
  /**
   * Which addresses may be tested: others are never sent to a server (default:
   * `isGlobalAddress`, which excludes private and special-purpose ranges). Tests on a
   * benchmarking range (198.18.0.0/15) pass a predicate that accepts it.
   */
  readonly isGlobal: AddressPolicy
  /** The most dial data sent for one probe; a server asking more is refused (default: 100,000 bytes). */
  readonly maxDialDataBytes: number
}

/** The server's options (durations in ms). */
export interface ServerConfig {
  /**
   * Which addresses we dial back: a requested address that is not global is skipped
   * (default: `isGlobalAddress`).
   */
  readonly isGlobal: AddressPolicy
  /** Time for one request: reading it, the dial data, the dial-back and the answer (default: 30 s). */
  readonly timeout: number
  /** Requests served at once, from all peers; further ones are answered `E_REQUEST_REJECTED` (default: 16). */
  readonly maxConcurrentRequests: number
  /** Requests served at once per peer (default: 2, js-libp2p's inbound stream limit). */
  readonly maxConcurrentRequestsPerPeer: number
  /** The least and most dial data asked for when the address's IP is not the observed one. */
  readonly dialDataMin: number
  readonly dialDataMax: number
}

/** rust-libp2p's client defaults. */
export const defaultClientConfig: ClientConfig = Object.freeze({
  maxCandidates: 10,
  probeInterval: 5_000,
  timeout: 30_000,
  isGlobal: isGlobalAddress,
  maxDialDataBytes: DIAL_DATA_MAX
})

/** The server's defaults. */
export const defaultServerConfig: ServerConfig = Object.freeze({
  isGlobal: isGlobalAddress,
  timeout: 30_000,
  maxConcurrentRequests: 16,
  maxConcurrentRequestsPerPeer: 2,
  dialDataMin: DIAL_DATA_MIN,
  dialDataMax: DIAL_DATA_MAX
})

function positiveInteger (field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) throw new ConfigError(field, `must be a positive integer, got ${String(value)}`)
}

function delay (field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new ConfigError(field, `must be a positive number of milliseconds, got ${String(value)}`)
  checkDelay(field, value)
}

/** Validate client options over the defaults; throws `ConfigError` naming the bad field. */
export function clientConfig (options: Partial<ClientConfig> = {}): ClientConfig {
  const result = { ...defaultClientConfig, ...options }
  positiveInteger('maxCandidates', result.maxCandidates)
  delay('probeInterval', result.probeInterval)
  delay('timeout', result.timeout)
  if (typeof result.isGlobal !== 'function') throw new ConfigError('isGlobal', 'must be a function')
  if (!Number.isSafeInteger(result.maxDialDataBytes) || result.maxDialDataBytes < 0) {
    throw new ConfigError('maxDialDataBytes', `must be a non-negative integer, got ${String(result.maxDialDataBytes)}`)
  }
  return Object.freeze(result)
}

/** Validate server options over the defaults; throws `ConfigError` naming the bad field. */
export function serverConfig (options: Partial<ServerConfig> = {}): ServerConfig {
  const result = { ...defaultServerConfig, ...options }
  if (typeof result.isGlobal !== 'function') throw new ConfigError('isGlobal', 'must be a function')
  delay('timeout', result.timeout)
  positiveInteger('maxConcurrentRequests', result.maxConcurrentRequests)
  positiveInteger('maxConcurrentRequestsPerPeer', result.maxConcurrentRequestsPerPeer)
  positiveInteger('dialDataMin', result.dialDataMin)
  positiveInteger('dialDataMax', result.dialDataMax)
  if (result.dialDataMax < result.dialDataMin) throw new ConfigError('dialDataMax', `must be at least dialDataMin (${result.dialDataMin}), got ${result.dialDataMax}`)
  return Object.freeze(result)
}
