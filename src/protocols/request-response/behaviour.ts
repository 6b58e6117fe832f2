/**
 * Request-response's behaviour: sends requests to peers (dialing them when not connected),
 * hands inbound requests to the application with a channel to answer through, and reports
 * every request's outcome exactly once.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { ActionQueue } from '../../behaviour/action-queue.js'
import { newConnectionId } from '../../core/ids.js'
import { DialPeerConditionFalseError } from '../../core/connection-errors.js'
import { newInboundRequestId, newOutboundRequestId, settleChannel } from './channel.js'
import { config as requestResponseConfig, protocols as splitProtocols } from './config.js'
import { InboundFailure, OutboundFailure } from './errors.js'
import { Handler } from './handler.js'
import type { InboundRequestId, Message, OutboundRequestId, ResponseChannel } from './channel.js'
import type { Codec } from './codec.js'
import type { Config, ProtocolConfig, Protocols } from './config.js'
import type { FromBehaviour, ToBehaviour } from './handler.js'
import type { Context } from '../../behaviour/context.js'
import type { EstablishedInboundConnection, EstablishedOutboundConnection, FromSwarm, NetworkBehaviour, ToSwarm } from '../../behaviour/network-behaviour.js'
import type { ConnectionId } from '../../core/ids.js'
import type { PeerId } from '@libp2p/interface'

const log = logger('peerswarm:request-response')

/** What request-response reports. Every request ends in exactly one event. */
export type Event<TRequest, TResponse> =
  | {
    /** A request from a peer, or the response to one of ours. */
    readonly type: 'Message'
    readonly peerId: PeerId
    readonly connectionId: ConnectionId
    readonly message: Message<TRequest, TResponse>
  }
  | {
    /** One of our requests failed; `error.kind` says why. */
    readonly type: 'OutboundFailure'
    readonly peerId: PeerId
    /** The connection it was sent on, or the dial that failed; `undefined` if neither. */
    readonly connectionId: ConnectionId | undefined
    readonly requestId: OutboundRequestId
    readonly error: OutboundFailure
  }
  | {
    /** A peer's request could not be read or answered; `error.kind` says why. */
    readonly type: 'InboundFailure'
    readonly peerId: PeerId
    readonly connectionId: ConnectionId
    readonly requestId: InboundRequestId
    readonly error: InboundFailure
  }
  | {
    /** Our response to `requestId` was written and our side of its stream closed. */
    readonly type: 'ResponseSent'
    readonly peerId: PeerId
    readonly connectionId: ConnectionId
    readonly requestId: InboundRequestId
  }

/** Options of one request. */
export interface RequestOptions {
  /** This request's timeout in ms, instead of the behaviour's `requestTimeout`. */
  readonly timeout?: number
}

/** A request waiting for a connection to its peer. */
interface Waiting<TRequest> {
  readonly requestId: OutboundRequestId
  readonly request: TRequest
  readonly deadline: number
  readonly timer: ReturnType<typeof setTimeout>
}

/** What we track of one peer. */
interface Peer<TRequest> {
  readonly peerId: PeerId
  /** Established connections, in the order they were established. */
  readonly connections: ConnectionId[]
  /** Requests waiting for a connection. */
  readonly waiting: Map<OutboundRequestId, Waiting<TRequest>>
  /** Our dial in progress, if any. */
  dial?: ConnectionId
  /** Spreads requests over the peer's connections. */
  next: number
}

/** What we track of one connection: requests sent on it and requests received on it, unanswered. */
interface ConnectionState {
  readonly peerId: PeerId
  readonly outbound: Set<OutboundRequestId>
  readonly inbound: Set<InboundRequestId>
}

/**
 * A generic request-response protocol, as rust-libp2p's `request_response::Behaviour`: each
 * request is one stream on which the requester writes its request and the responder its
 * response, in the format of `codec`. `sendRequest` returns an id that the request's outcome
 * carries: a `Message` with the response, or an `OutboundFailure`. Inbound requests arrive as
 * `Message` events with a channel to answer through (`sendResponse`); each ends in
 * `ResponseSent` or an `InboundFailure`.
 *
 * A peer that is not connected is dialed by peer id: its addresses come from the other
 * behaviours (mDNS, identify…) or from `swarm.addPeerAddress`.
 *
 * ```ts
 * type Request = { readonly name: string }
 * type Response = { readonly greeting: string }
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withMemoryTransport()
 *   .withBehaviour(() => new requestResponse.Behaviour(requestResponse.jsonCodec<Request, Response>(), ['/hello/1.0.0']))
 *   .build()
 * for await (const event of swarm) {
 *   if (event.type !== 'Behaviour' || event.event.type !== 'Message') continue
 *   const { message } = event.event
 *   if (message.type === 'Request') {
 *     swarm.behaviour.sendResponse(message.channel, { greeting: `hello, ${message.request.name}` })
 *   }
 * }
 * ```
 */
export class Behaviour<TRequest, TResponse> implements NetworkBehaviour<Event<TRequest, TResponse>, FromBehaviour<TRequest>, ToBehaviour<TRequest, TResponse>> {
  /** The complete configuration. */
  readonly config: Config
  /** The protocols, split by the direction we speak them in. */
  readonly protocols: Protocols
  private readonly codec: Codec<TRequest, TResponse>
  private readonly peers = new Map<string, Peer<TRequest>>()
  private readonly connections = new Map<ConnectionId, ConnectionState>()
  private readonly actions = new ActionQueue<Event<TRequest, TResponse>, FromBehaviour<TRequest>>()

  /**
   * @param codec - reads and writes requests and responses, e.g. `jsonCodec()`
   * @param protocols - protocol ids (spoken in both directions) or `{ protocol, support }`,
   *   in order of preference
   * @param options - timeouts and limits; throws `ConfigError` naming a bad one
   */
  constructor (codec: Codec<TRequest, TResponse>, protocols: ReadonlyArray<string | ProtocolConfig>, options: Partial<Config> = {}) {
    this.codec = codec
    this.protocols = splitProtocols(protocols)
    this.config = requestResponseConfig(options)
  }

  /**
   * Send `request` to `peerId` and return its id. The outcome arrives later as a `Message`
   * with the response or an `OutboundFailure` carrying this id. If the peer is not connected
   * it is dialed (by peer id) first.
   */
  sendRequest (peerId: PeerId, request: TRequest, options: RequestOptions = {}): OutboundRequestId {
    const requestId = newOutboundRequestId()
    const timeout = options.timeout ?? this.config.requestTimeout
    if (this.protocols.outbound.length === 0) {
      this.fail(peerId, undefined, requestId, new OutboundFailure('UnsupportedProtocols', 'no protocol is configured for outbound requests'))
      return requestId
    }
    const deadline = performance.now() + timeout
    const peer = this.peer(peerId)
    if (peer.connections.length > 0) {
      this.send(peer, requestId, request, deadline)
      return requestId
    }
    const timer = setTimeout(() => {
      if (!peer.waiting.delete(requestId)) return
      this.fail(peerId, undefined, requestId, new OutboundFailure('Timeout', 'no connection to the peer in time'))
      this.forget(peer)
    }, Math.max(0, timeout))
    peer.waiting.set(requestId, { requestId, request, deadline, timer })
    if (peer.dial == null) {
      peer.dial = newConnectionId()
      // `disconnected`, not the default `disconnectedAndNotDialing`: a dial of someone else's
      // to a bad address must not stand in for ours.
      this.actions.push({ type: 'Dial', opts: { peerId, connectionId: peer.dial, condition: 'disconnected' } })
    }
    return requestId
  }

  /**
   * Answer the request of `channel` with `response`. Returns false if the channel is no longer
   * open (already answered, timed out, or its connection closed); the request's outcome is
   * then reported (or was) by an `InboundFailure`.
   */
  sendResponse (channel: ResponseChannel<TResponse>, response: TResponse): boolean {
    return settleChannel(channel, { type: 'Respond', response })
  }

  /**
   * Decline to answer the request of `channel`: its stream is reset and an `InboundFailure`
   * with `ResponseOmission` reported. Returns false if the channel is no longer open.
   */
  dropResponse (channel: ResponseChannel<TResponse>): boolean {
    return settleChannel(channel, { type: 'Drop' })
  }

  /** Whether the request `requestId` of ours has no outcome yet. */
  isPendingOutbound (peerId: PeerId, requestId: OutboundRequestId): boolean {
    const peer = this.peers.get(peerId.toString())
    if (peer?.waiting.has(requestId) === true) return true
    return peer?.connections.some(id => this.connections.get(id)?.outbound.has(requestId) === true) ?? false
  }

  /** Whether the peer's request `requestId` is still waiting for our response. */
  isPendingInbound (peerId: PeerId, requestId: InboundRequestId): boolean {
    return this.peers.get(peerId.toString())?.connections.some(id => this.connections.get(id)?.inbound.has(requestId) === true) ?? false
  }

  handleEstablishedInboundConnection ({ peerId }: EstablishedInboundConnection): Handler<TRequest, TResponse> {
    return this.handler(peerId)
  }

  handleEstablishedOutboundConnection ({ peerId }: EstablishedOutboundConnection): Handler<TRequest, TResponse> {
    return this.handler(peerId)
  }

  onSwarmEvent (event: FromSwarm): void {
    switch (event.type) {
      case 'ConnectionEstablished': {
        const peer = this.peer(event.peerId)
        peer.connections.push(event.connectionId)
        this.connections.set(event.connectionId, { peerId: event.peerId, outbound: new Set(), inbound: new Set() })
        if (peer.dial === event.connectionId) peer.dial = undefined
        for (const waiting of peer.waiting.values()) {
          clearTimeout(waiting.timer)
          this.send(peer, waiting.requestId, waiting.request, waiting.deadline, event.connectionId)
        }
        peer.waiting.clear()
        break
      }
      case 'ConnectionClosed': {
        const state = this.connections.get(event.connectionId)
        if (state == null) break
        this.connections.delete(event.connectionId)
        const peer = this.peers.get(event.peerId.toString())
        if (peer != null) {
          const at = peer.connections.indexOf(event.connectionId)
          if (at >= 0) peer.connections.splice(at, 1)
        }
        for (const requestId of state.outbound) {
          this.fail(event.peerId, event.connectionId, requestId, new OutboundFailure('ConnectionClosed', 'the connection closed before the response arrived', event.cause))
        }
        for (const requestId of state.inbound) {
          this.actions.push({
            type: 'GenerateEvent',
            event: {
              type: 'InboundFailure',
              peerId: event.peerId,
              connectionId: event.connectionId,
              requestId,
              error: new InboundFailure('ConnectionClosed', 'the connection closed before the response was sent', event.cause)
            }
          })
        }
        if (peer != null) this.forget(peer)
        break
      }
      case 'DialFailure': {
        if (event.peerId == null) break
        const peer = this.peers.get(event.peerId.toString())
        if (peer == null) break
        if (peer.dial === event.connectionId) peer.dial = undefined
        // While a dial of ours is under way, its outcome decides, not another dial's. A dial
        // refused because another is in progress (or a connection just opened) is not the
        // peer's failure either: that other dial's outcome decides.
        if (peer.dial !== undefined || event.error instanceof DialPeerConditionFalseError || peer.waiting.size === 0) break
        log('dialing %p failed: %s', event.peerId, event.error.message)
        for (const waiting of peer.waiting.values()) {
          clearTimeout(waiting.timer)
          this.fail(event.peerId, event.connectionId, waiting.requestId, new OutboundFailure('DialFailure', `dialing the peer failed: ${event.error.message}`, event.error))
        }
        peer.waiting.clear()
        this.forget(peer)
        break
      }
      default:
    }
  }

  onConnectionHandlerEvent (peerId: PeerId, connectionId: ConnectionId, event: ToBehaviour<TRequest, TResponse>): void {
    const state = this.connections.get(connectionId)
    switch (event.type) {
      case 'Request':
        state?.inbound.add(event.requestId)
        this.generate({ type: 'Message', peerId, connectionId, message: event })
        break
      case 'Response':
        if (state?.outbound.delete(event.requestId) !== true) break
        this.generate({ type: 'Message', peerId, connectionId, message: event })
        break
      case 'OutboundFailure':
        if (state?.outbound.delete(event.requestId) !== true) break
        this.fail(peerId, connectionId, event.requestId, event.error)
        break
      case 'ResponseSent':
        state?.inbound.delete(event.requestId)
        this.generate({ type: 'ResponseSent', peerId, connectionId, requestId: event.requestId })
        break
      case 'InboundFailure':
        state?.inbound.delete(event.requestId)
        this.generate({ type: 'InboundFailure', peerId, connectionId, requestId: event.requestId, error: event.error })
        break
    }
  }

  poll (cx: Context): ToSwarm<Event<TRequest, TResponse>, FromBehaviour<TRequest>> | undefined {
    return this.actions.poll(cx)
  }

  /**
   * Stop the timers of requests waiting for a connection (the swarm is closing).
   *
   * @group Called by the swarm
   */
  close (): void {
    for (const peer of this.peers.values()) {
      for (const waiting of peer.waiting.values()) clearTimeout(waiting.timer)
      peer.waiting.clear()
    }
  }

  private handler (peerId: PeerId): Handler<TRequest, TResponse> {
    return new Handler({ codec: this.codec, protocols: this.protocols, config: this.config, peerId, nextInboundId: newInboundRequestId })
  }

  private peer (peerId: PeerId): Peer<TRequest> {
    const key = peerId.toString()
    let peer = this.peers.get(key)
    if (peer == null) {
      peer = { peerId, connections: [], waiting: new Map(), next: 0 }
      this.peers.set(key, peer)
    }
    return peer
  }

  /** Drop what we track of a peer once nothing of it is left. */
  private forget (peer: Peer<TRequest>): void {
    if (peer.connections.length === 0 && peer.waiting.size === 0 && peer.dial == null) this.peers.delete(peer.peerId.toString())
  }

  /** Hand a request to one of the peer's connections (round-robin unless `connectionId` is given). */
  private send (peer: Peer<TRequest>, requestId: OutboundRequestId, request: TRequest, deadline: number, connectionId?: ConnectionId): void {
    const handler = connectionId ?? peer.connections[peer.next++ % peer.connections.length]
    this.connections.get(handler)?.outbound.add(requestId)
    this.actions.push({ type: 'NotifyHandler', peerId: peer.peerId, handler, event: { type: 'Request', requestId, request, deadline } })
  }

  private fail (peerId: PeerId, connectionId: ConnectionId | undefined, requestId: OutboundRequestId, error: OutboundFailure): void {
    this.generate({ type: 'OutboundFailure', peerId, connectionId, requestId, error })
  }

  private generate (event: Event<TRequest, TResponse>): void {
    this.actions.generate(event)
  }
}
