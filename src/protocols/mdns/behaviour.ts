/**
 * mDNS discovery (`_p2p._udp.local`): finds peers on the local network and hands their
 * addresses to the swarm.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { ActionQueue } from '../../behaviour/action-queue.js'
import { ListenAddresses } from '../../behaviour/addresses.js'
import { DummyHandler } from '../../behaviour/dummy.js'
import { toError } from '../../core/errors.js'
import { MAX_TIMER_DELAY } from '../../core/timers.js'
import { config as mdnsConfig, randomPeerName } from './config.js'
import { buildQuery, buildResponses, buildServiceDiscoveryResponse, MalformedPacketError, parsePacket } from './packet.js'
import { DiscoveredPeers } from './peers.js'
import { dgramSocketFactory, MulticastSocketError, selectInterfaces, UnknownInterfaceError } from './socket.js'
import type { Config } from './config.js'
import type { MdnsPacket } from './packet.js'
import type { DiscoveredPeer } from './peers.js'
import type { MulticastInterface, MulticastSocket } from './socket.js'
import type { Context } from '../../behaviour/context.js'
import type { FromSwarm, NetworkBehaviour, PendingOutboundConnection, ToSwarm } from '../../behaviour/network-behaviour.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:mdns')

/** Responses per interface are at least this far apart (RFC 6762 §6); later ones wait. */
const MIN_RESPONSE_INTERVAL = 1000

/** Random delay added to every query interval, so that peers started together do not stay in step. */
const MAX_JITTER = 100

/**
 * Actions waiting for the swarm to poll them. Beyond this, announcements are not recorded until
 * the application catches up (they are repeated, so they will be heard again): a slow
 * application and a busy network cannot grow memory without bound.
 */
const MAX_PENDING_ACTIONS = 4096

/** How many of our recent query ids are remembered, to recognise our own queries. */
const OWN_QUERIES = 16

/** What mDNS reports. */
export type Event =
  | {
    /** Addresses heard for the first time; each is also given to the swarm (`NewExternalAddrOfPeer`). */
    readonly type: 'Discovered'
    readonly peers: readonly DiscoveredPeer[]
  }
  | {
    /** Addresses whose records expired without being refreshed, or that their peer withdrew. */
    readonly type: 'Expired'
    readonly peers: readonly DiscoveredPeer[]
  }
  | {
    /** A socket could not be opened or failed, or the configured interface is missing. Reported once per cause. */
    readonly type: 'Error'
    readonly error: MulticastSocketError | UnknownInterfaceError
  }

interface InterfaceState {
  readonly iface: MulticastInterface
  socket?: MulticastSocket
  readonly opening: Promise<void>
  lastResponseAt: number
  /** Responses owed, sent when `MIN_RESPONSE_INTERVAL` allows. */
  owed: { announce: boolean, meta: boolean }
  responseTimer?: ReturnType<typeof setTimeout>
}

/**
 * The mDNS behaviour, interoperable with go-, rust- and js-libp2p's.
 *
 * ```ts
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(key => combine({
 *     mdns: new mdns.Behaviour(peerIdOf(key)),
 *     floodsub: new floodsub.Behaviour({ authenticity: floodsub.MessageAuthenticity.signed(key) })
 *   }))
 *   .build()
 * ```
 *
 * It queries at once, then after `probeInterval`, doubling up to `queryInterval` (or at once
 * to `queryInterval` when a peer answers); every query goes with our own announcement, and
 * other peers' queries are answered, at most once a second per interface. Discovered addresses
 * are reported, offered for dials to the peer (`swarm.dial(peerId)` works), and expire with
 * their records. Its connection handler speaks no protocol.
 */
export class Behaviour implements NetworkBehaviour<Event, never, never> {
  /** The complete configuration. */
  readonly config: Config
  /** Our instance name in announcements. */
  readonly peerName: string
  private readonly localPeerId: PeerId
  private readonly discovered: DiscoveredPeers
  private readonly listenAddresses = new ListenAddresses()
  private readonly interfaces = new Map<string, InterfaceState>()
  private readonly reportedErrors = new Set<string>()
  private readonly ownQueries: number[] = []
  private readonly actions = new ActionQueue<Event, never>()
  private probe: number
  private queryTimer?: ReturnType<typeof setTimeout>
  private expiryTimer?: ReturnType<typeof setTimeout>
  private expiryAt = Infinity
  private malformed = 0
  private closed = false

  constructor (localPeerId: PeerId, options: Partial<Config> = {}) {
    this.config = mdnsConfig(options)
    this.localPeerId = localPeerId
    this.peerName = this.config.peerName ?? randomPeerName()
    this.discovered = new DiscoveredPeers(this.config.maxPeers, this.config.maxAddressesPerPeer)
    this.probe = this.config.probeInterval
    this.query()
  }

  /** Every discovered (peer, address) pair whose record has not expired. */
  discoveredNodes (): DiscoveredPeer[] {
    return [...this.discovered.nodes()].map(({ peerId, address }) => ({ peerId, address }))
  }

  /** The interfaces mDNS currently has open sockets on. */
  activeInterfaces (): MulticastInterface[] {
    return [...this.interfaces.values()].filter(state => state.socket !== undefined).map(state => state.iface)
  }

  handleEstablishedInboundConnection (): DummyHandler {
    return new DummyHandler()
  }

  handleEstablishedOutboundConnection (): DummyHandler {
    return new DummyHandler()
  }

  handlePendingOutboundConnection ({ peerId }: PendingOutboundConnection): readonly Multiaddr[] {
    return peerId === undefined ? [] : this.discovered.addresses(peerId)
  }

  onSwarmEvent (event: FromSwarm): void {
    // A new listen address is announced at once; an expired one leaves the next announcement.
    if (this.listenAddresses.onSwarmEvent(event) && event.type === 'NewListenAddr') this.owe({ announce: true })
  }

  onConnectionHandlerEvent (): void {}

  poll (cx: Context): ToSwarm<Event, never> | undefined {
    return this.actions.poll(cx)
  }

  /**
   * Stop querying, say goodbye (records with TTL 0) where we announced, and close every socket.
   *
   * @group Called by the swarm
   */
  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.queryTimer)
    clearTimeout(this.expiryTimer)
    const states = [...this.interfaces.values()]
    this.interfaces.clear()
    await Promise.all(states.map(async (state) => {
      clearTimeout(state.responseTimer)
      await state.opening
      if (state.socket === undefined) return
      if (this.config.respondToQueries) {
        for (const packet of this.announcements(state.iface, 0)) await state.socket.send(packet).catch(() => {})
      }
      await state.socket.close()
    }))
    this.discovered.clear()
  }

  // ---- queries --------------------------------------------------------------------------

  /** Send a query (and our announcement) on every interface, then schedule the next one. */
  private query (): void {
    if (this.closed) return
    this.refreshInterfaces()
    for (const state of this.interfaces.values()) this.sendQuery(state)
    const delay = this.probe + Math.random() * MAX_JITTER
    this.probe = Math.min(this.probe * 2, this.config.queryInterval)
    this.scheduleQuery(delay)
  }

  private scheduleQuery (delay: number): void {
    clearTimeout(this.queryTimer)
    this.queryTimer = setTimeout(() => { this.query() }, Math.min(MAX_TIMER_DELAY, delay))
  }

  private sendQuery (state: InterfaceState): void {
    if (state.socket === undefined) return
    const id = 1 + Math.floor(Math.random() * 0xfffe)
    this.ownQueries.push(id)
    if (this.ownQueries.length > OWN_QUERIES) this.ownQueries.shift()
    this.send(state, buildQuery(this.config.serviceName, id))
    // The spec asks a peer to answer its own query: announce ourselves with it.
    if (!this.config.respondToQueries) return
    state.owed.announce = true
    this.flushResponses(state)
  }

  // ---- interfaces and sockets -------------------------------------------------------------

  private refreshInterfaces (): void {
    let wanted: MulticastInterface[]
    try {
      wanted = selectInterfaces(this.config, this.config.interface)
    } catch (err) {
      if (err instanceof UnknownInterfaceError) this.reportError(err)
      else log.error('cannot list network interfaces: %s', toError(err).message)
      return
    }
    const keys = new Set(wanted.map(interfaceKey))
    for (const [key, state] of this.interfaces) {
      if (keys.has(key)) continue
      log('interface %s (IPv%d) is gone', state.iface.name, state.iface.family)
      this.interfaces.delete(key)
      clearTimeout(state.responseTimer)
      void state.opening.then(async () => { await state.socket?.close() })
    }
    for (const iface of wanted) {
      const key = interfaceKey(iface)
      if (!this.interfaces.has(key)) this.open(key, iface)
    }
  }

  private open (key: string, iface: MulticastInterface): void {
    const factory = this.config.socketFactory ?? dgramSocketFactory
    const state: InterfaceState = {
      iface,
      lastResponseAt: -Infinity,
      owed: { announce: false, meta: false },
      // Through a promise, so that a factory that throws at once fails like one that rejects.
      opening: Promise.resolve().then(async () => factory({
        iface,
        port: this.config.port,
        onPacket: (packet) => { this.onPacket(state, packet) },
        onError: (error) => { this.reportError(error instanceof MulticastSocketError ? error : new MulticastSocketError(iface, error.message, { cause: error })) }
      })).then((socket) => {
        if (this.closed || this.interfaces.get(key) !== state) {
          void socket.close()
          return
        }
        log('listening on %s (IPv%d %s)', iface.name, iface.family, iface.address)
        state.socket = socket
        this.reportedErrors.delete(key)
        this.sendQuery(state)
      }, (err: unknown) => {
        this.interfaces.delete(key)
        if (!this.closed) this.reportError(err instanceof MulticastSocketError ? err : new MulticastSocketError(iface, 'cannot open', { cause: err }), key)
      })
    }
    this.interfaces.set(key, state)
  }

  private send (state: InterfaceState, packet: Uint8Array): void {
    state.socket?.send(packet).catch((err: unknown) => { log.error('send on %s failed: %s', state.iface.name, toError(err).message) })
  }

  private reportError (error: MulticastSocketError | UnknownInterfaceError, key = error.message): void {
    if (this.reportedErrors.has(key)) return
    this.reportedErrors.add(key)
    log.error('%s', error.message)
    this.emit({ type: 'GenerateEvent', event: { type: 'Error', error } })
  }

  // ---- received packets -------------------------------------------------------------------

  /** Called from the socket's callback: must never throw, whatever the packet. */
  private onPacket (state: InterfaceState, bytes: Uint8Array): void {
    if (this.closed) return
    try {
      this.handlePacket(state, parsePacket(bytes, this.config.serviceName, this.config.maxAddressesPerPeer))
    } catch (err) {
      if (err instanceof MalformedPacketError) {
        // Counted, logged sparingly: a noisy network must not become a noisy log.
        if ((++this.malformed & (this.malformed - 1)) === 0) log('ignored %d malformed packets; last: %s', this.malformed, err.message)
      } else {
        log.error('a packet from the network could not be handled: %s', toError(err).message)
      }
    }
  }

  private handlePacket (state: InterfaceState, packet: MdnsPacket): void {
    if (packet.type === 'Unrelated') return
    if (packet.type === 'Query') {
      if (this.ownQueries.includes(packet.id)) return
      if (packet.asksService && this.config.respondToQueries) state.owed.announce = true
      if (packet.asksMeta && this.config.respondToQueries) state.owed.meta = true
      this.flushResponses(state)
      return
    }
    this.onResponse(packet.peers, packet.invalidAddresses)
  }

  private onResponse (peers: Extract<MdnsPacket, { type: 'Response' }>['peers'], invalidAddresses: number): void {
    if (invalidAddresses > 0) log.trace('ignored %d dnsaddr records that do not parse', invalidAddresses)
    if (this.actions.length >= MAX_PENDING_ACTIONS) {
      log('ignoring a response: %d discoveries wait for the application', this.actions.length)
      return
    }
    const now = Date.now()
    const discovered: DiscoveredPeer[] = []
    const expired: DiscoveredPeer[] = []
    for (const peer of peers) {
      if (peer.peerId.equals(this.localPeerId)) continue
      const update = this.discovered.update(peer, now)
      if (update.full) log('ignoring %p: %d peers known already', peer.peerId, this.config.maxPeers)
      discovered.push(...update.discovered)
      expired.push(...update.expired)
    }
    if (discovered.length > 0) {
      log('discovered %s', discovered.map(d => `${d.peerId.toString()} at ${d.address.toString()}`).join(', '))
      // A peer answered: probing is over, the next query comes after the full interval.
      if (this.probe < this.config.queryInterval) {
        this.probe = this.config.queryInterval
        this.scheduleQuery(this.probe + Math.random() * MAX_JITTER)
      }
      for (const { peerId, address } of discovered) this.actions.push({ type: 'NewExternalAddrOfPeer', peerId, address })
      this.emit({ type: 'GenerateEvent', event: { type: 'Discovered', peers: discovered } })
    }
    if (expired.length > 0) this.emit({ type: 'GenerateEvent', event: { type: 'Expired', peers: expired } })
    this.scheduleExpiry()
  }

  // ---- responses --------------------------------------------------------------------------

  private owe (owed: { announce?: boolean }): void {
    if (!this.config.respondToQueries || this.closed) return
    for (const state of this.interfaces.values()) {
      state.owed.announce ||= owed.announce === true
      this.flushResponses(state)
    }
  }

  /** Send what `state` owes now, or as soon as `MIN_RESPONSE_INTERVAL` allows. */
  private flushResponses (state: InterfaceState): void {
    if (state.socket === undefined || state.responseTimer !== undefined) return
    if (!state.owed.announce && !state.owed.meta) return
    const wait = state.lastResponseAt + MIN_RESPONSE_INTERVAL - Date.now()
    if (wait > 0) {
      state.responseTimer = setTimeout(() => {
        state.responseTimer = undefined
        if (this.interfaces.get(interfaceKey(state.iface)) === state) this.flushResponses(state)
      }, wait)
      return
    }
    const ttl = Math.floor(this.config.ttl / 1000)
    const packets = state.owed.announce ? this.announcements(state.iface, ttl) : []
    if (state.owed.meta) packets.push(buildServiceDiscoveryResponse(this.config.serviceName, ttl))
    state.owed = { announce: false, meta: false }
    if (packets.length === 0) return
    state.lastResponseAt = Date.now()
    for (const packet of packets) this.send(state, packet)
  }

  private announcements (iface: MulticastInterface, ttl: number): Uint8Array[] {
    return buildResponses({
      serviceName: this.config.serviceName,
      peerName: this.peerName,
      peerId: this.localPeerId,
      addresses: [...this.listenAddresses],
      ttl,
      hostAddress: { family: iface.family, address: iface.address }
    })
  }

  // ---- expiry -----------------------------------------------------------------------------

  private scheduleExpiry (): void {
    const at = this.discovered.nextExpiry()
    if (at === undefined || at >= this.expiryAt || this.closed) return
    clearTimeout(this.expiryTimer)
    this.expiryAt = at
    this.expiryTimer = setTimeout(() => {
      this.expiryAt = Infinity
      const expired = this.discovered.expire(Date.now())
      if (expired.length > 0) {
        log('expired %s', expired.map(d => `${d.peerId.toString()} at ${d.address.toString()}`).join(', '))
        this.emit({ type: 'GenerateEvent', event: { type: 'Expired', peers: expired } })
      }
      this.scheduleExpiry()
    }, Math.min(MAX_TIMER_DELAY, Math.max(0, at - Date.now())))
  }

  private emit (action: ToSwarm<Event, never>): void {
    this.actions.push(action)
  }
}

/** An interface whose address changes gets a new socket (its group membership names the address). */
function interfaceKey (iface: MulticastInterface): string {
  return `${iface.family}/${iface.name}/${iface.address}`
}
