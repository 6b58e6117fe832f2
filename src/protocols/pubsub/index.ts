/**
 * The pubsub core shared by FloodSub and GossipSub: the RPC codec, framing, topics, message
 * ids, signing and the receive pipeline. Applications use it through {@link floodsub} and
 * {@link gossipsub}, which re-export the types they need (topics, `MessageAuthenticity`,
 * `Message`, `Validator`, `PublishError`); the rest is here for protocols built on the same core.
 * How it is built: [the GossipSub guide](../../../docs/gossipsub.md#how-it-is-built).
 *
 * ```ts
 * import { SwarmBuilder, gossipsub } from 'peerswarm'
 * import type { pubsub } from 'peerswarm'
 *
 * // A validator works for FloodSub and GossipSub alike.
 * const notEmpty: pubsub.Validator = message => message.data.byteLength > 0 ? 'accept' : 'reject'
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(key => new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key) }))
 *   .build()
 * swarm.behaviour.subscribe('chat')
 * swarm.behaviour.setValidator('chat', notEmpty)
 * ```
 *
 * @group Protocols
 * @module
 */
export { encodeRpc, decodeRpc, encodeMessage, InvalidRpcError } from './rpc.js'
export type { Rpc, RawMessage, SubOptsRecord, ControlRecord } from './rpc.js'
export { encodeFrame, FrameDecoder, FrameTooLargeError } from '../../behaviour/framing.js'
export { IdentTopic, Sha256Topic, topicHash } from './topic.js'
export type { Topic, TopicHash } from './topic.js'
export { authorSeqnoId, contentId, messageIdKey, messageIdHex, rawAuthorSeqnoKey, SeqnoGenerator } from './message.js'
export type { Message, MessageId, MessageIdFn } from './message.js'
export { MessageAuthenticity, MessageAuthor, MessageChecker, InvalidMessageError, signaturePolicy } from './authenticity.js'
export type { SignaturePolicy, RejectReason, Checked } from './authenticity.js'
export { SeenCache } from './seen-cache.js'
export type { Clock } from './seen-cache.js'
export type { Validator, ValidationResult } from './validation.js'
export { InboundPipeline } from './pipeline.js'
export type { Outcome, PipelineInit } from './pipeline.js'
export { StreamHandler } from './stream-handler.js'
export type { FromBehaviour, ToBehaviour, HandlerIn, HandlerOut, StreamHandlerConfig } from './stream-handler.js'
export { PublishError } from './errors.js'
export type { PublishErrorKind } from './errors.js'
export { newTotals } from './totals.js'
export type { MessageTotals } from './totals.js'
