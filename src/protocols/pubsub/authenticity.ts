/**
 * How our messages are authored and how received ones are checked: StrictSign (signed with
 * the node's key; `from`, `seqno`, `signature` and, when the key cannot be read from the peer
 * id, `key`) or StrictNoSign (none of those fields, and messages carrying any are rejected).
 *
 * @module
 */
import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromPublicKey } from '@libp2p/peer-id'
import { PeerswarmError } from '../../core/errors.js'
import { signerOf, verifierOf } from '../../platform.js'
import { readAuthor, readSeqno, seqnoBytes } from './message.js'
import { encodeMessageAfter } from './rpc.js'
import type { RawMessage } from './rpc.js'
import type { TopicHash } from './topic.js'
import type { PeerId, PrivateKey, PublicKey } from '@libp2p/interface'

/** How our own messages are authored. */
export type MessageAuthenticity =
  | { readonly type: 'Signed', readonly key: PrivateKey }
  | { readonly type: 'Anonymous' }

/** Constructors of {@link MessageAuthenticity}. */
export const MessageAuthenticity = {
  /** StrictSign: sign with `key`; received messages must be signed. */
  signed (key: PrivateKey): MessageAuthenticity {
    return { type: 'Signed', key }
  },
  /** StrictNoSign: no author, no seqno, no signature; received messages must carry none. */
  anonymous (): MessageAuthenticity {
    return { type: 'Anonymous' }
  }
}

/** The spec's signature policies. */
export type SignaturePolicy = 'StrictSign' | 'StrictNoSign'

/** The policy that goes with an authenticity. */
export function signaturePolicy (authenticity: MessageAuthenticity): SignaturePolicy {
  return authenticity.type === 'Signed' ? 'StrictSign' : 'StrictNoSign'
}

/** Why a received message was rejected. */
export type RejectReason =
  | 'MissingTopic'
  | 'MissingSignature'
  | 'MissingAuthor'
  | 'InvalidAuthor'
  | 'InvalidSeqno'
  | 'InvalidKey'
  | 'KeyMismatch'
  | 'InvalidSignature'
  | 'UnexpectedSignature'
  | 'UnexpectedAuthInfo'
  | 'SelfOrigin'
  | 'ValidationFailed'

/**
 * A received message broke the protocol or the signature policy.
 *
 * @group Errors
 */
export class InvalidMessageError extends PeerswarmError {
  constructor (readonly reason: RejectReason, message: string) {
    super(`ERR_INVALID_MESSAGE_${reason.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`, message)
  }
}

const SIGN_PREFIX = new TextEncoder().encode('libp2p-pubsub:')

/** The bytes a signature covers: the prefix and the message without `signature` and `key`. */
function signedBytes (message: RawMessage, into?: Uint8Array): Uint8Array {
  return encodeMessageAfter(SIGN_PREFIX, { from: message.from, data: message.data, seqno: message.seqno, topic: message.topic }, into)
}

/**
 * Largest scratch kept for the signed bytes: a frame of the default `maxTransmitSize` and some.
 * Larger messages get an array of their own.
 */
const MAX_SCRATCH = 1024 * 1024 + 1024

/** The scratch array, while no check holds it; it grows (doubling) to the largest message seen. */
let scratch: Uint8Array | undefined = new Uint8Array(4096)

/**
 * `check(bytes)` on the bytes `message`'s signature covers, written into the shared scratch
 * array when it is free: the signed bytes of every received message (a copy of its data) were
 * an allocation each, garbage once checked; at 512 KiB per message, a flood of forged
 * messages made tens of MB of such garbage wait for V8's old-generation GC, and glibc kept
 * what they had taken. A check that returns a promise holds the scratch until it settles
 * (meanwhile others allocate, as before).
 */
function withSignedBytes<R> (message: RawMessage, check: (bytes: Uint8Array) => R | Promise<R>): R | Promise<R> {
  const held = scratch
  if (held == null) return check(signedBytes(message))
  scratch = undefined
  const bytes = signedBytes(message, held)
  let giveBack = true
  try {
    const result = check(bytes)
    if (result instanceof Promise) {
      giveBack = false
      return result.finally(() => { release(held, bytes) })
    }
    return result
  } finally {
    if (giveBack) release(held, bytes)
  }
}

/** Return the scratch, or keep `used` instead if it was larger (an array of its own, made for it). */
function release (held: Uint8Array, used: Uint8Array): void {
  scratch = used.buffer !== held.buffer && used.byteLength <= MAX_SCRATCH ? used : held
}

/**
 * Verifying keys per author, imported once (`node:crypto` KeyObjects for Ed25519 on Node), at most
 * `capacity` of them: the least recently used goes first.
 */
export class VerifyingKeyCache {
  private readonly entries = new Map<string, (bytes: Uint8Array, signature: Uint8Array) => boolean | Promise<boolean>>()

  constructor (readonly capacity = 4096) {
    if (!(capacity >= 1)) throw new RangeError('the key cache needs room for one key')
  }

  /** Keys held. */
  get size (): number {
    return this.entries.size
  }

  /** Whether `id`'s key is held (does not count as a use). */
  has (id: string): boolean {
    return this.entries.has(id)
  }

  /** The verifier of `id`, made from `key()` if not held. */
  get (id: string, key: () => PublicKey): (bytes: Uint8Array, signature: Uint8Array) => boolean | Promise<boolean> {
    const held = this.entries.get(id)
    if (held != null) {
      // Most recently used last.
      this.entries.delete(id)
      this.entries.set(id, held)
      return held
    }
    const made = verifierOf(key())
    if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value as string)
    this.entries.set(id, made)
    return made
  }
}

/** Authors our own messages. */
export class MessageAuthor {
  private readonly peerId?: PeerId
  private readonly inlineKey?: Uint8Array
  private readonly sign?: (bytes: Uint8Array) => Uint8Array | Promise<Uint8Array>

  constructor (private readonly authenticity: MessageAuthenticity) {
    if (authenticity.type === 'Signed') {
      this.sign = signerOf(authenticity.key)
      this.peerId = peerIdFromPrivateKey(authenticity.key)
      // Ed25519 and secp256k1 keys are readable from the peer id; others travel in `key`.
      if (this.peerId.publicKey == null || this.peerId.type === 'RSA') this.inlineKey = publicKeyToProtobuf(authenticity.key.publicKey)
    }
  }

  /**
   * The message for `data` on `topic`: its fields as known now (enough for its id), and the
   * complete message, signed if required (asynchronously for keys that sign asynchronously).
   */
  build (topic: TopicHash, data: Uint8Array, seqno: bigint): { readonly fields: RawMessage, readonly complete: RawMessage | Promise<RawMessage> } {
    if (this.authenticity.type === 'Anonymous' || this.peerId == null || this.sign == null) {
      const fields = { data, topic }
      return { fields, complete: fields }
    }
    const fields: RawMessage = { from: this.peerId.toMultihash().bytes, data, seqno: seqnoBytes(seqno), topic }
    const sign = this.sign
    const signature = withSignedBytes(fields, bytes => sign(bytes))
    const finish = (sig: Uint8Array): RawMessage => ({ ...fields, signature: sig, key: this.inlineKey })
    return { fields, complete: signature instanceof Promise ? signature.then(finish) : finish(signature) }
  }
}

/** The result of the structural checks of a received message. */
export interface Checked {
  readonly topic: TopicHash
  readonly author?: PeerId
}

/**
 * Checks received messages against a policy. Verifying keys are imported once per author
 * (importing a key costs as much as a fifth of a verification) and kept in a bounded LRU.
 */
export class MessageChecker {
  /** Verifying keys of authors whose key is in their peer id. */
  readonly keys: VerifyingKeyCache

  constructor (
    readonly policy: SignaturePolicy,
    maxCachedKeys = 4096
  ) {
    this.keys = new VerifyingKeyCache(maxCachedKeys)
  }

  /** Structural checks; throws `InvalidMessageError`. Cheap: no signature work. */
  check (message: RawMessage): Checked {
    const topic = message.topic
    if (topic == null || topic === '') throw new InvalidMessageError('MissingTopic', 'message without a topic')
    if (this.policy === 'StrictNoSign') {
      if (message.signature != null) throw new InvalidMessageError('UnexpectedSignature', 'signature on an unsigned topic')
      if (message.from != null || message.seqno != null || message.key != null) {
        throw new InvalidMessageError('UnexpectedAuthInfo', 'author fields on an unsigned topic')
      }
      return { topic }
    }
    if (message.signature == null) throw new InvalidMessageError('MissingSignature', 'unsigned message')
    if (message.from == null) throw new InvalidMessageError('MissingAuthor', 'message without an author')
    const author = readAuthor(message.from)
    if (author == null) throw new InvalidMessageError('InvalidAuthor', 'message author is not a peer id')
    if (readSeqno(message.seqno) == null) throw new InvalidMessageError('InvalidSeqno', 'seqno is missing or longer than 8 bytes')
    return { topic, author }
  }

  /** Verify the signature of a message that passed `check` with an author. */
  verify (message: RawMessage, author: PeerId): boolean | Promise<boolean> {
    if (message.signature == null) return false
    if (message.key != null) {
      // A key carried in the message (RSA authors) is checked against its author every time.
      let key: PublicKey
      try {
        key = publicKeyFromProtobuf(message.key)
      } catch {
        throw new InvalidMessageError('InvalidKey', 'message key is not a public key')
      }
      if (!peerIdFromPublicKey(key).equals(author)) throw new InvalidMessageError('KeyMismatch', 'message key does not match its author')
      const signature = message.signature
      return withSignedBytes(message, bytes => key.verify(bytes, signature))
    }
    const verifier = this.keys.get(author.toString(), () => {
      const key = author.publicKey
      if (key == null) throw new InvalidMessageError('InvalidKey', 'no key in the message and none in its author id')
      return key
    })
    const signature = message.signature
    return withSignedBytes(message, bytes => verifier(bytes, signature))
  }
}
