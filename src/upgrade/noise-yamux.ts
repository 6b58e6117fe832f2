/**
 * The upgrader every swarm uses: Noise for security, then Yamux for multiplexing.
 *
 * @module
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { componentLogger } from '../core/logging.js'
import { peerIdOf } from '../core/identity.js'
import { platform, signerOf } from '../platform.js'
import { SwarmUpgrader } from './upgrader.js'
import type { Keypair } from '../core/identity.js'
import type { ComponentLogger } from '@libp2p/interface'

/**
 * How many streams Yamux holds before the swarm takes a connection over, unless told otherwise:
 * the swarm's default `maxNegotiatingInboundStreams`.
 */
const DEFAULT_MAX_EARLY_STREAMS = 128

/**
 * @internal The most a stream's Yamux receive window may grow to, unless told otherwise: the
 * swarm's default `maxStreamWindow`, 4 MiB. `@chainsafe/libp2p-yamux` (as go-yamux) lets a busy
 * stream's window double up to 16 MiB, and grants it as data arrives, not as it is read: when a
 * handler pauses a stream, what the remote may still send (up to the window) waits in the
 * stream's read buffer. 4 MiB still carries about 40 MiB/s per stream at 100 ms RTT.
 */
export const DEFAULT_MAX_STREAM_WINDOW = 4 * 1024 * 1024

/** @internal The smallest `maxStreamWindow`: Yamux's initial window, 256 KiB, which it refuses to go below. */
export const MIN_STREAM_WINDOW = 256 * 1024

/** @internal The largest `maxStreamWindow`: a window is a 32-bit count on the wire. */
export const MAX_STREAM_WINDOW = 2 ** 32 - 1

/**
 * A stream's read buffer beyond which js-libp2p aborts the stream (`StreamBufferError`), its
 * default. It is raised to the window when the window is larger, so that what a remote sends
 * within its window to a paused stream never gets the stream reset.
 */
const DEFAULT_MAX_READ_BUFFER = 4 * 1024 * 1024

/**
 * @internal The upgrader every swarm uses: Noise, then Yamux. Yamux holds the streams that
 * arrive before the swarm has taken the connection over (a remote may open streams in the same
 * packet as its last handshake message) up to `maxEarlyStreams`, and aborts the connection
 * beyond; its own default, 10, let a js-libp2p peer that opens a burst of streams at once kill
 * the connection. The connection then applies `maxNegotiatingInboundStreams` to them. Each
 * stream's receive window grows to `maxStreamWindow` bytes at most (the swarm validates it:
 * from {@link MIN_STREAM_WINDOW} to {@link MAX_STREAM_WINDOW}).
 */
export function noiseYamuxUpgrader (key: Keypair, logger: ComponentLogger = componentLogger(), inlineMuxerNegotiation = true,
  maxEarlyStreams = DEFAULT_MAX_EARLY_STREAMS, maxStreamWindow = DEFAULT_MAX_STREAM_WINDOW): SwarmUpgrader {
  const peerId = peerIdOf(key)
  const upgrader = new SwarmUpgrader({ localPeer: peerId, inlineMuxerNegotiation })
  upgrader.addEncrypter(noise({ crypto: platform().noiseCrypto })({ peerId, privateKey: handshakeKey(key), logger, upgrader: upgrader.transportUpgrader(rejectInbound) }))
  upgrader.addMuxer(yamux({
    maxEarlyStreams,
    streamOptions: { maxStreamWindowSize: maxStreamWindow, maxReadBufferLength: Math.max(DEFAULT_MAX_READ_BUFFER, maxStreamWindow) }
  })())
  return upgrader
}

/**
 * The identity key as Noise sees it: the same key, but its handshake signature (one per
 * connection) comes from the platform's signer, the key imported once (`signerOf`), rather
 * than from the key itself, which on Node imports itself from JWK for every signature (in a
 * profile of the Kademlia simulation that import alone was 1.4% of the CPU). Noise reads only
 * `sign` and `publicKey` of it.
 */
function handshakeKey (key: Keypair): Keypair {
  const sign = signerOf(key)
  return Object.create(key, { sign: { value: (data: Uint8Array) => sign(data) } }) as Keypair
}

async function rejectInbound (): Promise<void> {
  throw new Error('not a listener')
}
