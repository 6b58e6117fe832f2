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

/** The children of a combined behaviour, by key. */
export type Children = Readonly<Record<string, AnyBehaviour>>

/** The event of a combined behaviour: a child's event tagged with the child's key. */
export type CombinedEvent<C extends Children> = {
  [K in keyof C & string]: { readonly behaviour: K, readonly event: EventOf<C[K]> }
}[keyof C & string]

/** An event between a combined behaviour and its combined handler, tagged with the child's key. */
export interface Tagged {
  readonly key: string
  readonly event: unknown
}

/** A combined behaviour: the {@link CombinedBehaviour} plus each child as a typed property. */
export type Combined<C extends Children> = CombinedBehaviour<C> & { readonly [K in keyof C]: C[K] }

const RESERVED = new Set([
  'children', 'handlePendingInboundConnection', 'handleEstablishedInboundConnection', 'handlePendingOutboundConnection',
  'handleEstablishedOutboundConnection', 'onSwarmEvent', 'onConnectionHandlerEvent', 'poll', 'shutdown', 'close', 'constructor'
])

/** Combine behaviours into one; see the module documentation. Keys must not shadow methods. */
export function combine<C extends Children> (children: C): Combined<C> {
  return new CombinedBehaviour(children) as Combined<C>
}

/** The behaviour returned by {@link combine}. */
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

  /** Children are polled in turn, each turn starting after the child that last had work. */
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

/** The handler of a combined behaviour: one child handler per child, routed by key and protocol. */
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
   */
  listenProtocol (): SubstreamProtocol {
    const listens = this.handlers.map(([, handler]) => handler.listenProtocol())
    const last = this.lastListen
    if (last != null && listens.every((listen, i) => sameListen(listen, last.children[i]))) return last.combined
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
