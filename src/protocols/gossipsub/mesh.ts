/**
 * Joining and leaving topic meshes, and peer exchange (gossipsub v1.0 JOIN/LEAVE, v1.1 PX).
 *
 * - `join(topic)`: fanout peers of the topic become mesh peers (unless backed off or below
 *   score 0), the mesh is topped up to D from the topic's other peers, each gets a GRAFT;
 * - `leave(topic)`: every mesh peer gets a PRUNE with the unsubscribe backoff, which we
 *   observe too;
 * - `connectExchangedPeers(entries)`: the peers a PRUNE named are checked (signed records)
 *   and dialed, up to `prunePeers` per PRUNE and `maxPendingPxDials` at once.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { describe } from '../../core/errors.js'
import { newConnectionId } from '../../core/ids.js'
import { openExchangedPeer } from './peer-exchange.js'
import { shuffle } from './router.js'
import type { PeerKey, Router } from './router.js'
import type { TopicHash } from '../pubsub/topic.js'
import type { ConnectionId } from '../../core/ids.js'

const log = logger('peerswarm:gossipsub')

/** Peers of `topic` we may graft now: mesh-capable, not explicit, not in `exclude`, not backed off, score ≥ 0. */
export function graftable<T> (r: Router<T>, topic: TopicHash, exclude: ReadonlySet<PeerKey>): PeerKey[] {
  return r.meshCandidates(topic)
    .filter(p => !exclude.has(p.key) && !r.backoff.isBackedOff(topic, p.key) && r.score(p.key) >= 0)
    .map(p => p.key)
}

/** Subscribe-side JOIN: build the topic's mesh and GRAFT its members. */
export function join<T> (r: Router<T>, topic: TopicHash): void {
  if (r.mesh.has(topic)) return
  const members = new Set<PeerKey>()
  for (const key of r.fanout.get(topic) ?? []) {
    if (!r.backoff.isBackedOff(topic, key) && r.score(key) >= 0 && !r.explicit.has(key)) members.add(key)
  }
  r.fanout.delete(topic)
  r.fanoutLastPublished.delete(topic)
  if (members.size < r.config.meshN) {
    for (const key of shuffle(graftable(r, topic, members), r.random).slice(0, r.config.meshN - members.size)) members.add(key)
  }
  r.mesh.set(topic, new Set())
  for (const key of members) r.addToMesh(topic, key, true)
}

/** Unsubscribe-side LEAVE: PRUNE every mesh peer with the unsubscribe backoff. */
export function leave<T> (r: Router<T>, topic: TopicHash): void {
  const members = r.mesh.get(topic)
  if (members == null) return
  for (const key of [...members]) pruneFromMesh(r, topic, key, { px: r.config.doPX, backoff: r.config.unsubscribeBackoff })
  r.mesh.delete(topic)
}

/** Tell `key` it left our mesh of `topic`, and back off from it for as long as we tell it. */
export function pruneFromMesh<T> (r: Router<T>, topic: TopicHash, key: PeerKey, prune: { readonly px: boolean, readonly backoff: number }): void {
  r.removeFromMesh(topic, key)
  r.backoff.update(topic, key, prune.backoff)
  r.prune(key, topic, prune)
}

/** A PRUNE's peers: verified, then dialed (asynchronously; records are checked first). */
export function connectExchangedPeers<T> (
  r: Router<T>,
  entries: ReadonlyArray<{ readonly peerID?: Uint8Array, readonly signedPeerRecord?: Uint8Array }>,
  pxDials: Set<ConnectionId>
): void {
  const room = Math.min(r.config.prunePeers, r.config.maxPendingPxDials - r.pendingPxDials)
  if (room <= 0) return
  for (const entry of shuffle([...entries], r.random).slice(0, room)) {
    r.pendingPxDials++
    openExchangedPeer(entry).then((peer) => {
      const key = peer.peerId.toString()
      if (r.peers.has(key) || r.localPeer === key) {
        r.pendingPxDials--
        return
      }
      if (peer.record != null && peer.seq != null) r.records.set(key, peer.seq, peer.record)
      for (const address of peer.addresses) r.queue({ type: 'NewExternalAddrOfPeer', peerId: peer.peerId, address })
      const connectionId = newConnectionId()
      pxDials.add(connectionId)
      r.queue({
        type: 'Dial',
        opts: { peerId: peer.peerId, addresses: peer.addresses, extendAddressesThroughBehaviour: peer.addresses.length === 0, connectionId }
      })
    }, (err: unknown) => {
      r.pendingPxDials--
      log('ignoring a PX entry: %s', describe(err))
    })
  }
}
