/**
 * The connection handler shared by FloodSub and GossipSub: one long-lived outbound stream
 * that we only write to, and the remote's inbound stream that we only read from (pubsub spec).
 *
 * - The behaviour's frames wait in a `WriteQueue` (`write-queue.ts`: bounded in bytes, two
 *   priorities, low-priority frames expired or dropped as unwanted, coalesced into writes of at
 *   most `MAX_WRITE` bytes); the bytes it drops and the frames it drops as unwanted are
 *   reported to the behaviour.
 * - One writer at a time hands the stream what the queue gives and, under back-pressure, waits
 *   for the stream's `drain` event: the stream is only handed what it accepts, and the rest
 *   stays in our queue, within reach of priorities and IDONTWANT.
 * - Forwarded frames wait for the end of the event-loop turn they were queued in (so that a
 *   copy of the same message that the remote sent us in that turn cancels ours, see
 *   `UnwantedIds`), and they never leave in the turn's flush of control or our own messages,
 *   but in a later one, so that every connection's control (above all GossipSub v1.2
 *   IDONTWANT, sent just before the message is forwarded) reaches its socket before any
 *   connection's bulk forwards, which on a host whose uplink is one FIFO (`bench:gossipsub --
 *   idontwant`, `BENCH_UPLINK=host`) would otherwise queue the last peer's IDONTWANT behind
 *   every other peer's copy. The muxer's transport coalesces what one turn writes, so a later
 *   `send` in the same turn would not do.
 * - Our outbound stream is reopened when it dies, with doubling delays, a few times before we
 *   give up; a remote that speaks none of our protocols is reported and gets nothing.
 * - Reads are cut into frames and handed to the behaviour through a queue bounded in frames
 *   (`maxReceivedRpcs`) and in their bytes (`maxReceivedBytes`, 1 MiB by default): once either
 *   is reached the inbound stream is paused, which stops Yamux's window towards the remote,
 *   and it is resumed when the behaviour has taken the queue below half of both. (Counted
 *   alone, 64 RPCs of up to 1 MiB each let one peer make us hold 64 MiB.) A frame is decoded
 *   into an RPC only as the behaviour takes it: a paused stream hands over what Yamux buffered
 *   for it (up to its window) in one read on resume, and that waits as bytes, not as objects.
 *   It is also paused while the behaviour holds it (`HoldInbound`: GossipSub ignores a
 *   graylisted peer), so that a peer whose RPCs would be dropped unread costs no more reads,
 *   decryption or buffers than one window of Yamux.
 * - A frame over the size limit or an undecodable RPC ends the inbound stream and is reported.
 * - Keep-alive: the two long-lived streams do not keep the connection open
 *   (`ignoreForKeepAlive`; they never close while the peer is connected, so every connection
 *   with a pubsub peer would stay open forever). The handler keeps it while its behaviour says
 *   the peer shares a topic with us (`KeepAlive`, sent only when that answer changes, never
 *   per message) or while it has work: frames queued or being written, RPCs or reports not yet
 *   taken by the behaviour. A peer we share nothing with lets the connection idle out after the
 *   swarm's `idleConnectionTimeout`.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { describe, toError } from '../../core/errors.js'
import { nextTurn } from '../../next-turn.js'
import { FrameDecoder } from '../../behaviour/framing.js'
import { ignoreForKeepAlive } from '../../behaviour/connection-handler.js'
import { decodeRpc } from './rpc.js'
import { WriteQueue } from './write-queue.js'
import type { Rpc } from './rpc.js'
import type { QueueGauge, UnwantedIds } from './peer-state.js'
import type { Context, Waker } from '../../behaviour/context.js'
import type { ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, SubstreamProtocol } from '../../behaviour/connection-handler.js'
import type { Stream } from '@libp2p/interface'

const log = logger('peerswarm:pubsub:stream')

/** What the behaviour asks of a pubsub handler. */
export type FromBehaviour =
  /**
   * Send these bytes: one or more complete, length-prefixed frames; `priority` defaults to
   * `high`. `id`: for a `low` frame carrying one message we pass on, the key of its id
   * (`messageIdKey`): the frame is dropped rather than written if, by the time its turn comes,
   * `unwanted` has that key.
   */
  | { readonly type: 'Send', readonly frames: Uint8Array, readonly priority?: 'high' | 'low', readonly id?: string }
  /**
   * Keep the connection open (`value: true`) because the peer shares a topic with us (or the
   * application asked to stay connected to it), or stop doing so. Sent when the answer
   * changes, and to a new connection of a peer for which it is already true.
   */
  | { readonly type: 'KeepAlive', readonly value: boolean }
  /**
   * Stop reading the remote's stream (`value: true`) because the behaviour ignores what the
   * peer sends (GossipSub: its score is below `graylistThreshold`), or read it again. While
   * held, the stream stays paused (Yamux stops the remote's window once what is in flight has
   * arrived), a new inbound stream of the peer is paused as it arrives, and RPCs already read
   * are still handed over. Sent when the answer changes, and to a new connection of a held peer.
   */
  | { readonly type: 'HoldInbound', readonly value: boolean }

/** What a pubsub handler reports to its behaviour. */
export type ToBehaviour =
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

/** @deprecated Use FromBehaviour. */
export type HandlerIn = FromBehaviour

/** @deprecated Use ToBehaviour. */
export type HandlerOut = ToBehaviour

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
  /**
   * Bytes of the frames of those RPCs before the inbound stream is paused (default
   * `MAX_RECEIVED_BYTES`); one frame larger than this pauses it alone.
   */
  readonly maxReceivedBytes?: number
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

/**
 * Default `maxReceivedBytes`: 1 MiB of received frames waiting for the behaviour per
 * connection (one frame of the default `maxTransmitSize`).
 */
export const MAX_RECEIVED_BYTES = 1024 * 1024

/** Re-open attempts after our outbound stream dies, with doubling delays (as go-libp2p-pubsub). */
const REOPEN_DELAYS = [100, 200, 400, 800]

/** A frame read and not yet taken, or, in its place, the error that refused it. */
type Received =
  | { readonly frame: Uint8Array, readonly error?: undefined, readonly stream: Stream }
  | { readonly frame?: undefined, readonly error: Error, readonly stream: Stream }

/** The pubsub handler of one connection. */
export class StreamHandler implements ConnectionHandler<FromBehaviour, ToBehaviour> {
  private readonly reports: ToBehaviour[] = []
  /**
   * Frames read but not yet taken by the behaviour, with the stream they came from: each is
   * decoded as it is taken, so that what is read in one event (a paused stream's buffer, up to
   * its Yamux window, arrives at once on resume) waits as bytes, not as decoded RPCs. A frame
   * refused as it was read (over the size limit) waits in its place as its error.
   */
  private readonly received: Received[] = []
  /** The bytes of the frames in `received`. */
  private receivedBytes = 0
  private readonly maxReceivedBytes: number
  /** Frames waiting to be written. */
  private readonly queue: WriteQueue
  private outbound?: Stream
  private outboundState: 'wanted' | 'requested' | 'open' | 'waiting' | 'unsupported' | 'failed' = 'wanted'
  private reopenAttempts = 0
  private writing = false
  /** Set from a `send` of high-priority frames until the end-of-turn flush of what it sent. */
  private afterUrgent?: Promise<void>
  /** Set from the queueing of a low-priority frame until the end of that turn. */
  private lowHold?: Promise<void>
  private inbound?: Stream
  /** Paused because the RPCs read wait for the behaviour (`maxReceivedRpcs`, `maxReceivedBytes`). */
  private queueFull = false
  /** Paused because the behaviour said so (`HoldInbound`). */
  private held = false
  /** Whether `inbound` is paused now: `queueFull || held`. */
  private inboundPaused = false
  private waker?: Waker
  private closed = false
  /** What the behaviour last said: the peer shares a topic with us. */
  private keepAlive = false
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  /** Called whenever a round of writing ends (see `drain`). */
  private readonly writeWaiters: Array<() => void> = []

  /** What `listenProtocol` answers, made once (the connection asks on every turn of its loop). */
  private listen?: SubstreamProtocol

  constructor (private readonly config: StreamHandlerConfig) {
    this.queue = new WriteQueue(config, () => { this.waker?.wake() })
    this.maxReceivedBytes = config.maxReceivedBytes ?? MAX_RECEIVED_BYTES
  }

  listenProtocol (): SubstreamProtocol {
    this.listen ??= { protocols: this.config.protocols, timeout: this.config.timeout }
    return this.listen
  }

  /**
   * While the peer shares a topic with us (the behaviour's `KeepAlive`) or we have work for it
   * or from it; the long-lived streams themselves do not count (see the module documentation).
   *
   * @group Called by the connection
   */
  connectionKeepAlive (): boolean {
    return this.keepAlive || this.writing || !this.queue.empty || this.received.length > 0 || this.reports.length > 0
  }

  onBehaviourEvent (event: FromBehaviour): void {
    if (event.type === 'KeepAlive') {
      // The connection re-reads connectionKeepAlive once it has delivered the event.
      this.keepAlive = event.value
      return
    }
    if (event.type === 'HoldInbound') {
      this.held = event.value
      this.applyPause()
      return
    }
    // A remote without our protocol, or whose stream could not be reopened, gets nothing.
    if (this.outboundState === 'unsupported' || this.outboundState === 'failed' || this.closed) {
      if (event.priority !== 'low') this.config.gauge?.release(event.frames.byteLength)
      return
    }
    if (event.priority === 'low') {
      if (!this.queue.pushLow(event.frames, event.id)) return
      // Held to the end of the turn: a copy the remote sent us in this turn cancels it.
      if (this.lowHold == null) this.lowHold = endOfTurn().then(() => { this.lowHold = undefined })
    } else if (!this.queue.pushHigh(event.frames)) {
      return
    }
    this.flush()
  }

  onConnectionEvent (event: ConnectionEvent): void {
    switch (event.type) {
      case 'FullyNegotiatedInbound':
        ignoreForKeepAlive(event.stream)
        this.readFrom(event.stream)
        break
      case 'FullyNegotiatedOutbound':
        ignoreForKeepAlive(event.stream)
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
          this.queue.discard()
        } else {
          this.reopenLater()
        }
        // A drain waiting for this stream has nothing to wait for now, or must wait again.
        this.wakeWriteWaiters()
        break
      default:
    }
  }

  poll (cx: Context): ConnectionHandlerEvent<ToBehaviour> | undefined {
    this.waker = cx.waker
    const queue = this.queue
    const droppedBytes = queue.takeDropped()
    if (droppedBytes > 0) return { type: 'NotifyBehaviour', event: { type: 'SlowPeer', droppedBytes } }
    if (queue.unwantedFrames > 0) {
      const event: ToBehaviour = { type: 'Unwanted', frames: queue.unwantedFrames, bytes: queue.unwantedBytes, echoes: queue.unwantedEchoes }
      queue.clearUnwanted()
      return { type: 'NotifyBehaviour', event }
    }
    const report = this.reports.shift()
    if (report != null) return { type: 'NotifyBehaviour', event: report }
    const next = this.received.shift()
    if (next != null) {
      if (next.frame != null) this.receivedBytes -= next.frame.byteLength
      if (this.queueFull && this.received.length < this.config.maxReceivedRpcs / 2 && this.receivedBytes < this.maxReceivedBytes / 2) {
        this.queueFull = false
        this.applyPause()
      }
      if (next.frame == null) return { type: 'NotifyBehaviour', event: { type: 'InvalidFrame', error: next.error } }
      let rpc: Rpc
      try {
        rpc = decodeRpc(next.frame)
      } catch (err) {
        // The stream ends here: what it sent after this frame goes with it.
        this.endInbound(next.stream, err)
        for (let i = this.received.length - 1; i >= 0; i--) {
          const later = this.received[i]
          if (later.stream !== next.stream) continue
          if (later.frame != null) this.receivedBytes -= later.frame.byteLength
          this.received.splice(i, 1)
        }
        return { type: 'NotifyBehaviour', event: { type: 'InvalidFrame', error: toError(err) } }
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
   *
   * @group Called by the connection
   */
  async drain (): Promise<void> {
    while (!this.queue.empty && !this.closed && this.outboundState !== 'unsupported' && this.outboundState !== 'failed') {
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
    this.queue.discard()
    this.outbound?.abort(new Error('connection closed'))
    this.inbound?.abort(new Error('connection closed'))
  }

  private readFrom (stream: Stream): void {
    // A new inbound stream from the same peer replaces the old one (go-libp2p-pubsub does so).
    this.inbound?.abort(new Error('replaced by a new inbound stream'))
    this.inbound = stream
    this.inboundPaused = false
    this.applyPause()
    const decoder = new FrameDecoder(this.config.maxFrameSize)
    stream.addEventListener('message', (evt) => {
      if (this.inbound !== stream) return
      try {
        for (const frame of decoder.decode(evt.data)) {
          this.received.push({ frame, stream })
          this.receivedBytes += frame.byteLength
        }
      } catch (err) {
        // Reported after the frames read before it, which still reach the behaviour.
        this.endInbound(stream, err)
        this.received.push({ error: toError(err), stream })
      }
      if (!this.queueFull && this.inbound === stream && (this.received.length >= this.config.maxReceivedRpcs || this.receivedBytes >= this.maxReceivedBytes)) {
        this.queueFull = true
        this.applyPause()
      }
      this.waker?.wake()
    })
    stream.addEventListener('close', () => {
      if (this.inbound === stream) this.inbound = undefined
    })
  }

  /** A frame of `stream` over the size limit, or one that is no RPC: the stream ends. */
  private endInbound (stream: Stream, err: unknown): void {
    log('invalid frame from the remote: %s', describe(err))
    if (this.inbound === stream) this.inbound = undefined
    stream.abort(toError(err))
  }

  /** Pause or resume the inbound stream as `queueFull` and `held` say. */
  private applyPause (): void {
    const stream = this.inbound
    const pause = this.queueFull || this.held
    if (stream == null || pause === this.inboundPaused) return
    this.inboundPaused = pause
    if (pause) stream.pause()
    else stream.resume()
  }

  /** Write what is queued, coalesced, honouring back-pressure. One writer at a time. */
  private flush (): void {
    if (this.writing || this.outbound == null || this.queue.empty) return
    this.writing = true
    queueMicrotask(() => { void this.drainQueue() })
  }

  private async drainQueue (): Promise<void> {
    try {
      while (!this.queue.empty && this.outbound != null && !this.closed) {
        const stream = this.outbound
        // Forwards wait until the control or our own messages handed over before them are
        // flushed, and until the end of the turn they were queued in.
        if (!this.queue.urgent) {
          const hold = this.afterUrgent ?? this.lowHold
          if (hold != null) {
            await hold
            continue
          }
        }
        const taken = this.queue.take()
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
      if (!this.queue.empty && this.outbound != null && !this.closed) this.flush()
      this.wakeWriteWaiters()
      // Work was all that kept the connection: let it see that it may now be idle. (While the
      // peer shares a topic the answer stays true, and writes cost no wake.)
      if (!this.keepAlive && this.queue.empty) this.waker?.wake()
    }
  }

  private wakeWriteWaiters (): void {
    for (const wake of this.writeWaiters.splice(0)) wake()
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
      this.queue.discard()
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
