/**
 * Length-prefixed frames: `uvarint(length) ‖ bytes`, minimally encoded, as every pubsub
 * implementation reads them.
 *
 * @module
 */
import * as varint from 'uint8-varint'
import { PeerswarmError } from '../../core/errors.js'
import type { Uint8ArrayList } from 'uint8arraylist'

/** A frame's declared length exceeds the limit, or its length prefix is invalid. */
export class FrameTooLargeError extends PeerswarmError {
  constructor (readonly limit: number, cause?: unknown) {
    super('ERR_FRAME_TOO_LARGE', `frame larger than ${limit} bytes, or an invalid length prefix`, { cause })
  }
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
 *
 * Works on contiguous arrays (no byte-wise access through a list): a frame wholly inside one
 * received array is a sub-array of it; only a frame split across arrays is copied, once, into
 * a buffer of its exact size.
 */
export class FrameDecoder {
  /** The frame being reassembled, sized exactly, and how much of it is in. */
  private partial?: Uint8Array
  private partialFill = 0
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
      if (this.partial != null) {
        const partial = this.partial
        const take = Math.min(partial.byteLength - this.partialFill, end - at)
        partial.set(buf.subarray(at, at + take), this.partialFill)
        this.partialFill += take
        at += take
        if (this.partialFill < partial.byteLength) return
        this.partial = undefined
        yield partial
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
      this.partial = new Uint8Array(value)
      this.partialFill = 0
    }
  }
}
