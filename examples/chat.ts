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
import { SwarmBuilder, childEvent, combine, floodsub, gossipsub, identify, mdns, peerIdOf } from 'peerswarm'

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
      // One child event per case, as rust's `match` arms (childEvent narrows to the event's type).
      const discovered = childEvent(event, 'mdns', 'Discovered')
      const expired = childEvent(event, 'mdns', 'Expired')
      const mdnsError = childEvent(event, 'mdns', 'Error')
      const subscribed = childEvent(event, 'pubsub', 'Subscribed')
      const invalidRpc = childEvent(event, 'pubsub', 'InvalidRpc')
      const message = childEvent(event, 'pubsub', 'Message')
      if (discovered != null) {
        for (const peerId of new Set(discovered.peers.map(p => p.peerId.toString()))) {
          console.log(`mDNS discovered a new peer: ${peerId}`)
          // mDNS gives the swarm the peer's addresses; the dial finds them. Both sides discover
          // each other: the side whose peer id sorts first dials, so that a pair holds one
          // connection. The dial throws when the peer is already connected.
          if (swarm.localPeerId.toString() > peerId) continue
          try {
            swarm.dial(discovered.peers.find(p => p.peerId.toString() === peerId)!.peerId)
          } catch {}
        }
      } else if (expired != null) {
        const gone = new Map(expired.peers.map(p => [p.peerId.toString(), p.peerId]))
        for (const peerId of gone.values()) {
          // A peer expires with its last address.
          if (swarm.behaviour.mdns.discoveredNodes().some(n => n.peerId.equals(peerId))) continue
          console.log(`mDNS discover peer has expired: ${peerId.toString()}`)
        }
      } else if (mdnsError != null) {
        console.log(`mDNS error: ${mdnsError.error.message}`)
      } else if (subscribed != null) {
        console.log(`Peer ${subscribed.peerId.toString()} joined ${subscribed.topic}`)
      } else if (invalidRpc != null) {
        console.log(`Invalid RPC from ${invalidRpc.peerId.toString()}: ${invalidRpc.error.message}${invalidRpc.error.cause instanceof Error ? ` (${invalidRpc.error.cause.message})` : ''}`)
      } else if (message != null) {
        console.log(`Got message: '${new TextDecoder().decode(message.message.data)}' from peer: ${message.message.source?.toString() ?? message.propagationSource.toString()}`)
      }
      break
    }
    default:
      break
  }
}
