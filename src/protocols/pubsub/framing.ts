/**
 * Length-prefixed frames: `uvarint(length) ‖ bytes`, minimally encoded, as every pubsub
 * implementation reads them.
 *
 * @module
 */
import { LengthPrefixedDecoder } from '@libp2p/utils'
import * as varint from 'uint8-varint'
import { PeerswarmError } from '../../errors.js'
import type { Uint8ArrayList } from 'uint8arraylist'

/** A frame's declared length exceeds the limit, or its length prefix is invalid. */
export class FrameTooLargeError extends PeerswarmError {
  constructor (readonly limit: number, cause?: unknown) {
    super('ERR_FRAME_TOO_LARGE', `frame larger than ${limit} bytes, or an invalid length prefix`, { cause })
  }
}

/**
 * Thrown by `decodeLength` when the buffer ends inside a length prefix. The decoder of
 * @libp2p/utils stops at a `RangeError`, which happens at the end of every received chunk;
 * one preallocated error costs no stack capture (a CPU profile showed ~11% of a 20-node
 * gossipsub run in building those errors).
 */
const INCOMPLETE_PREFIX = new RangeError('incomplete length prefix')

/** A uvarint length prefix of at most 8 bytes, from a list or an array. */
function decodeLength (buf: Uint8ArrayList | Uint8Array): number {
  const available = buf.byteLength
  let value = 0
  for (let i = 0, factor = 1; i < 8; i++, factor *= 128) {
    if (i >= available) throw INCOMPLETE_PREFIX
    const byte = buf instanceof Uint8Array ? buf[i] : buf.get(i)
    value += (byte & 0x7f) * factor
    if (byte < 0x80) return value
  }
  // Not a RangeError: the decoder rejects it at once rather than waiting for more bytes.
  throw new Error('length prefix longer than 8 bytes')
}

/** Prefix `bytes` with its length. */
export function encodeFrame (bytes: Uint8Array): Uint8Array {
  const frame = new Uint8Array(varint.encodingLength(bytes.byteLength) + bytes.byteLength)
  varint.encodeUint8Array(bytes.byteLength, frame)
  frame.set(bytes, frame.byteLength - bytes.byteLength)
  return frame
}

/**
 * Splits a byte stream into frames of at most `maxFrameSize` bytes. Zero-length frames are
 * skipped (as go-libp2p does). Throws `FrameTooLargeError` as soon as a prefix announces a
 * larger frame, so a peer can never make us buffer more than one frame.
 */
export class FrameDecoder {
  private readonly decoder: LengthPrefixedDecoder

  constructor (readonly maxFrameSize: number) {
    // No bound on the buffer itself: a chunk from the muxer may hold many complete frames
    // (Yamux chunks are bounded by its window), and frames announced over the limit are refused
    // before their bytes arrive, so what stays buffered between chunks is at most one frame.
    this.decoder = new LengthPrefixedDecoder({ maxDataLength: maxFrameSize, maxBufferSize: Number.MAX_SAFE_INTEGER, lengthDecoder: decodeLength })
  }

  /** The complete frames in `chunk` (and in what was buffered before it). */
  * decode (chunk: Uint8Array | Uint8ArrayList): Generator<Uint8Array> {
    try {
      for (const frame of this.decoder.decode(chunk)) yield frame.subarray()
    } catch (err) {
      throw new FrameTooLargeError(this.maxFrameSize, err)
    }
  }
}
