/**
 * Keys and peer ids. A node's identity is a libp2p `PrivateKey` (Ed25519 by default); its
 * `PeerId` derives from the public key.
 *
 * @module
 */
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { PeerId, PrivateKey } from '@libp2p/interface'

/**
 * A node's identity: the private key it signs and authenticates with.
 *
 * @group Identity
 */
export type Keypair = PrivateKey

/**
 * Generate a fresh Ed25519 identity.
 *
 * @group Identity
 */
export async function generateKeypair (): Promise<Keypair> {
  return generateKeyPair('Ed25519')
}

/**
 * The peer id of a key.
 *
 * @group Identity
 */
export function peerIdOf (key: Keypair): PeerId {
  return peerIdFromPrivateKey(key)
}

/**
 * Serialise a key in the libp2p key protobuf format (as rust-libp2p's `to_protobuf_encoding`).
 *
 * @group Identity
 */
export function keypairToProtobuf (key: Keypair): Uint8Array {
  return privateKeyToProtobuf(key)
}

/**
 * Read a key serialised by {@link keypairToProtobuf}.
 *
 * @group Identity
 */
export function keypairFromProtobuf (bytes: Uint8Array): Keypair {
  return privateKeyFromProtobuf(bytes)
}

/**
 * Parse a peer id from its string form (`12D3KooW…`).
 *
 * @group Identity
 */
export function parsePeerId (text: string): PeerId {
  return peerIdFromString(text)
}
