/**
 * GossipSub's options, their defaults (the v1.0 and v1.1 specs' values unless noted) and their
 * validation. `config(options)` returns a complete, frozen configuration or throws
 * `ConfigError` naming the bad field.
 *
 * @module
 */
import { ConfigError } from '../../core/errors.js'
import { checkDelay } from '../../core/timers.js'
import type { MessageAuthenticity } from '../pubsub/authenticity.js'
import { peerScoreParams, peerScoreThresholds } from './score/params.js'
import type { PeerScoreOptions, PeerScoreParams, PeerScoreThresholds } from './score/params.js'
import type { MetricsSink } from './metrics.js'
import type { MessageIdFn } from '../pubsub/message.js'
import type { TopicHash } from '../pubsub/topic.js'
import type { PeerId } from '@libp2p/interface'

/** GossipSub v1.2 (IDONTWANT). */
export const PROTOCOL_V1_2 = '/meshsub/1.2.0'
/** GossipSub v1.1 (PRUNE backoff, peer exchange). */
export const PROTOCOL_V1_1 = '/meshsub/1.1.0'
/** GossipSub v1.0. */
export const PROTOCOL_V1_0 = '/meshsub/1.0.0'
/** FloodSub, spoken to peers that know no gossipsub. */
export const FLOODSUB_PROTOCOL = '/floodsub/1.0.0'

/**
 * Turns the payload of a message into what goes on the wire and back (rust-libp2p's
 * `DataTransform`): compression, for instance. Both sides of a topic must agree. A transform
 * that throws fails the publish (`PublishError` `TransformFailed`) or drops the received
 * message.
 */
export interface DataTransform {
  /** Application data to wire data, before signing. */
  readonly outbound: (topic: TopicHash, data: Uint8Array) => Uint8Array
  /** Wire data to application data, after validation, before delivery. */
  readonly inbound: (topic: TopicHash, data: Uint8Array) => Uint8Array
}

/** GossipSub's options; only `authenticity` is required. */
export interface Config {
  /** StrictSign with the node's key (`MessageAuthenticity.signed(key)`) or StrictNoSign. */
  readonly authenticity: MessageAuthenticity
  /** Message ids (default: `from ‖ seqno` when signed, sha256(data) when not). */
  readonly messageIdFn?: MessageIdFn
  /** Target mesh degree D (default: 6). */
  readonly meshN: number
  /** D_lo: below this the mesh is topped up at a heartbeat (default: 4, the spec's). */
  readonly meshNLow: number
  /** D_hi: above this the mesh is pruned back to D at a heartbeat (default: 12). */
  readonly meshNHigh: number
  /** D_score: mesh peers kept by score when pruning (default: 4). */
  readonly meshNScore: number
  /** D_out: outbound peers kept in each mesh; < D_lo and ≤ D/2 (default: 2). */
  readonly meshOutboundMin: number
  /** D_lazy: least number of peers IHAVE gossip goes to (default: 6). */
  readonly gossipLazy: number
  /** Share of the eligible non-mesh peers that gossip goes to, if more than D_lazy (default: 0.25). */
  readonly gossipFactor: number
  /** Time between heartbeats, in ms (default: 1 000). */
  readonly heartbeatInterval: number
  /** Time before the first heartbeat, in ms (default: 100, as go and js). */
  readonly heartbeatInitialDelay: number
  /** A fanout topic is forgotten this long after our last publish on it, in ms (default: 60 000). */
  readonly fanoutTtl: number
  /** Heartbeats a message stays in the message cache (answering IWANT) (default: 5). */
  readonly historyLength: number
  /** Of those, the most recent windows advertised in IHAVE (default: 3). */
  readonly historyGossip: number
  /** How long a message id is remembered as seen, in ms (default: 120 000, as go). */
  readonly seenTtl: number
  /** Most message ids remembered as seen (default: 100 000); the oldest go first. */
  readonly seenMaxEntries: number
  /** Backoff after a PRUNE without one of its own, in ms (default: 60 000). */
  readonly pruneBackoff: number
  /** Backoff announced when we leave a topic, in ms (default: 10 000). */
  readonly unsubscribeBackoff: number
  /** Heartbeats added to every backoff before we graft again (default: 1). */
  readonly backoffSlackHeartbeats: number
  /** A GRAFT this soon after a PRUNE's backoff began counts double, in ms (default: 10 000). */
  readonly graftFloodThreshold: number
  /** Publish to every peer of a topic, not only the mesh (default: true, as the spec, js and rust). */
  readonly floodPublish: boolean
  /** Attach peer exchange (other peers of the topic) to PRUNEs we send (default: false, as go, js, rust). */
  readonly doPX: boolean
  /** Peers attached to a PRUNE with PX, and PX peers dialed per PRUNE received (default: 16). */
  readonly prunePeers: number
  /** PX dials in flight at once; more PX peers are ignored (default: 128). */
  readonly maxPendingPxDials: number
  /** Times one peer may ask for the same message by IWANT (default: 3). */
  readonly gossipRetransmission: number
  /**
   * When a gossipsub peer subscribes to a topic of ours, offer it at once (IHAVE) the ids of
   * the topic's gossip windows, so that a peer that was cut off or just arrived asks for what
   * it missed instead of waiting for heartbeat gossip, which skips mesh peers (default: true;
   * an addition of ours, not in the specs: go, js and rust gossip only at heartbeats).
   */
  readonly gossipOnSubscribe: boolean
  /** Ids asked for by IWANT per peer per heartbeat, and read per IHAVE (default: 5 000). */
  readonly maxIHaveLength: number
  /** RPCs with control messages read per peer per heartbeat for IHAVE (default: 10). */
  readonly maxIHaveMessages: number
  /**
   * Bytes of message ids asked for by IWANT per peer per heartbeat (default: 320 KiB, 5 000
   * ids of 64 B); an IHAVE id that would go past it is not asked for. With `maxIHaveLength`
   * alone, a peer announcing ids of hundreds of KB each would have us echo them back by IWANT
   * and keep them as promises.
   */
  readonly maxIHaveBytes: number
  /** A peer that does not answer our IWANT within this time broke its promise, in ms (default: 3 000). */
  readonly iwantFollowupTime: number
  /** Payloads at least this large are announced by IDONTWANT to v1.2 mesh peers (default: 1 000 B, as rust). */
  readonly idontwantMessageThreshold: number
  /** IDONTWANT ids accepted per peer per heartbeat; more are ignored (default: 1 000). */
  readonly maxIDontWantIds: number
  /**
   * Bytes of IDONTWANT ids accepted per peer per heartbeat (default: 64 KiB, 1 000 ids of
   * 64 B); an id that would go past it is ignored. Each accepted id is kept for
   * `idontwantTtlHeartbeats`: by count alone, ids of up to a frame each could make us keep
   * hundreds of MB per peer.
   */
  readonly maxIDontWantBytes: number
  /** Heartbeats an IDONTWANT is honoured (default: 3, as go). */
  readonly idontwantTtlHeartbeats: number
  /** Every this many heartbeats, disconnected explicit peers are dialed again (default: 300). */
  readonly directConnectTicks: number
  /** Every this many heartbeats, opportunistic grafting may run (default: 60). */
  readonly opportunisticGraftTicks: number
  /** Peers grafted per opportunistic graft (default: 2). */
  readonly opportunisticGraftPeers: number
  /** Speak `/floodsub/1.0.0` to peers without gossipsub (default: true, as go). */
  readonly supportFloodsub: boolean
  /** Explicit peers from the start (see `addExplicitPeer`). */
  readonly explicitPeers: readonly PeerId[]
  /**
   * Hold every received message until the application calls `reportMessageValidationResult`
   * (default: false: messages accepted by the topic validators are forwarded at once).
   */
  readonly validateMessagesManually: boolean
  /** Messages waiting for validation (asynchronous or manual) at once (default: 1 024). */
  readonly maxPendingValidations: number
  /** Payload transform (default: none). */
  readonly dataTransform?: DataTransform
  /** Largest frame sent or accepted, in bytes (default: 1 MiB, as go). */
  readonly maxTransmitSize: number
  /**
   * Bytes queued per connection before frames are dropped with a `SlowPeer` event (default:
   * 16 MiB). Control and our own messages go first and push forwarded messages out when full.
   */
  readonly maxQueuedBytes: number
  /** Forwarded messages not written to a peer within this many ms are dropped (default: 1 000, as rust). */
  readonly forwardDeadline: number
  /** Topics remembered per peer; further subscriptions are ignored (default: 1 024). */
  readonly maxTopicsPerPeer: number
  /** Deliver our own published messages to ourselves as `Message` events (default: false). */
  readonly subscribeLocalMessages: boolean
  /**
   * `publish` throws `PublishError` `NoPeersSubscribedToTopic` when nobody would get the
   * message (default: true, as rust-libp2p and js-libp2p).
   */
  readonly publishRequiresPeers: boolean
  /**
   * Peer scoring (gossipsub v1.1): off unless given, as in go and rust (every score is then 0,
   * and so is every threshold). Missing parameters take the js/rust defaults.
   */
  readonly scoreParams?: PeerScoreParams
  /** Where metrics go (default: nowhere); see `METRICS` for the list. */
  readonly metrics?: MetricsSink
  /** What scores mean (default: gossip −10, publish −50, graylist −80, acceptPX 10, opportunisticGraft 20). */
  readonly scoreThresholds: PeerScoreThresholds
}

/** What the constructor takes: `authenticity` and any options; scoring parameters may be partial. */
export type Options = Partial<Omit<Config, 'scoreParams' | 'scoreThresholds'>> & Pick<Config, 'authenticity'> & {
  readonly scoreParams?: PeerScoreOptions
  readonly scoreThresholds?: Partial<PeerScoreThresholds>
}

/** Defaults of everything but `authenticity`. */
export const defaultConfig = Object.freeze({
  meshN: 6,
  meshNLow: 4,
  meshNHigh: 12,
  meshNScore: 4,
  meshOutboundMin: 2,
  gossipLazy: 6,
  gossipFactor: 0.25,
  heartbeatInterval: 1_000,
  heartbeatInitialDelay: 100,
  fanoutTtl: 60_000,
  historyLength: 5,
  historyGossip: 3,
  seenTtl: 120_000,
  seenMaxEntries: 100_000,
  pruneBackoff: 60_000,
  unsubscribeBackoff: 10_000,
  backoffSlackHeartbeats: 1,
  graftFloodThreshold: 10_000,
  floodPublish: true,
  doPX: false,
  prunePeers: 16,
  maxPendingPxDials: 128,
  gossipRetransmission: 3,
  gossipOnSubscribe: true,
  maxIHaveLength: 5_000,
  maxIHaveMessages: 10,
  maxIHaveBytes: 320 * 1024,
  iwantFollowupTime: 3_000,
  idontwantMessageThreshold: 1_000,
  maxIDontWantIds: 1_000,
  maxIDontWantBytes: 64 * 1024,
  idontwantTtlHeartbeats: 3,
  directConnectTicks: 300,
  opportunisticGraftTicks: 60,
  opportunisticGraftPeers: 2,
  supportFloodsub: true,
  explicitPeers: Object.freeze([]) as readonly PeerId[],
  validateMessagesManually: false,
  maxPendingValidations: 1_024,
  maxTransmitSize: 1024 * 1024,
  maxQueuedBytes: 16 * 1024 * 1024,
  forwardDeadline: 1_000,
  maxTopicsPerPeer: 1_024,
  subscribeLocalMessages: false,
  publishRequiresPeers: true
})

type NumberField = { [K in keyof Config]-?: Config[K] extends number ? K : never }[keyof Config]

/** Fields that must be integers ≥ 0. */
const COUNTS: readonly NumberField[] = [
  'meshN', 'meshNLow', 'meshNHigh', 'meshNScore', 'meshOutboundMin', 'gossipLazy', 'backoffSlackHeartbeats',
  'prunePeers', 'maxPendingPxDials', 'gossipRetransmission', 'maxIHaveLength', 'maxIHaveMessages',
  'idontwantMessageThreshold', 'maxIDontWantIds', 'maxIHaveBytes', 'maxIDontWantBytes'
]
/** Fields that must be > 0 (times in ms, sizes, bounds, tick counts). */
const POSITIVE: readonly NumberField[] = [
  'heartbeatInterval', 'fanoutTtl', 'historyLength', 'historyGossip', 'seenTtl', 'seenMaxEntries', 'pruneBackoff',
  'unsubscribeBackoff', 'iwantFollowupTime', 'idontwantTtlHeartbeats', 'directConnectTicks',
  'opportunisticGraftTicks', 'maxPendingValidations', 'maxTransmitSize', 'maxQueuedBytes', 'forwardDeadline', 'maxTopicsPerPeer'
]

/** Validate `options` over the defaults; throws `ConfigError` naming the bad field. */
export function config (options: Options): Config {
  const c: Config = {
    ...defaultConfig,
    ...options,
    scoreParams: options.scoreParams == null ? undefined : peerScoreParams(options.scoreParams),
    scoreThresholds: peerScoreThresholds(options.scoreThresholds ?? {})
  }
  if (c.authenticity?.type !== 'Signed' && c.authenticity?.type !== 'Anonymous') {
    throw new ConfigError('authenticity', 'use MessageAuthenticity.signed(key) or MessageAuthenticity.anonymous()')
  }
  for (const field of COUNTS) {
    const value = c[field]
    if (!Number.isSafeInteger(value) || value < 0) throw new ConfigError(field, `must be an integer ≥ 0, got ${String(value)}`)
  }
  for (const field of POSITIVE) {
    const value = c[field]
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new ConfigError(field, `must be a positive number, got ${String(value)}`)
  }
  if (!Number.isFinite(c.heartbeatInitialDelay) || c.heartbeatInitialDelay < 0) {
    throw new ConfigError('heartbeatInitialDelay', `must be ≥ 0, got ${String(c.heartbeatInitialDelay)}`)
  }
  for (const field of ['heartbeatInterval', 'heartbeatInitialDelay'] as const) {
    checkDelay(field, c[field])
  }
  if (!(c.gossipFactor >= 0 && c.gossipFactor <= 1)) throw new ConfigError('gossipFactor', `must be within [0, 1], got ${String(c.gossipFactor)}`)
  // The mesh degrees: D_lo ≤ D ≤ D_hi, D_score ≤ D_hi, D_out < D_lo and D_out ≤ D/2, except in
  // the bootstrapper profile where all of them are 0 (spec v1.1, network operators).
  const bootstrapper = c.meshN === 0 && c.meshNLow === 0 && c.meshNHigh === 0 && c.meshOutboundMin === 0
  if (!bootstrapper) {
    if (c.meshNLow > c.meshN) throw new ConfigError('meshNLow', `D_lo (${c.meshNLow}) must be ≤ D (${c.meshN})`)
    if (c.meshNHigh < c.meshN) throw new ConfigError('meshNHigh', `D_hi (${c.meshNHigh}) must be ≥ D (${c.meshN})`)
    if (c.meshOutboundMin >= c.meshNLow) throw new ConfigError('meshOutboundMin', `D_out (${c.meshOutboundMin}) must be < D_lo (${c.meshNLow})`)
    if (c.meshOutboundMin > c.meshN / 2) throw new ConfigError('meshOutboundMin', `D_out (${c.meshOutboundMin}) must be ≤ D/2 (${c.meshN / 2})`)
  }
  if (c.meshNScore > c.meshNHigh) throw new ConfigError('meshNScore', `D_score (${c.meshNScore}) must be ≤ D_hi (${c.meshNHigh})`)
  if (c.historyGossip > c.historyLength) {
    throw new ConfigError('historyGossip', `gossip windows (${c.historyGossip}) must be ≤ historyLength (${c.historyLength})`)
  }
  if (!Array.isArray(c.explicitPeers)) throw new ConfigError('explicitPeers', 'must be an array of peer ids')
  if (c.dataTransform != null && (typeof c.dataTransform.inbound !== 'function' || typeof c.dataTransform.outbound !== 'function')) {
    throw new ConfigError('dataTransform', 'must have inbound and outbound functions')
  }
  return Object.freeze(c)
}
