/**
 * `combine({ a, b, … })`: several behaviours as one, in place of rust-libp2p's
 * `#[derive(NetworkBehaviour)]`. The result is itself a `NetworkBehaviour`:
 * - `swarm.behaviour.a` is the child `a`, typed;
 * - its events are `{ behaviour: 'a', event: EventOf<A> } | { behaviour: 'b', … }`;
 * - each connection gets one handler per child, and inbound streams go to the child whose
 *   handler listens on the negotiated protocol.
 *
 * @module
 */
import { ConfigError } from '../core/errors.js'
import type { Context } from './context.js'
import type { ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, SubstreamProtocol } from './connection-handler.js'
import type {
  AnyBehaviour, EstablishedInboundConnection, EstablishedOutboundConnection, EventOf, FromSwarm, NetworkBehaviour,
  PendingInboundConnection, PendingOutboundConnection, ToSwarm
} from './network-behaviour.js'
import type { ConnectionId } from '../core/ids.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * The children of a combined behaviour, by key.
 *
 * @group Composing behaviours
 */
export type Children = Readonly<Record<string, AnyBehaviour>>

/**
 * The event of a combined behaviour: a child's event tagged with the child's key.
 *
 * @group Composing behaviours
 */
export type CombinedEvent<C extends Children> = {
  [K in keyof C & string]: { readonly behaviour: K, readonly event: EventOf<C[K]> }
}[keyof C & string]

/**
 * The combined events inside `S`: `S` itself when it is a combined event, or the behaviour
 * event of a `SwarmEvent` of a combined behaviour.
 */
type TaggedEventsOf<S> = S extends { readonly type: 'Behaviour', readonly event: infer E }
  ? (E extends { readonly behaviour: string, readonly event: unknown } ? E : never)
  : S extends { readonly behaviour: string, readonly event: unknown } ? S : never

/**
 * The event type of the child `K` in the combined events inside `S` (see {@link childEvent}).
 *
 * @group Composing behaviours
 */
export type ChildEventOf<S, K extends string> = Extract<TaggedEventsOf<S>, { readonly behaviour: K }>['event']

/**
 * The event of the child behaviour `key` inside `event`, or `undefined` when `event` is not
 * one of that child's events; with `type`, only a child event of that type (narrowed to it).
 * `event` is what the swarm yields (a `SwarmEvent` of a {@link combine}d behaviour) or a
 * combined event itself (`event.event` of a `Behaviour` swarm event; apply it again for a
 * `combine` inside a `combine`). Keys and types are checked and completed by the compiler.
 *
 * It spares `event.type === 'Behaviour' && event.event.behaviour === 'mdns' &&
 * event.event.event.type === 'Discovered'`, so that each case reads like one arm of rust's
 * `match` on `SwarmEvent::Behaviour(MyBehaviourEvent::Mdns(mdns::Event::Discovered(list)))`:
 *
 * ```ts
 * import { SwarmBuilder, childEvent, combine, gossipsub, mdns, peerIdOf } from 'peerswarm'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(key => combine({
 *     gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key) }),
 *     mdns: new mdns.Behaviour(peerIdOf(key))
 *   }))
 *   .build()
 * swarm.behaviour.gossipsub.subscribe('chat')
 * swarm.listenOn('/ip4/0.0.0.0/tcp/0')
 * for await (const event of swarm) {
 *   const discovered = childEvent(event, 'mdns', 'Discovered')
 *   if (discovered != null) for (const { peerId } of discovered.peers) console.log('discovered', peerId.toString())
 *   const message = childEvent(event, 'gossipsub', 'Message')
 *   if (message != null) console.log(new TextDecoder().decode(message.message.data), 'from', message.propagationSource.toString())
 *   // Any event of one child:
 *   const fromGossipsub = childEvent(event, 'gossipsub')
 *   if (fromGossipsub?.type === 'Subscribed') console.log(fromGossipsub.peerId.toString(), 'joined', fromGossipsub.topic)
 * }
 * ```
 *
 * @group Composing behaviours
 */
export function childEvent<S, K extends TaggedEventsOf<S>['behaviour']> (event: S, key: K): ChildEventOf<S, K> | undefined
export function childEvent<S, K extends TaggedEventsOf<S>['behaviour'], T extends TypeOf<ChildEventOf<S, K>>> (
  event: S, key: K, type: T): Extract<ChildEventOf<S, K>, { readonly type: T }> | undefined
export function childEvent (event: unknown, key: string, type?: string): unknown {
  let tagged = event as { readonly type?: unknown, readonly behaviour?: unknown, readonly event?: unknown } | undefined
  if (tagged != null && typeof tagged.behaviour !== 'string' && tagged.type === 'Behaviour') {
    tagged = tagged.event as typeof tagged
  }
  if (tagged == null || tagged.behaviour !== key) return undefined
  const inner = tagged.event as { readonly type?: unknown } | undefined
  if (type !== undefined && inner?.type !== type) return undefined
  return inner
}

/** The `type` discriminants of a union of events (none for events without one). */
type TypeOf<E> = E extends { readonly type: infer T extends string } ? T : never

/**
 * An event between a combined behaviour and its combined handler, tagged with the child's key.
 *
 * @group Composing behaviours
 */
export interface Tagged {
  readonly key: string
  readonly event: unknown
}

/**
 * A combined behaviour: the {@link CombinedBehaviour} plus each child as a typed property.
 *
 * @group Composing behaviours
 */
export type Combined<C extends Children> = CombinedBehaviour<C> & { readonly [K in keyof C]: C[K] }

const RESERVED = new Set([
  'children', 'handlePendingInboundConnection', 'handleEstablishedInboundConnection', 'handlePendingOutboundConnection',
  'handleEstablishedOutboundConnection', 'onSwarmEvent', 'onConnectionHandlerEvent', 'poll', 'shutdown', 'close', 'constructor'
])

/**
 * Combine behaviours into one; see the module documentation. Keys must not shadow methods.
 *
 * @group Start here
 */
export function combine<C extends Children> (children: C): Combined<C> {
  return new CombinedBehaviour(children) as Combined<C>
}

/**
 * The behaviour returned by {@link combine}.
 *
 * @group Composing behaviours
 */
export class CombinedBehaviour<C extends Children> implements NetworkBehaviour<CombinedEvent<C>, Tagged, Tagged> {
  /** The children, by key. */
  readonly children: C
  private readonly entries: ReadonlyArray<readonly [string, AnyBehaviour]>
  /** Where the next `poll` starts, so that a busy child cannot starve the others. */
  private next = 0

  constructor (children: C) {
    this.children = children
    this.entries = Object.entries(children)
    if (this.entries.length === 0) throw new ConfigError('combine', 'needs at least one behaviour')
    for (const [key, child] of this.entries) {
      if (RESERVED.has(key)) throw new ConfigError(key, 'this key is reserved by combine(); choose another name')
      Object.defineProperty(this, key, { value: child, enumerable: true })
    }
  }

  handlePendingInboundConnection (connection: PendingInboundConnection): void {
    for (const [, child] of this.entries) child.handlePendingInboundConnection?.(connection)
  }

  handleEstablishedInboundConnection (connection: EstablishedInboundConnection): CombinedHandler {
    return this.handlers(child => child.handleEstablishedInboundConnection(connection))
  }

  handlePendingOutboundConnection (connection: PendingOutboundConnection): readonly Multiaddr[] {
    return this.entries.flatMap(([, child]) => child.handlePendingOutboundConnection?.(connection) ?? [])
  }

  handleEstablishedOutboundConnection (connection: EstablishedOutboundConnection): CombinedHandler {
    return this.handlers(child => child.handleEstablishedOutboundConnection(connection))
  }

  onSwarmEvent (event: FromSwarm): void {
    for (const [, child] of this.entries) child.onSwarmEvent(event)
  }

  onConnectionHandlerEvent (peerId: PeerId, connectionId: ConnectionId, event: Tagged): void {
    this.children[event.key]?.onConnectionHandlerEvent(peerId, connectionId, event.event)
  }

  /**
   * Children are polled in turn, each turn starting after the child that last had work.
   *
   * @group Called by the swarm
   */
  poll (cx: Context): ToSwarm<CombinedEvent<C>, Tagged> | undefined {
    const count = this.entries.length
    for (let i = 0; i < count; i++) {
      const index = (this.next + i) % count
      const [key, child] = this.entries[index]
      const action = child.poll(cx)
      if (action === undefined) continue
      this.next = (index + 1) % count
      return tagAction(key, action)
    }
    return undefined
  }

  shutdown (): void {
    for (const [, child] of this.entries) child.shutdown?.()
  }

  async close (): Promise<void> {
    await Promise.all(this.entries.map(async ([, child]) => { await child.close?.() }))
  }

  private handlers (create: (child: AnyBehaviour) => ConnectionHandler): CombinedHandler {
    const created: Array<readonly [string, ConnectionHandler]> = []
    try {
      for (const [key, child] of this.entries) created.push([key, create(child)])
    } catch (err) {
      // A later child denied the connection: the handlers already made will never run.
      for (const [, handler] of created) handler.close?.()
      throw err
    }
    return new CombinedHandler(created)
  }
}

function tagAction<C extends Children> (key: string, action: ToSwarm<unknown, unknown>): ToSwarm<CombinedEvent<C>, Tagged> {
  switch (action.type) {
    case 'GenerateEvent':
      return { type: 'GenerateEvent', event: { behaviour: key, event: action.event } as CombinedEvent<C> }
    case 'NotifyHandler':
      return { ...action, event: { key, event: action.event } }
    default:
      return action
  }
}

/** Which child listens on which inbound protocol, with that child's `info`. */
class InboundRoutes {
  constructor (readonly byProtocol: ReadonlyMap<string, { readonly key: string, readonly info: unknown }>) {}
}

/** Whether two answers to `listenProtocol` are the same (protocols in order, `info`, timeout). */
function sameListen (a: SubstreamProtocol, b: SubstreamProtocol): boolean {
  if (a === b) return true
  if (a.info !== b.info || a.timeout !== b.timeout || a.protocols.length !== b.protocols.length) return false
  for (let i = 0; i < a.protocols.length; i++) if (a.protocols[i] !== b.protocols[i]) return false
  return true
}

/** The child that asked for an outbound stream, with its own `info`. */
class OutboundRoute {
  constructor (readonly key: string, readonly info: unknown) {}
}

/**
 * The handler of a combined behaviour: one child handler per child, routed by key and protocol.
 *
 * @group Composing behaviours
 */
export class CombinedHandler implements ConnectionHandler<Tagged, Tagged> {
  private readonly byKey: ReadonlyMap<string, ConnectionHandler>
  private next = 0
  /** The children's last answers to `listenProtocol` and what they combined into. */
  private lastListen?: { readonly children: readonly SubstreamProtocol[], readonly combined: SubstreamProtocol }

  constructor (private readonly handlers: ReadonlyArray<readonly [string, ConnectionHandler]>) {
    this.byKey = new Map(handlers)
  }

  /**
   * Every child's protocols; when two children list the same protocol, the first key wins.
   * The connection asks on every turn of its loop: the combined answer is rebuilt only when a
   * child's answer changed (its protocols, `info` or timeout).
   *
   * @group Called by the connection
   */
  listenProtocol (): SubstreamProtocol {
    const last = this.lastListen
    if (last != null && this.listensUnchanged(last.children)) return last.combined
    const listens = this.handlers.map(([, handler]) => handler.listenProtocol())
    const routes = new Map<string, { key: string, info: unknown }>()
    let timeout: number | undefined
    listens.forEach((listen, i) => {
      const key = this.handlers[i][0]
      for (const protocol of listen.protocols) {
        if (!routes.has(protocol)) routes.set(protocol, { key, info: listen.info })
      }
      if (listen.timeout != null) timeout = Math.max(timeout ?? 0, listen.timeout)
    })
    const combined = { protocols: [...routes.keys()], info: new InboundRoutes(routes), timeout }
    this.lastListen = { children: listens, combined }
    return combined
  }

  /** Whether every child answers `listenProtocol` as in `children`; allocates nothing (it runs on every turn). */
  private listensUnchanged (children: readonly SubstreamProtocol[]): boolean {
    for (let i = 0; i < this.handlers.length; i++) {
      if (!sameListen(this.handlers[i][1].listenProtocol(), children[i])) return false
    }
    return true
  }

  connectionKeepAlive (): boolean {
    return this.handlers.some(([, handler]) => handler.connectionKeepAlive())
  }

  onBehaviourEvent (event: Tagged): void {
    this.byKey.get(event.key)?.onBehaviourEvent(event.event)
  }

  onConnectionEvent (event: ConnectionEvent): void {
    switch (event.type) {
      case 'FullyNegotiatedInbound': {
        const route = event.info instanceof InboundRoutes ? event.info.byProtocol.get(event.protocol) : undefined
        if (route == null) {
          event.stream.abort(new Error(`no handler for ${event.protocol}`))
          return
        }
        this.byKey.get(route.key)?.onConnectionEvent({ ...event, info: route.info })
        return
      }
      case 'FullyNegotiatedOutbound':
      case 'DialUpgradeError': {
        const route = event.info as OutboundRoute
        this.byKey.get(route.key)?.onConnectionEvent({ ...event, info: route.info })
        return
      }
      default:
        for (const [, handler] of this.handlers) handler.onConnectionEvent(event)
    }
  }

  poll (cx: Context): ConnectionHandlerEvent<Tagged> | undefined {
    const count = this.handlers.length
    for (let i = 0; i < count; i++) {
      const index = (this.next + i) % count
      const [key, handler] = this.handlers[index]
      const request = handler.poll(cx)
      if (request === undefined) continue
      this.next = (index + 1) % count
      switch (request.type) {
        case 'OutboundSubstreamRequest':
          return { type: 'OutboundSubstreamRequest', protocol: { ...request.protocol, info: new OutboundRoute(key, request.protocol.info) } }
        case 'NotifyBehaviour':
          return { type: 'NotifyBehaviour', event: { key, event: request.event } }
        default:
          return request
      }
    }
    return undefined
  }

  async drain (): Promise<void> {
    await Promise.all(this.handlers.map(async ([, handler]) => { await handler.drain?.() }))
  }

  close (): void {
    for (const [, handler] of this.handlers) handler.close?.()
  }
}
