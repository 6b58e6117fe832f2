/**
 * Address bookkeeping for behaviours, as rust-libp2p's `ListenAddresses`, `ExternalAddresses`
 * and `PeerAddresses`: each is fed every `FromSwarm` event (call its `onSwarmEvent` from the
 * behaviour's own) and answers "where do I listen", "where am I reachable" and "where is that
 * peer". Each is bounded.
 *
 * ```ts
 * import { ExternalAddresses, ListenAddresses, PeerAddresses } from 'peerswarm'
 * import type { FromSwarm } from 'peerswarm'
 *
 * const listen = new ListenAddresses()
 * const external = new ExternalAddresses()
 * const peers = new PeerAddresses()
 * const onSwarmEvent = (event: FromSwarm) => {
 *   listen.onSwarmEvent(event)
 *   external.onSwarmEvent(event)
 *   peers.onSwarmEvent(event)
 * }
 * ```
 *
 * @module
 */
import { ConfigError } from '../core/errors.js'
import type { FromSwarm } from './network-behaviour.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * The swarm's listen addresses: added on `NewListenAddr`, removed on `ExpiredListenAddr`. A
 * listener's addresses are few (its interfaces); this set holds whatever the swarm reports.
 *
 * @group Toolkit for protocols
 */
export class ListenAddresses implements Iterable<Multiaddr> {
  private readonly addresses = new Map<string, Multiaddr>()

  /** Update from a swarm event; true when the set changed. */
  onSwarmEvent (event: FromSwarm): boolean {
    if (event.type === 'NewListenAddr') {
      const key = event.address.toString()
      if (this.addresses.has(key)) return false
      this.addresses.set(key, event.address)
      return true
    }
    if (event.type === 'ExpiredListenAddr') return this.addresses.delete(event.address.toString())
    return false
  }

  /** Whether `address` is one of the listen addresses. */
  has (address: Multiaddr): boolean {
    return this.addresses.has(address.toString())
  }

  /** How many addresses there are. */
  get size (): number {
    return this.addresses.size
  }

  /** The addresses, oldest first. */
  [Symbol.iterator] (): Iterator<Multiaddr> {
    return this.addresses.values()
  }
}

/**
 * How many confirmed external addresses {@link ExternalAddresses} keeps by default (rust's).
 *
 * @group Toolkit for protocols
 */
export const MAX_EXTERNAL_ADDRESSES = 20

/**
 * The swarm's confirmed external addresses, most recently confirmed first: added (or moved to
 * the front) on `ExternalAddrConfirmed`, removed on `ExternalAddrExpired`. Beyond `limit` (20 by
 * default) the least recently confirmed is dropped.
 *
 * @group Toolkit for protocols
 */
export class ExternalAddresses implements Iterable<Multiaddr> {
  private addresses: Multiaddr[] = []

  constructor (readonly limit: number = MAX_EXTERNAL_ADDRESSES) {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new ConfigError('limit', `must be a positive integer, got ${String(limit)}`)
  }

  /** Update from a swarm event; true when the list changed. */
  onSwarmEvent (event: FromSwarm): boolean {
    if (event.type === 'ExternalAddrConfirmed') {
      const key = event.address.toString()
      const at = this.addresses.findIndex(a => a.toString() === key)
      if (at === 0) return false
      if (at > 0) this.addresses.splice(at, 1)
      this.addresses.unshift(event.address)
      if (this.addresses.length > this.limit) this.addresses.length = this.limit
      return true
    }
    if (event.type === 'ExternalAddrExpired') {
      const key = event.address.toString()
      const before = this.addresses.length
      this.addresses = this.addresses.filter(a => a.toString() !== key)
      return this.addresses.length !== before
    }
    return false
  }

  /** Whether `address` is a confirmed external address. */
  has (address: Multiaddr): boolean {
    const key = address.toString()
    return this.addresses.some(a => a.toString() === key)
  }

  /** How many addresses there are. */
  get size (): number {
    return this.addresses.length
  }

  /** The addresses, most recently confirmed first. */
  [Symbol.iterator] (): Iterator<Multiaddr> {
    return this.addresses.values()
  }
}

/**
 * Limits of a {@link PeerAddresses}.
 *
 * @group Toolkit for protocols
 */
export interface PeerAddressesOptions {
  /** Peers remembered; beyond, the least recently used is forgotten (default: 100, as rust). */
  readonly peers?: number
  /** Addresses remembered per peer; beyond, the least recently added (default: 10, as rust). */
  readonly addressesPerPeer?: number
}

/**
 * Other peers' addresses, as least-recently-used caches: a peer's addresses are added on
 * `NewExternalAddrOfPeer` (what identify, mDNS or Kademlia learnt) or by {@link add}, and an
 * address that failed at the transport level in a dial to that peer (`DialFailure` with a
 * `Transport` error) is removed. Addresses are kept without a trailing `/p2p/<peer id>`; one
 * whose `/p2p/` names another peer is refused.
 *
 * @group Toolkit for protocols
 */
export class PeerAddresses {
  private readonly peers = new Map<string, Map<string, Multiaddr>>()
  private readonly maxPeers: number
  private readonly maxAddresses: number

  constructor (options: PeerAddressesOptions = {}) {
    this.maxPeers = options.peers ?? 100
    this.maxAddresses = options.addressesPerPeer ?? 10
    if (!Number.isSafeInteger(this.maxPeers) || this.maxPeers < 1) throw new ConfigError('peers', `must be a positive integer, got ${String(options.peers)}`)
    if (!Number.isSafeInteger(this.maxAddresses) || this.maxAddresses < 1) throw new ConfigError('addressesPerPeer', `must be a positive integer, got ${String(options.addressesPerPeer)}`)
  }

  /** Update from a swarm event; true when an address was added or removed. */
  onSwarmEvent (event: FromSwarm): boolean {
    if (event.type === 'NewExternalAddrOfPeer') return this.add(event.peerId, event.address)
    if (event.type === 'DialFailure' && event.peerId != null && event.error.type === 'Transport') {
      let changed = false
      for (const { address } of event.error.errors) changed = this.remove(event.peerId, address) || changed
      return changed
    }
    return false
  }

  /**
   * Remember `address` for `peerId` (marking the peer as recently used); false when it was
   * known already or names another peer.
   */
  add (peerId: PeerId, address: Multiaddr): boolean {
    const bare = withoutPeer(peerId, address)
    if (bare == null) return false
    const id = peerId.toString()
    let known = this.peers.get(id)
    if (known == null) {
      known = new Map()
      if (this.peers.size >= this.maxPeers) this.peers.delete(this.peers.keys().next().value as string)
    } else {
      this.peers.delete(id)
    }
    this.peers.set(id, known)
    const key = bare.toString()
    if (known.has(key)) return false
    if (known.size >= this.maxAddresses) known.delete(known.keys().next().value as string)
    known.set(key, bare)
    return true
  }

  /** Forget `address` of `peerId`; true when it was known. */
  remove (peerId: PeerId, address: Multiaddr): boolean {
    const bare = withoutPeer(peerId, address)
    const known = this.peers.get(peerId.toString())
    if (bare == null || known == null) return false
    const removed = known.delete(bare.toString())
    if (known.size === 0) this.peers.delete(peerId.toString())
    return removed
  }

  /** The addresses known for `peerId`, oldest first (without `/p2p/`); marks it recently used. */
  get (peerId: PeerId): Multiaddr[] {
    const id = peerId.toString()
    const known = this.peers.get(id)
    if (known == null) return []
    this.peers.delete(id)
    this.peers.set(id, known)
    return [...known.values()]
  }

  /** How many peers have addresses. */
  get size (): number {
    return this.peers.size
  }
}

/** `address` without its trailing `/p2p/<peerId>`; undefined when its `/p2p/` is another peer's. */
function withoutPeer (peerId: PeerId, address: Multiaddr): Multiaddr | undefined {
  const components = address.getComponents()
  const last = components.at(-1)
  if (last?.name !== 'p2p') return address
  if (last.value !== peerId.toString()) return undefined
  return address.decapsulateCode(last.code)
}
