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
 *
 * @group Toolkit for protocols
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
 *
 * `TInfo` types `info`, which comes back in the {@link ConnectionEvent} that ends the
 * negotiation: a handler declares it as the third type parameter of {@link ConnectionHandler}
 * (`ConnectionHandler<FromBehaviour, ToBehaviour, TInfo>`) and then reads `event.info` as a
 * `TInfo` without a cast (rust-libp2p's `OutboundOpenInfo`). It defaults to `unknown`, for
 * handlers that keep no info or narrow it themselves.
 *
 * ```ts
 * import type { ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, Context, SubstreamProtocol } from 'peerswarm'
 *
 * type Info = { readonly kind: 'query', readonly id: number } | undefined
 *
 * class QueryHandler implements ConnectionHandler<number, string, Info> {
 *   private readonly wanted: number[] = []
 *   private readonly answers: string[] = []
 *   listenProtocol (): SubstreamProtocol<Info> { return { protocols: [] } }
 *   connectionKeepAlive (): boolean { return this.wanted.length > 0 }
 *   onBehaviourEvent (id: number): void { this.wanted.push(id) }
 *   onConnectionEvent (event: ConnectionEvent<Info>): void {
 *     // `event.info` is an `Info` here: the one given with the request below.
 *     if (event.type === 'DialUpgradeError' && event.info != null) this.answers.push(`query ${event.info.id} failed: ${event.error.kind}`)
 *   }
 *   poll (cx: Context): ConnectionHandlerEvent<string, Info> | undefined {
 *     const id = this.wanted.shift()
 *     if (id !== undefined) return { type: 'OutboundSubstreamRequest', protocol: { protocols: ['/query/1'], info: { kind: 'query', id } } }
 *     const answer = this.answers.shift()
 *     return answer === undefined ? undefined : { type: 'NotifyBehaviour', event: answer }
 *   }
 * }
 * ```
 *
 * @group Writing a behaviour
 */
export interface SubstreamProtocol<TInfo = unknown> {
  /** Protocol ids in order of preference, e.g. `['/ipfs/ping/1.0.0']`. */
  readonly protocols: readonly string[]
  /**
   * Handed back unchanged in the matching `FullyNegotiated…` or `DialUpgradeError` event
   * (`undefined` there when none was given: a handler whose `TInfo` excludes `undefined`
   * gives one with every request and in `listenProtocol`).
   */
  readonly info?: TInfo
  /** Negotiation timeout in ms (default: the swarm's `substreamNegotiationTimeout`, 10 s). */
  readonly timeout?: number
}

/** @internal The listen protocol of a handler that accepts no inbound stream (shared: never changed). */
export const NO_PROTOCOLS: SubstreamProtocol = Object.freeze({ protocols: Object.freeze([]) })

/**
 * Protocols a side of a connection started or stopped supporting.
 *
 * @group Writing a behaviour
 */
export interface ProtocolsChange {
  readonly type: 'Added' | 'Removed'
  readonly protocols: readonly string[]
}

/**
 * Why a substream could not be negotiated.
 *
 * @group Writing a behaviour
 */
export type StreamUpgradeErrorKind = 'Timeout' | 'NegotiationFailed' | 'Io'

/**
 * A substream could not be opened or negotiated.
 *
 * @group Errors
 */
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
 *
 * @group Writing a behaviour
 */
export type ConnectionEvent<TInfo = unknown> =
  | {
    /** An inbound stream negotiated one of `listenProtocol()`'s protocols. */
    readonly type: 'FullyNegotiatedInbound'
    readonly stream: Stream
    readonly protocol: string
    /** The `info` of the `listenProtocol()` answer the stream was negotiated with. */
    readonly info: TInfo
  }
  | {
    /** An `OutboundSubstreamRequest` succeeded. */
    readonly type: 'FullyNegotiatedOutbound'
    readonly stream: Stream
    readonly protocol: string
    /** The request's `info`. */
    readonly info: TInfo
  }
  | {
    /** An `OutboundSubstreamRequest` failed (the remote does not support it, timeout, I/O). */
    readonly type: 'DialUpgradeError'
    /** The request's `info`. */
    readonly info: TInfo
    readonly error: StreamUpgradeError
  }
  | { readonly type: 'LocalProtocolsChange', readonly change: ProtocolsChange }
  | { readonly type: 'RemoteProtocolsChange', readonly change: ProtocolsChange }

/**
 * What a handler asks of its connection, returned from `poll`; `TInfo` as in {@link SubstreamProtocol}.
 *
 * @group Writing a behaviour
 */
export type ConnectionHandlerEvent<TToBehaviour, TInfo = unknown> =
  | { readonly type: 'OutboundSubstreamRequest', readonly protocol: SubstreamProtocol<TInfo> }
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
 * what it reports (`NotifyBehaviour`), delivered to `NetworkBehaviour.onConnectionHandlerEvent`;
 * `TInfo` is the type of the `info` it gives with its protocols and gets back with the
 * negotiated streams (see {@link SubstreamProtocol}; `unknown` by default).
 *
 * @group Writing a behaviour
 */
export interface ConnectionHandler<TFromBehaviour = unknown, TToBehaviour = unknown, TInfo = unknown> {
  /**
   * Every protocol this handler accepts on inbound streams. Read whenever an inbound stream
   * starts negotiating; a change is reported to remotes that track our protocols.
   *
   * @group Called by the connection
   */
  listenProtocol(): SubstreamProtocol<TInfo>

  /**
   * Whether this handler needs the connection kept open. A connection is idle when it has no
   * negotiating streams, no active streams (except those marked with `ignoreForKeepAlive`),
   * and every handler returns false here; it then closes after the swarm's
   * `idleConnectionTimeout` (default 10 s). Return true while the protocol has work that the
   * remote cannot see as an open stream (e.g. a pending request). Call `wake()` when it changes.
   *
   * @group Called by the connection
   */
  connectionKeepAlive(): boolean

  /**
   * An event from this handler's behaviour.
   *
   * @group Called by the connection
   */
  onBehaviourEvent(event: TFromBehaviour): void

  /**
   * An event from the connection: a negotiated stream, a negotiation failure, a change.
   *
   * @group Called by the connection
   */
  onConnectionEvent(event: ConnectionEvent<TInfo>): void

  /**
   * The next thing this handler asks for, or `undefined` (then keep `cx.waker`).
   *
   * @group Called by the connection
   */
  poll(cx: Context): ConnectionHandlerEvent<TToBehaviour, TInfo> | undefined

  /**
   * The connection is about to close gracefully (the swarm is closing, or the connection is
   * closed by the behaviour, the application or the idle timeout): send what is queued and
   * resolve. Events the behaviour sent before the close have all been delivered by then. The
   * connection waits at most `SwarmConfig.drainTimeout` (the handler is not told when that
   * runs out), then calls `close()` and closes the muxer. Not called when the connection is
   * lost or aborted.
   *
   * @group Called by the connection
   */
  drain?(): Promise<void>

  /**
   * The connection is gone: release timers and streams. Called exactly once; the handler is
   * never used again.
   *
   * @group Called by the connection
   */
  close?(): void
}

/**
 * The event type a handler reports to its behaviour.
 *
 * @group Writing a behaviour
 */
export type ToBehaviourOf<H> = H extends ConnectionHandler<unknown, infer O> ? O : never
/**
 * The event type a handler accepts from its behaviour.
 *
 * @group Writing a behaviour
 */
export type FromBehaviourOf<H> = H extends ConnectionHandler<infer I, unknown> ? I : never
