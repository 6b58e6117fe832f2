/**
 * The relay's (hop side's) options and the protocol ids.
 *
 * @module
 */
import { ConfigError } from '../../core/errors.js'
import { checkDelay } from '../../core/timers.js'
import type { RateLimit } from './rate-limiter.js'

/** The hop protocol: clients reserve slots and ask for circuits. */
export const HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop'
/** The stop protocol: the relay tells the reached peer who is calling. */
export const STOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/stop'

/**
 * Hop or stop streams a connection may have in progress at once (reading a request, waiting
 * for the behaviour's answer, writing it), per side; further ones are reset (rust-libp2p's
 * `MAX_CONCURRENT_STREAMS_PER_CONNECTION`).
 */
export const MAX_PENDING_STREAMS = 10

/** The relay's limits, as rust-libp2p's `relay::Config` (durations in ms). */
export interface Config {
  /** Reservations held at once, from all peers (default: 128). */
  readonly maxReservations: number
  /** Reservations one peer holds at once, over its connections (default: 4). */
  readonly maxReservationsPerPeer: number
  /**
   * Reservations held at once from one IP address (default: 8). rust-libp2p has no such count,
   * only the rate limit per IP ({@link Config.reservationRatePerIp}), which applies here too.
   */
  readonly maxReservationsPerIp: number
  /** How long a reservation lasts unless renewed, in ms, at least 1 s (default: 1 hour). */
  readonly reservationDuration: number
  /** Circuits relayed at once (default: 16). */
  readonly maxCircuits: number
  /** Circuits one peer takes part in at once, as source or destination (default: 4). */
  readonly maxCircuitsPerPeer: number
  /** How long a circuit may last, in ms (default: 2 min); then both streams are reset. */
  readonly maxCircuitDuration: number
  /**
   * How many bytes a circuit may carry, both directions together, as rust-libp2p and
   * js-libp2p count (default: 128 KiB); the next chunk resets both streams.
   */
  readonly maxCircuitBytes: number
  /**
   * Time for one hop or stop exchange (reading a request, opening and answering a stop
   * stream), in ms (default: 60 s, rust-libp2p's stream timeout).
   */
  readonly streamTimeout: number
  /**
   * Reservation requests (renewals included) per peer: a token bucket, as rust-libp2p's
   * `reservation_rate_per_peer` (default: 30 at once, then one every 2 minutes); `null`: none.
   * A request past it is answered `RESOURCE_LIMIT_EXCEEDED`.
   */
  readonly reservationRatePerPeer: RateLimit | null
  /**
   * Reservation requests (renewals included) per IP address, of any peers (rust-libp2p's
   * `reservation_rate_per_ip`; default: 60 at once, then one a minute); `null`: none.
   */
  readonly reservationRatePerIp: RateLimit | null
  /**
   * Circuit requests per source peer (rust-libp2p's `circuit_src_per_peer`; default: 30 at
   * once, then one every 2 minutes); `null`: none.
   */
  readonly circuitSrcRatePerPeer: RateLimit | null
  /**
   * Circuit requests per source IP address (rust-libp2p's `circuit_src_per_ip`; default: 60 at
   * once, then one a minute); `null`: none.
   */
  readonly circuitSrcRatePerIp: RateLimit | null
}

/** Which bound of `Config` refused a request. */
export type DenialBound =
  | 'maxReservations' | 'maxReservationsPerPeer' | 'maxReservationsPerIp' | 'reservationRatePerPeer' | 'reservationRatePerIp'
  | 'maxCircuits' | 'maxCircuitsPerPeer' | 'circuitSrcRatePerPeer' | 'circuitSrcRatePerIp'

/** rust-libp2p's defaults (plus `maxReservationsPerIp`). */
export const defaultConfig: Config = Object.freeze({
  maxReservations: 128,
  maxReservationsPerPeer: 4,
  maxReservationsPerIp: 8,
  reservationDuration: 60 * 60 * 1000,
  maxCircuits: 16,
  maxCircuitsPerPeer: 4,
  maxCircuitDuration: 2 * 60 * 1000,
  maxCircuitBytes: 1 << 17,
  streamTimeout: 60_000,
  reservationRatePerPeer: Object.freeze({ limit: 30, interval: 2 * 60_000 }),
  reservationRatePerIp: Object.freeze({ limit: 60, interval: 60_000 }),
  circuitSrcRatePerPeer: Object.freeze({ limit: 30, interval: 2 * 60_000 }),
  circuitSrcRatePerIp: Object.freeze({ limit: 60, interval: 60_000 })
})

const COUNTS = ['maxReservations', 'maxReservationsPerPeer', 'maxReservationsPerIp', 'maxCircuits', 'maxCircuitsPerPeer'] as const
const DURATIONS = ['reservationDuration', 'maxCircuitDuration', 'streamTimeout'] as const
const RATES = ['reservationRatePerPeer', 'reservationRatePerIp', 'circuitSrcRatePerPeer', 'circuitSrcRatePerIp'] as const

/** Validate `options` over the defaults; throws `ConfigError` naming the bad field. */
export function config (options: Partial<Config> = {}): Config {
  const result: { -readonly [K in keyof Config]: Config[K] } = { ...defaultConfig, ...options }
  for (const field of COUNTS) {
    const value = result[field]
    if (!Number.isSafeInteger(value) || value < 0) throw new ConfigError(field, `must be a non-negative integer, got ${String(value)}`)
  }
  for (const field of DURATIONS) {
    const value = result[field]
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new ConfigError(field, `must be a positive number of milliseconds, got ${String(value)}`)
    }
    checkDelay(field, value)
  }
  // Expiries travel in whole seconds: a shorter reservation could arrive already expired.
  if (result.reservationDuration < 1000) throw new ConfigError('reservationDuration', `must be at least 1000 ms (expiries are whole seconds), got ${result.reservationDuration}`)
  // The wire carries the circuit duration as a uint32 of seconds; checkDelay keeps it far below.
  const bytes = result.maxCircuitBytes
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new ConfigError('maxCircuitBytes', `must be a positive integer, got ${String(bytes)}`)
  for (const field of RATES) {
    // Left out (undefined) keeps the default; null turns the limiter off.
    const rate = options[field] === undefined ? defaultConfig[field] : options[field]
    result[field] = rate == null ? null : checkRate(field, rate)
  }
  return Object.freeze(result)
}

/** A valid copy of `rate`; throws `ConfigError` naming `field.limit` or `field.interval`. */
function checkRate (field: string, rate: RateLimit): RateLimit {
  if (typeof rate !== 'object') throw new ConfigError(field, `must be { limit, interval } or null, got ${String(rate)}`)
  const { limit, interval } = rate
  if (!Number.isSafeInteger(limit) || limit <= 0) throw new ConfigError(`${field}.limit`, `must be a positive integer, got ${String(limit)}`)
  if (typeof interval !== 'number' || !Number.isFinite(interval) || interval <= 0) {
    throw new ConfigError(`${field}.interval`, `must be a positive number of milliseconds, got ${String(interval)}`)
  }
  checkDelay(`${field}.interval`, interval)
  return Object.freeze({ limit, interval })
}
