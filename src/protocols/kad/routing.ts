/**
 * Kademlia's routing table: keeping it and learning peers (rust-libp2p's `add_address`,
 * `connection_updated` and the handling of pending entries). In order:
 *
 * 1. the application adds an address (the peer enters, waits as a bucket's pending entry while
 *    the bucket's first entry is dialed, or finds its bucket full) or removes one;
 * 2. a connection confirms that a peer speaks Kademlia: it enters with the address we dialed and
 *    the listen addresses the swarm heard of;
 * 3. a peer's status or addresses changed: its entry is updated, or it enters (unroutable without
 *    an address; `RoutablePeer` with manual inserts or a full bucket; pending, dialing the entry
 *    it would replace); `RoutingUpdated`;
 * 4. a failed address leaves the entry (unless it is the last) and the running queries;
 * 5. pending entries whose time came replace the entries they waited for;
 * 6. helpers: an entry's view, adding addresses to an entry (bounded), deduplicating.
 *
 * @module
 */
import { bucketRange, keyOfPeer, MAX_ENTRY_ADDRESSES } from './kbucket.js'
import { bootstrapOnLowPeers } from './maintenance.js'
import { withoutPeerSuffix } from './message.js'
import type { Entry, EntryView, NodeStatus, RoutingUpdate } from './kbucket.js'
import type { KadState } from './state.js'
import type { ConnectionId } from '../../core/ids.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** `Behaviour.addAddress`: a peer enters the table (or waits, or its bucket is full). */
export function addAddress (s: KadState, peerId: PeerId, address: Multiaddr): RoutingUpdate {
  const bare = withoutPeerSuffix(address, peerId)
  if (bare === undefined || peerId.equals(s.localPeerId)) return 'Failed'
  const key = keyOfPeer(peerId)
  const entry = s.table.get(key)
  if (entry !== undefined) {
    if (addAddresses(entry, [bare])) routingUpdated(s, entry, false)
    return 'Success'
  }
  const pending = s.table.getPending(key)
  if (pending !== undefined) {
    addAddresses(pending, [bare])
    return 'Pending'
  }
  const status: NodeStatus = s.connected.has(key.id) ? 'connected' : 'disconnected'
  const result = s.table.insert(key, [bare], status)
  switch (result.type) {
    case 'Inserted':
      bootstrapOnLowPeers(s)
      routingUpdated(s, s.table.get(key) as Entry, true)
      return 'Success'
    case 'Pending':
      s.actions.push({ type: 'Dial', opts: { peerId: result.disconnected.peerId } })
      return 'Pending'
    case 'Full':
      return 'Failed'
  }
}

/** `Behaviour.removeAddress`: an address leaves a peer's entry; the entry goes with its last one. */
export function removeAddress (s: KadState, peerId: PeerId, address: Multiaddr): EntryView | undefined {
  const bare = withoutPeerSuffix(address, peerId)
  if (bare === undefined) return undefined
  const key = keyOfPeer(peerId)
  const entry = s.table.get(key) ?? s.table.getPending(key)
  if (entry === undefined) return undefined
  const text = bare.toString()
  const remaining = entry.addresses.filter(a => a.toString() !== text)
  if (remaining.length === entry.addresses.length) return undefined
  if (remaining.length > 0) {
    entry.addresses = remaining
    return undefined
  }
  const removed = s.table.remove(key)
  return removed === undefined ? undefined : view(removed)
}

/** A connection confirmed that the peer speaks Kademlia: it enters with the addresses we know. */
export function protocolConfirmed (s: KadState, peerId: PeerId, connectionId: ConnectionId): void {
  s.confirmed.add(peerId.toString())
  const endpoint = s.connections.get(connectionId)?.endpoint
  const addresses: Multiaddr[] = []
  if (endpoint?.type === 'Dialer') {
    const bare = withoutPeerSuffix(endpoint.address, peerId)
    if (bare !== undefined) addresses.push(bare)
  }
  addresses.push(...s.peerAddrs.get(peerId))
  connectionUpdated(s, peerId, addresses, 'connected')
}

/** rust's `connection_updated`: a peer's status (and maybe addresses) changed. */
export function connectionUpdated (s: KadState, peerId: PeerId, addresses: Multiaddr[], status: NodeStatus): void {
  if (peerId.equals(s.localPeerId)) return
  const key = keyOfPeer(peerId)
  const entry = s.table.get(key)
  if (entry !== undefined) {
    if (entry.status !== status) s.table.update(key, status)
    if (addAddresses(entry, addresses)) routingUpdated(s, entry, false)
    return
  }
  const pending = s.table.getPending(key)
  if (pending !== undefined) {
    addAddresses(pending, addresses)
    if (pending.status !== status) s.table.update(key, status)
    return
  }
  if (status !== 'connected') return
  if (addresses.length === 0) {
    s.actions.generate({ type: 'UnroutablePeer', peer: peerId })
    return
  }
  if (s.config.bucketInserts === 'manual') {
    s.actions.generate({ type: 'RoutablePeer', peer: peerId, address: addresses[0] })
    return
  }
  const result = s.table.insert(key, dedupe(addresses), 'connected')
  switch (result.type) {
    case 'Inserted':
      bootstrapOnLowPeers(s)
      routingUpdated(s, s.table.get(key) as Entry, true)
      break
    case 'Full':
      s.actions.generate({ type: 'RoutablePeer', peer: peerId, address: addresses[0] })
      break
    case 'Pending':
      s.actions.generate({ type: 'PendingRoutablePeer', peer: peerId, address: addresses[0] })
      if (!s.connected.has(result.disconnected.id)) s.actions.push({ type: 'Dial', opts: { peerId: result.disconnected.peerId } })
      break
  }
}

function routingUpdated (s: KadState, entry: Entry, isNewPeer: boolean): void {
  s.actions.generate({
    type: 'RoutingUpdated',
    peer: entry.key.peerId,
    isNewPeer,
    addresses: [...entry.addresses],
    bucketRange: bucketRange(s.table.bucketOf(entry.key))
  })
}

/** An address failed: it leaves the peer's entry, unless it is the last one (as rust). */
export function addressFailed (s: KadState, peerId: PeerId, address: Multiaddr): void {
  const bare = withoutPeerSuffix(address, peerId)
  if (bare === undefined) return
  const text = bare.toString()
  const entry = s.table.get(keyOfPeer(peerId))
  if (entry !== undefined && entry.addresses.length > 1) entry.addresses = entry.addresses.filter(a => a.toString() !== text)
  for (const query of s.queries.values()) {
    const known = query.addresses.get(peerId.toString())
    if (known !== undefined) query.addresses.set(peerId.toString(), known.filter(a => a.toString() !== text))
  }
}

/** Pending entries whose time came replace the entries they waited for. */
export function applyPending (s: KadState): void {
  s.table.applyDue()
  for (let applied = s.table.takeApplied(); applied !== undefined; applied = s.table.takeApplied()) {
    const { inserted, evicted } = applied
    if (inserted.addresses.length > 0) s.actions.push({ type: 'NewExternalAddrOfPeer', peerId: inserted.key.peerId, address: inserted.addresses[0] })
    s.actions.generate({
      type: 'RoutingUpdated',
      peer: inserted.key.peerId,
      isNewPeer: true,
      addresses: [...inserted.addresses],
      bucketRange: bucketRange(applied.bucket),
      oldPeer: evicted?.key.peerId
    })
  }
}

/** What `kbuckets()` and `removePeer` show of an entry. */
export function view (entry: Entry): EntryView {
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
