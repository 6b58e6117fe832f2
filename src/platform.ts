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
import type { TransportFactory } from './swarm/builder.js'
import type { TcpOptions } from './transport/tcp.js'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'

/** A signature function over one imported key. */
export type Sign = (bytes: Uint8Array) => Uint8Array
/** A verification function over one imported key. */
export type Verify = (bytes: Uint8Array, signature: Uint8Array) => boolean

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

type Immediate = (callback: () => void) => void

/**
 * Run `callback` at the end of this event-loop turn, after pending I/O: `setImmediate` where it
 * exists (Node; looked up at each call, so that a fake or virtual clock's stands in for all
 * callers alike and they keep their order), else a `MessageChannel` message (a task, without
 * `setTimeout`'s clamping).
 */
export const nextTurn: Immediate = (() => {
  const g = globalThis as { setImmediate?: Immediate }
  if (typeof g.setImmediate === 'function') return (callback) => { (g.setImmediate as Immediate)(callback) }
  if (typeof MessageChannel === 'function') {
    const queue: Array<() => void> = []
    const channel = new MessageChannel()
    channel.port1.onmessage = () => {
      const callback = queue.shift()
      if (callback != null) callback()
    }
    return (callback) => {
      queue.push(callback)
      channel.port2.postMessage(null)
    }
  }
  return (callback) => { setTimeout(callback, 0) }
})()
