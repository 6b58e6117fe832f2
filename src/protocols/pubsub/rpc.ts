/**
 * The pubsub RPC (libp2p pubsub spec, proto2; field numbers are normative), shared by FloodSub
 * and GossipSub, encoded with protobufjs. Unknown fields are skipped, as proto2 requires (go
 * already sends partial-message extension fields in every subscription).
 *
 * @module
 */
import protobuf from 'protobufjs'
import { withFrame } from '../../behaviour/framing.js'
import { PeerswarmError } from '../../core/errors.js'

const { Field, Type } = protobuf

const SubOpts = new Type('SubOpts')
  .add(new Field('subscribe', 1, 'bool'))
  .add(new Field('topicid', 2, 'string'))

const MessageType = new Type('Message')
  .add(new Field('from', 1, 'bytes'))
  .add(new Field('data', 2, 'bytes'))
  .add(new Field('seqno', 3, 'bytes'))
  .add(new Field('topic', 4, 'string'))
  .add(new Field('signature', 5, 'bytes'))
  .add(new Field('key', 6, 'bytes'))

const ControlIHave = new Type('ControlIHave')
  .add(new Field('topicID', 1, 'string'))
  .add(new Field('messageIDs', 2, 'bytes', 'repeated'))
const ControlIWant = new Type('ControlIWant')
  .add(new Field('messageIDs', 1, 'bytes', 'repeated'))
const ControlGraft = new Type('ControlGraft')
  .add(new Field('topicID', 1, 'string'))
const PeerInfo = new Type('PeerInfo')
  .add(new Field('peerID', 1, 'bytes'))
  .add(new Field('signedPeerRecord', 2, 'bytes'))
const ControlPrune = new Type('ControlPrune')
  .add(new Field('topicID', 1, 'string'))
  .add(new Field('peers', 2, 'PeerInfo', 'repeated'))
  .add(new Field('backoff', 3, 'uint64'))
const ControlIDontWant = new Type('ControlIDontWant')
  .add(new Field('messageIDs', 1, 'bytes', 'repeated'))
const ControlMessage = new Type('ControlMessage')
  .add(new Field('ihave', 1, 'ControlIHave', 'repeated'))
  .add(new Field('iwant', 2, 'ControlIWant', 'repeated'))
  .add(new Field('graft', 3, 'ControlGraft', 'repeated'))
  .add(new Field('prune', 4, 'ControlPrune', 'repeated'))
  .add(new Field('idontwant', 5, 'ControlIDontWant', 'repeated'))

const RPC = new Type('RPC')
  .add(new Field('subscriptions', 1, 'SubOpts', 'repeated'))
  .add(new Field('publish', 2, 'Message', 'repeated'))
  .add(new Field('control', 3, 'ControlMessage'))

// Resolved now: protobufjs links a field to its nested type only when that type is first
// encoded or decoded, and `checkWireTypes` reads the links before any decode (a node whose first
// received RPC carried a GRAFT refused it).
new protobuf.Root().add(RPC).add(SubOpts).add(MessageType).add(ControlMessage).add(ControlIHave).add(ControlIWant)
  .add(ControlGraft).add(ControlPrune).add(ControlIDontWant).add(PeerInfo)
  .resolveAll()

/** A subscription change in an RPC. */
export interface SubOptsRecord {
  readonly subscribe?: boolean
  readonly topicid?: string
}

/**
 * A message as on the wire. Absent fields are `undefined`: presence matters (StrictNoSign
 * rejects messages that carry `from`, `seqno`, `signature` or `key` at all).
 */
export interface RawMessage {
  readonly from?: Uint8Array
  readonly data?: Uint8Array
  readonly seqno?: Uint8Array
  readonly topic?: string
  readonly signature?: Uint8Array
  readonly key?: Uint8Array
}

/** GossipSub control messages (carried here so that FloodSub and GossipSub share one codec). */
export interface ControlRecord {
  readonly ihave?: ReadonlyArray<{ readonly topicID?: string, readonly messageIDs?: readonly Uint8Array[] }>
  readonly iwant?: ReadonlyArray<{ readonly messageIDs?: readonly Uint8Array[] }>
  readonly graft?: ReadonlyArray<{ readonly topicID?: string }>
  readonly prune?: ReadonlyArray<{ readonly topicID?: string, readonly peers?: ReadonlyArray<{ readonly peerID?: Uint8Array, readonly signedPeerRecord?: Uint8Array }>, readonly backoff?: number }>
  readonly idontwant?: ReadonlyArray<{ readonly messageIDs?: readonly Uint8Array[] }>
}

/** One pubsub RPC. */
export interface Rpc {
  readonly subscriptions?: readonly SubOptsRecord[]
  readonly publish?: readonly RawMessage[]
  readonly control?: ControlRecord
}

/**
 * A received RPC could not be decoded.
 *
 * @group Errors
 */
export class InvalidRpcError extends PeerswarmError {
  constructor (message: string, cause?: unknown) {
    super('ERR_INVALID_RPC', message, { cause })
  }
}

/** Encode an RPC (fields in ascending number order, absent fields omitted). */
export function encodeRpc (rpc: Rpc): Uint8Array {
  // Encoded with its length prefix: a large RPC (in a buffer of its own, not a view into
  // protobufjs's shared pool of small buffers) is then framed by `encodeFrame` without a copy.
  const frame = RPC.encodeDelimited(rpc as protobuf.Message).finish()
  const body = frame.subarray(prefixLength(frame))
  if (frame.byteOffset === 0 && frame.buffer.byteLength === frame.byteLength) withFrame(body, frame)
  return body
}

/** The length of the uvarint at the start of `frame`. */
function prefixLength (frame: Uint8Array): number {
  let at = 0
  while ((frame[at] & 0x80) !== 0) at++
  return at + 1
}

/** Encode one message alone, e.g. the part of it that is signed. */
export function encodeMessage (message: RawMessage): Uint8Array {
  return MessageType.encode(message as protobuf.Message).finish()
}

const utf8 = new TextEncoder()

/**
 * Topics encoded for `encodeMessageAfter`, which runs for every signature checked: a node
 * checks messages of the few topics it subscribes to, and encoding them again each time showed
 * in profiles (bench/README.md). Forgotten all at once past `TOPIC_CACHE_SIZE`.
 */
const topicBytes = new Map<string, Uint8Array>()
const TOPIC_CACHE_SIZE = 256

function encodeTopic (topic: string): Uint8Array {
  let bytes = topicBytes.get(topic)
  if (bytes === undefined) {
    if (topicBytes.size >= TOPIC_CACHE_SIZE) topicBytes.clear()
    bytes = utf8.encode(topic)
    topicBytes.set(topic, bytes)
  }
  return bytes
}

/**
 * `prefix` followed by `message`'s encoding (as `encodeMessage`: fields in number order, absent
 * ones omitted), in one array: what a signature covers, made with one allocation and one copy
 * of the data (encoding, then prefixing, took two of each: a 16 KiB message cost 64 KiB of
 * short-lived buffers per signature checked). With `into` large enough, written at its start
 * and returned as a view of it, allocating nothing (for bytes needed only until a synchronous
 * check returns).
 */
export function encodeMessageAfter (prefix: Uint8Array, message: RawMessage, into?: Uint8Array): Uint8Array {
  const topic = message.topic == null ? undefined : encodeTopic(message.topic)
  // Field numbers 1–6, all length-delimited: tag (one byte), length, bytes.
  const fields = [message.from, message.data, message.seqno, topic, message.signature, message.key]
  let size = prefix.byteLength
  for (const field of fields) if (field != null) size += 1 + varintLength(field.byteLength) + field.byteLength
  const out = into != null && into.byteLength >= size ? into.subarray(0, size) : new Uint8Array(size)
  out.set(prefix)
  let at = prefix.byteLength
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]
    if (field == null) continue
    out[at++] = ((i + 1) << 3) | 2
    let length = field.byteLength
    while (length >= 0x80) {
      out[at++] = (length & 0x7f) | 0x80
      length >>>= 7
    }
    out[at++] = length
    out.set(field, at)
    at += field.byteLength
  }
  return out
}

function varintLength (value: number): number {
  let length = 1
  while (value >= 0x80) {
    value >>>= 7
    length++
  }
  return length
}

/**
 * Decode an RPC; throws `InvalidRpcError` for malformed input, including a known field sent
 * with the wrong wire type (protobufjs alone would read such a field as garbage).
 */
export function decodeRpc (bytes: Uint8Array): Rpc {
  try {
    checkWireTypes(RPC, protobuf.Reader.create(bytes), bytes.byteLength)
    return toPlain(RPC.decode(bytes)) as Rpc
  } catch (err) {
    if (err instanceof InvalidRpcError) throw err
    throw new InvalidRpcError(`malformed RPC: ${err instanceof Error ? err.message : String(err)}`, err)
  }
}

/** The wire type each field type must arrive with (our schema has no packed or fixed fields). */
const WIRE_TYPES: Readonly<Record<string, number>> = { bool: 0, uint64: 0, string: 2, bytes: 2 }

/** Walk `type`'s encoding up to `end`, checking known fields' wire types, recursively. */
function checkWireTypes (type: protobuf.Type, reader: protobuf.Reader, end: number): void {
  while (reader.pos < end) {
    const tag = reader.uint32()
    const wireType = tag & 7
    const field = type.fieldsById[tag >>> 3]
    if (field == null) {
      reader.skipType(wireType)
      continue
    }
    const nested = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined
    const expected = nested != null ? 2 : WIRE_TYPES[field.type]
    if (wireType !== expected) throw new InvalidRpcError(`field ${type.name}.${field.name} has wire type ${wireType}, expected ${expected}`)
    if (nested != null) {
      const length = reader.uint32()
      const nestedEnd = reader.pos + length
      if (nestedEnd > end) throw new InvalidRpcError(`field ${type.name}.${field.name} runs past its container`)
      checkWireTypes(nested, reader, nestedEnd)
    } else {
      reader.skipType(wireType)
    }
  }
}

/**
 * protobufjs keeps defaults on the prototype and sets only the fields present on the wire as
 * own properties; keep exactly those, recursively, so absence stays visible. `uint64` values
 * (PRUNE backoff) become numbers.
 */
function toPlain (value: unknown): unknown {
  if (value instanceof Uint8Array || value == null || typeof value !== 'object') return value
  if (Array.isArray(value)) return value.map(toPlain)
  if (isLong(value)) return value.toNumber()
  const plain: Record<string, unknown> = {}
  for (const key of Object.keys(value)) {
    const field = (value as Record<string, unknown>)[key]
    if (Array.isArray(field) && field.length === 0) continue
    plain[key] = toPlain(field)
  }
  return plain
}

function isLong (value: object): value is { toNumber: () => number } {
  return 'low' in value && 'high' in value && typeof (value as { toNumber?: unknown }).toNumber === 'function'
}
