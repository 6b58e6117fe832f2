/**
 * Parsing of what `Swarm.dial` and `ToSwarm.Dial` accept into {@link DialOpts}.
 *
 * @module
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { isMultiaddr, multiaddr } from '@multiformats/multiaddr'
import { InvalidDialTargetError } from '../core/connection-errors.js'
import type { DialOpts, DialTarget } from '../core/dial-opts.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * @internal Normalises a {@link DialTarget} to {@link DialOpts}; throws
 * `InvalidDialTargetError` naming the input when it cannot be dialed.
 */
export function toDialOpts (target: DialTarget): DialOpts {
  if (typeof target === 'string') {
    let address: Multiaddr
    try {
      address = multiaddr(target)
    } catch (err) {
      throw new InvalidDialTargetError(target, `not a multiaddr (${err instanceof Error ? err.message : String(err)})`, err)
    }
    return toDialOpts(address)
  }
  if (target === null || typeof target !== 'object') throw new InvalidDialTargetError(target, 'expected a multiaddr, a peer id or dial options')
  if (isMultiaddr(target)) {
    // Like rust-libp2p, a trailing /p2p/<id> names the peer to expect; an address dial has no
    // peer condition.
    const p2p = target.getComponents().findLast(c => c.name === 'p2p')?.value
    let peerId: PeerId | undefined
    try {
      peerId = p2p == null ? undefined : peerIdFromString(p2p)
    } catch (err) {
      throw new InvalidDialTargetError(target.toString(), `its /p2p/ part is not a peer id (${err instanceof Error ? err.message : String(err)})`, err)
    }
    return { addresses: [target], peerId, condition: 'always' }
  }
  if (isPeerId(target)) return { peerId: target }
  const opts = target as Partial<DialOpts> & Record<string, unknown>
  if (opts.peerId != null && !isPeerId(opts.peerId)) throw new InvalidDialTargetError(target, '`peerId` is not a peer id')
  if (opts.addresses != null && (!Array.isArray(opts.addresses) || !opts.addresses.every(isMultiaddr))) {
    throw new InvalidDialTargetError(target, '`addresses` must be an array of multiaddrs')
  }
  if (opts.peerId == null && opts.addresses == null && Object.keys(opts).every(k => !DIAL_OPTION_KEYS.has(k))) {
    throw new InvalidDialTargetError(target, 'expected a multiaddr, a peer id or dial options')
  }
  return target as DialOpts
}

const DIAL_OPTION_KEYS = new Set(['peerId', 'addresses', 'condition', 'extendAddressesThroughBehaviour', 'dialConcurrencyFactor', 'connectionId', 'roleOverride', 'portUse'])

function isPeerId (value: unknown): value is PeerId {
  return value != null && typeof value === 'object' && 'toMultihash' in value && 'equals' in value && !isMultiaddr(value)
}
