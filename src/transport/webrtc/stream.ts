/**
 * A libp2p stream over one WebRTC data channel, as the spec frames it (`message.ts`): a
 * js-libp2p v3 `Stream` (over `@libp2p/utils`' `AbstractStream`, as Yamux's streams are), so
 * the swarm handles it as it handles any muxed stream.
 *
 * - Writes are cut into framed messages of at most 16 KiB. Back-pressure is the channel's
 *   `bufferedAmount`: once it reaches `maxBufferedAmount`, `send()` returns false and the
 *   stream's `drain` event waits for the channel's "buffered amount low" (at half of it).
 *   `drain` comes only once the stream has handed all it holds to the channel, so a writer that
 *   waits for it after `send()` returned false has at most one write in the stream's buffer.
 * - Streams take turns: one sends at most one full message per turn of the event loop,
 *   then `send()` returns false until the next macrotask. libdatachannel hands messages to
 *   SCTP at once and SCTP sends them in the order queued, so without turns ten streams
 *   writing 1 MiB each finished one after another (measured: first at 8% of the time).
 * - `close()` sends FIN and waits for the remote's FIN_ACK (up to `finAckTimeout`), so that the
 *   channel is closed only once the remote has everything; a FIN received is answered with
 *   FIN_ACK. `closeRead()` sends STOP_SENDING; `abort()` sends RESET_STREAM.
 * - The channel is closed when both directions are, once what it buffers has left (up to
 *   `drainTimeout`): closing a data channel resets its SCTP stream, which can drop data.
 * - A malformed frame or one over the limit resets this stream only, with a typed error.
 *
 * @module
 */
import { AbstractStream } from '@libp2p/utils'
import { Flag, MAX_PAYLOAD_SIZE, WebRTCMalformedFrameError, MessageDecoder, encodeMessage } from './message.js'
import type { AbortOptions, Logger, MessageStreamDirection } from '@libp2p/interface'
import type { SendResult } from '@libp2p/utils'
import type { Uint8ArrayList } from 'uint8arraylist'

/**
 * The part of a WebRTC data channel a stream uses: node-datachannel's `DataChannel` has this
 * shape; a browser `RTCDataChannel` is adapted to it; unit tests use a fake.
 *
 * @group Transports
 */
export interface DataChannel {
  getId: () => number
  sendMessageBinary: (buffer: Uint8Array) => boolean
  bufferedAmount: () => number
  setBufferedAmountLowThreshold: (size: number) => void
  isOpen: () => boolean
  close: () => void
  onOpen: (cb: () => void) => void
  onClosed: (cb: () => void) => void
  onError: (cb: (err: string) => void) => void
  onBufferedAmountLow: (cb: () => void) => void
  onMessage: (cb: (msg: string | Uint8Array | ArrayBuffer) => void) => void
}

/**
 * Options of the streams of a WebRTC connection.
 *
 * @group Transports
 */
export interface DataChannelStreamOptions {
  /** Bytes a channel may buffer before `send()` returns false (default 1 MiB). */
  readonly maxBufferedAmount?: number
  /** How long `close()` waits for the remote's FIN_ACK before closing anyway (default 10 s). */
  readonly finAckTimeout?: number
  /** How long a closing channel may take to send what it buffers (default 30 s). */
  readonly drainTimeout?: number
  /** Bytes received and not yet read before the stream is reset (default 4 MiB). */
  readonly maxReadBufferLength?: number
}

/** Defaults of {@link DataChannelStreamOptions}. */
export const DEFAULT_STREAM_OPTIONS = {
  maxBufferedAmount: 1024 * 1024,
  finAckTimeout: 10_000,
  drainTimeout: 30_000,
  maxReadBufferLength: 4 * 1024 * 1024
} as const

/**
 * Bytes a stream sends in one turn of the event loop before it lets the other streams of the
 * connection write (it resumes at the next macrotask): one full message. Measured with ten
 * 1 MiB streams on loopback: one message per turn, all ten finish within 2% of each other at
 * the same total rate as without turns; 256 KiB turns, the first finished at 22% of the time.
 */
const SEND_QUANTUM = MAX_PAYLOAD_SIZE

/** Callbacks waiting for their macrotask, and the port that posts one message for each (pages). */
const waiting: Array<() => void> = []
let port: MessagePort | undefined

/**
 * Run `fn` at the next macrotask: `setImmediate` where there is one (Node), else a message on
 * a `MessageChannel` (pages). Not `setTimeout`: browsers clamp a chain of them to 4 ms, which
 * capped one stream at 16 KiB per 4 ms (measured 2.8 MiB/s between two pages), and throttle
 * them in background tabs to one a second.
 */
function nextMacrotask (fn: () => void): void {
  const immediate = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate
  if (immediate != null) {
    immediate(fn)
    return
  }
  if (port == null && typeof MessageChannel === 'function') {
    const channel = new MessageChannel()
    channel.port1.onmessage = () => { waiting.shift()?.() }
    // Node (without setImmediate, i.e. in tests) keeps running while a port listens: not for this one.
    ;(channel.port1 as { unref?: () => void }).unref?.()
    port = channel.port2
  }
  if (port == null) {
    setTimeout(fn, 0)
    return
  }
  waiting.push(fn)
  port.postMessage(null)
}

/** What a stream is made with. */
export interface DataChannelStreamInit extends DataChannelStreamOptions {
  readonly channel: DataChannel
  readonly direction: MessageStreamDirection
  readonly log: Logger
  /** Told of a frame that broke the spec (for the connection's counters). */
  readonly onBadFrame?: (err: Error) => void
}

/**
 * A libp2p stream over one data channel (see the module comment).
 *
 * @group Transports
 */
export class DataChannelStream extends AbstractStream {
  private readonly channel: DataChannel
  private readonly decoder = new MessageDecoder()
  private readonly maxBufferedAmount: number
  private readonly finAckTimeout: number
  private readonly drainTimeout: number
  private readonly onBadFrame?: (err: Error) => void
  private finAcked?: () => void
  private channelClosed = false
  private closingChannel = false
  /** Bytes sent in this turn of the event loop, and whether the turn's end is scheduled. */
  private turnBytes = 0
  private turnScheduled = false
  /** Callbacks waiting for the channel's buffer to empty (closing). */
  private readonly emptied: Array<() => void> = []

  constructor (init: DataChannelStreamInit) {
    const id = init.channel.getId()
    super({
      id: String(id),
      direction: init.direction,
      log: init.log.newScope(`${init.direction}:${id}`),
      maxMessageSize: MAX_PAYLOAD_SIZE,
      maxReadBufferLength: init.maxReadBufferLength ?? DEFAULT_STREAM_OPTIONS.maxReadBufferLength
    })
    this.channel = init.channel
    this.maxBufferedAmount = init.maxBufferedAmount ?? DEFAULT_STREAM_OPTIONS.maxBufferedAmount
    this.finAckTimeout = init.finAckTimeout ?? DEFAULT_STREAM_OPTIONS.finAckTimeout
    this.drainTimeout = init.drainTimeout ?? DEFAULT_STREAM_OPTIONS.drainTimeout
    this.onBadFrame = init.onBadFrame
    this.channel.setBufferedAmountLowThreshold(Math.floor(this.maxBufferedAmount / 2))
    this.channel.onBufferedAmountLow(() => { this.onBufferedAmountLow() })
    this.channel.onMessage((msg) => { this.onChannelMessage(msg) })
    this.channel.onClosed(() => { this.onChannelClosed() })
    this.channel.onError((err) => { this.log('channel error %s', err) })
    this.addEventListener('close', () => { this.closeChannel() })
  }

  sendData (data: Uint8ArrayList): SendResult {
    let sentBytes = 0
    for (const chunk of data) {
      for (let offset = 0; offset < chunk.byteLength; offset += MAX_PAYLOAD_SIZE) {
        const piece = chunk.subarray(offset, offset + MAX_PAYLOAD_SIZE)
        this.channel.sendMessageBinary(encodeMessage({ message: piece }))
        sentBytes += piece.byteLength
      }
    }
    // Take turns: the SCTP stacks queue every channel's messages in one line, so a stream that
    // wrote all it has at once would hold the others back until its last byte left.
    this.turnBytes += sentBytes
    const turnOver = this.turnBytes >= SEND_QUANTUM
    if (turnOver && !this.turnScheduled) {
      this.turnScheduled = true
      nextMacrotask(() => {
        this.turnScheduled = false
        this.turnBytes = 0
        this.resumeSending()
      })
    }
    return { sentBytes, canSendMore: !turnOver && this.channel.bufferedAmount() < this.maxBufferedAmount }
  }

  sendReset (): void {
    this.sendFlag(Flag.RESET_STREAM)
    this.closeChannel()
  }

  async sendCloseWrite (options?: AbortOptions): Promise<void> {
    if (!this.sendFlag(Flag.FIN)) return
    // Wait for the remote's FIN_ACK: after it, closing the channel loses nothing.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.finAckTimeout)
      const signal = options?.signal
      signal?.addEventListener('abort', done, { once: true })
      this.finAcked = done
      const self = this
      function done (): void {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        self.finAcked = undefined
        resolve()
      }
      if (this.channelClosed) done()
    })
  }

  async sendCloseRead (): Promise<void> {
    this.sendFlag(Flag.STOP_SENDING)
  }

  sendPause (): void {
    // The spec has no flow control of its own: SCTP's receive window is the only one.
  }

  sendResume (): void {}

  /** Send a message carrying only `flag`; false if the channel cannot take it. */
  private sendFlag (flag: Flag): boolean {
    if (this.channelClosed || !this.channel.isOpen()) return false
    try {
      this.channel.sendMessageBinary(encodeMessage({ flag }))
      return true
    } catch (err) {
      this.log('could not send flag %d: %s', flag, err)
      return false
    }
  }

  private onBufferedAmountLow (): void {
    for (const cb of this.emptied.splice(0)) cb()
    if (!this.turnScheduled) this.resumeSending()
  }

  /**
   * The channel can take more: send what the stream still holds, and only once that is all
   * with the channel tell the writer (`drain`). A `drain` while the stream holds bytes would let
   * a writer add a whole write for every message that leaves (one per turn), and the stream's
   * write buffer would grow to all the writer has (measured: 768 KiB of a 1 MiB stream written
   * 64 KiB at a time).
   */
  private resumeSending (): void {
    if (!this.writableNeedsDrain || this.channel.bufferedAmount() >= this.maxBufferedAmount) return
    if (this.writeBufferLength > 0) {
      this.writableNeedsDrain = false
      try {
        // False, with writableNeedsDrain set again, until the turn or the channel lets it go on.
        if (!this.processSendQueue()) return
      } catch {
        // processSendQueue has aborted the stream.
        return
      }
    }
    this.safeDispatchEvent('drain')
  }

  private onChannelMessage (msg: string | Uint8Array | ArrayBuffer): void {
    if (this.status !== 'open' && this.status !== 'closing') return
    try {
      if (typeof msg === 'string') throw new WebRTCMalformedFrameError('text message on a libp2p data channel')
      const bytes = msg instanceof Uint8Array ? msg : new Uint8Array(msg)
      for (const message of this.decoder.push(bytes)) {
        if (message.message != null && message.message.byteLength > 0 && this.readStatus !== 'closed' && this.readStatus !== 'closing' && this.remoteWriteStatus !== 'closed') {
          this.onData(message.message)
        }
        if (message.flag != null) this.onFlag(message.flag)
        if (this.status !== 'open' && this.status !== 'closing') return
      }
    } catch (err) {
      this.log('resetting: %s', err)
      this.onBadFrame?.(err as Error)
      this.abort(err as Error)
    }
  }

  private onFlag (flag: Flag): void {
    switch (flag) {
      case Flag.FIN:
        this.sendFlag(Flag.FIN_ACK)
        this.onRemoteCloseWrite()
        break
      case Flag.FIN_ACK:
        this.finAcked?.()
        break
      case Flag.STOP_SENDING:
        this.onRemoteCloseRead()
        break
      case Flag.RESET_STREAM:
        this.onRemoteReset()
        this.closeChannel()
        break
    }
  }

  private onChannelClosed (): void {
    this.channelClosed = true
    this.finAcked?.()
    for (const cb of this.emptied.splice(0)) cb()
    if (this.status === 'open' || this.status === 'closing') {
      // Closed under us: a clean end if the remote had finished writing, a reset otherwise.
      if (this.remoteWriteStatus === 'closed') this.onTransportClosed()
      else this.onRemoteReset()
    }
  }

  /** Close the channel once what it buffers has left (or `drainTimeout` passed). */
  private closeChannel (): void {
    if (this.closingChannel || this.channelClosed) return
    this.closingChannel = true
    const close = (): void => {
      if (this.channelClosed) return
      try {
        this.channel.close()
      } catch (err) {
        this.log('closing the channel failed: %s', err)
      }
    }
    if (this.channel.bufferedAmount() === 0) {
      close()
      return
    }
    const timer = setTimeout(() => { close() }, this.drainTimeout)
    this.channel.setBufferedAmountLowThreshold(0)
    this.emptied.push(() => {
      clearTimeout(timer)
      close()
    })
  }
}

