/**
 * A chat over mDNS and GossipSub, after rust-libp2p's chat example: start it in two terminals
 * on one machine (or on two machines of one network); they find each other, and every line
 * typed in one is printed by the other.
 *
 * Run: npx tsx examples/chat.ts [--floodsub] [--interface lo] [--ip 4|6|both]
 *        [--service _name._udp.local] [--topic test-net] [--listen /ip4/0.0.0.0/tcp/0]
 *
 * `--floodsub` uses FloodSub instead of GossipSub (the two are used alike: one word changes).
 *
 * `--interface` keeps mDNS on one network interface (default: all of them, loopback only when
 * there is no other); `--ip` picks the IP versions mDNS runs over (default: 4); `--service`
 * isolates a group of chats from everyone else.
 */
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { SwarmBuilder, combine, floodsub, gossipsub, identify, mdns, peerIdOf } from '../src/index.js'

const { values: args } = parseArgs({
  options: {
    floodsub: { type: 'boolean', default: false },
    interface: { type: 'string' },
    ip: { type: 'string', default: '4' },
    service: { type: 'string', default: mdns.SERVICE_NAME },
    topic: { type: 'string', default: 'test-net' },
    listen: { type: 'string', default: '/ip4/0.0.0.0/tcp/0' }
  }
})

const swarm = await SwarmBuilder.withNewIdentity()
  .withTcp()
  .withBehaviour(key => combine({
    pubsub: args.floodsub
      ? new floodsub.Behaviour({ authenticity: floodsub.MessageAuthenticity.signed(key), publishRequiresPeers: true })
      : new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key) }),
    mdns: new mdns.Behaviour(peerIdOf(key), {
      interface: args.interface,
      serviceName: args.service,
      ipv4: args.ip !== '6',
      ipv6: args.ip !== '4'
    }),
    identify: new identify.Behaviour(key.publicKey)
  }))
  .withSwarmConfig({ idleConnectionTimeout: 60_000 })
  .build()

const topic = new gossipsub.IdentTopic(args.topic)
swarm.behaviour.pubsub.subscribe(topic)
swarm.listenOn(args.listen)
console.log(`Local peer id: ${swarm.localPeerId.toString()}`)
console.log(`Enter messages via STDIN and they will be sent to connected peers using ${args.floodsub ? 'FloodSub' : 'GossipSub'}`)

// Each typed line is published; end of input (Ctrl-D) closes the node.
const input = createInterface({ input: process.stdin })
input.on('line', (line) => {
  try {
    swarm.behaviour.pubsub.publish(topic, new TextEncoder().encode(line))
  } catch (err) {
    console.log(`Publish error: ${err instanceof Error ? err.message : String(err)}`)
  }
})
input.on('close', () => { void swarm.close() })
process.on('SIGINT', () => { input.close() })

for await (const event of swarm) {
  switch (event.type) {
    case 'NewListenAddr':
      console.log(`Local node is listening on ${event.address.toString()}`)
      break
    case 'ConnectionClosed':
      if (event.numEstablished === 0) console.log(`Disconnected from ${event.peerId.toString()}${event.cause == null ? '' : `: ${event.cause.message}`}`)
      break
    case 'Behaviour': {
      const { behaviour, event: e } = event.event
      if (behaviour === 'mdns' && e.type === 'Discovered') {
        for (const peerId of new Set(e.peers.map(p => p.peerId.toString()))) {
          console.log(`mDNS discovered a new peer: ${peerId}`)
          // mDNS gives the swarm the peer's addresses; the dial finds them. Both sides discover
          // each other: the side whose peer id sorts first dials, so that a pair holds one
          // connection. The dial throws when the peer is already connected.
          if (swarm.localPeerId.toString() > peerId) continue
          try {
            swarm.dial(e.peers.find(p => p.peerId.toString() === peerId)!.peerId)
          } catch {}
        }
      } else if (behaviour === 'mdns' && e.type === 'Expired') {
        const gone = new Map(e.peers.map(p => [p.peerId.toString(), p.peerId]))
        for (const peerId of gone.values()) {
          // A peer expires with its last address.
          if (swarm.behaviour.mdns.discoveredNodes().some(n => n.peerId.equals(peerId))) continue
          console.log(`mDNS discover peer has expired: ${peerId.toString()}`)
        }
      } else if (behaviour === 'mdns' && e.type === 'Error') {
        console.log(`mDNS error: ${e.error.message}`)
      } else if (behaviour === 'pubsub' && e.type === 'Subscribed') {
        console.log(`Peer ${e.peerId.toString()} joined ${e.topic}`)
      } else if (behaviour === 'pubsub' && e.type === 'InvalidRpc') {
        console.log(`Invalid RPC from ${e.peerId.toString()}: ${e.error.message}${e.error.cause instanceof Error ? ` (${e.error.cause.message})` : ''}`)
      } else if (behaviour === 'pubsub' && e.type === 'Message') {
        console.log(`Got message: '${new TextDecoder().decode(e.message.data)}' from peer: ${e.message.source?.toString() ?? e.propagationSource.toString()}`)
      }
      break
    }
    default:
      break
  }
}
