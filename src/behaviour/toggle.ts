/**
 * `toggle(behaviour | undefined)`: a behaviour that may be switched off at construction, e.g.
 * `toggle(options.mdns ? new mdns.Behaviour(…) : undefined)`, keeping the composed type fixed.
 *
 * @module
 */
import { DummyHandler } from './dummy.js'
import type { Context } from './context.js'
import type { ConnectionHandler } from './connection-handler.js'
import type {
  AnyBehaviour, EstablishedInboundConnection, EstablishedOutboundConnection, EventOf, FromSwarm, NetworkBehaviour,
  PendingInboundConnection, PendingOutboundConnection, ToSwarm
} from './network-behaviour.js'
import type { ConnectionId } from '../core/ids.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * A behaviour that is either `inner` or, when `inner` is undefined, does nothing.
 *
 * @group Composing behaviours
 */
export class Toggle<B extends AnyBehaviour> implements NetworkBehaviour<EventOf<B>, unknown, unknown> {
  /** The wrapped behaviour, or `undefined` when disabled. */
  readonly inner: B | undefined

  constructor (inner: B | undefined) {
    this.inner = inner
  }

  /** Whether the wrapped behaviour is present. */
  get enabled (): boolean {
    return this.inner !== undefined
  }

  handlePendingInboundConnection (connection: PendingInboundConnection): void {
    this.inner?.handlePendingInboundConnection?.(connection)
  }

  handleEstablishedInboundConnection (connection: EstablishedInboundConnection): ConnectionHandler {
    return this.inner?.handleEstablishedInboundConnection(connection) ?? new DummyHandler()
  }

  handlePendingOutboundConnection (connection: PendingOutboundConnection): readonly Multiaddr[] | undefined {
    return this.inner?.handlePendingOutboundConnection?.(connection)
  }

  handleEstablishedOutboundConnection (connection: EstablishedOutboundConnection): ConnectionHandler {
    return this.inner?.handleEstablishedOutboundConnection(connection) ?? new DummyHandler()
  }

  onSwarmEvent (event: FromSwarm): void {
    this.inner?.onSwarmEvent(event)
  }

  onConnectionHandlerEvent (peerId: PeerId, connectionId: ConnectionId, event: unknown): void {
    this.inner?.onConnectionHandlerEvent(peerId, connectionId, event)
  }

  poll (cx: Context): ToSwarm<EventOf<B>, unknown> | undefined {
    return this.inner?.poll(cx) as ToSwarm<EventOf<B>, unknown> | undefined
  }

  shutdown (): void {
    this.inner?.shutdown?.()
  }

  async close (): Promise<void> {
    await this.inner?.close?.()
  }
}

/**
 * Wrap a behaviour that may be absent.
 *
 * @group Composing behaviours
 */
export function toggle<B extends AnyBehaviour> (behaviour: B | undefined): Toggle<B> {
  return new Toggle(behaviour)
}
