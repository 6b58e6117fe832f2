/**
 * Kademlia's behaviour, as rust-libp2p's `kad::Behaviour`: its public API and the swarm's entry
 * points. The work is done by functions over the shared state (state.ts), one concern per file:
 * queries.ts, inbound.ts, routing.ts, maintenance.ts. In order:
 *
 * 1. the routing table: adding and removing addresses and peers, the buckets, our closest peers;
 * 2. the queries: bootstrap, closest peers, records (get, put, put to given peers, remove),
 *    providers (start, stop, get), a running query;
 * 3. the mode (client or server, or chosen from confirmed external addresses);
 * 4. `NetworkBehaviour`: connection handlers (with the requests that waited for the
 *    connection), the addresses of a peer to dial, swarm events (connections, dial failures,
 *    peers' listen addresses, our interfaces), handler events (protocol confirmed or dropped,
 *    inbound requests, answers, failures), `poll` (jobs, pending entries, queries, the timer)
 *    and `close`;
 * 5. internals: a connection's handler, the mode's changes; the key of a peer id, quorum
 *    checks.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { DialPeerConditionFalseError } from '../../core/connection-errors.js'
import { ConfigError } from '../../core/errors.js'
import { Handler } from './handler.js'
import { bucketRange, keyOf, keyOfPeer } from './kbucket.js'
import { withoutPeerSuffix } from './message.js'
import { answer } from './inbound.js'
import { runJobs, schedule, triggerBootstrap } from './maintenance.js'
import { connectionLost, evalQuorum, onResponse, pollQueries, queryOf, resultType, startAddProvider, startBootstrap, startClosest, startPutRecord } from './queries.js'
import { addAddress, addressFailed, applyPending, connectionUpdated, protocolConfirmed, removeAddress, view } from './routing.js'
import { FIRST, KadState, next } from './state.js'
import type { Config, Mode } from './config.js'
import type { PeerInfo } from './errors.js'
import type { Event, KBucketRef, QueryRef, Quorum } from './events.js'
import type { FromBehaviour, ToBehaviour } from './handler.js'
import type { EntryView, RoutingUpdate } from './kbucket.js'
import type { QueryId, QueryStats } from './query.js'
import type { Info, PendingRpc } from './state.js'
import type { Record, RecordStore } from './store.js'
import type { Context } from '../../behaviour/context.js'
import type { EstablishedInboundConnection, EstablishedOutboundConnection, FromSwarm, NetworkBehaviour, PendingOutboundConnection, ToSwarm } from '../../behaviour/network-behaviour.js'
import type { ConnectionId } from '../../core/ids.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:kad')

/**
 * The Kademlia DHT (`/ipfs/kad/1.0.0` by default), interoperable with rust-libp2p's `kad` and
 * js-libp2p's `@libp2p/kad-dht`.
 *
 * ```ts
 * import { SwarmBuilder, combine, identify, kad, parsePeerId, peerIdOf } from 'peerswarm'
 * import { multiaddr } from '@multiformats/multiaddr'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(key => combine({
 *     kad: new kad.Behaviour(peerIdOf(key), { mode: 'server' }),
 *     identify: new identify.Behaviour(key.publicKey)
 *   }))
 *   .build()
 * const seed = parsePeerId('12D3KooWLVpGzyWpLh2z9ApX3xsuvztL4cdvJ9mv8bUbC1EYBHBc')
 * swarm.behaviour.kad.addAddress(seed, multiaddr('/ip4/192.0.2.1/tcp/4001'))
 * swarm.behaviour.kad.bootstrap()
 * const id = swarm.behaviour.kad.getRecord(new TextEncoder().encode('/app/key'))
 * ```
 *
 * Every query method returns a `QueryId`; the outcome arrives as `OutboundQueryProgressed`
 * events with that id. Peers that a connection confirms to speak Kademlia (its first stream, or
 * identify's protocol list) enter the routing table with the addresses we know for them: the
 * address we dialed, and the listen addresses the swarm heard of (`NewExternalAddrOfPeer`, which
 * identify reports).
 */
export class Behaviour implements NetworkBehaviour<Event, FromBehaviour, ToBehaviour> {
  /** The complete configuration. */
  readonly config: Config
  readonly localPeerId: PeerId
  /** Where records and provider records are kept. */
  readonly store: RecordStore
  /** The state the phases share (state.ts). */
  private readonly state: KadState

  constructor (localPeerId: PeerId, options: Partial<Config> = {}) {
    this.state = new KadState(localPeerId, options)
    this.config = this.state.config
    this.localPeerId = localPeerId
    this.store = this.state.store
    // No timer before the swarm first polls (state.dirty starts true): a behaviour made and
    // dropped, or not yet in a swarm, holds nothing that keeps the process alive.
  }

  /** The protocol ids spoken. */
  get protocolNames (): readonly string[] {
    return this.config.protocolNames
  }

  // ---- the routing table ---------------------------------------------------------------

  /**
   * Add an address of `peerId` to the routing table (the peer enters if its bucket has room).
   * `'Pending'`: its bucket is full and it waits to replace a disconnected entry; `'Failed'`:
   * the bucket is full of connected peers, or the address names another peer.
   */
  addAddress (peerId: PeerId, address: Multiaddr): RoutingUpdate {
    return addAddress(this.state, peerId, address)
  }

  /**
   * Remove `address` of `peerId` from its routing-table entry; the entry goes with its last
   * address (and is returned then).
   */
  removeAddress (peerId: PeerId, address: Multiaddr): EntryView | undefined {
    return removeAddress(this.state, peerId, address)
  }

  /** Remove `peerId` from the routing table (or from pending); what was removed, if anything. */
  removePeer (peerId: PeerId): EntryView | undefined {
    const removed = this.state.table.remove(keyOfPeer(peerId))
    return removed === undefined ? undefined : view(removed)
  }

  /** The non-empty buckets, nearest first. */
  * kbuckets (): Generator<KBucketRef> {
    for (const bucket of this.state.table.nonEmpty()) {
      yield {
        index: bucket.index,
        range: bucketRange(bucket.index),
        entries: bucket.entries.map(view),
        pending: bucket.pending === undefined ? undefined : view(bucket.pending)
      }
    }
  }

  /** The routing table's peers closest to `key`, at most `limit` (default k), closest first. */
  closestLocalPeers (key: Uint8Array | PeerId, limit = this.config.replicationFactor): PeerInfo[] {
    return this.state.table.closest(keyOf(keyBytes(key)).hash, limit).map(e => ({ peerId: e.key.peerId, addresses: [...e.addresses] }))
  }

  // ---- queries -------------------------------------------------------------------------

  /**
   * Look up our own id, then a random key in every bucket farther than the closest non-empty
   * one: one `Bootstrap` event per lookup, the last with `step.last`. Also runs every
   * `periodicBootstrapInterval` and shortly after a peer enters a table of fewer than k peers.
   * Throws {@link NoKnownPeersError} when the table is empty.
   */
  bootstrap (): QueryId {
    return startBootstrap(this.state)
  }

  /** Find the k peers closest to `key` (bytes, or a peer id's key). */
  getClosestPeers (key: Uint8Array | PeerId): QueryId {
    const bytes = keyBytes(key)
    return startClosest(this.state, keyOf(bytes), { kind: 'GetClosestPeers', key: bytes, step: FIRST })
  }

  /**
   * Look up the record of `key`: our own copy first (`peer` undefined), then one `FoundRecord`
   * per peer that has it, until the lookup ends (`query(id).finish()` ends it early).
   */
  getRecord (key: Uint8Array): QueryId {
    const local = this.store.get(key)
    const info: Info = { kind: 'GetRecord', key, step: FIRST, found: false, candidates: [] }
    const id = startClosest(this.state, keyOf(key), info)
    if (local !== undefined) {
      info.found = true
      info.step = next(FIRST)
      this.state.progressed(id, { type: 'GetRecord', ok: { type: 'FoundRecord', record: { record: local } } }, emptyStats(), FIRST)
    }
    return id
  }

  /**
   * Store `record` here (as its publisher) and at the k closest peers to its key; the query
   * succeeds once `quorum` of them stored it. Throws `StoreError` if our store refuses it.
   */
  putRecord (record: { readonly key: Uint8Array, readonly value: Uint8Array, readonly publisher?: PeerId, readonly expires?: number }, quorum: Quorum): QueryId {
    checkQuorum(quorum)
    const mine: Record = { ...record, publisher: this.localPeerId }
    this.store.put(mine)
    const sent: Record = { ...mine, expires: mine.expires ?? this.state.expiry(this.config.recordTtl) }
    return startPutRecord(this.state, sent, quorum, 'publish')
  }

  /**
   * Store `record` at `peers` only (not here): rust-libp2p's `put_record_to`, e.g. to cache a
   * record at a `getRecord`'s `cacheCandidates`. `quorum` counts among `peers`.
   */
  putRecordTo (record: Record, peers: Iterable<PeerId>, quorum: Quorum): QueryId {
    checkQuorum(quorum)
    const keys = [...peers].filter(p => !p.equals(this.localPeerId)).map(keyOfPeer)
    const sent: Record = { ...record, expires: record.expires ?? this.state.expiry(this.config.recordTtl) }
    const required = Math.max(1, evalQuorum(quorum, keys.length))
    const id = this.state.queries.newId()
    this.state.phases.set(id, 0)
    this.state.queries.addFixed(keys, { kind: 'PutRecord', context: 'custom', record: sent, quorum, phase: 'put', required, success: [] }, id)
    this.state.wakeUp()
    return id
  }

  /** Remove our own record of `key` from the local store (it is then no longer republished). */
  removeRecord (key: Uint8Array): void {
    const record = this.store.get(key)
    if (record?.publisher?.equals(this.localPeerId) === true) this.store.remove(key)
  }

  /**
   * Announce that we provide `key` to the k closest peers (and again every
   * `providerPublicationInterval`). Our provider records carry our confirmed external
   * addresses, or our listen addresses when none is confirmed. Throws `StoreError` if our
   * store refuses the key.
   */
  startProviding (key: Uint8Array): QueryId {
    this.store.addProvider({ key, provider: this.localPeerId, addresses: [] })
    return startAddProvider(this.state, key, 'publish')
  }

  /** Stop announcing `key` (the records at other peers expire by themselves). */
  stopProviding (key: Uint8Array): void {
    this.store.removeProvider(key, this.localPeerId)
  }

  /**
   * Look up the providers of `key`: ours first, then each new batch found, until the lookup
   * ends with `FinishedWithNoAdditionalRecord`.
   */
  getProviders (key: Uint8Array): QueryId {
    const local = this.store.providers(key)
    const info: Info = { kind: 'GetProviders', key, step: FIRST, seen: new Set() }
    const id = startClosest(this.state, keyOf(key), info)
    if (local.length > 0) {
      const providers = local.map(p => this.state.providerInfo(p)).filter(p => p.addresses.length > 0 || p.peerId.equals(this.localPeerId))
      for (const p of local) info.seen.add(p.provider.toString())
      info.step = next(FIRST)
      this.state.progressed(id, { type: 'GetProviders', ok: { type: 'FoundProviders', key, providers } }, emptyStats(), FIRST)
    }
    return id
  }

  /** A running query, or `undefined` once it has ended. */
  query (id: QueryId): QueryRef | undefined {
    const query = this.state.queries.get(id)
    if (query === undefined) return undefined
    return {
      id,
      type: resultType(query.info),
      stats: () => query.stats.snapshot(performance.now(), 'before' in query.info ? query.info.before : undefined),
      finish: () => {
        query.finish()
        this.state.wakeUp()
      }
    }
  }

  // ---- mode ----------------------------------------------------------------------------

  /** Fix the mode, or (`undefined`) go back to choosing it from confirmed external addresses. */
  setMode (mode?: Mode): void {
    if (mode !== undefined && mode !== 'client' && mode !== 'server') throw new ConfigError('mode', `must be "client", "server" or undefined, got ${String(mode)}`)
    if (mode === undefined) {
      this.state.autoMode = true
      this.determineMode()
      return
    }
    this.state.autoMode = false
    this.changeMode(mode)
  }

  /** The current mode. */
  mode (): Mode {
    return this.state.currentMode
  }

  // ---- NetworkBehaviour ----------------------------------------------------------------

  handleEstablishedInboundConnection ({ peerId }: EstablishedInboundConnection): Handler {
    return this.handler(peerId)
  }

  handleEstablishedOutboundConnection ({ peerId }: EstablishedOutboundConnection): Handler {
    return this.handler(peerId)
  }

  handlePendingOutboundConnection ({ peerId }: PendingOutboundConnection): readonly Multiaddr[] {
    if (peerId === undefined) return []
    const key = keyOfPeer(peerId)
    const out = new Map<string, Multiaddr>()
    const add = (addresses: Iterable<Multiaddr>): void => { for (const a of addresses) out.set(a.toString(), a) }
    add(this.state.table.get(key)?.addresses ?? [])
    for (const query of this.state.queries.values()) add(query.addresses.get(key.id) ?? [])
    add(this.state.peerAddrs.get(peerId))
    return [...out.values()]
  }

  onSwarmEvent (event: FromSwarm): void {
    this.state.listenAddrs.onSwarmEvent(event)
    this.state.peerAddrs.onSwarmEvent(event)
    if (this.state.externalAddrs.onSwarmEvent(event) && this.state.autoMode) this.determineMode()
    switch (event.type) {
      case 'ConnectionEstablished': {
        this.state.connections.set(event.connectionId, { peerId: event.peerId, endpoint: event.endpoint })
        const id = event.peerId.toString()
        this.state.connected.set(id, (this.state.connected.get(id) ?? 0) + 1)
        for (const address of event.failedAddresses) addressFailed(this.state, event.peerId, address)
        break
      }
      case 'ConnectionClosed': {
        this.state.connections.delete(event.connectionId)
        if (event.remainingEstablished > 0) {
          const id = event.peerId.toString()
          this.state.connected.set(id, event.remainingEstablished)
          break
        }
        const id = event.peerId.toString()
        this.state.connected.delete(id)
        this.state.confirmed.delete(id)
        // Requests waiting for it are sent again once on a new connection (queries.ts).
        this.state.queries.forEach(query => { connectionLost(this.state, query, event.peerId) })
        connectionUpdated(this.state, event.peerId, [], 'disconnected')
        this.state.wakeUp()
        break
      }
      case 'DialFailure': {
        if (event.peerId === undefined || event.error instanceof DialPeerConditionFalseError) break
        const peerId = event.peerId
        if (event.error.type === 'Transport') for (const { address } of event.error.errors) addressFailed(this.state, peerId, address)
        const id = peerId.toString()
        this.state.queries.forEach(query => {
          query.pendingRpcs.delete(id)
          query.onFailure(peerId)
        })
        this.state.wakeUp()
        break
      }
      case 'NewExternalAddrOfPeer': {
        // Identify (or mDNS, or the application) told us where a peer listens: a confirmed peer's
        // entry gets the address (and an unroutable one enters the table).
        if (this.state.confirmed.has(event.peerId.toString())) {
          const bare = withoutPeerSuffix(event.address, event.peerId)
          if (bare !== undefined) connectionUpdated(this.state, event.peerId, [bare], 'connected')
        }
        break
      }
      case 'NewListenAddr':
        // Our interfaces may just have come up: bootstrap if we know peers but are connected to none.
        if (this.state.connected.size === 0 && this.state.table.size > 0) triggerBootstrap(this.state)
        break
      default:
    }
  }

  onConnectionHandlerEvent (peerId: PeerId, connectionId: ConnectionId, event: ToBehaviour): void {
    switch (event.type) {
      case 'ProtocolConfirmed':
        protocolConfirmed(this.state, peerId, connectionId)
        break
      case 'ProtocolNotSupported':
        // It stopped listing the protocol (a client now): routing tables hold servers only.
        this.state.confirmed.delete(peerId.toString())
        this.state.table.remove(keyOfPeer(peerId))
        break
      case 'InboundRequest':
        answer(this.state, peerId, connectionId, event.request, event.channel)
        break
      case 'Response':
        onResponse(this.state, peerId, event.tag, event.request, event.response)
        break
      case 'RequestFailed': {
        const query = queryOf(this.state, event.tag)
        if (query !== undefined) {
          log('%s to %p in query %d failed: %s', event.request, peerId, event.tag.queryId, event.error.message)
          query.onFailure(peerId)
          this.state.wakeUp()
        }
        break
      }
      case 'InboundError':
        this.state.inboundErrors++
        if ((this.state.inboundErrors & (this.state.inboundErrors - 1)) === 0) log('%d bad inbound streams so far; the last from %p: %s', this.state.inboundErrors, peerId, event.error.message)
        break
    }
  }

  poll (cx: Context): ToSwarm<Event, FromBehaviour> | undefined {
    // Queries, jobs and pending entries change only on events (which mark them dirty) and at
    // deadlines (whose timer does): an unrelated poll costs nothing.
    if (!this.state.closed && this.state.dirty) {
      this.state.dirty = false
      const now = performance.now()
      runJobs(this.state, now)
      applyPending(this.state)
      pollQueries(this.state, now)
      schedule(this.state)
    }
    return this.state.actions.poll(cx)
  }

  /** Stop the timers (the swarm is closing). */
  close (): void {
    this.state.closed = true
    clearTimeout(this.state.timer)
    this.state.timer = undefined
  }

  // ---- internals ------------------------------------------------------------------------

  private handler (peerId: PeerId): Handler {
    const handler = new Handler({ config: this.config, mode: this.state.currentMode, peerId })
    // Requests that waited for this connection go with it.
    const id = peerId.toString()
    for (const query of this.state.queries.values()) {
      const rpc = query.pendingRpcs.get(id) as PendingRpc | undefined
      if (rpc === undefined) continue
      query.pendingRpcs.delete(id)
      handler.onBehaviourEvent({ type: 'Request', tag: rpc.tag, message: rpc.message })
    }
    return handler
  }


  private determineMode (): void {
    this.changeMode(this.state.externalAddrs.size > 0 ? 'server' : 'client')
  }

  private changeMode (mode: Mode): void {
    if (mode === this.state.currentMode) return
    this.state.currentMode = mode
    log('now in %s mode', mode)
    for (const [connectionId, { peerId }] of this.state.connections) {
      this.state.actions.notifyHandler(peerId, connectionId, { type: 'ReconfigureMode', mode })
    }
    this.state.actions.generate({ type: 'ModeChanged', newMode: mode })
  }
}

function keyBytes (key: Uint8Array | PeerId): Uint8Array {
  return key instanceof Uint8Array ? key : key.toMultihash().bytes
}

function checkQuorum (quorum: Quorum): void {
  if (quorum === 'one' || quorum === 'majority' || quorum === 'all') return
  if (!Number.isSafeInteger(quorum) || quorum < 1) throw new ConfigError('quorum', `must be "one", "majority", "all" or a positive integer, got ${String(quorum)}`)
}

function emptyStats (): QueryStats {
  return Object.freeze({ requests: 0, success: 0, failure: 0, pending: 0 })
}
