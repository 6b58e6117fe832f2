/**
 * The relay client's typed errors.
 *
 * @module
 */
import { PeerswarmError } from '../../../core/errors.js'
import type { StatusCode } from '../message.js'
import type { Multiaddr } from '@multiformats/multiaddr'

/** Why a reservation failed or ended. */
export type ReserveErrorKind =
  /** The relay answered `RESERVATION_REFUSED`. */
  | 'Refused'
  /** The relay answered `RESOURCE_LIMIT_EXCEEDED`. */
  | 'ResourceLimitExceeded'
  /** The relay answered `PERMISSION_DENIED`. */
  | 'PermissionDenied'
  /** The relay does not speak the hop protocol. */
  | 'Unsupported'
  /** The relay's answer broke the protocol (another status, no reservation, an expiry in the past). */
  | 'Protocol'
  /** The stream failed or timed out. */
  | 'Io'
  /** The connection to the relay closed: the reservation is gone with it. */
  | 'ConnectionClosed'
  /** The relay could not be dialed. */
  | 'DialFailure'
  /** Another listener on the same relay connection took the reservation over. */
  | 'Superseded'
  /**
   * The connection to the relay closed and every attempt to reserve again failed
   * (`reReserveAttempts`); the last attempt's error is the `cause`.
   */
  | 'RetriesExhausted'

/** A reservation on a relay failed, or ended. */
export class ReserveError extends PeerswarmError {
  constructor (readonly kind: ReserveErrorKind, message: string, options: { readonly cause?: unknown, readonly status?: StatusCode } = {}) {
    super(`ERR_RELAY_RESERVE_${snake(kind)}`, message, { cause: options.cause })
    this.status = options.status
  }

  /** The relay's status code, when it answered one. */
  readonly status?: StatusCode
}

/** Why a circuit could not be opened. */
export type ConnectErrorKind =
  /** The relay answered `RESOURCE_LIMIT_EXCEEDED` (too many circuits). */
  | 'ResourceLimitExceeded'
  /** The relay answered `CONNECTION_FAILED` (the destination did not take the circuit). */
  | 'ConnectionFailed'
  /** The relay answered `NO_RESERVATION`: the destination holds no reservation there. */
  | 'NoReservation'
  /** The relay answered `PERMISSION_DENIED`. */
  | 'PermissionDenied'
  /** The relay does not speak the hop protocol. */
  | 'Unsupported'
  /** The relay's answer broke the protocol. */
  | 'Protocol'
  /** The stream failed or timed out. */
  | 'Io'
  /** The connection to the relay closed first. */
  | 'ConnectionClosed'
  /** The relay could not be dialed. */
  | 'DialFailure'

/** A circuit through a relay could not be opened. */
export class ConnectError extends PeerswarmError {
  constructor (readonly kind: ConnectErrorKind, message: string, options: { readonly cause?: unknown, readonly status?: StatusCode } = {}) {
    super(`ERR_RELAY_CONNECT_${snake(kind)}`, message, { cause: options.cause })
    this.status = options.status
  }

  /** The relay's status code, when it answered one. */
  readonly status?: StatusCode
}

/** A multiaddr is not a circuit address the relay transport can dial or listen on. */
export class InvalidCircuitAddressError extends PeerswarmError {
  constructor (readonly address: Multiaddr, message: string) {
    super('ERR_RELAY_INVALID_ADDRESS', `${address.toString()}: ${message}`)
  }
}

/** `ResourceLimitExceeded` → `RESOURCE_LIMIT_EXCEEDED`. */
function snake (kind: string): string {
  return kind.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()
}

/** The reservation error of a relay's non-OK answer. */
export function reserveErrorOf (status: StatusCode): ReserveError {
  const kind: ReserveErrorKind = status === 'RESERVATION_REFUSED'
    ? 'Refused'
    : status === 'RESOURCE_LIMIT_EXCEEDED' ? 'ResourceLimitExceeded' : status === 'PERMISSION_DENIED' ? 'PermissionDenied' : 'Protocol'
  return new ReserveError(kind, `the relay refused the reservation: ${status}`, { status })
}

/** The connect error of a relay's non-OK answer. */
export function connectErrorOf (status: StatusCode): ConnectError {
  const kinds: Partial<Record<StatusCode, ConnectErrorKind>> = {
    RESOURCE_LIMIT_EXCEEDED: 'ResourceLimitExceeded',
    CONNECTION_FAILED: 'ConnectionFailed',
    NO_RESERVATION: 'NoReservation',
    PERMISSION_DENIED: 'PermissionDenied'
  }
  return new ConnectError(kinds[status] ?? 'Protocol', `the relay refused the circuit: ${status}`, { status })
}
