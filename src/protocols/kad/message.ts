/**
 * The Kademlia wire message (libp2p kad-dht spec, `Message`, `Record`, `Peer`; proto3, field
 * numbers normative), encoded and decoded by hand with protobufjs's `Reader` and `Writer`.
 *
 * The decoder reads bytes from any remote, so it is hardened: a known field with the wrong wire
 * type, a length running past its container, an unknown message type or a record without a key
 * is an {@link InvalidMessageError}; unknown fields are skipped (rust-libp2p adds `publisher`
 * and `ttl` to records, others may add more); peers beyond `maxPeers` per list and addresses
 * beyond `maxAddressesPerPeer` per peer are skipped without being decoded, and so are peers
 * whose id does not parse and addresses that do not parse or name another peer.
 *
 * @module
 */
import { peerIdFromMultihash } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import * as Digest from 'multiformats/hashes/digest'
import protobuf from 'protobufjs'
import { PeerswarmError } from '../../core/errors.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** The message kinds, by their wire number. `PING` (5) is deprecated and never sent. */
export type MessageType = 'PUT_VALUE' | 'GET_VALUE' | 'ADD_PROVIDER' | 'GET_PROVIDERS' | 'FIND_NODE' | 'PING'

const TYPES: readonly MessageType[] = ['PUT_VALUE', 'GET_VALUE', 'ADD_PROVIDER', 'GET_PROVIDERS', 'FIND_NODE', 'PING']

/** A peer's connection state as the sender sees it; informative only. */
export type ConnectionType = 'NOT_CONNECTED' | 'CONNECTED' | 'CAN_CONNECT' | 'CANNOT_CONNECT'

const CONNECTION_TYPES: readonly ConnectionType[] = ['NOT_CONNECTED', 'CONNECTED', 'CAN_CONNECT', 'CANNOT_CONNECT']

/** A peer in `closerPeers` or `providerPeers`. */
export interface WirePeer {
  readonly id: PeerId
  /** Its addresses, without a trailing `/p2p/<id>`. */
  readonly addrs: readonly Multiaddr[]
  readonly connection: ConnectionType
}

/** A record as on the wire. */
export interface WireRecord {
  readonly key: Uint8Array
  readonly value: Uint8Array
  /** RFC 3339, "set by the receiver". */
  readonly timeReceived?: string
  /** rust-libp2p's field 666: the original publisher's peer id bytes. */
  readonly publisher?: Uint8Array
  /** rust-libp2p's field 777: remaining seconds of validity; 0 or absent: none given. */
  readonly ttl?: number
}

/** One Kademlia message: a request or a response. */
export interface Message {
  readonly type: MessageType
  readonly key?: Uint8Array
  readonly record?: WireRecord
  readonly closerPeers: readonly WirePeer[]
  readonly providerPeers: readonly WirePeer[]
  /** Unused by everyone; rust writes 10 in requests and 9 in responses. */
  readonly clusterLevelRaw?: number
}

/** A received Kademlia message could not be decoded, or made no sense. */
export class InvalidMessageError extends PeerswarmError {
  constructor (message: string, cause?: unknown) {
    super('ERR_KAD_INVALID_MESSAGE', message, { cause })
  }
}

/** Peers decoded per list by default; further ones are skipped. */
export const MAX_PEERS_PER_LIST = 100
/** Addresses decoded per peer by default; further ones are skipped. */
export const MAX_ADDRESSES_PER_PEER = 32

/** Bounds of {@link decodeMessage}. */
export interface DecodeLimits {
  /** Peers kept per list (`closerPeers`, `providerPeers`); default {@link MAX_PEERS_PER_LIST}. */
  readonly maxPeers?: number
  /** Addresses kept per peer; default {@link MAX_ADDRESSES_PER_PEER}. */
  readonly maxAddressesPerPeer?: number
}

// ---- encoding ------------------------------------------------------------------------------

/** Encode `message`; absent and zero fields are left out, as proto3 does. */
export function encodeMessage (message: Message): Uint8Array {
  const w = protobuf.Writer.create()
  const type = TYPES.indexOf(message.type)
  if (type > 0) w.uint32(1 << 3 | 0).int32(type)
  if (message.key != null) w.uint32(2 << 3 | 2).bytes(message.key)
  if (message.record != null) {
    w.uint32(3 << 3 | 2).fork()
    writeRecord(w, message.record)
    w.ldelim()
  }
  for (const peer of message.closerPeers) writePeer(w, 8, peer)
  for (const peer of message.providerPeers) writePeer(w, 9, peer)
  if (message.clusterLevelRaw != null && message.clusterLevelRaw !== 0) w.uint32(10 << 3 | 0).int32(message.clusterLevelRaw)
  return w.finish()
}

function writeRecord (w: protobuf.Writer, record: WireRecord): void {
  w.uint32(1 << 3 | 2).bytes(record.key)
  w.uint32(2 << 3 | 2).bytes(record.value)
  if (record.timeReceived != null) w.uint32(5 << 3 | 2).string(record.timeReceived)
  if (record.publisher != null) w.uint32(666 << 3 | 2).bytes(record.publisher)
  if (record.ttl != null && record.ttl > 0) w.uint32(777 << 3 | 0).uint32(record.ttl)
}

function writePeer (w: protobuf.Writer, field: number, peer: WirePeer): void {
  w.uint32(field << 3 | 2).fork()
  w.uint32(1 << 3 | 2).bytes(peer.id.toMultihash().bytes)
  for (const addr of peer.addrs) w.uint32(2 << 3 | 2).bytes(addr.bytes)
  const connection = CONNECTION_TYPES.indexOf(peer.connection)
  if (connection > 0) w.uint32(3 << 3 | 0).int32(connection)
  w.ldelim()
}

// ---- decoding ------------------------------------------------------------------------------

/**
 * Decode a message. Throws {@link InvalidMessageError} when it is malformed; see the module
 * comment for what is skipped instead.
 */
export function decodeMessage (bytes: Uint8Array, limits: DecodeLimits = {}): Message {
  const maxPeers = limits.maxPeers ?? MAX_PEERS_PER_LIST
  const maxAddresses = limits.maxAddressesPerPeer ?? MAX_ADDRESSES_PER_PEER
  try {
    const r = protobuf.Reader.create(bytes)
    let type = 0
    let key: Uint8Array | undefined
    let record: WireRecord | undefined
    let clusterLevelRaw: number | undefined
    const closerPeers: WirePeer[] = []
    const providerPeers: WirePeer[] = []
    while (r.pos < r.len) {
      const tag = r.uint32()
      const field = tag >>> 3
      const wire = tag & 7
      switch (field) {
        case 1:
          expectWire('Message.type', wire, 0)
          type = r.int32()
          break
        case 2:
          expectWire('Message.key', wire, 2)
          key = r.bytes()
          break
        case 3:
          expectWire('Message.record', wire, 2)
          record = readRecord(r, nestedEnd(r))
          break
        case 8:
        case 9: {
          expectWire(field === 8 ? 'Message.closerPeers' : 'Message.providerPeers', wire, 2)
          const list = field === 8 ? closerPeers : providerPeers
          const end = nestedEnd(r)
          if (list.length >= maxPeers) {
            r.pos = end
            break
          }
          const peer = readPeer(r, end, maxAddresses)
          if (peer != null) list.push(peer)
          break
        }
        case 10:
          expectWire('Message.clusterLevelRaw', wire, 0)
          clusterLevelRaw = r.int32()
          break
        default:
          r.skipType(wire)
      }
    }
    const kind = TYPES[type]
    if (kind === undefined) throw new InvalidMessageError(`unknown message type ${type}`)
    return { type: kind, key, record, closerPeers, providerPeers, clusterLevelRaw }
  } catch (err) {
    if (err instanceof InvalidMessageError) throw err
    throw new InvalidMessageError(`malformed Kademlia message: ${err instanceof Error ? err.message : String(err)}`, err)
  }
}

function expectWire (name: string, got: number, expected: number): void {
  if (got !== expected) throw new InvalidMessageError(`field ${name} has wire type ${got}, expected ${expected}`)
}

/** Read a length prefix and return where the embedded message ends; throws if past the end. */
function nestedEnd (r: protobuf.Reader): number {
  const length = r.uint32()
  const end = r.pos + length
  if (end > r.len) throw new InvalidMessageError('an embedded message runs past its container')
  return end
}

function readRecord (r: protobuf.Reader, end: number): WireRecord {
  let key: Uint8Array | undefined
  let value: Uint8Array = new Uint8Array(0)
  let timeReceived: string | undefined
  let publisher: Uint8Array | undefined
  let ttl: number | undefined
  while (r.pos < end) {
    const tag = r.uint32()
    const wire = tag & 7
    switch (tag >>> 3) {
      case 1: expectWire('Record.key', wire, 2); key = r.bytes(); break
      case 2: expectWire('Record.value', wire, 2); value = r.bytes(); break
      case 5: expectWire('Record.timeReceived', wire, 2); timeReceived = r.string(); break
      case 666: expectWire('Record.publisher', wire, 2); publisher = r.bytes(); break
      case 777: expectWire('Record.ttl', wire, 0); ttl = r.uint32(); break
      default: r.skipType(wire)
    }
    if (r.pos > end) throw new InvalidMessageError('a record field runs past the record')
  }
  if (key == null) throw new InvalidMessageError('a record without a key')
  return { key, value, timeReceived, publisher, ttl }
}

/** A peer, or undefined when its id is missing or invalid (the peer is then skipped). */
function readPeer (r: protobuf.Reader, end: number, maxAddresses: number): WirePeer | undefined {
  let id: Uint8Array | undefined
  const rawAddrs: Uint8Array[] = []
  let connection = 0
  while (r.pos < end) {
    const tag = r.uint32()
    const wire = tag & 7
    switch (tag >>> 3) {
      case 1: expectWire('Peer.id', wire, 2); id = r.bytes(); break
      case 2:
        expectWire('Peer.addrs', wire, 2)
        if (rawAddrs.length < maxAddresses) {
          rawAddrs.push(r.bytes())
        } else {
          r.pos = nestedEnd(r)
        }
        break
      case 3: expectWire('Peer.connection', wire, 0); connection = r.int32(); break
      default: r.skipType(wire)
    }
    if (r.pos > end) throw new InvalidMessageError('a peer field runs past the peer')
  }
  if (id == null) return undefined
  let peerId: PeerId
  try {
    peerId = peerIdFromMultihash(Digest.decode(id))
  } catch {
    return undefined
  }
  const addrs: Multiaddr[] = []
  const seen = new Set<string>()
  for (const bytes of rawAddrs) {
    const addr = parseAddress(bytes, peerId)
    if (addr == null) continue
    const text = addr.toString()
    if (seen.has(text)) continue
    seen.add(text)
    addrs.push(addr)
  }
  return { id: peerId, addrs, connection: CONNECTION_TYPES[connection] ?? 'NOT_CONNECTED' }
}

/** `bytes` as an address of `peerId` without its `/p2p/` suffix; undefined if unusable. */
function parseAddress (bytes: Uint8Array, peerId: PeerId): Multiaddr | undefined {
  let addr: Multiaddr
  try {
    addr = multiaddr(bytes)
    // Throws for components the multiaddr library cannot print (e.g. a bad CID in /p2p/).
    addr.toString()
  } catch {
    return undefined
  }
  return withoutPeerSuffix(addr, peerId)
}

/** `addr` without a trailing `/p2p/<peerId>`; undefined when it names another peer or is empty. */
export function withoutPeerSuffix (addr: Multiaddr, peerId: PeerId): Multiaddr | undefined {
  const components = addr.getComponents()
  const last = components.at(-1)
  if (last?.name === 'p2p') {
    if (last.value !== peerId.toString()) return undefined
    if (components.length === 1) return undefined
    return addr.decapsulateCode(last.code)
  }
  if (components.length === 0) return undefined
  return addr
}

/** The current time as RFC 3339 with nanoseconds, as go and js write `timeReceived`. */
export function rfc3339Now (now: number = Date.now()): string {
  return new Date(now).toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z')
}
