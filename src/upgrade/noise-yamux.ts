/**
 * The upgrader every swarm uses: Noise for security, then Yamux for multiplexing.
 *
 * @module
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { componentLogger } from '../core/logging.js'
import { peerIdOf } from '../core/identity.js'
import { platform } from '../platform.js'
import { SwarmUpgrader } from './upgrader.js'
import type { Keypair } from '../core/identity.js'
import type { ComponentLogger } from '@libp2p/interface'

/**
 * How many streams Yamux holds before the swarm takes a connection over, unless told otherwise:
 * the swarm's default `maxNegotiatingInboundStreams`.
 */
const DEFAULT_MAX_EARLY_STREAMS = 128

/**
 * @internal The upgrader every swarm uses: Noise, then Yamux. Yamux holds the streams that
 * arrive before the swarm has taken the connection over (a remote may open streams in the same
 * packet as its last handshake message) up to `maxEarlyStreams`, and aborts the connection
 * beyond; its own default, 10, let a js-libp2p peer that opens a burst of streams at once kill
 * the connection. The connection then applies `maxNegotiatingInboundStreams` to them.
 */
export function noiseYamuxUpgrader (key: Keypair, logger: ComponentLogger = componentLogger(), inlineMuxerNegotiation = true,
  maxEarlyStreams = DEFAULT_MAX_EARLY_STREAMS): SwarmUpgrader {
  const peerId = peerIdOf(key)
  const upgrader = new SwarmUpgrader({ localPeer: peerId, inlineMuxerNegotiation })
  upgrader.addEncrypter(noise({ crypto: platform().noiseCrypto })({ peerId, privateKey: key, logger, upgrader: upgrader.transportUpgrader(rejectInbound) }))
  upgrader.addMuxer(yamux({ maxEarlyStreams })())
  return upgrader
}

async function rejectInbound (): Promise<void> {
  throw new Error('not a listener')
}
