/**
 * Request ids, the channel an inbound request is answered through, and the messages that carry
 * them.
 *
 * @module
 */
import type { PeerId } from '@libp2p/interface'

/** Identifies one request we sent, for the lifetime of the process. */
export type OutboundRequestId = number & { readonly __brand: 'OutboundRequestId' }

/** Identifies one request we received, for the lifetime of the process. */
export type InboundRequestId = number & { readonly __brand: 'InboundRequestId' }

let lastOutbound = 0
let lastInbound = 0

/** @internal A fresh outbound request id. */
export function newOutboundRequestId (): OutboundRequestId {
  return ++lastOutbound as OutboundRequestId
}

/** @internal A fresh inbound request id. */
export function newInboundRequestId (): InboundRequestId {
  return ++lastInbound as InboundRequestId
}

/** @internal What the application decided for an inbound request. */
export type Answer<TResponse> = { readonly type: 'Respond', readonly response: TResponse } | { readonly type: 'Drop' }

/** @internal Hands an answer to the stream waiting for it; false once that is no longer possible. */
type Settle = (answer: Answer<unknown>) => boolean

const settlers = new WeakMap<object, { settle: Settle, open: () => boolean }>()

/**
 * Where the response to one inbound request goes: pass it to the behaviour's `sendResponse`
 * (or `dropResponse`). It is open until it is used, the request times out or its connection
 * closes; it cannot be created outside the library.
 */
export class ResponseChannel<TResponse> {
  /** Phantom field that keeps channels of different response types apart. */
  declare private readonly responseType?: (response: TResponse) => void

  /** @internal */
  constructor (
    /** The request this channel answers. */
    readonly requestId: InboundRequestId,
    /** The peer that sent the request. */
    readonly peerId: PeerId,
    settle: Settle,
    open: () => boolean
  ) {
    settlers.set(this, { settle, open })
  }

  /** Whether a response can still be sent through this channel. */
  get isOpen (): boolean {
    return settlers.get(this)?.open() ?? false
  }
}

/** @internal Answer the request of `channel`; false if the channel is no longer open. */
export function settleChannel<TResponse> (channel: ResponseChannel<TResponse>, answer: Answer<TResponse>): boolean {
  return settlers.get(channel)?.settle(answer) ?? false
}

/** A request or a response, as carried by a `Message` event. */
export type Message<TRequest, TResponse> =
  | {
    /** The peer asks something: answer with `sendResponse(channel, response)`. */
    readonly type: 'Request'
    readonly requestId: InboundRequestId
    readonly request: TRequest
    /** The protocol the request came on. */
    readonly protocol: string
    readonly channel: ResponseChannel<TResponse>
  }
  | {
    /** The answer to our request `requestId`. */
    readonly type: 'Response'
    readonly requestId: OutboundRequestId
    readonly response: TResponse
  }
