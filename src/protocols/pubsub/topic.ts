/**
 * Topics. A topic's hash is what goes on the wire: the topic string itself for `IdentTopic`,
 * or base64(sha256(protobuf TopicDescriptor { name })) for `Sha256Topic`, as rust-libp2p.
 *
 * @module
 */
import { sha256 } from '@noble/hashes/sha2.js'
import protobuf from 'protobufjs'

/** A topic as it goes on the wire. */
export type TopicHash = string

/** A topic: a name and the hash it is known by on the wire. */
export interface Topic {
  /** What the application calls it. */
  readonly name: string
  /** What goes on the wire. */
  readonly hash: TopicHash
  /** The hash. */
  toString: () => string
}

const TopicDescriptor = new protobuf.Type('TopicDescriptor').add(new protobuf.Field('name', 1, 'string'))
new protobuf.Root().add(TopicDescriptor)

/** A topic whose hash is its name (what js-libp2p and go-libp2p use). */
export class IdentTopic implements Topic {
  readonly hash: TopicHash
  constructor (readonly name: string) {
    this.hash = name
  }

  /** The hash. */
  toString (): string {
    return this.hash
  }
}

/** A topic whose hash is base64(sha256(TopicDescriptor { name })), as rust-libp2p's. */
export class Sha256Topic implements Topic {
  readonly hash: TopicHash
  constructor (readonly name: string) {
    const descriptor = TopicDescriptor.encode(TopicDescriptor.fromObject({ name })).finish()
    this.hash = toBase64(sha256(descriptor))
  }

  /** The hash. */
  toString (): string {
    return this.hash
  }
}

/** The hash of a topic given as a `Topic` or as the hash string itself. */
export function topicHash (topic: Topic | TopicHash): TopicHash {
  return typeof topic === 'string' ? topic : topic.hash
}

function toBase64 (bytes: Uint8Array): string {
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary)
}
