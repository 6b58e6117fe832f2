/**
 * A chat over mDNS and GossipSub, after rust-libp2p's chat example: start it in two terminals
 * on one machine (or on two machines of one network); they find each other, and every line
 * typed in one is printed by the other.
 *
 * Run: npx tsx examples/chat.ts [--floodsub] [--interface lo] [--ip 4|6|both]
 *        [--service _name._udp.local] [--topic test-net] [--listen /ip4/0.0.0.0/tcp/0]
 *        [--relay <relay multiaddr> [--peer <peer id>]…] [--dial <multiaddr>]…
 *        [--dial-port <port>] [--global <IPv4 CIDR>]…
 *
 * `--floodsub` uses FloodSub instead of GossipSub (the two are used alike: one word changes).
 *
 * `--interface` keeps mDNS on one network interface (default: all of them, loopback only when
 * there is no other); `--ip` picks the IP versions mDNS runs over (default: 4); `--service`
 * isolates a group of chats from everyone else.
 *
 * Behind NATs, through a public relay (`examples/chat-relay.ts` on a host others can reach):
 *
 *   npx tsx examples/chat.ts --relay /ip4/<relay ip>/tcp/4001/p2p/<relay id>
 *   npx tsx examples/chat.ts --relay /ip4/<relay ip>/tcp/4001/p2p/<relay id> --peer <the first chat's peer id>
 *
 * `--relay` reserves a slot on the relay (the chat is then reachable at the printed
 * `…/p2p-circuit/p2p/<id>` address); `--peer` dials a chat through it (repeat it for more);
 * `--dial <multiaddr>` dials any address. A relayed connection lasts as long as the relay allows
 * (2 minutes by default): the chat dials again when it ends.
 *
 * Then directly: over the relayed connection the two chats run DCUtR (hole punching): each
 * sends the address the relay saw it at (its NAT's mapping of its dial port) and both dial the
 * other's at once, so that one TCP connection opens through both NATs. When it does, the chat
 * prints `Direct connection to <peer> …` and closes the relayed connection a second later;
 * when it cannot (a NAT that changes the port for every connection), it prints why and stays
 * on the relay. TCP dials leave from one local port for that (`--dial-port`; default with
 * `--relay`: a free port picked at the first dial and kept). DCUtR only sends and dials public
 * addresses; `--global <IPv4 CIDR>` (repeatable) counts a range as public too, for a test
 * network (`--global 198.18.0.0/15`), or `--global 127.0.0.0/8` to try it on one machine.
 */
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { multiaddr } from '@multiformats/multiaddr'
import { SwarmBuilder, childEvent, combine, dcutr, floodsub, gossipsub, identify, inIpv4Range, isGlobalAddress, mdns, peerIdOf } from 'peerswarm'
import type { ConnectionId, Multiaddr } from 'peerswarm'

const { values: args } = parseArgs({
  options: {
    floodsub: { type: 'boolean', default: false },
    interface: { type: 'string' },
    ip: { type: 'string', default: '4' },
    service: { type: 'string', default: mdns.SERVICE_NAME },
    topic: { type: 'string', default: 'test-net' },
    listen: { type: 'string', default: '/ip4/0.0.0.0/tcp/0' },
    relay: { type: 'string' },
    peer: { type: 'string', multiple: true, default: [] },
    dial: { type: 'string', multiple: true, default: [] },
    'dial-port': { type: 'string' },
    global: { type: 'string', multiple: true, default: [] }
  }
})
if (args.peer.length > 0 && args.relay == null) throw new Error('--peer needs --relay (the relay to reach the peer through)')
// With a relay, dials leave from one port (hole punching needs it): the given one, or a free one.
const dialPort = args['dial-port'] != null ? Number(args['dial-port']) : args.relay != null ? 0 : undefined
// Which addresses DCUtR sends and dials: public ones, and the ranges given with --global.
for (const cidr of args.global) inIpv4Range(multiaddr('/ip4/0.0.0.0'), cidr) // throws on a malformed CIDR
const isGlobal = (address: Multiaddr): boolean => isGlobalAddress(address) || args.global.some(cidr => inIpv4Range(address, cidr))

const swarm = await SwarmBuilder.withNewIdentity()
  .withTcp(dialPort === undefined ? {} : { dialPort })
  .withRelayClient()
  .withBehaviour((key, relayClient) => combine({
    relayClient,
    pubsub: args.floodsub
      ? new floodsub.Behaviour({ authenticity: floodsub.MessageAuthenticity.signed(key), publishRequiresPeers: true })
      : new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key) }),
    mdns: new mdns.Behaviour(peerIdOf(key), {
      interface: args.interface,
      serviceName: args.service,
      ipv4: args.ip !== '6',
      ipv6: args.ip !== '4'
    }),
    identify: new identify.Behaviour(key.publicKey),
    // Hole punching over relayed connections (it does nothing on direct ones).
    dcutr: new dcutr.Behaviour(peerIdOf(key), { isGlobal })
  }))
  .withSwarmConfig({ idleConnectionTimeout: 60_000 })
  .build()

const topic = new gossipsub.IdentTopic(args.topic)
swarm.behaviour.pubsub.subscribe(topic)
swarm.listenOn(args.listen)
console.log(`Local peer id: ${swarm.localPeerId.toString()}`)
console.log(`Enter messages via STDIN and they will be sent to connected peers using ${args.floodsub ? 'FloodSub' : 'GossipSub'}`)

// Through a relay: reserve a slot there (listening on its circuit address), and dial the
// peers given by id through it, again whenever the relayed connection ends.
const targets = new Map<string, string>()
for (const address of args.dial) targets.set(address, address)
if (args.relay != null) {
  swarm.listenOn(`${args.relay}/p2p-circuit`)
  for (const peer of args.peer) targets.set(peer, `${args.relay}/p2p-circuit/p2p/${peer}`)
}
let closing = false
const dial = (address: string): void => {
  if (closing) return
  try {
    swarm.dial(address)
  } catch (err) {
    console.log(`Dial error: ${err instanceof Error ? err.message : String(err)}`)
  }
}
for (const address of targets.values()) dial(address)
/** The target to dial again when the connections to `peerId` are gone, if it is one. */
const targetOf = (peerId: string): string | undefined => targets.get(peerId) ?? [...targets.values()].find(a => a.endsWith(`/p2p/${peerId}`))
const isRelayed = (address: Multiaddr): boolean => address.getComponents().some(c => c.name === 'p2p-circuit')

// Each typed line is published; end of input (Ctrl-D) closes the node.
const input = createInterface({ input: process.stdin })
input.on('line', (line) => {
  try {
    swarm.behaviour.pubsub.publish(topic, new TextEncoder().encode(line))
  } catch (err) {
    console.log(`Publish error: ${err instanceof Error ? err.message : String(err)}`)
  }
})
input.on('close', () => { closing = true; void swarm.close() })
process.on('SIGINT', () => { input.close() })

for await (const event of swarm) {
  switch (event.type) {
    case 'NewListenAddr':
      if (isRelayed(event.address)) console.log(`Reachable through the relay at ${event.address.toString()}`)
      else console.log(`Local node is listening on ${event.address.toString()}`)
      break
    case 'ConnectionEstablished': {
      const relayed = event.endpoint.limited === true
      console.log(`Connected to ${event.peerId.toString()}${relayed ? ' through the relay' : ''}`)
      break
    }
    case 'ConnectionClosed': {
      if (event.numEstablished > 0) break
      console.log(`Disconnected from ${event.peerId.toString()}${event.cause == null ? '' : `: ${event.cause.message}`}`)
      const target = targetOf(event.peerId.toString())
      // A relayed connection ends at the relay's limit: dial again (the relay answers whether
      // the peer is still there).
      if (target != null && !closing) setTimeout(() => { dial(target) }, 1_000).unref()
      break
    }
    case 'OutgoingConnectionError':
      console.log(`Dial error${event.peerId == null ? '' : ` to ${event.peerId.toString()}`}: ${event.error.message}`)
      break
    case 'ListenerClosed':
      if (event.reason != null) console.log(`Listener closed: ${event.reason.message}`)
      break
    case 'Behaviour': {
      // One child event per case, as rust's `match` arms (childEvent narrows to the event's type).
      const discovered = childEvent(event, 'mdns', 'Discovered')
      const expired = childEvent(event, 'mdns', 'Expired')
      const mdnsError = childEvent(event, 'mdns', 'Error')
      const subscribed = childEvent(event, 'pubsub', 'Subscribed')
      const invalidRpc = childEvent(event, 'pubsub', 'InvalidRpc')
      const message = childEvent(event, 'pubsub', 'Message')
      const reservation = childEvent(event, 'relayClient', 'ReservationReqAccepted')
      const lost = childEvent(event, 'relayClient', 'ReservationLost')
      const holePunch = event.event.behaviour === 'dcutr' ? event.event.event : undefined
      if (holePunch != null) {
        const peer = holePunch.remotePeerId.toString()
        if (holePunch.result.ok) {
          const { connectionId } = holePunch.result
          const direct = swarm.connections().find(c => c.id === connectionId)
          console.log(`Direct connection to ${peer} (hole punched through the relay): ${direct?.remoteAddress.toString() ?? 'closed already'}`)
          // Move to it: close the relayed connections after a grace period, so that what is
          // on its way over them arrives.
          const relayed: ConnectionId[] = swarm.connections().filter(c => c.peerId.equals(holePunch.remotePeerId) && c.endpoint.limited === true).map(c => c.id)
          setTimeout(() => {
            for (const id of relayed) {
              if (swarm.closeConnection(id)) console.log(`Closed the relayed connection to ${peer}`)
            }
          }, 1_000).unref()
        } else {
          console.log(`No direct connection to ${peer} (${holePunch.result.error.message}); staying on the relay`)
        }
      } else if (reservation != null) {
        if (!reservation.renewal) console.log(`Reservation accepted by relay ${reservation.relayPeerId.toString()}`)
      } else if (lost != null) {
        console.log(`Reservation on relay ${lost.relayPeerId.toString()} lost (${lost.error.message}); reserving again`)
      } else if (discovered != null) {
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
