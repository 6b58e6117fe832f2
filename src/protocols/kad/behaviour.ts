/**
 * Kademlia's behaviour, as rust-libp2p's `kad::Behaviour`: the routing table, the record store,
 * the queries and the periodic jobs (bootstrap, replication, republication).
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { peerIdFromMultihash } from '@libp2p/peer-id'
import * as Digest from 'multiformats/hashes/digest'
import { ActionQueue } from '../../behaviour/action-queue.js'
import { ExternalAddresses, ListenAddresses, PeerAddresses } from '../../behaviour/addresses.js'
import { DialPeerConditionFalseError } from '../../core/connection-errors.js'
import { ConfigError } from '../../core/errors.js'
import { MAX_TIMER_DELAY } from '../../core/timers.js'
import { config as kadConfig } from './config.js'
import {
  AddProviderError, BootstrapError, GetClosestPeersError, GetProvidersError, GetRecordError, NoKnownPeersError, PutRecordError
} from './errors.js'
import { Handler } from './handler.js'
import { bucketIndex, bucketRange, keyOf, keyOfPeer, KBucketsTable, MAX_ENTRY_ADDRESSES } from './kbucket.js'
import { rfc3339Now, withoutPeerSuffix } from './message.js'
import { QueryPool } from './query.js'
import { keyString, MemoryStore, StoreError } from './store.js'
import type { Config, Mode } from './config.js'
import type { PeerInfo } from './errors.js'
import type { FromBehaviour, InboundChannel, RequestTag, ToBehaviour } from './handler.js'
import type { Entry, EntryView, Key, NodeStatus, PeerKey, RoutingUpdate } from './kbucket.js'
import type { Message, WirePeer, WireRecord } from './message.js'
import type { Query, QueryId, QueryStats } from './query.js'
import type { ProviderRecord, Record, RecordStore } from './store.js'
import type { Context } from '../../behaviour/context.js'
import type { EstablishedInboundConnection, EstablishedOutboundConnection, FromSwarm, NetworkBehaviour, PendingOutboundConnection, ToSwarm } from '../../behaviour/network-behaviour.js'
import type { ConnectedPoint, ConnectionId } from '../../core/ids.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:kad')

/** How many peers must store a record: one, a majority, all, or a number (capped at the peers there are). */
export type Quorum = 'one' | 'majority' | 'all' | number

/** Where a query stands: its `count`-th event, and whether it is the last. */
export interface ProgressStep {
  readonly count: number
  readonly last: boolean
}

/** A record and the peer it came from (`undefined`: our own store). */
export interface PeerRecord {
  readonly record: Record
  readonly peer?: PeerId
}

/** Exactly one of `ok` and `error`. */
type Outcome<T extends string, O, E> =
  | { readonly type: T, readonly ok: O, readonly error?: never }
  | { readonly type: T, readonly ok?: never, readonly error: E }

/** One bootstrap step: the lookup of `peer` ended; `numRemaining` steps follow. */
export interface BootstrapOk { readonly peer: PeerId, readonly numRemaining: number }
/** The closest peers to `key` that answered, with the addresses we know for each. */
export interface GetClosestPeersOk { readonly key: Uint8Array, readonly peers: readonly PeerInfo[] }
/** A record found (one event per holder), or the end of the lookup after at least one. */
export type GetRecordOk =
  | { readonly type: 'FoundRecord', readonly record: PeerRecord }
  | {
    readonly type: 'FinishedWithNoAdditionalRecord'
    /** The closest peers asked that lacked the record: where the application may `putRecordTo` it. */
    readonly cacheCandidates: readonly PeerId[]
  }
/** The record was stored at enough peers. */
export interface PutRecordOk { readonly key: Uint8Array }
/** The provider record was sent to the closest peers. */
export interface AddProviderOk { readonly key: Uint8Array }
/** Providers found (new ones, with their addresses), or the end of the lookup. */
export type GetProvidersOk =
  | { readonly type: 'FoundProviders', readonly key: Uint8Array, readonly providers: readonly PeerInfo[] }
  | { readonly type: 'FinishedWithNoAdditionalRecord', readonly closestPeers: readonly PeerId[] }

/** The outcome of a query step. */
export type QueryResult =
  | Outcome<'Bootstrap', BootstrapOk, BootstrapError>
  | Outcome<'GetClosestPeers', GetClosestPeersOk, GetClosestPeersError>
  | Outcome<'GetRecord', GetRecordOk, GetRecordError>
  | Outcome<'PutRecord', PutRecordOk, PutRecordError>
  | Outcome<'StartProviding', AddProviderOk, AddProviderError>
  | Outcome<'GetProviders', GetProvidersOk, GetProvidersError>
  | Outcome<'RepublishRecord', PutRecordOk, PutRecordError>
  | Outcome<'RepublishProvider', AddProviderOk, AddProviderError>

/** A request a peer sent us. */
export type InboundRequest =
  | { readonly type: 'FindNode', readonly numCloserPeers: number }
  | { readonly type: 'GetProvider', readonly numCloserPeers: number, readonly numProviderPeers: number }
  | { readonly type: 'AddProvider', readonly record: ProviderRecord, readonly stored: boolean }
  | { readonly type: 'GetRecord', readonly numCloserPeers: number, readonly presentLocally: boolean }
  | { readonly type: 'PutRecord', readonly connection: ConnectionId, readonly record: Record, readonly stored: boolean }

/** What Kademlia reports. */
export type Event =
  | {
    /** A query made progress or ended (`step.last`). */
    readonly type: 'OutboundQueryProgressed'
    readonly id: QueryId
    readonly result: QueryResult
    readonly stats: QueryStats
    readonly step: ProgressStep
  }
  | {
    /** The routing table changed: `peer` entered (`isNewPeer`, maybe replacing `oldPeer`) or got addresses. */
    readonly type: 'RoutingUpdated'
    readonly peer: PeerId
    readonly isNewPeer: boolean
    readonly addresses: readonly Multiaddr[]
    /** The distances its bucket covers. */
    readonly bucketRange: readonly [bigint, bigint]
    readonly oldPeer?: PeerId
  }
  /** A connected peer speaks Kademlia but we know no address of it (it connected to us). */
  | { readonly type: 'UnroutablePeer', readonly peer: PeerId }
  /** A connected peer could enter the table but was not added (`bucketInserts: 'manual'` or a full bucket). */
  | { readonly type: 'RoutablePeer', readonly peer: PeerId, readonly address: Multiaddr }
  /** A connected peer waits to replace a disconnected entry of a full bucket. */
  | { readonly type: 'PendingRoutablePeer', readonly peer: PeerId, readonly address: Multiaddr }
  | { readonly type: 'InboundRequest', readonly peer: PeerId, readonly request: InboundRequest }
  | { readonly type: 'ModeChanged', readonly newMode: Mode }

/** A non-empty bucket of the routing table. */
export interface KBucketRef {
  /** 0 (nearest) to 255. */
  readonly index: number
  /** The distances it covers. */
  readonly range: readonly [bigint, bigint]
  readonly entries: readonly EntryView[]
  /** A connected peer waiting to replace the first entry, if any. */
  readonly pending?: EntryView
}

/** A running query. */
export interface QueryRef {
  readonly id: QueryId
  readonly type: QueryResult['type']
  stats(): QueryStats
  /** End it now: it reports what it has, as if it had run out of peers. */
  finish(): void
}

type PutContext = 'publish' | 'republish' | 'replicate' | 'custom'
type ProvideContext = 'publish' | 'republish'

/** What a query is for, and where it stands. */
type Info =
  | { readonly kind: 'Bootstrap', readonly target: PeerId, readonly remaining?: Key[], step: ProgressStep }
  | { readonly kind: 'GetClosestPeers', readonly key: Uint8Array, step: ProgressStep }
  | { readonly kind: 'GetRecord', readonly key: Uint8Array, step: ProgressStep, found: boolean, readonly candidates: PeerKey[] }
  | { readonly kind: 'GetProviders', readonly key: Uint8Array, step: ProgressStep, readonly seen: Set<string> }
  | {
    readonly kind: 'PutRecord'
    readonly context: PutContext
    readonly record: Record
    readonly quorum: Quorum
    readonly phase: 'closest' | 'put'
    readonly required: number
    readonly success: PeerId[]
    readonly before?: QueryStats
  }
  | { readonly kind: 'AddProvider', readonly context: ProvideContext, readonly key: Uint8Array, readonly phase: 'closest' | 'add', readonly before?: QueryStats }

/** A request and its tag, waiting for a connection to its peer. */
interface PendingRpc {
  readonly tag: RequestTag
  readonly message: Message
}

/** Background jobs start at most this many queries at once, and at most this many per poll (rust's). */
const JOBS_MAX_QUERIES = 100
const JOBS_MAX_NEW_QUERIES = 10
/** Delay of the automatic bootstrap after a peer entered a thin table (rust's). */
const AUTOMATIC_BOOTSTRAP_DELAY = 500
/** Addresses kept per peer learnt from the swarm (identify, mDNS, the application). */
const KNOWN_PEERS = 1024
/** Keys received by replication that the next replication run skips, at most. */
const MAX_SKIPPED = 4096

const FIRST: ProgressStep = Object.freeze({ count: 1, last: false })
const next = (step: ProgressStep): ProgressStep => ({ count: step.count + 1, last: false })
const last = (step: ProgressStep): ProgressStep => ({ count: step.count, last: true })
const FIRST_AND_LAST: ProgressStep = Object.freeze({ count: 1, last: true })

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
  private readonly table: KBucketsTable
  private readonly queries: QueryPool<Info>
  private readonly actions = new ActionQueue<Event, FromBehaviour>()
  private readonly listenAddrs = new ListenAddresses()
  private readonly externalAddrs = new ExternalAddresses()
  private readonly peerAddrs = new PeerAddresses({ peers: KNOWN_PEERS, addressesPerPeer: MAX_ENTRY_ADDRESSES })
  private readonly connections = new Map<ConnectionId, { readonly peerId: PeerId, readonly endpoint: ConnectedPoint }>()
  /** Connected peers and their number of connections. */
  private readonly connected = new Map<string, number>()
  /** Connected peers confirmed to speak one of our protocols. */
  private readonly confirmed = new Set<string>()
  /** Phase counter per query, so that late answers of an earlier phase are told apart. */
  private readonly phases = new Map<QueryId, number>()
  private currentMode: Mode
  private autoMode: boolean
  private bootstrapQuery?: QueryId
  private bootstrapDue?: number
  private periodicBootstrapAt?: number
  private replicationAt?: number
  private nextPublish?: number
  private providerPublicationAt?: number
  private readonly skipped = new Set<string>()
  private jobRecords: Array<{ readonly record: Record, readonly context: PutContext }> = []
  private jobProviders: ProviderRecord[] = []
  private timer?: ReturnType<typeof setTimeout>
  private timerAt = Infinity
  private inboundErrors = 0
  private dirty = true
  private closed = false

  constructor (localPeerId: PeerId, options: Partial<Config> = {}) {
    this.config = kadConfig(options)
    this.localPeerId = localPeerId
    this.store = this.config.store ?? new MemoryStore(localPeerId, { maxProvidersPerKey: this.config.replicationFactor })
    this.table = new KBucketsTable(localPeerId, { bucketSize: this.config.replicationFactor, pendingTimeout: this.config.kbucketPendingTimeout })
    this.queries = new QueryPool<Info>({
      timeout: this.config.queryTimeout,
      replicationFactor: this.config.replicationFactor,
      parallelism: this.config.parallelism,
      peerTimeout: this.config.substreamsTimeout
    })
    this.autoMode = this.config.mode === undefined
    this.currentMode = this.config.mode ?? 'client'
    const now = performance.now()
    const { periodicBootstrapInterval, replicationInterval, publicationInterval, providerPublicationInterval } = this.config
    if (periodicBootstrapInterval !== null) this.periodicBootstrapAt = now + periodicBootstrapInterval
    if (replicationInterval !== null) {
      this.replicationAt = now + replicationInterval
      if (publicationInterval !== null) this.nextPublish = now + publicationInterval
    }
    if (providerPublicationInterval !== null) this.providerPublicationAt = now + providerPublicationInterval
    this.schedule()
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
    const bare = withoutPeerSuffix(address, peerId)
    if (bare === undefined || peerId.equals(this.localPeerId)) return 'Failed'
    const key = keyOfPeer(peerId)
    const entry = this.table.get(key)
    if (entry !== undefined) {
      if (addAddresses(entry, [bare])) this.routingUpdated(entry, false)
      return 'Success'
    }
    const pending = this.table.getPending(key)
    if (pending !== undefined) {
      addAddresses(pending, [bare])
      return 'Pending'
    }
    const status: NodeStatus = this.connected.has(key.id) ? 'connected' : 'disconnected'
    const result = this.table.insert(key, [bare], status)
    switch (result.type) {
      case 'Inserted':
        this.bootstrapOnLowPeers()
        this.routingUpdated(this.table.get(key) as Entry, true)
        return 'Success'
      case 'Pending':
        this.actions.push({ type: 'Dial', opts: { peerId: result.disconnected.peerId } })
        return 'Pending'
      case 'Full':
        return 'Failed'
    }
  }

  /**
   * Remove `address` of `peerId` from its routing-table entry; the entry goes with its last
   * address (and is returned then).
   */
  removeAddress (peerId: PeerId, address: Multiaddr): EntryView | undefined {
    const bare = withoutPeerSuffix(address, peerId)
    if (bare === undefined) return undefined
    const key = keyOfPeer(peerId)
    const entry = this.table.get(key) ?? this.table.getPending(key)
    if (entry === undefined) return undefined
    const text = bare.toString()
    const remaining = entry.addresses.filter(a => a.toString() !== text)
    if (remaining.length === entry.addresses.length) return undefined
    if (remaining.length > 0) {
      entry.addresses = remaining
      return undefined
    }
    const removed = this.table.remove(key)
    return removed === undefined ? undefined : view(removed)
  }

  /** Remove `peerId` from the routing table (or from pending); what was removed, if anything. */
  removePeer (peerId: PeerId): EntryView | undefined {
    const removed = this.table.remove(keyOfPeer(peerId))
    return removed === undefined ? undefined : view(removed)
  }

  /** The non-empty buckets, nearest first. */
  * kbuckets (): Generator<KBucketRef> {
    for (const bucket of this.table.nonEmpty()) {
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
    return this.table.closest(keyOf(keyBytes(key)).hash, limit).map(e => ({ peerId: e.key.peerId, addresses: [...e.addresses] }))
  }

  // ---- queries -------------------------------------------------------------------------

  /**
   * Look up our own id, then a random key in every bucket farther than the closest non-empty
   * one: one `Bootstrap` event per lookup, the last with `step.last`. Also runs every
   * `periodicBootstrapInterval` and shortly after a peer enters a table of fewer than k peers.
   * Throws {@link NoKnownPeersError} when the table is empty.
   */
  bootstrap (): QueryId {
    if (this.table.size === 0) {
      this.periodicBootstrapAt = this.config.periodicBootstrapInterval === null ? undefined : performance.now() + this.config.periodicBootstrapInterval
      throw new NoKnownPeersError()
    }
    const id = this.startClosest(this.table.local, { kind: 'Bootstrap', target: this.localPeerId, step: FIRST })
    this.bootstrapQuery = id
    this.bootstrapDue = undefined
    return id
  }

  /** Find the k peers closest to `key` (bytes, or a peer id's key). */
  getClosestPeers (key: Uint8Array | PeerId): QueryId {
    const bytes = keyBytes(key)
    return this.startClosest(keyOf(bytes), { kind: 'GetClosestPeers', key: bytes, step: FIRST })
  }

  /**
   * Look up the record of `key`: our own copy first (`peer` undefined), then one `FoundRecord`
   * per peer that has it, until the lookup ends (`query(id).finish()` ends it early).
   */
  getRecord (key: Uint8Array): QueryId {
    const local = this.store.get(key)
    const info: Info = { kind: 'GetRecord', key, step: FIRST, found: false, candidates: [] }
    const id = this.startClosest(keyOf(key), info)
    if (local !== undefined) {
      info.found = true
      info.step = next(FIRST)
      this.progressed(id, { type: 'GetRecord', ok: { type: 'FoundRecord', record: { record: local } } }, emptyStats(), FIRST)
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
    const sent: Record = { ...mine, expires: mine.expires ?? this.expiry(this.config.recordTtl) }
    return this.startPutRecord(sent, quorum, 'publish')
  }

  /**
   * Store `record` at `peers` only (not here): rust-libp2p's `put_record_to`, e.g. to cache a
   * record at a `getRecord`'s `cacheCandidates`. `quorum` counts among `peers`.
   */
  putRecordTo (record: Record, peers: Iterable<PeerId>, quorum: Quorum): QueryId {
    checkQuorum(quorum)
    const keys = [...peers].filter(p => !p.equals(this.localPeerId)).map(keyOfPeer)
    const sent: Record = { ...record, expires: record.expires ?? this.expiry(this.config.recordTtl) }
    const required = Math.max(1, evalQuorum(quorum, keys.length))
    const id = this.queries.newId()
    this.phases.set(id, 0)
    this.queries.addFixed(keys, { kind: 'PutRecord', context: 'custom', record: sent, quorum, phase: 'put', required, success: [] }, id)
    this.wakeUp()
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
    return this.startAddProvider(key, 'publish')
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
    const id = this.startClosest(keyOf(key), info)
    if (local.length > 0) {
      const providers = local.map(p => this.providerInfo(p)).filter(p => p.addresses.length > 0 || p.peerId.equals(this.localPeerId))
      for (const p of local) info.seen.add(p.provider.toString())
      info.step = next(FIRST)
      this.progressed(id, { type: 'GetProviders', ok: { type: 'FoundProviders', key, providers } }, emptyStats(), FIRST)
    }
    return id
  }

  /** A running query, or `undefined` once it has ended. */
  query (id: QueryId): QueryRef | undefined {
    const query = this.queries.get(id)
    if (query === undefined) return undefined
    return {
      id,
      type: resultType(query.info),
      stats: () => query.stats.snapshot(performance.now(), 'before' in query.info ? query.info.before : undefined),
      finish: () => {
        query.finish()
        this.wakeUp()
      }
    }
  }

  // ---- mode ----------------------------------------------------------------------------

  /** Fix the mode, or (`undefined`) go back to choosing it from confirmed external addresses. */
  setMode (mode?: Mode): void {
    if (mode !== undefined && mode !== 'client' && mode !== 'server') throw new ConfigError('mode', `must be "client", "server" or undefined, got ${String(mode)}`)
    if (mode === undefined) {
      this.autoMode = true
      this.determineMode()
      return
    }
    this.autoMode = false
    this.changeMode(mode)
  }

  /** The current mode. */
  mode (): Mode {
    return this.currentMode
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
    add(this.table.get(key)?.addresses ?? [])
    for (const query of this.queries.values()) add(query.addresses.get(key.id) ?? [])
    add(this.peerAddrs.get(peerId))
    return [...out.values()]
  }

  onSwarmEvent (event: FromSwarm): void {
    this.listenAddrs.onSwarmEvent(event)
    this.peerAddrs.onSwarmEvent(event)
    if (this.externalAddrs.onSwarmEvent(event) && this.autoMode) this.determineMode()
    switch (event.type) {
      case 'ConnectionEstablished': {
        this.connections.set(event.connectionId, { peerId: event.peerId, endpoint: event.endpoint })
        const id = event.peerId.toString()
        this.connected.set(id, (this.connected.get(id) ?? 0) + 1)
        for (const address of event.failedAddresses) this.addressFailed(event.peerId, address)
        break
      }
      case 'ConnectionClosed': {
        this.connections.delete(event.connectionId)
        if (event.remainingEstablished > 0) {
          const id = event.peerId.toString()
          this.connected.set(id, event.remainingEstablished)
          break
        }
        const id = event.peerId.toString()
        this.connected.delete(id)
        this.confirmed.delete(id)
        this.queries.forEach(query => { query.onFailure(event.peerId) })
        this.connectionUpdated(event.peerId, [], 'disconnected')
        this.wakeUp()
        break
      }
      case 'DialFailure': {
        if (event.peerId === undefined || event.error instanceof DialPeerConditionFalseError) break
        const peerId = event.peerId
        if (event.error.type === 'Transport') for (const { address } of event.error.errors) this.addressFailed(peerId, address)
        const id = peerId.toString()
        this.queries.forEach(query => {
          query.pendingRpcs.delete(id)
          query.onFailure(peerId)
        })
        this.wakeUp()
        break
      }
      case 'NewExternalAddrOfPeer': {
        // Identify (or mDNS, or the application) told us where a peer listens: a confirmed peer's
        // entry gets the address (and an unroutable one enters the table).
        if (this.confirmed.has(event.peerId.toString())) {
          const bare = withoutPeerSuffix(event.address, event.peerId)
          if (bare !== undefined) this.connectionUpdated(event.peerId, [bare], 'connected')
        }
        break
      }
      case 'NewListenAddr':
        // Our interfaces may just have come up: bootstrap if we know peers but are connected to none.
        if (this.connected.size === 0 && this.table.size > 0) this.triggerBootstrap()
        break
      default:
    }
  }

  onConnectionHandlerEvent (peerId: PeerId, connectionId: ConnectionId, event: ToBehaviour): void {
    switch (event.type) {
      case 'ProtocolConfirmed': {
        this.confirmed.add(peerId.toString())
        const endpoint = this.connections.get(connectionId)?.endpoint
        const addresses: Multiaddr[] = []
        if (endpoint?.type === 'Dialer') {
          const bare = withoutPeerSuffix(endpoint.address, peerId)
          if (bare !== undefined) addresses.push(bare)
        }
        addresses.push(...this.peerAddrs.get(peerId))
        this.connectionUpdated(peerId, addresses, 'connected')
        break
      }
      case 'ProtocolNotSupported':
        // It stopped listing the protocol (a client now): routing tables hold servers only.
        this.confirmed.delete(peerId.toString())
        this.table.remove(keyOfPeer(peerId))
        break
      case 'InboundRequest':
        this.answer(peerId, connectionId, event.request, event.channel)
        break
      case 'Response':
        this.onResponse(peerId, event.tag, event.request, event.response)
        break
      case 'RequestFailed': {
        const query = this.queryOf(event.tag)
        if (query !== undefined) {
          log('%s to %p in query %d failed: %s', event.request, peerId, event.tag.queryId, event.error.message)
          query.onFailure(peerId)
          this.wakeUp()
        }
        break
      }
      case 'InboundError':
        this.inboundErrors++
        if ((this.inboundErrors & (this.inboundErrors - 1)) === 0) log('%d bad inbound streams so far; the last from %p: %s', this.inboundErrors, peerId, event.error.message)
        break
    }
  }

  poll (cx: Context): ToSwarm<Event, FromBehaviour> | undefined {
    // Queries, jobs and pending entries change only on events (which mark them dirty) and at
    // deadlines (whose timer does): an unrelated poll costs nothing.
    if (!this.closed && this.dirty) {
      this.dirty = false
      const now = performance.now()
      this.runJobs(now)
      this.table.applyDue()
      for (let applied = this.table.takeApplied(); applied !== undefined; applied = this.table.takeApplied()) {
        const { inserted, evicted } = applied
        if (inserted.addresses.length > 0) this.actions.push({ type: 'NewExternalAddrOfPeer', peerId: inserted.key.peerId, address: inserted.addresses[0] })
        this.actions.generate({
          type: 'RoutingUpdated',
          peer: inserted.key.peerId,
          isNewPeer: true,
          addresses: [...inserted.addresses],
          bucketRange: bucketRange(applied.bucket),
          oldPeer: evicted?.key.peerId
        })
      }
      this.pollQueries(now)
      this.schedule()
    }
    return this.actions.poll(cx)
  }

  /** Stop the timers (the swarm is closing). */
  close (): void {
    this.closed = true
    clearTimeout(this.timer)
    this.timer = undefined
  }

  // ---- queries, internals ----------------------------------------------------------------

  private startClosest (target: Key, info: Info, id?: QueryId): QueryId {
    const known = this.table.closest(target.hash, this.config.replicationFactor).map(e => e.key)
    const query = this.queries.addClosest(target.hash, known, info, undefined, id)
    this.phases.set(query.id, (this.phases.get(query.id) ?? -1) + 1)
    this.wakeUp()
    return query.id
  }

  private startPutRecord (record: Record, quorum: Quorum, context: PutContext): QueryId {
    return this.startClosest(keyOf(record.key), { kind: 'PutRecord', context, record, quorum, phase: 'closest', required: 0, success: [] })
  }

  private startAddProvider (key: Uint8Array, context: ProvideContext): QueryId {
    return this.startClosest(keyOf(key), { kind: 'AddProvider', context, key, phase: 'closest' })
  }

  private queryOf (tag: RequestTag): Query<Info> | undefined {
    const query = this.queries.get(tag.queryId)
    if (query === undefined || this.phases.get(tag.queryId) !== tag.phase) return undefined
    return query
  }

  private pollQueries (now: number): void {
    for (;;) {
      const state = this.queries.poll(now)
      if (state.type === 'Idle') return
      if (state.type === 'Waiting') {
        this.send(state.query, state.peer)
        continue
      }
      this.phases.delete(state.query.id)
      if (state.type === 'Finished') this.finished(state.query, now)
      else this.timedOut(state.query, now)
    }
  }

  /** Ask `peer` the query's question: on a connection if there is one, else after a dial. */
  private send (query: Query<Info>, peer: PeerKey): void {
    const message = this.requestOf(query.info)
    const tag: RequestTag = { queryId: query.id, phase: this.phases.get(query.id) ?? 0 }
    if (this.connected.has(peer.id)) {
      this.actions.notifyHandler(peer.peerId, 'any', { type: 'Request', tag, message })
      return
    }
    query.pendingRpcs.set(peer.id, { tag, message })
    this.actions.push({ type: 'Dial', opts: { peerId: peer.peerId } })
  }

  private requestOf (info: Info): Message {
    const base = { closerPeers: [], providerPeers: [], clusterLevelRaw: 10 }
    switch (info.kind) {
      case 'Bootstrap':
        return { ...base, type: 'FIND_NODE', key: info.target.toMultihash().bytes }
      case 'GetClosestPeers':
        return { ...base, type: 'FIND_NODE', key: info.key }
      case 'GetRecord':
        return { ...base, type: 'GET_VALUE', key: info.key }
      case 'GetProviders':
        return { ...base, type: 'GET_PROVIDERS', key: info.key }
      case 'PutRecord':
        if (info.phase === 'closest') return { ...base, type: 'FIND_NODE', key: info.record.key }
        return { ...base, type: 'PUT_VALUE', key: info.record.key, record: this.toWire(info.record) }
      case 'AddProvider':
        if (info.phase === 'closest') return { ...base, type: 'FIND_NODE', key: info.key }
        return {
          ...base,
          type: 'ADD_PROVIDER',
          key: info.key,
          providerPeers: [{ id: this.localPeerId, addrs: this.advertisedAddresses(), connection: 'CONNECTED' }]
        }
    }
  }

  private onResponse (peerId: PeerId, tag: RequestTag, request: Message['type'], response: Message | undefined): void {
    const query = this.queryOf(tag)
    if (query === undefined) return
    this.wakeUp()
    const info = query.info
    if (request === 'FIND_NODE') {
      this.discovered(query, peerId, response?.closerPeers ?? [])
      return
    }
    if (request === 'GET_VALUE' && info.kind === 'GetRecord') {
      const wire = response?.record
      if (wire !== undefined && equalBytes(wire.key, info.key)) {
        info.found = true
        const record = this.fromWire(wire)
        this.progressed(query.id, { type: 'GetRecord', ok: { type: 'FoundRecord', record: { record, peer: peerId } } }, this.statsOf(query), info.step)
        info.step = next(info.step)
      } else if (this.config.cacheCandidates > 0) {
        const key = keyOfPeer(peerId)
        const target = keyOf(info.key).hash
        info.candidates.push(key)
        info.candidates.sort((a, b) => compareBy(target, a, b))
        if (info.candidates.length > this.config.cacheCandidates) info.candidates.length = this.config.cacheCandidates
      }
      this.discovered(query, peerId, response?.closerPeers ?? [])
      return
    }
    if (request === 'GET_PROVIDERS' && info.kind === 'GetProviders') {
      const fresh: PeerInfo[] = []
      for (const provider of response?.providerPeers ?? []) {
        const id = provider.id.toString()
        if (info.seen.has(id)) continue
        info.seen.add(id)
        for (const address of provider.addrs) this.peerAddrs.add(provider.id, address)
        fresh.push({ peerId: provider.id, addresses: provider.addrs })
      }
      if (fresh.length > 0) {
        this.progressed(query.id, { type: 'GetProviders', ok: { type: 'FoundProviders', key: info.key, providers: fresh } }, this.statsOf(query), info.step)
        info.step = next(info.step)
      }
      this.discovered(query, peerId, [...(response?.closerPeers ?? []), ...(response?.providerPeers ?? [])])
      return
    }
    if (request === 'PUT_VALUE' && info.kind === 'PutRecord' && info.phase === 'put') {
      const echo = response?.record
      if (echo === undefined || !equalBytes(echo.value, info.record.value)) {
        query.onFailure(peerId)
        return
      }
      query.onSuccess(peerId)
      info.success.push(peerId)
      if (info.success.length >= info.required) query.finish()
      return
    }
    if (request === 'ADD_PROVIDER' && info.kind === 'AddProvider' && info.phase === 'add') {
      query.onSuccess(peerId)
    }
  }

  /** Merge the peers `source` named into the query. */
  private discovered (query: Query<Info>, source: PeerId, peers: readonly WirePeer[]): void {
    const keys: PeerKey[] = []
    for (const peer of peers) {
      if (peer.id.equals(this.localPeerId)) continue
      const key = keyOfPeer(peer.id)
      if (peer.addrs.length > 0) {
        const known = query.addresses.get(key.id)
        if (known === undefined) {
          query.addresses.set(key.id, peer.addrs.slice(0, MAX_ENTRY_ADDRESSES))
        } else {
          for (const a of peer.addrs) if (known.length < MAX_ENTRY_ADDRESSES && !known.some(k => k.equals(a))) known.push(a)
        }
      }
      keys.push(key)
    }
    query.onSuccess(source, keys)
  }

  private finished (query: Query<Info>, now: number): void {
    const info = query.info
    const stats = this.statsOf(query, now)
    switch (info.kind) {
      case 'Bootstrap': {
        const remaining = info.remaining ?? this.bucketRefreshKeys()
        const target = remaining.shift()
        const step = target === undefined ? last(info.step) : info.step
        if (target !== undefined) {
          this.startClosest(target, { kind: 'Bootstrap', target: peerIdOfKey(target), remaining, step: next(info.step) }, query.id)
        } else {
          this.bootstrapFinished()
        }
        this.progressed(query.id, { type: 'Bootstrap', ok: { peer: info.target, numRemaining: remaining.length + (target === undefined ? 0 : 1) } }, stats, step)
        return
      }
      case 'GetClosestPeers':
        this.progressed(query.id, { type: 'GetClosestPeers', ok: { key: info.key, peers: this.peerInfos(query) } }, stats, last(info.step))
        return
      case 'GetRecord':
        this.progressed(query.id, info.found
          ? { type: 'GetRecord', ok: { type: 'FinishedWithNoAdditionalRecord', cacheCandidates: info.candidates.map(k => k.peerId) } }
          : { type: 'GetRecord', error: new GetRecordError('NotFound', info.key, query.result().map(k => k.peerId)) }, stats, last(info.step))
        return
      case 'GetProviders':
        this.progressed(query.id, { type: 'GetProviders', ok: { type: 'FinishedWithNoAdditionalRecord', closestPeers: query.result().map(k => k.peerId) } }, stats, last(info.step))
        return
      case 'PutRecord': {
        if (info.phase === 'closest') {
          const peers = query.result()
          const required = Math.max(1, evalQuorum(info.quorum, peers.length))
          this.queries.addFixed(peers, { ...info, phase: 'put', required, success: [], before: stats }, query.id)
          this.phases.set(query.id, (this.phases.get(query.id) ?? 0) + 1)
          this.wakeUp()
          return
        }
        if (info.context === 'replicate') return
        const result = info.success.length >= info.required
          ? { ok: { key: info.record.key } }
          : { error: new PutRecordError('QuorumFailed', info.record.key, info.success, info.required) }
        this.progressed(query.id, { type: info.context === 'republish' ? 'RepublishRecord' : 'PutRecord', ...result } as QueryResult, stats, FIRST_AND_LAST)
        return
      }
      case 'AddProvider':
        if (info.phase === 'closest') {
          this.queries.addFixed(query.result(), { ...info, phase: 'add', before: stats }, query.id)
          this.phases.set(query.id, (this.phases.get(query.id) ?? 0) + 1)
          this.wakeUp()
          return
        }
        this.progressed(query.id, { type: info.context === 'republish' ? 'RepublishProvider' : 'StartProviding', ok: { key: info.key } }, stats, FIRST_AND_LAST)
    }
  }

  private timedOut (query: Query<Info>, now: number): void {
    const info = query.info
    const stats = this.statsOf(query, now)
    switch (info.kind) {
      case 'Bootstrap': {
        const remaining = info.remaining
        const target = remaining?.shift()
        let step = info.step
        if (target !== undefined && remaining !== undefined) {
          this.startClosest(target, { kind: 'Bootstrap', target: peerIdOfKey(target), remaining, step: next(info.step) }, query.id)
        } else {
          step = last(step)
          this.bootstrapFinished()
        }
        const numRemaining = remaining === undefined ? undefined : remaining.length + (target === undefined ? 0 : 1)
        this.progressed(query.id, { type: 'Bootstrap', error: new BootstrapError('Timeout', info.target, numRemaining) }, stats, step)
        return
      }
      case 'GetClosestPeers':
        this.progressed(query.id, { type: 'GetClosestPeers', error: new GetClosestPeersError('Timeout', info.key, this.peerInfos(query)) }, stats, last(info.step))
        return
      case 'GetRecord':
        this.progressed(query.id, { type: 'GetRecord', error: new GetRecordError('Timeout', info.key, query.result().map(k => k.peerId)) }, stats, last(info.step))
        return
      case 'GetProviders':
        this.progressed(query.id, { type: 'GetProviders', error: new GetProvidersError('Timeout', info.key, query.result().map(k => k.peerId)) }, stats, last(info.step))
        return
      case 'PutRecord': {
        if (info.context === 'replicate') return
        const error = new PutRecordError('Timeout', info.record.key, info.phase === 'put' ? info.success : [], info.required)
        this.progressed(query.id, { type: info.context === 'republish' ? 'RepublishRecord' : 'PutRecord', error }, stats, FIRST_AND_LAST)
        return
      }
      case 'AddProvider':
        this.progressed(query.id, { type: info.context === 'republish' ? 'RepublishProvider' : 'StartProviding', error: new AddProviderError('Timeout', info.key) }, stats, FIRST_AND_LAST)
    }
  }

  private progressed (id: QueryId, result: QueryResult, stats: QueryStats, step: ProgressStep): void {
    this.actions.generate({ type: 'OutboundQueryProgressed', id, result, stats, step })
  }

  private statsOf (query: Query<Info>, now = performance.now()): QueryStats {
    return query.stats.snapshot(now, 'before' in query.info ? query.info.before : undefined)
  }

  /** The peers of a finished lookup with every address we know for them. */
  private peerInfos (query: Query<Info>): PeerInfo[] {
    return query.result().map(key => {
      const out = new Map<string, Multiaddr>()
      for (const a of [...(query.addresses.get(key.id) ?? []), ...(this.table.get(key)?.addresses ?? []), ...this.peerAddrs.get(key.peerId)]) out.set(a.toString(), a)
      return { peerId: key.peerId, addresses: [...out.values()] }
    })
  }

  /** A random key in each bucket farther than the closest non-empty one (16 tries each, as rust). */
  private bucketRefreshKeys (): Key[] {
    const keys: Key[] = []
    // Every bucket beyond the closest non-empty one, empty or not.
    const closest = this.table.nonEmpty().next().value?.index ?? 255
    for (let index = closest + 1; index < 256; index++) keys.push(randomKeyIn(this.table.local.hash, index))
    return keys
  }

  // ---- inbound requests --------------------------------------------------------------------

  private answer (source: PeerId, connectionId: ConnectionId, request: Message, channel: InboundChannel): void {
    const key = request.key
    const reply = (message: Omit<Message, 'closerPeers' | 'providerPeers'> & Partial<Message>): void => {
      channel.respond({ closerPeers: [], providerPeers: [], clusterLevelRaw: 9, ...message })
    }
    if (key === undefined && request.type !== 'PUT_VALUE') {
      channel.reset()
      return
    }
    switch (request.type) {
      case 'FIND_NODE': {
        const closerPeers = this.closerPeers(key as Uint8Array, source)
        reply({ type: 'FIND_NODE', closerPeers })
        this.inbound(source, { type: 'FindNode', numCloserPeers: closerPeers.length })
        return
      }
      case 'GET_VALUE': {
        const record = this.store.get(key as Uint8Array)
        const closerPeers = this.closerPeers(key as Uint8Array, source)
        reply({ type: 'GET_VALUE', key, record: record === undefined ? undefined : this.toWire(record), closerPeers })
        this.inbound(source, { type: 'GetRecord', numCloserPeers: closerPeers.length, presentLocally: record !== undefined })
        return
      }
      case 'GET_PROVIDERS': {
        const providerPeers = this.providerPeers(key as Uint8Array, source)
        const closerPeers = this.closerPeers(key as Uint8Array, source)
        reply({ type: 'GET_PROVIDERS', key, providerPeers, closerPeers })
        this.inbound(source, { type: 'GetProvider', numCloserPeers: closerPeers.length, numProviderPeers: providerPeers.length })
        return
      }
      case 'PUT_VALUE':
        this.recordReceived(source, connectionId, request, channel)
        return
      case 'ADD_PROVIDER':
        for (const peer of request.providerPeers) {
          // Only the sender may announce itself.
          if (!peer.id.equals(source)) continue
          const record: ProviderRecord = { key: key as Uint8Array, provider: source, expires: this.expiry(this.config.providerRecordTtl), addresses: peer.addrs }
          let stored = this.config.filter?.({ type: 'AddProvider', source, record }) ?? true
          if (stored) {
            try {
              this.store.addProvider(record)
            } catch (err) {
              if (!(err instanceof StoreError)) throw err
              log('provider record of %p not stored: %s', source, err.message)
              stored = false
            }
          }
          this.inbound(source, { type: 'AddProvider', record, stored })
          return
        }
        return
      default:
        channel.reset()
    }
  }

  private recordReceived (source: PeerId, connection: ConnectionId, request: Message, channel: InboundChannel): void {
    const wire = request.record
    if (wire === undefined || (request.key !== undefined && !equalBytes(request.key, wire.key))) {
      channel.reset()
      return
    }
    const echo = (): void => {
      channel.respond({ type: 'PUT_VALUE', key: wire.key, record: { key: wire.key, value: wire.value }, closerPeers: [], providerPeers: [] })
    }
    let record = this.fromWire(wire)
    // Our own records never change by replication: the publisher is right.
    if (record.publisher?.equals(this.localPeerId) === true) {
      echo()
      return
    }
    // Records far from us (more than k nodes closer to the key) expire sooner, exponentially.
    const target = keyOf(record.key).hash
    const beyondK = Math.max(0, this.table.countCloserThanLocal(target) - this.config.replicationFactor)
    const ttl = this.config.recordTtl
    const expiration = ttl === null ? undefined : Date.now() + Math.floor(ttl / 2 ** beyondK)
    const expires = record.expires === undefined ? expiration : expiration === undefined ? record.expires : Math.min(record.expires, expiration)
    record = { ...record, expires }
    let stored = this.config.filter?.({ type: 'PutRecord', source, record }) ?? true
    if (stored) {
      try {
        this.store.put(record)
      } catch (err) {
        if (!(err instanceof StoreError)) throw err
        log('record from %p not stored: %s', source, err.message)
        stored = false
      }
    }
    if (stored) {
      // The sender replicated it to the k closest: the next replication run skips it here. The
      // set is bounded (a store holds a bounded number of records; beyond, skipping is moot).
      if (this.replicationAt !== undefined && this.skipped.size < MAX_SKIPPED) this.skipped.add(keyString(record.key))
      echo()
    } else {
      channel.reset()
    }
    this.inbound(source, { type: 'PutRecord', connection, record, stored })
  }

  private inbound (peer: PeerId, request: InboundRequest): void {
    this.actions.generate({ type: 'InboundRequest', peer, request })
  }

  /** Up to k peers of our table closest to `key`, never the requester, each with its addresses. */
  private closerPeers (key: Uint8Array, source: PeerId): WirePeer[] {
    const sourceId = source.toString()
    const out: WirePeer[] = []
    for (const entry of this.table.closest(keyOf(key).hash, this.config.replicationFactor + 1)) {
      if (entry.key.id === sourceId || entry.addresses.length === 0) continue
      out.push({ id: entry.key.peerId, addrs: entry.addresses, connection: this.connected.has(entry.key.id) ? 'CONNECTED' : 'NOT_CONNECTED' })
      if (out.length >= this.config.replicationFactor) break
    }
    return out
  }

  /** The providers of `key` we know, but the requester, each with addresses (up to k). */
  private providerPeers (key: Uint8Array, source: PeerId): WirePeer[] {
    const out: WirePeer[] = []
    for (const record of this.store.providers(key)) {
      if (record.provider.equals(source)) continue
      const { peerId, addresses } = this.providerInfo(record)
      if (addresses.length === 0) continue
      out.push({ id: peerId, addrs: addresses, connection: this.connected.has(peerId.toString()) ? 'CONNECTED' : 'NOT_CONNECTED' })
      if (out.length >= this.config.replicationFactor) break
    }
    return out
  }

  /** A provider with addresses: ours now, else those it gave, else those of its table entry. */
  private providerInfo (record: ProviderRecord): PeerInfo {
    if (record.provider.equals(this.localPeerId)) return { peerId: this.localPeerId, addresses: this.advertisedAddresses() }
    if (record.addresses.length > 0) return { peerId: record.provider, addresses: record.addresses }
    return { peerId: record.provider, addresses: this.table.get(keyOfPeer(record.provider))?.addresses ?? this.peerAddrs.get(record.provider) }
  }

  /** Confirmed external addresses, or listen addresses when none is confirmed. */
  private advertisedAddresses (): Multiaddr[] {
    const external = [...this.externalAddrs]
    return external.length > 0 ? external : [...this.listenAddrs]
  }

  private toWire (record: Record): WireRecord {
    const now = Date.now()
    return {
      key: record.key,
      value: record.value,
      timeReceived: rfc3339Now(now),
      publisher: record.publisher?.toMultihash().bytes,
      ttl: record.expires === undefined ? undefined : Math.max(1, Math.ceil((record.expires - now) / 1000))
    }
  }

  private fromWire (wire: WireRecord): Record {
    let publisher: PeerId | undefined
    if (wire.publisher !== undefined) {
      try {
        publisher = peerIdFromMultihash(Digest.decode(wire.publisher))
      } catch {
        publisher = undefined
      }
    }
    return {
      key: wire.key,
      value: wire.value,
      publisher,
      expires: wire.ttl === undefined || wire.ttl === 0 ? undefined : Date.now() + wire.ttl * 1000
    }
  }

  private expiry (ttl: number | null): number | undefined {
    return ttl === null ? undefined : Date.now() + ttl
  }

  // ---- routing table, internals ---------------------------------------------------------

  private handler (peerId: PeerId): Handler {
    const handler = new Handler({ config: this.config, mode: this.currentMode, peerId })
    // Requests that waited for this connection go with it.
    const id = peerId.toString()
    for (const query of this.queries.values()) {
      const rpc = query.pendingRpcs.get(id) as PendingRpc | undefined
      if (rpc === undefined) continue
      query.pendingRpcs.delete(id)
      handler.onBehaviourEvent({ type: 'Request', tag: rpc.tag, message: rpc.message })
    }
    return handler
  }

  /** rust's `connection_updated`: a peer's status (and maybe addresses) changed. */
  private connectionUpdated (peerId: PeerId, addresses: Multiaddr[], status: NodeStatus): void {
    if (peerId.equals(this.localPeerId)) return
    const key = keyOfPeer(peerId)
    const entry = this.table.get(key)
    if (entry !== undefined) {
      if (entry.status !== status) this.table.update(key, status)
      if (addAddresses(entry, addresses)) this.routingUpdated(entry, false)
      return
    }
    const pending = this.table.getPending(key)
    if (pending !== undefined) {
      addAddresses(pending, addresses)
      if (pending.status !== status) this.table.update(key, status)
      return
    }
    if (status !== 'connected') return
    if (addresses.length === 0) {
      this.actions.generate({ type: 'UnroutablePeer', peer: peerId })
      return
    }
    if (this.config.bucketInserts === 'manual') {
      this.actions.generate({ type: 'RoutablePeer', peer: peerId, address: addresses[0] })
      return
    }
    const result = this.table.insert(key, dedupe(addresses), 'connected')
    switch (result.type) {
      case 'Inserted':
        this.bootstrapOnLowPeers()
        this.routingUpdated(this.table.get(key) as Entry, true)
        break
      case 'Full':
        this.actions.generate({ type: 'RoutablePeer', peer: peerId, address: addresses[0] })
        break
      case 'Pending':
        this.actions.generate({ type: 'PendingRoutablePeer', peer: peerId, address: addresses[0] })
        if (!this.connected.has(result.disconnected.id)) this.actions.push({ type: 'Dial', opts: { peerId: result.disconnected.peerId } })
        break
    }
  }

  private routingUpdated (entry: Entry, isNewPeer: boolean): void {
    this.actions.generate({
      type: 'RoutingUpdated',
      peer: entry.key.peerId,
      isNewPeer,
      addresses: [...entry.addresses],
      bucketRange: bucketRange(this.table.bucketOf(entry.key))
    })
  }

  /** An address failed: it leaves the peer's entry, unless it is the last one (as rust). */
  private addressFailed (peerId: PeerId, address: Multiaddr): void {
    const bare = withoutPeerSuffix(address, peerId)
    if (bare === undefined) return
    const text = bare.toString()
    const entry = this.table.get(keyOfPeer(peerId))
    if (entry !== undefined && entry.addresses.length > 1) entry.addresses = entry.addresses.filter(a => a.toString() !== text)
    for (const query of this.queries.values()) {
      const known = query.addresses.get(peerId.toString())
      if (known !== undefined) query.addresses.set(peerId.toString(), known.filter(a => a.toString() !== text))
    }
  }

  // ---- mode ----------------------------------------------------------------------------

  private determineMode (): void {
    this.changeMode(this.externalAddrs.size > 0 ? 'server' : 'client')
  }

  private changeMode (mode: Mode): void {
    if (mode === this.currentMode) return
    this.currentMode = mode
    log('now in %s mode', mode)
    for (const [connectionId, { peerId }] of this.connections) {
      this.actions.notifyHandler(peerId, connectionId, { type: 'ReconfigureMode', mode })
    }
    this.actions.generate({ type: 'ModeChanged', newMode: mode })
  }

  // ---- periodic work ---------------------------------------------------------------------

  private bootstrapOnLowPeers (): void {
    if (this.table.size < this.config.replicationFactor) this.triggerBootstrap()
  }

  private triggerBootstrap (): void {
    if (this.bootstrapQuery !== undefined && this.queries.get(this.bootstrapQuery) !== undefined) return
    this.bootstrapDue ??= performance.now() + AUTOMATIC_BOOTSTRAP_DELAY
    this.wakeUp()
  }

  private bootstrapFinished (): void {
    this.bootstrapQuery = undefined
    if (this.config.periodicBootstrapInterval !== null) this.periodicBootstrapAt = performance.now() + this.config.periodicBootstrapInterval
  }

  private runJobs (now: number): void {
    const bootstrapRunning = this.bootstrapQuery !== undefined && this.queries.get(this.bootstrapQuery) !== undefined
    if (!bootstrapRunning && ((this.bootstrapDue !== undefined && now >= this.bootstrapDue) || (this.periodicBootstrapAt !== undefined && now >= this.periodicBootstrapAt))) {
      this.bootstrapDue = undefined
      try {
        this.bootstrap()
      } catch (err) {
        if (!(err instanceof NoKnownPeersError)) throw err
        log('periodic bootstrap skipped: no known peer')
      }
    }
    const interval = this.config.replicationInterval
    if (this.replicationAt !== undefined && interval !== null && now >= this.replicationAt) {
      this.replicationAt = now + interval
      const publish = this.nextPublish !== undefined && now >= this.nextPublish
      if (publish && this.config.publicationInterval !== null) this.nextPublish = now + this.config.publicationInterval
      const records: Array<{ record: Record, context: PutContext }> = []
      for (const record of this.store.records()) {
        const mine = record.publisher?.equals(this.localPeerId) === true
        if (this.skipped.has(keyString(record.key)) || (mine && !publish)) continue
        const sent = mine ? { ...record, expires: record.expires ?? this.expiry(this.config.recordTtl) } : record
        records.push({ record: sent, context: mine ? 'republish' : 'replicate' })
      }
      this.skipped.clear()
      this.jobRecords = records
    }
    const providerInterval = this.config.providerPublicationInterval
    if (this.providerPublicationAt !== undefined && providerInterval !== null && now >= this.providerPublicationAt) {
      this.providerPublicationAt = now + providerInterval
      this.jobProviders = [...this.store.provided()]
    }
    let capacity = Math.min(JOBS_MAX_NEW_QUERIES, Math.max(0, JOBS_MAX_QUERIES - this.queries.size))
    while (capacity > 0 && this.jobProviders.length > 0) {
      const record = this.jobProviders.shift() as ProviderRecord
      if (record.expires !== undefined && record.expires <= Date.now()) {
        this.store.removeProvider(record.key, record.provider)
        continue
      }
      this.startAddProvider(record.key, 'republish')
      capacity--
    }
    while (capacity > 0 && this.jobRecords.length > 0) {
      const { record, context } = this.jobRecords.shift() as { record: Record, context: PutContext }
      if (record.expires !== undefined && record.expires <= Date.now()) {
        this.store.remove(record.key)
        continue
      }
      this.startPutRecord(record, 'all', context)
      capacity--
    }
  }

  /** Arm the one timer for the earliest deadline: a job, a bootstrap, a query or a pending entry. */
  private schedule (): void {
    if (this.closed) return
    let at = Infinity
    for (const when of [this.bootstrapDue, this.periodicBootstrapAt, this.replicationAt, this.providerPublicationAt, this.queries.nextDeadline(), this.table.nextPendingDue()]) {
      if (when !== undefined && when < at) at = when
    }
    if (this.jobRecords.length > 0 || this.jobProviders.length > 0) at = Math.min(at, performance.now() + 1_000)
    if (at === this.timerAt) return
    clearTimeout(this.timer)
    this.timer = undefined
    this.timerAt = at
    if (at === Infinity) return
    const delay = Math.min(MAX_TIMER_DELAY, Math.max(0, Math.ceil(at - performance.now())))
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.timerAt = Infinity
      this.wakeUp()
    }, delay)
  }

  /** Something changed for the queries or the jobs: look at them at the next poll. */
  private wakeUp (): void {
    this.dirty = true
    this.actions.wake()
  }
}

function view (entry: Entry): EntryView {
  return { peerId: entry.key.peerId, addresses: [...entry.addresses], status: entry.status }
}

/** Add `addresses` to an entry (bounded, oldest dropped); true if one was new. */
function addAddresses (entry: Entry, addresses: readonly Multiaddr[]): boolean {
  let changed = false
  for (const address of addresses) {
    const text = address.toString()
    if (entry.addresses.some(a => a.toString() === text)) continue
    entry.addresses.push(address)
    if (entry.addresses.length > MAX_ENTRY_ADDRESSES) entry.addresses.shift()
    changed = true
  }
  return changed
}

function dedupe (addresses: readonly Multiaddr[]): Multiaddr[] {
  const out = new Map<string, Multiaddr>()
  for (const a of addresses) out.set(a.toString(), a)
  return [...out.values()]
}

function keyBytes (key: Uint8Array | PeerId): Uint8Array {
  return key instanceof Uint8Array ? key : key.toMultihash().bytes
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

function compareBy (target: Uint8Array, a: PeerKey, b: PeerKey): number {
  for (let i = 0; i < 32; i++) {
    const da = a.hash[i] ^ target[i]
    const db = b.hash[i] ^ target[i]
    if (da !== db) return da - db
  }
  return 0
}

function checkQuorum (quorum: Quorum): void {
  if (quorum === 'one' || quorum === 'majority' || quorum === 'all') return
  if (!Number.isSafeInteger(quorum) || quorum < 1) throw new ConfigError('quorum', `must be "one", "majority", "all" or a positive integer, got ${String(quorum)}`)
}

/** The number of peers `quorum` asks for among `total`. */
export function evalQuorum (quorum: Quorum, total: number): number {
  switch (quorum) {
    case 'one': return 1
    case 'majority': return Math.floor(total / 2) + 1
    case 'all': return total
    default: return Math.min(quorum, total)
  }
}

function emptyStats (): QueryStats {
  return Object.freeze({ requests: 0, success: 0, failure: 0, pending: 0 })
}

function resultType (info: Info): QueryResult['type'] {
  switch (info.kind) {
    case 'PutRecord': return info.context === 'republish' ? 'RepublishRecord' : 'PutRecord'
    case 'AddProvider': return info.context === 'republish' ? 'RepublishProvider' : 'StartProviding'
    default: return info.kind
  }
}

/** A random peer-id-shaped key (a SHA-256 multihash) in bucket `index` of `local`, best of 16 tries. */
function randomKeyIn (local: Uint8Array, index: number): Key {
  let key = randomPeerKey()
  for (let i = 0; i < 16; i++) {
    if (bucketIndex(local, key.hash) === index) break
    key = randomPeerKey()
  }
  return key
}

function randomPeerKey (): Key {
  const digest = new Uint8Array(34)
  digest[0] = 0x12
  digest[1] = 0x20
  crypto.getRandomValues(digest.subarray(2))
  return keyOf(digest)
}

function peerIdOfKey (key: Key): PeerId {
  return peerIdFromMultihash(Digest.decode(key.preimage))
}
