/**
 * The connection pool: pending dials and incoming upgrades, established connections, counters.
 * It does the asynchronous work (transport dials, upgrades) and queues outcomes; the swarm
 * takes them out one at a time with `poll()`, runs the behaviour's gates and reports them.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { toError } from '../core/errors.js'
import { withDeadline } from '../core/timers.js'
import { Connection } from './connection.js'
import { DialAbortedError, DialTransportError, ListenAbortedError, ListenLocalPeerIdError, ListenTransportError, LocalPeerIdError, WrongPeerIdError } from '../core/connection-errors.js'
import { abortUpgraded, dialUpgraded } from '../upgrade/upgrader.js'
import type { SwarmConfig } from './config.js'
import type { DialError, FailedAddress, ListenError } from '../core/connection-errors.js'
import type { ConnectedPoint, ConnectionId, Endpoint, ListenerId } from '../core/ids.js'
import type { PortUse } from '../core/dial-opts.js'
import type { SwarmDialOptions } from '../transport/transport.js'
import type { SwarmUpgrader, UpgradedConnection } from '../upgrade/upgrader.js'
import type { MultiaddrConnection, PeerId, Transport, Upgrader } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:pool')

/** @internal A dial in progress. */
export interface PendingDial {
  readonly direction: 'outbound'
  readonly connectionId: ConnectionId
  readonly peerId?: PeerId
  readonly startedAt: number
  readonly abort: AbortController
  /** The role the connection is upgraded in (`'Listener'`: DCUtR's punched connection). */
  readonly roleOverride: Endpoint
  /** Which local port the transport should dial from. */
  readonly portUse: PortUse
}

/** @internal An incoming connection being upgraded. */
export interface PendingIncoming {
  readonly direction: 'inbound'
  readonly connectionId: ConnectionId
  readonly listenerId: ListenerId
  readonly localAddr: Multiaddr
  readonly sendBackAddr: Multiaddr
  readonly startedAt: number
  readonly abort: AbortController
}

/** @internal An outcome the swarm must act on, in the order they happened. */
export type PoolEvent =
  | { readonly type: 'DialSucceeded', readonly pending: PendingDial, readonly upgraded: UpgradedConnection, readonly address: Multiaddr, readonly failed: readonly FailedAddress[] }
  | { readonly type: 'DialFailed', readonly pending: PendingDial, readonly error: DialError }
  | { readonly type: 'IncomingSucceeded', readonly pending: PendingIncoming, readonly upgraded: UpgradedConnection }
  | { readonly type: 'IncomingFailed', readonly pending: PendingIncoming, readonly error: ListenError }
  | { readonly type: 'HandlerEvent', readonly connection: Connection, readonly event: unknown }
  | { readonly type: 'Closed', readonly connection: Connection }

/**
 * Counts of connections, as rust-libp2p's `ConnectionCounters`.
 *
 * @group The swarm
 */
export interface ConnectionCounters {
  readonly numPendingIncoming: number
  readonly numPendingOutgoing: number
  readonly numEstablishedIncoming: number
  readonly numEstablishedOutgoing: number
  readonly numPending: number
  readonly numEstablished: number
  readonly numConnections: number
}

/** @internal */
export class Pool {
  private readonly pending = new Map<ConnectionId, PendingDial | PendingIncoming>()
  private readonly established = new Map<ConnectionId, Connection>()
  private readonly byPeer = new Map<string, Set<Connection>>()
  private readonly outcomes: PoolEvent[] = []
  /** Round-robin cursor so one busy connection cannot starve the others. */
  private cursor = 0

  constructor (
    private readonly config: SwarmConfig,
    private readonly upgrader: SwarmUpgrader,
    private readonly wakeSwarm: () => void
  ) {}

  /** Dial `addresses` with up to `concurrency` at once; the first upgraded connection wins. */
  dial (pending: PendingDial, addresses: readonly Multiaddr[], transports: readonly Transport[], upgrader: Upgrader, concurrency: number): void {
    this.pending.set(pending.connectionId, pending)
    void this.runDial(pending, addresses, transports, upgrader, concurrency).then((event) => {
      this.settle(pending.connectionId, event)
    })
  }

  /** Upgrade an accepted connection; resolves when settled so the transport can drop failures. */
  async incoming (pending: PendingIncoming, maConn: MultiaddrConnection): Promise<void> {
    this.pending.set(pending.connectionId, pending)
    let event: PoolEvent
    try {
      const upgraded = await withDeadline(this.config.connectionTimeout,
        async signal => await this.upgrader.upgrade(maConn, 'inbound', signal), pending.abort.signal)
      event = { type: 'IncomingSucceeded', pending, upgraded }
    } catch (err) {
      maConn.abort(toError(err))
      event = { type: 'IncomingFailed', pending, error: listenError(err, pending) }
    }
    this.settle(pending.connectionId, event)
    if (event.type === 'IncomingFailed') throw event.error
  }

  /** Take the next outcome: settled pending connections first, then connections round-robin. */
  poll (): PoolEvent | undefined {
    const outcome = this.outcomes.shift()
    if (outcome != null) return outcome
    const connections = [...this.established.values()]
    for (let i = 0; i < connections.length; i++) {
      const connection = connections[(this.cursor + i) % connections.length]
      if (connection.hasEvent) {
        this.cursor = (this.cursor + i + 1) % connections.length
        return { type: 'HandlerEvent', connection, event: connection.takeEvent() }
      }
      if (connection.closed) {
        this.remove(connection)
        return { type: 'Closed', connection }
      }
    }
    return undefined
  }

  /** Add an upgraded connection that passed the gates. */
  addEstablished (id: ConnectionId, peerId: PeerId, endpoint: ConnectedPoint, upgraded: UpgradedConnection): Connection {
    const connection = new Connection({ id, peerId, endpoint, upgraded, config: this.config, wakeSwarm: this.wakeSwarm })
    this.established.set(id, connection)
    const key = peerId.toString()
    let set = this.byPeer.get(key)
    if (set == null) this.byPeer.set(key, set = new Set())
    set.add(connection)
    return connection
  }

  get (id: ConnectionId): Connection | undefined {
    return this.established.get(id)
  }

  /** Every established connection that is still open, oldest first. */
  openConnections (): Connection[] {
    return [...this.established.values()].filter(c => c.open)
  }

  /** Established connections to `peerId` that are still open, oldest first. */
  connectionsTo (peerId: PeerId): Connection[] {
    return [...this.byPeer.get(peerId.toString()) ?? []].filter(c => c.open)
  }

  /** Connections to `peerId` counted as established (open or closing, not yet reported closed). */
  numEstablishedTo (peerId: PeerId): number {
    return this.byPeer.get(peerId.toString())?.size ?? 0
  }

  isDialing (peerId: PeerId): boolean {
    for (const pending of this.pending.values()) {
      if (pending.direction === 'outbound' && pending.peerId?.equals(peerId) === true) return true
    }
    return false
  }

  /** Peers with at least one open connection. */
  connectedPeers (): PeerId[] {
    const peers: PeerId[] = []
    for (const set of this.byPeer.values()) {
      const open = [...set].find(c => c.open)
      if (open != null) peers.push(open.peerId)
    }
    return peers
  }

  /** Abort a pending connection; true if there was one. */
  abortPending (id: ConnectionId): boolean {
    const pending = this.pending.get(id)
    pending?.abort.abort()
    return pending != null
  }

  counters (): ConnectionCounters {
    let numPendingIncoming = 0
    let numEstablishedIncoming = 0
    for (const pending of this.pending.values()) if (pending.direction === 'inbound') numPendingIncoming++
    for (const connection of this.established.values()) if (connection.endpoint.type === 'Listener') numEstablishedIncoming++
    const numPending = this.pending.size
    const numEstablished = this.established.size
    return {
      numPendingIncoming,
      numPendingOutgoing: numPending - numPendingIncoming,
      numEstablishedIncoming,
      numEstablishedOutgoing: numEstablished - numEstablishedIncoming,
      numPending,
      numEstablished,
      numConnections: numPending + numEstablished
    }
  }

  /** Abort every pending connection and close every established one; resolves when all closed. */
  async closeAll (): Promise<Connection[]> {
    for (const pending of this.pending.values()) pending.abort.abort()
    const connections = [...this.established.values()]
    for (const connection of connections) connection.close()
    await Promise.all(connections.map(async c => { await c.whenClosed }))
    for (const connection of connections) this.remove(connection)
    return connections
  }

  private settle (id: ConnectionId, event: PoolEvent): void {
    this.pending.delete(id)
    this.outcomes.push(event)
    this.wakeSwarm()
  }

  private remove (connection: Connection): void {
    this.established.delete(connection.id)
    const key = connection.peerId.toString()
    const set = this.byPeer.get(key)
    set?.delete(connection)
    if (set?.size === 0) this.byPeer.delete(key)
  }

  private async runDial (pending: PendingDial, addresses: readonly Multiaddr[], transports: readonly Transport[], upgrader: Upgrader, concurrency: number): Promise<PoolEvent> {
    const failed: FailedAddress[] = []
    const attempts = new Set<AbortController>()
    const winner = await new Promise<{ upgraded: UpgradedConnection, address: Multiaddr } | undefined>((resolve) => {
      let next = 0
      let inFlight = 0
      let done = false
      const finish = (result: { upgraded: UpgradedConnection, address: Multiaddr } | undefined): void => {
        done = true
        pending.abort.signal.removeEventListener('abort', onAbort)
        for (const attempt of attempts) attempt.abort()
        resolve(result)
      }
      const onAbort = (): void => { finish(undefined) }
      pending.abort.signal.addEventListener('abort', onAbort)
      const launch = (): void => {
        while (!done && inFlight < concurrency && next < addresses.length) {
          const address = addresses[next++]
          const attempt = new AbortController()
          attempts.add(attempt)
          inFlight++
          this.dialOne(address, transports, upgrader, pending.portUse, attempt.signal).then((upgraded) => {
            attempts.delete(attempt)
            inFlight--
            if (done) {
              abortUpgraded(upgraded, new Error('superseded by another connection attempt'))
              return
            }
            finish({ upgraded, address })
          }, (err: unknown) => {
            attempts.delete(attempt)
            inFlight--
            if (done) return
            failed.push({ address, error: toError(err) })
            if (inFlight === 0 && next >= addresses.length) finish(undefined)
            else launch()
          })
        }
      }
      if (pending.abort.signal.aborted) finish(undefined)
      else launch()
    })
    if (winner == null) {
      if (pending.abort.signal.aborted) return { type: 'DialFailed', pending, error: new DialAbortedError() }
      const self = failed.find(f => f.error instanceof LocalPeerIdError)
      return { type: 'DialFailed', pending, error: self != null ? new LocalPeerIdError(self.address) : new DialTransportError(failed) }
    }
    if (pending.peerId != null && !winner.upgraded.remotePeer.equals(pending.peerId)) {
      abortUpgraded(winner.upgraded, new Error('wrong peer id'))
      return { type: 'DialFailed', pending, error: new WrongPeerIdError(winner.upgraded.remotePeer, winner.address, pending.peerId) }
    }
    return { type: 'DialSucceeded', pending, upgraded: winner.upgraded, address: winner.address, failed }
  }

  private async dialOne (address: Multiaddr, transports: readonly Transport[], upgrader: Upgrader, portUse: PortUse, attempt: AbortSignal): Promise<UpgradedConnection> {
    const transport = transports.find(t => t.dialFilter([address]).length > 0)
    if (transport == null) throw new Error(`no transport can dial ${address.toString()}`)
    log('dialing %a', address)
    // A deadline, never `AbortSignal.timeout`: transports tie their sockets to the dial signal
    // for the socket's whole life, and this one is let go once the dial settles.
    return await withDeadline(this.config.connectionTimeout, async (signal) => {
      const options: SwarmDialOptions = { upgrader, signal, portUse }
      return dialUpgraded(await transport.dial(address, options))
    }, attempt)
  }
}

function listenError (err: unknown, pending: PendingIncoming): ListenError {
  if (err instanceof LocalPeerIdError) return new ListenLocalPeerIdError(pending.sendBackAddr)
  if (pending.abort.signal.aborted) return new ListenAbortedError()
  return new ListenTransportError(toError(err))
}
