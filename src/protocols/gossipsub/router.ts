/**
 * The state GossipSub's phases share, and the primitives they send with. The phases are
 * functions over it, each in its own file (rust-libp2p keeps them all in its `behaviour.rs`):
 * `mesh.ts` (join, leave, graft, prune), `control.ts` (received control messages),
 * `heartbeat.ts` (mesh and fanout maintenance, gossip emission) and `behaviour.ts` (the
 * public API, the swarm's entry points, publishing and forwarding).
 *
 * Sending: messages are framed once and the same bytes go to every recipient; control
 * messages for a peer are collected while an entry point runs and leave together, as one RPC
 * (split only if it would exceed the frame limit), when it ends (`flush`).
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { ActionQueue } from '../../behaviour/action-queue.js'
import { encodeFrame } from '../../behaviour/framing.js'
import { encodeRpc } from '../pubsub/rpc.js'
import { newTotals } from '../pubsub/totals.js'
import { BackoffTable } from './backoff.js'
import { FLOODSUB_PROTOCOL, PROTOCOL_V1_0, PROTOCOL_V1_1, PROTOCOL_V1_2 } from './config.js'
import { GossipPromises } from './gossip-promises.js'
import { MessageCache } from './mcache.js'
import { PeerRecords } from './peer-exchange.js'
import { PeerScore } from './score/peer-score.js'
import type { Config } from './config.js'
import type { CounterName, Counters, Labels, MetricsSink } from './metrics.js'
import type { MessageTotals } from '../pubsub/totals.js'
import type { MessageId } from '../pubsub/message.js'
import type { ControlRecord, Rpc } from '../pubsub/rpc.js'
import type { SeenCache } from '../pubsub/seen-cache.js'
import type { QueueGauge, RecentIds, UnwantedIds } from '../pubsub/peer-state.js'
import type { FromBehaviour } from '../pubsub/stream-handler.js'
import type { TopicHash } from '../pubsub/topic.js'
import type { ToSwarm } from '../../behaviour/network-behaviour.js'
import type { ConnectionId } from '../../core/ids.js'
import type { PeerId } from '@libp2p/interface'

const log = logger('peerswarm:gossipsub')

/** A peer id's string form, the key of every per-peer map. */
export type PeerKey = string

/** One connection of a peer. */
export interface PeerConnection {
  readonly id: ConnectionId
  /** We dialed it. */
  readonly outbound: boolean
  /** The protocol of our outbound pubsub stream on it, once negotiated. */
  protocol?: string
  /** The remote's IP, for the IP colocation score (P6). */
  readonly ips: readonly string[]
  /** High-priority bytes queued towards the connection's handler. */
  readonly gauge?: QueueGauge
  /** Shared with the connection's handler: the peer's IDONTWANT ids, checked as it writes. */
  readonly unwanted?: UnwantedIds
}

/** What we know of a connected peer. */
export interface PeerState {
  readonly peerId: PeerId
  readonly key: PeerKey
  /** Oldest first; frames go over the first. */
  readonly connections: PeerConnection[]
  /** Topics it subscribes to. */
  readonly topics: Set<TopicHash>
  /** RPCs with control messages received this heartbeat (IHAVE flood guard). */
  controlRpcs: number
  /** Message ids asked of it by IWANT this heartbeat. */
  iasked: number
  /** Bytes of those ids. */
  iaskedBytes: number
  /** IDONTWANT ids taken from it this heartbeat. */
  idontwantIds: number
  /** Bytes of those ids. */
  idontwantBytes: number
  /** IHAVEs offered to it this heartbeat because it subscribed (`gossipOnSubscribe`). */
  subscribeOffers: number
  /** Message id keys it asked us not to send, with the heartbeat at which that ends. */
  readonly dontSend: Map<string, number>
  /** The last messages it sent us: no copy of them goes back to it. */
  readonly heard: RecentIds
  /** What its handlers were last told (`KeepAlive`): it shares a topic with us (see `sharesTopic`). */
  keepAlive: boolean
  /**
   * What its handlers were last told (`HoldInbound`): its score was found below
   * `graylistThreshold` (at an RPC of it, or a rejected message), so its inbound streams are
   * not read until the score is back (see `holdInbound`, `releaseInbound`).
   */
  held: boolean
}

/** The PRUNE we owe a peer on a topic. */
export interface PendingPrune {
  /** Attach peer exchange. */
  readonly px: boolean
  /** Backoff to announce, in ms. */
  readonly backoff: number
}

/** Control messages waiting to leave for one peer. */
interface PendingControl {
  readonly graft: Set<TopicHash>
  readonly prune: Map<TopicHash, PendingPrune>
  readonly ihave: Map<TopicHash, MessageId[]>
  readonly iwant: MessageId[]
  readonly idontwant: MessageId[]
}

/** The kinds of control messages. */
export type ControlType = 'graft' | 'prune' | 'ihave' | 'iwant' | 'idontwant'

/** The subset of a peer's capabilities that depends on its negotiated protocol. */
export const features = {
  /** It takes part in meshes and gossip (any meshsub version). */
  mesh: (protocol: string | undefined) => protocol === PROTOCOL_V1_2 || protocol === PROTOCOL_V1_1 || protocol === PROTOCOL_V1_0,
  /**
   * It understands PRUNE backoff and peer exchange (v1.1 and later). Also while our stream to
   * it is still negotiating (`undefined`): a PRUNE queued then must keep its backoff, and the
   * fields are optional ones that a v1.0 decoder skips.
   */
  backoffAndPx: (protocol: string | undefined) => protocol === undefined || protocol === PROTOCOL_V1_2 || protocol === PROTOCOL_V1_1,
  /** It understands IDONTWANT (v1.2). */
  idontwant: (protocol: string | undefined) => protocol === PROTOCOL_V1_2,
  /** It speaks only FloodSub. */
  floodsub: (protocol: string | undefined) => protocol === FLOODSUB_PROTOCOL
}

/** The thresholds the router applies (all 0 when scoring is off, as go-libp2p-pubsub). */
export interface Thresholds {
  readonly gossip: number
  readonly publish: number
  readonly graylist: number
  readonly acceptPX: number
  readonly opportunisticGraft: number
}

/** Largest control payload per RPC, as rust-libp2p reads at most 16 KiB of control. */
const MAX_CONTROL_BYTES = 16 * 1024

/** The message total each counter adds to. */
const TOTAL_OF: Partial<Record<CounterName, keyof MessageTotals>> = {
  messages_published: 'published',
  messages_received: 'received',
  messages_forwarded: 'forwarded',
  messages_duplicate: 'duplicates',
  messages_invalid: 'invalid',
  messages_ignored: 'ignored',
  queue_dropped_bytes: 'droppedBytes',
  messages_unwanted: 'unwanted',
  messages_echoes: 'echoes'
}

/** GossipSub's shared state and sending primitives. */
export class Router<TEvent> {
  readonly peers = new Map<PeerKey, PeerState>()
  /** Topics we subscribe to, each with its mesh. */
  readonly mesh = new Map<TopicHash, Set<PeerKey>>()
  /** Topics we publish to without subscribing, each with its fanout peers. */
  readonly fanout = new Map<TopicHash, Set<PeerKey>>()
  /** When we last published on each fanout topic. */
  readonly fanoutLastPublished = new Map<TopicHash, number>()
  /** Explicit peers: always forwarded to, never in a mesh, reconnected. */
  readonly explicit = new Map<PeerKey, PeerId>()
  readonly backoff: BackoffTable
  readonly mcache: MessageCache
  readonly promises: GossipPromises
  readonly records = new PeerRecords()
  /** Our own peer id string, when we sign (PX never dials ourselves). */
  localPeer?: PeerKey
  /** When the scores last decayed. */
  lastScoreRefresh = 0
  /** Heartbeats so far. */
  ticks = 0
  /** PX dials in flight. */
  pendingPxDials = 0
  /** Peer scoring, when `scoreParams` are configured. */
  readonly scoring?: PeerScore
  /** What scores mean; all 0 without scoring. */
  readonly thresholds: Thresholds
  /** Where metrics go, if anywhere. */
  readonly metrics?: MetricsSink
  /** Message totals (`Behaviour.totals()`). */
  readonly totals: MessageTotals = newTotals()
  /** Counters of control traffic, for tests and diagnostics. */
  readonly counters = { graftSent: 0, pruneSent: 0, ihaveSent: 0, iwantSent: 0, idontwantSent: 0, graftReceived: 0, pruneReceived: 0, ihaveReceived: 0, iwantReceived: 0, idontwantReceived: 0 }
  private readonly pending = new Map<PeerKey, PendingControl>()
  /** Peers whose keep-alive answer may have changed; checked at the next `flush`. */
  private readonly keepAliveDirty = new Set<PeerKey>()
  /** Peers whose inbound streams are held (`holdInbound`), connected or not. */
  private readonly held = new Set<PeerKey>()
  /** What the behaviour's `poll` hands the swarm, with the swarm's waker. */
  readonly actions = new ActionQueue<TEvent, FromBehaviour>()

  constructor (
    readonly config: Config,
    readonly seen: SeenCache,
    readonly now: () => number,
    readonly random: () => number
  ) {
    this.backoff = new BackoffTable(config.backoffSlackHeartbeats * config.heartbeatInterval, now)
    this.mcache = new MessageCache(config.historyLength, config.historyGossip)
    this.promises = new GossipPromises(now, random)
    this.metrics = config.metrics
    if (config.scoreParams != null) {
      this.scoring = new PeerScore(config.scoreParams, now)
      const t = config.scoreThresholds
      this.thresholds = { gossip: t.gossipThreshold, publish: t.publishThreshold, graylist: t.graylistThreshold, acceptPX: t.acceptPXThreshold, opportunisticGraft: t.opportunisticGraftThreshold }
    } else {
      this.thresholds = { gossip: 0, publish: 0, graylist: 0, acceptPX: 0, opportunisticGraft: 0 }
    }
  }

  /**
   * Count `value` of the metric `name`: in the always-on message totals (for the counters that
   * have one) and in the metrics sink, if any.
   */
  count<N extends CounterName> (name: N, value: number, labels: Labels<Counters[N]>): void {
    const total = TOTAL_OF[name]
    if (total != null) this.totals[total] += value
    this.metrics?.increment(name, value, labels)
  }

  /** Count control entries of `type` sent or received. */
  countControl (direction: 'sent' | 'received', type: ControlType, entries: number): void {
    if (entries === 0) return
    this.counters[`${type}${direction === 'sent' ? 'Sent' : 'Received'}`] += entries
    this.count(direction === 'sent' ? 'control_sent' : 'control_received', entries, { type })
  }

  /** Queue an action for the swarm. */
  queue (action: ToSwarm<TEvent, FromBehaviour>): void {
    this.actions.push(action)
  }

  /** Report `event` to the application. */
  emit (event: TEvent): void {
    this.queue({ type: 'GenerateEvent', event })
  }

  /** The protocol our outbound stream to `peer` speaks, once negotiated. */
  protocolOf (peer: PeerState): string | undefined {
    return peer.connections[0]?.protocol
  }

  /** Whether the connection our frames to `peer` go over was dialed by us. */
  isOutbound (peer: PeerState): boolean {
    return peer.connections[0]?.outbound === true
  }

  /** The peer's score (always 0 without scoring). */
  score (peer: PeerKey): number {
    return this.scoring?.score(peer) ?? 0
  }

  /** `key` joins our mesh of `topic`; with `graft`, it is told by a GRAFT. */
  addToMesh (topic: TopicHash, key: PeerKey, graft: boolean): void {
    const members = this.mesh.get(topic)
    if (members == null || members.has(key)) return
    members.add(key)
    this.keepAliveDirty.add(key)
    this.scoring?.graft(key, topic)
    if (graft) this.graft(key, topic)
  }

  /** `key` leaves our mesh of `topic` (telling it is the caller's business). */
  removeFromMesh (topic: TopicHash, key: PeerKey): void {
    if (this.mesh.get(topic)?.delete(key) !== true) return
    this.scoring?.prune(key, topic)
    this.keepAliveDirty.add(key)
  }

  /**
   * Whether the connections to `peer` are kept open: it shares a topic with us (it subscribes
   * to one we subscribe to, or it is in one of our meshes or fanouts), or it is an explicit
   * peer. Its long-lived pubsub streams do not count (`StreamHandler`); a peer we share
   * nothing with lets its connections idle out. rust-libp2p means to keep mesh peers only
   * (rust-libp2p#5190), but gossip and mesh repair need the topic's other peers too.
   */
  sharesTopic (peer: PeerState): boolean {
    if (this.explicit.has(peer.key)) return true
    for (const topic of peer.topics) if (this.mesh.has(topic)) return true
    for (const members of this.mesh.values()) if (members.has(peer.key)) return true
    for (const members of this.fanout.values()) if (members.has(peer.key)) return true
    return false
  }

  /** `peer`'s keep-alive answer may have changed: it is checked at the next `flush`. */
  recheckKeepAlive (key: PeerKey): void {
    this.keepAliveDirty.add(key)
  }

  /** Every peer's keep-alive answer may have changed (the heartbeat changed fanouts). */
  recheckAllKeepAlive (): void {
    for (const key of this.peers.keys()) this.keepAliveDirty.add(key)
  }

  /** Tell the handlers of the peers whose keep-alive answer changed; nothing for the others. */
  updateKeepAlive (): void {
    for (const key of this.keepAliveDirty) {
      const peer = this.peers.get(key)
      if (peer == null) continue
      const value = this.sharesTopic(peer)
      if (value === peer.keepAlive) continue
      peer.keepAlive = value
      for (const connection of peer.connections) this.sendKeepAlive(peer, connection)
    }
    this.keepAliveDirty.clear()
  }

  /**
   * `peer` is found graylisted (at an RPC of it, or a penalty): its handlers stop reading its
   * inbound streams (what they already read is still handed over, and ignored), so that what
   * it sends costs no reads, decryption or buffers past Yamux's window. The heartbeat reads
   * them again once its score is back to the threshold (`releaseInbound`).
   */
  holdInbound (peer: PeerState): void {
    if (peer.held) return
    peer.held = true
    this.held.add(peer.key)
    log('%p is graylisted: its inbound streams are paused', peer.peerId)
    for (const connection of peer.connections) this.sendHold(peer, connection)
  }

  /**
   * A penalty may have taken `key` below `graylistThreshold` (a message of it rejected): held at
   * once, rather than at its next RPC, which may already have been read.
   */
  holdIfGraylisted (key: PeerKey): void {
    const peer = this.peers.get(key)
    if (peer != null && this.graylisted(key)) this.holdInbound(peer)
  }

  /** Whether `key`'s score is below `graylistThreshold` (never an explicit peer's): its RPCs are ignored. */
  graylisted (key: PeerKey): boolean {
    return this.score(key) < this.thresholds.graylist && !this.explicit.has(key)
  }

  /** At the heartbeat: held peers whose score is back to `graylistThreshold` are read again. */
  releaseInbound (): void {
    for (const key of this.held) {
      const peer = this.peers.get(key)
      if (peer != null && this.graylisted(key)) continue
      this.held.delete(key)
      if (peer == null) continue
      peer.held = false
      log('%p is no longer graylisted: its inbound streams are read again', peer.peerId)
      for (const connection of peer.connections) this.sendHold(peer, connection)
    }
  }

  /** Tell one connection's handler whether the peer's inbound streams are held. */
  sendHold (peer: PeerState, connection: PeerConnection): void {
    this.queue({ type: 'NotifyHandler', peerId: peer.peerId, handler: connection.id, event: { type: 'HoldInbound', value: peer.held } })
  }

  /** Tell one connection's handler the peer's keep-alive answer. */
  sendKeepAlive (peer: PeerState, connection: PeerConnection): void {
    this.queue({ type: 'NotifyHandler', peerId: peer.peerId, handler: connection.id, event: { type: 'KeepAlive', value: peer.keepAlive } })
  }

  /** Peers of `topic` that take part in meshes and are not explicit peers. */
  meshCandidates (topic: TopicHash): PeerState[] {
    const result: PeerState[] = []
    for (const peer of this.peers.values()) {
      if (!peer.topics.has(topic) || !features.mesh(this.protocolOf(peer)) || this.explicit.has(peer.key)) continue
      result.push(peer)
    }
    return result
  }

  /**
   * Send an already framed RPC to `peer`. `low` priority is for messages we pass on (forwards,
   * IWANT answers): they wait behind control and our own messages, may be pushed out of a
   * full queue by them, and are dropped when not sent within `forwardDeadline`. `id`, the key
   * of the id of the one message a `low` frame carries: the frame is dropped instead of
   * written if the peer says IDONTWANT for it while it is queued.
   */
  sendFrame (peer: PeerState, frame: Uint8Array, priority: 'high' | 'low' = 'high', id?: string): void {
    const connection = peer.connections[0]
    if (connection != null) this.sendOn(peer, connection, frame, priority, id)
  }

  /** Queue `frame` for the handler of one of `peer`'s connections (see `sendFrame`). */
  sendOn (peer: PeerState, connection: PeerConnection, frame: Uint8Array, priority: 'high' | 'low' = 'high', id?: string): void {
    if (priority === 'high') connection.gauge?.reserve(frame.byteLength)
    const event: FromBehaviour = priority === 'low' && id !== undefined
      ? { type: 'Send', frames: frame, priority, id }
      : { type: 'Send', frames: frame, priority }
    this.queue({ type: 'NotifyHandler', peerId: peer.peerId, handler: connection.id, event })
  }

  /** Whether `peer`'s outbound queue has room for `size` more high-priority bytes. */
  hasRoom (peer: PeerState, size: number): boolean {
    const gauge = peer.connections[0]?.gauge
    return gauge == null || gauge.hasRoom(size)
  }

  /** Send an RPC to `peer` now. */
  sendRpc (peer: PeerState, rpc: Rpc): void {
    this.sendFrame(peer, encodeFrame(encodeRpc(rpc)))
  }

  /** Queue a GRAFT for `peer` on `topic`. */
  graft (peer: PeerKey, topic: TopicHash): void {
    this.control(peer).graft.add(topic)
    this.control(peer).prune.delete(topic)
  }

  /** Queue a PRUNE for `peer` on `topic`. */
  prune (peer: PeerKey, topic: TopicHash, prune: PendingPrune): void {
    this.control(peer).prune.set(topic, prune)
    this.control(peer).graft.delete(topic)
  }

  /** Queue an IHAVE for `peer`. */
  ihave (peer: PeerKey, topic: TopicHash, ids: MessageId[]): void {
    this.control(peer).ihave.set(topic, ids)
  }

  /** Queue an IWANT for `peer`. */
  iwant (peer: PeerKey, ids: readonly MessageId[]): void {
    this.control(peer).iwant.push(...ids)
  }

  /** Queue an IDONTWANT for `peer`. */
  idontwant (peer: PeerKey, id: MessageId): void {
    this.control(peer).idontwant.push(id)
  }

  /**
   * Send every queued control message, one RPC per peer (split to fit the frame limit), and
   * the keep-alive answers that changed.
   */
  flush (): void {
    if (this.keepAliveDirty.size > 0) this.updateKeepAlive()
    for (const [key, control] of this.pending) {
      const peer = this.peers.get(key)
      if (peer == null) continue
      for (const record of this.controlRecords(peer, control)) this.sendRpc(peer, { control: record })
    }
    this.pending.clear()
  }

  /** Forget everything queued for a peer that left. */
  dropPending (peer: PeerKey): void {
    this.pending.delete(peer)
    this.keepAliveDirty.delete(peer)
  }

  private control (peer: PeerKey): PendingControl {
    let control = this.pending.get(peer)
    if (control == null) {
      this.pending.set(peer, control = { graft: new Set(), prune: new Map(), ihave: new Map(), iwant: [], idontwant: [] })
    }
    return control
  }

  /**
   * The control records for `peer`: GRAFT, PRUNE (PX and backoff only for v1.1 peers), IHAVE,
   * IWANT, IDONTWANT (only for v1.2 peers), in records of at most `MAX_CONTROL_BYTES` of
   * message ids and at most `maxIHaveLength` ids per IHAVE or IWANT.
   */
  private controlRecords (peer: PeerState, control: PendingControl): ControlRecord[] {
    const protocol = this.protocolOf(peer)
    const v11 = features.backoffAndPx(protocol)
    const graft = [...control.graft].map(topicID => ({ topicID }))
    const prune = [...control.prune].map(([topicID, p]) => v11
      ? { topicID, backoff: Math.ceil(p.backoff / 1000), peers: p.px ? this.exchangePeers(topicID, peer.key) : undefined }
      : { topicID })
    this.countControl('sent', 'graft', graft.length)
    this.countControl('sent', 'prune', prune.length)
    const records: ControlRecord[] = []
    const first: { graft?: typeof graft, prune?: typeof prune } = {}
    if (graft.length > 0) first.graft = graft
    if (prune.length > 0) first.prune = prune
    let current: { graft?: typeof graft, prune?: typeof prune, ihave?: Array<{ topicID: string, messageIDs: MessageId[] }>, iwant?: Array<{ messageIDs: MessageId[] }>, idontwant?: Array<{ messageIDs: MessageId[] }> } = first
    let bytes = 0
    const room = (size: number): void => {
      if (bytes + size <= MAX_CONTROL_BYTES || bytes === 0) return
      records.push(current)
      current = {}
      bytes = 0
    }
    const addIds = (kind: 'ihave' | 'iwant' | 'idontwant', topicID: string | undefined, ids: readonly MessageId[]): void => {
      for (let start = 0; start < ids.length;) {
        let end = start
        let size = 0
        while (end < ids.length && end - start < this.config.maxIHaveLength && size + ids[end].byteLength + 2 <= MAX_CONTROL_BYTES) {
          size += ids[end].byteLength + 2
          end++
        }
        if (end === start) end++
        room(size)
        const messageIDs = ids.slice(start, end)
        if (kind === 'ihave') (current.ihave ??= []).push({ topicID: topicID as string, messageIDs })
        else (current[kind] ??= []).push({ messageIDs })
        bytes += size
        start = end
      }
    }
    for (const [topic, ids] of control.ihave) {
      addIds('ihave', topic, ids)
      this.countControl('sent', 'ihave', 1)
    }
    if (control.iwant.length > 0) {
      addIds('iwant', undefined, control.iwant)
      this.countControl('sent', 'iwant', 1)
    }
    if (control.idontwant.length > 0 && features.idontwant(protocol)) {
      addIds('idontwant', undefined, control.idontwant)
      this.countControl('sent', 'idontwant', 1)
    }
    if (Object.keys(current).length > 0) records.push(current)
    return records
  }

  /**
   * Up to `prunePeers` other peers of `topic` for a PRUNE to `pruned`, with their signed
   * records when we have them (score ≥ 0, never the pruned peer, never explicit peers).
   */
  private exchangePeers (topic: TopicHash, pruned: PeerKey): Array<{ peerID: Uint8Array, signedPeerRecord?: Uint8Array }> {
    const candidates = this.meshCandidates(topic).filter(p => p.key !== pruned && this.score(p.key) >= 0)
    return shuffle(candidates, this.random).slice(0, this.config.prunePeers).map(p => {
      const signedPeerRecord = this.records.get(p.key)
      return signedPeerRecord == null ? { peerID: p.peerId.toMultihash().bytes } : { peerID: p.peerId.toMultihash().bytes, signedPeerRecord }
    })
  }
}

/** Fisher–Yates, in place; returns `items`. */
export function shuffle<T> (items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const item = items[i]
    items[i] = items[j]
    items[j] = item
  }
  return items
}
