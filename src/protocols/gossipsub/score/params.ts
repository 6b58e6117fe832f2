/**
 * Peer scoring parameters and thresholds (gossipsub v1.1 spec, "Peer Scoring"), their
 * defaults (those of js-libp2p and rust-libp2p, which agree) and their validation.
 *
 * A peer's score is
 * `min(topicScoreCap, Σ_topics topicWeight × (P1·w1 + P2·w2 + P3·w3 + P3b·w3b + P4·w4)) + P5·w5 + P6·w6 + P7·w7`
 * (`topicScoreCap` 0 means no cap); see `compute.ts`.
 *
 * @module
 */
import { IpNet } from '@chainsafe/netmask'
import { ConfigError } from '../../../core/errors.js'
import type { TopicHash } from '../../pubsub/topic.js'

/** Scoring of one topic. Times are in ms. */
export interface TopicScoreParams {
  /** Weight of the topic's sum in the score (default 0.5). */
  readonly topicWeight: number
  /** P1 weight, ≥ 0 (default 1). */
  readonly timeInMeshWeight: number
  /** P1 counts time in the mesh in these units, > 0 (default 1 ms). */
  readonly timeInMeshQuantum: number
  /** P1's cap, in quanta (default 3 600). */
  readonly timeInMeshCap: number
  /** P2 weight, ≥ 0 (default 1). */
  readonly firstMessageDeliveriesWeight: number
  /** P2 decay per `decayInterval`, in (0, 1) (default 0.5). */
  readonly firstMessageDeliveriesDecay: number
  /** P2's counter cap (default 2 000). */
  readonly firstMessageDeliveriesCap: number
  /** P3 weight, ≤ 0 (default −1). */
  readonly meshMessageDeliveriesWeight: number
  /** P3 decay (default 0.5). */
  readonly meshMessageDeliveriesDecay: number
  /** P3 counter cap (default 100). */
  readonly meshMessageDeliveriesCap: number
  /** Deliveries below this make a deficit (default 20). */
  readonly meshMessageDeliveriesThreshold: number
  /** A duplicate this soon after validation still counts as a delivery (default 10 ms). */
  readonly meshMessageDeliveriesWindow: number
  /** P3 applies after this long in the mesh (default 5 000 ms). */
  readonly meshMessageDeliveriesActivation: number
  /** P3b weight, ≤ 0 (default −1). */
  readonly meshFailurePenaltyWeight: number
  /** P3b decay (default 0.5). */
  readonly meshFailurePenaltyDecay: number
  /** P4 weight, ≤ 0 (default −1). */
  readonly invalidMessageDeliveriesWeight: number
  /** P4 decay (default 0.3). */
  readonly invalidMessageDeliveriesDecay: number
}

/** Scoring of peers. */
export interface PeerScoreParams {
  /** Topics that count, by hash; others add nothing. */
  readonly topics: Readonly<Record<TopicHash, TopicScoreParams>>
  /** Caps the sum over topics from above; 0 for no cap (default 10). */
  readonly topicScoreCap: number
  /** P5 weight (default 10); P5 is what `setApplicationScore` set. */
  readonly appSpecificWeight: number
  /** P6 weight, ≤ 0 (default −5). */
  readonly ipColocationFactorWeight: number
  /** P6 counts peers of one IP beyond this many, ≥ 1 (default 10). */
  readonly ipColocationFactorThreshold: number
  /** Addresses or CIDR ranges P6 ignores (default none). */
  readonly ipColocationFactorWhitelist: readonly string[]
  /** P7 weight, ≤ 0 (default −10). */
  readonly behaviourPenaltyWeight: number
  /** P7 counts penalties beyond this many (default 0). */
  readonly behaviourPenaltyThreshold: number
  /** P7 decay (default 0.2). */
  readonly behaviourPenaltyDecay: number
  /** Counters decay every this many ms, ≥ 1 000 (default 1 000). */
  readonly decayInterval: number
  /** A decayed counter below this becomes 0 (default 0.1). */
  readonly decayToZero: number
  /** A disconnected peer's non-positive score is kept this long, in ms (default 3 600 000). */
  readonly retainScore: number
}

/** What scores mean (gossipsub v1.1 spec, "Score Thresholds"). */
export interface PeerScoreThresholds {
  /** Below it, no gossip to or from the peer; < 0 (default −10). */
  readonly gossipThreshold: number
  /** Below it, no flood publish, fanout or floodsub forwarding to the peer; ≤ gossip (default −50). */
  readonly publishThreshold: number
  /** Below it, the peer's RPCs are ignored; < publish (default −80). */
  readonly graylistThreshold: number
  /** PX is accepted only from peers at or above it; ≥ 0 (default 10). */
  readonly acceptPXThreshold: number
  /** A mesh whose median score is below it gets opportunistic grafts; ≥ 0 (default 20). */
  readonly opportunisticGraftThreshold: number
}

/** Default topic parameters. */
export const defaultTopicScoreParams: TopicScoreParams = Object.freeze({
  topicWeight: 0.5,
  timeInMeshWeight: 1,
  timeInMeshQuantum: 1,
  timeInMeshCap: 3_600,
  firstMessageDeliveriesWeight: 1,
  firstMessageDeliveriesDecay: 0.5,
  firstMessageDeliveriesCap: 2_000,
  meshMessageDeliveriesWeight: -1,
  meshMessageDeliveriesDecay: 0.5,
  meshMessageDeliveriesCap: 100,
  meshMessageDeliveriesThreshold: 20,
  meshMessageDeliveriesWindow: 10,
  meshMessageDeliveriesActivation: 5_000,
  meshFailurePenaltyWeight: -1,
  meshFailurePenaltyDecay: 0.5,
  invalidMessageDeliveriesWeight: -1,
  invalidMessageDeliveriesDecay: 0.3
})

/** Default peer parameters (no topics). */
export const defaultPeerScoreParams: PeerScoreParams = Object.freeze({
  topics: Object.freeze({}),
  topicScoreCap: 10,
  appSpecificWeight: 10,
  ipColocationFactorWeight: -5,
  ipColocationFactorThreshold: 10,
  ipColocationFactorWhitelist: Object.freeze([]),
  behaviourPenaltyWeight: -10,
  behaviourPenaltyThreshold: 0,
  behaviourPenaltyDecay: 0.2,
  decayInterval: 1_000,
  decayToZero: 0.1,
  retainScore: 3_600_000
})

/** Default thresholds. */
export const defaultPeerScoreThresholds: PeerScoreThresholds = Object.freeze({
  gossipThreshold: -10,
  publishThreshold: -50,
  graylistThreshold: -80,
  acceptPXThreshold: 10,
  opportunisticGraftThreshold: 20
})

/**
 * The decay factor that takes a counter to `decayToZero` in `time` ms, decaying every
 * `decayInterval` ms (go-libp2p-pubsub's `ScoreParameterDecay`).
 */
export function scoreParameterDecay (time: number, decayInterval = 1_000, decayToZero = 0.01): number {
  return Math.pow(decayToZero, decayInterval / time)
}

/** Scoring options: any parameter may be left out, topics' too. */
export type PeerScoreOptions = Partial<Omit<PeerScoreParams, 'topics'>> & {
  readonly topics?: Readonly<Record<TopicHash, Partial<TopicScoreParams>>>
}

/** A whitelist entry as a network: a CIDR range, or one address (as /32 or /128). */
export function whitelistNet (entry: string): IpNet {
  return new IpNet(entry.includes('/') ? entry : entry.includes(':') ? `${entry}/128` : `${entry}/32`)
}

/** Complete `options` with the defaults and validate; throws `ConfigError` naming the field. */
export function peerScoreParams (options: PeerScoreOptions): PeerScoreParams {
  const p = { ...defaultPeerScoreParams, ...options }
  const at = (field: string): string => `scoreParams.${field}`
  check(p.topicScoreCap >= 0, at('topicScoreCap'), 'must be ≥ 0')
  check(Number.isFinite(p.appSpecificWeight), at('appSpecificWeight'), 'must be a number')
  check(p.ipColocationFactorWeight <= 0, at('ipColocationFactorWeight'), 'must be ≤ 0')
  check(p.ipColocationFactorWeight === 0 || p.ipColocationFactorThreshold >= 1, at('ipColocationFactorThreshold'), 'must be ≥ 1')
  check(p.behaviourPenaltyWeight <= 0, at('behaviourPenaltyWeight'), 'must be ≤ 0')
  check(p.behaviourPenaltyThreshold >= 0, at('behaviourPenaltyThreshold'), 'must be ≥ 0')
  check(p.behaviourPenaltyWeight === 0 || (p.behaviourPenaltyDecay > 0 && p.behaviourPenaltyDecay < 1), at('behaviourPenaltyDecay'), 'must be in (0, 1)')
  check(p.decayInterval >= 1_000 && p.decayInterval <= 2 ** 31 - 1, at('decayInterval'), 'must be at least 1 000 ms')
  check(p.decayToZero > 0 && p.decayToZero < 1, at('decayToZero'), 'must be in (0, 1)')
  check(p.retainScore >= 0, at('retainScore'), 'must be ≥ 0')
  for (const entry of p.ipColocationFactorWhitelist) {
    try {
      whitelistNet(entry)
    } catch {
      throw new ConfigError(at('ipColocationFactorWhitelist'), `${entry} is not an IP address or CIDR range`)
    }
  }
  const topics: Record<TopicHash, TopicScoreParams> = {}
  for (const [topic, options] of Object.entries(p.topics)) topics[topic] = topicScoreParams(topic, options)
  return Object.freeze({ ...p, topics: Object.freeze(topics), ipColocationFactorWhitelist: Object.freeze([...p.ipColocationFactorWhitelist]) })
}

/** Complete and validate one topic's parameters. */
function topicScoreParams (topic: TopicHash, options: Partial<TopicScoreParams>): TopicScoreParams {
  const t: TopicScoreParams = { ...defaultTopicScoreParams, ...options }
  const at = (field: string): string => `scoreParams.topics[${topic}].${field}`
  const decay = (field: keyof TopicScoreParams, weight: number): void => {
    const value = t[field]
    check(weight === 0 || (value > 0 && value < 1), at(field), 'must be in (0, 1)')
  }
  check(t.topicWeight >= 0, at('topicWeight'), 'must be ≥ 0')
  check(t.timeInMeshWeight >= 0, at('timeInMeshWeight'), 'must be ≥ 0')
  check(t.timeInMeshWeight === 0 || t.timeInMeshQuantum > 0, at('timeInMeshQuantum'), 'must be > 0')
  check(t.timeInMeshWeight === 0 || t.timeInMeshCap > 0, at('timeInMeshCap'), 'must be > 0')
  check(t.firstMessageDeliveriesWeight >= 0, at('firstMessageDeliveriesWeight'), 'must be ≥ 0')
  decay('firstMessageDeliveriesDecay', t.firstMessageDeliveriesWeight)
  check(t.firstMessageDeliveriesWeight === 0 || t.firstMessageDeliveriesCap > 0, at('firstMessageDeliveriesCap'), 'must be > 0')
  check(t.meshMessageDeliveriesWeight <= 0, at('meshMessageDeliveriesWeight'), 'must be ≤ 0')
  decay('meshMessageDeliveriesDecay', t.meshMessageDeliveriesWeight)
  check(t.meshMessageDeliveriesWeight === 0 || t.meshMessageDeliveriesCap > 0, at('meshMessageDeliveriesCap'), 'must be > 0')
  check(t.meshMessageDeliveriesWeight === 0 || t.meshMessageDeliveriesThreshold > 0, at('meshMessageDeliveriesThreshold'), 'must be > 0')
  check(t.meshMessageDeliveriesWindow >= 0, at('meshMessageDeliveriesWindow'), 'must be ≥ 0')
  check(t.meshMessageDeliveriesWeight === 0 || t.meshMessageDeliveriesActivation >= 1_000, at('meshMessageDeliveriesActivation'), 'must be at least 1 000 ms')
  check(t.meshFailurePenaltyWeight <= 0, at('meshFailurePenaltyWeight'), 'must be ≤ 0')
  decay('meshFailurePenaltyDecay', t.meshFailurePenaltyWeight)
  check(t.invalidMessageDeliveriesWeight <= 0, at('invalidMessageDeliveriesWeight'), 'must be ≤ 0')
  decay('invalidMessageDeliveriesDecay', t.invalidMessageDeliveriesWeight)
  return Object.freeze(t)
}

/** Complete and validate thresholds. */
export function peerScoreThresholds (options: Partial<PeerScoreThresholds>): PeerScoreThresholds {
  const t: PeerScoreThresholds = { ...defaultPeerScoreThresholds, ...options }
  const at = (field: string): string => `scoreThresholds.${field}`
  check(t.gossipThreshold <= 0, at('gossipThreshold'), 'must be ≤ 0')
  check(t.publishThreshold <= t.gossipThreshold, at('publishThreshold'), 'must be ≤ gossipThreshold')
  check(t.graylistThreshold <= t.publishThreshold, at('graylistThreshold'), 'must be ≤ publishThreshold')
  check(t.acceptPXThreshold >= 0, at('acceptPXThreshold'), 'must be ≥ 0')
  check(t.opportunisticGraftThreshold >= 0, at('opportunisticGraftThreshold'), 'must be ≥ 0')
  return Object.freeze(t)
}

function check (ok: boolean, field: string, message: string): void {
  if (!ok) throw new ConfigError(field, message)
}
