/**
 * Yamux window updates held back at the wire, under the muxer.
 *
 * `@chainsafe/libp2p-yamux` (v8) sends a window update for every data frame it reads. On a
 * connection whose traffic goes one way (a pubsub peer that forwards us messages and has
 * nothing to receive from us in that turn), each of them is a Noise message and a socket write
 * of its own (30 bytes), and a read and a decryption at the remote: in the FloodSub bench at 10
 * nodes they were half of all socket writes. go-yamux and rust-yamux only send an update once
 * half a window has been consumed.
 *
 * {@link WindowUpdateBatcher} reads the Yamux frames our muxer writes (their 12-byte headers;
 * data passes untouched) and takes out plain window updates (type 1, no flags, not the
 * session's stream 0), adding their deltas up per stream. They leave, one frame per stream,
 * with the connection's next write of anything else, or once their deltas add up to
 * {@link HELD_WINDOW_BYTES} or {@link MAX_HELD_STREAMS} streams have some. Frames with flags
 * (SYN, ACK, FIN, RST), pings and go-aways are never held.
 *
 * Why this is safe: the remote may send less than our muxer would accept, never more, and the
 * remote can never be left waiting for us. Our muxer gives a stream's window back after each
 * data frame, so when a remote has used up its whole window on a stream (256 KiB at least),
 * the window updates for all of it have been issued, and all but {@link HELD_WINDOW_BYTES}
 * (less than that window) of them have left; the rest leave when those bytes arrive.
 *
 * @module
 */
import { writeUint32BE } from '../core/bytes.js'

/** Length of a Yamux frame header. */
const HEADER_LENGTH = 12
const TYPE_DATA = 0
const TYPE_WINDOW_UPDATE = 1

/**
 * Sum of held window-update deltas at which they leave without waiting for other data: a
 * quarter of Yamux's initial stream window (256 KiB), so that a remote blocked on a window
 * always has more than this in flight to us, whose updates set them off.
 */
export const HELD_WINDOW_BYTES = 64 * 1024

/** Streams with held updates at which they leave without waiting for other data. */
export const MAX_HELD_STREAMS = 64

/** Filters the Yamux frames one muxer writes, holding back its plain window updates. */
export class WindowUpdateBatcher {
  /** Bytes of the current data frame's body still to pass. */
  private bodyLeft = 0
  /** A header split across writes: its first bytes, kept until it is whole. */
  private readonly partial = new Uint8Array(HEADER_LENGTH)
  private partialLength = 0
  /** Held deltas by stream id. */
  private readonly held = new Map<number, number>()
  private heldBytes = 0

  /** Whether the held updates should leave now, without other data. */
  get due (): boolean {
    return this.heldBytes >= HELD_WINDOW_BYTES || this.held.size >= MAX_HELD_STREAMS
  }

  /** Whether the bytes passed so far end with a whole frame (the next byte starts a header). */
  get atFrameStart (): boolean {
    return this.bodyLeft === 0 && this.partialLength === 0
  }

  /** Whether any update is held. */
  get holding (): boolean {
    return this.held.size > 0
  }

  /**
   * Pass `buf`, the next bytes the muxer writes, on to `out`, less the window updates it
   * holds: `buf` itself when nothing is taken out, else the pieces around them (views, not
   * copies; a header split across two writes is passed as a copy). Returns the bytes added.
   */
  filter (buf: Uint8Array, out: Uint8Array[]): number {
    const length = buf.byteLength
    let offset = 0
    let added = 0
    /** Start of the bytes not yet passed. */
    let from = 0
    if (this.partialLength > 0) {
      const n = Math.min(HEADER_LENGTH - this.partialLength, length)
      this.partial.set(buf.subarray(0, n), this.partialLength)
      this.partialLength += n
      offset = from = n
      if (this.partialLength < HEADER_LENGTH) return 0
      this.partialLength = 0
      if (!this.frame(this.partial, 0)) {
        out.push(this.partial.slice())
        added += HEADER_LENGTH
      }
    }
    while (offset < length) {
      if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, length - offset)
        this.bodyLeft -= n
        offset += n
        continue
      }
      if (length - offset < HEADER_LENGTH) {
        // The header's end comes with the next write: its start waits here, unpassed.
        if (offset > from) {
          out.push(buf.subarray(from, offset))
          added += offset - from
        }
        this.partial.set(buf.subarray(offset), 0)
        this.partialLength = length - offset
        return added
      }
      if (this.frame(buf, offset)) {
        if (offset > from) {
          out.push(buf.subarray(from, offset))
          added += offset - from
        }
        from = offset + HEADER_LENGTH
      }
      offset += HEADER_LENGTH
    }
    if (from === 0 && length > 0) {
      out.push(buf)
      return added + length
    }
    if (length > from) {
      out.push(buf.subarray(from))
      added += length - from
    }
    return added
  }

  /** The held updates as frames (one per stream, deltas added up), forgotten here. */
  take (): Uint8Array | undefined {
    if (this.held.size === 0) return undefined
    const frames = new Uint8Array(this.held.size * HEADER_LENGTH)
    let offset = 0
    for (const [stream, delta] of this.held) {
      frames[offset + 1] = TYPE_WINDOW_UPDATE
      writeUint32BE(frames, offset + 4, stream)
      writeUint32BE(frames, offset + 8, delta)
      offset += HEADER_LENGTH
    }
    this.held.clear()
    this.heldBytes = 0
    return frames
  }

  /**
   * Read the header at `offset` of `buf`: note a data frame's body, and hold a plain window
   * update (true: it is taken out of the stream).
   */
  private frame (buf: Uint8Array, offset: number): boolean {
    const type = buf[offset + 1]
    const length = ((buf[offset + 8] << 24) | (buf[offset + 9] << 16) | (buf[offset + 10] << 8) | buf[offset + 11]) >>> 0
    if (type === TYPE_DATA) {
      this.bodyLeft = length
      return false
    }
    const flags = (buf[offset + 2] << 8) | buf[offset + 3]
    const stream = ((buf[offset + 4] << 24) | (buf[offset + 5] << 16) | (buf[offset + 6] << 8) | buf[offset + 7]) >>> 0
    if (type !== TYPE_WINDOW_UPDATE || flags !== 0 || stream === 0 || buf[offset] !== 0) return false
    const total = (this.held.get(stream) ?? 0) + length
    // A sum past a window update's 32 bits is not held: that update leaves as it is.
    if (total > 0xffffffff) return false
    this.held.set(stream, total)
    this.heldBytes += length
    return true
  }
}

