/**
 * Request-response's connection handler: one stream per request, in both directions.
 *
 * Outbound, per request from the behaviour, in order:
 *  1. wait for a free slot (at most `maxConcurrentStreams` requests of this connection have a
 *     stream at once; the others wait in arrival order). Until the remote has answered one
 *     stream negotiation of ours, there is one slot: js-libp2p's Yamux aborts the whole
 *     connection when more than 10 streams arrive before its side of the connection is ready,
 *     which a burst of requests on a fresh connection would do;
 *  2. ask the connection for a stream of one of our outbound protocols;
 *  3. write the request, close our writing side, read the response;
 *  4. report the response, then leave the stream to the remote to close (reset at the deadline).
 *
 * Inbound, per negotiated stream (streams beyond `maxConcurrentStreams` are reset at once):
 *  1. read the request;
 *  2. report it with a `ResponseChannel` and wait for the application's answer;
 *  3. write the response, close our writing side, report `ResponseSent`.
 *
 * Each request has a deadline: an outbound one the behaviour's (counted from `sendRequest`),
 * an inbound one `requestTimeout` after negotiation. At the deadline, a request still running
 * is reported as timed out and its stream reset, so no stream outlives its request's deadline.
 * Failures of the stream reset it and are reported as `Io` with the error as `cause`.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { describe, toError } from '../../core/errors.js'
import { ResponseChannel } from './channel.js'
import { InboundFailure, OutboundFailure } from './errors.js'
import type { Message } from './channel.js'
import type { Answer, InboundRequestId, OutboundRequestId } from './channel.js'
import type { Codec } from './codec.js'
import type { Config, Protocols } from './config.js'
import type { Context, Waker } from '../../behaviour/context.js'
import type { ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, SubstreamProtocol } from '../../behaviour/connection-handler.js'
import type { PeerId, Stream } from '@libp2p/interface'

const log = logger('peerswarm:request-response')

/** What the behaviour tells a handler: send a request, answered by `deadline` (`performance.now()` time). */
export type FromBehaviour<TRequest> = {
  readonly type: 'Request'
  readonly requestId: OutboundRequestId
  readonly request: TRequest
  readonly deadline: number
}

/**
 * What a handler reports to its behaviour: a request of the remote's or the response to one of
 * ours (as the behaviour's `Message`), and each request's end.
 */
export type ToBehaviour<TRequest, TResponse> =
  | Message<TRequest, TResponse>
  | { readonly type: 'ResponseSent', readonly requestId: InboundRequestId }
  | { readonly type: 'OutboundFailure', readonly requestId: OutboundRequestId, readonly error: OutboundFailure }
  | { readonly type: 'InboundFailure', readonly requestId: InboundRequestId, readonly error: InboundFailure }

/** What a handler is made of. */
export interface HandlerInit<TRequest, TResponse> {
  readonly codec: Codec<TRequest, TResponse>
  readonly protocols: Protocols
  readonly config: Config
  /** The remote peer (for the channels and logs). */
  readonly peerId: PeerId
  /** Allocates the id of each inbound request. */
  readonly nextInboundId: () => InboundRequestId
}

/** The reason a request's signal aborts with at its deadline. */
class Deadline extends Error {
  constructor () {
    super('the request timed out')
  }
}

/** One request of ours on this connection. */
interface Outbound<TRequest> {
  readonly id: OutboundRequestId
  readonly request: TRequest
  readonly deadline: number
  readonly controller: AbortController
  timer?: ReturnType<typeof setTimeout>
  /** Reported (answered, failed or timed out): nothing more is said about it. */
  done: boolean
  /** Counted in `busy` until its stream is finished or its negotiation failed. */
  holdsSlot: boolean
}

/** One request of the remote's on this connection. */
interface Inbound {
  readonly stream: Stream
  readonly controller: AbortController
}

/** The request-response handler of one connection. */
export class Handler<TRequest, TResponse> implements ConnectionHandler<FromBehaviour<TRequest>, ToBehaviour<TRequest, TResponse>> {
  private readonly reports: Array<ToBehaviour<TRequest, TResponse>> = []
  /** Requests waiting for a free slot, oldest first (those done meanwhile are skipped). */
  private readonly waiting: Array<Outbound<TRequest>> = []
  /** Requests that have a slot and whose stream is still to be asked for at the next poll. */
  private readonly toOpen: Array<Outbound<TRequest>> = []
  /** Requests whose stream was asked for, by id (the `info` of the stream request). */
  private readonly opening = new Map<OutboundRequestId, Outbound<TRequest>>()
  /** Outbound requests not yet done: while there are any, the connection is kept alive. */
  private readonly pending = new Set<Outbound<TRequest>>()
  /** Outbound requests holding a slot. */
  private busy = 0
  /** The remote has answered a negotiation of ours: all slots are usable. */
  private remoteReady = false
  private readonly inbound = new Set<Inbound>()
  /** Streams finishing after their exchange (waiting for the remote's close). */
  private readonly settling = new Set<Stream>()
  private waker?: Waker
  private closed = false

  /** What `listenProtocol` answers, made once (the connection asks on every turn of its loop). */
  private listen?: SubstreamProtocol

  constructor (private readonly init: HandlerInit<TRequest, TResponse>) {}

  listenProtocol (): SubstreamProtocol {
    this.listen ??= { protocols: this.init.protocols.inbound }
    return this.listen
  }

  /**
   * Kept alive while requests of ours wait for a stream or a response.
   *
   * @group Called by the connection
   */
  connectionKeepAlive (): boolean {
    return this.pending.size > 0
  }

  onBehaviourEvent (event: FromBehaviour<TRequest>): void {
    const record: Outbound<TRequest> = {
      id: event.requestId,
      request: event.request,
      deadline: event.deadline,
      controller: new AbortController(),
      done: false,
      holdsSlot: false
    }
    this.pending.add(record)
    const remaining = event.deadline - performance.now()
    if (remaining <= 0) {
      this.timeOut(record)
      return
    }
    record.timer = setTimeout(() => { this.timeOut(record) }, remaining)
    this.waiting.push(record)
    this.fillSlots()
  }

  onConnectionEvent (event: ConnectionEvent): void {
    switch (event.type) {
      case 'FullyNegotiatedInbound':
        this.serve(event.stream, event.protocol)
        break
      case 'FullyNegotiatedOutbound': {
        const record = this.opening.get(event.info as OutboundRequestId)
        if (record == null) {
          event.stream.abort(new Error('no request for this stream'))
          break
        }
        this.opening.delete(record.id)
        this.onRemoteReady()
        if (record.done) {
          event.stream.abort(new Error('the request timed out while its stream was negotiated'))
          this.releaseSlot(record)
          break
        }
        void this.exchange(record, event.stream, event.protocol)
        break
      }
      case 'DialUpgradeError': {
        const record = this.opening.get(event.info as OutboundRequestId)
        if (record == null) break
        this.opening.delete(record.id)
        const { kind } = event.error
        if (kind === 'NegotiationFailed') this.onRemoteReady()
        this.releaseSlot(record)
        const error = kind === 'NegotiationFailed'
          ? new OutboundFailure('UnsupportedProtocols', `${this.init.peerId.toString()} supports none of ${this.init.protocols.outbound.join(', ')}`, event.error)
          : kind === 'Timeout'
            ? new OutboundFailure('Timeout', 'the request timed out while its stream was negotiated', event.error)
            : new OutboundFailure('Io', `opening a stream failed: ${event.error.message}`, event.error)
        this.finish(record, { type: 'OutboundFailure', requestId: record.id, error })
        break
      }
      default:
    }
  }

  poll (cx: Context): ConnectionHandlerEvent<ToBehaviour<TRequest, TResponse>> | undefined {
    this.waker = cx.waker
    const report = this.reports.shift()
    if (report !== undefined) return { type: 'NotifyBehaviour', event: report }
    for (let record = this.toOpen.shift(); record !== undefined; record = this.toOpen.shift()) {
      if (record.done) {
        this.releaseSlot(record)
        continue
      }
      this.opening.set(record.id, record)
      const timeout = Math.max(1, Math.ceil(record.deadline - performance.now()))
      return { type: 'OutboundSubstreamRequest', protocol: { protocols: this.init.protocols.outbound, info: record.id, timeout } }
    }
    return undefined
  }

  close (): void {
    this.closed = true
    const gone = new Error('connection closed')
    for (const record of this.pending) {
      record.done = true
      clearTimeout(record.timer)
      record.controller.abort(gone)
    }
    this.pending.clear()
    for (const entry of this.inbound) {
      entry.controller.abort(gone)
      entry.stream.abort(gone)
    }
    this.inbound.clear()
    for (const stream of this.settling) stream.abort(gone)
    this.settling.clear()
  }

  private onRemoteReady (): void {
    if (this.remoteReady) return
    this.remoteReady = true
    this.fillSlots()
  }

  /** Give slots to waiting requests, oldest first. */
  private fillSlots (): void {
    let added = false
    const slots = this.remoteReady ? this.init.config.maxConcurrentStreams : 1
    while (this.busy < slots && this.waiting.length > 0) {
      const record = this.waiting.shift() as Outbound<TRequest>
      if (record.done) continue
      record.holdsSlot = true
      this.busy++
      this.toOpen.push(record)
      added = true
    }
    if (added) this.waker?.wake()
  }

  private releaseSlot (record: Outbound<TRequest>): void {
    if (!record.holdsSlot) return
    record.holdsSlot = false
    this.busy--
    if (!this.closed) this.fillSlots()
  }

  /** Report the end of an outbound request once; later outcomes of it are ignored. */
  private finish (record: Outbound<TRequest>, report: ToBehaviour<TRequest, TResponse>): void {
    if (record.done) return
    record.done = true
    clearTimeout(record.timer)
    this.pending.delete(record)
    this.report(report)
    if (this.pending.size === 0) this.waker?.wake()
  }

  private timeOut (record: Outbound<TRequest>): void {
    if (record.done) return
    this.finish(record, { type: 'OutboundFailure', requestId: record.id, error: new OutboundFailure('Timeout', 'no response in time') })
    record.controller.abort(new Deadline())
  }

  /** Send one request on its negotiated stream and read the response. */
  private async exchange (record: Outbound<TRequest>, stream: Stream, protocol: string): Promise<void> {
    const { codec } = this.init
    const { signal } = record.controller
    try {
      await codec.writeRequest(protocol, stream, record.request, { signal })
      await stream.close({ signal })
      const response = await codec.readResponse(protocol, stream, { signal })
      signal.throwIfAborted()
      this.finish(record, { type: 'Response', requestId: record.id, response })
      this.settle(stream, record.deadline)
    } catch (err) {
      stream.abort(toError(err))
      if (!record.done) {
        log('request %d to %p failed: %s', record.id, this.init.peerId, describe(err))
        this.finish(record, { type: 'OutboundFailure', requestId: record.id, error: new OutboundFailure('Io', describe(err), err) })
      }
    } finally {
      this.releaseSlot(record)
    }
  }

  /** Read one request of the remote's on `stream`, hand it over and write the answer. */
  private serve (stream: Stream, protocol: string): void {
    const { config, codec, peerId, nextInboundId } = this.init
    if (this.inbound.size >= config.maxConcurrentStreams) {
      log('resetting an inbound stream of %p: %d requests already in flight', peerId, this.inbound.size)
      stream.abort(new Error('too many concurrent requests'))
      return
    }
    const requestId = nextInboundId()
    const entry: Inbound = { stream, controller: new AbortController() }
    const { signal } = entry.controller
    this.inbound.add(entry)
    const deadline = performance.now() + config.requestTimeout
    const timer = setTimeout(() => { entry.controller.abort(new Deadline()) }, config.requestTimeout)
    let settled = false
    let resolveAnswer!: (answer: Answer<TResponse>) => void
    const answered = new Promise<Answer<TResponse>>((resolve) => { resolveAnswer = resolve })
    const channel = new ResponseChannel<TResponse>(requestId, peerId, (answer) => {
      if (settled || signal.aborted) return false
      settled = true
      resolveAnswer(answer as Answer<TResponse>)
      return true
    }, () => !settled && !signal.aborted)
    void (async () => {
      try {
        const request = await codec.readRequest(protocol, stream, { signal })
        signal.throwIfAborted()
        this.report({ type: 'Request', requestId, request, protocol, channel })
        const answer = await untilAborted(answered, signal)
        if (answer.type === 'Drop') {
          stream.abort(new Error('the application dropped the request'))
          this.report({ type: 'InboundFailure', requestId, error: new InboundFailure('ResponseOmission', 'the application did not answer') })
          return
        }
        await codec.writeResponse(protocol, stream, answer.response, { signal })
        await stream.close({ signal })
        this.report({ type: 'ResponseSent', requestId })
        this.settle(stream, deadline)
      } catch (err) {
        stream.abort(toError(err))
        if (this.closed) return
        const timedOut = signal.reason instanceof Deadline
        log('request %d from %p failed: %s', requestId, peerId, timedOut ? 'timeout' : describe(err))
        this.report({
          type: 'InboundFailure',
          requestId,
          error: timedOut ? new InboundFailure('Timeout', 'the request was not answered in time') : new InboundFailure('Io', describe(err), err)
        })
      } finally {
        clearTimeout(timer)
        settled = true
        this.inbound.delete(entry)
      }
    })()
  }

  /**
   * Our side of an exchange is done: leave the stream to the remote to close, and reset it if
   * it has not by `deadline`.
   */
  private settle (stream: Stream, deadline: number): void {
    if (stream.status !== 'open' || this.closed) return
    this.settling.add(stream)
    const timer = setTimeout(() => { stream.abort(new Error('the remote did not close the stream')) }, Math.max(0, deadline - performance.now()))
    stream.addEventListener('close', () => {
      clearTimeout(timer)
      this.settling.delete(stream)
    }, { once: true })
  }

  private report (event: ToBehaviour<TRequest, TResponse>): void {
    if (this.closed) return
    this.reports.push(event)
    this.waker?.wake()
  }
}

/** `promise`, or a rejection with the signal's reason once it aborts. */
async function untilAborted<T> (promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  let onAbort!: () => void
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([promise, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}
