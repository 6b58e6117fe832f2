/**
 * Pubsub messages as the application sees them, message ids and sequence numbers.
 *
 * @module
 */
import { peerIdFromMultihash } from '@libp2p/peer-id'
import { sha256 } from '@noble/hashes/sha2.js'
import * as Digest from 'multiformats/hashes/digest'
import { writeUint64BE } from '../../core/bytes.js'
import type { RawMessage } from './rpc.js'
import type { TopicHash } from './topic.js'
import type { PeerId } from '@libp2p/interface'

/** A message id: bytes on the wire (IHAVE, IWANT, IDONTWANT). */
export type MessageId = Uint8Array

/** A message as delivered to the application. */
export interface Message {
  /** The author, when the message is signed (StrictSign). */
  readonly source?: PeerId
  readonly data: Uint8Array
  /** The author's sequence number, when signed. */
  readonly sequenceNumber?: bigint
  readonly topic: TopicHash
}

/** Computes a message's id; every peer on a topic must use the same function. */
export type MessageIdFn = (message: Message) => MessageId

/** The default id of signed messages: `from ‖ seqno` (raw bytes), as go-libp2p-pubsub. */
export function authorSeqnoId (message: Message): MessageId {
  if (message.source == null || message.sequenceNumber == null) return contentId(message)
  const from = message.source.toMultihash().bytes
  const id = new Uint8Array(from.byteLength + 8)
  id.set(from)
  writeUint64BE(id, from.byteLength, message.sequenceNumber)
  return id
}

/** The default id of unsigned messages: sha256(data), as js-libp2p. */
export function contentId (message: Message): MessageId {
  return sha256(message.data)
}

/**
 * The map key of `authorSeqnoId` computed from a wire message's raw bytes, without parsing its
 * author: the receive path's duplicate check for signed messages. Undefined when the fields
 * are missing or malformed (the full path then decides).
 */
export function rawAuthorSeqnoKey (raw: RawMessage): string | undefined {
  const { from, seqno } = raw
  if (from == null || seqno == null || seqno.byteLength === 0 || seqno.byteLength > 8) return undefined
  const length = from.byteLength + 8
  if (length > idScratch.byteLength) return binaryKey(from) + binaryKey(seqnoBytes(readSeqno(seqno) ?? 0n))
  // The id's bytes, `from ‖ seqno` with the seqno widened to 8 bytes, then one string of them.
  idScratch.set(from)
  idScratch.fill(0, from.byteLength, length - seqno.byteLength)
  idScratch.set(seqno, length - seqno.byteLength)
  return binaryKey(idScratch.subarray(0, length))
}

/** Where `rawAuthorSeqnoKey` assembles an id (peer ids are at most ~50 bytes). */
const idScratch = new Uint8Array(128)

/** Char codes per `String.fromCharCode` call in `binaryKey`: far below engines' argument limits. */
const KEY_CHUNK = 4096

/**
 * Bytes as a string with one char per byte (codes 0–255), for map keys. Made with one native
 * call per 4 KiB: appending a char at a time built a rope of one node per byte, and the
 * receive path's duplicate check makes a key for every copy it receives.
 */
function binaryKey (bytes: Uint8Array): string {
  if (bytes.byteLength <= KEY_CHUNK) return String.fromCharCode.apply(null, bytes as unknown as number[])
  let key = ''
  for (let at = 0; at < bytes.byteLength; at += KEY_CHUNK) {
    key += String.fromCharCode.apply(null, bytes.subarray(at, at + KEY_CHUNK) as unknown as number[])
  }
  return key
}

/** A map key for a message id. */
export function messageIdKey (id: MessageId): string {
  return binaryKey(id)
}

/** The hex form of a message id, for logs and display. */
export function messageIdHex (id: MessageId): string {
  return Array.from(id, b => b.toString(16).padStart(2, '0')).join('')
}

/**
 * Sequence numbers of our own messages: 8 bytes big-endian, increasing, seeded from the clock
 * in nanoseconds so that they keep increasing across restarts (as go and js do).
 */
export class SeqnoGenerator {
  private last: bigint

  constructor (now: () => number = Date.now) {
    this.last = BigInt(now()) * 1_000_000n
  }

  /** The next sequence number. */
  next (): bigint {
    this.last = (this.last + 1n) & 0xffffffffffffffffn
    return this.last
  }
}

/** 8 bytes big-endian. */
export function seqnoBytes (seqno: bigint): Uint8Array {
  const bytes = new Uint8Array(8)
  writeUint64BE(bytes, 0, seqno)
  return bytes
}

/**
 * Read a big-endian seqno of 1 to 8 bytes; undefined if absent, empty or longer. We send 8
 * bytes, but js-libp2p floodsub drops leading zero bytes (one message in 256 has a 7-byte
 * seqno), so shorter ones are accepted.
 */
export function readSeqno (bytes: Uint8Array | undefined): bigint | undefined {
  if (bytes == null || bytes.byteLength === 0 || bytes.byteLength > 8) return undefined
  let value = 0n
  for (const byte of bytes) value = (value << 8n) | BigInt(byte)
  return value
}

/** Authors recently read, by their `from` bytes (as a binary string): a few hundred peers. */
const authors = new Map<string, PeerId>()
const MAX_AUTHORS = 1024

/**
 * The author encoded in `from`, or undefined if it is not a valid peer id. Recent authors are
 * kept (parsing a peer id and printing it for map keys showed as ~4% of a floodsub profile).
 */
export function readAuthor (from: Uint8Array | undefined): PeerId | undefined {
  if (from == null) return undefined
  if (from.byteLength > 64) return parseAuthor(from)
  const key = binaryKey(from)
  const known = authors.get(key)
  if (known != null) return known
  // A copy: `from` may be a view into a large received buffer that the cache must not pin.
  const author = parseAuthor(from.slice())
  if (author == null) return undefined
  if (authors.size >= MAX_AUTHORS) authors.delete(authors.keys().next().value as string)
  authors.set(key, author)
  return author
}

function parseAuthor (from: Uint8Array): PeerId | undefined {
  try {
    return peerIdFromMultihash(Digest.decode(from))
  } catch {
    return undefined
  }
}

/** The application's view of a wire message whose fields were already checked. */
export function toMessage (raw: RawMessage, topic: TopicHash): Message {
  return {
    source: readAuthor(raw.from),
    data: raw.data ?? new Uint8Array(0),
    sequenceNumber: readSeqno(raw.seqno),
    topic
  }
}
