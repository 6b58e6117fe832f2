/**
 * Length-prefixed frames, `uvarint(length) ‖ bytes`: the framing of most libp2p protocols
 * (pubsub, identify, Kademlia, relay, DCUtR, AutoNAT, request-response's ready codecs; what
 * js-libp2p's `lpStream` and `it-length-prefixed` read and write), for built-in protocols and
 * custom behaviours alike.
 *
 * Two ways to read, both hardened the same way: the declared length is checked against the
 * limit before a byte of the frame is buffered, a length prefix longer than 8 bytes is refused,
 * and both fail with {@link FrameTooLargeError}; a peer can never make us hold more than one
 * frame (two, when a next one arrives behind the one being read).
 * - {@link FrameDecoder}: frames from a long-lived stream, chunk after chunk (pubsub).
 * - {@link readFrame} / {@link writeFrame}: one message each way on a stream (identify,
 *   request-response): read exactly one frame and leave the stream usable for the reply.
 *
 * The frame's bytes are usually a protobuf message; decode them with the protocol's decoder
 * (protobufjs skips unknown fields, as the protobuf rules ask) and turn its errors into the
 * protocol's own typed error.
 *
 * @module
 */
import { lpStream } from '@libp2p/utils'
import * as varint from 'uint8-varint'
import { Uint8ArrayList } from 'uint8arraylist'
import { PeerswarmError } from '../core/errors.js'
import type { Stream } from '@libp2p/interface'

/**
 * A frame's declared length exceeds the limit, or its length prefix is invalid.
 *
 * @group Errors
 */
export class FrameTooLargeError extends PeerswarmError {
  constructor (readonly limit: number, cause?: unknown) {
    super('ERR_FRAME_TOO_LARGE', `frame larger than ${limit} bytes, or an invalid length prefix`, { cause })
  }
}

/** Bodies encoded with their frame around them (see {@link withFrame}), and that frame. */
const framed = new WeakMap<Uint8Array, Uint8Array>()

/**
 * @internal `body` is `frame` less its length prefix, in the same memory, and `frame` owns its
 * buffer: {@link encodeFrame} of `body` returns `frame` itself, without a copy. For encoders
 * that can write the prefix as they encode (protobufjs's `encodeDelimited`): a forwarded
 * 16 KiB message was allocated and copied twice, once encoded and once framed.
 */
export function withFrame (body: Uint8Array, frame: Uint8Array): void {
  framed.set(body, frame)
}

/**
 * Prefix `bytes` with its length (one new array; see {@link writeFrame} to send without a copy).
 *
 * @group Toolkit for protocols
 */
export function encodeFrame (bytes: Uint8Array): Uint8Array {
  const ready = framed.get(bytes)
  if (ready !== undefined) return ready
  const frame = new Uint8Array(varint.encodingLength(bytes.byteLength) + bytes.byteLength)
  varint.encodeUint8Array(bytes.byteLength, frame)
  frame.set(bytes, frame.byteLength - bytes.byteLength)
  return frame
}

/**
 * Splits a byte stream into frames of at most `maxFrameSize` bytes. Zero-length frames are
 * skipped (as go-libp2p does). Throws `FrameTooLargeError` as soon as a prefix announces a
 * larger frame, so a peer can never make us buffer more than one frame.
 *
 * Works on contiguous arrays (no byte-wise access through a list): a frame wholly inside one
 * received array is a sub-array of it. A frame split across arrays is held as views of them
 * while it arrives and copied once, into a buffer of its exact size, when its last byte is in.
 * Nothing is allocated for what a prefix announces: a peer that announces frames it never
 * sends costs us what it sent. A peer that trickles a frame in many small pieces, or in pieces
 * of large arrays, makes the views cost more than their bytes: past `MAX_VIEWS` views, or
 * views of more than twice the frame in arrays, what is held is copied into a buffer that
 * grows with the bytes (doubling, up to the frame's length).
 *
 * @group Toolkit for protocols
 */
export class FrameDecoder {
  /** The frame being reassembled: its announced length and how much of it is in. */
  private partialLength = 0
  private partialFill = 0
  /** Its pieces so far (views of received arrays), and the bytes of those arrays. */
  private pieces?: Uint8Array[]
  private viewedBytes = 0
  /** Or its bytes so far, at the front of a buffer of its own. */
  private partial?: Uint8Array
  /** A length prefix split across arrays: its value so far and its bytes read. */
  private prefixValue = 0
  private prefixBytes = 0

  constructor (readonly maxFrameSize: number) {}

  /** The complete frames in `chunk` (and in what was buffered before it). */
  * decode (chunk: Uint8Array | Uint8ArrayList): Generator<Uint8Array> {
    if (chunk instanceof Uint8Array) {
      yield * this.decodeArray(chunk)
      return
    }
    for (const part of chunk) yield * this.decodeArray(part)
  }

  private * decodeArray (buf: Uint8Array): Generator<Uint8Array> {
    const end = buf.byteLength
    let at = 0
    while (at < end) {
      if (this.pieces != null || this.partial != null) {
        const take = Math.min(this.partialLength - this.partialFill, end - at)
        this.hold(buf.subarray(at, at + take))
        at += take
        if (this.partialFill < this.partialLength) return
        yield this.takeFrame()
        continue
      }
      // The length prefix: uvarint of at most 8 bytes, possibly continuing a split one.
      let value = this.prefixValue
      let count = this.prefixBytes
      let done = false
      while (at < end) {
        const byte = buf[at++]
        value += (byte & 0x7f) * 2 ** (7 * count)
        count++
        if (byte < 0x80) {
          done = true
          break
        }
        if (count >= 8) throw new FrameTooLargeError(this.maxFrameSize, new Error('length prefix longer than 8 bytes'))
      }
      if (!done) {
        this.prefixValue = value
        this.prefixBytes = count
        return
      }
      this.prefixValue = 0
      this.prefixBytes = 0
      if (value > this.maxFrameSize) throw new FrameTooLargeError(this.maxFrameSize)
      if (value === 0) continue
      if (end - at >= value) {
        yield buf.subarray(at, at + value)
        at += value
        continue
      }
      this.partialLength = value
      this.partialFill = 0
      this.pieces = []
      this.viewedBytes = 0
    }
  }

  /** Hold `piece`, the next bytes of the frame: as a view, or copied once views cost too much. */
  private hold (piece: Uint8Array): void {
    const pieces = this.pieces
    if (pieces != null) {
      const viewed = this.viewedBytes + piece.buffer.byteLength
      if (pieces.length < MAX_VIEWS && viewed <= Math.max(2 * this.partialLength, MIN_VIEWED_BYTES)) {
        pieces.push(piece)
        this.viewedBytes = viewed
        this.partialFill += piece.byteLength
        return
      }
      // Copy what the views hold into a buffer of our own, and go on in it.
      const partial = new Uint8Array(Math.min(this.partialLength, Math.max(PARTIAL_START, 2 * (this.partialFill + piece.byteLength))))
      let fill = 0
      for (const held of pieces) {
        partial.set(held, fill)
        fill += held.byteLength
      }
      this.partial = partial
      this.pieces = undefined
      this.viewedBytes = 0
    }
    const needed = this.partialFill + piece.byteLength
    let partial = this.partial as Uint8Array
    if (needed > partial.byteLength) {
      const grown = new Uint8Array(Math.min(this.partialLength, Math.max(needed, partial.byteLength * 2)))
      grown.set(partial.subarray(0, this.partialFill))
      this.partial = partial = grown
    }
    partial.set(piece, this.partialFill)
    this.partialFill = needed
  }

  /** The complete frame, in one array of its exact size; the decoder is ready for the next. */
  private takeFrame (): Uint8Array {
    const pieces = this.pieces
    let frame = this.partial
    if (pieces != null) {
      frame = new Uint8Array(this.partialLength)
      let fill = 0
      for (const piece of pieces) {
        frame.set(piece, fill)
        fill += piece.byteLength
      }
    }
    this.pieces = undefined
    this.partial = undefined
    this.viewedBytes = 0
    return frame as Uint8Array
  }
}

/** Views held for one frame at most (a 1 MiB frame read in 16 KiB pieces takes 64). */
const MAX_VIEWS = 64
/** The arrays under a frame's views may hold twice the frame, or this much for a small frame. */
const MIN_VIEWED_BYTES = 256 * 1024
/** The first buffer when held views are copied (unless the frame is smaller); it doubles from there. */
const PARTIAL_START = 64 * 1024

/** Errors of `lpStream` that mean the remote announced or sent more than the limit. */
const TOO_LARGE = new Set(['InvalidDataLengthError', 'InvalidDataLengthLengthError', 'StreamBufferError'])

/**
 * Options of {@link readFrame} and {@link writeFrame}.
 *
 * @group Toolkit for protocols
 */
export interface FrameOptions {
  /** The largest frame read or written, in bytes (the length prefix not counted). */
  readonly maxSize: number
  /** Aborts the read or the wait for the stream to drain. */
  readonly signal?: AbortSignal
}

/**
 * Read one frame of at most `maxSize` bytes from `stream`, and hand the stream back so that it
 * can be written to or read again. Throws {@link FrameTooLargeError} when the remote announces
 * more (before buffering it), the stream's own error when it closes or resets before a whole
 * frame arrived, and `signal`'s reason when it aborts.
 *
 * @group Toolkit for protocols
 */
export async function readFrame (stream: Stream, options: FrameOptions): Promise<Uint8Array> {
  const max = options.maxSize
  // The declared length is checked before the frame is buffered. What arrived behind the frame
  // (the start of a next one, sent back to back) stays buffered for the next read: room for two
  // whole frames, so a remote can make us hold at most that much.
  const lp = lpStream(stream, { maxDataLength: max, maxBufferSize: 2 * (max + varint.encodingLength(max)) })
  try {
    const frame = await lp.read({ signal: options.signal })
    return frame.subarray()
  } catch (err) {
    if (err instanceof Error && TOO_LARGE.has(err.name)) throw new FrameTooLargeError(max, err)
    throw err
  } finally {
    try {
      lp.unwrap()
    } catch {
      // The stream is already closed: nothing left to hand back.
    }
  }
}

/**
 * Write `bytes` as one frame (prefix and bytes in one `send`, without copying them), refusing
 * more than `maxSize` bytes with {@link FrameTooLargeError}; waits for the stream to drain when
 * its buffer is full. Rejects if the stream closes first or `signal` aborts.
 *
 * @group Toolkit for protocols
 */
export async function writeFrame (stream: Stream, bytes: Uint8Array, options: FrameOptions): Promise<void> {
  if (bytes.byteLength > options.maxSize) throw new FrameTooLargeError(options.maxSize)
  options.signal?.throwIfAborted()
  if (!stream.send(new Uint8ArrayList(varint.encode(bytes.byteLength), bytes))) await drained(stream, options.signal)
}

/**
 * Resolves on the stream's next `drain` event; rejects if it closes or `signal` aborts. (The
 * `onDrain()` of @libp2p/utils 7.4.1 resolves at once after its first use; the event does not.)
 */
async function drained (stream: Stream, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const done = (): void => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      signal?.removeEventListener('abort', onAbort)
    }
    const onDrain = (): void => { done(); resolve() }
    const onClose = (): void => { done(); reject(new Error('the stream closed while writing')) }
    const onAbort = (): void => { done(); reject(signal?.reason) }
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
    signal?.addEventListener('abort', onAbort)
  })
}
