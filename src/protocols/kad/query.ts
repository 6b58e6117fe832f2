/**
 * Queries as pure state machines, driven by events (a peer answered, failed) and `now`, as
 * rust-libp2p's `ClosestPeersIter`, `FixedPeersIter` and `QueryPool`; they never touch a socket,
 * so they are tested with fake peers and fake time.
 *
 * **The iterative lookup** ({@link ClosestPeersIter}) keeps candidates sorted by distance to
 * the target, seeded with the local routing table's closest. It asks up to α of the closest not
 * yet contacted at a time. An answer merges the peers it names; it "made progress" if one of
 * them is closer than the current k-th closest (or fewer than k are known). After α answers in
 * a row without progress the lookup is *stalled* and may ask up to k at once, to finish. It ends
 * when the k closest candidates that did not fail have all answered, or when no candidate is
 * left to ask and none is awaited. A peer that does not answer within `peerTimeout` stops
 * counting against α and the end condition (it may still answer); a peer that failed is left
 * out of the result.
 *
 * **Fixed peers** ({@link FixedPeersIter}): the second phase of a put or an add-provider sends
 * to given peers, up to `parallelism` at once.
 *
 * **The pool** ({@link QueryPool}) holds every running query; `poll(now)` hands out the next
 * peer to ask, a finished query, or one whose `timeout` ran out.
 *
 * @module
 */
import { compareDistance } from './kbucket.js'
import type { PeerKey } from './kbucket.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** Identifies a query of one behaviour. */
export type QueryId = number & { readonly __brand: 'QueryId' }

/** What a query did: requests sent, answers, failures, and when it ran (the pool's clock, ms). */
export interface QueryStats {
  readonly requests: number
  readonly success: number
  readonly failure: number
  /** Requests neither answered nor failed. */
  readonly pending: number
  /** When it was first polled, or `undefined` before. */
  readonly start?: number
  /** When it ended, or `undefined` while it runs. */
  readonly end?: number
  /** `end − start` (or up to now while it runs); `undefined` before it started. */
  readonly duration?: number
  /**
   * For a lookup (and the lookup phase of a put or a provider announcement): its hops, the
   * longest chain of peers asked in sequence, each named by the one before, that led to a peer
   * of the result (so far): 1 when every peer of the result came from our routing table. A
   * Kademlia lookup promises O(log₂ N) hops in a network of N peers (see docs/simulation.md,
   * Kademlia). `undefined` before a peer of the result answered, and for requests to given peers
   * (`putRecordTo`).
   */
  readonly hops?: number
}

/** A candidate's state in a lookup. */
type PeerState = 'NotContacted' | 'Waiting' | 'Unresponsive' | 'Failed' | 'Succeeded'

interface Candidate {
  readonly key: PeerKey
  state: PeerState
  /** While `Waiting`: when it turns `Unresponsive`. */
  deadline: number
  /** Its place in the chain that found it: 1 from the routing table, else 1 + the hop of the peer that first named it. */
  readonly hop: number
}

/** What a peer iterator wants next. */
export type IterState =
  | { readonly type: 'Waiting', readonly peer: PeerKey }
  | { readonly type: 'WaitingNone' }
  | { readonly type: 'AtCapacity' }
  | { readonly type: 'Finished' }

/** Options of a {@link ClosestPeersIter}. */
export interface ClosestPeersIterOptions {
  /** α. */
  readonly parallelism: number
  /** k: results wanted. */
  readonly numResults: number
  /** How long a peer may take before it stops counting (ms). */
  readonly peerTimeout: number
  /**
   * Candidates kept at most (default `numResults × 8`): beyond, the farthest not yet contacted
   * are dropped, so that peers naming thousands of others cannot grow a query without bound.
   */
  readonly maxCandidates?: number
}

/** The iterative closest-peers lookup; see the module comment. */
export class ClosestPeersIter {
  readonly target: Uint8Array
  /** Candidates, closest first. */
  private readonly candidates: Candidate[] = []
  private readonly byId = new Map<string, Candidate>()
  private state: 'Iterating' | 'Stalled' | 'Finished' = 'Iterating'
  private noProgress = 0
  private waiting = 0
  private readonly parallelism: number
  private readonly numResults: number
  private readonly peerTimeout: number
  private readonly maxCandidates: number

  constructor (target: Uint8Array, known: Iterable<PeerKey>, options: ClosestPeersIterOptions) {
    this.target = target
    this.parallelism = options.parallelism
    this.numResults = options.numResults
    this.peerTimeout = options.peerTimeout
    this.maxCandidates = Math.max(options.maxCandidates ?? options.numResults * 8, options.numResults)
    let taken = 0
    for (const key of known) {
      if (taken++ >= this.numResults) break
      this.add(key, 1)
    }
  }

  /** Whether the lookup has ended. */
  get finished (): boolean {
    return this.state === 'Finished'
  }

  /** Peers asked and not yet answered, failed or timed out. */
  get numWaiting (): number {
    return this.waiting
  }

  /**
   * `peer` answered with `closer` peers. False (and nothing changes) when the lookup is over
   * or was not waiting for `peer`.
   */
  onSuccess (peer: PeerId, closer: Iterable<PeerKey>): boolean {
    const candidate = this.answered(peer)
    if (candidate === undefined) return false
    candidate.state = 'Succeeded'
    // The current range: the k-th closest candidate (or the farthest when there are fewer).
    const edge = this.candidates[Math.min(this.numResults, this.candidates.length) - 1]
    let progress = this.candidates.length < this.numResults
    for (const key of closer) {
      if (this.byId.has(key.id)) continue
      this.add(key, candidate.hop + 1)
      if (edge === undefined || compareDistance(this.target, key.hash, edge.key.hash) < 0) progress = true
    }
    this.prune()
    if (this.state === 'Iterating') {
      this.noProgress = progress ? 0 : this.noProgress + 1
      if (this.noProgress >= this.parallelism) this.state = 'Stalled'
    } else if (progress) {
      this.state = 'Iterating'
      this.noProgress = 0
    }
    return true
  }

  /** Asking `peer` failed. False when the lookup is over or was not waiting for it. */
  onFailure (peer: PeerId): boolean {
    const candidate = this.answered(peer)
    if (candidate === undefined) return false
    candidate.state = 'Failed'
    return true
  }

  /**
   * The candidate `peer` is, if the lookup still waits for its answer (in flight, or late after
   * being marked unresponsive); it no longer counts as in flight. Undefined otherwise.
   */
  private answered (peer: PeerId): Candidate | undefined {
    if (this.state === 'Finished') return undefined
    const candidate = this.byId.get(peer.toString())
    if (candidate === undefined) return undefined
    if (candidate.state === 'Waiting') this.waiting--
    else if (candidate.state !== 'Unresponsive') return undefined
    return candidate
  }

  /** The next step at `now`: a peer to ask, waiting, or finished. */
  next (now: number): IterState {
    if (this.state === 'Finished') return FINISHED
    let succeeded: number | undefined = 0
    for (const candidate of this.candidates) {
      switch (candidate.state) {
        case 'Waiting':
          if (now >= candidate.deadline) {
            this.waiting--
            candidate.state = 'Unresponsive'
          } else if (this.atCapacity()) {
            return AT_CAPACITY
          } else {
            succeeded = undefined
          }
          break
        case 'Succeeded':
          if (succeeded !== undefined && ++succeeded >= this.numResults) {
            this.state = 'Finished'
            return FINISHED
          }
          break
        case 'NotContacted':
          if (this.atCapacity()) return AT_CAPACITY
          candidate.state = 'Waiting'
          candidate.deadline = now + this.peerTimeout
          this.waiting++
          return { type: 'Waiting', peer: candidate.key }
        default:
      }
    }
    if (this.waiting > 0) return WAITING_NONE
    this.state = 'Finished'
    return FINISHED
  }

  /** When the earliest awaited peer times out, if any. */
  nextDeadline (): number | undefined {
    let earliest: number | undefined
    for (const candidate of this.candidates) {
      if (candidate.state === 'Waiting' && (earliest === undefined || candidate.deadline < earliest)) earliest = candidate.deadline
    }
    return earliest
  }

  /** End the lookup now. */
  finish (): void {
    this.state = 'Finished'
  }

  /** The closest peers that answered, at most k, closest first. */
  result (): PeerKey[] {
    const out: PeerKey[] = []
    for (const candidate of this.candidates) {
      if (candidate.state !== 'Succeeded') continue
      out.push(candidate.key)
      if (out.length >= this.numResults) break
    }
    return out
  }

  /** Whether `peer` is a candidate of this lookup (in any state). */
  has (peer: PeerId): boolean {
    return this.byId.has(peer.toString())
  }

  /** Whether the lookup waits for `peer`'s answer (asked, neither answered nor failed, maybe late). */
  waitingFor (peer: PeerId): boolean {
    const state = this.state === 'Finished' ? undefined : this.byId.get(peer.toString())?.state
    return state === 'Waiting' || state === 'Unresponsive'
  }

  /** The most hops to a peer of {@link result} (see `QueryStats.hops`), or undefined while none answered. */
  hops (): number | undefined {
    let most: number | undefined
    let found = 0
    for (const candidate of this.candidates) {
      if (candidate.state !== 'Succeeded') continue
      if (most === undefined || candidate.hop > most) most = candidate.hop
      if (++found >= this.numResults) break
    }
    return most
  }

  private atCapacity (): boolean {
    if (this.state === 'Stalled') return this.waiting >= Math.max(this.numResults, this.parallelism)
    return this.waiting >= this.parallelism
  }

  private add (key: PeerKey, hop: number): void {
    const candidate: Candidate = { key, state: 'NotContacted', deadline: 0, hop }
    // Binary search for the insertion point.
    let lo = 0
    let hi = this.candidates.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (compareDistance(this.target, this.candidates[mid].key.hash, key.hash) < 0) lo = mid + 1
      else hi = mid
    }
    this.candidates.splice(lo, 0, candidate)
    this.byId.set(key.id, candidate)
  }

  /**
   * Beyond `maxCandidates`, drop the farthest candidates not yet contacted, sparing the 2k
   * closest that answered or may still be asked (a margin for those that will fail). Contacted
   * ones stay: each cost a request, so they are bounded by the requests made, and a far peer
   * that answered belongs in the result if closer ones fail later.
   */
  private prune (): void {
    if (this.candidates.length <= this.maxCandidates) return
    let cutoff = 0
    for (let kept = 0; cutoff < this.candidates.length && kept < 2 * this.numResults; cutoff++) {
      const { state } = this.candidates[cutoff]
      if (state === 'NotContacted' || state === 'Succeeded') kept++
    }
    for (let i = this.candidates.length - 1; i >= cutoff && this.candidates.length > this.maxCandidates; i--) {
      const candidate = this.candidates[i]
      if (candidate.state !== 'NotContacted') continue
      this.candidates.splice(i, 1)
      this.byId.delete(candidate.key.id)
    }
  }
}

const FINISHED: IterState = { type: 'Finished' }
const AT_CAPACITY: IterState = { type: 'AtCapacity' }
const WAITING_NONE: IterState = { type: 'WaitingNone' }

/** Requests to a fixed list of peers, at most `parallelism` at once. */
export class FixedPeersIter {
  private readonly peers: Array<{ readonly key: PeerKey, state: 'NotContacted' | 'Waiting' | 'Failed' | 'Succeeded' }>
  private readonly byId = new Map<string, { readonly key: PeerKey, state: 'NotContacted' | 'Waiting' | 'Failed' | 'Succeeded' }>()
  private cursor = 0
  private waiting = 0
  private done = false

  constructor (peers: Iterable<PeerKey>, readonly parallelism: number) {
    this.peers = []
    for (const key of peers) {
      if (this.byId.has(key.id)) continue
      const peer = { key, state: 'NotContacted' as const }
      this.peers.push(peer)
      this.byId.set(key.id, peer)
    }
  }

  get finished (): boolean {
    return this.done
  }

  get numWaiting (): number {
    return this.waiting
  }

  onSuccess (peer: PeerId): boolean {
    const entry = this.byId.get(peer.toString())
    if (this.done || entry?.state !== 'Waiting') return false
    entry.state = 'Succeeded'
    this.waiting--
    return true
  }

  onFailure (peer: PeerId): boolean {
    const entry = this.byId.get(peer.toString())
    if (this.done || entry?.state !== 'Waiting') return false
    entry.state = 'Failed'
    this.waiting--
    return true
  }

  next (): IterState {
    if (this.done) return FINISHED
    if (this.waiting >= this.parallelism) return AT_CAPACITY
    if (this.cursor < this.peers.length) {
      const peer = this.peers[this.cursor++]
      peer.state = 'Waiting'
      this.waiting++
      return { type: 'Waiting', peer: peer.key }
    }
    if (this.waiting > 0) return WAITING_NONE
    this.done = true
    return FINISHED
  }

  finish (): void {
    this.done = true
  }

  /** The peers that succeeded, in the given order. */
  result (): PeerKey[] {
    return this.peers.filter(p => p.state === 'Succeeded').map(p => p.key)
  }

  has (peer: PeerId): boolean {
    return this.byId.has(peer.toString())
  }

  /** Whether it waits for `peer`'s answer. */
  waitingFor (peer: PeerId): boolean {
    return !this.done && this.byId.get(peer.toString())?.state === 'Waiting'
  }
}

/** Mutable counters behind {@link QueryStats}. */
class Stats {
  requests = 0
  success = 0
  failure = 0
  start?: number
  end?: number
  hops?: number

  /** A snapshot at `now`, merged after `before` (an earlier phase of the same query), if given. */
  snapshot (now: number, before?: QueryStats): QueryStats {
    const start = before?.start ?? this.start
    const end = this.end
    const requests = this.requests + (before?.requests ?? 0)
    const success = this.success + (before?.success ?? 0)
    const failure = this.failure + (before?.failure ?? 0)
    return Object.freeze({
      requests,
      success,
      failure,
      pending: requests - success - failure,
      start,
      end,
      duration: start === undefined ? undefined : (end ?? now) - start,
      hops: this.hops ?? before?.hops
    })
  }
}

/** One query of a pool: its peers, its stats and what it is for (`TInfo`). */
export class Query<TInfo> {
  readonly stats = new Stats()
  /** Addresses learnt for peers during the query, by peer id string. */
  readonly addresses = new Map<string, Multiaddr[]>()
  /** Requests waiting for a connection to their peer, by peer id string. */
  readonly pendingRpcs = new Map<string, unknown>()
  /** Peers asked again after their connection closed while we waited for them (once each). */
  readonly retried = new Set<string>()

  constructor (readonly id: QueryId, public iter: ClosestPeersIter | FixedPeersIter, public info: TInfo) {}

  onSuccess (peer: PeerId, closer: Iterable<PeerKey> = []): boolean {
    const updated = this.iter instanceof ClosestPeersIter ? this.iter.onSuccess(peer, closer) : this.iter.onSuccess(peer)
    if (updated) {
      this.stats.success++
      if (this.iter instanceof ClosestPeersIter) this.stats.hops = this.iter.hops()
    }
    return updated
  }

  onFailure (peer: PeerId): boolean {
    const updated = this.iter.onFailure(peer)
    if (updated) this.stats.failure++
    return updated
  }

  /** Whether it waits for `peer`'s answer. */
  waitingFor (peer: PeerId): boolean {
    return this.iter.waitingFor(peer)
  }

  /** End the query at its next poll: it finishes with what it has. */
  finish (): void {
    this.iter.finish()
  }

  get finished (): boolean {
    return this.iter.finished
  }

  next (now: number): IterState {
    const state = this.iter instanceof ClosestPeersIter ? this.iter.next(now) : this.iter.next()
    if (state.type === 'Waiting') this.stats.requests++
    return state
  }

  /** The peers of the result: those that answered, closest first (or in the given order). */
  result (): PeerKey[] {
    return this.iter.result()
  }
}

/** What {@link QueryPool.poll} found. */
export type PoolState<TInfo> =
  | { readonly type: 'Waiting', readonly query: Query<TInfo>, readonly peer: PeerKey }
  | { readonly type: 'Finished', readonly query: Query<TInfo> }
  | { readonly type: 'Timeout', readonly query: Query<TInfo> }
  | { readonly type: 'Idle' }

/** Options of a {@link QueryPool}. */
export interface QueryPoolOptions {
  /** A query's time limit (ms). */
  readonly timeout: number
  /** k. */
  readonly replicationFactor: number
  /** α. */
  readonly parallelism: number
  /** One peer's time limit (ms). */
  readonly peerTimeout: number
}

/** The running queries of a behaviour. */
export class QueryPool<TInfo> {
  private readonly queries = new Map<QueryId, Query<TInfo>>()
  private nextId = 1

  constructor (readonly options: QueryPoolOptions) {}

  get size (): number {
    return this.queries.size
  }

  get (id: QueryId): Query<TInfo> | undefined {
    return this.queries.get(id)
  }

  values (): IterableIterator<Query<TInfo>> {
    return this.queries.values()
  }

  /** A fresh id. */
  newId (): QueryId {
    return this.nextId++ as QueryId
  }

  /** Start a lookup for `target` from `known` peers (closest first); `numResults` defaults to k. */
  addClosest (target: Uint8Array, known: Iterable<PeerKey>, info: TInfo, numResults?: number, id = this.newId()): Query<TInfo> {
    const iter = new ClosestPeersIter(target, known, {
      parallelism: this.options.parallelism,
      numResults: numResults ?? this.options.replicationFactor,
      peerTimeout: this.options.peerTimeout
    })
    const query = new Query(id, iter, info)
    this.queries.set(id, query)
    return query
  }

  /** Start (or continue under `id`) requests to fixed peers, k at once. */
  addFixed (peers: Iterable<PeerKey>, info: TInfo, id = this.newId()): Query<TInfo> {
    const query = new Query(id, new FixedPeersIter(peers, this.options.replicationFactor), info)
    this.queries.set(id, query)
    return query
  }

  /**
   * The next thing to do at `now`: a peer to ask (the query stays), a finished query or one
   * that timed out (both removed), or `Idle` when no query has anything to do now.
   */
  poll (now: number): PoolState<TInfo> {
    for (const query of this.queries.values()) {
      query.stats.start ??= now
      const state = query.next(now)
      if (state.type === 'Waiting') return { type: 'Waiting', query, peer: state.peer }
      if (state.type === 'Finished') {
        this.queries.delete(query.id)
        query.stats.end = now
        return { type: 'Finished', query }
      }
      if (now - query.stats.start >= this.options.timeout) {
        this.queries.delete(query.id)
        query.stats.end = now
        return { type: 'Timeout', query }
      }
    }
    return IDLE
  }

  /** When something is next due without an event (a peer or query timeout), if anything. */
  nextDeadline (): number | undefined {
    let earliest: number | undefined
    for (const query of this.queries.values()) {
      const start = query.stats.start
      const candidates = [start === undefined ? undefined : start + this.options.timeout,
        query.iter instanceof ClosestPeersIter ? query.iter.nextDeadline() : undefined]
      for (const at of candidates) if (at !== undefined && (earliest === undefined || at < earliest)) earliest = at
    }
    return earliest
  }

  /** Remove a query without an outcome. */
  remove (id: QueryId): Query<TInfo> | undefined {
    const query = this.queries.get(id)
    this.queries.delete(id)
    return query
  }

  /** Apply `fn` to every query (e.g. a peer failed). */
  forEach (fn: (query: Query<TInfo>) => void): void {
    for (const query of this.queries.values()) fn(query)
  }
}

const IDLE = { type: 'Idle' } as const
