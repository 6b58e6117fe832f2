/**
 * The Node platform: installed by the Node entry point (`index.ts`) and `peerswarm/testing`
 * when they load. One of the few modules allowed to import `node:` modules (see
 * docs/architecture.md); the browser entry point never reaches it.
 *
 * - Noise's ChaCha20-Poly1305: the wasm one below {@link CHACHA_NODE_FROM} bytes, node's
 *   above (measured on Node 20: wasm 4.3 µs / node 5.9 µs to seal 300 B, 12.5 / 7.0 µs at
 *   1,200 B, 38 / 11 µs at 4 KiB; opening crosses over lower, near 300 B). The dependency
 *   switches at 1,200 B.
 * - Ed25519 through `node:crypto` KeyObjects imported once (`@libp2p/crypto` re-imports the key
 *   from JWK on every call): pubsub signs and verifies with them.
 * - TCP (`@libp2p/tcp`), for `SwarmBuilder.withTcp()`.
 *
 * @internal
 * @module
 */
import './compat.js'
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify } from 'node:crypto'
import { asCrypto, defaultCrypto, nodeCrypto } from '@chainsafe/libp2p-noise/crypto'
import { installPlatform } from './platform.js'
import { tcp } from './transport/tcp.js'
import type { Ed25519Keys } from './platform.js'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'

/** From this many bytes up, ChaCha20-Poly1305 is node's; below, the wasm one. */
const CHACHA_NODE_FROM = 512

const noiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt (plaintext, nonce, ad, k) {
    return plaintext.byteLength < CHACHA_NODE_FROM ? asCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k) : nodeCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
  },
  chaCha20Poly1305Decrypt (ciphertext, nonce, ad, k, dst) {
    return ciphertext.byteLength < CHACHA_NODE_FROM ? asCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst) : nodeCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
  }
}

/** DER prefixes that turn a raw 32-byte Ed25519 key into SPKI (public) and PKCS#8 (private). */
const ED25519_SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00])
const ED25519_PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20])

function der (prefix: Uint8Array, key: Uint8Array): Buffer {
  const bytes = Buffer.alloc(prefix.byteLength + key.byteLength)
  bytes.set(prefix)
  bytes.set(key, prefix.byteLength)
  return bytes
}

const ed25519: Ed25519Keys = {
  signer (seed) {
    try {
      const object = createPrivateKey({ key: der(ED25519_PKCS8_PREFIX, seed), format: 'der', type: 'pkcs8' })
      return (bytes) => nodeSign(null, bytes, object)
    } catch {
      return undefined
    }
  },
  verifier (publicKey) {
    try {
      const object = createPublicKey({ key: der(ED25519_SPKI_PREFIX, publicKey), format: 'der', type: 'spki' })
      return (bytes, signature) => signature.byteLength === 64 && nodeVerify(null, bytes, object, signature)
    } catch {
      return undefined
    }
  }
}

installPlatform({ name: 'node', noiseCrypto, ed25519, tcp })
