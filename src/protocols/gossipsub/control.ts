/**
 * Received control messages, in go-libp2p-pubsub's order: IHAVE → IWANT → GRAFT → PRUNE →
 * IDONTWANT. What they make us send (IWANT, the messages asked for, PRUNEs) is queued on the
 * router and leaves together when the RPC has been handled.
 *
 * - IHAVE: ignored from peers below the gossip threshold, beyond `maxIHaveMessages` control
 *   RPCs or `maxIHaveLength` asked ids (`maxIHaveBytes` of ids) per heartbeat, or for topics
 *   we have no mesh of; the unseen ids are asked for by IWANT, and the peer's promise to
 *   deliver is recorded;
 * - IWANT: answered from the message cache, at most `gossipRetransmission` times per peer and
 *   message, never for ids the peer sent IDONTWANT for;
 * - GRAFT: ignored for topics we have no mesh of; answered by PRUNE (without PX) for explicit
 *   peers, peers in backoff (which also extends the backoff), peers below score 0, and, when
 *   the mesh is full, inbound peers (with PX);
 * - PRUNE: ignored for topics we have no mesh of; otherwise the peer leaves the mesh and is
 *   backed off for its announced backoff (or ours); its PX peers are dialed if its score allows;
 * - IDONTWANT (v1.2): up to `maxIDontWantIds` ids (`maxIDontWantBytes` of ids) per peer per
 *   heartbeat; those ids are not sent to that peer for `idontwantTtlHeartbeats`: not
 *   forwarded nor given on IWANT from now on, and copies already queued for it are dropped
 *   by its connection's handler when their turn to be written comes (see `UnwantedIds`).
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { messageIdKey } from '../pubsub/message.js'
import { connectExchangedPeers, pruneFromMesh } from './mesh.js'
import { shuffle } from './router.js'
import type { PeerState, Router } from './router.js'
import type { MessageId } from '../pubsub/message.js'
import type { ControlRecord } from '../pubsub/rpc.js'
import type { ConnectionId } from '../../core/ids.js'

const log = logger('peerswarm:gossipsub')

/** Longest backoff a peer may ask of us, in ms: one day (a uint64 of seconds could be absurd). */
const MAX_BACKOFF = 24 * 60 * 60 * 1000

/** Handle the control part of an RPC from `peer`. */
export function handleControl<T> (r: Router<T>, peer: PeerState, control: ControlRecord, pxDials: Set<ConnectionId>): void {
  peer.controlRpcs++
  for (const ihave of control.ihave ?? []) handleIHave(r, peer, ihave.topicID, ihave.messageIDs ?? [])
  for (const iwant of control.iwant ?? []) handleIWant(r, peer, iwant.messageIDs ?? [])
  for (const graft of control.graft ?? []) handleGraft(r, peer, graft.topicID)
  for (const prune of control.prune ?? []) handlePrune(r, peer, prune, pxDials)
  for (const idontwant of control.idontwant ?? []) handleIDontWant(r, peer, idontwant.messageIDs ?? [])
}

function handleIHave<T> (r: Router<T>, peer: PeerState, topic: string | undefined, ids: readonly MessageId[]): void {
  r.countControl('received', 'ihave', 1)
  const { maxIHaveLength, maxIHaveMessages, maxIHaveBytes } = r.config
  if (topic == null || !r.mesh.has(topic)) return
  if (r.score(peer.key) < r.thresholds.gossip) return
  if (peer.controlRpcs > maxIHaveMessages || peer.iasked >= maxIHaveLength || peer.iaskedBytes >= maxIHaveBytes) {
    log.trace('ignoring IHAVE from %p: too many this heartbeat', peer.peerId)
    return
  }
  const wanted = new Map<string, MessageId>()
  // Ids that could not all be asked for are never keyed (a key is a string of the id's size).
  let room = maxIHaveBytes - peer.iaskedBytes
  for (const id of ids.slice(0, maxIHaveLength)) {
    if (id.byteLength > room) continue
    const key = messageIdKey(id)
    if (r.seen.has(key) || r.promises.has(key) || wanted.has(key)) continue
    wanted.set(key, id)
    room -= id.byteLength
  }
  if (wanted.size === 0) return
  const keys = shuffle([...wanted.keys()], r.random).slice(0, maxIHaveLength - peer.iasked)
  peer.iasked += keys.length
  for (const key of keys) peer.iaskedBytes += key.length
  r.count('iwant_ids_requested', keys.length, undefined)
  r.iwant(peer.key, keys.map(key => wanted.get(key) as MessageId))
  r.promises.add(peer.key, keys, r.now() + r.config.iwantFollowupTime)
}

function handleIWant<T> (r: Router<T>, peer: PeerState, ids: readonly MessageId[]): void {
  r.countControl('received', 'iwant', 1)
  if (r.score(peer.key) < r.thresholds.gossip) return
  for (const id of ids.slice(0, r.config.maxIHaveLength)) {
    const key = messageIdKey(id)
    if (peer.dontSend.has(key)) {
      if (r.mcache.has(key)) r.count('messages_unwanted', 1, { stage: 'send' })
      continue
    }
    const found = r.mcache.getForPeer(key, peer.key)
    if (found == null) continue
    if (found.count > r.config.gossipRetransmission) {
      log.trace('%p asked for a message %d times; not sending it again', peer.peerId, found.count)
      continue
    }
    r.sendFrame(peer, found.message.frame, 'low', key)
  }
}

function handleGraft<T> (r: Router<T>, peer: PeerState, topic: string | undefined): void {
  r.countControl('received', 'graft', 1)
  const members = topic == null ? undefined : r.mesh.get(topic)
  // A GRAFT for a topic we have no mesh of is ignored, without PRUNE (go; v1.1 hardening).
  if (topic == null || members == null || members.has(peer.key)) return
  const refuse = (px: boolean): void => { pruneFromMesh(r, topic, peer.key, { px, backoff: r.config.pruneBackoff }) }
  if (r.explicit.has(peer.key)) {
    log('explicit peer %p tried to GRAFT on %s', peer.peerId, topic)
    refuse(false)
    return
  }
  if (r.backoff.isActive(topic, peer.key)) {
    // A GRAFT during backoff breaks the protocol: a behaviour penalty (P7), double right
    // after the PRUNE (within graftFloodThreshold).
    log('%p tried to GRAFT on %s during its backoff', peer.peerId, topic)
    const flood = r.backoff.startedWithin(topic, peer.key, r.config.graftFloodThreshold)
    r.scoring?.addPenalty(peer.key, flood ? 2 : 1)
    refuse(false)
    return
  }
  if (r.score(peer.key) < 0) {
    refuse(false)
    return
  }
  if (members.size >= r.config.meshNHigh && !r.isOutbound(peer)) {
    refuse(r.config.doPX)
    return
  }
  r.addToMesh(topic, peer.key, false)
}

function handlePrune<T> (
  r: Router<T>,
  peer: PeerState,
  prune: NonNullable<ControlRecord['prune']>[number],
  pxDials: Set<ConnectionId>
): void {
  r.countControl('received', 'prune', 1)
  const topic = prune.topicID
  // A PRUNE for a topic we have no mesh of changes nothing (as go): recording its backoff
  // would let a peer fill our backoff table with made-up topics.
  if (topic == null || !r.mesh.has(topic)) return
  r.removeFromMesh(topic, peer.key)
  const backoff = prune.backoff != null && prune.backoff > 0 ? Math.min(prune.backoff * 1000, MAX_BACKOFF) : r.config.pruneBackoff
  r.backoff.update(topic, peer.key, backoff)
  if ((prune.peers?.length ?? 0) > 0 && r.score(peer.key) >= r.thresholds.acceptPX) {
    connectExchangedPeers(r, prune.peers ?? [], pxDials)
  }
}

function handleIDontWant<T> (r: Router<T>, peer: PeerState, ids: readonly MessageId[]): void {
  r.countControl('received', 'idontwant', 1)
  const until = r.ticks + r.config.idontwantTtlHeartbeats
  const { maxIDontWantIds, maxIDontWantBytes } = r.config
  for (const id of ids) {
    if (peer.idontwantIds >= maxIDontWantIds) {
      log.trace('ignoring further IDONTWANT from %p this heartbeat', peer.peerId)
      return
    }
    // An id past the byte budget is skipped (a shorter one after it may still fit).
    if (peer.idontwantBytes + id.byteLength > maxIDontWantBytes) continue
    peer.idontwantIds++
    peer.idontwantBytes += id.byteLength
    peer.dontSend.set(messageIdKey(id), until)
  }
}
