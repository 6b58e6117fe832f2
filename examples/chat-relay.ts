/**
 * A public circuit relay for `examples/chat.ts`: run it on a host the chats can reach (a
 * public address, or one side of the NATs), then start each chat with
 * `--relay <the address this prints>`; a chat with `--peer <other chat's id>` reaches the
 * other through it.
 *
 * Run: npx tsx examples/chat-relay.ts [--listen /ip4/0.0.0.0/tcp/4001] [--external /ip4/<public ip>/tcp/4001]
 *
 * `--external` is the address the chats reach the relay at, when it is not the one it listens
 * on (behind a port mapping, or listening on 0.0.0.0): reservations hand it out. Without it the
 * relay hands out its listen addresses, and the chats use the address they dialed. Circuits get
 * the relay's default limits (2 minutes and 128 KiB each); the chat dials again when one ends.
 */
import { parseArgs } from 'node:util'
import { multiaddr } from '@multiformats/multiaddr'
import { SwarmBuilder, combine, identify, ping, relay } from 'peerswarm'

const { values: args } = parseArgs({
  options: {
    listen: { type: 'string', default: '/ip4/0.0.0.0/tcp/4001' },
    external: { type: 'string', multiple: true, default: [] }
  }
})

const swarm = await SwarmBuilder.withNewIdentity()
  .withTcp()
  .withBehaviour(key => combine({
    relay: new relay.Behaviour(key),
    identify: new identify.Behaviour(key.publicKey),
    ping: new ping.Behaviour()
  }))
  // A chat's connection to the relay carries its reservation; keep idle ones a while.
  .withSwarmConfig({ idleConnectionTimeout: 60_000 })
  .build()

for (const address of args.external) swarm.addExternalAddress(multiaddr(address))
swarm.listenOn(args.listen)
console.log(`Relay peer id: ${swarm.localPeerId.toString()}`)

const stop = (): void => { void swarm.close() }
process.on('SIGINT', stop)
process.on('SIGTERM', stop)

for await (const event of swarm) {
  if (event.type === 'NewListenAddr') {
    // Without --external, hand out the listen addresses (fine on a host with a public IP).
    if (args.external.length === 0) swarm.addExternalAddress(event.address)
    console.log(`Relay listening on ${event.address.toString()}/p2p/${swarm.localPeerId.toString()}`)
  } else if (event.type === 'Behaviour' && event.event.behaviour === 'relay') {
    const e = event.event.event
    switch (e.type) {
      case 'ReservationReqAccepted':
        if (!e.renewed) console.log(`Reservation accepted for ${e.srcPeerId.toString()}`)
        break
      case 'ReservationReqDenied':
        console.log(`Reservation denied for ${e.srcPeerId.toString()}: ${e.status}${e.bound == null ? '' : ` (${e.bound})`}`)
        break
      case 'CircuitReqAccepted':
        console.log(`Circuit from ${e.srcPeerId.toString()} to ${e.dstPeerId.toString()}`)
        break
      case 'CircuitReqDenied':
        console.log(`Circuit from ${e.srcPeerId.toString()} to ${e.dstPeerId.toString()} denied: ${e.status}`)
        break
      case 'CircuitClosed':
        console.log(`Circuit from ${e.srcPeerId.toString()} to ${e.dstPeerId.toString()} closed${e.error == null ? '' : `: ${e.error.message}`}`)
        break
      default:
    }
  }
}
