/**
 * The connection handler shared by FloodSub and GossipSub: one long-lived outbound stream
 * that we only write to, and the remote's inbound stream that we only read from (pubsub spec).
 *
 * - Writes are queued (bounded in bytes), coalesced (frames queued in a turn leave together,
 *   at most `MAX_WRITE` bytes per `send`) and, under back-pressure, stay in our queue until
 *   the stream's `drain` event: the stream is only handed what it accepts. Frames have a
 *   priority: `high` ones (control, our own messages) leave before `low` ones (forwarded
 *   messages), push them out of a full queue, and never expire; `low` ones older than
 *   `lowPriorityDeadline` are dropped instead of sent late. Dropped bytes are reported.
 * - Forwarded frames wait for the end of the event-loop turn they were queued in (so that a
 *   copy of the same message that the remote sent us in that turn cancels ours, below), and
 *   they never leave in the turn's flush of control or our own messages, but in a later one, so
 *   that every connection's control (above all GossipSub v1.2 IDONTWANT, sent just before the
 *   message is forwarded) reaches its socket before any connection's bulk forwards, which on a
 *   host whose uplink is one FIFO (`bench:gossipsub -- idontwant`, `BENCH_UPLINK=host`) would
 *   otherwise queue the last peer's IDONTWANT behind every other peer's copy. The muxer's
 *   transport coalesces what one turn writes, so a later `send` in the same turn would not do.
 * - A `low` frame may carry the key of its message's id: if the remote said it no longer wants
 *   that message (GossipSub v1.2 IDONTWANT), or sent it to us itself, it is dropped instead of
 *   sent (looked up in `unwanted` as the frame is about to be handed to the stream); such
 *   frames are reported too.
 * - Reads are parsed into RPCs and handed to the behaviour through a bounded queue; while it
 *   is full the inbound stream is paused, which stops Yamux's window towards the remote.
 * - A frame over the size limit or an undecodable RPC ends the inbound stream and is reported.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { describe, toError } from '../../core/errors.js'
import { nextTurn } from '../../next-turn.js'
import { FrameDecoder } from './framing.js'
import { decodeRpc } from './rpc.js'
import type { Rpc } from './rpc.js'
import type { Context, Waker } from '../../behaviour/context.js'
import type { ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, SubstreamProtocol } from '../../behaviour/connection-handler.js'
import type { Stream } from '@libp2p/interface'

const log = logger('peerswarm:pubsub:stream')

/** What the behaviour asks of a pubsub handler. */
export type HandlerIn =
  /**
   * Send these bytes: one or more complete, length-prefixed frames; `priority` defaults to
   * `high`. `id`: for a `low` frame carrying one message we pass on, the key of its id
   * (`messageIdKey`): the frame is dropped rather than written if, by the time its turn comes,
   * `unwanted` has that key.
   */
  | { readonly type: 'Send', readonly frames: Uint8Array, readonly priority?: 'high' | 'low', readonly id?: string }

/** What a pubsub handler reports. */
export type HandlerOut =
  | { readonly type: 'Rpc', readonly rpc: Rpc }
  /** Our outbound stream is open, speaking `protocol`. */
  | { readonly type: 'Ready', readonly protocol: string }
  /** The remote speaks none of our protocols. */
  | { readonly type: 'Unsupported' }
  /** The remote sent a frame over the limit or an undecodable RPC; its stream was reset. */
  | { readonly type: 'InvalidFrame', readonly error: Error }
  /** The remote does not read fast enough: `bytes` of our frames were dropped. */
  | { readonly type: 'SlowPeer', readonly droppedBytes: number }
  /**
   * Queued frames of `frames` messages (`bytes` in all) were dropped before being written
   * because the remote did not need them (their ids were in `unwanted`): `echoes` of them
   * because it had sent us the message itself, the others because it said IDONTWANT.
   */
  | { readonly type: 'Unwanted', readonly frames: number, readonly bytes: number, readonly echoes: number }

/** Options of a pubsub handler. */
export interface StreamHandlerConfig {
  /** Protocols in order of preference. */
  readonly protocols: readonly string[]
  /** Largest frame accepted. */
  readonly maxFrameSize: number
  /** Bytes queued for a peer before new frames are dropped. */
  readonly maxQueuedBytes: number
  /** RPCs read but not yet taken by the behaviour before the inbound stream is paused. */
  readonly maxReceivedRpcs: number
  /** Negotiation timeout, in ms. */
  readonly timeout: number
  /** Low-priority frames not written within this many ms are dropped (default: never). */
  readonly lowPriorityDeadline?: number
  /** Shared with the behaviour, which reserves the high-priority bytes it sends. */
  readonly gauge?: QueueGauge
  /**
   * The ids (keys) of messages the remote asked not to be sent, kept by the behaviour and
   * consulted as each `low` frame with an `id` is about to be written.
   */
  readonly unwanted?: UnwantedIds
}

/** A set of message id keys, as far as {@link UnwantedIds} asks. */
export interface IdKeys {
  has: (key: string) => boolean
}

/**
 * Ids of messages a remote does not need from us, as the behaviour keeps them, shared with the
 * connection's handler: those it said it no longer wants (GossipSub v1.2 IDONTWANT), and those
 * it sent us itself ({@link RecentIds}: its copy and ours crossed). The handler is made before
 * the behaviour knows the connection's peer, so the behaviour binds the peer's sets once the
 * connection is established; until then nothing is unwanted.
 */
export class UnwantedIds {
  private dontWant?: IdKeys
  private heard?: IdKeys

  /** From now on, `dontWant` (IDONTWANT) and `heard` (sent to us) say which id keys are unwanted. */
  bind (sets: { readonly dontWant?: IdKeys, readonly heard?: IdKeys }): void {
    this.dontWant = sets.dontWant
    this.heard = sets.heard
  }

  /** Whether the remote does not need the message whose id key is `key`. */
  has (key: string): boolean {
    return this.dontWant?.has(key) === true || this.heard?.has(key) === true
  }

  /** Whether the remote sent us the message whose id key is `key`, and did not say IDONTWANT for it. */
  echo (key: string): boolean {
    return this.heard?.has(key) === true && this.dontWant?.has(key) !== true
  }
}

/** How many message ids a remote sent us are remembered per peer ({@link RecentIds}). */
export const RECENT_IDS = 128

/**
 * The keys of the last messages (at most `capacity`) a remote sent us, oldest forgotten first:
 * a forward of one of them still waiting in that remote's queue is dropped, since the remote
 * has the message already (a copy of it that crossed ours in the same turn).
 */
export class RecentIds {
  private readonly keys = new Set<string>()

  constructor (readonly capacity: number = RECENT_IDS) {}

  /** Remember that the remote sent us the message whose id key is `key`. */
  add (key: string): void {
    const keys = this.keys
    if (keys.has(key)) return
    if (keys.size >= this.capacity) keys.delete(keys.values().next().value as string)
    keys.add(key)
  }

  /** Whether the remote sent us the message whose id key is `key`, lately. */
  has (key: string): boolean {
    return this.keys.has(key)
  }
}

/**
 * The high-priority bytes on their way to one handler or waiting in its queue. The behaviour
 * adds what it sends (`reserve`) and the handler releases what leaves, is dropped or discarded,
 * so that the behaviour can tell at once, without a round trip to the connection, whether a
 * peer's queue has room (e.g. to refuse a publish when every recipient's queue is full).
 */
export class QueueGauge {
  /** High-priority bytes reserved and not yet released. */
  bytes = 0

  constructor (readonly limit: number) {}

  /** Whether `size` more high-priority bytes fit. */
  hasRoom (size: number): boolean {
    return this.bytes + size <= this.limit
  }

  /** Count `size` bytes sent towards the handler. */
  reserve (size: number): void {
    this.bytes += size
  }

  /** The handler is done with `size` bytes. */
  release (size: number): void {
    this.bytes = Math.max(0, this.bytes - size)
  }
}

/**
 * Most bytes handed to the stream in one `send` (a larger frame goes alone). Under
 * back-pressure what a `send` was given waits in the stream's buffer, beyond the reach of
 * IDONTWANT and of priorities, so this bounds what can pile up there.
 */
export const MAX_WRITE = 64 * 1024
/** Re-open attempts after our outbound stream dies, with doubling delays (as go-libp2p-pubsub). */
const REOPEN_DELAYS = [100, 200, 400, 800]

/** The pubsub handler of one connection. */
export class StreamHandler implements ConnectionHandler<HandlerIn, HandlerOut> {
  private readonly reports: HandlerOut[] = []
  private readonly received: Rpc[] = []
  /** High-priority frames, oldest first. */
  private readonly queue: Uint8Array[] = []
  /** Low-priority frames with the time they were queued (and their message's id key), oldest first. */
  private readonly lowQueue: Array<{ readonly frames: Uint8Array, readonly at: number, readonly id?: string }> = []
  private queuedBytes = 0
  private droppedBytes = 0
  /** Frames dropped as unwanted and not reported yet, their bytes, and how many were echoes. */
  private unwantedFrames = 0
  private unwantedBytes = 0
  private unwantedEchoes = 0
  private outbound?: Stream
  private outboundState: 'wanted' | 'requested' | 'open' | 'waiting' | 'unsupported' | 'failed' = 'wanted'
  private reopenAttempts = 0
  private writing = false
  /** Set from a `send` of high-priority frames until the end-of-turn flush of what it sent. */
  private afterUrgent?: Promise<void>
  /** Set from the queueing of a low-priority frame until the end of that turn. */
  private lowHold?: Promise<void>
  private inbound?: Stream
  private inboundPaused = false
  private waker?: Waker
  private closed = false
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  /** Called whenever a round of writing ends (see `drain`). */
  private readonly writeWaiters: Array<() => void> = []

  constructor (private readonly config: StreamHandlerConfig) {}

  listenProtocol (): SubstreamProtocol {
    return { protocols: this.config.protocols, timeout: this.config.timeout }
  }

  /** The long-lived streams keep the connection alive while they are open. */
  connectionKeepAlive (): boolean {
    return false
  }

  onBehaviourEvent (event: HandlerIn): void {
    const size = event.frames.byteLength
    // A remote without our protocol, or whose stream could not be reopened, gets nothing.
    if (this.outboundState === 'unsupported' || this.outboundState === 'failed' || this.closed) {
      if (event.priority !== 'low') this.config.gauge?.release(size)
      return
    }
    if (event.priority === 'low') {
      if (this.queuedBytes + size > this.config.maxQueuedBytes) {
        this.drop(size)
        return
      }
      this.lowQueue.push({ frames: event.frames, at: Date.now(), id: event.id })
      // Held to the end of the turn: a copy the remote sent us in this turn cancels it.
      if (this.lowHold == null) this.lowHold = endOfTurn().then(() => { this.lowHold = undefined })
    } else {
      // Control and our own messages push forwarded messages out of a full queue.
      while (this.queuedBytes + size > this.config.maxQueuedBytes && this.lowQueue.length > 0) {
        const evicted = this.lowQueue.shift() as { frames: Uint8Array }
        this.queuedBytes -= evicted.frames.byteLength
        this.drop(evicted.frames.byteLength)
      }
      if (this.queuedBytes + size > this.config.maxQueuedBytes) {
        this.config.gauge?.release(size)
        this.drop(size)
        return
      }
      this.queue.push(event.frames)
    }
    this.queuedBytes += size
    this.flush()
  }

  onConnectionEvent (event: ConnectionEvent): void {
    switch (event.type) {
      case 'FullyNegotiatedInbound':
        this.readFrom(event.stream)
        break
      case 'FullyNegotiatedOutbound':
        this.outbound = event.stream
        this.outboundState = 'open'
        this.reopenAttempts = 0
        event.stream.addEventListener('close', () => { this.onOutboundClosed(event.stream) })
        this.reports.push({ type: 'Ready', protocol: event.protocol })
        this.flush()
        break
      case 'DialUpgradeError':
        if (event.error.kind === 'NegotiationFailed') {
          this.outboundState = 'unsupported'
          this.reports.push({ type: 'Unsupported' })
          this.discardQueue()
        } else {
          this.reopenLater()
        }
        // A drain waiting for this stream has nothing to wait for now, or must wait again.
        this.wakeWriteWaiters()
        break
      default:
    }
  }

  poll (cx: Context): ConnectionHandlerEvent<HandlerOut> | undefined {
    this.waker = cx.waker
    if (this.droppedBytes > 0) {
      const droppedBytes = this.droppedBytes
      this.droppedBytes = 0
      return { type: 'NotifyBehaviour', event: { type: 'SlowPeer', droppedBytes } }
    }
    if (this.unwantedFrames > 0) {
      const event: HandlerOut = { type: 'Unwanted', frames: this.unwantedFrames, bytes: this.unwantedBytes, echoes: this.unwantedEchoes }
      this.unwantedFrames = 0
      this.unwantedBytes = 0
      this.unwantedEchoes = 0
      return { type: 'NotifyBehaviour', event }
    }
    const report = this.reports.shift()
    if (report != null) return { type: 'NotifyBehaviour', event: report }
    const rpc = this.received.shift()
    if (rpc != null) {
      if (this.inboundPaused && this.received.length < this.config.maxReceivedRpcs / 2) {
        this.inboundPaused = false
        this.inbound?.resume()
      }
      return { type: 'NotifyBehaviour', event: { type: 'Rpc', rpc } }
    }
    if (this.outboundState === 'wanted' && !this.closed) {
      this.outboundState = 'requested'
      return { type: 'OutboundSubstreamRequest', protocol: { protocols: this.config.protocols, timeout: this.config.timeout } }
    }
    return undefined
  }

  /**
   * Write everything queued to the outbound stream (waiting for it if it is still being
   * opened), then close its writable end, which hands the stream's buffered bytes to the
   * muxer first. Resolves once done, or when nothing more can be written.
   */
  async drain (): Promise<void> {
    while (this.queued && !this.closed && this.outboundState !== 'unsupported' && this.outboundState !== 'failed') {
      // Either a round of writing ends, or the outbound stream opens or fails.
      const progress = new Promise<void>(resolve => { this.writeWaiters.push(resolve) })
      this.flush()
      await progress
    }
    const stream = this.outbound
    if (stream == null || this.closed) return
    try {
      await stream.close()
    } catch (err) {
      log('closing the outbound stream failed: %s', describe(err))
    }
  }

  close (): void {
    this.closed = true
    this.wakeWriteWaiters()
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
    this.discardQueue()
    this.outbound?.abort(new Error('connection closed'))
    this.inbound?.abort(new Error('connection closed'))
  }

  private readFrom (stream: Stream): void {
    // A new inbound stream from the same peer replaces the old one (go-libp2p-pubsub does so).
    this.inbound?.abort(new Error('replaced by a new inbound stream'))
    this.inbound = stream
    this.inboundPaused = false
    const decoder = new FrameDecoder(this.config.maxFrameSize)
    stream.addEventListener('message', (evt) => {
      if (this.inbound !== stream) return
      try {
        for (const frame of decoder.decode(evt.data)) this.received.push(decodeRpc(frame))
      } catch (err) {
        log('invalid frame from the remote: %s', describe(err))
        this.reports.push({ type: 'InvalidFrame', error: toError(err) })
        this.inbound = undefined
        stream.abort(toError(err))
      }
      if (this.received.length >= this.config.maxReceivedRpcs && !this.inboundPaused && this.inbound === stream) {
        this.inboundPaused = true
        stream.pause()
      }
      this.waker?.wake()
    })
    stream.addEventListener('close', () => {
      if (this.inbound === stream) this.inbound = undefined
    })
  }

  private drop (bytes: number): void {
    if (this.droppedBytes === 0) this.waker?.wake()
    this.droppedBytes += bytes
  }

  private get queued (): boolean {
    return this.queue.length > 0 || this.lowQueue.length > 0
  }

  /** Write what is queued, coalesced, honouring back-pressure. One writer at a time. */
  private flush (): void {
    if (this.writing || this.outbound == null || !this.queued) return
    this.writing = true
    queueMicrotask(() => { void this.drainQueue() })
  }

  private async drainQueue (): Promise<void> {
    try {
      while (this.queued && this.outbound != null && !this.closed) {
        const stream = this.outbound
        // Forwards wait until the control or our own messages handed over before them are
        // flushed, and until the end of the turn they were queued in.
        if (this.queue.length === 0) {
          const hold = this.afterUrgent ?? this.lowHold
          if (hold != null) {
            await hold
            continue
          }
        }
        const taken = this.takeChunk()
        if (taken == null) break
        const accepted = stream.send(taken.chunk)
        // Scheduled after the send, so after the transport's flush of this turn's writes.
        if (taken.urgent && this.afterUrgent == null) {
          this.afterUrgent = endOfTurn().then(() => { this.afterUrgent = undefined })
        }
        if (!accepted) await waitForDrain(stream)
      }
    } catch (err) {
      log('writing to the remote failed: %s', describe(err))
    } finally {
      this.writing = false
      if (this.queued && this.outbound != null && !this.closed) this.flush()
      this.wakeWriteWaiters()
    }
  }

  private wakeWriteWaiters (): void {
    for (const wake of this.writeWaiters.splice(0)) wake()
  }

  /**
   * Frames from the front of the queues joined up to `MAX_WRITE` bytes: high-priority ones
   * (`urgent`) while any wait, else low-priority ones; those past their deadline, or whose
   * message the remote no longer wants, are dropped on the way. Undefined if none is left.
   */
  private takeChunk (): { chunk: Uint8Array, urgent: boolean } | undefined {
    const deadline = this.config.lowPriorityDeadline
    if (deadline != null) {
      const oldest = Date.now() - deadline
      while (this.lowQueue.length > 0 && this.lowQueue[0].at < oldest) {
        const expired = this.lowQueue.shift() as { frames: Uint8Array }
        this.queuedBytes -= expired.frames.byteLength
        this.drop(expired.frames.byteLength)
      }
    }
    const parts: Uint8Array[] = []
    let size = 0
    const room = (next: Uint8Array | undefined): next is Uint8Array => next != null && (parts.length === 0 || size + next.byteLength <= MAX_WRITE)
    while (room(this.queue[0])) {
      const next = this.queue.shift() as Uint8Array
      parts.push(next)
      size += next.byteLength
    }
    this.config.gauge?.release(size)
    const urgent = parts.length > 0
    // Forwarded frames only once no high-priority frame is waiting, and in a write of their own.
    const unwanted = this.config.unwanted
    while (!urgent && room(this.lowQueue[0]?.frames)) {
      const next = this.lowQueue.shift() as { frames: Uint8Array, id?: string }
      if (next.id !== undefined && unwanted?.has(next.id) === true) {
        this.queuedBytes -= next.frames.byteLength
        if (this.unwantedFrames === 0) this.waker?.wake()
        this.unwantedFrames++
        this.unwantedBytes += next.frames.byteLength
        if (unwanted.echo(next.id)) this.unwantedEchoes++
        continue
      }
      parts.push(next.frames)
      size += next.frames.byteLength
    }
    if (parts.length === 0) return undefined
    this.queuedBytes -= size
    if (parts.length === 1) return { chunk: parts[0], urgent }
    const chunk = new Uint8Array(size)
    let offset = 0
    for (const part of parts) {
      chunk.set(part, offset)
      offset += part.byteLength
    }
    return { chunk, urgent }
  }

  private onOutboundClosed (stream: Stream): void {
    if (this.outbound !== stream) return
    this.outbound = undefined
    if (this.closed) return
    this.reopenLater()
  }

  private reopenLater (): void {
    const delay = REOPEN_DELAYS[this.reopenAttempts++]
    if (delay == null) {
      this.outboundState = 'failed'
      this.discardQueue()
      return
    }
    this.outboundState = 'waiting'
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      if (this.closed) return
      this.outboundState = 'wanted'
      this.waker?.wake()
    }, delay)
    this.timers.add(timer)
  }

  private discardQueue (): void {
    for (const frames of this.queue) this.config.gauge?.release(frames.byteLength)
    this.queue.length = 0
    this.lowQueue.length = 0
    this.queuedBytes = 0
  }
}

/**
 * Resolves at the end of this turn of the event loop, once what was written before it has been
 * flushed (the `SecureChannel` schedules its flush with the same `nextTurn`, earlier); what is
 * sent then is flushed by a later drain of the same turn.
 */
async function endOfTurn (): Promise<void> {
  await new Promise<void>(resolve => { nextTurn(resolve) })
}

/** Resolves on the stream's next `drain`, rejects if it closes first. */
async function waitForDrain (stream: Stream): Promise<void> {
  // `onDrain()` of @libp2p/utils 7.4.1 resolves at once after its first use; use the event.
  await new Promise<void>((resolve, reject) => {
    const onDrain = (): void => {
      stream.removeEventListener('close', onClose)
      resolve()
    }
    const onClose = (): void => {
      stream.removeEventListener('drain', onDrain)
      reject(new Error('stream closed while writing'))
    }
    stream.addEventListener('drain', onDrain, { once: true })
    stream.addEventListener('close', onClose, { once: true })
  })
}
