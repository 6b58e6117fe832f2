/**
 * Kademlia's typed errors. Query errors keep what the query had found when it failed (the
 * peers found before a timeout, the peers that stored a record before a quorum failed).
 *
 * @module
 */
import { PeerswarmError } from '../../core/errors.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** A peer and the addresses we know for it. */
export interface PeerInfo {
  readonly peerId: PeerId
  readonly addresses: readonly Multiaddr[]
}

/** `bootstrap()` was called with an empty routing table. */
export class NoKnownPeersError extends PeerswarmError {
  constructor () {
    super('ERR_KAD_NO_KNOWN_PEERS', 'no peer is known: add one with addAddress (or connect to one that speaks Kademlia)')
  }
}

/** A bootstrap step ran out of time. */
export class BootstrapError extends PeerswarmError {
  constructor (
    readonly kind: 'Timeout',
    /** The key (as a peer id) this step looked up. */
    readonly peer: PeerId,
    /** Steps left, when known. */
    readonly numRemaining: number | undefined
  ) {
    super('ERR_KAD_BOOTSTRAP_TIMEOUT', `bootstrap lookup of ${peer.toString()} timed out`)
  }
}

/** A `getClosestPeers` ran out of time; `peers` are those that had answered. */
export class GetClosestPeersError extends PeerswarmError {
  constructor (readonly kind: 'Timeout', readonly key: Uint8Array, readonly peers: readonly PeerInfo[]) {
    super('ERR_KAD_GET_CLOSEST_PEERS_TIMEOUT', `the lookup timed out with ${peers.length} peers found`)
  }
}

/**
 * A `getRecord` ended without a record (`NotFound`: `closestPeers` were asked and had none) or
 * ran out of time before finding one (`Timeout`).
 */
export class GetRecordError extends PeerswarmError {
  constructor (readonly kind: 'NotFound' | 'Timeout', readonly key: Uint8Array, readonly closestPeers: readonly PeerId[]) {
    super(kind === 'NotFound' ? 'ERR_KAD_RECORD_NOT_FOUND' : 'ERR_KAD_GET_RECORD_TIMEOUT',
      kind === 'NotFound' ? `no record found at the ${closestPeers.length} closest peers` : 'the record lookup timed out')
  }
}

/**
 * A `putRecord` (or a republication) stored the record at fewer peers than its quorum:
 * `success` lists those that did.
 */
export class PutRecordError extends PeerswarmError {
  constructor (readonly kind: 'QuorumFailed' | 'Timeout', readonly key: Uint8Array, readonly success: readonly PeerId[], readonly quorum: number) {
    super(kind === 'QuorumFailed' ? 'ERR_KAD_QUORUM_FAILED' : 'ERR_KAD_PUT_RECORD_TIMEOUT',
      `the record was stored at ${success.length} of the ${quorum} peers needed${kind === 'Timeout' ? ' before the query timed out' : ''}`)
  }
}

/** A `startProviding` (or a republication) ran out of time. */
export class AddProviderError extends PeerswarmError {
  constructor (readonly kind: 'Timeout', readonly key: Uint8Array) {
    super('ERR_KAD_ADD_PROVIDER_TIMEOUT', 'announcing the provider record timed out')
  }
}

/** A `getProviders` ran out of time; `closestPeers` are those that had answered. */
export class GetProvidersError extends PeerswarmError {
  constructor (readonly kind: 'Timeout', readonly key: Uint8Array, readonly closestPeers: readonly PeerId[]) {
    super('ERR_KAD_GET_PROVIDERS_TIMEOUT', 'the provider lookup timed out')
  }
}
