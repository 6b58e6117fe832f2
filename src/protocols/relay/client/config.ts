/**
 * The relay client's options: how it makes a reservation again after losing its connection
 * to the relay.
 *
 * @module
 */
import { ConfigError } from '../../../core/errors.js'
import { checkDelay } from '../../../core/timers.js'

/** The relay client's options (durations in ms). */
export interface Config {
  /**
   * Attempts to make a reservation again after the connection it was held on closed (dialing
   * the relay again if needed), before the listener gives up and closes with a `ReserveError`
   * `RetriesExhausted` (default: 6). 0: the listener closes at once, as rust-libp2p's.
   */
  readonly reReserveAttempts: number
  /** Wait before the first attempt (default: 1 s); it doubles after each failed attempt. */
  readonly reReserveBackoff: number
  /** The longest wait between two attempts (default: 30 s). */
  readonly reReserveMaxBackoff: number
}

/** The defaults: attempts after 1, 2, 4, 8, 16 and 30 s (about a minute in all). */
export const defaultConfig: Config = Object.freeze({
  reReserveAttempts: 6,
  reReserveBackoff: 1_000,
  reReserveMaxBackoff: 30_000
})

/** Validate `options` over the defaults; throws `ConfigError` naming the bad field. */
export function config (options: Partial<Config> = {}): Config {
  const result = { ...defaultConfig, ...options }
  if (!Number.isSafeInteger(result.reReserveAttempts) || result.reReserveAttempts < 0) {
    throw new ConfigError('reReserveAttempts', `must be a non-negative integer, got ${String(result.reReserveAttempts)}`)
  }
  for (const field of ['reReserveBackoff', 'reReserveMaxBackoff'] as const) {
    const value = result[field]
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new ConfigError(field, `must be a positive number of milliseconds, got ${String(value)}`)
    checkDelay(field, value)
  }
  if (result.reReserveMaxBackoff < result.reReserveBackoff) {
    throw new ConfigError('reReserveMaxBackoff', `must be at least reReserveBackoff (${result.reReserveBackoff}), got ${result.reReserveMaxBackoff}`)
  }
  return Object.freeze(result)
}

/** The wait before attempt `attempt` (1 for the first). */
export function backoff (config: Config, attempt: number): number {
  return Math.min(config.reReserveMaxBackoff, config.reReserveBackoff * 2 ** Math.min(attempt - 1, 30))
}
