/**
 * The one bound every timer of the library obeys.
 *
 * @module
 */
import { ConfigError } from './errors.js'

/** setTimeout's longest delay, in ms (2^31 − 1, about 24.8 days); Node fires longer ones after 1 ms. */
export const MAX_TIMER_DELAY = 2 ** 31 - 1

/**
 * @internal Throws a `ConfigError` naming `field` when `ms` is longer than a timer can wait
 * ({@link MAX_TIMER_DELAY}). Other checks (positive, finite) are the caller's.
 */
export function checkDelay (field: string, ms: number): void {
  if (ms > MAX_TIMER_DELAY) throw new ConfigError(field, `must be at most ${MAX_TIMER_DELAY} ms (about 24.8 days)`)
}
