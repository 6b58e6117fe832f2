/**
 * The routing table, as rust-libp2p's `KBucketsTable`: every key, peer ids included, is mapped
 * into a 256-bit space by SHA-256 of its bytes (of a peer id's multihash bytes); the distance
 * of two keys is the XOR of their digests as a big-endian number. Peers sit in 256 buckets by
 * the length of the prefix they share with the local key, each holding at most k of them.
 *
 * In a bucket, disconnected entries come first, then connected ones, each group least recently
 * seen first. A connected peer arriving at a full bucket whose first entry is disconnected
 * becomes the bucket's one pending entry; once it has waited `pendingTimeout` it replaces that
 * first entry, unless the entry reconnected meanwhile (which drops the pending one). A
 * disconnected newcomer, or any newcomer when every entry is connected or another is pending,
 * is refused.
 *
 * @module
 */
import { sha256 } from '@noble/hashes/sha2.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** Whether a peer in the table is connected to us. */
export type NodeStatus = 'connected' | 'disconnected'

/** What inserting a peer did (rust-libp2p's `RoutingUpdate`). */
export type RoutingUpdate = 'Success' | 'Pending' | 'Failed'

/** Addresses kept per routing-table entry; the oldest is dropped beyond. */
export const MAX_ENTRY_ADDRESSES = 16

/** A key in the Kademlia space: its preimage and the SHA-256 digest distances are taken on. */
export interface Key {
  readonly preimage: Uint8Array
  readonly hash: Uint8Array
}

/** A peer's key: its id and the digest of its multihash bytes. */
export interface PeerKey extends Key {
  readonly peerId: PeerId
  /** `peerId.toString()`. */
  readonly id: string
}

/** The key of arbitrary bytes. */
export function keyOf (bytes: Uint8Array): Key {
  return { preimage: bytes, hash: sha256(bytes) }
}

const peerKeys = new Map<string, PeerKey>()
const PEER_KEY_CACHE = 4096

/**
 * The key of a peer (cached: ids are hashed once while they are in use). The cache is keyed by
 * the multihash's bytes, not by `peerId.toString()`: the peers of every answer are fresh
 * `PeerId`s, and their base58 text cost 2% of a Kademlia simulation's CPU.
 */
export function keyOfPeer (peerId: PeerId): PeerKey {
  const preimage = peerId.toMultihash().bytes
  const bytes = String.fromCharCode.apply(null, preimage as unknown as number[])
  const cached = peerKeys.get(bytes)
  if (cached !== undefined) return cached
  const key: PeerKey = { peerId, id: peerId.toString(), preimage, hash: sha256(preimage) }
  if (peerKeys.size >= PEER_KEY_CACHE) peerKeys.delete(peerKeys.keys().next().value as string)
  peerKeys.set(bytes, key)
  return key
}

/** XOR of two digests. */
export function distance (a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(32)
  for (let i = 0; i < 32; i++) out[i] = a[i] ^ b[i]
  return out
}

/** The distance as a number. */
export function distanceValue (a: Uint8Array, b: Uint8Array): bigint {
  let value = 0n
  for (let i = 0; i < 32; i++) value = (value << 8n) | BigInt(a[i] ^ b[i])
  return value
}

/** Compare the distances of `a` and `b` to `target`: negative when `a` is closer. */
export function compareDistance (target: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) {
    const da = a[i] ^ target[i]
    const db = b[i] ^ target[i]
    if (da !== db) return da - db
  }
  return 0
}

/**
 * The bucket of a peer at digest `hash` from the local digest `local`: the index of the highest
 * bit set in their XOR (255 for the farthest half of the space), or -1 for the local key itself.
 */
export function bucketIndex (local: Uint8Array, hash: Uint8Array): number {
  for (let i = 0; i < 32; i++) {
    const x = local[i] ^ hash[i]
    if (x !== 0) return 255 - (i * 8 + Math.clz32(x) - 24)
  }
  return -1
}

/** The distances bucket `index` covers: [2^index, 2^(index+1) − 1]. */
export function bucketRange (index: number): readonly [bigint, bigint] {
  return [1n << BigInt(index), (1n << BigInt(index + 1)) - 1n]
}

/** One entry of the routing table. */
export interface Entry {
  readonly key: PeerKey
  /** Where the peer listens, oldest first (at most {@link MAX_ENTRY_ADDRESSES}). */
  addresses: Multiaddr[]
  status: NodeStatus
}

/** What the application sees of an entry (`kbuckets()`). */
export interface EntryView {
  readonly peerId: PeerId
  readonly addresses: readonly Multiaddr[]
  readonly status: NodeStatus
}

/** A full bucket's candidate, waiting to replace its first (disconnected) entry. */
interface Pending {
  readonly entry: Entry
  /** When it may replace (the table's clock). */
  readonly replaceAt: number
}

/** A pending entry that was applied: `inserted` took the place of `evicted`, if any. */
export interface AppliedPending {
  readonly inserted: Entry
  readonly evicted?: Entry
  readonly bucket: number
}

/** The result of {@link KBucketsTable.insert}. */
export type InsertResult =
  | { readonly type: 'Inserted' }
  | { readonly type: 'Pending', readonly disconnected: PeerKey }
  | { readonly type: 'Full' }

class Bucket {
  /** Disconnected entries, then connected ones; each group least recently seen first. */
  readonly entries: Entry[] = []
  pending?: Pending

  get firstConnected (): number {
    const at = this.entries.findIndex(e => e.status === 'connected')
    return at < 0 ? this.entries.length : at
  }

  indexOf (id: string): number {
    return this.entries.findIndex(e => e.key.id === id)
  }

  /** Put `entry` at the end of its status group. */
  place (entry: Entry): void {
    if (entry.status === 'connected') this.entries.push(entry)
    else this.entries.splice(this.firstConnected, 0, entry)
  }
}

/** Options of a {@link KBucketsTable}. */
export interface KBucketsOptions {
  /** Entries per bucket (k). */
  readonly bucketSize: number
  /** How long a pending entry waits, in the clock's ms. */
  readonly pendingTimeout: number
  /** The clock (default `performance.now`). */
  readonly now?: () => number
}

/** The routing table: 256 buckets of at most k entries around the local key. */
export class KBucketsTable {
  readonly local: PeerKey
  private readonly buckets: Bucket[] = Array.from({ length: 256 }, () => new Bucket())
  private readonly bucketSize: number
  private readonly pendingTimeout: number
  private readonly now: () => number
  private readonly applied: AppliedPending[] = []
  private count = 0

  constructor (local: PeerId, options: KBucketsOptions) {
    this.local = keyOfPeer(local)
    this.bucketSize = options.bucketSize
    this.pendingTimeout = options.pendingTimeout
    this.now = options.now ?? (() => performance.now())
  }

  /** Entries in the table (pending ones not counted). */
  get size (): number {
    return this.count
  }

  /** The bucket index of `key` (-1 for the local key). */
  bucketOf (key: Key): number {
    return bucketIndex(this.local.hash, key.hash)
  }

  /** The entry of `key`, if present (pending ones are not). Applies a due pending entry first. */
  get (key: PeerKey): Entry | undefined {
    const bucket = this.bucketFor(key)
    if (bucket === undefined) return undefined
    const at = bucket.indexOf(key.id)
    return at < 0 ? undefined : bucket.entries[at]
  }

  /** The pending entry of `key`, if it is one. */
  getPending (key: PeerKey): Entry | undefined {
    const bucket = this.bucketFor(key)
    return bucket?.pending?.entry.key.id === key.id ? bucket.pending.entry : undefined
  }

  /**
   * Insert `key` with `addresses` and `status` (it must be neither present nor pending). A full
   * bucket may take a connected newcomer as its pending entry; see the module comment.
   */
  insert (key: PeerKey, addresses: Multiaddr[], status: NodeStatus): InsertResult {
    const index = this.bucketOf(key)
    if (index < 0) return { type: 'Full' }
    const bucket = this.bucketFor(key) as Bucket
    const entry: Entry = { key, addresses: addresses.slice(-MAX_ENTRY_ADDRESSES), status }
    if (bucket.entries.length < this.bucketSize) {
      bucket.place(entry)
      this.count++
      return { type: 'Inserted' }
    }
    if (status === 'disconnected' || bucket.pending !== undefined || bucket.entries[0].status === 'connected') return { type: 'Full' }
    bucket.pending = { entry, replaceAt: this.now() + this.pendingTimeout }
    return { type: 'Pending', disconnected: bucket.entries[0].key }
  }

  /**
   * Record a change of `key`'s status (present or pending): it moves to the end of its group.
   * The first entry reconnecting cancels the bucket's pending entry.
   */
  update (key: PeerKey, status: NodeStatus): void {
    const bucket = this.bucketFor(key)
    if (bucket === undefined) return
    if (bucket.pending?.entry.key.id === key.id) {
      bucket.pending.entry.status = status
      return
    }
    const at = bucket.indexOf(key.id)
    if (at < 0) return
    const [entry] = bucket.entries.splice(at, 1)
    if (at === 0 && status === 'connected') bucket.pending = undefined
    entry.status = status
    bucket.place(entry)
  }

  /** Remove `key` (present or pending); the removed entry, if any. */
  remove (key: PeerKey): Entry | undefined {
    const bucket = this.bucketFor(key)
    if (bucket === undefined) return undefined
    if (bucket.pending?.entry.key.id === key.id) {
      const { entry } = bucket.pending
      bucket.pending = undefined
      return entry
    }
    const at = bucket.indexOf(key.id)
    if (at < 0) return undefined
    this.count--
    return bucket.entries.splice(at, 1)[0]
  }

  /** Apply every pending entry that is due; they are then returned by {@link takeApplied}. */
  applyDue (): void {
    for (let i = 0; i < 256; i++) this.applyPending(i)
  }

  /** Pending entries applied since the last call, oldest first. */
  takeApplied (): AppliedPending | undefined {
    return this.applied.shift()
  }

  /** When the earliest pending entry is due (the table's clock), if any. */
  nextPendingDue (): number | undefined {
    let earliest: number | undefined
    for (const bucket of this.buckets) {
      if (bucket.pending !== undefined && (earliest === undefined || bucket.pending.replaceAt < earliest)) earliest = bucket.pending.replaceAt
    }
    return earliest
  }

  /** Every entry, closest to `target` first (the local key never included). */
  closest (target: Uint8Array, limit = Infinity): Entry[] {
    const all: Entry[] = []
    for (const bucket of this.buckets) for (const entry of bucket.entries) all.push(entry)
    all.sort((a, b) => compareDistance(target, a.key.hash, b.key.hash))
    if (all.length > limit) all.length = limit
    return all
  }

  /** How many entries are closer to `target` than the local key is (rust's `count_nodes_between`). */
  countCloserThanLocal (target: Uint8Array): number {
    let n = 0
    for (const bucket of this.buckets) {
      for (const entry of bucket.entries) if (compareDistance(target, entry.key.hash, this.local.hash) < 0) n++
    }
    return n
  }

  /** The non-empty buckets, nearest first, with their index. */
  * nonEmpty (): Generator<{ readonly index: number, readonly entries: readonly Entry[], readonly pending?: Entry }> {
    for (let i = 0; i < 256; i++) {
      const bucket = this.buckets[i]
      if (bucket.entries.length > 0) yield { index: i, entries: bucket.entries, pending: bucket.pending?.entry }
    }
  }

  /** The bucket of `key`, with its due pending entry applied. */
  private bucketFor (key: Key): Bucket | undefined {
    const index = this.bucketOf(key)
    if (index < 0) return undefined
    this.applyPending(index)
    return this.buckets[index]
  }

  private applyPending (index: number): void {
    const bucket = this.buckets[index]
    const pending = bucket.pending
    if (pending === undefined || pending.replaceAt > this.now()) return
    bucket.pending = undefined
    if (bucket.entries.length < this.bucketSize) {
      bucket.place(pending.entry)
      this.count++
      this.applied.push({ inserted: pending.entry, bucket: index })
      return
    }
    // The first entry reconnected meanwhile: it stays, and the candidate is dropped.
    if (bucket.entries[0].status === 'connected') return
    const [evicted] = bucket.entries.splice(0, 1)
    bucket.place(pending.entry)
    this.applied.push({ inserted: pending.entry, evicted, bucket: index })
  }
}
