/**
 * The state Kademlia's phases share, and the primitives they use. The phases are functions over
 * it, each in its own file (rust-libp2p keeps them all in its `behaviour.rs`): `queries.ts`
 * (starting and driving queries, their results and events), `inbound.ts` (answering requests),
 * `routing.ts` (routing-table upkeep, learning peers), `maintenance.ts` (the automatic and
 * periodic bootstrap, record and provider republication and replication, the timer) and
 * `behaviour.ts` (the public API and the swarm's entry points).
 *
 * In order: what a query is for (`Info`) and its progress steps; `KadState`, with its
 * primitives: waking the behaviour up, reporting a query's progress and stats, record expiry,
 * the addresses we advertise and a provider's addresses, and the wire form of records.
 *
 * @module
 */
import { peerIdFromMultihash } from '@libp2p/peer-id'
import * as Digest from 'multiformats/hashes/digest'
import { ActionQueue } from '../../behaviour/action-queue.js'
import { ExternalAddresses, ListenAddresses, PeerAddresses } from '../../behaviour/addresses.js'
import { config as kadConfig } from './config.js'
import { keyOfPeer, KBucketsTable, MAX_ENTRY_ADDRESSES } from './kbucket.js'
import { rfc3339Now } from './message.js'
import { QueryPool } from './query.js'
import { MemoryStore } from './store.js'
import type { Config, Mode } from './config.js'
import type { PeerInfo } from './errors.js'
import type { Event, ProgressStep, QueryResult, Quorum } from './events.js'
import type { FromBehaviour, RequestTag } from './handler.js'
import type { Key, PeerKey } from './kbucket.js'
import type { Message, WireRecord } from './message.js'
import type { Query, QueryId, QueryStats } from './query.js'
import type { ProviderRecord, Record, RecordStore } from './store.js'
import type { ConnectedPoint, ConnectionId } from '../../core/ids.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export type PutContext = 'publish' | 'republish' | 'replicate' | 'custom'
export type ProvideContext = 'publish' | 'republish'

/** What a query is for, and where it stands. */
export type Info =
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
export interface PendingRpc {
  readonly tag: RequestTag
  readonly message: Message
}

/** Addresses kept per peer learnt from the swarm (identify, mDNS, the application). */
const KNOWN_PEERS = 1024

export const FIRST: ProgressStep = Object.freeze({ count: 1, last: false })
export const next = (step: ProgressStep): ProgressStep => ({ count: step.count + 1, last: false })
export const last = (step: ProgressStep): ProgressStep => ({ count: step.count, last: true })
export const FIRST_AND_LAST: ProgressStep = Object.freeze({ count: 1, last: true })

/** Everything `kad.Behaviour` knows; its phases read and change it. */
export class KadState {
  readonly config: Config
  readonly localPeerId: PeerId
  readonly store: RecordStore
  readonly table: KBucketsTable
  readonly queries: QueryPool<Info>
  readonly actions = new ActionQueue<Event, FromBehaviour>()
  readonly listenAddrs = new ListenAddresses()
  readonly externalAddrs = new ExternalAddresses()
  readonly peerAddrs = new PeerAddresses({ peers: KNOWN_PEERS, addressesPerPeer: MAX_ENTRY_ADDRESSES })
  readonly connections = new Map<ConnectionId, { readonly peerId: PeerId, readonly endpoint: ConnectedPoint }>()
  /** Connected peers and their number of connections. */
  readonly connected = new Map<string, number>()
  /** Connected peers confirmed to speak one of our protocols. */
  readonly confirmed = new Set<string>()
  /** Phase counter per query, so that late answers of an earlier phase are told apart. */
  readonly phases = new Map<QueryId, number>()
  currentMode: Mode
  autoMode: boolean
  bootstrapQuery?: QueryId
  bootstrapDue?: number
  periodicBootstrapAt?: number
  replicationAt?: number
  nextPublish?: number
  providerPublicationAt?: number
  readonly skipped = new Set<string>()
  jobRecords: Array<{ readonly record: Record, readonly context: PutContext }> = []
  jobProviders: ProviderRecord[] = []
  timer?: ReturnType<typeof setTimeout>
  timerAt = Infinity
  inboundErrors = 0
  dirty = true
  closed = false

  constructor (localPeerId: PeerId, options: Partial<Config>) {
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
  }

  /** Something changed for the queries or the jobs: look at them at the next poll. */
  wakeUp (): void {
    this.dirty = true
    this.actions.wake()
  }

  progressed (id: QueryId, result: QueryResult, stats: QueryStats, step: ProgressStep): void {
    this.actions.generate({ type: 'OutboundQueryProgressed', id, result, stats, step })
  }

  statsOf (query: Query<Info>, now = performance.now()): QueryStats {
    return query.stats.snapshot(now, 'before' in query.info ? query.info.before : undefined)
  }

  expiry (ttl: number | null): number | undefined {
    return ttl === null ? undefined : Date.now() + ttl
  }

  /** Confirmed external addresses, or listen addresses when none is confirmed. */
  advertisedAddresses (): Multiaddr[] {
    const external = [...this.externalAddrs]
    return external.length > 0 ? external : [...this.listenAddrs]
  }

  /** A provider with addresses: ours now, else those it gave, else those of its table entry. */
  providerInfo (record: ProviderRecord): PeerInfo {
    if (record.provider.equals(this.localPeerId)) return { peerId: this.localPeerId, addresses: this.advertisedAddresses() }
    if (record.addresses.length > 0) return { peerId: record.provider, addresses: record.addresses }
    return { peerId: record.provider, addresses: this.table.get(keyOfPeer(record.provider))?.addresses ?? this.peerAddrs.get(record.provider) }
  }

  toWire (record: Record): WireRecord {
    const now = Date.now()
    return {
      key: record.key,
      value: record.value,
      timeReceived: rfc3339Now(now),
      publisher: record.publisher?.toMultihash().bytes,
      ttl: record.expires === undefined ? undefined : Math.max(1, Math.ceil((record.expires - now) / 1000))
    }
  }

  fromWire (wire: WireRecord): Record {
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
}

export function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}
