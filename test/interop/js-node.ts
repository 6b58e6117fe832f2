/**
 * Real js-libp2p v3 nodes for interop tests, listening on 127.0.0.1 only.
 */
import '../../src/compat.js'
import dgram from 'node:dgram'
import { WebSocket } from 'ws'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { floodsub } from '@libp2p/floodsub'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { mdns } from '@libp2p/mdns'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { createLibp2p } from 'libp2p'
import type { Message as JsMessage } from '@libp2p/gossipsub'

// js-libp2p's @libp2p/websockets dials with the global WebSocket, which Node 20 lacks and
// peerswarm no longer installs (src/compat.ts): this test process provides it itself.
const globals = globalThis as { WebSocket?: unknown }
globals.WebSocket ??= WebSocket

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

/**
 * A js-libp2p node on TCP running `@libp2p/gossipsub` with `options`, listening on
 * `network.listen` (default 127.0.0.1) with `network.tcp` as its TCP options.
 */
export async function jsGossipsubNode (options: Parameters<typeof gossipsub>[0], network: { listen?: string, tcp?: Parameters<typeof tcp>[0] } = {}) {
  return createLibp2p({
    addresses: { listen: [`/ip4/${network.listen ?? '127.0.0.1'}/tcp/0`] },
    transports: [tcp(network.tcp)],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), pubsub: gossipsub(options) },
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] }
  })
}

/** A js-libp2p node with `@libp2p/mdns` on `serviceTag`, querying every `interval` ms. */
export async function jsMdnsNode (serviceTag: string, interval = 1_000) {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [mdns({ serviceTag, interval })],
    services: { identify: identify() },
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] }
  })
}

export type JsMdnsNode = Awaited<ReturnType<typeof jsMdnsNode>>

/**
 * `@libp2p/mdns` (through multicast-dns) joins the group on every IPv4 interface and sends
 * through the default one; tests must stay on loopback. Until the returned function is called,
 * every dgram socket in this process joins only on 127.0.0.1 and sends only there.
 */
export function pinMulticastToLoopback (): () => void {
  const proto = dgram.Socket.prototype
  const { addMembership, setMulticastInterface } = proto
  proto.addMembership = function (this: dgram.Socket, group: string, iface?: string) {
    if (iface === '127.0.0.1') addMembership.call(this, group, iface)
  }
  proto.setMulticastInterface = function (this: dgram.Socket) {
    setMulticastInterface.call(this, '127.0.0.1')
  }
  return () => {
    proto.addMembership = addMembership
    proto.setMulticastInterface = setMulticastInterface
  }
}

/**
 * Our default id of a signed message, for `@libp2p/gossipsub`'s `msgIdFn`: the author's peer
 * id multihash ‖ seqno (8 bytes, big-endian).
 */
export function authorSeqnoId (msg: JsMessage): Uint8Array {
  if (msg.type !== 'signed') throw new Error('expected a signed message')
  const from = msg.from.toMultihash().bytes
  const id = new Uint8Array(from.byteLength + 8)
  id.set(from)
  new DataView(id.buffer).setBigUint64(from.byteLength, msg.sequenceNumber)
  return id
}
