/**
 * Real js-libp2p v3 nodes for interop tests, listening on 127.0.0.1 only.
 */
import '../../src/compat.js'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { floodsub } from '@libp2p/floodsub'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p } from 'libp2p'

export async function jsNode () {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'] },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() },
    // Local tests open bursts of connections from one address.
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] }
  })
}

export type JsNode = Awaited<ReturnType<typeof jsNode>>

/** The node's listen address for `transport`, with its /p2p/ suffix. */
export function jsAddress (node: JsNode, transport: 'tcp' | 'ws') {
  const address = node.getMultiaddrs().find(a => transport === 'ws' ? a.toString().includes('/ws') : !a.toString().includes('/ws'))
  if (address == null) throw new Error(`js node has no ${transport} address`)
  return address
}

/** A js-libp2p node running `@libp2p/floodsub` with the given signature policy. */
export async function jsFloodsubNode (policy: 'StrictSign' | 'StrictNoSign') {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), pubsub: floodsub({ globalSignaturePolicy: policy }) },
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] }
  })
}

export type JsFloodsubNode = Awaited<ReturnType<typeof jsFloodsubNode>>
