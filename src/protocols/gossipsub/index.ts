/**
 * GossipSub: `gossipsub.Behaviour`, `gossipsub.Event`, `gossipsub.Config`, and the pubsub types
 * it is used with (`gossipsub.IdentTopic`, `gossipsub.MessageAuthenticity`, …), named as in
 * the `floodsub` module so that code moves from one to the other by changing a word.
 *
 * @module
 */
export { Behaviour } from './behaviour.js'
export type { Event, GossipsubNotSupported, PeerInfo } from './behaviour.js'
export { PROTOCOL_V1_2, PROTOCOL_V1_1, PROTOCOL_V1_0, FLOODSUB_PROTOCOL, defaultConfig } from './config.js'
export type { Config, DataTransform, Options } from './config.js'
export { defaultPeerScoreParams, defaultTopicScoreParams, defaultPeerScoreThresholds, scoreParameterDecay } from './score/params.js'
export type { PeerScoreParams, PeerScoreOptions, TopicScoreParams, PeerScoreThresholds } from './score/params.js'
export type { ScoreBreakdown } from './score/compute.js'
export { METRICS } from './metrics.js'
export type { MetricsSink, CounterName, HistogramName, Counters, Histograms, Labels } from './metrics.js'
export { InvalidPeerRecordError, signPeerRecord } from './peer-exchange.js'
export { IdentTopic, Sha256Topic } from '../pubsub/topic.js'
export type { Topic, TopicHash } from '../pubsub/topic.js'
export { MessageAuthenticity } from '../pubsub/authenticity.js'
export type { RejectReason } from '../pubsub/authenticity.js'
export { PublishError } from '../pubsub/errors.js'
export type { PublishErrorKind } from '../pubsub/errors.js'
export type { Message, MessageId, MessageIdFn } from '../pubsub/message.js'
export type { Validator, ValidationResult } from '../pubsub/validation.js'
export type { MessageTotals } from '../pubsub/totals.js'
