/**
 * A WebRTC connection as the swarm sees every connection: a `MultiaddrConnection` (the peer
 * connection; no bytes of its own travel on it) and a `StreamMuxer` whose streams are data
 * channels ({@link DataChannelStream}). No Yamux: data channels are the muxer.
 *
 * Bounds on what the remote opens: at most `maxInboundStreams` inbound channels at once
 * (further ones are closed at once, which the remote sees as a reset), and before the swarm
 * has taken the connection over (during the Noise handshake, a remote may already open
 * channels) at most `maxEarlyStreams` of them, each holding at most
 * {@link EARLY_READ_BUFFER_LENGTH} unread bytes.
 *
 * @module
 */
import { AbstractMultiaddrConnection, AbstractStreamMuxer } from '@libp2p/utils'
import { PeerswarmError } from '../../core/errors.js'
import { DEFAULT_STREAM_OPTIONS, DataChannelStream } from './stream.js'
import type { DataChannel, DataChannelStreamOptions } from './stream.js'
import type { AbortOptions, CreateStreamOptions, EventHandler, Logger, MessageStreamDirection, StreamMuxerEvents } from '@libp2p/interface'
import type { SendResult } from '@libp2p/utils'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Uint8ArrayList } from 'uint8arraylist'

/** The muxer's protocol name, as js-libp2p reports it. */
export const WEBRTC_MUXER = '/webrtc'

/** Unread bytes an early stream (one opened before the swarm took the connection over) may hold. */
export const EARLY_READ_BUFFER_LENGTH = 64 * 1024

/**
 * The part of a peer connection the muxer uses (node-datachannel's `PeerConnection` has it).
 *
 * @group Transports
 */
export interface PeerConnection {
  createDataChannel: (label: string, config?: { negotiated?: boolean, id?: number }) => DataChannel
  onDataChannel: (cb: (channel: DataChannel) => void) => void
}

/**
 * Options of a WebRTC connection's streams and bounds.
 *
 * @group Transports
 */
export interface DataChannelMuxerOptions extends DataChannelStreamOptions {
  /** Inbound channels open at once; more are closed at once (default 256). */
  readonly maxInboundStreams?: number
  /** Inbound channels held before the swarm takes the connection over (default 10). */
  readonly maxEarlyStreams?: number
  /** How long opening a channel may take (default 10 s). */
  readonly openTimeout?: number
}

/** Defaults of {@link DataChannelMuxerOptions}' own fields. */
const DEFAULT_MUXER_OPTIONS = {
  maxInboundStreams: 256,
  maxEarlyStreams: 10,
  openTimeout: 10_000
} as const

/**
 * A data channel did not open (timed out, or closed before opening).
 *
 * @group Errors
 */
export class DataChannelOpenError extends PeerswarmError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_WEBRTC_CHANNEL_OPEN', message, options)
  }
}

/**
 * Close a data channel that no stream will own, releasing what node-datachannel holds for it.
 *
 * node-datachannel's `DataChannel` wrapper holds a thread-safe function (a handle that keeps
 * Node's event loop alive) from its creation until libdatachannel reports the channel closed,
 * and it hears of that only through a callback given to `onClosed()`: a channel closed without
 * one keeps the process alive for good. So register one (a stream's constructor does, for the
 * channels it owns) before closing.
 */
function releaseChannel (channel: DataChannel): void {
  try {
    channel.onClosed(() => {})
    channel.close()
  } catch {}
}

/**
 * `channel`, with node-datachannel told of one `onClosed` callback only, at once; the
 * callback given later (`opened()`'s, then the stream's) replaces the previous one in
 * JavaScript, and is called at once if the channel has already closed.
 *
 * Each `onClosed()` given to node-datachannel replaces its thread-safe function, dropping a
 * close that libdatachannel has already queued on the one replaced: a channel that the remote
 * closed right after it opened (a refused one) then never reports closed, and keeps the process
 * alive (see {@link releaseChannel}).
 */
function withOneClosedCallback (channel: DataChannel): DataChannel {
  let onClosed: (() => void) | undefined
  let closed = false
  channel.onClosed(() => {
    closed = true
    onClosed?.()
  })
  return {
    getId: () => channel.getId(),
    sendMessageBinary: (buffer) => channel.sendMessageBinary(buffer),
    bufferedAmount: () => channel.bufferedAmount(),
    setBufferedAmountLowThreshold: (size) => { channel.setBufferedAmountLowThreshold(size) },
    isOpen: () => channel.isOpen(),
    close: () => { channel.close() },
    onOpen: (cb) => { channel.onOpen(cb) },
    onClosed: (cb) => {
      onClosed = cb
      if (closed) queueMicrotask(cb)
    },
    onError: (cb) => { channel.onError(cb) },
    onBufferedAmountLow: (cb) => { channel.onBufferedAmountLow(cb) },
    onMessage: (cb) => { channel.onMessage(cb) }
  }
}

/**
 * The peer connection, as a `MultiaddrConnection`: closing it closes the peer connection
 * (through `closePeer`), and the transport tells it when the peer connection is gone.
 */
export class WebRTCConnection extends AbstractMultiaddrConnection {
  private readonly closePeer: () => void

  constructor (init: { remoteAddr: Multiaddr, direction: MessageStreamDirection, log: Logger, closePeer: () => void }) {
    super({ remoteAddr: init.remoteAddr, direction: init.direction, log: init.log })
    this.closePeer = init.closePeer
  }

  sendData (data: Uint8ArrayList): SendResult {
    // Nothing travels on the connection itself: every byte is on a data channel.
    return { sentBytes: data.byteLength, canSendMore: true }
  }

  sendReset (): void {
    this.closePeer()
  }

  async sendClose (): Promise<void> {
    this.closePeer()
  }

  sendPause (): void {}

  sendResume (): void {}

  /** The peer connection failed or closed. */
  onPeerClosed (err?: Error): void {
    if (this.status === 'open' || this.status === 'closing') this.onTransportClosed(err)
  }
}

/** Counters of what a remote did wrong on one connection. */
export interface MuxerCounters {
  /** Inbound channels refused (over `maxInboundStreams` or `maxEarlyStreams`). */
  refusedChannels: number
  /** Streams reset for a malformed or oversized frame. */
  badFrames: number
}

/**
 * The stream muxer of a WebRTC connection: one stream per data channel.
 *
 * @group Transports
 */
export class DataChannelMuxer extends AbstractStreamMuxer<DataChannelStream> {
  /** What the remote did wrong so far. */
  readonly counters: MuxerCounters = { refusedChannels: 0, badFrames: 0 }
  private readonly peerConnection: PeerConnection
  private readonly options: DataChannelMuxerOptions
  private readonly maxInboundStreams: number
  private readonly openTimeout: number
  private readonly logger: Logger

  constructor (connection: WebRTCConnection, peerConnection: PeerConnection, options: DataChannelMuxerOptions = {}) {
    super(connection, { protocol: WEBRTC_MUXER, name: 'webrtc-muxer', maxEarlyStreams: options.maxEarlyStreams ?? DEFAULT_MUXER_OPTIONS.maxEarlyStreams })
    this.peerConnection = peerConnection
    this.options = options
    this.maxInboundStreams = options.maxInboundStreams ?? DEFAULT_MUXER_OPTIONS.maxInboundStreams
    this.openTimeout = options.openTimeout ?? DEFAULT_MUXER_OPTIONS.openTimeout
    this.logger = this.log
    peerConnection.onDataChannel((channel) => { this.onIncomingChannel(channel) })
  }

  onData (): void {
    // No bytes travel on the connection itself.
  }

  /** Abort every stream and the connection. */
  override abort (err: Error): void {
    super.abort(err)
    this.maConn.abort(err)
  }

  async onCreateStream (options: CreateStreamOptions): Promise<DataChannelStream> {
    // Both `opened()` and the stream listen for the close: register with the channel once.
    const channel = withOneClosedCallback(this.peerConnection.createDataChannel(''))
    await this.opened(channel, options)
    return this.streamOf(channel, 'outbound')
  }

  override addEventListener<K extends keyof StreamMuxerEvents<DataChannelStream>> (type: K, listener: EventHandler<StreamMuxerEvents<DataChannelStream>[K]> | null, options?: boolean | AddEventListenerOptions): void
  override addEventListener (type: string, listener: EventHandler<Event>, options?: boolean | AddEventListenerOptions): void
  override addEventListener (type: string, listener: EventHandler<never> | null, options?: boolean | AddEventListenerOptions): void {
    if (type === 'stream') {
      // The swarm takes the connection over: its early streams may buffer as much as any.
      const limit = this.options.maxReadBufferLength ?? DEFAULT_STREAM_OPTIONS.maxReadBufferLength
      for (const stream of this.earlyStreams) stream.maxReadBufferLength = limit
    }
    super.addEventListener(type, listener as EventHandler<Event>, options)
  }

  private streamOf (channel: DataChannel, direction: MessageStreamDirection): DataChannelStream {
    return new DataChannelStream({
      ...this.options,
      channel,
      direction,
      log: this.logger,
      onBadFrame: () => { this.counters.badFrames++ }
    })
  }

  private onIncomingChannel (channel: DataChannel): void {
    const early = this.listenerCount('stream') === 0
    const inbound = this.streams.reduce((n, s) => s.direction === 'inbound' ? n + 1 : n, 0)
    if (this.status !== 'open' || inbound >= this.maxInboundStreams || (early && this.earlyStreams.length >= this.maxEarlyStreams)) {
      this.counters.refusedChannels++
      const n = this.counters.refusedChannels
      if ((n & (n - 1)) === 0) this.logger('refused %d inbound channels (%d open, early: %s)', n, inbound, early)
      releaseChannel(channel)
      return
    }
    const stream = this.streamOf(channel, 'inbound')
    if (early) stream.maxReadBufferLength = EARLY_READ_BUFFER_LENGTH
    this.onRemoteStream(stream)
  }

  /** Resolves when `channel` is open; rejects on close, timeout or abort. */
  private async opened (channel: DataChannel, options: AbortOptions): Promise<void> {
    if (channel.isOpen()) return
    await new Promise<void>((resolve, reject) => {
      const signal = options.signal
      const timer = setTimeout(() => { fail(new DataChannelOpenError(`data channel did not open within ${this.openTimeout} ms`)) }, this.openTimeout)
      const onAbort = (): void => { fail(new DataChannelOpenError('aborted while opening a data channel', { cause: signal?.reason })) }
      signal?.addEventListener('abort', onAbort, { once: true })
      const settle = (): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
      }
      function fail (err: Error): void {
        settle()
        try {
          channel.close()
        } catch {}
        reject(err)
      }
      channel.onOpen(() => { settle(); resolve() })
      channel.onClosed(() => { fail(new DataChannelOpenError('data channel closed before it opened')) })
      if (signal?.aborted === true) onAbort()
    })
  }
}
