/**
 * The libp2p WebRTC data-channel framing (specs `webrtc/README.md`, "Multiplexing"): every
 * data-channel message is an unsigned-varint length prefix and a protobuf
 *
 * ```proto
 * message Message {
 *   enum Flag { FIN = 0; STOP_SENDING = 1; RESET_STREAM = 2; FIN_ACK = 3; }
 *   optional Flag flag = 1;
 *   optional bytes message = 2;
 * }
 * ```
 *
 * and a whole framed message fits in `MAX_MESSAGE_SIZE` (16 KiB, the SDP's
 * `a=max-message-size:16384`). The codec is written out by hand (two fields) so that a decode
 * is bounded and every failure is a {@link WebRTCMalformedFrameError}.
 *
 * @module
 */
import { PeerswarmError } from '../../core/errors.js'

/** Largest data-channel message, framing included (spec: 16 KiB). */
export const MAX_MESSAGE_SIZE = 16 * 1024

/**
 * Room taken by the framing around a payload of the largest size: the length prefix (2 bytes),
 * the flag field (2), the message field's tag (1) and length (2).
 */
const FRAMING_OVERHEAD = 7

/** Largest payload one framed message carries: `MAX_MESSAGE_SIZE` − `FRAMING_OVERHEAD`. */
export const MAX_PAYLOAD_SIZE = MAX_MESSAGE_SIZE - FRAMING_OVERHEAD

/**
 * A message's flag.
 *
 * @group Transports
 */
export enum Flag {
  /** The sender will write no more (half-close). */
  FIN = 0,
  /** The sender will read no more; stop writing. */
  STOP_SENDING = 1,
  /** Abort both directions. */
  RESET_STREAM = 2,
  /** Answer to FIN: everything sent before it was received. */
  FIN_ACK = 3
}

/** One decoded message: a flag, bytes, or both. */
export interface Message {
  readonly flag?: Flag
  readonly message?: Uint8Array
}

/**
 * A data-channel message that is not a well-formed framed Message (a bad length prefix, a
 * truncated field, a wrong wire type, an unknown flag).
 *
 * @group Errors
 */
export class WebRTCMalformedFrameError extends PeerswarmError {
  constructor (message: string) {
    super('ERR_WEBRTC_MALFORMED_FRAME', `malformed WebRTC data-channel frame: ${message}`)
  }
}

/**
 * A framed data-channel message, as announced by its length prefix, is larger than
 * `MAX_MESSAGE_SIZE`. Nothing of it is buffered.
 *
 * @group Errors
 */
export class WebRTCMessageTooLargeError extends PeerswarmError {
  /** The announced length of the protobuf. */
  readonly length: number

  constructor (length: number) {
    super('ERR_WEBRTC_MESSAGE_TOO_LARGE', `WebRTC data-channel message of ${length} bytes is over the limit of ${MAX_MESSAGE_SIZE} bytes`)
    this.length = length
  }
}

function varintLength (n: number): number {
  let length = 1
  while (n >= 0x80) {
    n = Math.floor(n / 128)
    length++
  }
  return length
}

function writeVarint (out: Uint8Array, offset: number, n: number): number {
  while (n >= 0x80) {
    out[offset++] = (n & 0x7f) | 0x80
    n = Math.floor(n / 128)
  }
  out[offset++] = n
  return offset
}

/**
 * Read an unsigned varint of at most 4 bytes (2^28 − 1: more than any bound here) at `offset`;
 * `undefined` when `bytes` ends first.
 */
function readVarint (bytes: Uint8Array, offset: number, end: number): { value: number, next: number } | undefined {
  let value = 0
  for (let i = 0; i < 4; i++) {
    if (offset + i >= end) return undefined
    const byte = bytes[offset + i]
    value += (byte & 0x7f) * 2 ** (7 * i)
    if ((byte & 0x80) === 0) return { value, next: offset + i + 1 }
  }
  throw new WebRTCMalformedFrameError('varint longer than 4 bytes')
}

/**
 * Encode one framed message (length prefix and protobuf). Throws `RangeError` when the result
 * would be over `MAX_MESSAGE_SIZE`: callers chunk payloads to `MAX_PAYLOAD_SIZE`.
 */
export function encodeMessage (message: Message): Uint8Array {
  const payload = message.message
  let bodyLength = 0
  if (message.flag != null) bodyLength += 1 + varintLength(message.flag)
  if (payload != null) bodyLength += 1 + varintLength(payload.byteLength) + payload.byteLength
  const total = varintLength(bodyLength) + bodyLength
  if (total > MAX_MESSAGE_SIZE) throw new RangeError(`framed message of ${total} bytes is over ${MAX_MESSAGE_SIZE}`)
  const out = new Uint8Array(total)
  let offset = writeVarint(out, 0, bodyLength)
  if (message.flag != null) {
    out[offset++] = 0x08
    offset = writeVarint(out, offset, message.flag)
  }
  if (payload != null) {
    out[offset++] = 0x12
    offset = writeVarint(out, offset, payload.byteLength)
    out.set(payload, offset)
  }
  return out
}

/**
 * Decode one protobuf Message (no length prefix). The message bytes are a view into `bytes`.
 * Unknown fields are skipped as protobuf requires; an unknown flag value is refused.
 */
export function decodeMessage (bytes: Uint8Array): Message {
  let flag: Flag | undefined
  let message: Uint8Array | undefined
  let offset = 0
  const end = bytes.byteLength
  while (offset < end) {
    const key = readVarint(bytes, offset, end)
    if (key == null) throw new WebRTCMalformedFrameError('truncated field key')
    offset = key.next
    const field = Math.floor(key.value / 8)
    const wireType = key.value & 7
    if (wireType === 0) {
      const value = readVarint(bytes, offset, end)
      if (value == null) throw new WebRTCMalformedFrameError('truncated varint field')
      offset = value.next
      if (field === 1) {
        if (value.value > Flag.FIN_ACK) throw new WebRTCMalformedFrameError(`unknown flag ${value.value}`)
        flag = value.value
      }
    } else if (wireType === 2) {
      const length = readVarint(bytes, offset, end)
      if (length == null || length.next + length.value > end) throw new WebRTCMalformedFrameError('truncated length-delimited field')
      if (field === 2) message = bytes.subarray(length.next, length.next + length.value)
      offset = length.next + length.value
    } else if (wireType === 5) {
      if (offset + 4 > end) throw new WebRTCMalformedFrameError('truncated fixed32 field')
      offset += 4
    } else if (wireType === 1) {
      if (offset + 8 > end) throw new WebRTCMalformedFrameError('truncated fixed64 field')
      offset += 8
    } else {
      throw new WebRTCMalformedFrameError(`wire type ${wireType}`)
    }
    if (field === 0) throw new WebRTCMalformedFrameError('field number 0')
  }
  return { flag, message }
}

/**
 * Decodes framed messages from data-channel messages. A framed message may span several
 * data-channel messages (stacks differ in how they cut), and one data-channel message may hold
 * several. At most one framed message, `MAX_MESSAGE_SIZE` bytes, is ever held: a length
 * prefix announcing more throws {@link WebRTCMessageTooLargeError} before anything is buffered.
 */
export class MessageDecoder {
  private pending: Uint8Array = new Uint8Array(0)

  /** Bytes held of an incomplete framed message. */
  get bufferedBytes (): number {
    return this.pending.byteLength
  }

  /** Feed one data-channel message; returns the messages it completed, in order. */
  push (chunk: Uint8Array): Message[] {
    let bytes = chunk
    if (this.pending.byteLength > 0) {
      bytes = new Uint8Array(this.pending.byteLength + chunk.byteLength)
      bytes.set(this.pending, 0)
      bytes.set(chunk, this.pending.byteLength)
    }
    const out: Message[] = []
    let offset = 0
    for (;;) {
      const prefix = readVarint(bytes, offset, bytes.byteLength)
      if (prefix == null) break
      if (prefix.next - offset + prefix.value > MAX_MESSAGE_SIZE) throw new WebRTCMessageTooLargeError(prefix.value)
      if (prefix.next + prefix.value > bytes.byteLength) break
      // Copy out of the caller's buffer: node-datachannel may reuse it.
      out.push(decodeMessage(bytes.slice(prefix.next, prefix.next + prefix.value)))
      offset = prefix.next + prefix.value
    }
    this.pending = offset === bytes.byteLength ? new Uint8Array(0) : bytes.slice(offset)
    return out
  }
}
