/**
 * How our messages are authored and how received ones are checked: StrictSign (signed with
 * the node's key; `from`, `seqno`, `signature` and, when the key cannot be read from the peer
 * id, `key`) or StrictNoSign (none of those fields, and messages carrying any are rejected).
 *
 * @module
 */
import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromPublicKey } from '@libp2p/peer-id'
import { PeerswarmError } from '../../errors.js'
import { readAuthor, readSeqno, seqnoBytes } from './message.js'
import { encodeMessage } from './rpc.js'
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

/** A received message broke the protocol or the signature policy. */
export class InvalidMessageError extends PeerswarmError {
  constructor (readonly reason: RejectReason, message: string) {
    super(`ERR_INVALID_MESSAGE_${reason.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`, message)
  }
}

const SIGN_PREFIX = new TextEncoder().encode('libp2p-pubsub:')

/** The bytes a signature covers: the prefix and the message without `signature` and `key`. */
function signedBytes (message: RawMessage): Uint8Array {
  const body = encodeMessage({ from: message.from, data: message.data, seqno: message.seqno, topic: message.topic })
  const bytes = new Uint8Array(SIGN_PREFIX.byteLength + body.byteLength)
  bytes.set(SIGN_PREFIX)
  bytes.set(body, SIGN_PREFIX.byteLength)
  return bytes
}

/** Authors our own messages. */
export class MessageAuthor {
  private readonly peerId?: PeerId
  private readonly inlineKey?: Uint8Array

  constructor (private readonly authenticity: MessageAuthenticity) {
    if (authenticity.type === 'Signed') {
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
    if (this.authenticity.type === 'Anonymous' || this.peerId == null) {
      const fields = { data, topic }
      return { fields, complete: fields }
    }
    const fields: RawMessage = { from: this.peerId.toMultihash().bytes, data, seqno: seqnoBytes(seqno), topic }
    const signature = this.authenticity.key.sign(signedBytes(fields))
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
 * Checks received messages against a policy. Verifying keys are cached per author (importing a
 * key costs as much as a fifth of a verification), within a bound.
 */
export class MessageChecker {
  private readonly keys = new Map<string, PublicKey>()

  constructor (
    readonly policy: SignaturePolicy,
    private readonly maxCachedKeys = 4096
  ) {}

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
    const key = this.keyOf(message, author)
    if (message.signature == null) return false
    return key.verify(signedBytes(message), message.signature)
  }

  private keyOf (message: RawMessage, author: PeerId): PublicKey {
    const cacheKey = author.toString()
    const cached = this.keys.get(cacheKey)
    if (cached != null && message.key == null) return cached
    let key: PublicKey | undefined
    if (message.key != null) {
      try {
        key = publicKeyFromProtobuf(message.key)
      } catch {
        throw new InvalidMessageError('InvalidKey', 'message key is not a public key')
      }
      if (!peerIdFromPublicKey(key).equals(author)) throw new InvalidMessageError('KeyMismatch', 'message key does not match its author')
    } else {
      key = author.publicKey
      if (key == null) throw new InvalidMessageError('InvalidKey', 'no key in the message and none in its author id')
    }
    if (this.keys.size >= this.maxCachedKeys) this.keys.delete(this.keys.keys().next().value as string)
    this.keys.set(cacheKey, key)
    return key
  }
}
