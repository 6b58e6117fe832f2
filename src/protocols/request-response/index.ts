/**
 * A generic request-response protocol, as rust-libp2p's `request_response`:
 * {@link Behaviour | requestResponse.Behaviour} over a {@link Codec} (ready: {@link jsonCodec},
 * {@link bytesCodec}, {@link lengthPrefixedCodec}), its events, failures and
 * {@link Config | options}. One stream per request; every request ends in exactly one event. See
 * [a tour of the API](../../../docs/api-tour.md#request-response), and
 * `examples/file-sharing.ts` for a codec of its own.
 *
 * ```ts
 * import { SwarmBuilder, requestResponse } from 'peerswarm'
 *
 * type Request = { readonly name: string }
 * type Response = { readonly greeting: string }
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(() => new requestResponse.Behaviour(requestResponse.jsonCodec<Request, Response>(), ['/hello/1.0.0']))
 *   .build()
 * swarm.listenOn('/ip4/127.0.0.1/tcp/0')
 * for await (const event of swarm) {
 *   if (event.type !== 'Behaviour') continue
 *   const e = event.event
 *   if (e.type === 'Message' && e.message.type === 'Request') {
 *     swarm.behaviour.sendResponse(e.message.channel, { greeting: `hello, ${e.message.request.name}` })
 *   }
 * }
 * ```
 *
 * @group Protocols
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
