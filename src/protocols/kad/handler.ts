/**
 * Kademlia's connection handler: one request per stream, in both directions, as rust-libp2p
 * and js-libp2p do.
 *
 * Outbound, per request of the behaviour: wait for a slot (at most `maxOutboundStreams` streams
 * at once; one until the remote has answered a negotiation, since js-libp2p's Yamux aborts a
 * connection that gets over 10 streams too early), open a stream on `protocolNames`, write the
 * request, close our side, read the response (none for `ADD_PROVIDER`). Each request has
 * `substreamsTimeout`, negotiation included; at the deadline its stream is reset and the
 * request fails with `Timeout`.
 *
 * Inbound (server mode only: a client lists no protocol, so remotes get `na`): read a request,
 * hand it to the behaviour with a channel to answer through, write the answer, and read the
 * next request on the same stream until the remote closes it. A stream may be idle at most
 * `substreamsTimeout` between requests. At most `maxInboundStreams` streams are served at once:
 * a further one replaces a stream idle after its first request, else it is reset. Messages are
 * at most `maxPacketSize` bytes both ways (`readFrame` refuses a larger one before buffering
 * it); a message that does not decode resets its stream.
 *
 * The handler also tells the behaviour whether the remote speaks Kademlia: confirmed by the
 * first negotiated stream in either direction, or by the remote's protocol list (identify).
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { NO_PROTOCOLS } from '../../behaviour/connection-handler.js'
import { readFrame, writeFrame } from '../../behaviour/framing.js'
import { describe, PeerswarmError, toError } from '../../core/errors.js'
import { deadline, withDeadline } from '../../core/timers.js'
import { decodeMessage, encodeMessage, MAX_PEERS_PER_LIST } from './message.js'
import type { Config, Mode } from './config.js'
import type { Deadline } from '../../core/timers.js'
import type { Message } from './message.js'
import type { QueryId } from './query.js'
import type { Context, Waker } from '../../behaviour/context.js'
import type { ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, SubstreamProtocol } from '../../behaviour/connection-handler.js'
import type { PeerId, Stream } from '@libp2p/interface'

const log = logger('peerswarm:kad')

/** Which query (and which of its phases) a request belongs to. */
export interface RequestTag {
  readonly queryId: QueryId
  readonly phase: number
}

/** What the behaviour tells a handler. */
export type FromBehaviour =
  | { readonly type: 'Request', readonly tag: RequestTag, readonly message: Message }
  | { readonly type: 'ReconfigureMode', readonly mode: Mode }

/** What a handler reports to its behaviour. */
export type ToBehaviour =
  | { readonly type: 'ProtocolConfirmed' }
  | { readonly type: 'ProtocolNotSupported' }
  /** A request of the remote's; answer it through `channel` (nothing to answer for `ADD_PROVIDER`). */
  | { readonly type: 'InboundRequest', readonly request: Message, readonly channel: InboundChannel }
  /** The answer to one of our requests (`undefined` for `ADD_PROVIDER`, which has none: it was sent). */
  | { readonly type: 'Response', readonly tag: RequestTag, readonly request: Message['type'], readonly response?: Message }
  | { readonly type: 'RequestFailed', readonly tag: RequestTag, readonly request: Message['type'], readonly error: RequestError }
  /** A remote's stream was reset for bad input (undecodable, oversized); counted by the behaviour. */
  | { readonly type: 'InboundError', readonly error: Error }

/** Why one of our requests to one peer failed. */
export type RequestErrorKind = 'Timeout' | 'UnsupportedProtocols' | 'UnexpectedMessage' | 'ConnectionClosed' | 'Io'

/** A request to one peer failed; `kind` says why and `cause` holds the underlying error. */
export class RequestError extends PeerswarmError {
  constructor (readonly kind: RequestErrorKind, message: string, cause?: unknown) {
    super(`ERR_KAD_REQUEST_${kind.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`, message, { cause })
  }
}

/** How the behaviour answers one inbound request; only the first answer counts. */
export class InboundChannel {
  private settled = false

  constructor (private readonly settle: (answer: Message | undefined) => void) {}

  /** Whether an answer is still expected. */
  get open (): boolean {
    return !this.settled
  }

  /** Send `response`; false if the channel was already answered or its stream is gone. */
  respond (response: Message): boolean {
    if (this.settled) return false
    this.settled = true
    this.settle(response)
    return true
  }

  /** Refuse the request: its stream is reset. */
  reset (): void {
    if (this.settled) return
    this.settled = true
    this.settle(undefined)
  }
}

/** What a handler is made of. */
export interface HandlerInit {
  readonly config: Config
  readonly mode: Mode
  /** The remote peer (for logs). */
  readonly peerId: PeerId
}

/** Reports held for the behaviour before inbound streams stop reading. */
const MAX_REPORTS = 64

interface Outbound {
  readonly tag: RequestTag
  readonly message: Message
  readonly deadline: number
  readonly controller: AbortController
  timer?: ReturnType<typeof setTimeout>
  done: boolean
  holdsSlot: boolean
}

interface Inbound {
  readonly stream: Stream
  /** Waiting for a request after the first: may be replaced by a new stream at the limit. */
  idle: boolean
  readonly controller: AbortController
}

/** The Kademlia handler of one connection. */
export class Handler implements ConnectionHandler<FromBehaviour, ToBehaviour> {
  private mode: Mode
  private readonly config: Config
  private readonly peerId: PeerId
  private readonly reports: ToBehaviour[] = []
  private readonly roomWaiters: Array<() => void> = []
  private readonly waiting: Outbound[] = []
  private readonly toOpen: Outbound[] = []
  private readonly pending = new Set<Outbound>()
  private busy = 0
  private remoteReady = false
  private readonly inbound = new Set<Inbound>()
  /** `supported` known and whether the behaviour was told. */
  private status?: { supported: boolean, reported: boolean }
  private readonly remoteProtocols = new Set<string>()
  private waker?: Waker
  private closed = false
  /** What `listenProtocol` answers in server mode, made once (asked on every turn of the connection's loop). */
  private serverListen?: SubstreamProtocol

  constructor (init: HandlerInit) {
    this.config = init.config
    this.mode = init.mode
    this.peerId = init.peerId
  }

  listenProtocol (): SubstreamProtocol {
    if (this.mode !== 'server') return NO_PROTOCOLS
    this.serverListen ??= { protocols: this.config.protocolNames }
    return this.serverListen
  }

  /** Kept alive while requests of ours wait for a stream or an answer. */
  connectionKeepAlive (): boolean {
    return this.pending.size > 0
  }

  onBehaviourEvent (event: FromBehaviour): void {
    if (event.type === 'ReconfigureMode') {
      this.mode = event.mode
      this.waker?.wake()
      return
    }
    const record: Outbound = {
      tag: event.tag,
      message: event.message,
      deadline: performance.now() + this.config.substreamsTimeout,
      controller: new AbortController(),
      done: false,
      holdsSlot: false
    }
    this.pending.add(record)
    record.timer = setTimeout(() => { this.timeOut(record) }, this.config.substreamsTimeout)
    this.waiting.push(record)
    this.fillSlots()
  }

  onConnectionEvent (event: ConnectionEvent): void {
    switch (event.type) {
      case 'FullyNegotiatedInbound':
        this.confirm()
        this.serve(event.stream)
        break
      case 'FullyNegotiatedOutbound': {
        const record = event.info as Outbound
        this.confirm()
        this.onRemoteReady()
        if (record.done) {
          event.stream.abort(new Error('the request timed out while its stream was negotiated'))
          this.releaseSlot(record)
          break
        }
        void this.exchange(record, event.stream)
        break
      }
      case 'DialUpgradeError': {
        const record = event.info as Outbound
        const { kind } = event.error
        if (kind === 'NegotiationFailed') this.onRemoteReady()
        this.releaseSlot(record)
        const error = kind === 'NegotiationFailed'
          ? new RequestError('UnsupportedProtocols', `the remote speaks none of ${this.config.protocolNames.join(', ')}`, event.error)
          : kind === 'Timeout'
            ? new RequestError('Timeout', 'the stream negotiation timed out', event.error)
            : new RequestError('Io', `opening a stream failed: ${event.error.message}`, event.error)
        this.fail(record, error)
        break
      }
      case 'RemoteProtocolsChange': {
        const { change } = event
        for (const protocol of change.protocols) {
          if (change.type === 'Added') this.remoteProtocols.add(protocol)
          else this.remoteProtocols.delete(protocol)
        }
        const supported = this.config.protocolNames.some(p => this.remoteProtocols.has(p))
        if (this.status?.supported !== supported) {
          this.status = { supported, reported: false }
          this.waker?.wake()
        }
        break
      }
      default:
    }
  }

  poll (cx: Context): ConnectionHandlerEvent<ToBehaviour> | undefined {
    this.waker = cx.waker
    if (this.status !== undefined && !this.status.reported) {
      this.status.reported = true
      return { type: 'NotifyBehaviour', event: { type: this.status.supported ? 'ProtocolConfirmed' : 'ProtocolNotSupported' } }
    }
    const report = this.reports.shift()
    if (report !== undefined) {
      this.roomWaiters.shift()?.()
      return { type: 'NotifyBehaviour', event: report }
    }
    for (let record = this.toOpen.shift(); record !== undefined; record = this.toOpen.shift()) {
      if (record.done) {
        this.releaseSlot(record)
        continue
      }
      const timeout = Math.max(1, Math.ceil(record.deadline - performance.now()))
      return { type: 'OutboundSubstreamRequest', protocol: { protocols: this.config.protocolNames, info: record, timeout } }
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
    for (const wake of this.roomWaiters.splice(0)) wake()
  }

  // ---- outbound ------------------------------------------------------------------------

  private confirm (): void {
    if (this.status === undefined) {
      this.status = { supported: true, reported: false }
      this.waker?.wake()
    }
  }

  private onRemoteReady (): void {
    if (this.remoteReady) return
    this.remoteReady = true
    this.fillSlots()
  }

  private fillSlots (): void {
    let added = false
    const slots = this.remoteReady ? this.config.maxOutboundStreams : 1
    while (this.busy < slots && this.waiting.length > 0) {
      const record = this.waiting.shift() as Outbound
      if (record.done) continue
      record.holdsSlot = true
      this.busy++
      this.toOpen.push(record)
      added = true
    }
    if (added) this.waker?.wake()
  }

  private releaseSlot (record: Outbound): void {
    if (!record.holdsSlot) return
    record.holdsSlot = false
    this.busy--
    if (!this.closed) this.fillSlots()
  }

  private timeOut (record: Outbound): void {
    if (record.done) return
    this.fail(record, new RequestError('Timeout', `no answer within ${this.config.substreamsTimeout} ms`))
    record.controller.abort(new RequestError('Timeout', 'the request timed out'))
  }

  private finish (record: Outbound, report: ToBehaviour): void {
    if (record.done) return
    record.done = true
    clearTimeout(record.timer)
    this.pending.delete(record)
    this.report(report)
  }

  private fail (record: Outbound, error: RequestError): void {
    this.finish(record, { type: 'RequestFailed', tag: record.tag, request: record.message.type, error })
  }

  private async exchange (record: Outbound, stream: Stream): Promise<void> {
    const { signal } = record.controller
    const maxSize = this.config.maxPacketSize
    try {
      await writeFrame(stream, encodeMessage(record.message), { maxSize, signal })
      await stream.close({ signal })
      if (record.message.type === 'ADD_PROVIDER') {
        this.finish(record, { type: 'Response', tag: record.tag, request: record.message.type })
        return
      }
      const bytes = await readFrame(stream, { maxSize, signal })
      const response = decodeMessage(bytes, this.limits())
      signal.throwIfAborted()
      if (response.type !== record.message.type) {
        stream.abort(new Error('unexpected response'))
        this.fail(record, new RequestError('UnexpectedMessage', `a ${response.type} answered a ${record.message.type}`))
        return
      }
      this.finish(record, { type: 'Response', tag: record.tag, request: record.message.type, response })
    } catch (err) {
      stream.abort(toError(err))
      if (!record.done) {
        log('%s to %p failed: %s', record.message.type, this.peerId, describe(err))
        this.fail(record, new RequestError('Io', describe(err), err))
      }
    } finally {
      this.releaseSlot(record)
    }
  }

  // ---- inbound -------------------------------------------------------------------------

  private serve (stream: Stream): void {
    if (this.mode !== 'server') {
      // Negotiated just before the switch to client mode.
      stream.abort(new Error('not serving Kademlia'))
      return
    }
    if (this.inbound.size >= this.config.maxInboundStreams) {
      const idle = [...this.inbound].find(entry => entry.idle)
      if (idle === undefined) {
        log('resetting an inbound stream of %p: %d streams already served', this.peerId, this.inbound.size)
        stream.abort(new Error('too many inbound Kademlia streams'))
        return
      }
      idle.controller.abort(new Error('replaced by a newer stream'))
      idle.stream.abort(new Error('replaced by a newer stream'))
      this.inbound.delete(idle)
    }
    const entry: Inbound = { stream, idle: false, controller: new AbortController() }
    this.inbound.add(entry)
    void this.serveStream(entry)
  }

  private async serveStream (entry: Inbound): Promise<void> {
    const { stream } = entry
    const maxSize = this.config.maxPacketSize
    let step: Deadline | undefined
    try {
      for (;;) {
        // One deadline per request: its read, the behaviour's answer and the write.
        step?.clear()
        step = deadline(this.config.substreamsTimeout, entry.controller.signal)
        const signal = step.signal
        let bytes: Uint8Array
        try {
          bytes = await readFrame(stream, { maxSize, signal })
        } catch (err) {
          // The remote closed its side between requests: the normal end.
          if (err instanceof Error && err.name === 'UnexpectedEOFError') break
          throw err
        }
        entry.idle = false
        const request = decodeMessage(bytes, this.limits())
        if (request.type === 'PING') {
          log('%p sent a deprecated PING; closing the stream', this.peerId)
          break
        }
        await this.roomForReports()
        if (this.closed) return
        if (request.type === 'ADD_PROVIDER') {
          this.report({ type: 'InboundRequest', request, channel: new InboundChannel(() => {}) })
          entry.idle = true
          continue
        }
        const answer = await new Promise<Message | undefined>((resolve) => {
          const onAbort = (): void => { channel.reset() }
          const channel = new InboundChannel((message) => {
            signal.removeEventListener('abort', onAbort)
            resolve(message)
          })
          signal.addEventListener('abort', onAbort, { once: true })
          this.report({ type: 'InboundRequest', request, channel })
        })
        if (answer === undefined) {
          signal.throwIfAborted()
          stream.abort(new Error('request refused'))
          return
        }
        await writeFrame(stream, encodeMessage(answer), { maxSize, signal })
        entry.idle = true
      }
      await withDeadline(this.config.substreamsTimeout, async signal => { await stream.close({ signal }) }).catch(() => { stream.abort(new Error('close timed out')) })
    } catch (err) {
      stream.abort(toError(err))
      if (this.closed || entry.controller.signal.aborted) return
      log('inbound stream of %p failed: %s', this.peerId, describe(err))
      this.report({ type: 'InboundError', error: toError(err) })
    } finally {
      step?.clear()
      this.inbound.delete(entry)
    }
  }

  /** Resolves once fewer than MAX_REPORTS wait for the behaviour (inbound streams pause meanwhile). */
  private async roomForReports (): Promise<void> {
    while (this.reports.length >= MAX_REPORTS && !this.closed) {
      await new Promise<void>(resolve => { this.roomWaiters.push(resolve) })
    }
  }

  private limits (): { maxPeers: number } {
    return { maxPeers: Math.max(MAX_PEERS_PER_LIST, this.config.replicationFactor) }
  }

  private report (event: ToBehaviour): void {
    if (this.closed) return
    this.reports.push(event)
    this.waker?.wake()
  }
}
