/**
 * Kademlia's options, with rust-libp2p's defaults, validated into a frozen {@link Config}.
 *
 * @module
 */
import { ConfigError } from '../../core/errors.js'
import { checkDelay } from '../../core/timers.js'
import type { ProviderRecord, Record, RecordStore } from './store.js'
import type { PeerId } from '@libp2p/interface'

/** The default protocol id, of the public IPFS DHT ("Amino") and of rust- and js-libp2p. */
export const PROTOCOL = '/ipfs/kad/1.0.0'

/** `'server'` answers requests (and advertises the protocol); `'client'` only asks. */
export type Mode = 'client' | 'server'

/**
 * How peers confirmed to speak Kademlia enter the routing table: `'onConnected'` (default) at
 * once; `'manual'` never by themselves (the application gets `RoutablePeer` and calls
 * `addAddress`).
 */
export type BucketInserts = 'onConnected' | 'manual'

/**
 * What {@link Config.filter} is given: a record or provider record sent by `source`, before it
 * is stored (rust-libp2p's `StoreInserts::FilterBoth`, as a predicate).
 */
export type FilterRequest =
  | { readonly type: 'PutRecord', readonly source: PeerId, readonly record: Record }
  | { readonly type: 'AddProvider', readonly source: PeerId, readonly record: ProviderRecord }

/** Kademlia's options. Durations are in ms; `null` turns a periodic job or an expiry off. */
export interface Config {
  /** Protocol ids, in order of preference (default `['/ipfs/kad/1.0.0']`). */
  readonly protocolNames: readonly string[]
  /**
   * Fixed mode; left out (`undefined`): automatic, a client until the swarm has a confirmed
   * external address, then a server (as rust-libp2p).
   */
  readonly mode?: Mode
  /** k: bucket size, replication factor and result size (default 20). */
  readonly replicationFactor: number
  /** α: requests in flight per lookup (default 3). */
  readonly parallelism: number
  /** A query's time limit (default 60 s). */
  readonly queryTimeout: number
  /** How long a record is kept by the peers it is stored at (default 48 h; `null`: forever). */
  readonly recordTtl: number | null
  /** How long provider records are kept (default 48 h; `null`: forever). */
  readonly providerRecordTtl: number | null
  /** Stored records are sent again to the k closest peers this often (default 1 h; `null`: never). */
  readonly replicationInterval: number | null
  /** Our own records are published again this often (default 22 h; `null`: never). */
  readonly publicationInterval: number | null
  /** Our provider records are published again this often (default 12 h; `null`: never). */
  readonly providerPublicationInterval: number | null
  /** Bootstrap runs this often (default 5 min; `null`: only when asked or when the table is thin). */
  readonly periodicBootstrapInterval: number | null
  /** Largest message read or written, in bytes (default 16 KiB). */
  readonly maxPacketSize: number
  /** Time limit of one request to one peer, stream negotiation included (default 10 s). */
  readonly substreamsTimeout: number
  /** How long a full bucket's pending entry waits before it replaces a disconnected one (default 60 s). */
  readonly kbucketPendingTimeout: number
  /** Remote streams served at once per connection (default 32, as rust); more are reset. */
  readonly maxInboundStreams: number
  /** Our requests with a stream at once per connection (default 32); more wait. */
  readonly maxOutboundStreams: number
  /** See {@link BucketInserts} (default `'onConnected'`). */
  readonly bucketInserts: BucketInserts
  /**
   * Peers that lacked a record, reported after a `getRecord` as `cacheCandidates` (the closest
   * first; default 1, 0: none), for the application's `putRecordTo`.
   */
  readonly cacheCandidates: number
  /**
   * Return false to refuse a record or provider record before it is stored (default: all are
   * stored, as rust-libp2p). A refused `PUT_VALUE` has its stream reset, as js-libp2p does for a
   * record that fails validation.
   */
  readonly filter?: (request: FilterRequest) => boolean
  /** The record store (default: a `MemoryStore` with rust's limits, made by the behaviour). */
  readonly store?: RecordStore
}

const HOUR = 3_600_000

/** Defaults (rust-libp2p's). */
export const defaultConfig: Config = Object.freeze({
  protocolNames: Object.freeze([PROTOCOL]),
  replicationFactor: 20,
  parallelism: 3,
  queryTimeout: 60_000,
  recordTtl: 48 * HOUR,
  providerRecordTtl: 48 * HOUR,
  replicationInterval: HOUR,
  publicationInterval: 22 * HOUR,
  providerPublicationInterval: 12 * HOUR,
  periodicBootstrapInterval: 5 * 60_000,
  maxPacketSize: 16 * 1024,
  substreamsTimeout: 10_000,
  kbucketPendingTimeout: 60_000,
  maxInboundStreams: 32,
  maxOutboundStreams: 32,
  bucketInserts: 'onConnected',
  cacheCandidates: 1
})

/** Validate `options` over the defaults; throws `ConfigError` naming the bad field. */
export function config (options: Partial<Config> = {}): Config {
  const result = { ...defaultConfig, ...options }
  const names = result.protocolNames
  if (!Array.isArray(names) || names.length === 0) throw new ConfigError('protocolNames', 'at least one protocol id is needed')
  for (const name of names) {
    if (typeof name !== 'string' || !name.startsWith('/') || name.includes('\n')) {
      throw new ConfigError('protocolNames', `a protocol id starts with "/" and has no newline, got ${JSON.stringify(name)}`)
    }
  }
  if (new Set(names).size !== names.length) throw new ConfigError('protocolNames', 'a protocol id is listed twice')
  if (result.mode !== undefined && result.mode !== 'client' && result.mode !== 'server') {
    throw new ConfigError('mode', `must be "client", "server" or left out, got ${String(result.mode)}`)
  }
  positiveInteger('replicationFactor', result.replicationFactor, 1_000)
  positiveInteger('parallelism', result.parallelism, 1_000)
  positiveInteger('maxPacketSize', result.maxPacketSize, 64 * 1024 * 1024)
  positiveInteger('maxInboundStreams', result.maxInboundStreams, 10_000)
  positiveInteger('maxOutboundStreams', result.maxOutboundStreams, 10_000)
  if (!Number.isSafeInteger(result.cacheCandidates) || result.cacheCandidates < 0) {
    throw new ConfigError('cacheCandidates', `must be a non-negative integer, got ${String(result.cacheCandidates)}`)
  }
  for (const field of ['queryTimeout', 'substreamsTimeout', 'kbucketPendingTimeout'] as const) duration(field, result[field])
  for (const field of ['replicationInterval', 'publicationInterval', 'providerPublicationInterval', 'periodicBootstrapInterval'] as const) {
    const value = result[field]
    if (value !== null) duration(field, value)
  }
  // TTLs are compared with clocks, never waited for by one timer: any positive duration is fine.
  for (const field of ['recordTtl', 'providerRecordTtl'] as const) {
    const value = result[field]
    if (value !== null && (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)) {
      throw new ConfigError(field, `must be a positive number of milliseconds or null, got ${String(value)}`)
    }
  }
  if (result.bucketInserts !== 'onConnected' && result.bucketInserts !== 'manual') {
    throw new ConfigError('bucketInserts', `must be "onConnected" or "manual", got ${String(result.bucketInserts)}`)
  }
  if (result.filter !== undefined && typeof result.filter !== 'function') throw new ConfigError('filter', 'must be a function')
  if (result.store !== undefined && (typeof result.store !== 'object' || result.store === null || typeof result.store.put !== 'function')) {
    throw new ConfigError('store', 'must be a RecordStore')
  }
  return Object.freeze({ ...result, protocolNames: Object.freeze([...names]) })
}

function positiveInteger (field: string, value: unknown, max: number): void {
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > max) {
    throw new ConfigError(field, `must be an integer from 1 to ${max}, got ${String(value)}`)
  }
}

function duration (field: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(field, `must be a positive number of milliseconds, got ${String(value)}`)
  }
  checkDelay(field, value)
}
