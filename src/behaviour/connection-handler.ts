/**
 * The per-connection half of a protocol: one `ConnectionHandler` per connection per behaviour.
 *
 * @module
 */
import { PeerswarmError } from '../core/errors.js'
import type { Context } from './context.js'
import type { Stream } from '@libp2p/interface'

const ignoredForKeepAlive = new WeakSet<Stream>()

/**
 * Let `stream` stay open without keeping its connection alive (as ping does): the connection
 * may still close as idle while it is open. See {@link ConnectionHandler.connectionKeepAlive}.
 */
export function ignoreForKeepAlive (stream: Stream): void {
  ignoredForKeepAlive.add(stream)
}

/** @internal Whether `stream` was marked with {@link ignoreForKeepAlive}. */
export function isIgnoredForKeepAlive (stream: Stream): boolean {
  return ignoredForKeepAlive.has(stream)
}

/**
 * The protocols a handler accepts on inbound streams, or asks for on an outbound stream.
 * Negotiation uses multistream-select; the first protocol both sides support wins.
 */
export interface SubstreamProtocol {
  /** Protocol ids in order of preference, e.g. `['/ipfs/ping/1.0.0']`. */
  readonly protocols: readonly string[]
  /** Handed back unchanged in the matching `FullyNegotiated…` or `…UpgradeError` event. */
  readonly info?: unknown
  /** Negotiation timeout in ms (default: the swarm's `substreamNegotiationTimeout`, 10 s). */
  readonly timeout?: number
}

/** Protocols a side of a connection started or stopped supporting. */
export interface ProtocolsChange {
  readonly type: 'Added' | 'Removed'
  readonly protocols: readonly string[]
}

/** Why a substream could not be negotiated. */
export type StreamUpgradeErrorKind = 'Timeout' | 'NegotiationFailed' | 'Io'

/** A substream could not be opened or negotiated. */
export class StreamUpgradeError extends PeerswarmError {
  constructor (readonly kind: StreamUpgradeErrorKind, message: string, cause?: unknown) {
    super(`ERR_STREAM_UPGRADE_${kind.toUpperCase()}`, message, { cause })
  }
}

/**
 * What the connection tells its handler.
 *
 * rust-libp2p has two more: `ListenUpgradeError`, for an inbound upgrade that failed after its
 * protocol was negotiated (our handlers take negotiated streams as they are, so there is no such
 * step; a failed or timed-out inbound negotiation is logged and the stream reset, as rust does),
 * and `AddressChange`, for a transport that migrates connections (QUIC; none of ours does).
 */
export type ConnectionEvent =
  | {
    /** An inbound stream negotiated one of `listenProtocol()`'s protocols. */
    readonly type: 'FullyNegotiatedInbound'
    readonly stream: Stream
    readonly protocol: string
    readonly info: unknown
  }
  | {
    /** An `OutboundSubstreamRequest` succeeded. */
    readonly type: 'FullyNegotiatedOutbound'
    readonly stream: Stream
    readonly protocol: string
    readonly info: unknown
  }
  | {
    /** An `OutboundSubstreamRequest` failed (the remote does not support it, timeout, I/O). */
    readonly type: 'DialUpgradeError'
    readonly info: unknown
    readonly error: StreamUpgradeError
  }
  | { readonly type: 'LocalProtocolsChange', readonly change: ProtocolsChange }
  | { readonly type: 'RemoteProtocolsChange', readonly change: ProtocolsChange }

/** What a handler asks of its connection, returned from `poll`. */
export type ConnectionHandlerEvent<TToBehaviour> =
  | { readonly type: 'OutboundSubstreamRequest', readonly protocol: SubstreamProtocol }
  | { readonly type: 'NotifyBehaviour', readonly event: TToBehaviour }
  | { readonly type: 'CloseConnection', readonly error: Error }
  | { readonly type: 'ReportRemoteProtocols', readonly change: ProtocolsChange }

/**
 * The per-connection state machine of a protocol. The connection drives it by itself (it does
 * not wait for the application): it delivers behaviour events and stream events, then calls
 * `poll` until it returns `undefined`. A handler that has nothing to do keeps `cx.waker` and
 * calls `wake()` once it has (a timer fired, a stream produced data).
 *
 * `TFromBehaviour` is what its behaviour sends it (`ToSwarm.NotifyHandler`); `TToBehaviour` is
 * what it reports (`NotifyBehaviour`), delivered to `NetworkBehaviour.onConnectionHandlerEvent`.
 */
export interface ConnectionHandler<TFromBehaviour = unknown, TToBehaviour = unknown> {
  /**
   * Every protocol this handler accepts on inbound streams. Read whenever an inbound stream
   * starts negotiating; a change is reported to remotes that track our protocols.
   */
  listenProtocol(): SubstreamProtocol

  /**
   * Whether this handler needs the connection kept open. A connection is idle when it has no
   * negotiating streams, no active streams (except those marked with `ignoreForKeepAlive`),
   * and every handler returns false here; it then closes after the swarm's
   * `idleConnectionTimeout` (default 10 s). Return true while the protocol has work that the
   * remote cannot see as an open stream (e.g. a pending request). Call `wake()` when it changes.
   */
  connectionKeepAlive(): boolean

  /** An event from this handler's behaviour. */
  onBehaviourEvent(event: TFromBehaviour): void

  /** An event from the connection: a negotiated stream, a negotiation failure, a change. */
  onConnectionEvent(event: ConnectionEvent): void

  /** The next thing this handler asks for, or `undefined` (then keep `cx.waker`). */
  poll(cx: Context): ConnectionHandlerEvent<TToBehaviour> | undefined

  /**
   * The connection is about to close gracefully (the swarm is closing, or the connection is
   * closed by the behaviour, the application or the idle timeout): send what is queued and
   * resolve. Events the behaviour sent before the close have all been delivered by then. The
   * connection waits at most `SwarmConfig.drainTimeout` (the handler is not told when that
   * runs out), then calls `close()` and closes the muxer. Not called when the connection is
   * lost or aborted.
   */
  drain?(): Promise<void>

  /**
   * The connection is gone: release timers and streams. Called exactly once; the handler is
   * never used again.
   */
  close?(): void
}

/** The event type a handler reports to its behaviour. */
export type ToBehaviourOf<H> = H extends ConnectionHandler<unknown, infer O> ? O : never
/** The event type a handler accepts from its behaviour. */
export type FromBehaviourOf<H> = H extends ConnectionHandler<infer I, unknown> ? I : never
