/**
 * The `Swarm`: owns listeners, dials, the connection pool and the behaviour, and turns all of
 * it into one stream of `SwarmEvent`s for the application.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { multiaddr as toMultiaddr } from '@multiformats/multiaddr'
import { ConnectionDenied, PeerswarmError, SwarmClosedError, describe, toError } from '../core/errors.js'
import { toDialOpts } from './dial-target.js'
import { DialDeniedError, DialPeerConditionFalseError, InvalidDialTargetError, InvalidListenAddressError, ListenDeniedError, LocalPeerIdError, NoAddressesError } from '../core/connection-errors.js'
import { isRelayedAddress, newConnectionId, newListenerId } from '../core/ids.js'
import { Pool } from './pool.js'
import type { SwarmConfig } from './config.js'
import type { DialOpts, DialTarget, PeerCondition } from '../core/dial-opts.js'
import type { DialError } from '../core/connection-errors.js'
import type { SwarmEvent } from './events.js'
import type { ConnectedPoint, ConnectionId, ListenerId } from '../core/ids.js'
import type { ConnectionCounters, PoolEvent } from './pool.js'
import { abortUpgraded } from '../upgrade/upgrader.js'
import { wasPortReused } from '../transport/transport.js'
import type { SwarmUpgrader } from '../upgrade/upgrader.js'
import type { Context } from '../behaviour/context.js'
import type { AnyBehaviour, EventOf, FromSwarm, ToSwarm } from '../behaviour/network-behaviour.js'
import type { Listener, MultiaddrConnection, PeerId, Transport, Upgrader } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:swarm')

/**
 * No configured transport can listen on (or dial) the address.
 *
 * @group Errors
 */
export class UnsupportedAddressError extends PeerswarmError {
  constructor (readonly address: Multiaddr) {
    super('ERR_UNSUPPORTED_ADDRESS', `no transport supports ${address.toString()}`)
  }
}

/**
 * A summary of the swarm's connections.
 *
 * @group The swarm
 */
export interface NetworkInfo {
  /** Peers with at least one established connection. */
  readonly numPeers: number
  readonly connectionCounters: ConnectionCounters
}

/**
 * One established connection, as {@link Swarm.connections} lists it.
 *
 * @group The swarm
 */
export interface ConnectionInfo {
  readonly id: ConnectionId
  readonly peerId: PeerId
  /** Who dialed, and the addresses involved. */
  readonly endpoint: ConnectedPoint
  /** The remote's address as the transport reports it. */
  readonly remoteAddress: Multiaddr
  /** The transport, read from the address: `'tcp'`, `'websockets'`, `'memory'`, … */
  readonly transport: string
  /** The negotiated security protocol, e.g. `/noise`. */
  readonly encryption: string
  /** The negotiated muxer, e.g. `/yamux/1.0.0`. */
  readonly multiplexer: string
  /** When it was established, in milliseconds since the epoch. */
  readonly establishedAt: number
  /** Streams open on it (negotiated or negotiating). */
  readonly streams: number
}

/**
 * The transport an address belongs to: `p2p-circuit` for a relayed one, `webrtc` for a direct
 * WebRTC one signalled through a relay, else the outermost of `ws`/`wss`, `memory`,
 * `webrtc-direct`, `webrtc`, `webtransport`, `quic-v1`, `tcp`, `udp`; else its first protocol.
 *
 * @group The swarm
 */
export function transportOf (address: Multiaddr): string {
  const names = address.getComponents().map(component => component.name)
  // `…/p2p-circuit/webrtc/…`: a direct WebRTC connection that the relay only signalled.
  if (names.includes('p2p-circuit')) return isRelayedAddress(address) ? 'p2p-circuit' : 'webrtc'
  if (names.includes('ws') || names.includes('wss') || names.includes('tls')) return names.includes('wss') || names.includes('tls') ? 'websockets (tls)' : 'websockets'
  for (const name of ['memory', 'webrtc-direct', 'webrtc', 'webtransport', 'quic-v1', 'tcp', 'udp']) if (names.includes(name)) return name
  return names[0] ?? 'unknown'
}

/**
 * Options of `selectNextSome`.
 *
 * @group The swarm
 */
export interface SelectOptions {
  /** Abort the wait (rejects with the signal's reason); no event is lost. */
  readonly signal?: AbortSignal
}

/** @internal What `Swarm`'s constructor needs; build swarms with `SwarmBuilder`. */
export interface SwarmInit<B> {
  readonly localPeerId: PeerId
  readonly behaviour: B
  readonly transports: readonly Transport[]
  readonly upgrader: SwarmUpgrader
  readonly config: SwarmConfig
}

interface ListenerState {
  readonly id: ListenerId
  readonly listener: Listener
  readonly transport: Transport
  addresses: Multiaddr[]
  closed: boolean
}

/** Work from listeners, taken last in each turn of the event loop. */
type ListenerEvent =
  | { readonly type: 'Incoming', readonly listenerId: ListenerId, readonly maConn: MultiaddrConnection, readonly settle: { resolve: () => void, reject: (err: Error) => void } }
  | { readonly type: 'Listening', readonly listenerId: ListenerId }
  | { readonly type: 'Error', readonly listenerId: ListenerId, readonly error: Error }
  | { readonly type: 'Closed', readonly listenerId: ListenerId, readonly reason?: Error }

interface PendingNotify {
  readonly peerId: PeerId
  /** The connections it may go to, fixed when the behaviour asked (rust-libp2p does the same). */
  readonly targets: readonly ConnectionId[]
  readonly event: unknown
}

/**
 * A libp2p node: drive it with `for await (const event of swarm)` or `await swarm.selectNextSome()`.
 * Nothing happens unless it is driven: the behaviour, its gates and the reporting of
 * connections all run inside that loop (connections themselves read and write meanwhile).
 *
 * Build one with {@link SwarmBuilder}. The events are {@link SwarmEvent}s; the behaviour's
 * own API is {@link Swarm.behaviour}. [The tutorial](../../docs/tutorial.md) builds a first
 * swarm step by step; [a tour of the API](../../docs/api-tour.md#the-swarm) goes through its
 * methods.
 *
 * ```ts
 * import { SwarmBuilder, combine, gossipsub, ping } from 'peerswarm'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(key => combine({
 *     ping: new ping.Behaviour(),
 *     gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key) })
 *   }))
 *   .build()
 * swarm.behaviour.gossipsub.subscribe('greetings')
 * swarm.listenOn('/ip4/127.0.0.1/tcp/0')
 * if (process.argv[2] !== undefined) swarm.dial(process.argv[2])   // another node's address
 * for await (const event of swarm) {
 *   if (event.type === 'NewListenAddr') console.log(`listening on ${event.address.toString()}`)
 *   if (event.type === 'ConnectionEstablished') console.log(`connected to ${event.peerId.toString()}`)
 *   if (event.type === 'Behaviour' && event.event.behaviour === 'ping' && event.event.event.type === 'Success') {
 *     console.log(`ping: ${event.event.event.rtt} ms`)
 *   }
 * }
 * await swarm.close()
 * ```
 *
 * @group The swarm
 */
export class Swarm<B extends AnyBehaviour> implements AsyncIterable<SwarmEvent<EventOf<B>>>, AsyncDisposable {
  /** The behaviour, typed: call its API here, e.g. `swarm.behaviour.ping`. */
  readonly behaviour: B
  /** Our peer id. */
  readonly localPeerId: PeerId
  /** The swarm's complete configuration. */
  readonly config: SwarmConfig

  private readonly transports: readonly Transport[]
  private readonly upgrader: SwarmUpgrader
  private readonly dialUpgrader: Upgrader
  /** For dials with `roleOverride: 'Listener'`: upgraded as the listener. */
  private readonly listenerRoleUpgrader: Upgrader
  private readonly pool: Pool
  private readonly queued: Array<SwarmEvent<EventOf<B>>> = []
  private pendingNotify?: PendingNotify
  private readonly listenerStates = new Map<ListenerId, ListenerState>()
  private readonly listenerEvents: ListenerEvent[] = []
  private readonly confirmedExternal = new Map<string, Multiaddr>()
  private readonly cx: Context
  private woken = false
  /** What every `selectNextSome` without an abort signal awaits; settled (and dropped) by `wake()`. */
  private nextWakeSignal?: { readonly promise: Promise<void>, readonly resolve: () => void }
  /** Waiters with an abort signal: each can leave the set when its signal fires. */
  private readonly abortableWaiters = new Set<() => void>()
  private state: 'open' | 'closing' | 'closed' = 'open'
  /** Settles when a `close()` in progress is done. */
  private whenClosed: Promise<void> = Promise.resolve()

  constructor (init: SwarmInit<B>) {
    this.behaviour = init.behaviour
    this.localPeerId = init.localPeerId
    this.config = init.config
    this.transports = init.transports
    this.upgrader = init.upgrader
    this.dialUpgrader = init.upgrader.transportUpgrader(async () => { throw new Error('dial upgrader cannot accept connections') })
    this.listenerRoleUpgrader = init.upgrader.transportUpgrader(async () => { throw new Error('dial upgrader cannot accept connections') }, 'Listener')
    const wake = (): void => { this.wake() }
    this.cx = { waker: { wake } }
    this.pool = new Pool(init.config, init.upgrader, wake)
  }

  /**
   * Wait for the next event. Rejects with `SwarmClosedError` once the swarm is closed, or with
   * the signal's reason when `options.signal` aborts (no event is lost by aborting).
   */
  async selectNextSome (options: SelectOptions = {}): Promise<SwarmEvent<EventOf<B>>> {
    for (;;) {
      if (this.state !== 'open') throw new SwarmClosedError()
      options.signal?.throwIfAborted()
      this.woken = false
      const event = this.pollNextEvent()
      if (event !== undefined) return event
      if (!this.woken) await this.nextWake(options.signal)
    }
  }

  /** Events until the swarm is closed; the iteration never ends while the swarm is open. */
  async * [Symbol.asyncIterator] (): AsyncIterator<SwarmEvent<EventOf<B>>> {
    for (;;) {
      try {
        yield await this.selectNextSome()
      } catch (err) {
        if (err instanceof SwarmClosedError) return
        throw err
      }
    }
  }

  /**
   * Start listening on `address`. The bound addresses arrive as `NewListenAddr` events (so
   * `/tcp/0` reports the real port); a failure to bind arrives as `ListenerClosed` with a
   * `reason`. Throws `UnsupportedAddressError` if no transport handles the address.
   */
  listenOn (address: Multiaddr | string): ListenerId {
    this.assertOpen()
    let addr: Multiaddr
    try {
      addr = typeof address === 'string' ? toMultiaddr(address) : address
    } catch (err) {
      throw new InvalidListenAddressError(address as string, err)
    }
    const transport = this.transports.find(t => t.listenFilter([addr]).length > 0)
    if (transport == null) throw new UnsupportedAddressError(addr)
    const id = newListenerId()
    const upgrader = this.upgrader.transportUpgrader(async (maConn) => { await this.acceptIncoming(id, maConn) })
    const listener = transport.createListener({ upgrader })
    const state: ListenerState = { id, listener, transport, addresses: [], closed: false }
    this.listenerStates.set(id, state)
    listener.addEventListener('listening', () => { this.pushListenerEvent({ type: 'Listening', listenerId: id }) })
    listener.addEventListener('error', (evt) => { this.pushListenerEvent({ type: 'Error', listenerId: id, error: toError(evt.detail) }) })
    // A listener that closes by itself may say why (the relay client's, when its reservation ends).
    listener.addEventListener('close', (evt) => { this.pushListenerEvent({ type: 'Closed', listenerId: id, reason: evt.detail instanceof Error ? evt.detail : undefined }) })
    this.behaviour.onSwarmEvent({ type: 'NewListener', listenerId: id })
    listener.listen(addr).catch((err: unknown) => {
      log('listening on %a failed: %s', addr, err)
      this.pushListenerEvent({ type: 'Closed', listenerId: id, reason: toError(err) })
    })
    return id
  }

  /** Stop a listener; `ListenerClosed` follows. False if there is no such listener. */
  removeListener (id: ListenerId): boolean {
    const state = this.listenerStates.get(id)
    if (state == null || state.closed) return false
    state.listener.close().catch((err: unknown) => {
      this.pushListenerEvent({ type: 'Closed', listenerId: id, reason: toError(err) })
    })
    return true
  }

  /**
   * Dial an address (a `Multiaddr` or a string such as `'/ip4/127.0.0.1/tcp/4001/p2p/12D3…'`),
   * a peer (addresses from the behaviours, e.g. mDNS), or with full options. Returns the id the
   * connection will have. Throws a `DialError` if the dial cannot start (an unusable target,
   * no addresses, condition false, denied by a behaviour); failures after that arrive as
   * `OutgoingConnectionError`. Behaviours hear every failure as `DialFailure`.
   */
  dial (target: DialTarget): ConnectionId {
    this.assertOpen()
    let opts: DialOpts
    try {
      opts = toDialOpts(target)
    } catch (err) {
      if (!(err instanceof InvalidDialTargetError)) throw err
      this.behaviour.onSwarmEvent({ type: 'DialFailure', connectionId: newConnectionId(), error: err })
      throw err
    }
    const connectionId = opts.connectionId ?? newConnectionId()
    const peerId = opts.peerId
    const roleOverride = opts.roleOverride ?? 'Dialer'
    const fail = (error: DialError): never => {
      this.behaviour.onSwarmEvent({ type: 'DialFailure', peerId, connectionId, error })
      throw error
    }
    if (peerId != null) {
      if (peerId.equals(this.localPeerId)) fail(new LocalPeerIdError())
      const condition = opts.condition ?? 'disconnectedAndNotDialing'
      if (!this.conditionHolds(condition, peerId)) fail(new DialPeerConditionFalseError(condition))
    }
    const given = opts.addresses ?? []
    let fromBehaviour: readonly Multiaddr[] | undefined
    try {
      fromBehaviour = this.behaviour.handlePendingOutboundConnection?.({ connectionId, peerId, addresses: given, effectiveRole: roleOverride })
    } catch (err) {
      fail(new DialDeniedError(asDenied(err)))
    }
    const extend = peerId != null && (opts.extendAddressesThroughBehaviour ?? given.length === 0)
    const addresses = this.dialAddresses([...given, ...(extend ? fromBehaviour ?? [] : [])], peerId)
    if (addresses.length === 0) fail(new NoAddressesError(peerId))
    const concurrency = opts.dialConcurrencyFactor ?? this.config.dialConcurrencyFactor
    const portUse = opts.portUse ?? 'reuse'
    this.pool.dial({ direction: 'outbound', connectionId, peerId, startedAt: performance.now(), abort: new AbortController(), roleOverride, portUse },
      addresses, this.transports, roleOverride === 'Listener' ? this.listenerRoleUpgrader : this.dialUpgrader, concurrency)
    this.queued.push({ type: 'Dialing', peerId, connectionId })
    this.wake()
    return connectionId
  }

  /** Close every connection to `peerId`; false if there was none. */
  disconnectPeerId (peerId: PeerId): boolean {
    const connections = this.pool.connectionsTo(peerId)
    for (const connection of connections) connection.close()
    return connections.length > 0
  }

  /** Close one connection (or abort it while pending); false if there is no such connection. */
  closeConnection (id: ConnectionId): boolean {
    const connection = this.pool.get(id)
    if (connection?.open === true) {
      connection.close()
      return true
    }
    return this.pool.abortPending(id)
  }

  /** Whether at least one connection to `peerId` is established and open. */
  isConnected (peerId: PeerId): boolean {
    return this.pool.connectionsTo(peerId).length > 0
  }

  /** Peers with at least one open connection. */
  connectedPeers (): PeerId[] {
    return this.pool.connectedPeers()
  }

  /** Every address we currently listen on. */
  listeners (): Multiaddr[] {
    return [...this.listenerStates.values()].flatMap(s => s.addresses)
  }

  /** Our confirmed external addresses. */
  externalAddresses (): Multiaddr[] {
    return [...this.confirmedExternal.values()]
  }

  /** Confirm an external address; behaviours hear `ExternalAddrConfirmed`. */
  addExternalAddress (address: Multiaddr): void {
    const key = address.toString()
    if (this.confirmedExternal.has(key)) return
    this.confirmedExternal.set(key, address)
    this.report({ type: 'ExternalAddrConfirmed', address })
  }

  /** Withdraw an external address; behaviours hear `ExternalAddrExpired`. */
  removeExternalAddress (address: Multiaddr): void {
    if (!this.confirmedExternal.delete(address.toString())) return
    this.report({ type: 'ExternalAddrExpired', address })
  }

  /** Tell behaviours an address of another peer (e.g. from configuration). */
  addPeerAddress (peerId: PeerId, address: Multiaddr): void {
    this.report({ type: 'NewExternalAddrOfPeer', peerId, address })
  }

  /** Every established, open connection, oldest first. */
  connections (): ConnectionInfo[] {
    return this.pool.openConnections().map(connection => ({
      id: connection.id,
      peerId: connection.peerId,
      endpoint: connection.endpoint,
      remoteAddress: connection.upgraded.maConn.remoteAddr,
      transport: transportOf(connection.endpoint.type === 'Dialer' ? connection.endpoint.address : connection.endpoint.localAddr),
      encryption: connection.upgraded.encryption,
      multiplexer: connection.upgraded.multiplexer,
      establishedAt: connection.establishedAt,
      streams: connection.streamCount
    }))
  }

  /** Counts of peers and connections. */
  networkInfo (): NetworkInfo {
    return { numPeers: this.pool.connectedPeers().length, connectionCounters: this.pool.counters() }
  }

  /**
   * Close gracefully, then resolve: listeners stop; the behaviour says goodbye
   * (`NetworkBehaviour.shutdown`: GossipSub and FloodSub unsubscribe from every topic, GossipSub
   * PRUNEs its meshes); each connection's handlers send what they have queued, within
   * `SwarmConfig.drainTimeout`; connections close, then the behaviour (mDNS sends its goodbye
   * there). Pending `selectNextSome` calls reject with `SwarmClosedError` at once and iteration
   * ends. Behaviours hear every connection's closure. A second call resolves when the first
   * is done. `await using swarm = …` calls it.
   */
  async close (): Promise<void> {
    if (this.state !== 'open') {
      await this.whenClosed
      return
    }
    this.state = 'closing'
    let closedNow!: () => void
    this.whenClosed = new Promise<void>(resolve => { closedNow = resolve })
    this.wake()
    try {
      await this.closeGracefully()
    } finally {
      this.state = 'closed'
      closedNow()
    }
  }

  private async closeGracefully (): Promise<void> {
    for (const event of this.listenerEvents.splice(0)) {
      if (event.type === 'Incoming') event.settle.reject(new SwarmClosedError())
    }
    await Promise.all([...this.listenerStates.values()].map(async (s) => {
      await s.listener.close().catch(() => {})
    }))
    this.listenerStates.clear()
    await this.sayGoodbye()
    const closed = await this.pool.closeAll()
    const remaining = new Map<string, number>()
    for (const connection of closed) remaining.set(connection.peerId.toString(), (remaining.get(connection.peerId.toString()) ?? 0) + 1)
    for (const connection of closed) {
      const key = connection.peerId.toString()
      const left = (remaining.get(key) ?? 1) - 1
      remaining.set(key, left)
      this.behaviour.onSwarmEvent({
        type: 'ConnectionClosed',
        peerId: connection.peerId,
        connectionId: connection.id,
        endpoint: connection.endpoint,
        remainingEstablished: left
      })
    }
    await this.behaviour.close?.()
  }

  /**
   * Let the behaviour queue its goodbyes and hand them to the connections' handlers: poll it
   * until it has nothing more, within `drainTimeout`. Only `NotifyHandler` actions are carried
   * out; events for the application, dials and the rest are dropped (the swarm is closing).
   */
  private async sayGoodbye (): Promise<void> {
    if (this.behaviour.shutdown == null) return
    try {
      this.behaviour.shutdown()
    } catch (err) {
      log.error('the behaviour failed to shut down: %e', err)
      return
    }
    const deadline = Date.now() + this.config.drainTimeout
    try {
      while (Date.now() < deadline) {
        if (this.pendingNotify != null) {
          if (this.deliverPendingNotify()) continue
          // The connection's buffer is full: let it run, then try again.
          await new Promise(resolve => setTimeout(resolve, 1))
          continue
        }
        const action = this.behaviour.poll(this.cx)
        if (action === undefined) return
        if (action.type === 'NotifyHandler') this.handleBehaviourAction(action as ToSwarm<EventOf<B>, unknown>)
      }
      log('the behaviour had more to send when drainTimeout ran out')
    } catch (err) {
      log.error('the behaviour failed while saying goodbye: %e', err)
    }
  }

  /** Same as `close()`, for `await using swarm = …`. */
  async [Symbol.asyncDispose] (): Promise<void> {
    await this.close()
  }

  /**
   * One turn of the event loop, in rust-libp2p's priority order. Local work comes before
   * work from remotes, so the application's requests are never starved by the network, and
   * a slow application slows the network down instead of making memory grow:
   *  1. events already queued for the application;
   *  2. the single pending `NotifyHandler` event: deliver it; if its connection's buffer is
   *     full, keep it and do not poll the behaviour this turn (the behaviour waits for room);
   *  3. the behaviour's `poll`;
   *  4. the connection pool: handler events, connections established, failed or closed;
   *  5. the listeners: incoming connections, new and expired addresses.
   * Every `onSwarmEvent` call happens before the matching event is queued in step 1.
   */
  private pollNextEvent (): SwarmEvent<EventOf<B>> | undefined {
    for (;;) {
      const event = this.queued.shift()
      if (event !== undefined) return event

      if (this.pendingNotify != null) {
        if (this.deliverPendingNotify()) continue
      } else {
        const action = this.behaviour.poll(this.cx)
        if (action !== undefined) {
          this.handleBehaviourAction(action as ToSwarm<EventOf<B>, unknown>)
          continue
        }
      }

      const poolEvent = this.pool.poll()
      if (poolEvent !== undefined) {
        this.handlePoolEvent(poolEvent)
        continue
      }

      const listenerEvent = this.listenerEvents.shift()
      if (listenerEvent !== undefined) {
        this.handleListenerEvent(listenerEvent)
        continue
      }
      return undefined
    }
  }

  /** True if the pending event was delivered or dropped, false if its connection is full. */
  private deliverPendingNotify (): boolean {
    const pending = this.pendingNotify
    if (pending == null) return true
    let anyOpen = false
    for (const id of pending.targets) {
      const connection = this.pool.get(id)
      if (connection?.open !== true) continue
      anyOpen = true
      if (connection.notify(pending.event)) {
        this.pendingNotify = undefined
        return true
      }
    }
    if (!anyOpen) {
      log('dropping handler event for %p: connection gone', pending.peerId)
      this.pendingNotify = undefined
      return true
    }
    return false
  }

  private handleBehaviourAction (action: ToSwarm<EventOf<B>, unknown>): void {
    switch (action.type) {
      case 'GenerateEvent':
        this.queued.push({ type: 'Behaviour', event: action.event })
        break
      case 'Dial':
        try {
          this.dial(action.opts)
        } catch (err) {
          // Behaviours already heard it as DialFailure; the dial's requester is the behaviour.
          log('dial requested by the behaviour failed: %s', describe(err))
        }
        break
      case 'ListenOn':
        try {
          this.listenOn(action.address)
        } catch (err) {
          log('listen requested by the behaviour failed: %s', describe(err))
        }
        break
      case 'RemoveListener':
        this.removeListener(action.listenerId)
        break
      case 'NotifyHandler': {
        const targets = action.handler === 'any'
          ? this.pool.connectionsTo(action.peerId).map(c => c.id)
          : [action.handler]
        this.pendingNotify = { peerId: action.peerId, targets, event: action.event }
        break
      }
      case 'CloseConnection':
        if (action.connection === 'all') this.disconnectPeerId(action.peerId)
        else this.closeConnection(action.connection)
        break
      case 'NewExternalAddrCandidate':
        if (!this.confirmedExternal.has(action.address.toString())) this.report(action)
        break
      case 'ExternalAddrConfirmed':
        this.addExternalAddress(action.address)
        break
      case 'ExternalAddrExpired':
        this.removeExternalAddress(action.address)
        break
      case 'NewExternalAddrOfPeer':
        this.report(action)
        break
    }
  }

  private handlePoolEvent (event: PoolEvent): void {
    switch (event.type) {
      case 'DialSucceeded': {
        const { pending, upgraded, address } = event
        const peerId = upgraded.remotePeer
        let handler
        try {
          const portUse = wasPortReused(upgraded.maConn) ? 'reuse' : 'new'
          handler = this.behaviour.handleEstablishedOutboundConnection({ connectionId: pending.connectionId, peerId, address, roleOverride: pending.roleOverride, portUse })
        } catch (err) {
          abortUpgraded(upgraded, toError(err))
          this.dialFailed(pending.connectionId, peerId, new DialDeniedError(asDenied(err)))
          return
        }
        const endpoint = isRelayedAddress(address)
          ? { type: 'Dialer', address, limited: true } as const
          : pending.roleOverride === 'Listener' ? { type: 'Dialer', address, roleOverride: 'Listener' } as const : { type: 'Dialer', address } as const
        const connection = this.pool.addEstablished(pending.connectionId, peerId, endpoint, upgraded)
        this.established(connection.id, peerId, endpoint, event.failed.map(f => f.address), pending.startedAt, event.failed)
        connection.start(handler)
        break
      }
      case 'DialFailed':
        this.dialFailed(event.pending.connectionId, event.pending.peerId, event.error)
        break
      case 'IncomingSucceeded': {
        const { pending, upgraded } = event
        const peerId = upgraded.remotePeer
        const { connectionId, localAddr, sendBackAddr } = pending
        let handler
        try {
          handler = this.behaviour.handleEstablishedInboundConnection({ connectionId, peerId, localAddr, remoteAddr: sendBackAddr })
        } catch (err) {
          abortUpgraded(upgraded, toError(err))
          const error = new ListenDeniedError(asDenied(err))
          this.behaviour.onSwarmEvent({ type: 'ListenFailure', connectionId, localAddr, sendBackAddr, peerId, error })
          this.queued.push({ type: 'IncomingConnectionError', connectionId, localAddr, sendBackAddr, peerId, error })
          return
        }
        const endpoint = isRelayedAddress(localAddr) || isRelayedAddress(sendBackAddr)
          ? { type: 'Listener', localAddr, sendBackAddr, limited: true } as const
          : { type: 'Listener', localAddr, sendBackAddr } as const
        const connection = this.pool.addEstablished(connectionId, peerId, endpoint, upgraded)
        this.established(connectionId, peerId, endpoint, [], pending.startedAt)
        connection.start(handler)
        break
      }
      case 'IncomingFailed': {
        const { connectionId, localAddr, sendBackAddr } = event.pending
        this.behaviour.onSwarmEvent({ type: 'ListenFailure', connectionId, localAddr, sendBackAddr, error: event.error })
        this.queued.push({ type: 'IncomingConnectionError', connectionId, localAddr, sendBackAddr, error: event.error })
        break
      }
      case 'HandlerEvent':
        this.behaviour.onConnectionHandlerEvent(event.connection.peerId, event.connection.id, event.event)
        break
      case 'Closed': {
        const { peerId, id: connectionId, endpoint, closeCause: cause } = event.connection
        const remaining = this.pool.numEstablishedTo(peerId)
        this.behaviour.onSwarmEvent({ type: 'ConnectionClosed', peerId, connectionId, endpoint, cause, remainingEstablished: remaining })
        this.queued.push({ type: 'ConnectionClosed', peerId, connectionId, endpoint, cause, numEstablished: remaining })
        break
      }
    }
  }

  private established (connectionId: ConnectionId, peerId: PeerId, endpoint: SwarmEventOf<'ConnectionEstablished'>['endpoint'],
    failedAddresses: readonly Multiaddr[], startedAt: number, concurrentDialErrors?: SwarmEventOf<'ConnectionEstablished'>['concurrentDialErrors']): void {
    const numEstablished = this.pool.numEstablishedTo(peerId)
    this.behaviour.onSwarmEvent({ type: 'ConnectionEstablished', peerId, connectionId, endpoint, failedAddresses, otherEstablished: numEstablished - 1 })
    this.queued.push({
      type: 'ConnectionEstablished',
      peerId,
      connectionId,
      endpoint,
      numEstablished,
      concurrentDialErrors,
      establishedIn: performance.now() - startedAt
    })
  }

  private dialFailed (connectionId: ConnectionId, peerId: PeerId | undefined, error: DialError): void {
    this.behaviour.onSwarmEvent({ type: 'DialFailure', peerId, connectionId, error })
    this.queued.push({ type: 'OutgoingConnectionError', connectionId, peerId, error })
  }

  private handleListenerEvent (event: ListenerEvent): void {
    const state = this.listenerStates.get(event.listenerId)
    if (state == null) {
      if (event.type === 'Incoming') event.settle.reject(new Error('listener closed'))
      return
    }
    switch (event.type) {
      case 'Incoming':
        this.handleIncoming(state, event.maConn, event.settle)
        break
      case 'Listening': {
        const current = state.listener.getAddrs()
        const known = new Set(state.addresses.map(a => a.toString()))
        const now = new Set(current.map(a => a.toString()))
        for (const address of state.addresses) {
          if (!now.has(address.toString())) this.report({ type: 'ExpiredListenAddr', listenerId: state.id, address })
        }
        for (const address of current) {
          if (!known.has(address.toString())) this.report({ type: 'NewListenAddr', listenerId: state.id, address })
        }
        state.addresses = current
        break
      }
      case 'Error':
        this.report({ type: 'ListenerError', listenerId: state.id, error: event.error })
        break
      case 'Closed': {
        if (state.closed) return
        state.closed = true
        const addresses = state.addresses
        state.addresses = []
        for (const address of addresses) this.report({ type: 'ExpiredListenAddr', listenerId: state.id, address })
        this.listenerStates.delete(state.id)
        this.behaviour.onSwarmEvent({ type: 'ListenerClosed', listenerId: state.id, reason: event.reason })
        this.queued.push({ type: 'ListenerClosed', listenerId: state.id, addresses, reason: event.reason })
        break
      }
    }
  }

  private handleIncoming (state: ListenerState, maConn: MultiaddrConnection, settle: { resolve: () => void, reject: (err: Error) => void }): void {
    const connectionId = newConnectionId()
    const localAddr = state.addresses[0] ?? state.listener.getAddrs()[0]
    const sendBackAddr = maConn.remoteAddr
    try {
      this.behaviour.handlePendingInboundConnection?.({ connectionId, localAddr, remoteAddr: sendBackAddr })
    } catch (err) {
      const error = new ListenDeniedError(asDenied(err))
      settle.reject(error)
      this.behaviour.onSwarmEvent({ type: 'ListenFailure', connectionId, localAddr, sendBackAddr, error })
      this.queued.push({ type: 'IncomingConnectionError', connectionId, localAddr, sendBackAddr, error })
      return
    }
    this.queued.push({ type: 'IncomingConnection', connectionId, localAddr, sendBackAddr })
    this.pool.incoming({ direction: 'inbound', connectionId, listenerId: state.id, localAddr, sendBackAddr, startedAt: performance.now(), abort: new AbortController() }, maConn)
      .then(settle.resolve, settle.reject)
  }

  /** Called by a listener's upgrader: queue the connection for the event loop's step 5. */
  private async acceptIncoming (listenerId: ListenerId, maConn: MultiaddrConnection): Promise<void> {
    if (this.state !== 'open') throw new SwarmClosedError()
    await new Promise<void>((resolve, reject) => {
      this.pushListenerEvent({ type: 'Incoming', listenerId, maConn, settle: { resolve, reject } })
    })
  }

  private pushListenerEvent (event: ListenerEvent): void {
    if (this.state !== 'open') {
      if (event.type === 'Incoming') event.settle.reject(new SwarmClosedError())
      return
    }
    this.listenerEvents.push(event)
    this.wake()
  }

  /** Tell the behaviour, then queue the same event for the application. */
  private report (event: FromSwarm & SwarmEvent<never>): void {
    this.behaviour.onSwarmEvent(event)
    this.queued.push(event)
  }

  private dialAddresses (candidates: readonly Multiaddr[], peerId: PeerId | undefined): Multiaddr[] {
    const own = new Set(this.listeners().map(a => a.toString()))
    const seen = new Set<string>()
    const result: Multiaddr[] = []
    for (const candidate of candidates) {
      const hasP2p = candidate.getComponents().some(c => c.name === 'p2p')
      const address = peerId != null && !hasP2p ? candidate.encapsulate(`/p2p/${peerId.toString()}`) : candidate
      const key = address.toString()
      const bare = hasP2p ? candidate.decapsulateCode(421).toString() : candidate.toString()
      if (seen.has(key) || own.has(bare)) continue
      seen.add(key)
      result.push(address)
    }
    return result
  }

  private conditionHolds (condition: PeerCondition, peerId: PeerId): boolean {
    const disconnected = this.pool.connectionsTo(peerId).length === 0
    const notDialing = !this.pool.isDialing(peerId)
    switch (condition) {
      case 'disconnected': return disconnected
      case 'notDialing': return notDialing
      case 'disconnectedAndNotDialing': return disconnected && notDialing
      case 'always': return true
    }
  }

  private assertOpen (): void {
    if (this.state !== 'open') throw new SwarmClosedError()
  }

  private wake (): void {
    this.woken = true
    // Called for every handler event: nothing to do unless the application is waiting.
    const shared = this.nextWakeSignal
    if (shared !== undefined) {
      this.nextWakeSignal = undefined
      shared.resolve()
    }
    if (this.abortableWaiters.size === 0) return
    const waiters = [...this.abortableWaiters]
    this.abortableWaiters.clear()
    for (const waiter of waiters) waiter()
  }

  /**
   * Settles at the next `wake()`, or rejects when `abort` fires first (the wake is not lost).
   * Waiters without a signal share one promise (one allocation per wake, not per waiter).
   */
  private nextWake (abort?: AbortSignal): Promise<void> {
    if (abort === undefined) {
      let shared = this.nextWakeSignal
      if (shared === undefined) {
        let resolve = (): void => {}
        const promise = new Promise<void>(r => { resolve = r })
        shared = { promise, resolve }
        this.nextWakeSignal = shared
      }
      return shared.promise
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.abortableWaiters.delete(done)
        reject(abort.reason)
      }
      const done = (): void => {
        abort.removeEventListener('abort', onAbort)
        resolve()
      }
      this.abortableWaiters.add(done)
      abort.addEventListener('abort', onAbort, { once: true })
    })
  }
}

type SwarmEventOf<T extends SwarmEvent<unknown>['type']> = Extract<SwarmEvent<unknown>, { type: T }>

function asDenied (err: unknown): ConnectionDenied {
  if (err instanceof ConnectionDenied) return err
  log.error('a connection gate threw something other than ConnectionDenied: %e', err)
  return new ConnectionDenied(err)
}
