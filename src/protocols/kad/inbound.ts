/**
 * Answering what peers ask (rust-libp2p's `on_connection_handler_event` for inbound requests).
 * In order:
 *
 * 1. `answer`: `FIND_NODE` (our closest peers), `GET_VALUE` (our record and closest peers),
 *    `GET_PROVIDERS` (the providers we know and closest peers), `PUT_VALUE`, `ADD_PROVIDER`
 *    (only the sender may announce itself; `filter` and the store may refuse); anything else
 *    has its stream reset;
 * 2. a record received: kept (our own never changes by replication; far records expire sooner)
 *    unless `filter` or the store refuse it, echoed or reset, skipped by the next replication;
 * 3. the `InboundRequest` event;
 * 4. the peers an answer names: our closest to a key, the providers of a key.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { keyOf } from './kbucket.js'
import { equalBytes } from './state.js'
import { keyString, StoreError } from './store.js'
import type { InboundRequest } from './events.js'
import type { InboundChannel } from './handler.js'
import type { Message, WirePeer } from './message.js'
import type { KadState } from './state.js'
import type { ProviderRecord } from './store.js'
import type { ConnectionId } from '../../core/ids.js'
import type { PeerId } from '@libp2p/interface'

const log = logger('peerswarm:kad')

/** Keys received by replication that the next replication run skips, at most. */
const MAX_SKIPPED = 4096

export function answer (s: KadState, source: PeerId, connectionId: ConnectionId, request: Message, channel: InboundChannel): void {
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
      const closerPeers = closerPeersOf(s, key as Uint8Array, source)
      reply({ type: 'FIND_NODE', closerPeers })
      inbound(s, source, { type: 'FindNode', numCloserPeers: closerPeers.length })
      return
    }
    case 'GET_VALUE': {
      const record = s.store.get(key as Uint8Array)
      const closerPeers = closerPeersOf(s, key as Uint8Array, source)
      reply({ type: 'GET_VALUE', key, record: record === undefined ? undefined : s.toWire(record), closerPeers })
      inbound(s, source, { type: 'GetRecord', numCloserPeers: closerPeers.length, presentLocally: record !== undefined })
      return
    }
    case 'GET_PROVIDERS': {
      const providerPeers = providerPeersOf(s, key as Uint8Array, source)
      const closerPeers = closerPeersOf(s, key as Uint8Array, source)
      reply({ type: 'GET_PROVIDERS', key, providerPeers, closerPeers })
      inbound(s, source, { type: 'GetProvider', numCloserPeers: closerPeers.length, numProviderPeers: providerPeers.length })
      return
    }
    case 'PUT_VALUE':
      recordReceived(s, source, connectionId, request, channel)
      return
    case 'ADD_PROVIDER':
      for (const peer of request.providerPeers) {
        // Only the sender may announce itself.
        if (!peer.id.equals(source)) continue
        const record: ProviderRecord = { key: key as Uint8Array, provider: source, expires: s.expiry(s.config.providerRecordTtl), addresses: peer.addrs }
        let stored = s.config.filter?.({ type: 'AddProvider', source, record }) ?? true
        if (stored) {
          try {
            s.store.addProvider(record)
          } catch (err) {
            if (!(err instanceof StoreError)) throw err
            log('provider record of %p not stored: %s', source, err.message)
            stored = false
          }
        }
        inbound(s, source, { type: 'AddProvider', record, stored })
        return
      }
      return
    default:
      channel.reset()
  }
}

function recordReceived (s: KadState, source: PeerId, connection: ConnectionId, request: Message, channel: InboundChannel): void {
  const wire = request.record
  if (wire === undefined || (request.key !== undefined && !equalBytes(request.key, wire.key))) {
    channel.reset()
    return
  }
  const echo = (): void => {
    channel.respond({ type: 'PUT_VALUE', key: wire.key, record: { key: wire.key, value: wire.value }, closerPeers: [], providerPeers: [] })
  }
  let record = s.fromWire(wire)
  // Our own records never change by replication: the publisher is right.
  if (record.publisher?.equals(s.localPeerId) === true) {
    echo()
    return
  }
  // Records far from us (more than k nodes closer to the key) expire sooner, exponentially.
  const target = keyOf(record.key).hash
  const beyondK = Math.max(0, s.table.countCloserThanLocal(target) - s.config.replicationFactor)
  const ttl = s.config.recordTtl
  const expiration = ttl === null ? undefined : Date.now() + Math.floor(ttl / 2 ** beyondK)
  const expires = record.expires === undefined ? expiration : expiration === undefined ? record.expires : Math.min(record.expires, expiration)
  record = { ...record, expires }
  let stored = s.config.filter?.({ type: 'PutRecord', source, record }) ?? true
  if (stored) {
    try {
      s.store.put(record)
    } catch (err) {
      if (!(err instanceof StoreError)) throw err
      log('record from %p not stored: %s', source, err.message)
      stored = false
    }
  }
  if (stored) {
    // The sender replicated it to the k closest: the next replication run skips it here. The
    // set is bounded (a store holds a bounded number of records; beyond, skipping is moot).
    if (s.replicationAt !== undefined && s.skipped.size < MAX_SKIPPED) s.skipped.add(keyString(record.key))
    echo()
  } else {
    channel.reset()
  }
  inbound(s, source, { type: 'PutRecord', connection, record, stored })
}

function inbound (s: KadState, peer: PeerId, request: InboundRequest): void {
  s.actions.generate({ type: 'InboundRequest', peer, request })
}

/** Up to k peers of our table closest to `key`, never the requester, each with its addresses. */
function closerPeersOf (s: KadState, key: Uint8Array, source: PeerId): WirePeer[] {
  const sourceId = source.toString()
  const out: WirePeer[] = []
  for (const entry of s.table.closest(keyOf(key).hash, s.config.replicationFactor + 1)) {
    if (entry.key.id === sourceId || entry.addresses.length === 0) continue
    out.push({ id: entry.key.peerId, addrs: entry.addresses, connection: s.connected.has(entry.key.id) ? 'CONNECTED' : 'NOT_CONNECTED' })
    if (out.length >= s.config.replicationFactor) break
  }
  return out
}

/** The providers of `key` we know, but the requester, each with addresses (up to k). */
function providerPeersOf (s: KadState, key: Uint8Array, source: PeerId): WirePeer[] {
  const out: WirePeer[] = []
  for (const record of s.store.providers(key)) {
    if (record.provider.equals(source)) continue
    const { peerId, addresses } = s.providerInfo(record)
    if (addresses.length === 0) continue
    out.push({ id: peerId, addrs: addresses, connection: s.connected.has(peerId.toString()) ? 'CONNECTED' : 'NOT_CONNECTED' })
    if (out.length >= s.config.replicationFactor) break
  }
  return out
}

