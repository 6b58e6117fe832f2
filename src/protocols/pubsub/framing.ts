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
    // The buffer holds at most one frame and its prefix (a uvarint is at most 10 bytes).
    this.decoder = new LengthPrefixedDecoder({ maxDataLength: maxFrameSize, maxBufferSize: maxFrameSize + 10 })
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
