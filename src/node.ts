/**
 * The Node platform: installed by the Node entry point (`index.ts`) and `peerswarm/testing`
 * when they load. One of the few modules allowed to import `node:` modules (see
 * docs/architecture.md); the browser entry point never reaches it.
 *
 * - Noise's ChaCha20-Poly1305: the wasm one below {@link CHACHA_NODE_FROM} bytes, node's
 *   above (measured on Node 20: wasm 4.3 µs / node 5.9 µs to seal 300 B, 12.5 / 7.0 µs at
 *   1,200 B, 38 / 11 µs at 4 KiB; opening crosses over lower, near 300 B). The dependency
 *   switches at 1,200 B. Where `sodium-native` is loaded (below), messages from
 *   {@link CHACHA_NODE_FROM} bytes are opened by libsodium, in place in the bytes they arrived
 *   in: `node:crypto` returns every plaintext in a new buffer (64 KiB of garbage per full
 *   message), and libsodium was faster too (Node 20, opening: 22 against 30 µs at 16 KiB, 87
 *   against 97 µs at 64 KiB, 3 against 10 µs at 1,200 B).
 * - Noise's X25519 and HKDF through `node:crypto`, keys imported as JWK. The dependency imports
 *   raw X25519 keys by wrapping them in DER, and OpenSSL 3's DER decoder is slow: measured on
 *   Node 20, one Diffie-Hellman with both keys imported took 510 µs from DER and 74 µs from JWK
 *   (the DH itself 35 µs), one ephemeral key pair 144 µs against 39 µs, and HKDF 35 µs in
 *   `@noble/hashes` against 15 µs in `hkdfSync`. A handshake does three DHs and five HKDFs on
 *   each side. Should a Node version refuse the JWK import, the dependency's way is used.
 * - Ed25519 through `node:crypto` KeyObjects imported once, from JWK (137 µs from DER, 13 µs
 *   from JWK for a public key; `@libp2p/crypto` re-imports the key on every call): pubsub signs
 *   and verifies with them. Where the application has installed `sodium-native` (libsodium),
 *   Ed25519 goes through it instead, once it has passed a check against `node:crypto`
 *   (measured on Node 20: verify 60 µs against 106 µs, sign 16 µs against 27 µs); it is
 *   optional and never installed by us, as `ws` does with `bufferutil`.
 *   `PEERSWARM_SODIUM=0` keeps `node:crypto`.
 * - TCP (`@libp2p/tcp`), for `SwarmBuilder.withTcp()`.
 * - `ws`'s WebSocket class for WebSockets dials where there is no global one (Node 20), and
 *   `Promise.withResolvers` on Node 20 (`compat.ts`).
 *
 * @internal
 * @module
 */
import { NodeWebSocket } from './compat.js'
import { createCipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, sign as nodeSign, verify as nodeVerify } from 'node:crypto'
import { createRequire } from 'node:module'
import { logger } from '@libp2p/logger'
import { asCrypto, defaultCrypto, nodeCrypto } from '@chainsafe/libp2p-noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import { installPlatform } from './platform.js'
import { NOISE_TAG_LENGTH } from './upgrade/noise-framing.js'
import { tcp } from './transport/tcp.js'
import { useWebSocketClass } from './transport/websockets.js'
import type { Ed25519Keys } from './platform.js'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'
import type { JsonWebKey as NodeJwk, KeyObject } from 'node:crypto'

/** From this many bytes up, ChaCha20-Poly1305 is node's; below, the wasm one. */
const CHACHA_NODE_FROM = 512

/** Bytes as Noise hands them over: an array or a list (of whichever `uint8arraylist` it has). */
type Bytes = Uint8Array | { subarray: () => Uint8Array }

/** A raw key as base64url, the encoding of JWK's `x` and `d`. */
function base64url (bytes: Bytes): string {
  const array = bytes instanceof Uint8Array ? bytes : bytes.subarray()
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength).toString('base64url')
}

/**
 * An OKP key (Ed25519, X25519) from its raw bytes through JWK. Node reads only `d` of a private
 * JWK (its `x` must be a string, and is not checked against `d`), so `x` may be left empty
 * when the public half is not at hand.
 */
function okpKey (crv: 'Ed25519' | 'X25519', raw: { x?: Bytes, d?: Bytes }): KeyObject {
  const x = raw.x != null ? base64url(raw.x) : ''
  if (raw.d == null) return createPublicKey({ key: { kty: 'OKP', crv, x }, format: 'jwk' })
  return createPrivateKey({ key: { kty: 'OKP', crv, x, d: base64url(raw.d) }, format: 'jwk' })
}

/** Whether X25519 keys import through JWK here; checked once, against the dependency's result. */
let x25519Jwk: boolean | undefined

/** @internal Whether Noise's X25519 takes the JWK route here (tests check that it does on Node 20). */
export function jwkX25519Works (): boolean {
  if (x25519Jwk == null) {
    try {
      const a = defaultCrypto.generateX25519KeyPair()
      const b = defaultCrypto.generateX25519KeyPair()
      const ours = jwkSharedKey(a.privateKey, b.publicKey)
      const theirs = defaultCrypto.generateX25519SharedKey(a.privateKey, b.publicKey)
      x25519Jwk = Buffer.compare(ours, theirs) === 0
    } catch {
      x25519Jwk = false
    }
  }
  return x25519Jwk
}

/**
 * The key objects of the X25519 private keys made here (Noise's static key, and each
 * handshake's ephemeral key, which takes part in two of its three agreements), imported as they
 * are made: importing a key is most of an agreement's cost.
 *
 * They are imported, never the objects `generateKeyPairSync` returns: exporting one of those
 * can hang Node for good. The export holds the key's mutex while it allocates; a garbage
 * collection then may run the weak callback that destroys the generation's job, whose
 * destructor takes the same mutex (seen on Node 20.20: the main thread waiting on it forever,
 * in `ExportJWKEdKey` under `~KeyGenJob`). So a key pair comes out of its generation already
 * encoded (as JWK), while the job is still alive.
 */
const privateKeyObjects = new WeakMap<Bytes, KeyObject>()

function jwkSharedKey (privateKey: Bytes, publicKey: Bytes): Buffer {
  const ours = privateKeyObjects.get(privateKey) ?? okpKey('X25519', { d: privateKey })
  return diffieHellman({ privateKey: ours, publicKey: okpKey('X25519', { x: publicKey }) })
}

const noiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt (plaintext, nonce, ad, k) {
    if (plaintext.byteLength < CHACHA_NODE_FROM) return asCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
    if (!(plaintext instanceof Uint8Array)) return nodeCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
    // The ciphertext and its tag as two pieces of a list: the dependency concatenates them, a
    // copy of the whole message that the SecureChannel, copying the pieces into its write,
    // does not need. The list is of Noise's own `uint8arraylist` (2, where ours is 3), since
    // Noise's handshake and stream may append it to theirs.
    const cipher = createCipheriv('chacha20-poly1305', k, nonce, { authTagLength: NOISE_TAG_LENGTH })
    cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
    const body = cipher.update(plaintext)
    const rest = cipher.final()
    const List = noiseListClass()
    return rest.byteLength === 0 ? new List(body, cipher.getAuthTag()) : new List(body, rest, cipher.getAuthTag())
  },
  chaCha20Poly1305Decrypt (ciphertext, nonce, ad, k, dst) {
    if (ciphertext.byteLength < CHACHA_NODE_FROM) return asCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
    const sodium = sodiumRoute()
    if (sodium === undefined || !(ciphertext instanceof Uint8Array)) return nodeCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
    return sodiumOpen(sodium, ciphertext, nonce, ad, k, dst)
  },
  getHKDF (ck, ikm) {
    // Noise's HKDF(ck, ikm) with three outputs is RFC 5869's with salt ck, no info, 96 bytes.
    const okm = new Uint8Array(hkdfSync('sha256', ikm, ck, EMPTY, 96))
    return [okm.subarray(0, 32), okm.subarray(32, 64), okm.subarray(64, 96)]
  },
  generateX25519KeyPair () {
    if (!jwkX25519Works()) return defaultCrypto.generateX25519KeyPair()
    const { privateKey: jwk } = generateJwkPair('x25519', { publicKeyEncoding: { format: 'jwk' }, privateKeyEncoding: { format: 'jwk' } })
    const { x, d } = jwk
    if (x == null || d == null) return defaultCrypto.generateX25519KeyPair()
    // Arrays of their own: a small `Buffer.from` is a view into Node's shared pool, which a
    // private key should not share with unrelated bytes.
    const privateKey = new Uint8Array(Buffer.from(d, 'base64url'))
    privateKeyObjects.set(privateKey, createPrivateKey({ key: jwk, format: 'jwk' }))
    return { publicKey: new Uint8Array(Buffer.from(x, 'base64url')), privateKey }
  },
  generateX25519SharedKey (privateKey, publicKey) {
    return jwkX25519Works() ? jwkSharedKey(privateKey, publicKey) : defaultCrypto.generateX25519SharedKey(privateKey, publicKey)
  }
}

const EMPTY = new Uint8Array(0)

/** `generateKeyPairSync` with both halves encoded as JWK, which Node supports and its types lack (`@libp2p/crypto` generates Ed25519 keys so too). */
const generateJwkPair = generateKeyPairSync as unknown as (type: 'x25519', options: { publicKeyEncoding: { format: 'jwk' }, privateKeyEncoding: { format: 'jwk' } }) => { publicKey: NodeJwk, privateKey: NodeJwk }

/** A list that Noise's own code can take in. */
type NoiseList = ReturnType<ICryptoInterface['chaCha20Poly1305Encrypt']>
let noiseList: (new (...bufs: Uint8Array[]) => NoiseList) | undefined

/**
 * Noise's `Uint8ArrayList` class (its own copy of the package, which we cannot import): the
 * class of what its node seal returns for a list, learnt once.
 */
function noiseListClass (): new (...bufs: Uint8Array[]) => NoiseList {
  if (noiseList == null) {
    const probe = nodeCrypto.chaCha20Poly1305Encrypt(new Uint8ArrayList(EMPTY) as unknown as NoiseList, new Uint8Array(12), EMPTY, new Uint8Array(32))
    noiseList = (probe instanceof Uint8Array ? Uint8ArrayList : probe.constructor) as new (...bufs: Uint8Array[]) => NoiseList
  }
  return noiseList
}

const log = logger('peerswarm:platform')

/** The part of `sodium-native` (libsodium's Ed25519 and ChaCha20-Poly1305) used here. */
interface Sodium {
  crypto_sign_seed_keypair: (publicKey: Uint8Array, secretKey: Uint8Array, seed: Uint8Array) => void
  crypto_sign_detached: (signature: Uint8Array, message: Uint8Array, secretKey: Uint8Array) => void
  crypto_sign_verify_detached: (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean
  /** Checks the tag, then writes the plaintext to `m` (which may start where `c` does); throws if the tag is wrong. */
  crypto_aead_chacha20poly1305_ietf_decrypt: (m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array) => number
}

/**
 * Open a Noise message (ciphertext ‖ tag) with libsodium: into `dst` when it has the
 * plaintext's length and starts where the ciphertext does (in place: what the secure channel
 * asks, so that no buffer is made per message) or lies in another buffer; else into a new
 * array. libsodium checks the tag before it decrypts: a forged message throws, and what was to
 * hold its plaintext is zeroed (in place, the message's bytes: the secure channel closes the
 * connection on a message that does not open, as with `node:crypto`).
 */
function sodiumOpen (sodium: Sodium, ciphertext: Uint8Array, nonce: Uint8Array, ad: Uint8Array, k: Uint8Array, dst?: Uint8Array): Uint8Array {
  const length = ciphertext.byteLength - NOISE_TAG_LENGTH
  if (length < 0) throw new Error('Noise message shorter than its tag')
  const usable = dst !== undefined && dst.byteLength === length && dst.buffer instanceof ArrayBuffer &&
    (dst.buffer !== ciphertext.buffer || dst.byteOffset === ciphertext.byteOffset)
  const out = usable ? dst : new Uint8Array(length)
  sodium.crypto_aead_chacha20poly1305_ietf_decrypt(out, null, plain(ciphertext), ad.byteLength === 0 ? null : plain(ad), plain(nonce), plain(k))
  return out
}

/**
 * `sodium-native` if the application installed it, it loads, and its Ed25519 agrees with
 * `node:crypto`'s on a known key (the same public key and signature; a good signature verified,
 * a changed message or signature refused); else undefined.
 */
function loadSodium (): Sodium | undefined {
  if (process.env.PEERSWARM_SODIUM === '0') {
    log('Ed25519 through node:crypto (PEERSWARM_SODIUM=0)')
    return undefined
  }
  let sodium: Sodium
  try {
    sodium = createRequire(import.meta.url)('sodium-native') as Sodium
  } catch {
    log('Ed25519 through node:crypto (sodium-native is not installed, or cannot be loaded here)')
    return undefined
  }
  try {
    const seed = new Uint8Array(32).fill(7)
    const message = new TextEncoder().encode('peerswarm checks libsodium against node:crypto')
    const publicKey = new Uint8Array(32)
    const secretKey = new Uint8Array(64)
    sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed)
    const signature = new Uint8Array(64)
    sodium.crypto_sign_detached(signature, message, secretKey)
    // The same signature and message as views at an offset, as received bytes are.
    const within = new Uint8Array(3 + message.byteLength + 64)
    within.set(message, 3)
    within.set(signature, 3 + message.byteLength)
    const messageView = within.subarray(3, 3 + message.byteLength)
    const signatureView = within.subarray(3 + message.byteLength)
    const reference = okpKey('Ed25519', { d: seed })
    const referenceX = createPublicKey(reference).export({ format: 'jwk' }).x
    const changed = (bytes: Uint8Array): Uint8Array => bytes.map((byte, i) => i === 0 ? byte ^ 1 : byte)
    if (referenceX === base64url(publicKey) &&
      Buffer.from(nodeSign(null, message, reference)).equals(signature) &&
      sodium.crypto_sign_verify_detached(signature, message, publicKey) &&
      sodium.crypto_sign_verify_detached(signatureView, messageView, publicKey) &&
      !sodium.crypto_sign_verify_detached(signature, changed(message), publicKey) &&
      !sodium.crypto_sign_verify_detached(changed(signature), message, publicKey) &&
      aeadAgrees(sodium, seed, changed)) {
      log('Ed25519 and large Noise messages\' ChaCha20-Poly1305 through libsodium (sodium-native)')
      return sodium
    }
    log.error('sodium-native disagrees with node:crypto on Ed25519 or ChaCha20-Poly1305; using node:crypto')
  } catch (err) {
    log.error('sodium-native failed its check (%s); using node:crypto', String(err))
  }
  return undefined
}

/**
 * libsodium opens, in place, what `node:crypto` sealed (a message of `CHACHA_NODE_FROM` bytes
 * with associated data, at an offset in a larger buffer, as received bytes are), and refuses
 * it with one bit changed in the ciphertext or the tag, writing no plaintext.
 */
function aeadAgrees (sodium: Sodium, key: Uint8Array, changed: (bytes: Uint8Array) => Uint8Array): boolean {
  const nonce = new Uint8Array(12).fill(1)
  const ad = new Uint8Array([1, 2, 3])
  const plaintext = new Uint8Array(CHACHA_NODE_FROM).map((_, i) => i * 7)
  // The dependency's own node:crypto seal, not ours: the reference stays independent of this file.
  const sealed = new Uint8Array(nodeCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, key).subarray())
  const refused = (bytes: Uint8Array): boolean => {
    const copy = Uint8Array.from(bytes)
    const out = copy.subarray(0, plaintext.byteLength)
    try {
      sodiumOpen(sodium, copy, nonce, ad, key, out)
      return false
    } catch {
      // No plaintext written: libsodium zeroes what it was to write to.
      return out.every(byte => byte === 0)
    }
  }
  const within = new Uint8Array(5 + sealed.byteLength)
  within.set(sealed, 5)
  const message = within.subarray(5)
  const opened = sodiumOpen(sodium, message, nonce, ad, key, message.subarray(0, plaintext.byteLength))
  return opened.byteOffset === message.byteOffset && Buffer.from(opened).equals(plaintext) &&
    refused(changed(sealed)) && refused(sealed.map((byte, i) => i === sealed.byteLength - 1 ? byte ^ 1 : byte))
}

/** libsodium for large Noise messages' decryption, if it is the Ed25519 route too (it passed both checks). */
function sodiumRoute (): Sodium | undefined {
  ed25519Route()
  return loadedSodium
}

/** `sodium-native`, once loaded and checked by {@link ed25519Route}. */
let loadedSodium: Sodium | undefined

/** The Ed25519 route, chosen at first use (not at import: loading the addon costs start-up). */
let route: Ed25519Keys | undefined

/** @internal The Ed25519 route in use: libsodium if `sodium-native` loads and passes its check, else `node:crypto`. */
export function ed25519Route (): Ed25519Keys {
  if (route === undefined) {
    const sodium = loadSodium()
    loadedSodium = sodium
    route = sodium != null ? sodiumEd25519(sodium) : nodeEd25519
  }
  return route
}

/** @internal Which implementation signs and verifies Ed25519 here. */
export function ed25519Implementation (): 'libsodium' | 'node:crypto' {
  return ed25519Route() === nodeEd25519 ? 'node:crypto' : 'libsodium'
}

/** @internal Ed25519 through libsodium, if `sodium-native` is installed and passed its check. */
export function sodiumEd25519Keys (): Ed25519Keys | undefined {
  const keys = ed25519Route()
  return keys === nodeEd25519 ? undefined : keys
}

/** `bytes`, copied if they are a view of anything but a plain `ArrayBuffer` (the addon reads only those). */
function plain (bytes: Uint8Array): Uint8Array {
  return bytes.buffer instanceof ArrayBuffer ? bytes : bytes.slice()
}

/**
 * Ed25519 through libsodium, keys kept as bytes. A signature libsodium refuses is checked again
 * by `node:crypto` before it counts as invalid: libsodium is stricter than OpenSSL on crafted
 * signatures (it refuses small-order points and non-canonical key encodings, which OpenSSL,
 * and so js-libp2p on Node, accepts), and a node that refused what its peers accept would
 * penalise the honest peers that forward such a message. So this accepts exactly what
 * `node:crypto` accepts, at libsodium's speed for every valid signature; an invalid one costs
 * both checks.
 */
function sodiumEd25519 (sodium: Sodium): Ed25519Keys {
  return {
    signer (seed) {
      if (seed.byteLength !== 32) return undefined
      const publicKey = new Uint8Array(32)
      const secretKey = new Uint8Array(64)
      sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed)
      return (bytes) => {
        const signature = new Uint8Array(64)
        sodium.crypto_sign_detached(signature, plain(bytes), secretKey)
        return signature
      }
    },
    verifier (publicKey) {
      if (publicKey.byteLength !== 32) return undefined
      const key = publicKey.slice()
      const confirm = nodeEd25519.verifier(key)
      if (confirm == null) return undefined
      return (bytes, signature) => signature.byteLength === 64 &&
        (sodium.crypto_sign_verify_detached(plain(signature), plain(bytes), key) || confirm(bytes, signature))
    }
  }
}

/** @internal Ed25519 through `node:crypto` KeyObjects. */
export const nodeEd25519: Ed25519Keys = {
  signer (seed) {
    try {
      const object = okpKey('Ed25519', { d: seed })
      return (bytes) => nodeSign(null, bytes, object)
    } catch {
      return undefined
    }
  },
  verifier (publicKey) {
    try {
      const object = okpKey('Ed25519', { x: publicKey })
      return (bytes, signature) => signature.byteLength === 64 && nodeVerify(null, bytes, object, signature)
    } catch {
      return undefined
    }
  }
}

/** What the platform installs: each signer and verifier comes from the route, chosen once. */
const ed25519: Ed25519Keys = {
  signer: (seed) => ed25519Route().signer(seed),
  verifier: (publicKey) => ed25519Route().verifier(publicKey)
}

installPlatform({ name: 'node', noiseCrypto, ed25519, tcp })
// WebSockets dials on Node 20, which has no global WebSocket, use ws's (compat.ts says how).
useWebSocketClass(NodeWebSocket)
