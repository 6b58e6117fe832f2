/**
 * Identify's behaviour: learns every peer's info, tells them ours, reports the address they
 * see us at as a candidate external address and their listen addresses to address books.
 *
 * @module
 */
import { ActionQueue } from '../../behaviour/action-queue.js'
import { ExternalAddresses, ListenAddresses } from '../../behaviour/addresses.js'
import { config as identifyConfig } from './config.js'
import { Handler } from './handler.js'
import type { Config } from './config.js'
import type { FromBehaviour, ToBehaviour } from './handler.js'
import type { Info } from './message.js'
import type { Context } from '../../behaviour/context.js'
import type { EstablishedInboundConnection, EstablishedOutboundConnection, FromSwarm, NetworkBehaviour, ToSwarm } from '../../behaviour/network-behaviour.js'
import type { ConnectionId } from '../../core/ids.js'
import type { PeerId, PublicKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** What identify reports. */
export type Event =
  | {
    /** The peer told us its info (in answer to our request, or pushed). */
    readonly type: 'Received'
    readonly peerId: PeerId
    readonly connectionId: ConnectionId
    readonly info: Info
  }
  | {
    /** We answered the peer's request with our info. */
    readonly type: 'Sent'
    readonly peerId: PeerId
    readonly connectionId: ConnectionId
  }
  | {
    /** We pushed our info to the peer. */
    readonly type: 'Pushed'
    readonly peerId: PeerId
    readonly connectionId: ConnectionId
    readonly info: Info
  }
  | {
    /** An exchange failed (unsupported, timeout, malformed or mismatched message). */
    readonly type: 'Error'
    readonly peerId: PeerId
    readonly connectionId: ConnectionId
    readonly error: Error
  }

/**
 * The identify protocol (`/ipfs/id/1.0.0` and `/ipfs/id/push/1.0.0`). Each new connection
 * is identified once; js-libp2p peers only open protocol streams to peers whose protocols they
 * learned this way.
 *
 * ```ts
 * .withBehaviour(key => combine({ identify: new identify.Behaviour(key.publicKey) }))
 * ```
 */
export class Behaviour implements NetworkBehaviour<Event, FromBehaviour, ToBehaviour> {
  /** The complete configuration. */
  readonly config: Config
  private readonly publicKey: PublicKey
  private readonly listenAddrs = new ListenAddresses()
  private readonly externalAddrs = new ExternalAddresses()
  private readonly connections = new Map<ConnectionId, PeerId>()
  private readonly actions = new ActionQueue<Event, FromBehaviour>()

  constructor (publicKey: PublicKey, options: Partial<Config> = {}) {
    this.publicKey = publicKey
    this.config = identifyConfig(options)
  }

  /** Push our info to every connection of `peers` now. */
  push (peers: Iterable<PeerId>): void {
    const wanted = new Set([...peers].map(p => p.toString()))
    for (const [connectionId, peerId] of this.connections) {
      if (wanted.has(peerId.toString())) this.actions.push({ type: 'NotifyHandler', peerId, handler: connectionId, event: { type: 'Push' } })
    }
  }

  handleEstablishedInboundConnection ({ peerId, remoteAddr }: EstablishedInboundConnection): Handler {
    return this.handler(peerId, remoteAddr)
  }

  handleEstablishedOutboundConnection ({ peerId, address }: EstablishedOutboundConnection): Handler {
    return this.handler(peerId, address.decapsulateCode(421))
  }

  onSwarmEvent (event: FromSwarm): void {
    switch (event.type) {
      case 'ConnectionEstablished':
        this.connections.set(event.connectionId, event.peerId)
        break
      case 'ConnectionClosed':
        this.connections.delete(event.connectionId)
        break
      default:
        // A change of our listen or external addresses is pushed to connected peers.
        if (this.listenAddrs.onSwarmEvent(event) || this.externalAddrs.onSwarmEvent(event)) this.addressesChanged()
    }
  }

  onConnectionHandlerEvent (peerId: PeerId, connectionId: ConnectionId, event: ToBehaviour): void {
    switch (event.type) {
      case 'Received':
        this.actions.push({ type: 'GenerateEvent', event: { type: 'Received', peerId, connectionId, info: event.info } })
        if (event.info.observedAddr != null) this.actions.push({ type: 'NewExternalAddrCandidate', address: event.info.observedAddr })
        for (const address of event.info.listenAddrs) this.actions.push({ type: 'NewExternalAddrOfPeer', peerId, address })
        break
      case 'Sent':
        this.actions.push({ type: 'GenerateEvent', event: { type: 'Sent', peerId, connectionId } })
        break
      case 'Pushed':
        this.actions.push({ type: 'GenerateEvent', event: { type: 'Pushed', peerId, connectionId, info: event.info } })
        break
      case 'Error':
        this.actions.push({ type: 'GenerateEvent', event: { type: 'Error', peerId, connectionId, error: event.error } })
        break
    }
  }

  poll (cx: Context): ToSwarm<Event, FromBehaviour> | undefined {
    return this.actions.poll(cx)
  }

  private handler (peerId: PeerId, observedAddr: Multiaddr): Handler {
    return new Handler(this.config, peerId, observedAddr, { publicKey: this.publicKey, addresses: () => this.advertised() })
  }

  /** Confirmed external addresses, then (unless hidden) listen addresses. */
  private advertised (): Multiaddr[] {
    const all = new Map<string, Multiaddr>()
    for (const address of this.externalAddrs) all.set(address.toString(), address)
    if (!this.config.hideListenAddrs) for (const address of this.listenAddrs) all.set(address.toString(), address)
    return [...all.values()]
  }

  private addressesChanged (): void {
    if (this.config.pushListenAddrUpdates) this.push(new Set(this.connections.values()))
  }
}
