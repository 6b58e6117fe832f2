/**
 * The table of discovered peers: each address lives until its announced TTL runs out, unless an
 * announcement refreshes it; a TTL of 0 (a goodbye) removes it at once.
 *
 * @module
 */
import type { AnnouncedPeer } from './packet.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** A peer and one of its addresses (without `/p2p`). */
export interface DiscoveredPeer {
  readonly peerId: PeerId
  readonly address: Multiaddr
}

interface Entry {
  readonly peerId: PeerId
  readonly addresses: Map<string, { readonly address: Multiaddr, expiresAt: number }>
}

/** What an announcement changed. */
export interface Update {
  /** Addresses heard for the first time (or again after they expired). */
  readonly discovered: DiscoveredPeer[]
  /** Addresses removed by a goodbye. */
  readonly expired: DiscoveredPeer[]
  /** The table was full and the peer was not recorded. */
  readonly full: boolean
}

/** Discovered peers with TTLs, bounded in peers and addresses per peer. Times are in ms. */
export class DiscoveredPeers {
  private readonly entries = new Map<string, Entry>()
  /** No address expires before this (it may be earlier than the real first expiry). */
  private earliest = Infinity

  constructor (
    private readonly maxPeers: number,
    private readonly maxAddressesPerPeer: number
  ) {}

  /** Record `peer`'s announcement, received at `now`. */
  update (peer: AnnouncedPeer, now: number): Update {
    const key = peer.peerId.toString()
    let entry = this.entries.get(key)
    if (peer.ttl === 0) {
      if (entry === undefined) return { discovered: [], expired: [], full: false }
      const expired: DiscoveredPeer[] = []
      for (const address of peer.addresses) {
        const text = address.toString()
        const known = entry.addresses.get(text)
        if (known === undefined) continue
        entry.addresses.delete(text)
        expired.push({ peerId: entry.peerId, address: known.address })
      }
      if (entry.addresses.size === 0) this.entries.delete(key)
      return { discovered: [], expired, full: false }
    }
    if (entry === undefined) {
      if (this.entries.size >= this.maxPeers) return { discovered: [], expired: [], full: true }
      entry = { peerId: peer.peerId, addresses: new Map() }
      this.entries.set(key, entry)
    }
    const expiresAt = now + peer.ttl * 1000
    const discovered: DiscoveredPeer[] = []
    for (const address of peer.addresses) {
      const text = address.toString()
      const known = entry.addresses.get(text)
      if (known !== undefined) {
        known.expiresAt = expiresAt
      } else if (entry.addresses.size < this.maxAddressesPerPeer) {
        entry.addresses.set(text, { address, expiresAt })
        discovered.push({ peerId: entry.peerId, address })
      }
    }
    if (entry.addresses.size === 0) this.entries.delete(key)
    this.earliest = Math.min(this.earliest, expiresAt)
    return { discovered, expired: [], full: false }
  }

  /** Remove every address whose TTL ran out by `now`; returns them. */
  expire (now: number): DiscoveredPeer[] {
    if (now < this.earliest) return []
    const expired: DiscoveredPeer[] = []
    let earliest = Infinity
    for (const [key, entry] of this.entries) {
      for (const [text, record] of entry.addresses) {
        if (record.expiresAt <= now) {
          entry.addresses.delete(text)
          expired.push({ peerId: entry.peerId, address: record.address })
        } else {
          earliest = Math.min(earliest, record.expiresAt)
        }
      }
      if (entry.addresses.size === 0) this.entries.delete(key)
    }
    this.earliest = earliest
    return expired
  }

  /** When `expire` next has work, or `undefined` when the table is empty. */
  nextExpiry (): number | undefined {
    return this.entries.size === 0 ? undefined : this.earliest
  }

  /** `peerId`'s current addresses. */
  addresses (peerId: PeerId): Multiaddr[] {
    const entry = this.entries.get(peerId.toString())
    return entry === undefined ? [] : [...entry.addresses.values()].map(record => record.address)
  }

  /** Every current (peer, address) pair, with the time it expires. */
  * nodes (): IterableIterator<DiscoveredPeer & { readonly expiresAt: number }> {
    for (const entry of this.entries.values()) {
      for (const { address, expiresAt } of entry.addresses.values()) yield { peerId: entry.peerId, address, expiresAt }
    }
  }

  /** Forget everything. */
  clear (): void {
    this.entries.clear()
    this.earliest = Infinity
  }
}
