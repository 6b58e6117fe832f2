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
 * How many times {@link nextTurn}'s queue is drained in one turn: what a drain's callbacks
 * (and the promise continuations they release) ask of `nextTurn` in turn runs in the next
 * drain of the same turn, up to this depth; deeper, in the next turn.
 */
const DRAINS_PER_TURN = 3

/** The host's way to run a task after pending I/O: `setImmediate`, looked up at each call. */
function immediateOf (): Immediate {
  const g = globalThis as { setImmediate?: Immediate }
  if (typeof g.setImmediate === 'function') return g.setImmediate
  return postTask
}

/** Tasks waiting for {@link postTask}'s channel, made on first use (an open port keeps Node alive). */
let taskChannel: { readonly port: MessagePort, readonly tasks: Array<() => void> } | undefined

/** A `MessageChannel` message (a task, without `setTimeout`'s clamping), else `setTimeout`. */
function postTask (callback: () => void): void {
  if (typeof MessageChannel !== 'function') {
    setTimeout(callback, 0)
    return
  }
  if (taskChannel == null) {
    const channel = new MessageChannel()
    const tasks: Array<() => void> = []
    channel.port1.onmessage = () => { tasks.shift()?.() }
    taskChannel = { port: channel.port2, tasks }
  }
  taskChannel.tasks.push(callback)
  taskChannel.port.postMessage(null)
}

/**
 * The drains scheduled for one turn with one host function, and the callbacks waiting for
 * them, in the order they were asked for. A clock faked or restored in between starts another
 * batch, so each batch's callbacks run under the clock they were asked under.
 */
interface TurnBatch {
  /** Drains scheduled and not yet started. */
  left: number
  readonly host: Immediate
  queue: Array<() => void>
}

let currentBatch: TurnBatch | undefined

function drainBatch (batch: TurnBatch): void {
  batch.left--
  const callbacks = batch.queue
  batch.queue = []
  for (const callback of callbacks) {
    try {
      callback()
    } catch (err) {
      // Thrown as `setImmediate` would (uncaught), without losing the callbacks behind it.
      queueMicrotask(() => { throw err })
    }
  }
}

/**
 * Run `callback` at the end of this event-loop turn, after pending I/O (`setImmediate` where it
 * exists, looked up at each call so that a fake or virtual clock's stands in; else a
 * `MessageChannel` task). Every caller shares one queue (one per clock), drained in order; a
 * turn drains it up to {@link DRAINS_PER_TURN} times, promise continuations running between two
 * drains: so what a callback releases and asks of `nextTurn` in turn still runs in this turn.
 * The pubsub handler relies on it: it hands forwards to a stream once the `SecureChannel`s have
 * flushed this turn's control (one drain), and their flush (the next drain) leaves in the same
 * turn, without waiting for another pass over the sockets.
 */
export const nextTurn: Immediate = (callback) => {
  const host = immediateOf()
  let batch = currentBatch
  if (batch == null || batch.left === 0 || batch.host !== host) {
    const fresh: TurnBatch = { left: DRAINS_PER_TURN, host, queue: [] }
    for (let i = 0; i < DRAINS_PER_TURN; i++) host(() => { drainBatch(fresh) })
    currentBatch = batch = fresh
  }
  batch.queue.push(callback)
}
