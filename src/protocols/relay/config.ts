/**
 * The relay's (hop side's) options and the protocol ids.
 *
 * @module
 */
import { ConfigError } from '../../core/errors.js'
import { checkDelay } from '../../core/timers.js'

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
   * Reservations held at once from one IP address (default: 8). rust-libp2p has no such count
   * but rate-limits reservations per IP instead.
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
}

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
  streamTimeout: 60_000
})

const COUNTS = ['maxReservations', 'maxReservationsPerPeer', 'maxReservationsPerIp', 'maxCircuits', 'maxCircuitsPerPeer'] as const
const DURATIONS = ['reservationDuration', 'maxCircuitDuration', 'streamTimeout'] as const

/** Validate `options` over the defaults; throws `ConfigError` naming the bad field. */
export function config (options: Partial<Config> = {}): Config {
  const result = { ...defaultConfig, ...options }
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
  return Object.freeze(result)
}
