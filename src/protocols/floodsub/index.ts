/**
 * FloodSub (`/floodsub/1.0.0`): {@link Behaviour | floodsub.Behaviour}, its {@link Event}s and
 * {@link Config | options}, and the pubsub types it is used with (`floodsub.IdentTopic`,
 * `floodsub.MessageAuthenticity`, …), named as in the {@link gossipsub} namespace so that code
 * moves from one to the other by changing a word. Every message goes to every connected peer
 * subscribed to its topic. See [a tour of the API](../../../docs/api-tour.md#floodsub).
 *
 * ```ts
 * import { SwarmBuilder, combine, floodsub, identify } from 'peerswarm'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(key => combine({
 *     identify: new identify.Behaviour(key.publicKey),
 *     floodsub: new floodsub.Behaviour({ authenticity: floodsub.MessageAuthenticity.signed(key) })
 *   }))
 *   .build()
 * const topic = new floodsub.IdentTopic('chat')
 * swarm.behaviour.floodsub.subscribe(topic)
 * swarm.listenOn('/ip4/127.0.0.1/tcp/0')
 * for await (const event of swarm) {
 *   if (event.type === 'Behaviour' && event.event.behaviour === 'floodsub' && event.event.event.type === 'Message') {
 *     console.log(new TextDecoder().decode(event.event.event.message.data))
 *   }
 * }
 * ```
 *
 * @group Protocols
 * @module
 */
export { Behaviour } from './behaviour.js'
export type { Event } from './behaviour.js'
export { PROTOCOL, defaultConfig } from './config.js'
export type { Config } from './config.js'
export { IdentTopic, Sha256Topic } from '../pubsub/topic.js'
export type { Topic, TopicHash } from '../pubsub/topic.js'
export { MessageAuthenticity } from '../pubsub/authenticity.js'
export type { RejectReason } from '../pubsub/authenticity.js'
export { PublishError } from '../pubsub/errors.js'
export type { Message, MessageId, MessageIdFn } from '../pubsub/message.js'
export type { Validator, ValidationResult } from '../pubsub/validation.js'
export type { MessageTotals } from '../pubsub/totals.js'
