/**
 * What Kademlia reports and hands out, in order:
 *
 * 1. `Quorum` and a query's `ProgressStep`;
 * 2. the query results (`BootstrapOk`, `GetClosestPeersOk`, `GetRecordOk`, `PutRecordOk`,
 *    `AddProviderOk`, `GetProvidersOk`, `QueryResult`);
 * 3. what peers asked (`InboundRequest`) and the behaviour's `Event`s;
 * 4. the views `kbuckets()` and `query(id)` give (`KBucketRef`, `QueryRef`).
 *
 * @module
 */
import type {
  AddProviderError, BootstrapError, GetClosestPeersError, GetProvidersError, GetRecordError, PeerInfo, PutRecordError
} from './errors.js'
import type { Mode } from './config.js'
import type { EntryView } from './kbucket.js'
import type { QueryId, QueryStats } from './query.js'
import type { ProviderRecord, Record } from './store.js'
import type { ConnectionId } from '../../core/ids.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

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
  /** Its requests so far: sent, answered, failed, and when it started (and ended). */
  stats(): QueryStats
  /** End it now: it reports what it has, as if it had run out of peers. */
  finish(): void
}
