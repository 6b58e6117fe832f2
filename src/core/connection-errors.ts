/**
 * Errors of dialing, listening and established connections, as in rust-libp2p's `DialError`,
 * `ListenError` and `ConnectionError`. Each family is a union of classes with a `type`
 * discriminant, so both `switch (error.type)` and `instanceof` narrow them.
 *
 * @module
 */
import { PeerswarmError, describe } from './errors.js'
import type { ConnectionDenied } from './errors.js'
import type { PeerCondition } from './dial-opts.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * One address that failed during a dial, with the transport's error.
 *
 * @group Errors
 */
export interface FailedAddress {
  readonly address: Multiaddr
  readonly error: Error
}

/**
 * The dial targeted our own peer id (or reached ourselves).
 *
 * @group Errors
 */
export class LocalPeerIdError extends PeerswarmError {
  readonly type = 'LocalPeerId'
  constructor (readonly address?: Multiaddr) {
    super('ERR_LOCAL_PEER_ID', address == null ? 'refusing to dial the local peer' : `${address.toString()} is the local peer`)
  }
}

/**
 * What was passed to `dial` cannot be dialed: a string that is not a multiaddr, or a value that
 * is neither a `Multiaddr`, a `PeerId` nor `DialOpts`. `input` is what was passed.
 *
 * @group Errors
 */
export class InvalidDialTargetError extends PeerswarmError {
  readonly type = 'InvalidDialTarget'
  constructor (readonly input: unknown, reason: string, cause?: unknown) {
    super('ERR_INVALID_DIAL_TARGET', `cannot dial ${show(input)}: ${reason}`, { cause })
  }
}

/**
 * `listenOn` was given a string that is not a multiaddr.
 *
 * @group Errors
 */
export class InvalidListenAddressError extends PeerswarmError {
  constructor (readonly input: string, cause?: unknown) {
    super('ERR_INVALID_LISTEN_ADDRESS', `cannot listen on ${JSON.stringify(input)}: not a multiaddr (${describe(cause)})`, { cause })
  }
}

/** A short, safe rendering of any value for an error message. */
function show (value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 200 ? `${value.slice(0, 200)}…` : value)
  if (value === null || typeof value !== 'object') return String(value)
  try {
    const text = JSON.stringify(value)
    return text === undefined ? Object.prototype.toString.call(value) : text.length > 200 ? `${text.slice(0, 200)}…` : text
  } catch {
    return Object.prototype.toString.call(value)
  }
}

/**
 * No address was known for the peer: none given, none from a behaviour, all filtered out.
 *
 * @group Errors
 */
export class NoAddressesError extends PeerswarmError {
  readonly type = 'NoAddresses'
  constructor (readonly peerId?: PeerId) {
    super('ERR_NO_ADDRESSES', `no addresses to dial${peerId == null ? '' : ` ${peerId.toString()}`}`)
  }
}

/**
 * The dial's {@link PeerCondition} was not met (e.g. already connected); nothing was dialed.
 *
 * @group Errors
 */
export class DialPeerConditionFalseError extends PeerswarmError {
  readonly type = 'DialPeerConditionFalse'
  constructor (readonly condition: PeerCondition) {
    super('ERR_DIAL_CONDITION_FALSE', `dial condition "${condition}" is false`)
  }
}

/**
 * The dial was aborted (the swarm closed, or its signal fired).
 *
 * @group Errors
 */
export class DialAbortedError extends PeerswarmError {
  readonly type = 'Aborted'
  constructor () {
    super('ERR_DIAL_ABORTED', 'dial aborted')
  }
}

/**
 * The remote authenticated as a different peer than the one we dialed.
 *
 * @group Errors
 */
export class WrongPeerIdError extends PeerswarmError {
  readonly type = 'WrongPeerId'
  constructor (readonly obtained: PeerId, readonly address: Multiaddr, readonly expected?: PeerId) {
    super('ERR_WRONG_PEER_ID', `dialed ${address.toString()}${expected == null ? '' : ` expecting ${expected.toString()}`} but reached ${obtained.toString()}`)
  }
}

/**
 * Which step of a connection's upgrade failed.
 *
 * @group Errors
 */
export type UpgradePhase = 'security-negotiation' | 'handshake' | 'muxer-negotiation'

/**
 * A connection reached the remote but its upgrade failed: no common security protocol, a
 * failed or stalled Noise handshake, no common muxer. Found in `DialTransportError.errors` and
 * as the cause of `ListenTransportError`.
 *
 * @group Errors
 */
export class UpgradeError extends PeerswarmError {
  readonly type = 'Upgrade'
  constructor (readonly phase: UpgradePhase, cause: unknown) {
    super('ERR_UPGRADE', `${phase} failed: ${describe(cause)}`, { cause })
  }
}

/**
 * A behaviour refused the outgoing connection; `cause` is its {@link ConnectionDenied}.
 *
 * @group Errors
 */
export class DialDeniedError extends PeerswarmError {
  readonly type = 'Denied'
  constructor (override readonly cause: ConnectionDenied) {
    super('ERR_DIAL_DENIED', `dial denied: ${describe(cause.cause)}`, { cause })
  }
}

/**
 * Every address failed at the transport or upgrade level: connection refused, timeout,
 * security or muxer handshake failure. `errors` has one entry per address tried.
 *
 * @group Errors
 */
export class DialTransportError extends PeerswarmError {
  readonly type = 'Transport'
  constructor (readonly errors: readonly FailedAddress[]) {
    super('ERR_DIAL_TRANSPORT', `all ${errors.length} address(es) failed: ${errors.map(e => `${e.address.toString()}: ${e.error.message}`).join('; ')}`)
  }
}

/**
 * Why a dial failed.
 *
 * @group Errors
 */
export type DialError =
  | InvalidDialTargetError
  | LocalPeerIdError
  | NoAddressesError
  | DialPeerConditionFalseError
  | DialAbortedError
  | WrongPeerIdError
  | DialDeniedError
  | DialTransportError

/**
 * The incoming connection was aborted (e.g. the swarm or listener closed).
 *
 * @group Errors
 */
export class ListenAbortedError extends PeerswarmError {
  readonly type = 'Aborted'
  constructor () {
    super('ERR_LISTEN_ABORTED', 'incoming connection aborted')
  }
}

/**
 * A behaviour refused the incoming connection; `cause` is its {@link ConnectionDenied}.
 *
 * @group Errors
 */
export class ListenDeniedError extends PeerswarmError {
  readonly type = 'Denied'
  constructor (override readonly cause: ConnectionDenied) {
    super('ERR_LISTEN_DENIED', `incoming connection denied: ${describe(cause.cause)}`, { cause })
  }
}

/**
 * The incoming connection authenticated as our own peer id.
 *
 * @group Errors
 */
export class ListenLocalPeerIdError extends PeerswarmError {
  readonly type = 'LocalPeerId'
  constructor (readonly address: Multiaddr) {
    super('ERR_LOCAL_PEER_ID', `incoming connection from ${address.toString()} is the local peer`)
  }
}

/**
 * The incoming connection failed during its upgrade (security, muxer, timeout).
 *
 * @group Errors
 */
export class ListenTransportError extends PeerswarmError {
  readonly type = 'Transport'
  constructor (cause: Error) {
    super('ERR_LISTEN_TRANSPORT', `incoming connection failed: ${cause.message}`, { cause })
  }
}

/**
 * Why an incoming connection failed.
 *
 * @group Errors
 */
export type ListenError = ListenAbortedError | ListenDeniedError | ListenLocalPeerIdError | ListenTransportError

/**
 * The connection was idle for `idleConnectionTimeout` and was closed.
 *
 * @group Errors
 */
export class KeepAliveTimeoutError extends PeerswarmError {
  readonly type = 'KeepAliveTimeout'
  constructor () {
    super('ERR_KEEP_ALIVE_TIMEOUT', 'connection closed after being idle')
  }
}

/**
 * The connection was closed by the remote or failed at the I/O level.
 *
 * @group Errors
 */
export class ConnectionIOError extends PeerswarmError {
  readonly type = 'IO'
  constructor (message: string, cause?: unknown) {
    super('ERR_CONNECTION_IO', message, { cause })
  }
}

/**
 * A handler asked for the connection to be closed, giving this error.
 *
 * @group Errors
 */
export class HandlerClosedError extends PeerswarmError {
  readonly type = 'Handler'
  constructor (cause: Error) {
    super('ERR_HANDLER_CLOSED', `closed by connection handler: ${cause.message}`, { cause })
  }
}

/**
 * Why an established connection closed; `undefined` in events means we closed it ourselves.
 *
 * @group Errors
 */
export type ConnectionError = KeepAliveTimeoutError | ConnectionIOError | HandlerClosedError
