/**
 * GossipSub v1.0, v1.1 and v1.2 (`/meshsub/1.2.0`, `1.1.0`, `1.0.0`, and `/floodsub/1.0.0` for
 * peers without it): {@link Behaviour | gossipsub.Behaviour}, its {@link Event}s and
 * {@link Config | options}, peer scoring ({@link PeerScoreParams}), metrics ({@link MetricsSink}),
 * and the pubsub types it is used with (`gossipsub.IdentTopic`, `gossipsub.MessageAuthenticity`,
 * …), named as in the {@link floodsub} namespace so that code moves from one to the other by
 * changing a word. [GossipSub: a tuning guide](../../../docs/gossipsub.md) explains every
 * parameter, scoring with a worked example, validation and the metrics.
 *
 * ```ts
 * import { SwarmBuilder, combine, gossipsub, identify } from 'peerswarm'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(key => combine({
 *     identify: new identify.Behaviour(key.publicKey),
 *     gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), meshN: 8, meshNHigh: 16 })
 *   }))
 *   .build()
 * const topic = new gossipsub.IdentTopic('chat')
 * swarm.behaviour.gossipsub.subscribe(topic)
 * swarm.listenOn('/ip4/127.0.0.1/tcp/0')
 * for await (const event of swarm) {
 *   if (event.type !== 'Behaviour' || event.event.behaviour !== 'gossipsub') continue
 *   const e = event.event.event
 *   if (e.type === 'Subscribed') swarm.behaviour.gossipsub.publish(topic, new TextEncoder().encode('hello'))
 *   if (e.type === 'Message') console.log(new TextDecoder().decode(e.message.data))
 * }
 * ```
 *
 * @group Protocols
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
