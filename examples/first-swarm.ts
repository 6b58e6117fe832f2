/**
 * The program of the tutorial (docs/tutorial.md): a swarm with ping and GossipSub over TCP.
 * Start it in one terminal: it prints the address it listens on. Start it in a second terminal
 * with that address: the two connect, ping each other, and each prints the other's greeting
 * every two seconds. Ctrl-C stops it.
 *
 * Run: npx tsx examples/first-swarm.ts [address to dial]
 */
import { SwarmBuilder, combine, gossipsub, ping } from 'peerswarm'

const swarm = await SwarmBuilder.withNewIdentity()
  .withTcp()
  .withBehaviour(key => combine({
    ping: new ping.Behaviour(),
    gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key) })
  }))
  .build()
const me = swarm.localPeerId.toString().slice(-6) // a short name: the end of our peer id
console.log(`I am ${swarm.localPeerId.toString()}`)

const topic = new gossipsub.IdentTopic('greetings')
swarm.behaviour.gossipsub.subscribe(topic)
swarm.listenOn('/ip4/127.0.0.1/tcp/0')
const remote = process.argv[2]
if (remote !== undefined) swarm.dial(remote)

let sent = 0
setInterval(() => {
  try {
    swarm.behaviour.gossipsub.publish(topic, new TextEncoder().encode(`hello #${++sent} from ${me}`))
  } catch (err) {
    if (!(err instanceof gossipsub.PublishError)) throw err // e.g. no peer on the topic yet
  }
}, 2_000)

for await (const event of swarm) {
  if (event.type === 'NewListenAddr') console.log(`listening on ${event.address.toString()}`)
  if (event.type === 'ConnectionEstablished') console.log(`connected to ${event.peerId.toString()}`)
  if (event.type !== 'Behaviour') continue
  const { behaviour, event: e } = event.event
  if (behaviour === 'ping' && e.type === 'Success') console.log(`ping: ${e.rtt.toFixed(1)} ms`)
  if (behaviour === 'gossipsub' && e.type === 'Message') {
    console.log(`received: ${new TextDecoder().decode(e.message.data)}`)
  }
}
