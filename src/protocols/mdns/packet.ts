/**
 * The libp2p mDNS packets, built and read with `dns-packet`.
 *
 * A query asks `PTR <service>`. A response answers `<service> PTR <name>.<service>` and adds,
 * under that name, one TXT record per address (`dnsaddr=<multiaddr>/p2p/<peer id>`), plus SRV
 * and A/AAAA records for DNS-SD browsers that require them (go-libp2p's zeroconf). Responses
 * carry no question section: rust-libp2p reads a packet with questions as a query.
 *
 * Reading is lenient in what the three other implementations differ on: TXT records are taken
 * from any section (js puts them among the answers, go and rust among the additionals) when
 * named after a PTR target, and the target may be under the service (go, js) or a bare label
 * (rust).
 *
 * @module
 */
import { CODE_P2P, multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import dnsPacket from 'dns-packet'
import { PeerswarmError } from '../../core/errors.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Answer, Packet } from 'dns-packet'

/** The DNS-SD meta-query name, answered with our service name. */
const META_QUERY_NAME = '_services._dns-sd._udp.local'

/** Largest packet we send: one Ethernet MTU, so that nothing is fragmented. */
export const MAX_SEND_SIZE = 1400

/** Largest packet we read (RFC 6762 §17: 9000 bytes); larger ones are malformed. */
export const MAX_RECEIVE_SIZE = 9000

/** The largest character-string of a TXT record (RFC 6763 §6.1). */
const MAX_TXT_STRING = 255

const DNSADDR = 'dnsaddr='
const META_LABEL = '_services'
const UNRELATED: MdnsPacket = Object.freeze({ type: 'Unrelated' })

/**
 * A packet that is not a DNS message we can read.
 *
 * @group Errors
 */
export class MalformedPacketError extends PeerswarmError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_MDNS_MALFORMED_PACKET', message, options)
  }
}

/** One peer announced in a response. */
export interface AnnouncedPeer {
  readonly peerId: PeerId
  /** Its addresses, without the `/p2p/<id>` suffix. */
  readonly addresses: readonly Multiaddr[]
  /** Seconds the records may be kept; 0 is a goodbye. */
  readonly ttl: number
}

/** What a received packet means to us. */
export type MdnsPacket =
  | {
    readonly type: 'Query'
    readonly id: number
    /** It asks for our service (PTR or ANY). */
    readonly asksService: boolean
    /** It asks for the DNS-SD service list. */
    readonly asksMeta: boolean
  }
  | {
    readonly type: 'Response'
    readonly peers: readonly AnnouncedPeer[]
    /** `dnsaddr` strings that did not parse, or named no peer id: counted, then ignored. */
    readonly invalidAddresses: number
  }
  /** A DNS message that names neither our service nor DNS-SD's (most mDNS traffic): skipped undecoded. */
  | { readonly type: 'Unrelated' }

/** A query for `serviceName`, with transaction id `id`. */
export function buildQuery (serviceName: string, id: number): Uint8Array {
  return encode({
    type: 'query',
    id,
    flags: 0,
    questions: [{ name: serviceName, type: 'PTR', class: 'IN' }]
  })
}

/** What a response announces about us. */
export interface Announcement {
  readonly serviceName: string
  /** Our instance name (a random label, not the peer id). */
  readonly peerName: string
  readonly peerId: PeerId
  /** Our listen addresses, without `/p2p`. */
  readonly addresses: readonly Multiaddr[]
  /** Record TTL in seconds; 0 says goodbye. */
  readonly ttl: number
  /** The interface address the response leaves from, for the A/AAAA record; omitted if unknown. */
  readonly hostAddress?: { readonly family: 4 | 6, readonly address: string }
}

/**
 * The responses announcing `announcement`: as many packets of at most `MAX_SEND_SIZE` bytes as
 * its addresses need, each with the PTR answer. Addresses whose TXT string would exceed 255
 * bytes are left out. No addresses, no packets.
 */
export function buildResponses (announcement: Announcement): Uint8Array[] {
  const { serviceName, peerName, peerId, ttl } = announcement
  const instance = `${peerName}.${serviceName}`
  const host = `${peerName}.local`
  const suffix = `/p2p/${peerId.toString()}`
  const strings = announcement.addresses
    .map(address => `${DNSADDR}${address.toString()}${suffix}`)
    .filter(text => Buffer.byteLength(text) <= MAX_TXT_STRING)

  const ptr: Answer = { name: serviceName, type: 'PTR', class: 'IN', ttl, data: instance }
  const fixed: Answer[] = []
  const port = firstPort(announcement.addresses)
  if (announcement.hostAddress !== undefined && port !== undefined) {
    fixed.push({ name: instance, type: 'SRV', class: 'IN', ttl, data: { priority: 0, weight: 0, port, target: host } })
    fixed.push({
      name: host,
      type: announcement.hostAddress.family === 4 ? 'A' : 'AAAA',
      class: 'IN',
      ttl,
      data: announcement.hostAddress.address
    })
  }

  const packets: Uint8Array[] = []
  let txts: Answer[] = []
  const finish = (): void => {
    packets.push(response([ptr], [...txts, ...fixed]))
    txts = []
  }
  for (const text of strings) {
    const txt: Answer = { name: instance, type: 'TXT', class: 'IN', ttl, data: [text] }
    if (txts.length > 0 && dnsPacket.encodingLength(packetOf([ptr], [...txts, txt, ...fixed])) > MAX_SEND_SIZE) finish()
    txts.push(txt)
  }
  if (txts.length > 0) finish()
  return packets
}

/** The answer to the DNS-SD meta-query: `_services._dns-sd._udp.local PTR <service>`. */
export function buildServiceDiscoveryResponse (serviceName: string, ttl: number): Uint8Array {
  return response([{ name: META_QUERY_NAME, type: 'PTR', class: 'IN', ttl, data: serviceName }], [])
}

/**
 * Read a received packet. Throws `MalformedPacketError` when it is not a DNS message (or is
 * larger than 9000 bytes); records that are well-formed DNS but not libp2p's are skipped.
 * At most `maxAddressesPerPeer` addresses are kept per peer.
 */
export function parsePacket (bytes: Uint8Array, serviceName: string, maxAddressesPerPeer = 32): MdnsPacket {
  if (bytes.byteLength > MAX_RECEIVE_SIZE) throw new MalformedPacketError(`packet of ${bytes.byteLength} bytes exceeds ${MAX_RECEIVE_SIZE}`)
  checkHeader(bytes)
  const service = serviceName.toLowerCase()
  // Most mDNS traffic on a network is not libp2p's: skip it without decoding.
  if (!hasLabel(bytes, service.split('.')[0]) && !hasLabel(bytes, META_LABEL)) return UNRELATED
  let packet: Packet
  try {
    packet = dnsPacket.decode(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
  } catch (err) {
    throw new MalformedPacketError('not a DNS message', { cause: err })
  }
  // dns-packet reads a record cut short without complaint; the bytes it consumed tell.
  if (dnsPacket.decode.bytes > bytes.byteLength) throw new MalformedPacketError(`packet truncated: ${bytes.byteLength} of ${dnsPacket.decode.bytes} bytes`)
  try {
    // A packet without questions is read as a response whatever its QR bit (as rust-libp2p).
    const questions = packet.questions ?? []
    if (packet.type === 'query' && questions.length > 0) {
      const asks = (name: string): boolean => questions.some(q =>
        sameName(q.name, name) && (q.type === 'PTR' || (q.type as string) === 'ANY'))
      return { type: 'Query', id: packet.id ?? 0, asksService: asks(service), asksMeta: asks(META_QUERY_NAME) }
    }
    return readResponse([...packet.answers ?? [], ...packet.authorities ?? [], ...packet.additionals ?? []], service, maxAddressesPerPeer)
  } catch (err) {
    // Records dns-packet decoded into shapes we did not expect.
    throw new MalformedPacketError('unreadable records', { cause: err })
  }
}

/**
 * Reject packets whose header promises more records than the bytes can hold (a question takes
 * at least 5 bytes, a record 11) before `dns-packet` spends time on them: random bytes fail here.
 */
function checkHeader (bytes: Uint8Array): void {
  if (bytes.byteLength < 12) throw new MalformedPacketError(`packet of ${bytes.byteLength} bytes is shorter than a DNS header`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const questions = view.getUint16(4)
  const records = view.getUint16(6) + view.getUint16(8) + view.getUint16(10)
  if (12 + questions * 5 + records * 11 > bytes.byteLength) {
    throw new MalformedPacketError(`header announces ${questions} questions and ${records} records, more than ${bytes.byteLength} bytes hold`)
  }
}

/** Whether `label` occurs in `bytes` as a length-prefixed DNS label, ignoring ASCII case. */
function hasLabel (bytes: Uint8Array, label: string): boolean {
  const wanted = Buffer.from(label.toLowerCase(), 'latin1')
  const last = bytes.byteLength - wanted.byteLength - 1
  outer: for (let i = 12; i <= last; i++) {
    if (bytes[i] !== wanted.byteLength) continue
    for (let j = 0; j < wanted.byteLength; j++) {
      const byte = bytes[i + 1 + j]
      if ((byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte) !== wanted[j]) continue outer
    }
    return true
  }
  return false
}

function readResponse (records: readonly Answer[], service: string, maxAddressesPerPeer: number): MdnsPacket {
  const targets = new Map<string, number>()
  for (const record of records) {
    if (record.type === 'PTR' && sameName(record.name, service)) targets.set(normalise(record.data), record.ttl ?? 0)
  }
  const peers = new Map<string, { peerId: PeerId, addresses: Multiaddr[], seen: Set<string>, ttl: number }>()
  let invalidAddresses = 0
  for (const record of records) {
    if (record.type !== 'TXT') continue
    const ptrTtl = targets.get(normalise(record.name))
    if (ptrTtl === undefined) continue
    const ttl = Math.min(ptrTtl, record.ttl ?? 0)
    for (const text of txtStrings(record.data)) {
      if (!text.startsWith(DNSADDR)) continue
      const parsed = readDnsaddr(text.slice(DNSADDR.length))
      if (parsed === undefined) {
        invalidAddresses++
        continue
      }
      const key = parsed.peerId.toString()
      let peer = peers.get(key)
      if (peer === undefined) {
        peer = { peerId: parsed.peerId, addresses: [], seen: new Set(), ttl }
        peers.set(key, peer)
      }
      peer.ttl = Math.min(peer.ttl, ttl)
      const address = parsed.address.toString()
      if (!peer.seen.has(address) && peer.addresses.length < maxAddressesPerPeer) {
        peer.seen.add(address)
        peer.addresses.push(parsed.address)
      }
    }
  }
  return {
    type: 'Response',
    peers: [...peers.values()].map(({ peerId, addresses, ttl }) => ({ peerId, addresses, ttl })),
    invalidAddresses
  }
}

/** `<multiaddr>/p2p/<id>` → the address without `/p2p` and the peer id; undefined if either is bad. */
function readDnsaddr (text: string): { address: Multiaddr, peerId: PeerId } | undefined {
  try {
    const address = multiaddr(text)
    const components = address.getComponents()
    const last = components[components.length - 1]
    if (last?.code !== CODE_P2P || last.value === undefined) return undefined
    return { address: address.decapsulateCode(CODE_P2P), peerId: peerIdFromString(last.value) }
  } catch {
    return undefined
  }
}

function txtStrings (data: unknown): string[] {
  const items = Array.isArray(data) ? data : [data]
  return items.map(item => typeof item === 'string' ? item : Buffer.isBuffer(item) ? item.toString('utf8') : '')
}

function firstPort (addresses: readonly Multiaddr[]): number | undefined {
  for (const address of addresses) {
    const port = address.getComponents().find(c => c.name === 'tcp' || c.name === 'udp')?.value
    if (port !== undefined) return Number(port)
  }
  return undefined
}

function normalise (name: unknown): string {
  return typeof name === 'string' ? name.toLowerCase().replace(/\.$/, '') : ''
}

function sameName (a: unknown, b: string): boolean {
  return normalise(a) === normalise(b)
}

function packetOf (answers: Answer[], additionals: Answer[]): Packet {
  return { type: 'response', id: 0, flags: dnsPacket.AUTHORITATIVE_ANSWER, questions: [], answers, additionals }
}

function response (answers: Answer[], additionals: Answer[]): Uint8Array {
  return encode(packetOf(answers, additionals))
}

function encode (packet: Packet): Uint8Array {
  const buffer = dnsPacket.encode(packet)
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
}
