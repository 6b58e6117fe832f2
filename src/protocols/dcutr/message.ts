/**
 * DCUtR's message (`message.proto`): `HolePunch { required Type type = 1; repeated bytes
 * ObsAddrs = 2 }` with `CONNECT = 100` and `SYNC = 300`, varint-length-prefixed, at most
 * {@link MAX_MESSAGE_SIZE} bytes.
 *
 * Encoded and decoded by hand (two fields): the decoder is the only place bytes from the
 * network become DCUtR values. It skips unknown fields as protobuf asks, drops addresses that
 * do not parse (as rust-libp2p does) and throws {@link MalformedMessageError} for anything
 * else: a truncated field, a wrong wire type, a missing or unknown `type`.
 *
 * @module
 */
import { multiaddr } from '@multiformats/multiaddr'
import { PeerswarmError } from '../../core/errors.js'
import type { Multiaddr } from '@multiformats/multiaddr'

/** The largest message read or written, in bytes (the spec's 4 KiB, as rust-libp2p and js-libp2p). */
export const MAX_MESSAGE_SIZE = 4096

/** `HolePunch.Type`, by name. */
export const HolePunchType = Object.freeze({ CONNECT: 100, SYNC: 300 })
/** A `HolePunch.Type` name. */
export type HolePunchTypeName = keyof typeof HolePunchType

/** A decoded `HolePunch`. */
export interface HolePunch {
  /** `CONNECT` (with addresses) or `SYNC`. */
  readonly type: HolePunchTypeName
  /** The addresses that parsed, in the order sent. */
  readonly obsAddrs: readonly Multiaddr[]
  /** How many entries of `ObsAddrs` did not parse as multiaddrs (and were dropped). */
  readonly invalidAddrs: number
}

/**
 * A DCUtR message could not be decoded, or lacks its `type`.
 *
 * @group Errors
 */
export class MalformedMessageError extends PeerswarmError {
  constructor (message: string, cause?: unknown) {
    super('ERR_DCUTR_MALFORMED_MESSAGE', message, { cause })
  }
}

const VARINT = 0
const FIXED64 = 1
const LENGTH = 2
const FIXED32 = 5

function pushVarint (out: number[], value: number): void {
  let v = value
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80)
    v = Math.floor(v / 128)
  }
  out.push(v)
}

/** Encode a `HolePunch` (without its length prefix). */
export function encodeHolePunch (type: HolePunchTypeName, obsAddrs: readonly Multiaddr[] = []): Uint8Array {
  const head: number[] = []
  pushVarint(head, (1 << 3) | VARINT)
  pushVarint(head, HolePunchType[type])
  const parts: Uint8Array[] = [Uint8Array.from(head)]
  let length = head.length
  for (const address of obsAddrs) {
    const prefix: number[] = []
    pushVarint(prefix, (2 << 3) | LENGTH)
    pushVarint(prefix, address.bytes.byteLength)
    parts.push(Uint8Array.from(prefix), address.bytes)
    length += prefix.length + address.bytes.byteLength
  }
  const out = new Uint8Array(length)
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.byteLength
  }
  return out
}

/** Decode a `HolePunch`; throws {@link MalformedMessageError}. */
export function decodeHolePunch (bytes: Uint8Array): HolePunch {
  let pos = 0
  const varint = (): number => {
    let result = 0
    for (let shift = 0; shift < 70; shift += 7) {
      if (pos >= bytes.byteLength) throw new MalformedMessageError('truncated varint in HolePunch')
      const byte = bytes[pos++] ?? 0
      // Values past 2^53 lose precision; they are out of range for every field here anyway.
      result += (byte & 0x7f) * 2 ** shift
      if ((byte & 0x80) === 0) return result
    }
    throw new MalformedMessageError('varint longer than 10 bytes in HolePunch')
  }
  let type: number | undefined
  const obsAddrs: Multiaddr[] = []
  let invalidAddrs = 0
  while (pos < bytes.byteLength) {
    const key = varint()
    const field = Math.floor(key / 8)
    const wireType = key % 8
    if (field === 0 || field > 0x1fffffff) throw new MalformedMessageError('invalid field number in HolePunch')
    switch (wireType) {
      case VARINT: {
        const value = varint()
        if (field === 1) type = value
        break
      }
      case FIXED64:
        if (pos + 8 > bytes.byteLength) throw new MalformedMessageError('truncated fixed64 in HolePunch')
        pos += 8
        break
      case LENGTH: {
        const length = varint()
        if (length > bytes.byteLength - pos) throw new MalformedMessageError('truncated field in HolePunch')
        const value = bytes.subarray(pos, pos + length)
        pos += length
        if (field === 2) {
          try {
            obsAddrs.push(multiaddr(value))
          } catch {
            invalidAddrs++
          }
        }
        break
      }
      case FIXED32:
        if (pos + 4 > bytes.byteLength) throw new MalformedMessageError('truncated fixed32 in HolePunch')
        pos += 4
        break
      default:
        throw new MalformedMessageError(`unsupported wire type ${wireType} in HolePunch`)
    }
    if ((field === 1 && wireType !== VARINT) || (field === 2 && wireType !== LENGTH)) {
      throw new MalformedMessageError(`field ${field} of HolePunch has wire type ${wireType}`)
    }
  }
  if (type === undefined) throw new MalformedMessageError('HolePunch without a type')
  const name = type === HolePunchType.CONNECT ? 'CONNECT' : type === HolePunchType.SYNC ? 'SYNC' : undefined
  if (name === undefined) throw new MalformedMessageError(`unknown HolePunch type ${type}`)
  return { type: name, obsAddrs, invalidAddrs }
}
