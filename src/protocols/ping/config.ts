/**
 * Ping's options and protocol id.
 *
 * @module
 */
import { ConfigError } from '../../core/errors.js'
import { checkDelay } from '../../core/timers.js'

/** The ping protocol id. */
export const PROTOCOL = '/ipfs/ping/1.0.0'

/** Size of a ping payload, fixed by the protocol. */
export const PING_SIZE = 32

/** Ping's options. */
export interface Config {
  /** Time between two pings on a connection, in ms (default: 15 000). */
  readonly interval: number
  /** How long a ping may wait for its echo, in ms (default: 20 000). */
  readonly timeout: number
}

/** rust-libp2p's defaults. */
export const defaultConfig: Config = Object.freeze({ interval: 15_000, timeout: 20_000 })

/** Validate `options` over the defaults; throws `ConfigError` naming the bad field. */
export function config (options: Partial<Config> = {}): Config {
  const result = { ...defaultConfig, ...options }
  for (const field of ['interval', 'timeout'] as const) {
    const value = result[field]
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new ConfigError(field, `must be a positive number of milliseconds, got ${String(value)}`)
    }
    checkDelay(field, value)
  }
  return Object.freeze(result)
}
