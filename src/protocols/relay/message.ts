/**
 * The circuit relay v2 messages (libp2p `relay/circuit-v2.md`): `HopMessage` on
 * `/libp2p/circuit/relay/0.2.0/hop`, `StopMessage` on `/libp2p/circuit/relay/0.2.0/stop`, and
 * the signed reservation voucher. Encoded with protobufjs; field numbers are normative.
 *
 * The decoders are the only place bytes from the network become relay values: they check every
 * field a message of its type needs and throw {@link MalformedMessageError} otherwise, so the
 * hop and stop code only ever sees well-formed messages.
 *
 * @module
 */
import { peerIdFromMultihash } from '@libp2p/peer-id'
import { RecordEnvelope } from '@libp2p/peer-record'
import { multiaddr } from '@multiformats/multiaddr'
import * as Digest from 'multiformats/hashes/digest'
import protobuf from 'protobufjs'
import { PeerswarmError } from '../../core/errors.js'
import type { PeerId, PrivateKey, Record } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const PeerType = new protobuf.Type('Peer')
  .add(new protobuf.Field('id', 1, 'bytes'))
  .add(new protobuf.Field('addrs', 2, 'bytes', 'repeated'))
const ReservationType = new protobuf.Type('Reservation')
  .add(new protobuf.Field('expire', 1, 'uint64'))
  .add(new protobuf.Field('addrs', 2, 'bytes', 'repeated'))
  .add(new protobuf.Field('voucher', 3, 'bytes'))
const LimitType = new protobuf.Type('Limit')
  .add(new protobuf.Field('duration', 1, 'uint32'))
  .add(new protobuf.Field('data', 2, 'uint64'))
// Enums are read as plain varints: an unknown value is ours to refuse, not protobufjs's.
const HopType = new protobuf.Type('HopMessage')
  .add(new protobuf.Field('type', 1, 'int32'))
  .add(new protobuf.Field('peer', 2, 'Peer'))
  .add(new protobuf.Field('reservation', 3, 'Reservation'))
  .add(new protobuf.Field('limit', 4, 'Limit'))
  .add(new protobuf.Field('status', 5, 'int32'))
const StopType = new protobuf.Type('StopMessage')
  .add(new protobuf.Field('type', 1, 'int32'))
  .add(new protobuf.Field('peer', 2, 'Peer'))
  .add(new protobuf.Field('limit', 3, 'Limit'))
  .add(new protobuf.Field('status', 4, 'int32'))
const VoucherType = new protobuf.Type('Voucher')
  .add(new protobuf.Field('relay', 1, 'bytes'))
  .add(new protobuf.Field('peer', 2, 'bytes'))
  .add(new protobuf.Field('expiration', 3, 'uint64'))
new protobuf.Root().add(PeerType).add(ReservationType).add(LimitType).add(HopType).add(StopType).add(VoucherType)

/** The largest hop or stop message read or written, in bytes (rust-libp2p's). */
export const MAX_MESSAGE_SIZE = 4096

/** The status codes of the spec, by name. */
export const Status = Object.freeze({
  OK: 100,
  RESERVATION_REFUSED: 200,
  RESOURCE_LIMIT_EXCEEDED: 201,
  PERMISSION_DENIED: 202,
  CONNECTION_FAILED: 203,
  NO_RESERVATION: 204,
  MALFORMED_MESSAGE: 400,
  UNEXPECTED_MESSAGE: 401
})

/** A status code's name, e.g. `'NO_RESERVATION'`. */
export type StatusCode = keyof typeof Status

const STATUS_BY_NUMBER = new Map<number, StatusCode>(Object.entries(Status).map(([name, code]) => [code, name as StatusCode]))

/**
 * The limits a relay applies to a relayed connection. Either field absent (or 0 on the wire):
 * no such limit.
 */
export interface Limit {
  /** How long the relayed connection may last, in ms (the wire carries whole seconds). */
  readonly duration?: number
  /** How many bytes it may carry (rust-libp2p and js-libp2p count both directions together). */
  readonly data?: number
}

/** A peer in a message: its id and, rarely, addresses. */
export interface PeerInfo {
  readonly id: PeerId
  /** Addresses; unparsable ones are dropped when decoding. */
  readonly addrs: readonly Multiaddr[]
}

/** A reservation granted by a relay. */
export interface Reservation {
  /** When it expires, in UNIX seconds. */
  readonly expire: number
  /** The relay's public addresses, with or without `/p2p/<relay>`; unparsable ones are dropped. */
  readonly addrs: readonly Multiaddr[]
  /** The relay's signed voucher (a signed envelope, see {@link openVoucher}). */
  readonly voucher?: Uint8Array
}

/** A message of the hop protocol (client ↔ relay). */
export type HopMessage =
  | { readonly type: 'RESERVE' }
  | { readonly type: 'CONNECT', readonly peer: PeerInfo }
  | { readonly type: 'STATUS', readonly status: StatusCode, readonly reservation?: Reservation, readonly limit?: Limit }

/** A message of the stop protocol (relay → the peer being reached). */
export type StopMessage =
  | { readonly type: 'CONNECT', readonly peer: PeerInfo, readonly limit?: Limit }
  | { readonly type: 'STATUS', readonly status: StatusCode }

/** A relay message could not be decoded, or lacks a field its type requires. */
export class MalformedMessageError extends PeerswarmError {
  constructor (message: string, cause?: unknown) {
    super('ERR_RELAY_MALFORMED_MESSAGE', message, { cause })
  }
}

/** A reservation voucher is not a validly signed envelope of the relay's voucher record. */
export class InvalidVoucherError extends PeerswarmError {
  constructor (message: string, cause?: unknown) {
    super('ERR_RELAY_INVALID_VOUCHER', message, { cause })
  }
}

interface RawPeer { id?: Uint8Array, addrs?: Uint8Array[] }
interface RawReservation { expire?: number, addrs?: Uint8Array[], voucher?: Uint8Array }
interface RawLimit { duration?: number, data?: number }
interface RawMessage { type?: number, peer?: RawPeer, reservation?: RawReservation, limit?: RawLimit, status?: number }

const HOP_TYPES = ['RESERVE', 'CONNECT', 'STATUS'] as const
const STOP_TYPES = ['CONNECT', 'STATUS'] as const

/** Encode a hop message. */
export function encodeHopMessage (message: HopMessage): Uint8Array {
  const raw: RawMessage = { type: HOP_TYPES.indexOf(message.type) }
  if (message.type === 'CONNECT') raw.peer = rawPeer(message.peer)
  if (message.type === 'STATUS') {
    raw.status = Status[message.status]
    if (message.reservation != null) raw.reservation = rawReservation(message.reservation)
    if (message.limit != null) raw.limit = rawLimit(message.limit)
  }
  return HopType.encode(HopType.fromObject(raw)).finish()
}

/** Encode a stop message. */
export function encodeStopMessage (message: StopMessage): Uint8Array {
  const raw: RawMessage = { type: STOP_TYPES.indexOf(message.type) }
  if (message.type === 'CONNECT') {
    raw.peer = rawPeer(message.peer)
    if (message.limit != null) raw.limit = rawLimit(message.limit)
  } else {
    raw.status = Status[message.status]
  }
  return StopType.encode(StopType.fromObject(raw)).finish()
}

/** Decode a hop message; throws {@link MalformedMessageError}. */
export function decodeHopMessage (bytes: Uint8Array): HopMessage {
  const raw = decodeRaw(HopType, bytes, 'hop')
  const type = HOP_TYPES[raw.type ?? -1]
  switch (type) {
    case 'RESERVE':
      return { type }
    case 'CONNECT':
      return { type, peer: decodePeer(raw.peer, 'CONNECT') }
    case 'STATUS': {
      const message: { type: 'STATUS', status: StatusCode, reservation?: Reservation, limit?: Limit } = { type, status: decodeStatus(raw.status) }
      if (raw.reservation != null) message.reservation = decodeReservation(raw.reservation)
      if (raw.limit != null) message.limit = decodeLimit(raw.limit)
      return message
    }
    default:
      throw new MalformedMessageError(raw.type == null ? 'hop message without a type' : `hop message of unknown type ${raw.type}`)
  }
}

/** Decode a stop message; throws {@link MalformedMessageError}. */
export function decodeStopMessage (bytes: Uint8Array): StopMessage {
  const raw = decodeRaw(StopType, bytes, 'stop')
  const type = STOP_TYPES[raw.type ?? -1]
  switch (type) {
    case 'CONNECT': {
      const peer = decodePeer(raw.peer, 'CONNECT')
      return raw.limit == null ? { type, peer } : { type, peer, limit: decodeLimit(raw.limit) }
    }
    case 'STATUS':
      return { type, status: decodeStatus(raw.status) }
    default:
      throw new MalformedMessageError(raw.type == null ? 'stop message without a type' : `stop message of unknown type ${raw.type}`)
  }
}

function decodeRaw (type: protobuf.Type, bytes: Uint8Array, what: string): RawMessage {
  try {
    return type.toObject(type.decode(bytes), { defaults: false, longs: Number }) as RawMessage
  } catch (err) {
    throw new MalformedMessageError(`malformed ${what} message`, err)
  }
}

function decodeStatus (status: number | undefined): StatusCode {
  if (status == null) throw new MalformedMessageError('STATUS message without a status')
  const name = STATUS_BY_NUMBER.get(status)
  if (name == null) throw new MalformedMessageError(`unknown status ${status}`)
  return name
}

function decodePeer (raw: RawPeer | undefined, what: string): PeerInfo {
  if (raw?.id == null) throw new MalformedMessageError(`${what} message without a peer id`)
  let id: PeerId
  try {
    id = peerIdFromMultihash(Digest.decode(raw.id))
  } catch (err) {
    throw new MalformedMessageError(`${what} message with an invalid peer id`, err)
  }
  return { id, addrs: parseAddresses(raw.addrs) }
}

function decodeReservation (raw: RawReservation): Reservation {
  if (raw.expire == null) throw new MalformedMessageError('reservation without an expiry')
  const reservation = { expire: raw.expire, addrs: parseAddresses(raw.addrs) }
  return raw.voucher == null ? reservation : { ...reservation, voucher: raw.voucher }
}

function decodeLimit (raw: RawLimit): Limit {
  const limit: { duration?: number, data?: number } = {}
  if (raw.duration != null && raw.duration > 0) limit.duration = raw.duration * 1000
  if (raw.data != null && raw.data > 0) limit.data = raw.data
  return limit
}

function rawPeer (peer: PeerInfo): RawPeer {
  return { id: peer.id.toMultihash().bytes, addrs: peer.addrs.map(a => a.bytes) }
}

function rawReservation (reservation: Reservation): RawReservation {
  const raw: RawReservation = { expire: reservation.expire, addrs: reservation.addrs.map(a => a.bytes) }
  if (reservation.voucher != null) raw.voucher = reservation.voucher
  return raw
}

function rawLimit (limit: Limit): RawLimit {
  const raw: RawLimit = {}
  // Whole seconds on the wire; a limit below one second is announced as one, never as 0 (none).
  if (limit.duration != null) raw.duration = Math.max(1, Math.ceil(limit.duration / 1000))
  if (limit.data != null) raw.data = limit.data
  return raw
}

function parseAddresses (raw: readonly Uint8Array[] | undefined): Multiaddr[] {
  const addresses: Multiaddr[] = []
  for (const bytes of raw ?? []) {
    try {
      addresses.push(multiaddr(bytes))
    } catch {
      // An address we cannot parse is one we cannot use either.
    }
  }
  return addresses
}

/** The signature domain of reservation vouchers. */
export const VOUCHER_DOMAIN = 'libp2p-relay-rsvp'
/** The payload type of reservation vouchers: multicodec 0x0302, as its two bytes (as go and js write it). */
const VOUCHER_CODEC = new Uint8Array([0x03, 0x02])

/** What a reservation voucher testifies: `relay` will relay for `peer` until `expiration`. */
export interface Voucher {
  readonly relay: PeerId
  readonly peer: PeerId
  /** UNIX seconds. */
  readonly expiration: number
}

/** The voucher as a signed-envelope record. */
class VoucherRecord implements Record {
  readonly domain = VOUCHER_DOMAIN
  readonly codec = VOUCHER_CODEC

  constructor (readonly voucher: Voucher) {}

  marshal (): Uint8Array {
    const { relay, peer, expiration } = this.voucher
    // Canonical form: fields in order, no unknown fields (protobufjs writes them in id order).
    return VoucherType.encode(VoucherType.fromObject({ relay: relay.toMultihash().bytes, peer: peer.toMultihash().bytes, expiration })).finish()
  }

  equals (other: Record): boolean {
    return other instanceof VoucherRecord && other.voucher.relay.equals(this.voucher.relay) &&
      other.voucher.peer.equals(this.voucher.peer) && other.voucher.expiration === this.voucher.expiration
  }
}

/** Sign a reservation voucher with the relay's key; the bytes go into `Reservation.voucher`. */
export async function signVoucher (key: PrivateKey, voucher: Voucher): Promise<Uint8Array> {
  const envelope = await RecordEnvelope.seal(new VoucherRecord(voucher), key)
  return envelope.marshal()
}

/**
 * Open a reservation voucher: checks the envelope's signature for the voucher domain, its
 * payload type, and that the relay named in it signed it. Throws {@link InvalidVoucherError}.
 */
export async function openVoucher (bytes: Uint8Array): Promise<Voucher> {
  let envelope: RecordEnvelope
  try {
    envelope = await RecordEnvelope.openAndCertify(bytes, VOUCHER_DOMAIN)
  } catch (err) {
    throw new InvalidVoucherError('malformed or forged voucher envelope', err)
  }
  if (envelope.payloadType.byteLength !== 2 || envelope.payloadType[0] !== 0x03 || envelope.payloadType[1] !== 0x02) {
    throw new InvalidVoucherError('the envelope does not hold a reservation voucher')
  }
  let raw: { relay?: Uint8Array, peer?: Uint8Array, expiration?: number }
  try {
    raw = VoucherType.toObject(VoucherType.decode(envelope.payload), { defaults: false, longs: Number })
  } catch (err) {
    throw new InvalidVoucherError('malformed voucher payload', err)
  }
  if (raw.relay == null || raw.peer == null || raw.expiration == null) throw new InvalidVoucherError('voucher without relay, peer or expiration')
  let relay: PeerId
  let peer: PeerId
  try {
    relay = peerIdFromMultihash(Digest.decode(raw.relay))
    peer = peerIdFromMultihash(Digest.decode(raw.peer))
  } catch (err) {
    throw new InvalidVoucherError('voucher with an invalid peer id', err)
  }
  if (!peerIdFromMultihash(envelope.publicKey.toMultihash()).equals(relay)) throw new InvalidVoucherError('the voucher is not signed by its relay')
  return { relay, peer, expiration: raw.expiration }
}
