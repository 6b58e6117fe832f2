/**
 * The heartbeat (gossipsub v1.0 and v1.1 specs; go-libp2p-pubsub's `heartbeat()` order):
 *
 * 1. count the tick; every 15 ticks forget expired backoffs;
 * 2. reset the per-peer, per-heartbeat counters (IHAVE, IWANT, IDONTWANT) and expire
 *    IDONTWANTs;
 * 3. decay the scores when `decayInterval` has passed; broken IWANT promises cost P7;
 * 4. every `directConnectTicks`, dial disconnected explicit peers;
 * 5. for each mesh: prune peers below score 0; graft up to D when below D_lo; prune down to D
 *    when above D_hi, keeping the best D_score by score and at least D_out outbound peers;
 *    graft outbound peers when fewer than D_out; every `opportunisticGraftTicks`, graft peers
 *    above the median score if the median is too low; then gossip (IHAVE) to non-mesh peers;
 * 6. forget fanout topics not published to within `fanoutTtl`;
 * 7. for each fanout: drop peers that left the topic, top up to D, gossip to the others;
 * 8. send the GRAFTs, PRUNEs and IHAVEs, one RPC per peer;
 * 9. shift the message cache.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { graftable, pruneFromMesh } from './mesh.js'
import { features, shuffle } from './router.js'
import type { MetricsSink } from './metrics.js'
import type { PeerKey, PeerState, Router } from './router.js'
import type { MessageId } from '../pubsub/message.js'
import type { TopicHash } from '../pubsub/topic.js'

const log = logger('peerswarm:gossipsub')

/** One heartbeat. */
export function heartbeat<T> (r: Router<T>): void {
  const { config } = r
  r.ticks++
  if (r.ticks % 15 === 0) r.backoff.clearExpired()

  for (const peer of r.peers.values()) {
    peer.controlRpcs = 0
    peer.iasked = 0
    peer.iaskedBytes = 0
    peer.idontwantIds = 0
    peer.idontwantBytes = 0
    peer.subscribeOffers = 0
    for (const [key, until] of peer.dontSend) {
      if (until <= r.ticks) peer.dontSend.delete(key)
    }
  }

  if (r.scoring != null && r.now() - r.lastScoreRefresh >= r.scoring.params.decayInterval) {
    r.lastScoreRefresh = r.now()
    r.scoring.refresh()
  }

  for (const [peer, count] of r.promises.brokenPromises()) {
    log('%s broke %d IWANT promise(s)', peer, count)
    r.count('promises_broken', count, undefined)
    r.scoring?.addPenalty(peer, count)
  }

  if (r.ticks % config.directConnectTicks === 0) {
    for (const [key, peerId] of r.explicit) {
      if (!r.peers.has(key)) r.queue({ type: 'Dial', opts: { peerId } })
    }
  }

  for (const [topic, members] of r.mesh) {
    maintainMesh(r, topic, members)
    emitGossip(r, topic, members)
  }

  const now = r.now()
  for (const [topic, published] of r.fanoutLastPublished) {
    if (published + config.fanoutTtl < now) {
      r.fanout.delete(topic)
      r.fanoutLastPublished.delete(topic)
    }
  }
  for (const [topic, members] of r.fanout) {
    for (const key of members) {
      const peer = r.peers.get(key)
      if (peer == null || !peer.topics.has(topic) || r.score(key) < r.thresholds.publish) members.delete(key)
    }
    if (members.size < config.meshN) {
      const candidates = r.meshCandidates(topic).filter(p => !members.has(p.key) && r.score(p.key) >= r.thresholds.publish)
      for (const peer of shuffle(candidates, r.random).slice(0, config.meshN - members.size)) members.add(peer.key)
    }
    emitGossip(r, topic, members)
  }

  r.flush()
  r.mcache.shift()
  if (r.metrics != null) observe(r, r.metrics)
}

function observe<T> (r: Router<T>, metrics: MetricsSink): void {
  for (const [topic, members] of r.mesh) metrics.observe('mesh_size', members.size, { topic })
  for (const [topic, members] of r.fanout) metrics.observe('fanout_size', members.size, { topic })
  if (r.scoring != null) for (const key of r.peers.keys()) metrics.observe('peer_score', r.score(key), undefined)
}

function maintainMesh<T> (r: Router<T>, topic: TopicHash, members: Set<PeerKey>): void {
  const { meshN, meshNLow, meshNHigh, meshNScore, meshOutboundMin, pruneBackoff, doPX } = r.config
  for (const key of members) {
    if (r.score(key) < 0) pruneFromMesh(r, topic, key, { px: false, backoff: pruneBackoff })
  }

  if (members.size < meshNLow) {
    for (const key of shuffle(graftable(r, topic, members), r.random).slice(0, meshN - members.size)) {
      r.addToMesh(topic, key, true)
    }
  }

  if (members.size > meshNHigh) {
    // Shuffle first so that equal scores are broken at random, then keep the best D_score.
    const byScore = shuffle([...members], r.random).sort((a, b) => r.score(b) - r.score(a))
    const kept = [...byScore.slice(0, meshNScore), ...shuffle(byScore.slice(meshNScore), r.random)].slice(0, meshN)
    const keptSet = new Set(kept)
    // Keep at least D_out outbound peers: swap outbound peers in for inbound ones past D_score.
    let outbound = kept.filter(key => isOutbound(r, key)).length
    if (outbound < meshOutboundMin) {
      const spare = byScore.filter(key => !keptSet.has(key) && isOutbound(r, key))
      for (let i = kept.length - 1; i >= 0 && outbound < meshOutboundMin && spare.length > 0; i--) {
        if (isOutbound(r, kept[i])) continue
        const incoming = spare.shift() as PeerKey
        keptSet.delete(kept[i])
        keptSet.add(incoming)
        kept[i] = incoming
        outbound++
      }
    }
    for (const key of [...members]) {
      if (!keptSet.has(key)) pruneFromMesh(r, topic, key, { px: doPX, backoff: pruneBackoff })
    }
  }

  if (members.size >= meshNLow) {
    const outbound = [...members].filter(key => isOutbound(r, key)).length
    if (outbound < meshOutboundMin) {
      const candidates = graftable(r, topic, members).filter(key => isOutbound(r, key))
      for (const key of shuffle(candidates, r.random).slice(0, meshOutboundMin - outbound)) {
        r.addToMesh(topic, key, true)
      }
    }
  }

  if (r.ticks % r.config.opportunisticGraftTicks === 0 && members.size > 1) {
    const scores = [...members].map(key => r.score(key)).sort((a, b) => a - b)
    const median = scores[Math.floor(scores.length / 2)]
    if (median < r.thresholds.opportunisticGraft) {
      const candidates = graftable(r, topic, members).filter(key => r.score(key) > median)
      for (const key of shuffle(candidates, r.random).slice(0, r.config.opportunisticGraftPeers)) {
        r.addToMesh(topic, key, true)
      }
    }
  }
}

/**
 * IHAVE for the ids of the gossip windows to max(D_lazy, gossipFactor × eligible) peers of
 * `topic` outside `exclude`, each getting at most `maxIHaveLength` ids (a random subset each
 * when there are more).
 */
function emitGossip<T> (r: Router<T>, topic: TopicHash, exclude: ReadonlySet<PeerKey>): void {
  const ids = r.mcache.getGossipIds(topic)
  if (ids.length === 0) return
  const eligible = r.meshCandidates(topic).filter(p => !exclude.has(p.key) && r.score(p.key) >= r.thresholds.gossip)
  const target = Math.max(r.config.gossipLazy, Math.floor(r.config.gossipFactor * eligible.length))
  for (const peer of shuffle(eligible, r.random).slice(0, target)) offer(r, peer.key, topic, ids)
}

/**
 * IHAVE for the ids of `topic`'s gossip windows to one peer that just subscribed to it
 * (`gossipOnSubscribe`): gossipsub peers at or above the gossip threshold only, at most
 * `maxIHaveMessages` times per peer per heartbeat (a peer toggling its subscription gets no
 * more).
 */
export function gossipToSubscriber<T> (r: Router<T>, peer: PeerState, topic: TopicHash): void {
  if (!r.config.gossipOnSubscribe || !r.mesh.has(topic) || !features.mesh(r.protocolOf(peer))) return
  if (peer.subscribeOffers >= r.config.maxIHaveMessages || r.score(peer.key) < r.thresholds.gossip) return
  const ids = r.mcache.getGossipIds(topic)
  if (ids.length === 0) return
  peer.subscribeOffers++
  offer(r, peer.key, topic, ids)
}

/** IHAVE `ids` to `peer`, at most `maxIHaveLength` of them (a random subset when there are more). */
function offer<T> (r: Router<T>, peer: PeerKey, topic: TopicHash, ids: MessageId[]): void {
  r.ihave(peer, topic, ids.length > r.config.maxIHaveLength ? shuffle([...ids], r.random).slice(0, r.config.maxIHaveLength) : ids)
}

function isOutbound<T> (r: Router<T>, key: PeerKey): boolean {
  const peer = r.peers.get(key)
  return peer != null && r.isOutbound(peer)
}
