/**
 * The crypto ceiling of a pubsub network in one process, measured on our own signing and
 * verifying path (`MessageAuthor` / `MessageChecker`, node:crypto KeyObjects): every delivered
 * message costs one signature (its author) and one verification per other node (each verifies
 * the first copy only), so `nodes` nodes on one core deliver at most
 * 1 / (sign + (nodes − 1) × verify) messages per second.
 *
 * @module
 */
import { generateKeypair, peerIdOf, pubsub } from '../src/index.js'

export interface CryptoCeiling {
  /** Microseconds per signature of a `size`-byte message. */
  signUs: number
  /** Microseconds per verification. */
  verifyUs: number
  /** 1 / (sign + (nodes − 1) × verify), messages per second. */
  msgsPerSec: number
}

/** Measure sign and verify of a `size`-byte message on our path, for `nodes` nodes. */
export async function cryptoCeiling (nodes: number, size: number, iterations = 400): Promise<CryptoCeiling> {
  const key = await generateKeypair()
  const author = new pubsub.MessageAuthor(pubsub.MessageAuthenticity.signed(key))
  const checker = new pubsub.MessageChecker('StrictSign')
  const data = new Uint8Array(size).fill(1)
  const peer = peerIdOf(key)
  const signed = []
  // Warm up both paths (JIT, key import), then time them.
  for (let i = 0; i < 50; i++) await checker.verify(await author.build('t', data, BigInt(i)).complete, peer)
  let t = performance.now()
  for (let i = 0; i < iterations; i++) signed.push(await author.build('t', data, BigInt(i)).complete)
  const signUs = (performance.now() - t) * 1000 / iterations
  t = performance.now()
  for (const message of signed) {
    if (await checker.verify(message, peer) !== true) throw new Error('our own signature did not verify')
  }
  const verifyUs = (performance.now() - t) * 1000 / iterations
  return { signUs, verifyUs, msgsPerSec: 1e6 / (signUs + (nodes - 1) * verifyUs) }
}
