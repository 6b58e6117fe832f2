/**
 * DCUtR's protocol id and options.
 *
 * @module
 */
import { ConfigError } from '../../core/errors.js'
import { isGlobalAddress } from '../../core/global-address.js'
import { checkDelay } from '../../core/timers.js'
import type { AddressPolicy } from '../../core/global-address.js'

/** The DCUtR protocol id. */
export const PROTOCOL = '/libp2p/dcutr'

/** Hole-punch attempts per relayed connection, as rust-libp2p's `MAX_NUMBER_OF_UPGRADE_ATTEMPTS`. */
export const MAX_ATTEMPTS = 3

/** Candidates kept (the most recent first), as rust-libp2p's LRU of 20. */
export const MAX_CANDIDATES = 20

/** DCUtR's options (durations in ms). */
export interface Config {
  /**
   * Which addresses count: only those are sent as our candidates and dialed among the remote's
   * (default: `isGlobalAddress`, which excludes private and special-purpose ranges: a private
   * address behind a NAT is no use to the other side). Tests on a benchmarking range
   * (198.18.0.0/15) pass a predicate that accepts it, and only it.
   */
  readonly isGlobal: AddressPolicy
  /** Time for one CONNECT/SYNC exchange, from opening the stream to the SYNC (default: 10 s). */
  readonly timeout: number
  /** Hole-punch attempts per relayed connection before giving up (default: 3, rust-libp2p's). */
  readonly maxAttempts: number
}

/** Defaults. */
export const defaultConfig: Config = Object.freeze({
  isGlobal: isGlobalAddress,
  timeout: 10_000,
  maxAttempts: MAX_ATTEMPTS
})

/** Validate `options` over the defaults; throws `ConfigError` naming the bad field. */
export function config (options: Partial<Config> = {}): Config {
  const result = { ...defaultConfig, ...options }
  if (typeof result.isGlobal !== 'function') throw new ConfigError('isGlobal', 'must be a function')
  if (typeof result.timeout !== 'number' || !Number.isFinite(result.timeout) || result.timeout <= 0) {
    throw new ConfigError('timeout', `must be a positive number of milliseconds, got ${String(result.timeout)}`)
  }
  checkDelay('timeout', result.timeout)
  if (!Number.isSafeInteger(result.maxAttempts) || result.maxAttempts < 1 || result.maxAttempts > 100) {
    throw new ConfigError('maxAttempts', `must be an integer from 1 to 100, got ${String(result.maxAttempts)}`)
  }
  return Object.freeze(result)
}
