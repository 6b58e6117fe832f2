/**
 * The stateful side of peer scoring: every peer's counters, fed by what the router sees, and
 * the periodic decay (gossipsub v1.1 spec; go-libp2p-pubsub's `peerScore`).
 *
 * 1. peers come and go (`addPeer`, `removePeer`); a disconnected peer's counters are kept
 *    for `retainScore` if its score is not positive (so a misbehaving peer cannot reset it by
 *    reconnecting), with its mesh failure penalty applied and P2 zeroed, and do not decay;
 * 2. mesh changes (`graft`, `prune`: P1 and P3 start and stop, a deficit turns into P3b);
 * 3. message deliveries, tracked per message id for the duplicate window: `validate` (first
 *    copy), `deliver` (accepted: P2 and P3 for the first deliverer, P3 for duplicates that
 *    came while it was being validated), `duplicate` (P3 within the window, P4 if the message
 *    was invalid), `reject` (P4 for the sender and for whoever sent the same invalid message),
 *    `rejectUnrecorded` (a broken signature: P4 for the sender), `ignore`;
 * 4. `addPenalty` (P7: broken promises, GRAFT during backoff);
 * 5. `refresh()`, every `decayInterval`: counters decay, those below `decayToZero` become 0,
 *    P1 times and P3 activation advance, expired retained peers are forgotten.
 *
 * @module
 */
import { IpNet } from '@chainsafe/netmask'
import { computeScore, newTopicStats } from './compute.js'
import { whitelistNet } from './params.js'
import type { PeerStats, ScoreBreakdown, TopicStats } from './compute.js'
import type { PeerScoreParams } from './params.js'
import type { TopicHash } from '../../pubsub/topic.js'

/** What we know of a message's deliveries, for the duplicate window. */
interface DeliveryRecord {
  status: 'pending' | 'valid' | 'invalid' | 'ignored'
  readonly topic: TopicHash
  validated: number
  /**
   * Peers that sent a copy while it was pending; made at the first such copy (most records
   * never get one: a `Set` each cost ~120 B for 10,000 messages of a flood, kept 2 minutes).
   */
  peers?: Set<string>
  readonly expires: number
}

/** Delivery records are kept this long (as go's time cache), and at most this many. */
const DELIVERY_RECORD_TTL = 120_000
const MAX_DELIVERY_RECORDS = 100_000

/** Every peer's score counters. */
export class PeerScore {
  private readonly stats = new Map<string, PeerStats>()
  private readonly peersOnIp = new Map<string, Set<string>>()
  private readonly deliveries = new Map<string, DeliveryRecord>()
  private readonly whitelist: IpNet[]

  constructor (readonly params: PeerScoreParams, private readonly now: () => number = Date.now) {
    this.whitelist = params.ipColocationFactorWhitelist.map(whitelistNet)
  }

  /** The score of `peer` (0 if unknown). */
  score (peer: string): number {
    const stats = this.stats.get(peer)
    return stats == null ? 0 : this.compute(stats).score
  }

  /** The score of `peer` and its parts, if it is known. */
  breakdown (peer: string): ScoreBreakdown | undefined {
    const stats = this.stats.get(peer)
    return stats == null ? undefined : this.compute(stats)
  }

  /** Whether counters of `peer` are held (connected, or retained). */
  has (peer: string): boolean {
    return this.stats.has(peer)
  }

  /** A peer connected (or reconnected, finding its retained counters). */
  addPeer (peer: string, ips: readonly string[]): void {
    let stats = this.stats.get(peer)
    if (stats == null) {
      stats = { connected: true, expire: 0, topics: new Map(), ips: [], behaviourPenalty: 0, applicationScore: 0 }
      this.stats.set(peer, stats)
    }
    stats.connected = true
    this.setIps(peer, stats, ips)
  }

  /** A peer's IPs changed (another connection). */
  updateIps (peer: string, ips: readonly string[]): void {
    const stats = this.stats.get(peer)
    if (stats != null) this.setIps(peer, stats, ips)
  }

  /** A peer disconnected. */
  removePeer (peer: string): void {
    const stats = this.stats.get(peer)
    if (stats == null) return
    this.setIps(peer, stats, [])
    if (this.compute(stats).score > 0) {
      this.stats.delete(peer)
      return
    }
    for (const [topic, t] of stats.topics) {
      t.firstMessageDeliveries = 0
      const tp = this.params.topics[topic]
      if (tp != null && t.inMesh && t.meshMessageDeliveriesActive && t.meshMessageDeliveries < tp.meshMessageDeliveriesThreshold) {
        const deficit = tp.meshMessageDeliveriesThreshold - t.meshMessageDeliveries
        t.meshFailurePenalty += deficit * deficit
      }
      t.inMesh = false
      t.meshMessageDeliveriesActive = false
    }
    stats.connected = false
    stats.expire = this.now() + this.params.retainScore
  }

  /** P5: the application's opinion of `peer`; false if the peer is unknown. */
  setApplicationScore (peer: string, score: number): boolean {
    const stats = this.stats.get(peer)
    if (stats == null) return false
    stats.applicationScore = score
    return true
  }

  /** P7 += `count`. */
  addPenalty (peer: string, count: number): void {
    const stats = this.stats.get(peer)
    if (stats != null) stats.behaviourPenalty += count
  }

  /** `peer` joined our mesh of `topic`. */
  graft (peer: string, topic: TopicHash): void {
    const t = this.topicStats(peer, topic)
    if (t == null) return
    t.inMesh = true
    t.graftTime = this.now()
    t.meshTime = 0
    t.meshMessageDeliveriesActive = false
  }

  /** `peer` left our mesh of `topic`; an active deficit becomes a sticky P3b penalty. */
  prune (peer: string, topic: TopicHash): void {
    const t = this.topicStats(peer, topic)
    const tp = this.params.topics[topic]
    if (t == null || tp == null) return
    if (t.meshMessageDeliveriesActive && t.meshMessageDeliveries < tp.meshMessageDeliveriesThreshold) {
      const deficit = tp.meshMessageDeliveriesThreshold - t.meshMessageDeliveries
      t.meshFailurePenalty += deficit * deficit
    }
    t.inMesh = false
    t.meshMessageDeliveriesActive = false
  }

  /** The first copy of a message, from `peer`, is being validated. */
  validate (idKey: string, topic: TopicHash): void {
    if (this.deliveries.has(idKey)) return
    this.pruneDeliveries()
    this.deliveries.set(idKey, { status: 'pending', topic, validated: 0, expires: this.now() + DELIVERY_RECORD_TTL })
  }

  /** The message `peer` sent first was accepted. */
  deliver (idKey: string, topic: TopicHash, peer: string): void {
    this.markFirstDelivery(peer, topic)
    const record = this.deliveries.get(idKey)
    if (record == null || record.status !== 'pending') return
    record.status = 'valid'
    record.validated = this.now()
    for (const other of record.peers ?? []) if (other !== peer) this.markDuplicateDelivery(other, topic)
    record.peers = undefined
  }

  /** The message `peer` sent first was rejected by validation. */
  reject (idKey: string, topic: TopicHash, peer: string): void {
    this.markInvalidDelivery(peer, topic)
    const record = this.deliveries.get(idKey)
    if (record == null || record.status !== 'pending') return
    record.status = 'invalid'
    for (const other of record.peers ?? []) if (other !== peer) this.markInvalidDelivery(other, topic)
    record.peers = undefined
  }

  /** `peer` sent a message that broke the protocol before it could be recorded. */
  rejectUnrecorded (topic: TopicHash | undefined, peer: string): void {
    if (topic != null) this.markInvalidDelivery(peer, topic)
  }

  /** The message was ignored by validation: no blame, no credit. */
  ignore (idKey: string): void {
    const record = this.deliveries.get(idKey)
    if (record?.status !== 'pending') return
    record.status = 'ignored'
    record.peers = undefined
  }

  /** `peer` sent a copy of a message we already had. */
  duplicate (idKey: string, peer: string): void {
    const record = this.deliveries.get(idKey)
    if (record == null) return
    switch (record.status) {
      case 'pending':
        (record.peers ??= new Set()).add(peer)
        break
      case 'valid': {
        const window = this.params.topics[record.topic]?.meshMessageDeliveriesWindow ?? 0
        if (this.now() - record.validated <= window) this.markDuplicateDelivery(peer, record.topic)
        break
      }
      case 'invalid':
        this.markInvalidDelivery(peer, record.topic)
        break
      case 'ignored':
        break
    }
  }

  /** Decay every counter; forget retained peers whose time is up. */
  refresh (): void {
    const now = this.now()
    const { decayToZero } = this.params
    const decay = (value: number, factor: number): number => {
      const next = value * factor
      return next < decayToZero ? 0 : next
    }
    for (const [peer, stats] of this.stats) {
      if (!stats.connected) {
        if (stats.expire < now) this.stats.delete(peer)
        continue
      }
      for (const [topic, t] of stats.topics) {
        const tp = this.params.topics[topic]
        if (tp == null) continue
        t.firstMessageDeliveries = decay(t.firstMessageDeliveries, tp.firstMessageDeliveriesDecay)
        t.meshMessageDeliveries = decay(t.meshMessageDeliveries, tp.meshMessageDeliveriesDecay)
        t.meshFailurePenalty = decay(t.meshFailurePenalty, tp.meshFailurePenaltyDecay)
        t.invalidMessageDeliveries = decay(t.invalidMessageDeliveries, tp.invalidMessageDeliveriesDecay)
        if (t.inMesh) {
          t.meshTime = now - t.graftTime
          if (t.meshTime > tp.meshMessageDeliveriesActivation) t.meshMessageDeliveriesActive = true
        }
      }
      stats.behaviourPenalty = decay(stats.behaviourPenalty, this.params.behaviourPenaltyDecay)
    }
    this.pruneDeliveries()
  }

  /** Every known peer's score, for metrics. */
  scores (): number[] {
    return [...this.stats.values()].filter(s => s.connected).map(s => this.compute(s).score)
  }

  private compute (stats: PeerStats): ScoreBreakdown {
    return computeScore(stats, this.params, ip => this.peersOnIp.get(ip)?.size ?? 0)
  }

  private topicStats (peer: string, topic: TopicHash): TopicStats | undefined {
    const stats = this.stats.get(peer)
    if (stats == null || this.params.topics[topic] == null) return undefined
    let t = stats.topics.get(topic)
    if (t == null) stats.topics.set(topic, t = newTopicStats())
    return t
  }

  private markFirstDelivery (peer: string, topic: TopicHash): void {
    const t = this.topicStats(peer, topic)
    const tp = this.params.topics[topic]
    if (t == null || tp == null) return
    t.firstMessageDeliveries = Math.min(t.firstMessageDeliveries + 1, tp.firstMessageDeliveriesCap)
    if (t.inMesh) t.meshMessageDeliveries = Math.min(t.meshMessageDeliveries + 1, tp.meshMessageDeliveriesCap)
  }

  private markDuplicateDelivery (peer: string, topic: TopicHash): void {
    const t = this.topicStats(peer, topic)
    const tp = this.params.topics[topic]
    if (t == null || tp == null || !t.inMesh) return
    t.meshMessageDeliveries = Math.min(t.meshMessageDeliveries + 1, tp.meshMessageDeliveriesCap)
  }

  private markInvalidDelivery (peer: string, topic: TopicHash): void {
    const t = this.topicStats(peer, topic)
    if (t != null) t.invalidMessageDeliveries += 1
  }

  /**
   * The P6 keys of a peer's addresses: each address, and for IPv6 its /64 network too (one
   * host often holds a whole /64); whitelisted addresses have none.
   */
  private colocationKeys (addresses: readonly string[]): string[] {
    const keys: string[] = []
    for (const address of addresses) {
      if (this.whitelist.some(net => net.contains(address))) continue
      keys.push(address)
      if (address.includes(':')) {
        try {
          keys.push(new IpNet(`${address}/64`).toString())
        } catch {}
      }
    }
    return keys
  }

  private setIps (peer: string, stats: PeerStats, addresses: readonly string[]): void {
    const ips = this.colocationKeys(addresses)
    for (const ip of stats.ips) {
      const peers = this.peersOnIp.get(ip)
      peers?.delete(peer)
      if (peers?.size === 0) this.peersOnIp.delete(ip)
    }
    stats.ips = [...ips]
    for (const ip of ips) {
      let peers = this.peersOnIp.get(ip)
      if (peers == null) this.peersOnIp.set(ip, peers = new Set())
      peers.add(peer)
    }
  }

  private pruneDeliveries (): void {
    const now = this.now()
    for (const [key, record] of this.deliveries) {
      if (record.expires > now && this.deliveries.size <= MAX_DELIVERY_RECORDS) break
      this.deliveries.delete(key)
    }
  }
}
