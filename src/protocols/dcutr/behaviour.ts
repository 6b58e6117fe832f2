/**
 * DCUtR's behaviour, as rust-libp2p's `dcutr::Behaviour`: on every relayed connection it
 * coordinates a hole punch (see `handler.ts` for the exchange) and dials the remote's
 * addresses directly, both sides at once, so that a TCP simultaneous open goes through both
 * NATs. The side that accepted the relayed connection dials with `roleOverride: 'Listener'`,
 * so the punched connection is upgraded as client on one side and server on the other.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { ActionQueue } from '../../behaviour/action-queue.js'
import { DummyHandler } from '../../behaviour/dummy.js'
import { ExternalAddresses } from '../../behaviour/addresses.js'
import { isRelayedAddress, newConnectionId } from '../../core/ids.js'
import { MAX_CANDIDATES, config as dcutrConfig } from './config.js'
import { DcutrError } from './errors.js'
import { Handler } from './handler.js'
import type { Config } from './config.js'
import type { FromBehaviour, ToBehaviour } from './handler.js'
import type { Context } from '../../behaviour/context.js'
import type { ConnectionHandler } from '../../behaviour/connection-handler.js'
import type { EstablishedInboundConnection, EstablishedOutboundConnection, FromSwarm, NetworkBehaviour, ToSwarm } from '../../behaviour/network-behaviour.js'
import type { ConnectionId, Endpoint } from '../../core/ids.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:dcutr')

/**
 * What DCUtR reports, as rust-libp2p's `dcutr::Event`: a hole punch with `remotePeerId`
 * succeeded (`connectionId`: the direct connection) or failed for good (the relayed connection
 * stays).
 */
export interface Event {
  readonly remotePeerId: PeerId
  readonly result: { readonly ok: true, readonly connectionId: ConnectionId } | { readonly ok: false, readonly error: DcutrError }
}

/** A direct dial of ours and the relayed connection it upgrades. */
interface DirectDial {
  readonly relayed: ConnectionId
  readonly peerId: PeerId
  readonly role: Endpoint
}

/**
 * Direct Connection Upgrade through Relay (`/libp2p/dcutr`). Combine it with the relay client
 * and identify; give TCP a dial port (`withTcp({ dialPort })`) so that the addresses identify
 * observes are the ones a hole punch leaves from:
 *
 * ```ts
 * import { SwarmBuilder, combine, dcutr, identify, peerIdOf } from 'peerswarm'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp({ dialPort: 4002 })
 *   .withRelayClient()
 *   .withBehaviour((key, relayClient) => combine({
 *     relayClient,
 *     identify: new identify.Behaviour(key.publicKey),
 *     dcutr: new dcutr.Behaviour(peerIdOf(key))
 *   }))
 *   .build()
 * ```
 */
export class Behaviour implements NetworkBehaviour<Event, FromBehaviour, ToBehaviour> {
  /** The complete configuration. */
  readonly config: Config
  private readonly actions = new ActionQueue<Event, FromBehaviour>()
  /** Our candidate addresses (identify's observations), the most recent first. */
  private readonly candidates = new Map<string, Multiaddr>()
  private readonly external = new ExternalAddresses()
  /** Relayed connections, by peer. */
  private readonly relayed = new Map<string, Set<ConnectionId>>()
  /** Direct dials we asked for, by their connection id. */
  private readonly directDials = new Map<ConnectionId, DirectDial>()
  /** Attempts made as the listener of a relayed connection, by that connection. */
  private readonly attempts = new Map<ConnectionId, number>()

  constructor (private readonly localPeerId: PeerId, options: Partial<Config> = {}) {
    this.config = dcutrConfig(options)
  }

  /** Our candidates as we would send them now: observed (most recent first), then confirmed; global, not relayed, with our `/p2p`. */
  candidateAddresses (): Multiaddr[] {
    const all = new Map<string, Multiaddr>()
    for (const address of [...this.candidates.values(), ...this.external]) {
      if (isRelayedAddress(address) || !this.config.isGlobal(address)) continue
      const own = address.getComponents().at(-1)
      const withId = own?.name === 'p2p' ? address : address.encapsulate(`/p2p/${this.localPeerId.toString()}`)
      all.set(withId.toString(), withId)
    }
    return [...all.values()]
  }

  handleEstablishedInboundConnection ({ connectionId, peerId, localAddr, remoteAddr }: EstablishedInboundConnection): ConnectionHandler<FromBehaviour, ToBehaviour> {
    if (!isRelayedAddress(localAddr) && !isRelayedAddress(remoteAddr)) return new DummyHandler() as ConnectionHandler<FromBehaviour, ToBehaviour>
    this.trackRelayed(peerId, connectionId)
    const handler = this.handler('Listener', peerId)
    this.attempts.set(connectionId, 1)
    handler.onBehaviourEvent({ type: 'Connect' })
    return handler
  }

  handleEstablishedOutboundConnection ({ connectionId, peerId, address }: EstablishedOutboundConnection): ConnectionHandler<FromBehaviour, ToBehaviour> {
    if (isRelayedAddress(address)) {
      this.trackRelayed(peerId, connectionId)
      return this.handler('Dialer', peerId)
    }
    const dial = this.directDials.get(connectionId)
    if (dial != null) {
      this.directDials.delete(connectionId)
      log('direct connection %d to %p (as %s)', connectionId, peerId, dial.role)
      if (dial.role === 'Listener') this.finish(dial.relayed, peerId)
      this.actions.generate({ remotePeerId: peerId, result: { ok: true, connectionId } })
    }
    return new DummyHandler() as ConnectionHandler<FromBehaviour, ToBehaviour>
  }

  onSwarmEvent (event: FromSwarm): void {
    this.external.onSwarmEvent(event)
    switch (event.type) {
      case 'NewExternalAddrCandidate':
        this.addCandidate(event.address)
        break
      case 'DialFailure':
        this.onDialFailure(event.connectionId, event.error)
        break
      case 'ConnectionClosed': {
        const set = this.relayed.get(event.peerId.toString())
        if (set?.delete(event.connectionId) === true && set.size === 0) this.relayed.delete(event.peerId.toString())
        this.attempts.delete(event.connectionId)
        break
      }
      default:
    }
  }

  onConnectionHandlerEvent (peerId: PeerId, connectionId: ConnectionId, event: ToBehaviour): void {
    switch (event.type) {
      case 'InboundConnectNegotiated':
        // We dialed the relayed connection: dial as ourselves (Noise initiator, Yamux client).
        this.dialDirect(peerId, connectionId, event.remoteAddrs, 'Dialer')
        break
      case 'OutboundConnectNegotiated':
        // We accepted it: dial too, but be the listener of what comes out.
        this.dialDirect(peerId, connectionId, event.remoteAddrs, 'Listener')
        break
      case 'InboundConnectFailed':
      case 'OutboundConnectFailed':
        if (event.type === 'OutboundConnectFailed') this.attempts.delete(connectionId)
        this.actions.generate({ remotePeerId: peerId, result: { ok: false, error: event.error } })
        break
    }
  }

  poll (cx: Context): ToSwarm<Event, FromBehaviour> | undefined {
    return this.actions.poll(cx)
  }

  private handler (role: Endpoint, remotePeer: PeerId): Handler {
    return new Handler(this.config, { role, remotePeer, candidates: () => this.candidateAddresses() })
  }

  private trackRelayed (peerId: PeerId, connectionId: ConnectionId): void {
    const key = peerId.toString()
    let set = this.relayed.get(key)
    if (set == null) this.relayed.set(key, set = new Set())
    set.add(connectionId)
  }

  private addCandidate (address: Multiaddr): void {
    if (isRelayedAddress(address)) return
    const key = address.toString()
    // Most recent first: an address observed again moves to the front, as in rust-libp2p's LRU.
    this.candidates.delete(key)
    const rest = [...this.candidates]
    this.candidates.clear()
    this.candidates.set(key, address)
    for (const [k, v] of rest.slice(0, MAX_CANDIDATES - 1)) this.candidates.set(k, v)
  }

  private dialDirect (peerId: PeerId, relayed: ConnectionId, addresses: readonly Multiaddr[], role: Endpoint): void {
    const connectionId = newConnectionId()
    this.directDials.set(connectionId, { relayed, peerId, role })
    this.actions.push({
      type: 'Dial',
      opts: { peerId, addresses, condition: 'always', connectionId, roleOverride: role, portUse: 'reuse', extendAddressesThroughBehaviour: false }
    })
  }

  private onDialFailure (connectionId: ConnectionId, error: Error): void {
    const dial = this.directDials.get(connectionId)
    if (dial == null) return
    this.directDials.delete(connectionId)
    log('direct dial %d to %p (as %s) failed: %s', connectionId, dial.peerId, dial.role, error.message)
    // The dialer of the relayed connection only answers; the listener counts and retries.
    if (dial.role !== 'Listener') return
    const made = this.attempts.get(dial.relayed)
    if (made === undefined) return
    if (made < this.config.maxAttempts) {
      this.attempts.set(dial.relayed, made + 1)
      this.actions.notifyHandler(dial.peerId, dial.relayed, { type: 'Connect' })
      return
    }
    this.finish(dial.relayed, dial.peerId)
    const failure = new DcutrError('AttemptsExceeded', 'DialFailed', `giving up after ${made} hole-punch attempts: ${error.message}`, error)
    this.actions.generate({ remotePeerId: dial.peerId, result: { ok: false, error: failure } })
  }

  /** The hole punch through `relayed` is over: stop counting, let the handler go idle. */
  private finish (relayed: ConnectionId, peerId: PeerId): void {
    this.attempts.delete(relayed)
    if (this.relayed.get(peerId.toString())?.has(relayed) === true) this.actions.notifyHandler(peerId, relayed, { type: 'Finished' })
  }
}
