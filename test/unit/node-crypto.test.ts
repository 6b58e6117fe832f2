/**
 * The Node platform's crypto (src/node.ts) gives the same results as the reference: Noise's
 * X25519, HKDF and key generation against `@chainsafe/libp2p-noise`'s pure-JS implementation
 * (`@noble`), and Ed25519 signers and verifiers against `@libp2p/crypto`'s keys.
 */
import { createRequire } from 'node:module'
import { expect } from 'chai'
import { pureJsCrypto } from '@chainsafe/libp2p-noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import { ed25519Implementation, ed25519Route, jwkX25519Works, nodeEd25519, sodiumEd25519Keys } from '../../src/node.js'
import { requireCapability } from '../fixtures/capabilities.js'
import type { Ed25519Keys } from '../../src/platform.js'
import { generateKeypair } from '../../src/index.js'
import { platform, signerOf, verifierOf } from '../../src/platform.js'
import { generateKeyPair } from '@libp2p/crypto/keys'

const random = (length: number): Uint8Array => crypto.getRandomValues(new Uint8Array(length))
const hex = (bytes: { subarray: () => Uint8Array }): string => Buffer.from(bytes.subarray()).toString('hex')
/** Noise's parameter types name its own copy of uint8arraylist; the classes are alike. */
type NoiseBytes = Parameters<NonNullable<ReturnType<typeof platform>['noiseCrypto']>['chaCha20Poly1305Decrypt']>[0]
const split = (bytes: Uint8Array, at: number): NoiseBytes => new Uint8ArrayList(bytes.subarray(0, at), bytes.subarray(at)) as unknown as NoiseBytes

describe('node platform crypto', () => {
  const noise = platform().noiseCrypto
  if (noise == null) throw new Error('the node platform installs no Noise crypto')

  it('generates X25519 key pairs whose public half is that of the private half', () => {
    for (let i = 0; i < 20; i++) {
      const pair = noise.generateX25519KeyPair()
      expect(pair.privateKey.byteLength).to.equal(32)
      expect(hex(pair.publicKey)).to.equal(hex(pureJsCrypto.generateX25519KeyPairFromSeed(pair.privateKey).publicKey))
    }
  })

  it('computes the reference X25519 shared secret, from arrays and from lists', () => {
    for (let i = 0; i < 20; i++) {
      const a = pureJsCrypto.generateX25519KeyPair()
      const b = pureJsCrypto.generateX25519KeyPair()
      const expected = hex(pureJsCrypto.generateX25519SharedKey(a.privateKey, b.publicKey))
      expect(hex(noise.generateX25519SharedKey(a.privateKey, b.publicKey))).to.equal(expected)
      expect(hex(noise.generateX25519SharedKey(split(a.privateKey, 7), split(b.publicKey, 7)))).to.equal(expected)
      expect(hex(noise.generateX25519SharedKey(b.privateKey, a.publicKey))).to.equal(expected)
    }
  })

  it('seals and opens as the reference ChaCha20-Poly1305 does, on both sides of the wasm / node switch', () => {
    const k = random(32)
    const ad = random(32)
    for (const size of [0, 100, 511, 512, 513, 5_000, 65_519]) {
      const nonce = random(12)
      const plaintext = random(size)
      const sealed = noise.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
      expect(hex(sealed), `${size} B`).to.equal(hex(pureJsCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)))
      expect(hex(noise.chaCha20Poly1305Decrypt(sealed.subarray(), nonce, ad, k))).to.equal(hex(plaintext))
      const forged = sealed.subarray().slice()
      forged[0] ^= 1
      expect(() => noise.chaCha20Poly1305Decrypt(forged, nonce, ad, k), `${size} B forged`).to.throw()
      // In pieces, as the frame decoder hands over a message that spanned reads, and as a
      // plaintext list: the same bytes, and a forged tag still refused.
      const whole = sealed.subarray()
      const cut = whole.byteLength >> 1
      expect(hex(noise.chaCha20Poly1305Decrypt(split(whole, cut), nonce, ad, k)), `${size} B in pieces`).to.equal(hex(plaintext))
      const forgedTag = whole.slice()
      forgedTag[whole.byteLength - 1] ^= 1
      expect(() => noise.chaCha20Poly1305Decrypt(split(forgedTag, cut), nonce, ad, k), `${size} B forged, in pieces`).to.throw()
      expect(hex(noise.chaCha20Poly1305Encrypt(split(plaintext, size >> 1), nonce, ad, k)), `${size} B from a list`).to.equal(hex(sealed))
    }
  })

  describe('large messages opened by libsodium (sodium-native)', function () {
    before(function () { requireCapability(this, 'sodium') })

    /** A sealed message of `size` bytes at `offset` in a larger buffer, as received bytes are. */
    const received = (size: number, offset: number): { message: Uint8Array, plaintext: Uint8Array, nonce: Uint8Array, ad: Uint8Array, k: Uint8Array } => {
      const [plaintext, nonce, ad, k] = [random(size), random(12), random(32), random(32)]
      const sealed = pureJsCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k).subarray()
      const chunk = new Uint8Array(offset + sealed.byteLength + 7)
      chunk.set(sealed, offset)
      return { message: chunk.subarray(offset, offset + sealed.byteLength), plaintext, nonce, ad, k }
    }

    it('opens in place, into the bytes the message arrived in, when asked to (no new buffer)', () => {
      for (const size of [512, 16_384, 65_519]) {
        const { message, plaintext, nonce, ad, k } = received(size, 3)
        const opened = noise.chaCha20Poly1305Decrypt(message, nonce, ad, k, message.subarray(0, size))
        expect(opened.subarray().buffer, `${size} B`).to.equal(message.buffer)
        expect(opened.subarray().byteOffset).to.equal(message.byteOffset)
        expect(hex(opened)).to.equal(hex(plaintext))
      }
    })

    it('refuses a changed byte and writes no plaintext where it was asked to', () => {
      const { message, plaintext, nonce, ad, k } = received(16_384, 3)
      for (const at of [0, 9_000, message.byteLength - 1]) {
        const forged = message.slice()
        forged[at] ^= 1
        expect(() => noise.chaCha20Poly1305Decrypt(forged, nonce, ad, k, forged.subarray(0, plaintext.byteLength)), `byte ${at}`).to.throw()
        expect(hex(forged.subarray(0, 64))).to.not.equal(hex(plaintext.subarray(0, 64)))
      }
    })

    it('opens into a new array when the destination would overlap the message elsewhere, or has the wrong length', () => {
      const { message, plaintext, nonce, ad, k } = received(4_096, 16)
      const chunk = new Uint8Array(message.buffer)
      for (const dst of [chunk.subarray(8, 8 + 4_096), message.subarray(0, 4_000)]) {
        const opened = noise.chaCha20Poly1305Decrypt(message, nonce, ad, k, dst).subarray()
        expect(opened.buffer).to.not.equal(message.buffer)
        expect(hex(opened)).to.equal(hex(plaintext))
      }
    })
  })

  it('imports X25519 keys as JWK here (the fallback to the dependency is not in use)', () => {
    expect(jwkX25519Works()).to.equal(true)
  })

  it("hands a sealed message over as a list of Noise's own uint8arraylist, which Noise's lists take in", () => {
    const sealed = noise.chaCha20Poly1305Encrypt(random(1_000), random(12), random(32), random(32))
    // What Noise's handshake and stream do with a ciphertext: append it to a list of theirs.
    const theirs = noise.chaCha20Poly1305Encrypt(split(random(600), 300), random(12), random(32), random(32))
    if (sealed instanceof Uint8Array || theirs instanceof Uint8Array) throw new Error('expected lists')
    expect(sealed.constructor).to.equal(theirs.constructor)
    const total = theirs.byteLength + sealed.byteLength
    theirs.append(sealed)
    expect(theirs.byteLength).to.equal(total)
  })

  it('derives the reference HKDF outputs', () => {
    for (let i = 0; i < 20; i++) {
      const ck = random(32)
      const ikm = random(i === 0 ? 0 : 32)
      expect(noise.getHKDF(ck, ikm).map(hex)).to.deep.equal(pureJsCrypto.getHKDF(ck, ikm).map(hex))
    }
  })

})

/** The group order of Ed25519, L = 2^252 + 27742317777372353535851937790883648493. */
const L = 2n ** 252n + 27742317777372353535851937790883648493n

/** `signature` with S + L in place of S: the same point equation, a non-canonical encoding. */
function withNonCanonicalS (signature: Uint8Array): Uint8Array {
  const out = signature.slice()
  let s = 0n
  for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(signature[32 + i])
  s += L
  for (let i = 0; i < 32; i++) {
    out[32 + i] = Number(s & 0xffn)
    s >>= 8n
  }
  return out
}

/** The Ed25519 checks, for one implementation. */
function ed25519Checks (keys: () => Ed25519Keys): void {
  it('signs as @libp2p/crypto does and verifies its signatures; refuses changed bytes, a non-canonical S and keys of the wrong size', async () => {
    const ed25519 = keys()
    const key = await generateKeypair()
    const seed = key.raw.subarray(0, 32)
    const data = random(300)
    const sign = ed25519.signer(seed)
    const verify = ed25519.verifier(key.publicKey.raw)
    if (sign == null || verify == null) throw new Error('a valid key was refused')
    const signature = sign(data)
    // Ed25519 signatures are deterministic: the same key and bytes give the same signature.
    expect(hex(signature)).to.equal(hex(await key.sign(data)))
    expect(verify(data, signature)).to.equal(true)
    expect(verify(random(300), signature)).to.equal(false)
    expect(verify(data, signature.subarray(1))).to.equal(false)
    const changed = signature.slice()
    changed[10] ^= 1
    expect(verify(data, changed)).to.equal(false)
    // @libp2p/crypto (node:crypto, OpenSSL) refuses it too.
    expect(await key.publicKey.verify(data, withNonCanonicalS(signature))).to.equal(false)
    expect(verify(data, withNonCanonicalS(signature))).to.equal(false)
    expect(ed25519.verifier(random(31))).to.equal(undefined)
    expect(ed25519.signer(random(33))).to.equal(undefined)
  })

  it('decides as node:crypto (OpenSSL, which js-libp2p uses on Node) does, even on a crafted signature over small-order points', () => {
    // The identity point as public key and as R, and S = 0: [S]B = R + [k]A holds for any
    // message. The OpenSSL of Node 20 and 22 accepts it, Node 24's refuses it; libsodium alone
    // always refuses it, which would make a node reject (and penalise the honest forwarders of)
    // a message its js-libp2p peers on the same Node accept.
    const identity = new Uint8Array(32)
    identity[0] = 1
    const signature = new Uint8Array(64)
    signature.set(identity)
    const data = new TextEncoder().encode('crafted')
    const reference = nodeEd25519.verifier(identity)?.(data, signature)
    expect(reference, 'node:crypto').to.be.a('boolean')
    expect(keys().verifier(identity)?.(data, signature)).to.equal(reference)
  })

  it('verifies bytes and signatures that are views at an offset of a larger buffer', async () => {
    const ed25519 = keys()
    const key = await generateKeypair()
    const data = random(100)
    const signature = await key.sign(data)
    const within = new Uint8Array(5 + data.byteLength + 64)
    within.set(data, 5)
    within.set(signature, 5 + data.byteLength)
    const verify = ed25519.verifier(key.publicKey.raw)
    expect(verify?.(within.subarray(5, 5 + data.byteLength), within.subarray(5 + data.byteLength))).to.equal(true)
  })
}

describe('node platform Ed25519', () => {
  it('signerOf and verifierOf (what pubsub and the Noise handshake sign with) agree with the keys themselves, Ed25519 and other types', async () => {
    for (const key of [await generateKeypair(), await generateKeyPair('secp256k1')]) {
      const data = random(200)
      const signature = await signerOf(key)(data)
      expect(await key.publicKey.verify(data, signature), key.type).to.equal(true)
      expect(await verifierOf(key.publicKey)(data, await key.sign(data)), key.type).to.equal(true)
      expect(await verifierOf(key.publicKey)(random(200), signature), key.type).to.equal(false)
    }
  })

  it('is the one the platform installed: libsodium where sodium-native loads, else node:crypto', () => {
    expect(platform().ed25519).to.not.equal(undefined)
    let loads = process.env.PEERSWARM_SODIUM !== '0'
    try {
      createRequire(import.meta.url)('sodium-native')
    } catch {
      loads = false
    }
    expect(ed25519Implementation()).to.equal(loads ? 'libsodium' : 'node:crypto')
    expect(ed25519Route() === nodeEd25519).to.equal(sodiumEd25519Keys() == null)
  })

  describe('through node:crypto', () => {
    ed25519Checks(() => nodeEd25519)
  })

  describe('through libsodium (sodium-native)', function () {
    before(function () { requireCapability(this, 'sodium') })
    ed25519Checks(() => sodiumEd25519Keys() as Ed25519Keys)
  })
})
