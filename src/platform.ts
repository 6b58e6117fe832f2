/**
 * What differs between Node and browsers, behind one object that the rest of the library asks.
 *
 * Every module reachable from the browser entry point (`browser.ts`) is portable: it uses only
 * what browsers and Node both have. Where Node has something faster (`node:crypto` KeyObjects
 * for Ed25519, node's ChaCha20-Poly1305) or something browsers lack (TCP), the Node entry point
 * (`index.ts`, through `node.ts`) installs it here at load time. Without it the portable
 * defaults apply: Noise's own crypto for the platform, keys that sign and verify themselves
 * (`@libp2p/crypto`), and no TCP.
 *
 * @internal
 * @module
 */
import type { TcpOptions, TransportFactory } from './transport/transport.js'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'
import type { PrivateKey, PublicKey } from '@libp2p/interface'

/** A signature function over one imported key. */
type Sign = (bytes: Uint8Array) => Uint8Array
/** A verification function over one imported key. */
type Verify = (bytes: Uint8Array, signature: Uint8Array) => boolean

/** Ed25519 with keys imported once (the platform's own implementation). */
export interface Ed25519Keys {
  /** A signer for a 32-byte private key (seed), or undefined when it cannot be imported. */
  signer: (seed: Uint8Array) => Sign | undefined
  /** A verifier for a 32-byte public key, or undefined when it cannot be imported. */
  verifier: (publicKey: Uint8Array) => Verify | undefined
}

/** The platform-specific pieces; each is optional and has a portable fallback. */
export interface Platform {
  /** For messages and logs: `'portable'` until an entry point installs another. */
  readonly name: string
  /** Noise's crypto; undefined: the default Noise picks for the platform. */
  readonly noiseCrypto?: ICryptoInterface
  /** Ed25519 with imported keys; undefined: `@libp2p/crypto` keys sign and verify themselves. */
  readonly ed25519?: Ed25519Keys
  /** The TCP transport; undefined: `SwarmBuilder.withTcp()` throws. */
  readonly tcp?: (options: TcpOptions) => TransportFactory
}

let current: Platform = { name: 'portable' }

/** The platform in use. */
export function platform (): Platform {
  return current
}

/** Replace the platform (the Node entry point does, once, when it loads). */
export function installPlatform (next: Platform): void {
  current = next
}

/**
 * A signer for `key`: Ed25519 through the platform's implementation, the key imported once,
 * where it has one (on Node, libsodium or a `node:crypto` KeyObject: `@libp2p/crypto`'s keys
 * import themselves from JWK on every call, which for a private key costs more than the
 * signature); other keys, and Ed25519 elsewhere, sign themselves. Pubsub signs with it, and
 * so does the Noise handshake (`upgrade/noise-yamux.ts`).
 */
export function signerOf (key: PrivateKey): (bytes: Uint8Array) => Uint8Array | Promise<Uint8Array> {
  const keys = current.ed25519
  if (keys != null && key.type === 'Ed25519' && key.raw.byteLength >= 32) {
    const sign = keys.signer(key.raw.subarray(0, 32))
    if (sign != null) return sign
  }
  return (bytes) => key.sign(bytes)
}

/** A verifier for `key`, as {@link signerOf}. */
export function verifierOf (key: PublicKey): (bytes: Uint8Array, signature: Uint8Array) => boolean | Promise<boolean> {
  const keys = current.ed25519
  if (keys != null && key.type === 'Ed25519' && key.raw.byteLength === 32) {
    const verify = keys.verifier(key.raw)
    if (verify != null) return verify
  }
  return (bytes, signature) => key.verify(bytes, signature)
}
