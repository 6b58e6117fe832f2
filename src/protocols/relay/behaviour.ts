/**
 * The relay (hop) side of circuit relay v2: reservations and circuits within the limits of
 * {@link Config}, as rust-libp2p's `relay::Behaviour`.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { ActionQueue } from '../../behaviour/action-queue.js'
import { ExternalAddresses } from '../../behaviour/addresses.js'
import { isRelayedAddress } from '../../core/ids.js'
import { peerIdOf } from '../../core/identity.js'
import { config as relayConfig } from './config.js'
import { Handler } from './handler.js'
import { TokenBuckets } from './rate-limiter.js'
import { CircuitIOError } from './splice.js'
import type { Config, DenialBound } from './config.js'
import type { RateLimit } from './rate-limiter.js'
import type { CircuitId, FromBehaviour, HopRequest, ToBehaviour } from './handler.js'
import type { StatusCode } from './message.js'
import type { Context } from '../../behaviour/context.js'
import type { EstablishedInboundConnection, EstablishedOutboundConnection, FromSwarm, NetworkBehaviour, ToSwarm } from '../../behaviour/network-behaviour.js'
import type { ConnectedPoint, ConnectionId } from '../../core/ids.js'
import type { PeerId, PrivateKey, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:relay')

/** What the relay reports. */
export type Event =
  | {
    /** A peer's reservation was accepted (`renewed`: it replaces one on the same connection). */
    readonly type: 'ReservationReqAccepted'
    readonly srcPeerId: PeerId
    readonly renewed: boolean
  }
  | {
    /** A peer's reservation was refused (`RESOURCE_LIMIT_EXCEEDED`, `RESERVATION_REFUSED`). */
    readonly type: 'ReservationReqDenied'
    readonly srcPeerId: PeerId
    readonly status: StatusCode
    /** The {@link Config} field whose bound refused it (`maxReservations`, `reservationRatePerIp`, …). */
    readonly bound?: DenialBound
  }
  | { /** A reservation ran out without being renewed. */ readonly type: 'ReservationTimedOut', readonly srcPeerId: PeerId }
  | { /** A reservation ended with its connection. */ readonly type: 'ReservationClosed', readonly srcPeerId: PeerId }
  | { /** A circuit from `srcPeerId` to `dstPeerId` is relayed. */ readonly type: 'CircuitReqAccepted', readonly srcPeerId: PeerId, readonly dstPeerId: PeerId }
  | {
    /** A circuit was refused (`NO_RESERVATION`, `RESOURCE_LIMIT_EXCEEDED`, `CONNECTION_FAILED`, …). */
    readonly type: 'CircuitReqDenied'
    readonly srcPeerId: PeerId
    readonly dstPeerId: PeerId
    readonly status: StatusCode
    /** The {@link Config} field whose bound refused it, when a bound did (not for `NO_RESERVATION`). */
    readonly bound?: DenialBound
  }
  | {
    /**
     * A circuit ended: `error` undefined when both sides closed it, else a `CircuitLimitError`
     * (its duration or data limit) or a `CircuitIOError` (a side reset or its connection closed).
     */
    readonly type: 'CircuitClosed'
    readonly srcPeerId: PeerId
    readonly dstPeerId: PeerId
    readonly error?: Error
  }

/** A rate limiter of the config, with its buckets and what it is keyed by. */
interface Limiter {
  readonly bound: DenialBound
  readonly by: 'peer' | 'ip'
  readonly buckets: TokenBuckets
}

interface ConnectionState {
  readonly peerId: PeerId
  readonly key: string
  /** The remote's IP address, for the per-IP limit (none for relayed or DNS-only addresses). */
  readonly ip?: string
  reservation: boolean
}

interface Circuit {
  readonly srcPeerId: PeerId
  readonly srcConnectionId: ConnectionId
  readonly dstPeerId: PeerId
  readonly dstConnectionId: ConnectionId
  accepted: boolean
  /** The destination's stop stream, until the source's handler has it. */
  dstStream?: Stream
}

/** Counts by key. */
class Counts {
  private readonly counts = new Map<string, number>()
  get (key: string | undefined): number {
    return key == null ? 0 : this.counts.get(key) ?? 0
  }

  add (key: string | undefined, delta: number): void {
    if (key == null) return
    const count = this.get(key) + delta
    if (count <= 0) this.counts.delete(key)
    else this.counts.set(key, count)
  }
}

/**
 * A circuit relay v2 relay, as rust-libp2p's `relay::Behaviour`: peers reserve a slot
 * (`RESERVE` on the hop protocol) and are then reachable through us at
 * `<our address>/p2p/<us>/p2p-circuit/p2p/<them>`; a peer that dials such an address asks us
 * for a circuit (`CONNECT`), we open a stop stream to the destination over its connection and
 * relay between the two streams, each circuit within its time and byte limits. Reservation
 * and circuit requests are also rate-limited per peer and per IP address (token buckets with
 * rust-libp2p's defaults; see {@link Config}); a denial names the bound in its event.
 *
 * Reservations carry our confirmed external addresses (`swarm.addExternalAddress`, or AutoNAT):
 * a relay that has none hands out reservations without addresses, which rust-libp2p clients
 * refuse (ours and js-libp2p's use the address they reached us at). Pass our key rather than
 * our peer id to sign a voucher into each reservation, as the spec asks.
 *
 * ```ts
 * import { SwarmBuilder, combine, identify, relay } from 'peerswarm'
 * import { multiaddr } from '@multiformats/multiaddr'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(key => combine({ relay: new relay.Behaviour(key), identify: new identify.Behaviour(key.publicKey) }))
 *   .build()
 * swarm.listenOn('/ip4/0.0.0.0/tcp/4001')
 * // The address peers reach us at (here a documentation address); AutoNAT can confirm it too.
 * swarm.addExternalAddress(multiaddr('/ip4/198.51.100.7/tcp/4001'))
 * ```
 */
export class Behaviour implements NetworkBehaviour<Event, FromBehaviour, ToBehaviour> {
  /** The complete configuration. */
  readonly config: Config
  /** Our peer id. */
  readonly localPeerId: PeerId
  private readonly signingKey?: PrivateKey
  private readonly actions = new ActionQueue<Event, FromBehaviour>()
  private readonly external = new ExternalAddresses()
  private readonly connections = new Map<ConnectionId, ConnectionState>()
  private reservationCount = 0
  private readonly reservationsPerPeer = new Counts()
  private readonly reservationsPerIp = new Counts()
  private readonly circuits = new Map<CircuitId, Circuit>()
  private readonly circuitsPerPeer = new Counts()
  private lastCircuitId = 0
  private readonly reservationLimiters: readonly Limiter[]
  private readonly circuitLimiters: readonly Limiter[]
  /** Requests refused per bound, logged at powers of two (a flood would log every one). */
  private readonly denials = new Map<DenialBound, number>()

  /**
   * `local`: our key (reservations then carry a signed voucher) or our peer id (they carry
   * none, as rust-libp2p's). Throws `ConfigError` for an invalid option.
   */
  constructor (local: PeerId | PrivateKey, options: Partial<Config> = {}) {
    this.config = relayConfig(options)
    const limiters = (pairs: Array<[DenialBound, 'peer' | 'ip', RateLimit | null]>): Limiter[] =>
      pairs.flatMap(([bound, by, rate]) => rate == null ? [] : [{ bound, by, buckets: new TokenBuckets(rate) }])
    this.reservationLimiters = limiters([['reservationRatePerPeer', 'peer', this.config.reservationRatePerPeer], ['reservationRatePerIp', 'ip', this.config.reservationRatePerIp]])
    this.circuitLimiters = limiters([['circuitSrcRatePerPeer', 'peer', this.config.circuitSrcRatePerPeer], ['circuitSrcRatePerIp', 'ip', this.config.circuitSrcRatePerIp]])
    if (isPrivateKey(local)) {
      this.signingKey = local
      this.localPeerId = peerIdOf(local)
    } else {
      this.localPeerId = local
    }
  }

  /** Reservations held now. */
  get numReservations (): number {
    return this.reservationCount
  }

  /** Circuits being set up or relayed now. */
  get numCircuits (): number {
    return this.circuits.size
  }

  /** Token buckets the rate limiters hold now (keys with recent requests), all limiters together. */
  get numRateLimitBuckets (): number {
    return [...this.reservationLimiters, ...this.circuitLimiters].reduce((sum, limiter) => sum + limiter.buckets.size, 0)
  }

  handleEstablishedInboundConnection (connection: EstablishedInboundConnection): Handler {
    return this.handler(connection.peerId, isRelayedAddress(connection.localAddr) || isRelayedAddress(connection.remoteAddr))
  }

  handleEstablishedOutboundConnection (connection: EstablishedOutboundConnection): Handler {
    return this.handler(connection.peerId, isRelayedAddress(connection.address))
  }

  onSwarmEvent (event: FromSwarm): void {
    this.external.onSwarmEvent(event)
    if (event.type === 'ConnectionEstablished') {
      if (event.endpoint.limited === true) return
      this.connections.set(event.connectionId, { peerId: event.peerId, key: event.peerId.toString(), ip: ipOf(event.endpoint), reservation: false })
    } else if (event.type === 'ConnectionClosed') {
      this.onConnectionClosed(event.connectionId)
    }
  }

  onConnectionHandlerEvent (peerId: PeerId, connectionId: ConnectionId, event: ToBehaviour): void {
    const connection = this.connections.get(connectionId)
    switch (event.type) {
      case 'ReservationReqReceived':
        this.onReservationRequest(peerId, connectionId, connection, event.request)
        break
      case 'ReservationReqAccepted':
        this.actions.generate({ type: 'ReservationReqAccepted', srcPeerId: peerId, renewed: event.renewed })
        break
      case 'ReservationReqAcceptFailed':
        log('accepting the reservation of %p failed: %s', peerId, event.error.message)
        if (!event.renewed) this.setReservation(connection, false)
        break
      case 'ReservationReqDenied':
        this.actions.generate({ type: 'ReservationReqDenied', srcPeerId: peerId, status: event.status, ...(event.bound == null ? {} : { bound: event.bound }) })
        break
      case 'ReservationTimedOut':
        this.setReservation(connection, false)
        this.actions.generate({ type: 'ReservationTimedOut', srcPeerId: peerId })
        break
      case 'CircuitReqReceived':
        this.onCircuitRequest(peerId, connectionId, event.request, event.dstPeerId)
        break
      case 'CircuitReqDenied':
        if (event.circuitId != null) this.removeCircuit(event.circuitId)
        this.actions.generate({ type: 'CircuitReqDenied', srcPeerId: peerId, dstPeerId: event.dstPeerId, status: event.status, ...(event.bound == null ? {} : { bound: event.bound }) })
        break
      case 'OutboundConnectNegotiated': {
        const circuit = this.circuits.get(event.circuitId)
        if (circuit == null) {
          // Its source went away meanwhile.
          event.dstStream.abort(new Error('the circuit\'s source is gone'))
          return
        }
        circuit.dstStream = event.dstStream
        this.actions.notifyHandler(event.srcPeerId, event.srcConnectionId,
          { type: 'AcceptAndDriveCircuit', circuitId: event.circuitId, dstPeerId: peerId, request: event.request, dstStream: event.dstStream })
        break
      }
      case 'OutboundConnectNegotiationFailed':
        log('the stop stream to %p failed: %s', peerId, event.error.message)
        if (!this.circuits.has(event.circuitId)) return
        this.actions.notifyHandler(event.srcPeerId, event.srcConnectionId,
          { type: 'DenyCircuitReq', circuitId: event.circuitId, request: event.request, status: event.status })
        break
      case 'CircuitReqAccepted': {
        const circuit = this.circuits.get(event.circuitId)
        if (circuit == null) return
        circuit.accepted = true
        circuit.dstStream = undefined
        this.actions.generate({ type: 'CircuitReqAccepted', srcPeerId: peerId, dstPeerId: event.dstPeerId })
        break
      }
      case 'CircuitReqAcceptFailed':
        log('accepting the circuit from %p to %p failed: %s', peerId, event.dstPeerId, event.error.message)
        this.removeCircuit(event.circuitId)
        break
      case 'CircuitClosed':
        if (this.removeCircuit(event.circuitId) != null) {
          this.actions.generate({ type: 'CircuitClosed', srcPeerId: peerId, dstPeerId: event.dstPeerId, error: event.error })
        }
        break
    }
  }

  poll (cx: Context): ToSwarm<Event, FromBehaviour> | undefined {
    return this.actions.poll(cx)
  }

  private handler (peerId: PeerId, relayed: boolean): Handler {
    return new Handler(this.config, { remotePeerId: peerId, relayed, signingKey: this.signingKey, localPeerId: this.localPeerId })
  }

  private onReservationRequest (peerId: PeerId, connectionId: ConnectionId, connection: ConnectionState | undefined, request: HopRequest): void {
    const renewed = connection?.reservation === true
    let status: StatusCode | undefined
    let bound: DenialBound | undefined
    if (connection == null) {
      status = 'PERMISSION_DENIED'
    } else {
      if (!renewed) {
        // A renewal keeps the slot it holds; only new reservations count against the counts.
        if (this.reservationsPerPeer.get(connection.key) >= this.config.maxReservationsPerPeer) bound = 'maxReservationsPerPeer'
        else if (connection.ip != null && this.reservationsPerIp.get(connection.ip) >= this.config.maxReservationsPerIp) bound = 'maxReservationsPerIp'
        else if (this.reservationCount >= this.config.maxReservations) bound = 'maxReservations'
      }
      // Every request takes a token, renewals too (as rust-libp2p's), unless a count refused it.
      bound ??= this.takeTokens(this.reservationLimiters, connection.key, connection.ip)
      if (bound != null) status = bound === 'maxReservations' ? 'RESERVATION_REFUSED' : 'RESOURCE_LIMIT_EXCEEDED'
    }
    if (status != null) {
      if (bound != null) this.logDenial(bound, peerId)
      this.actions.notifyHandler(peerId, connectionId, { type: 'DenyReservationReq', request, status, ...(bound == null ? {} : { bound }) })
      return
    }
    this.setReservation(connection, true)
    this.actions.notifyHandler(peerId, connectionId, { type: 'AcceptReservationReq', request, addrs: this.reservationAddresses() })
  }

  private onCircuitRequest (srcPeerId: PeerId, srcConnectionId: ConnectionId, request: HopRequest, dstPeerId: PeerId): void {
    const deny = (status: StatusCode, bound?: DenialBound): void => {
      if (bound != null) this.logDenial(bound, srcPeerId)
      this.actions.notifyHandler(srcPeerId, srcConnectionId, { type: 'DenyCircuitReq', request, status, ...(bound == null ? {} : { bound }) })
    }
    const bound: DenialBound | undefined = this.circuits.size >= this.config.maxCircuits
      ? 'maxCircuits'
      : this.circuitsPerPeer.get(srcPeerId.toString()) >= this.config.maxCircuitsPerPeer ||
        this.circuitsPerPeer.get(dstPeerId.toString()) >= this.config.maxCircuitsPerPeer
        ? 'maxCircuitsPerPeer'
        : this.takeTokens(this.circuitLimiters, srcPeerId.toString(), this.connections.get(srcConnectionId)?.ip)
    if (bound != null) {
      deny('RESOURCE_LIMIT_EXCEEDED', bound)
      return
    }
    const dstKey = dstPeerId.toString()
    let dstConnectionId: ConnectionId | undefined
    for (const [id, connection] of this.connections) {
      if (connection.reservation && connection.key === dstKey) {
        dstConnectionId = id
        break
      }
    }
    if (dstConnectionId == null) {
      deny('NO_RESERVATION')
      return
    }
    const circuitId = ++this.lastCircuitId as CircuitId
    this.circuits.set(circuitId, { srcPeerId, srcConnectionId, dstPeerId, dstConnectionId, accepted: false })
    this.circuitsPerPeer.add(srcPeerId.toString(), 1)
    this.circuitsPerPeer.add(dstKey, 1)
    this.actions.notifyHandler(dstPeerId, dstConnectionId, { type: 'NegotiateOutboundConnect', circuitId, request, srcPeerId, srcConnectionId })
  }

  private onConnectionClosed (connectionId: ConnectionId): void {
    const connection = this.connections.get(connectionId)
    if (connection != null) {
      if (connection.reservation) {
        this.setReservation(connection, false)
        this.actions.generate({ type: 'ReservationClosed', srcPeerId: connection.peerId })
      }
      this.connections.delete(connectionId)
    }
    for (const [id, circuit] of this.circuits) {
      if (circuit.srcConnectionId !== connectionId && circuit.dstConnectionId !== connectionId) continue
      const side = circuit.srcConnectionId === connectionId ? 'source' : 'destination'
      const error = new CircuitIOError(`the connection to the circuit's ${side} closed`)
      circuit.dstStream?.abort(error)
      this.removeCircuit(id)
      if (circuit.accepted) this.actions.generate({ type: 'CircuitClosed', srcPeerId: circuit.srcPeerId, dstPeerId: circuit.dstPeerId, error })
    }
  }

  private logDenial (bound: DenialBound, peerId: PeerId): void {
    const count = (this.denials.get(bound) ?? 0) + 1
    this.denials.set(bound, count)
    if ((count & (count - 1)) === 0) log('%s reached: %d request(s) refused so far, the latest from %p', bound, count, peerId)
  }

  /**
   * Take a token from each limiter (by peer key or by IP; a connection without an IP passes the
   * per-IP ones), all or none: returns the bound of the first limiter without one, and then
   * takes nothing.
   */
  private takeTokens (limiters: readonly Limiter[], peerKey: string, ip: string | undefined): DenialBound | undefined {
    const now = Date.now()
    const keyed = limiters.flatMap(limiter => {
      const key = limiter.by === 'peer' ? peerKey : ip
      return key == null ? [] : [{ limiter, key }]
    })
    const empty = keyed.find(({ limiter, key }) => !limiter.buckets.has(key, now))
    if (empty != null) return empty.limiter.bound
    for (const { limiter, key } of keyed) limiter.buckets.take(key, now)
    return undefined
  }

  private setReservation (connection: ConnectionState | undefined, active: boolean): void {
    if (connection == null || connection.reservation === active) return
    connection.reservation = active
    const delta = active ? 1 : -1
    this.reservationCount += delta
    this.reservationsPerPeer.add(connection.key, delta)
    this.reservationsPerIp.add(connection.ip, delta)
  }

  private removeCircuit (id: CircuitId): Circuit | undefined {
    const circuit = this.circuits.get(id)
    if (circuit == null) return undefined
    this.circuits.delete(id)
    this.circuitsPerPeer.add(circuit.srcPeerId.toString(), -1)
    this.circuitsPerPeer.add(circuit.dstPeerId.toString(), -1)
    return circuit
  }

  /** Our confirmed external addresses, each with `/p2p/<us>` (rust-libp2p's reservation addresses). */
  private reservationAddresses (): Multiaddr[] {
    const suffix = `/p2p/${this.localPeerId.toString()}`
    return [...this.external].map(address => address.getComponents().some(c => c.name === 'p2p') ? address : address.encapsulate(suffix))
  }
}

/** The remote's IP address, from the address it connected from or that we dialed. */
function ipOf (endpoint: ConnectedPoint): string | undefined {
  const address = endpoint.type === 'Dialer' ? endpoint.address : endpoint.sendBackAddr
  return address.getComponents().find(c => c.name === 'ip4' || c.name === 'ip6')?.value
}

function isPrivateKey (value: PeerId | PrivateKey): value is PrivateKey {
  return 'sign' in value && 'publicKey' in value
}
