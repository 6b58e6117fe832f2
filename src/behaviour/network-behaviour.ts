/**
 * The `NetworkBehaviour` contract: what a protocol (or a composition of them) does for the
 * whole swarm, as opposed to its per-connection `ConnectionHandler`.
 *
 * Method verbs say what a method may do: `handle…` is a gate that may refuse by throwing
 * `ConnectionDenied`; `on…` is told something and cannot refuse; `poll` is asked for work.
 *
 * @module
 */
import type { Context } from './context.js'
import type { ConnectionHandler } from './connection-handler.js'
import type { DialOpts, PortUse } from '../core/dial-opts.js'
import type { ConnectionError, DialError, ListenError } from '../core/connection-errors.js'
import type { ConnectedPoint, ConnectionId, Endpoint, ListenerId } from '../core/ids.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * Argument of `handlePendingInboundConnection`.
 *
 * @group Writing a behaviour
 */
export interface PendingInboundConnection {
  readonly connectionId: ConnectionId
  readonly localAddr: Multiaddr
  readonly remoteAddr: Multiaddr
}

/**
 * Argument of `handleEstablishedInboundConnection`.
 *
 * @group Writing a behaviour
 */
export interface EstablishedInboundConnection extends PendingInboundConnection {
  readonly peerId: PeerId
}

/**
 * Argument of `handlePendingOutboundConnection`.
 *
 * @group Writing a behaviour
 */
export interface PendingOutboundConnection {
  readonly connectionId: ConnectionId
  /** The peer being dialed, when known. */
  readonly peerId?: PeerId
  /** The addresses the dial already has. */
  readonly addresses: readonly Multiaddr[]
  readonly effectiveRole: Endpoint
}

/**
 * Argument of `handleEstablishedOutboundConnection`.
 *
 * @group Writing a behaviour
 */
export interface EstablishedOutboundConnection {
  readonly connectionId: ConnectionId
  readonly peerId: PeerId
  /** The address that succeeded. */
  readonly address: Multiaddr
  /** The role the connection was upgraded in: `'Listener'` for a dial with `roleOverride: 'Listener'` (DCUtR). */
  readonly roleOverride: Endpoint
  /**
   * Whether the connection left from the transport's fixed dial port (`'reuse'`) or from an
   * ephemeral one (`'new'`), as it happened (a `reuse` dial that fell back is `'new'`). The
   * swarm always sets it; absent means `'new'`.
   */
  readonly portUse?: PortUse
}

/**
 * What the swarm tells every behaviour, through `onSwarmEvent`, before the user sees it.
 *
 * @group Writing a behaviour
 */
export type FromSwarm =
  | {
    readonly type: 'ConnectionEstablished'
    readonly peerId: PeerId
    readonly connectionId: ConnectionId
    readonly endpoint: ConnectedPoint
    /** Addresses that failed before this one succeeded (outbound only). */
    readonly failedAddresses: readonly Multiaddr[]
    /** Other connections to the same peer that were already established. */
    readonly otherEstablished: number
  }
  | {
    readonly type: 'ConnectionClosed'
    readonly peerId: PeerId
    readonly connectionId: ConnectionId
    readonly endpoint: ConnectedPoint
    /** `undefined` when we closed it ourselves. */
    readonly cause?: ConnectionError
    readonly remainingEstablished: number
  }
  | {
    readonly type: 'DialFailure'
    readonly peerId?: PeerId
    readonly connectionId: ConnectionId
    readonly error: DialError
  }
  | {
    readonly type: 'ListenFailure'
    readonly connectionId: ConnectionId
    readonly localAddr: Multiaddr
    readonly sendBackAddr: Multiaddr
    readonly peerId?: PeerId
    readonly error: ListenError
  }
  | { readonly type: 'NewListener', readonly listenerId: ListenerId }
  | { readonly type: 'NewListenAddr', readonly listenerId: ListenerId, readonly address: Multiaddr }
  | { readonly type: 'ExpiredListenAddr', readonly listenerId: ListenerId, readonly address: Multiaddr }
  | { readonly type: 'ListenerError', readonly listenerId: ListenerId, readonly error: Error }
  | { readonly type: 'ListenerClosed', readonly listenerId: ListenerId, readonly reason?: Error }
  | { readonly type: 'NewExternalAddrCandidate', readonly address: Multiaddr }
  | { readonly type: 'ExternalAddrConfirmed', readonly address: Multiaddr }
  | { readonly type: 'ExternalAddrExpired', readonly address: Multiaddr }
  | { readonly type: 'NewExternalAddrOfPeer', readonly peerId: PeerId, readonly address: Multiaddr }

/**
 * What a behaviour asks of the swarm, returned from `poll`.
 *
 * @group Writing a behaviour
 */
export type ToSwarm<TEvent, TToHandler> =
  | { readonly type: 'GenerateEvent', readonly event: TEvent }
  | { readonly type: 'Dial', readonly opts: DialOpts }
  | { readonly type: 'ListenOn', readonly address: Multiaddr }
  | { readonly type: 'RemoveListener', readonly listenerId: ListenerId }
  | {
    readonly type: 'NotifyHandler'
    readonly peerId: PeerId
    /** One connection, or `'any'` connection of the peer. Dropped if it no longer exists. */
    readonly handler: ConnectionId | 'any'
    readonly event: TToHandler
  }
  | {
    readonly type: 'CloseConnection'
    readonly peerId: PeerId
    /** One connection, or `'all'` connections to the peer. */
    readonly connection: ConnectionId | 'all'
  }
  | { readonly type: 'NewExternalAddrCandidate', readonly address: Multiaddr }
  | { readonly type: 'ExternalAddrConfirmed', readonly address: Multiaddr }
  | { readonly type: 'ExternalAddrExpired', readonly address: Multiaddr }
  | { readonly type: 'NewExternalAddrOfPeer', readonly peerId: PeerId, readonly address: Multiaddr }

/**
 * A protocol's swarm-wide state machine. The swarm calls it only from its own event loop,
 * which runs when the application asks for the next event.
 *
 * - Gates: `handlePendingInboundConnection`, `handleEstablishedInboundConnection` (returns the
 *   connection's handler), `handlePendingOutboundConnection` (may add addresses),
 *   `handleEstablishedOutboundConnection`. Throwing `ConnectionDenied` refuses the connection;
 *   every behaviour then hears `DialFailure` / `ListenFailure` to roll back its state.
 * - `onSwarmEvent` and `onConnectionHandlerEvent`: notifications.
 * - `poll`: the next action, or `undefined`, after which the behaviour keeps `cx.waker` and
 *   wakes it when it has work again.
 *
 * `TEvent` is what the application receives (`SwarmEvent` `Behaviour`); `TToHandler` /
 * `TFromHandler` are the events exchanged with its `ConnectionHandler`s.
 *
 * @group Writing a behaviour
 */
export interface NetworkBehaviour<TEvent = unknown, TToHandler = unknown, TFromHandler = unknown> {
  /**
   * Gate for an incoming connection before its upgrade. Default: accept.
   *
   * @group Called by the swarm
   */
  handlePendingInboundConnection?(connection: PendingInboundConnection): void
  /**
   * Gate for an upgraded incoming connection; returns the connection's handler.
   *
   * @group Called by the swarm
   */
  handleEstablishedInboundConnection(connection: EstablishedInboundConnection): ConnectionHandler<TToHandler, TFromHandler>
  /**
   * Gate for an outgoing dial before it starts; may return more addresses for the peer
   * (used when the dial asks for them). Default: accept, no addresses.
   *
   * @group Called by the swarm
   */
  handlePendingOutboundConnection?(connection: PendingOutboundConnection): readonly Multiaddr[] | undefined
  /**
   * Gate for an upgraded outgoing connection; returns the connection's handler.
   *
   * @group Called by the swarm
   */
  handleEstablishedOutboundConnection(connection: EstablishedOutboundConnection): ConnectionHandler<TToHandler, TFromHandler>
  /**
   * A change in the swarm, told before the matching `SwarmEvent` reaches the application.
   *
   * @group Called by the swarm
   */
  onSwarmEvent(event: FromSwarm): void
  /**
   * An event reported by one of this behaviour's handlers. Only for connected peers.
   *
   * @group Called by the swarm
   */
  onConnectionHandlerEvent(peerId: PeerId, connectionId: ConnectionId, event: TFromHandler): void
  /**
   * The next action for the swarm, or `undefined` (then keep `cx.waker`).
   *
   * @group Called by the swarm
   */
  poll(cx: Context): ToSwarm<TEvent, TToHandler> | undefined
  /**
   * The swarm is about to close, with every connection still open: queue what the protocol
   * says on leaving (e.g. unsubscribe, PRUNE) as `NotifyHandler` actions. Called once. The
   * swarm then polls the behaviour until it has nothing more (or `SwarmConfig.drainTimeout`
   * runs out), delivering its `NotifyHandler` actions and dropping every other action, and
   * lets each connection's handlers `drain` before closing it.
   *
   * @group Called by the swarm
   */
  shutdown?(): void

  /**
   * The swarm is closing: release timers and sockets. Called once, after all connections closed.
   *
   * @group Called by the swarm
   */
  close?(): void | Promise<void>
}

/**
 * The event type a behaviour yields to the application.
 *
 * @group Writing a behaviour
 */
export type EventOf<B> = B extends NetworkBehaviour<infer E, unknown, unknown> ? E : never

/**
 * A behaviour of any event types, for code that only routes.
 *
 * @group Writing a behaviour
 */
export type AnyBehaviour = NetworkBehaviour<unknown, unknown, unknown>
