/**
 * The score function, pure: a peer's counters and the parameters in, its score and the share
 * of each component out (gossipsub v1.1 spec; go-libp2p-pubsub's `score()`):
 *
 *   topics = min(topicScoreCap, Σ_t topicWeight_t × (w1·P1 + w2·P2 + w3·P3 + w3b·P3b + w4·P4))
 *   score  = topics + w5·P5 + w6·P6 + w7·P7
 *
 * - P1 time in mesh, in quanta, capped; only while in the mesh;
 * - P2 first deliveries (a decaying counter, capped);
 * - P3 the square of the mesh delivery deficit, once active;
 * - P3b the sticky mesh failure penalty (deficits squared, added when pruned);
 * - P4 invalid deliveries squared;
 * - P5 the application's score; P6 the square of the peers beyond the threshold on each of
 *   the peer's IPs (and IPv6 /64s; whitelisted addresses excepted); P7 the square of the behaviour penalties beyond
 *   the threshold.
 *
 * @module
 */
import type { PeerScoreParams } from './params.js'
import type { TopicHash } from '../../pubsub/topic.js'

/** One peer's counters on one topic. */
export interface TopicStats {
  inMesh: boolean
  /** When it joined the mesh (ms). */
  graftTime: number
  /** Time in the mesh as of the last refresh (ms). */
  meshTime: number
  firstMessageDeliveries: number
  meshMessageDeliveries: number
  /** P3 applies once the peer has been in the mesh for the activation time. */
  meshMessageDeliveriesActive: boolean
  meshFailurePenalty: number
  invalidMessageDeliveries: number
}

/** One peer's counters. */
export interface PeerStats {
  connected: boolean
  /** When a disconnected peer's stats are forgotten (ms). */
  expire: number
  readonly topics: Map<TopicHash, TopicStats>
  /** Its IP addresses (and IPv6 /64 prefixes), for P6. */
  ips: string[]
  behaviourPenalty: number
  applicationScore: number
}

/** A score and its parts, for debugging (`peerScoreBreakdown`). */
export interface ScoreBreakdown {
  readonly score: number
  /** Per topic, the weighted parts before the topic weight. */
  readonly topics: Readonly<Record<TopicHash, { readonly p1: number, readonly p2: number, readonly p3: number, readonly p3b: number, readonly p4: number, readonly total: number }>>
  /** The topic sum after its cap. */
  readonly topicsTotal: number
  readonly p5: number
  readonly p6: number
  readonly p7: number
}

/** Fresh counters for a topic. */
export function newTopicStats (): TopicStats {
  return { inMesh: false, graftTime: 0, meshTime: 0, firstMessageDeliveries: 0, meshMessageDeliveries: 0, meshMessageDeliveriesActive: false, meshFailurePenalty: 0, invalidMessageDeliveries: 0 }
}

/**
 * The score of `stats`. `peersOnIp(ip)` counts connected peers on an IP (whitelisted
 * addresses are not in `stats.ips` at all).
 */
export function computeScore (stats: PeerStats, params: PeerScoreParams, peersOnIp: (ip: string) => number): ScoreBreakdown {
  const topics: Record<TopicHash, ScoreBreakdown['topics'][string]> = {}
  let topicsTotal = 0
  for (const [topic, t] of stats.topics) {
    const tp = params.topics[topic]
    if (tp == null) continue
    const p1 = t.inMesh ? Math.min(t.meshTime / tp.timeInMeshQuantum, tp.timeInMeshCap) * tp.timeInMeshWeight : 0
    const p2 = t.firstMessageDeliveries * tp.firstMessageDeliveriesWeight
    let p3 = 0
    if (t.meshMessageDeliveriesActive && t.meshMessageDeliveries < tp.meshMessageDeliveriesThreshold) {
      const deficit = tp.meshMessageDeliveriesThreshold - t.meshMessageDeliveries
      p3 = deficit * deficit * tp.meshMessageDeliveriesWeight
    }
    const p3b = t.meshFailurePenalty * tp.meshFailurePenaltyWeight
    const p4 = t.invalidMessageDeliveries * t.invalidMessageDeliveries * tp.invalidMessageDeliveriesWeight
    const total = p1 + p2 + p3 + p3b + p4
    topics[topic] = { p1, p2, p3, p3b, p4, total }
    topicsTotal += total * tp.topicWeight
  }
  if (params.topicScoreCap > 0 && topicsTotal > params.topicScoreCap) topicsTotal = params.topicScoreCap
  const p5 = stats.applicationScore * params.appSpecificWeight
  let p6 = 0
  for (const ip of stats.ips) {
    const surplus = peersOnIp(ip) - params.ipColocationFactorThreshold
    if (surplus > 0) p6 += surplus * surplus * params.ipColocationFactorWeight
  }
  let p7 = 0
  if (stats.behaviourPenalty > params.behaviourPenaltyThreshold) {
    const excess = stats.behaviourPenalty - params.behaviourPenaltyThreshold
    p7 = excess * excess * params.behaviourPenaltyWeight
  }
  return { score: topicsTotal + p5 + p6 + p7, topics, topicsTotal, p5, p6, p7 }
}
