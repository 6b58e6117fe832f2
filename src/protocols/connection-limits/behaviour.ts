/**
 * Connection limits, as rust-libp2p's `connection-limits` behaviour: a policy behaviour that
 * denies connections through the swarm's gates once a limit is reached.
 *
 * @module
 */
import { ConfigError, ConnectionDenied, PeerswarmError } from '../../core/errors.js'
import { DummyHandler } from '../../behaviour/dummy.js'
import type {
  EstablishedInboundConnection, EstablishedOutboundConnection, FromSwarm, NetworkBehaviour, PendingOutboundConnection, ToSwarm
} from '../../behaviour/network-behaviour.js'
import type { ConnectionId } from '../../core/ids.js'
import type { PeerId } from '@libp2p/interface'

/** Limits on connection counts; an absent limit is no limit. */
export interface ConnectionLimits {
  /** Incoming connections being upgraded. */
  readonly maxPendingIncoming?: number
  /** Outgoing dials in progress. */
  readonly maxPendingOutgoing?: number
  /** Established incoming connections. */
  readonly maxEstablishedIncoming?: number
  /** Established outgoing connections. */
  readonly maxEstablishedOutgoing?: number
  /** Established connections in total. */
  readonly maxEstablished?: number
  /** Established connections to one peer. */
  readonly maxEstablishedPerPeer?: number
}

/** Which limit was hit. */
export type LimitKind = 'PendingIncoming' | 'PendingOutgoing' | 'EstablishedIncoming' | 'EstablishedOutgoing' | 'EstablishedTotal' | 'EstablishedPerPeer'

/**
 * A connection was denied because a limit was reached; the `cause` of the `ConnectionDenied`.
 *
 * @group Errors
 */
export class LimitExceededError extends PeerswarmError {
  constructor (readonly kind: LimitKind, readonly limit: number) {
    super('ERR_CONNECTION_LIMIT', `connection limit reached: ${kind} (${limit})`)
  }
}

/**
 * Denies connections beyond the configured limits. Counts follow the swarm's events, so a
 * denial by another behaviour (reported as `DialFailure` / `ListenFailure`) is rolled back.
 * Peers on the bypass list are exempt from the established-connection limits.
 *
 * ```ts
 * combine({ limits: new connectionLimits.Behaviour({ maxEstablishedPerPeer: 1 }), ping: new ping.Behaviour() })
 * ```
 */
export class Behaviour implements NetworkBehaviour<never, never, never> {
  private current: ConnectionLimits
  private readonly pendingIncoming = new Set<ConnectionId>()
  private readonly pendingOutgoing = new Set<ConnectionId>()
  private readonly establishedIncoming = new Set<ConnectionId>()
  private readonly establishedOutgoing = new Set<ConnectionId>()
  private readonly perPeer = new Map<string, Set<ConnectionId>>()
  private readonly bypassed = new Set<string>()

  constructor (limits: ConnectionLimits = {}) {
    this.current = validate(limits)
  }

  /** The limits in force. */
  get limits (): ConnectionLimits {
    return this.current
  }

  /** Replace the limits; existing connections are not closed. */
  set limits (limits: ConnectionLimits) {
    this.current = validate(limits)
  }

  /** Exempt `peerId` from the established-connection limits. */
  bypassPeerId (peerId: PeerId): void {
    this.bypassed.add(peerId.toString())
  }

  /** Remove `peerId` from the bypass list. */
  removePeerId (peerId: PeerId): void {
    this.bypassed.delete(peerId.toString())
  }

  /** Whether `peerId` is on the bypass list. */
  isBypassed (peerId: PeerId): boolean {
    return this.bypassed.has(peerId.toString())
  }

  handlePendingInboundConnection ({ connectionId }: { connectionId: ConnectionId }): void {
    check(this.pendingIncoming.size, this.current.maxPendingIncoming, 'PendingIncoming')
    this.pendingIncoming.add(connectionId)
  }

  handleEstablishedInboundConnection ({ connectionId, peerId }: EstablishedInboundConnection): DummyHandler {
    this.pendingIncoming.delete(connectionId)
    this.checkEstablished(peerId, this.establishedIncoming.size, this.current.maxEstablishedIncoming, 'EstablishedIncoming')
    return new DummyHandler()
  }

  handlePendingOutboundConnection ({ connectionId, peerId }: PendingOutboundConnection): undefined {
    if (peerId == null || !this.isBypassed(peerId)) check(this.pendingOutgoing.size, this.current.maxPendingOutgoing, 'PendingOutgoing')
    this.pendingOutgoing.add(connectionId)
    return undefined
  }

  handleEstablishedOutboundConnection ({ connectionId, peerId }: EstablishedOutboundConnection): DummyHandler {
    this.pendingOutgoing.delete(connectionId)
    this.checkEstablished(peerId, this.establishedOutgoing.size, this.current.maxEstablishedOutgoing, 'EstablishedOutgoing')
    return new DummyHandler()
  }

  onSwarmEvent (event: FromSwarm): void {
    switch (event.type) {
      case 'ConnectionEstablished': {
        this.pendingIncoming.delete(event.connectionId)
        this.pendingOutgoing.delete(event.connectionId)
        const direction = event.endpoint.type === 'Dialer' ? this.establishedOutgoing : this.establishedIncoming
        direction.add(event.connectionId)
        const key = event.peerId.toString()
        let set = this.perPeer.get(key)
        if (set == null) this.perPeer.set(key, set = new Set())
        set.add(event.connectionId)
        break
      }
      case 'ConnectionClosed': {
        this.establishedIncoming.delete(event.connectionId)
        this.establishedOutgoing.delete(event.connectionId)
        const key = event.peerId.toString()
        const set = this.perPeer.get(key)
        set?.delete(event.connectionId)
        if (set?.size === 0) this.perPeer.delete(key)
        break
      }
      case 'DialFailure':
        this.pendingOutgoing.delete(event.connectionId)
        break
      case 'ListenFailure':
        this.pendingIncoming.delete(event.connectionId)
        break
      default:
    }
  }

  onConnectionHandlerEvent (): void {}

  poll (): ToSwarm<never, never> | undefined {
    return undefined
  }

  private checkEstablished (peerId: PeerId, directional: number, limit: number | undefined, kind: LimitKind): void {
    if (this.isBypassed(peerId)) return
    check(this.perPeer.get(peerId.toString())?.size ?? 0, this.current.maxEstablishedPerPeer, 'EstablishedPerPeer')
    check(directional, limit, kind)
    check(this.establishedIncoming.size + this.establishedOutgoing.size, this.current.maxEstablished, 'EstablishedTotal')
  }
}

function check (current: number, limit: number | undefined, kind: LimitKind): void {
  if (limit != null && current >= limit) throw new ConnectionDenied(new LimitExceededError(kind, limit))
}

function validate (limits: ConnectionLimits): ConnectionLimits {
  for (const [field, value] of Object.entries(limits)) {
    if (value != null && (typeof value !== 'number' || !Number.isInteger(value) || value < 0)) {
      throw new ConfigError(field, `must be a non-negative integer, got ${String(value)}`)
    }
  }
  return Object.freeze({ ...limits })
}
