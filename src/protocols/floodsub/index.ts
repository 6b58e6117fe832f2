/**
 * FloodSub: `floodsub.Behaviour`, `floodsub.Event`, `floodsub.Config`, and the pubsub types
 * it is used with (`floodsub.IdentTopic`, `floodsub.MessageAuthenticity`, …).
 *
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
