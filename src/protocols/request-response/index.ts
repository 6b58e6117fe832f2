/**
 * A generic request-response protocol, as rust-libp2p's `request_response`:
 * `requestResponse.Behaviour` over a `Codec` (ready: `jsonCodec`, `bytesCodec`,
 * `lengthPrefixedCodec`), its events, failures and options.
 *
 * @module
 */
export { Behaviour } from './behaviour.js'
export type { Event, RequestOptions } from './behaviour.js'
export type { Message } from './channel.js'
export { Handler } from './handler.js'
export type { FromBehaviour, ToBehaviour, HandlerInit } from './handler.js'
export { ResponseChannel } from './channel.js'
export type { InboundRequestId, OutboundRequestId } from './channel.js'
export { jsonCodec, bytesCodec, lengthPrefixedCodec, DEFAULT_MAX_REQUEST_SIZE, DEFAULT_MAX_RESPONSE_SIZE } from './codec.js'
export type { Codec, CodecOptions, SizeLimits, LengthPrefixedCodecInit } from './codec.js'
export { OutboundFailure, InboundFailure, MessageTooLargeError, InvalidMessageError } from './errors.js'
export type { OutboundFailureKind, InboundFailureKind } from './errors.js'
export { defaultConfig } from './config.js'
export type { Config, ProtocolConfig, ProtocolSupport, Protocols } from './config.js'
