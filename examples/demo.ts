/**
 * `npm run demo`: a small local network that discovers itself and talks. Three nodes start in
 * this process with TCP on 127.0.0.1; mDNS (kept on the loopback interface, under a service
 * name of this run, so that nothing leaves the machine) lets them find each other; each dials
 * the peers it discovers; then every node publishes a greeting over GossipSub and prints what
 * it receives.
 * Exits 0 once every node has every greeting, 1 after 20 s without.
 *
 * Run: npm run demo   (or: npx tsx examples/demo.ts [nodes])
 */
import { SwarmBuilder, combine, gossipsub, mdns, peerIdOf } from '../src/index.js'
import type { Swarm } from '../src/index.js'

const COUNT = Math.max(2, Number(process.argv[2] ?? 3))
const TIMEOUT = 20_000
const topic = new gossipsub.IdentTopic('demo')
const serviceName = `_demo${Math.random().toString(36).slice(2, 8)}._udp.local`

async function node () {
  const swarm = await SwarmBuilder.withNewIdentity().withTcp()
    .withBehaviour(key => combine({
      mdns: new mdns.Behaviour(peerIdOf(key), { interface: '127.0.0.1', serviceName }),
      gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key) })
    }))
    .build()
  swarm.behaviour.gossipsub.subscribe(topic)
  swarm.listenOn('/ip4/127.0.0.1/tcp/0')
  return swarm
}

type Node = Awaited<ReturnType<typeof node>>

const nodes = await Promise.all(Array.from({ length: COUNT }, node))
const names = new Map(nodes.map((swarm, i) => [swarm.localPeerId.toString(), `node ${i}`]))
const nameOf = (peer: { toString: () => string }): string => names.get(peer.toString()) ?? peer.toString()
const received = nodes.map(() => new Set<string>())
let published = false

console.log(`${COUNT} nodes, mDNS service ${serviceName} on 127.0.0.1, topic '${topic.hash}'`)

/** Publish once every node has heard every other node subscribe. */
function maybePublish (): void {
  if (published || !nodes.every(swarm => swarm.behaviour.gossipsub.subscribers(topic).length === COUNT - 1)) return
  published = true
  console.log('everyone is connected and subscribed: publishing')
  for (const [i, swarm] of nodes.entries()) swarm.behaviour.gossipsub.publish(topic, new TextEncoder().encode(`hello from node ${i}`))
}

async function run (swarm: Node, i: number, signal: AbortSignal): Promise<void> {
  const me = `node ${i}`
  while (received[i].size < COUNT - 1) {
    const event = await swarm.selectNextSome({ signal })
    if (event.type === 'NewListenAddr') console.log(`${me}: listening on ${event.address.toString()}`)
    if (event.type === 'ConnectionEstablished' && event.numEstablished === 1) console.log(`${me}: connected to ${nameOf(event.peerId)}`)
    if (event.type !== 'Behaviour') continue
    const { behaviour, event: e } = event.event
    if (behaviour === 'mdns' && e.type === 'Discovered') {
      for (const peerId of new Map(e.peers.map(p => [p.peerId.toString(), p.peerId])).values()) {
        console.log(`${me}: discovered ${nameOf(peerId)} over mDNS`)
        // Both sides of a pair may dial; a dial to a peer already connected throws.
        if (!swarm.isConnected(peerId)) {
          try {
            swarm.dial(peerId)
          } catch {}
        }
      }
    } else if (behaviour === 'mdns' && e.type === 'Error') {
      console.log(`${me}: mDNS error: ${e.error.message}`)
    } else if (behaviour === 'gossipsub' && e.type === 'Subscribed') {
      maybePublish()
    } else if (behaviour === 'gossipsub' && e.type === 'Message') {
      const text = new TextDecoder().decode(e.message.data)
      received[i].add(text)
      console.log(`${me}: received '${text}' from ${nameOf(e.propagationSource)}`)
    }
  }
}

/** Keep a node's event loop turning after it has all it wants, so that it still forwards. */
async function keepDriving (swarm: Swarm<Node['behaviour']>, signal: AbortSignal): Promise<void> {
  try {
    for (;;) await swarm.selectNextSome({ signal })
  } catch {
    // Stopped.
  }
}

const controller = new AbortController()
const timer = setTimeout(() => { controller.abort(new Error(`not done within ${TIMEOUT / 1000} s`)) }, TIMEOUT)
const done = new AbortController()
let code = 0
try {
  await Promise.all(nodes.map(async (swarm, i) => {
    await run(swarm, i, controller.signal)
    if (received.every(set => set.size === COUNT - 1)) done.abort()
    await keepDriving(swarm, AbortSignal.any([controller.signal, done.signal]))
  }))
  if (controller.signal.aborted) throw controller.signal.reason
  console.log(`done: every node received all ${COUNT - 1} greetings`)
} catch (err) {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`)
  code = 1
} finally {
  clearTimeout(timer)
  await Promise.all(nodes.map(async swarm => { await swarm.close() }))
}
process.exit(code)
