/**
 * The AutoNAT v2 messages (libp2p `autonat/autonat-v2.md`): `Message` (a `DialRequest`,
 * `DialResponse`, `DialDataRequest` or `DialDataResponse`) on `/libp2p/autonat/2/dial-request`,
 * `DialBack` and `DialBackResponse` on `/libp2p/autonat/2/dial-back`. Field numbers are
 * normative; the nonces are `fixed64`, kept as `bigint` (a `number` would lose bits).
 *
 * Encoded and decoded by hand (a few fields each): the decoders are the only place bytes from
 * the network become AutoNAT values; they check what each message needs, skip unknown fields
 * as protobuf asks and throw {@link MalformedMessageError} for anything else.
 *
 * @module
 */
import { multiaddr } from '@multiformats/multiaddr'
import { PeerswarmError } from '../../../core/errors.js'
import type { Multiaddr } from '@multiformats/multiaddr'

/** The largest message read or written, in bytes (js-libp2p's `MAX_MESSAGE_SIZE`). */
export const MAX_MESSAGE_SIZE = 8192
/** The most bytes of dial data one `DialDataResponse` carries (the spec's 4096). */
export const DIAL_DATA_CHUNK_SIZE = 4096

/** `DialResponse.status`, by name. */
export const ResponseStatus = Object.freeze({
  E_INTERNAL_ERROR: 0,
  E_REQUEST_REJECTED: 100,
  E_DIAL_REFUSED: 101,
  OK: 200
})
/** A `DialResponse.status` name. */
export type ResponseStatusCode = keyof typeof ResponseStatus

/** `DialResponse.dialStatus`, by name. */
export const DialStatus = Object.freeze({
  UNUSED: 0,
  E_DIAL_ERROR: 100,
  E_DIAL_BACK_ERROR: 101,
  OK: 200
})
/** A `DialResponse.dialStatus` name. */
export type DialStatusCode = keyof typeof DialStatus

/** A message of the dial-request protocol. */
export type Message =
  | {
    readonly type: 'DialRequest'
    /** The addresses to test, in priority order; `undefined` where one did not parse. */
    readonly addrs: ReadonlyArray<Multiaddr | undefined>
    readonly nonce: bigint
  }
  | { readonly type: 'DialResponse', readonly status: ResponseStatusCode, readonly addrIdx: number, readonly dialStatus: DialStatusCode }
  | { readonly type: 'DialDataRequest', readonly addrIdx: number, readonly numBytes: number }
  | { readonly type: 'DialDataResponse', readonly data: Uint8Array }

/** An AutoNAT v2 message could not be decoded, or lacks what its type requires. */
export class MalformedMessageError extends PeerswarmError {
  constructor (message: string, cause?: unknown) {
    super('ERR_AUTONAT_MALFORMED_MESSAGE', message, { cause })
  }
}

// ---- encoding ----

class Writer {
  private readonly parts: number[] = []
  private readonly chunks: Uint8Array[] = []
  private length = 0

  varint (value: bigint | number): this {
    let v = BigInt(value)
    if (v < 0n) v = BigInt.asUintN(64, v)
    while (v >= 0x80n) {
      this.parts.push(Number(v & 0x7fn) | 0x80)
      v >>= 7n
    }
    this.parts.push(Number(v))
    return this
  }

  tag (field: number, wireType: number): this {
    return this.varint((field << 3) | wireType)
  }

  fixed64 (value: bigint): this {
    let v = BigInt.asUintN(64, value)
    for (let i = 0; i < 8; i++) {
      this.parts.push(Number(v & 0xffn))
      v >>= 8n
    }
    return this
  }

  bytes (value: Uint8Array): this {
    this.varint(value.byteLength)
    this.flush()
    this.chunks.push(value)
    this.length += value.byteLength
    return this
  }

  finish (): Uint8Array {
    this.flush()
    const out = new Uint8Array(this.length)
    let offset = 0
    for (const chunk of this.chunks) {
      out.set(chunk, offset)
      offset += chunk.byteLength
    }
    return out
  }

  private flush (): void {
    if (this.parts.length === 0) return
    this.chunks.push(Uint8Array.from(this.parts))
    this.length += this.parts.length
    this.parts.length = 0
  }
}

const VARINT = 0
const FIXED64 = 1
const LENGTH = 2
const FIXED32 = 5

/** Encode a dial-request message. */
export function encodeMessage (message: Message): Uint8Array {
  const inner = new Writer()
  let field: number
  switch (message.type) {
    case 'DialRequest':
      field = 1
      for (const addr of message.addrs) inner.tag(1, LENGTH).bytes(addr?.bytes ?? new Uint8Array(0))
      inner.tag(2, FIXED64).fixed64(message.nonce)
      break
    case 'DialResponse':
      field = 2
      inner.tag(1, VARINT).varint(ResponseStatus[message.status])
      inner.tag(2, VARINT).varint(message.addrIdx)
      inner.tag(3, VARINT).varint(DialStatus[message.dialStatus])
      break
    case 'DialDataRequest':
      field = 3
      inner.tag(1, VARINT).varint(message.addrIdx)
      inner.tag(2, VARINT).varint(message.numBytes)
      break
    case 'DialDataResponse':
      field = 4
      inner.tag(1, LENGTH).bytes(message.data)
      break
  }
  return new Writer().tag(field, LENGTH).bytes(inner.finish()).finish()
}

/** Encode a `DialBack` (the dial-back stream's first message). */
export function encodeDialBack (nonce: bigint): Uint8Array {
  return new Writer().tag(1, FIXED64).fixed64(nonce).finish()
}

/** Encode a `DialBackResponse { status: OK }`. */
export function encodeDialBackResponse (): Uint8Array {
  return new Writer().tag(1, VARINT).varint(0).finish()
}

// ---- decoding ----

/** A field read from a message: a varint (as bigint), a fixed64, or bytes. */
type Field =
  | { readonly field: number, readonly wireType: 0 | 1, readonly value: bigint }
  | { readonly field: number, readonly wireType: 2, readonly value: Uint8Array }
  | { readonly field: number, readonly wireType: 5 }

function * fields (bytes: Uint8Array, what: string): Generator<Field> {
  let pos = 0
  const varint = (): bigint => {
    let result = 0n
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (pos >= bytes.byteLength) throw new MalformedMessageError(`truncated varint in ${what}`)
      const byte = bytes[pos++] ?? 0
      result |= BigInt(byte & 0x7f) << shift
      if ((byte & 0x80) === 0) return BigInt.asUintN(64, result)
    }
    throw new MalformedMessageError(`varint longer than 10 bytes in ${what}`)
  }
  while (pos < bytes.byteLength) {
    const key = varint()
    const field = Number(key >> 3n)
    const wireType = Number(key & 7n)
    if (field === 0 || key >> 3n > 0x1fffffffn) throw new MalformedMessageError(`invalid field number in ${what}`)
    switch (wireType) {
      case VARINT:
        yield { field, wireType, value: varint() }
        break
      case FIXED64: {
        if (pos + 8 > bytes.byteLength) throw new MalformedMessageError(`truncated fixed64 in ${what}`)
        let value = 0n
        for (let i = 7; i >= 0; i--) value = (value << 8n) | BigInt(bytes[pos + i] ?? 0)
        pos += 8
        yield { field, wireType, value }
        break
      }
      case LENGTH: {
        const length = varint()
        if (length > BigInt(bytes.byteLength - pos)) throw new MalformedMessageError(`truncated field in ${what}`)
        const end = pos + Number(length)
        const value = bytes.subarray(pos, end)
        pos = end
        yield { field, wireType, value }
        break
      }
      case FIXED32:
        if (pos + 4 > bytes.byteLength) throw new MalformedMessageError(`truncated fixed32 in ${what}`)
        pos += 4
        yield { field, wireType }
        break
      default:
        throw new MalformedMessageError(`unsupported wire type ${wireType} in ${what}`)
    }
  }
}

function expectWire (f: Field, wireType: number, what: string): void {
  if (f.wireType !== wireType) throw new MalformedMessageError(`field ${f.field} of ${what} has wire type ${f.wireType}`)
}

function smallInt (value: bigint, what: string, max = 0xffffffffn): number {
  if (value > max) throw new MalformedMessageError(`${what} out of range`)
  return Number(value)
}

function enumName<T extends Record<string, number>> (values: T, code: number, what: string): keyof T {
  for (const [name, value] of Object.entries(values)) if (value === code) return name
  throw new MalformedMessageError(`unknown ${what} ${code}`)
}

/** Decode a dial-request message; throws {@link MalformedMessageError}. */
export function decodeMessage (bytes: Uint8Array): Message {
  let body: { field: number, value: Uint8Array } | undefined
  for (const f of fields(bytes, 'Message')) {
    if (f.field < 1 || f.field > 4) continue
    expectWire(f, LENGTH, 'Message')
    // A oneof: the last one wins, as protobuf says.
    body = { field: f.field, value: (f as { value: Uint8Array }).value }
  }
  if (body == null) throw new MalformedMessageError('message without a body')
  switch (body.field) {
    case 1: {
      const addrs: Array<Multiaddr | undefined> = []
      let nonce: bigint | undefined
      for (const f of fields(body.value, 'DialRequest')) {
        if (f.field === 1) {
          expectWire(f, LENGTH, 'DialRequest')
          addrs.push(parseAddress((f as { value: Uint8Array }).value))
        } else if (f.field === 2) {
          expectWire(f, FIXED64, 'DialRequest')
          nonce = (f as { value: bigint }).value
        }
      }
      // proto3: an absent nonce is 0.
      return { type: 'DialRequest', addrs, nonce: nonce ?? 0n }
    }
    case 2: {
      let status = 0
      let addrIdx = 0
      let dialStatus = 0
      for (const f of fields(body.value, 'DialResponse')) {
        if (f.field < 1 || f.field > 3) continue
        expectWire(f, VARINT, 'DialResponse')
        const value = (f as { value: bigint }).value
        if (f.field === 1) status = smallInt(value, 'status', 0x7fffffffn)
        else if (f.field === 2) addrIdx = smallInt(value, 'addrIdx')
        else dialStatus = smallInt(value, 'dialStatus', 0x7fffffffn)
      }
      return {
        type: 'DialResponse',
        status: enumName(ResponseStatus, status, 'response status'),
        addrIdx,
        dialStatus: enumName(DialStatus, dialStatus, 'dial status')
      }
    }
    case 3: {
      let addrIdx = 0
      let numBytes = 0
      for (const f of fields(body.value, 'DialDataRequest')) {
        if (f.field !== 1 && f.field !== 2) continue
        expectWire(f, VARINT, 'DialDataRequest')
        const value = (f as { value: bigint }).value
        if (f.field === 1) addrIdx = smallInt(value, 'addrIdx')
        else numBytes = smallInt(value, 'numBytes', BigInt(Number.MAX_SAFE_INTEGER))
      }
      return { type: 'DialDataRequest', addrIdx, numBytes }
    }
    default: {
      let data: Uint8Array = new Uint8Array(0)
      for (const f of fields(body.value, 'DialDataResponse')) {
        if (f.field !== 1) continue
        expectWire(f, LENGTH, 'DialDataResponse')
        data = (f as { value: Uint8Array }).value
      }
      return { type: 'DialDataResponse', data }
    }
  }
}

/** Decode a `DialBack`, giving its nonce; throws {@link MalformedMessageError}. */
export function decodeDialBack (bytes: Uint8Array): bigint {
  let nonce: bigint | undefined
  for (const f of fields(bytes, 'DialBack')) {
    if (f.field !== 1) continue
    expectWire(f, FIXED64, 'DialBack')
    nonce = (f as { value: bigint }).value
  }
  return nonce ?? 0n
}

/** Decode a `DialBackResponse`; throws {@link MalformedMessageError} unless its status is OK. */
export function decodeDialBackResponse (bytes: Uint8Array): 'OK' {
  let status = 0n
  for (const f of fields(bytes, 'DialBackResponse')) {
    if (f.field !== 1) continue
    expectWire(f, VARINT, 'DialBackResponse')
    status = (f as { value: bigint }).value
  }
  if (status !== 0n) throw new MalformedMessageError(`unknown dial-back status ${status}`)
  return 'OK'
}

function parseAddress (bytes: Uint8Array): Multiaddr | undefined {
  try {
    return multiaddr(bytes)
  } catch {
    return undefined
  }
}

/** A random 64-bit nonce, from the platform's CSPRNG. */
export function randomNonce (): bigint {
  const bytes = crypto.getRandomValues(new Uint8Array(8))
  let n = 0n
  for (const byte of bytes) n = (n << 8n) | BigInt(byte)
  return n
}
