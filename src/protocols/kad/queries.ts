/**
 * Kademlia's queries: starting them, driving them and reporting them. In order:
 *
 * 1. starting a bootstrap, a lookup of the closest peers, a put (lookup, then `PUT_VALUE` to
 *    the closest) and a provider announcement (lookup, then `ADD_PROVIDER`);
 * 2. the query an answer belongs to (its phase must be the current one);
 * 3. polling the pool: sending each query's requests (on a connection, or after a dial) and
 *    ending the queries that finished or timed out;
 * 4. the request each kind of query sends;
 * 5. taking an answer: records and providers found, records stored, peers named (merged into
 *    the query);
 * 6. the results and events of a finished query (a bootstrap goes on with its next key, a put
 *    or an announcement with its second phase) and of a timed-out one;
 * 7. helpers: a lookup's peers with their addresses, the bootstrap's bucket-refresh keys, the end
 *    of a bootstrap, quorums, a query's result type, random keys in a bucket.
 *
 * @module
 */
import { peerIdFromMultihash } from '@libp2p/peer-id'
import * as Digest from 'multiformats/hashes/digest'
import {
  AddProviderError, BootstrapError, GetClosestPeersError, GetProvidersError, GetRecordError, NoKnownPeersError, PutRecordError
} from './errors.js'
import { bucketIndex, keyOf, keyOfPeer, MAX_ENTRY_ADDRESSES } from './kbucket.js'
import { equalBytes, FIRST, FIRST_AND_LAST, last, next } from './state.js'
import type { PeerInfo } from './errors.js'
import type { QueryResult, Quorum } from './events.js'
import type { RequestTag } from './handler.js'
import type { Key, PeerKey } from './kbucket.js'
import type { Message, WirePeer } from './message.js'
import type { Query, QueryId } from './query.js'
import type { Info, KadState, ProvideContext, PutContext } from './state.js'
import type { Record } from './store.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * Look up our own id, then a random key in every bucket farther than the closest non-empty
 * one (`Behaviour.bootstrap`). Throws {@link NoKnownPeersError} when the table is empty.
 */
export function startBootstrap (s: KadState): QueryId {
  if (s.table.size === 0) {
    s.periodicBootstrapAt = s.config.periodicBootstrapInterval === null ? undefined : performance.now() + s.config.periodicBootstrapInterval
    throw new NoKnownPeersError()
  }
  const id = startClosest(s, s.table.local, { kind: 'Bootstrap', target: s.localPeerId, step: FIRST })
  s.bootstrapQuery = id
  s.bootstrapDue = undefined
  return id
}

export function startClosest (s: KadState, target: Key, info: Info, id?: QueryId): QueryId {
  const known = s.table.closest(target.hash, s.config.replicationFactor).map(e => e.key)
  const query = s.queries.addClosest(target.hash, known, info, undefined, id)
  s.phases.set(query.id, (s.phases.get(query.id) ?? -1) + 1)
  s.wakeUp()
  return query.id
}

export function startPutRecord (s: KadState, record: Record, quorum: Quorum, context: PutContext): QueryId {
  return startClosest(s, keyOf(record.key), { kind: 'PutRecord', context, record, quorum, phase: 'closest', required: 0, success: [] })
}

export function startAddProvider (s: KadState, key: Uint8Array, context: ProvideContext): QueryId {
  return startClosest(s, keyOf(key), { kind: 'AddProvider', context, key, phase: 'closest' })
}

export function queryOf (s: KadState, tag: RequestTag): Query<Info> | undefined {
  const query = s.queries.get(tag.queryId)
  if (query === undefined || s.phases.get(tag.queryId) !== tag.phase) return undefined
  return query
}

export function pollQueries (s: KadState, now: number): void {
  for (;;) {
    const state = s.queries.poll(now)
    if (state.type === 'Idle') return
    if (state.type === 'Waiting') {
      send(s, state.query, state.peer)
      continue
    }
    s.phases.delete(state.query.id)
    if (state.type === 'Finished') finished(s, state.query, now)
    else timedOut(s, state.query, now)
  }
}

/** Ask `peer` the query's question: on a connection if there is one, else after a dial. */
function send (s: KadState, query: Query<Info>, peer: PeerKey): void {
  const message = requestOf(s, query.info)
  const tag: RequestTag = { queryId: query.id, phase: s.phases.get(query.id) ?? 0 }
  if (s.connected.has(peer.id)) {
    s.actions.notifyHandler(peer.peerId, 'any', { type: 'Request', tag, message })
    return
  }
  query.pendingRpcs.set(peer.id, { tag, message })
  s.actions.push({ type: 'Dial', opts: { peerId: peer.peerId } })
}

function requestOf (s: KadState, info: Info): Message {
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
      return { ...base, type: 'PUT_VALUE', key: info.record.key, record: s.toWire(info.record) }
    case 'AddProvider':
      if (info.phase === 'closest') return { ...base, type: 'FIND_NODE', key: info.key }
      return {
        ...base,
        type: 'ADD_PROVIDER',
        key: info.key,
        providerPeers: [{ id: s.localPeerId, addrs: s.advertisedAddresses(), connection: 'CONNECTED' }]
      }
  }
}

/**
 * The last connection to `peer` closed while `query` waited for its answer. The request may
 * never have reached the peer: one sent as an idle connection was closing is dropped by the
 * swarm (no open connection took it), and the peer itself is fine. So it is asked once more, on
 * a new connection; a second close, or a failed dial, counts it as failed.
 */
export function connectionLost (s: KadState, query: Query<Info>, peer: PeerId): void {
  if (!query.waitingFor(peer)) return
  const id = peer.toString()
  if (query.retried.has(id) || s.closed) {
    query.onFailure(peer)
    return
  }
  query.retried.add(id)
  query.pendingRpcs.set(id, { tag: { queryId: query.id, phase: s.phases.get(query.id) ?? 0 }, message: requestOf(s, query.info) })
  s.actions.push({ type: 'Dial', opts: { peerId: peer } })
}

export function onResponse (s: KadState, peerId: PeerId, tag: RequestTag, request: Message['type'], response: Message | undefined): void {
  const query = queryOf(s, tag)
  if (query === undefined) return
  s.wakeUp()
  const info = query.info
  if (request === 'FIND_NODE') {
    discovered(s, query, peerId, response?.closerPeers ?? [])
    return
  }
  if (request === 'GET_VALUE' && info.kind === 'GetRecord') {
    const wire = response?.record
    if (wire !== undefined && equalBytes(wire.key, info.key)) {
      info.found = true
      const record = s.fromWire(wire)
      s.progressed(query.id, { type: 'GetRecord', ok: { type: 'FoundRecord', record: { record, peer: peerId } } }, s.statsOf(query), info.step)
      info.step = next(info.step)
    } else if (s.config.cacheCandidates > 0) {
      const key = keyOfPeer(peerId)
      const target = keyOf(info.key).hash
      info.candidates.push(key)
      info.candidates.sort((a, b) => compareBy(target, a, b))
      if (info.candidates.length > s.config.cacheCandidates) info.candidates.length = s.config.cacheCandidates
    }
    discovered(s, query, peerId, response?.closerPeers ?? [])
    return
  }
  if (request === 'GET_PROVIDERS' && info.kind === 'GetProviders') {
    const fresh: PeerInfo[] = []
    for (const provider of response?.providerPeers ?? []) {
      const id = provider.id.toString()
      if (info.seen.has(id)) continue
      info.seen.add(id)
      for (const address of provider.addrs) s.peerAddrs.add(provider.id, address)
      fresh.push({ peerId: provider.id, addresses: provider.addrs })
    }
    if (fresh.length > 0) {
      s.progressed(query.id, { type: 'GetProviders', ok: { type: 'FoundProviders', key: info.key, providers: fresh } }, s.statsOf(query), info.step)
      info.step = next(info.step)
    }
    discovered(s, query, peerId, [...(response?.closerPeers ?? []), ...(response?.providerPeers ?? [])])
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
function discovered (s: KadState, query: Query<Info>, source: PeerId, peers: readonly WirePeer[]): void {
  const keys: PeerKey[] = []
  for (const peer of peers) {
    if (peer.id.equals(s.localPeerId)) continue
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

function finished (s: KadState, query: Query<Info>, now: number): void {
  const info = query.info
  const stats = s.statsOf(query, now)
  switch (info.kind) {
    case 'Bootstrap': {
      const remaining = info.remaining ?? bucketRefreshKeys(s)
      const target = remaining.shift()
      const step = target === undefined ? last(info.step) : info.step
      if (target !== undefined) {
        startClosest(s, target, { kind: 'Bootstrap', target: peerIdOfKey(target), remaining, step: next(info.step) }, query.id)
      } else {
        bootstrapFinished(s)
      }
      s.progressed(query.id, { type: 'Bootstrap', ok: { peer: info.target, numRemaining: remaining.length + (target === undefined ? 0 : 1) } }, stats, step)
      return
    }
    case 'GetClosestPeers':
      s.progressed(query.id, { type: 'GetClosestPeers', ok: { key: info.key, peers: peerInfos(s, query) } }, stats, last(info.step))
      return
    case 'GetRecord':
      s.progressed(query.id, info.found
        ? { type: 'GetRecord', ok: { type: 'FinishedWithNoAdditionalRecord', cacheCandidates: info.candidates.map(k => k.peerId) } }
        : { type: 'GetRecord', error: new GetRecordError('NotFound', info.key, query.result().map(k => k.peerId)) }, stats, last(info.step))
      return
    case 'GetProviders':
      s.progressed(query.id, { type: 'GetProviders', ok: { type: 'FinishedWithNoAdditionalRecord', closestPeers: query.result().map(k => k.peerId) } }, stats, last(info.step))
      return
    case 'PutRecord': {
      if (info.phase === 'closest') {
        const peers = query.result()
        const required = Math.max(1, evalQuorum(info.quorum, peers.length))
        s.queries.addFixed(peers, { ...info, phase: 'put', required, success: [], before: stats }, query.id)
        s.phases.set(query.id, (s.phases.get(query.id) ?? 0) + 1)
        s.wakeUp()
        return
      }
      if (info.context === 'replicate') return
      const result = info.success.length >= info.required
        ? { ok: { key: info.record.key } }
        : { error: new PutRecordError('QuorumFailed', info.record.key, info.success, info.required) }
      s.progressed(query.id, { type: info.context === 'republish' ? 'RepublishRecord' : 'PutRecord', ...result } as QueryResult, stats, FIRST_AND_LAST)
      return
    }
    case 'AddProvider':
      if (info.phase === 'closest') {
        s.queries.addFixed(query.result(), { ...info, phase: 'add', before: stats }, query.id)
        s.phases.set(query.id, (s.phases.get(query.id) ?? 0) + 1)
        s.wakeUp()
        return
      }
      s.progressed(query.id, { type: info.context === 'republish' ? 'RepublishProvider' : 'StartProviding', ok: { key: info.key } }, stats, FIRST_AND_LAST)
  }
}

function timedOut (s: KadState, query: Query<Info>, now: number): void {
  const info = query.info
  const stats = s.statsOf(query, now)
  switch (info.kind) {
    case 'Bootstrap': {
      const remaining = info.remaining
      const target = remaining?.shift()
      let step = info.step
      if (target !== undefined && remaining !== undefined) {
        startClosest(s, target, { kind: 'Bootstrap', target: peerIdOfKey(target), remaining, step: next(info.step) }, query.id)
      } else {
        step = last(step)
        bootstrapFinished(s)
      }
      const numRemaining = remaining === undefined ? undefined : remaining.length + (target === undefined ? 0 : 1)
      s.progressed(query.id, { type: 'Bootstrap', error: new BootstrapError('Timeout', info.target, numRemaining) }, stats, step)
      return
    }
    case 'GetClosestPeers':
      s.progressed(query.id, { type: 'GetClosestPeers', error: new GetClosestPeersError('Timeout', info.key, peerInfos(s, query)) }, stats, last(info.step))
      return
    case 'GetRecord':
      s.progressed(query.id, { type: 'GetRecord', error: new GetRecordError('Timeout', info.key, query.result().map(k => k.peerId)) }, stats, last(info.step))
      return
    case 'GetProviders':
      s.progressed(query.id, { type: 'GetProviders', error: new GetProvidersError('Timeout', info.key, query.result().map(k => k.peerId)) }, stats, last(info.step))
      return
    case 'PutRecord': {
      if (info.context === 'replicate') return
      const error = new PutRecordError('Timeout', info.record.key, info.phase === 'put' ? info.success : [], info.required)
      s.progressed(query.id, { type: info.context === 'republish' ? 'RepublishRecord' : 'PutRecord', error }, stats, FIRST_AND_LAST)
      return
    }
    case 'AddProvider':
      s.progressed(query.id, { type: info.context === 'republish' ? 'RepublishProvider' : 'StartProviding', error: new AddProviderError('Timeout', info.key) }, stats, FIRST_AND_LAST)
  }
}


/** The peers of a finished lookup with every address we know for them. */
function peerInfos (s: KadState, query: Query<Info>): PeerInfo[] {
  return query.result().map(key => {
    const out = new Map<string, Multiaddr>()
    for (const a of [...(query.addresses.get(key.id) ?? []), ...(s.table.get(key)?.addresses ?? []), ...s.peerAddrs.get(key.peerId)]) out.set(a.toString(), a)
    return { peerId: key.peerId, addresses: [...out.values()] }
  })
}

/** A random key in each bucket farther than the closest non-empty one (16 tries each, as rust). */
function bucketRefreshKeys (s: KadState): Key[] {
  const keys: Key[] = []
  // Every bucket beyond the closest non-empty one, empty or not.
  const closest = s.table.nonEmpty().next().value?.index ?? 255
  for (let index = closest + 1; index < 256; index++) keys.push(randomKeyIn(s.table.local.hash, index))
  return keys
}

function bootstrapFinished (s: KadState): void {
  s.bootstrapQuery = undefined
  if (s.config.periodicBootstrapInterval !== null) s.periodicBootstrapAt = performance.now() + s.config.periodicBootstrapInterval
}

function compareBy (target: Uint8Array, a: PeerKey, b: PeerKey): number {
  for (let i = 0; i < 32; i++) {
    const da = a.hash[i] ^ target[i]
    const db = b.hash[i] ^ target[i]
    if (da !== db) return da - db
  }
  return 0
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

export function resultType (info: Info): QueryResult['type'] {
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
