/**
 * Noise transport-message framing, done on contiguous bytes: `u16 BE length ‖ ciphertext`
 * (libp2p Noise spec), at most 65,535 bytes of ciphertext per message, so at most 65,519 bytes
 * of plaintext (the ChaCha20-Poly1305 tag takes 16).
 *
 * - {@link NoiseFrameDecoder} splits received chunks into whole messages without byte-wise
 *   list access: complete messages are sub-arrays of the chunk they arrived in; only a message
 *   split across chunks is copied, once, into a buffer of its exact size.
 * - {@link sealFrames} packs plaintext parts (e.g. every Yamux frame queued in one turn) into as
 *   few messages as the size limit allows and returns them as one buffer, for one socket write.
 *
 * The cipher itself stays the dependency's (`@chainsafe/libp2p-noise`'s cipher states).
 *
 * @module
 */
import { PeerswarmError } from '../core/errors.js'
import { Uint8ArrayList } from 'uint8arraylist'

/** Largest Noise message (ciphertext and tag), from its 2-byte length prefix. */
export const NOISE_MAX_MESSAGE = 65_535
/** The ChaCha20-Poly1305 tag. */
export const NOISE_TAG_LENGTH = 16
/** Largest plaintext of one Noise message. */
export const NOISE_MAX_PLAINTEXT = NOISE_MAX_MESSAGE - NOISE_TAG_LENGTH

/** A Noise message that cannot be framed or was framed wrongly. */
export class NoiseFrameError extends PeerswarmError {
  constructor (message: string) {
    super('ERR_NOISE_FRAME', message)
  }
}

/**
 * A message split across chunks from this size up is handed on as a list of views into the
 * chunks rather than copied into one array: a 64 KiB message read in 64 KiB chunks nearly
 * always spans two, and node's cipher opens a list piece by piece (the copy was ~5% of a
 * one-stream transfer's profile). Below it, the copy is cheap and the wasm cipher wants one array.
 */
const NOISE_VIEW_FROM = 4096

/**
 * Views held for one message at most, and the bytes of the chunks under them (a view keeps its
 * whole chunk alive); past either bound what is held is copied into one array. Otherwise a peer
 * could make us hold a view per byte by trickling a message, or pin a large chunk (a WebSocket
 * message can be megabytes) with a few bytes of a message it never finishes. Two 64 KiB reads
 * under one 64 KiB message, the common case, fit.
 */
const MAX_VIEWS = 8
const MAX_VIEWED_BYTES = 128 * 1024

/** Splits a byte stream into Noise messages (ciphertexts, without their length prefix). */
export class NoiseFrameDecoder {
  /** The message being reassembled across chunks, sized exactly, and how much of it is in. */
  private partial?: Uint8Array
  /** Or, for a large message, the views of it received so far, and the bytes of their chunks. */
  private pieces?: Uint8Array[]
  private viewedBytes = 0
  private partialLength = 0
  private partialFill = 0
  /** A lone first byte of a length prefix that ended a chunk. */
  private prefixByte = -1

  /** Whether bytes of an unfinished message are held. */
  get buffered (): boolean {
    return this.partial != null || this.pieces != null || this.prefixByte >= 0
  }

  /**
   * Calls `onFrame` with each complete message in `chunk`, in order. A message is a sub-array
   * of the chunk when the chunk holds all of it (callers may decrypt it in place); one that
   * spanned chunks is a fresh array, or from {@link NOISE_VIEW_FROM} bytes a list of views into
   * the chunks (which must not be reused by their producer).
   */
  decode (chunk: Uint8Array | Uint8ArrayList, onFrame: (frame: Uint8Array | Uint8ArrayList) => void): void {
    if (chunk instanceof Uint8Array) {
      this.decodeArray(chunk, onFrame)
      return
    }
    for (const part of chunk) this.decodeArray(part, onFrame)
  }

  private decodeArray (buf: Uint8Array, onFrame: (frame: Uint8Array | Uint8ArrayList) => void): void {
    const end = buf.byteLength
    let at = 0
    if (this.partial != null || this.pieces != null) {
      const take = Math.min(this.partialLength - this.partialFill, end)
      const piece = take === end ? buf : buf.subarray(0, take)
      if (this.partial != null) this.partial.set(piece, this.partialFill)
      else this.addPiece(piece)
      this.partialFill += take
      at = take
      if (this.partialFill < this.partialLength) return
      const frame = this.partial ?? new Uint8ArrayList(...(this.pieces ?? []))
      this.partial = undefined
      this.pieces = undefined
      this.viewedBytes = 0
      onFrame(frame)
    } else if (this.prefixByte >= 0 && end > 0) {
      const length = (this.prefixByte << 8) | buf[0]
      this.prefixByte = -1
      at = 1
      at = this.frameAt(buf, at, length, onFrame)
    }
    while (at < end) {
      if (at + 1 === end) {
        this.prefixByte = buf[at]
        return
      }
      const length = (buf[at] << 8) | buf[at + 1]
      at = this.frameAt(buf, at + 2, length, onFrame)
    }
  }

  /** Hold one more view of the large message, or copy it all once the views would cost too much. */
  private addPiece (piece: Uint8Array): void {
    const pieces = this.pieces ?? []
    const viewed = this.viewedBytes + piece.buffer.byteLength
    if (pieces.length < MAX_VIEWS && viewed <= MAX_VIEWED_BYTES) {
      pieces.push(piece)
      this.viewedBytes = viewed
      return
    }
    const partial = new Uint8Array(this.partialLength)
    let at = 0
    for (const held of pieces) {
      partial.set(held, at)
      at += held.byteLength
    }
    partial.set(piece, at)
    this.partial = partial
    this.pieces = undefined
    this.viewedBytes = 0
  }

  /** The message of `length` bytes starting at `at`: delivered, or started as partial. */
  private frameAt (buf: Uint8Array, at: number, length: number, onFrame: (frame: Uint8Array | Uint8ArrayList) => void): number {
    if (length < NOISE_TAG_LENGTH) throw new NoiseFrameError(`Noise message of ${length} bytes is shorter than its tag`)
    const available = buf.byteLength - at
    if (available >= length) {
      onFrame(buf.subarray(at, at + length))
      return at + length
    }
    if (length >= NOISE_VIEW_FROM && buf.buffer.byteLength <= MAX_VIEWED_BYTES) {
      this.pieces = available > 0 ? [buf.subarray(at)] : []
      this.viewedBytes = available > 0 ? buf.buffer.byteLength : 0
    } else {
      const partial = new Uint8Array(length)
      partial.set(buf.subarray(at), 0)
      this.partial = partial
    }
    this.partialLength = length
    this.partialFill = available
    return buf.byteLength
  }
}

/**
 * Encrypts `parts` (`total` bytes of plaintext, in order) as consecutive Noise messages of at
 * most {@link NOISE_MAX_PLAINTEXT} bytes of plaintext each, and returns them framed, in one
 * buffer. `encrypt` must return the ciphertext with its tag (in one array, or in pieces, which
 * are copied straight into the output) and must not keep its argument (the plaintext of a
 * message that spans parts is assembled in a reused scratch buffer).
 */
export function sealFrames (parts: readonly Uint8Array[], total: number, encrypt: (plaintext: Uint8Array) => Uint8Array | Iterable<Uint8Array> & { byteLength: number }, scratch?: Uint8Array): Uint8Array {
  if (total === 0) return new Uint8Array(0)
  const messages = Math.max(1, Math.ceil(total / NOISE_MAX_PLAINTEXT))
  const out = new Uint8Array(total + messages * (2 + NOISE_TAG_LENGTH))
  let written = 0
  const emit = (plaintext: Uint8Array): void => {
    const sealed = encrypt(plaintext)
    const length = sealed.byteLength
    if (length > NOISE_MAX_MESSAGE) throw new NoiseFrameError(`Noise message of ${length} bytes exceeds ${NOISE_MAX_MESSAGE}`)
    if (written + 2 + length > out.byteLength) throw new NoiseFrameError('cipher output longer than plaintext and tag')
    out[written] = length >>> 8
    out[written + 1] = length & 0xff
    written += 2
    if (sealed instanceof Uint8Array) {
      out.set(sealed, written)
      written += length
      return
    }
    for (const piece of sealed) {
      out.set(piece, written)
      written += piece.byteLength
    }
  }
  if (parts.length === 1 && total <= NOISE_MAX_PLAINTEXT) {
    emit(parts[0])
    return out
  }
  let buffer = scratch != null && scratch.byteLength >= NOISE_MAX_PLAINTEXT ? scratch : undefined
  let fill = 0
  for (const part of parts) {
    let offset = 0
    const size = part.byteLength
    // A full message's worth of one part, with nothing assembled before it, goes as is.
    while (offset < size) {
      const room = NOISE_MAX_PLAINTEXT - fill
      const left = size - offset
      if (fill === 0 && left >= NOISE_MAX_PLAINTEXT) {
        emit(part.subarray(offset, offset + NOISE_MAX_PLAINTEXT))
        offset += NOISE_MAX_PLAINTEXT
        continue
      }
      buffer ??= new Uint8Array(NOISE_MAX_PLAINTEXT)
      const take = Math.min(room, left)
      buffer.set(offset === 0 && take === size ? part : part.subarray(offset, offset + take), fill)
      fill += take
      offset += take
      if (fill === NOISE_MAX_PLAINTEXT) {
        emit(buffer)
        fill = 0
      }
    }
  }
  if (fill > 0 && buffer != null) emit(buffer.subarray(0, fill))
  return written === out.byteLength ? out : out.subarray(0, written)
}
