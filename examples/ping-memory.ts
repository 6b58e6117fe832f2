/**
 * Two swarms in one process ping each other over the in-memory transport.
 *
 * Run: npx tsx examples/ping-memory.ts
 */
import { SwarmBuilder, ping } from 'peerswarm'

async function node () {
  return SwarmBuilder.withNewIdentity()
    .withMemoryTransport()
    .withBehaviour(() => new ping.Behaviour({ interval: 500 }))
    // Ping does not keep a connection alive; keep it for the demo.
    .withSwarmConfig({ idleConnectionTimeout: Infinity })
    .build()
}

const [alice, bob] = await Promise.all([node(), node()])
bob.listenOn('/memory/0')

async function run (name: string, swarm: typeof alice, pings: number): Promise<void> {
  let seen = 0
  for await (const event of swarm) {
    if (event.type === 'NewListenAddr') alice.dial(event.address)
    if (event.type === 'ConnectionEstablished') console.log(`${name}: connected to ${event.peerId.toString()}`)
    if (event.type === 'Behaviour' && event.event.type === 'Success') {
      console.log(`${name}: rtt ${event.event.rtt.toFixed(2)} ms`)
      if (++seen === pings) return
    }
  }
}

await Promise.all([run('alice', alice, 3), run('bob', bob, 3)])
await Promise.all([alice.close(), bob.close()])
