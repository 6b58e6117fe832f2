/**
 * GossipSub over real TCP on 127.0.0.1: twenty swarms in a seeded random sparse topology.
 *
 * Topology (reproducible, seed `SEED`): node i dials 3 random other nodes it has no link with
 * yet, never past D_hi links per node; components left apart are then linked. So every node has
 * 3 to D_hi peers: no mesh ever needs pruning for size (hence no backoff skews the meshes), and
 * with this seed the degrees run from 3 (below D_lo) to 10 (above D). The generator is
 * `randomDials` of src/testing/topology.ts, the PRNG src/testing/random.ts.
 *
 * Default D parameters (D = 6, D_lo = 4, D_hi = 12), a 100 ms heartbeat.
 *
 * Every wait is a condition polled under a deadline; nothing sleeps for a tuned time.
 */
import { expect } from 'chai'
import { SwarmBuilder, combine, gossipsub, identify } from '../../src/index.js'
import { Random, degrees, topologyLinks } from '../../src/testing/index.js'
import type { Multiaddr } from '@multiformats/multiaddr'

const NODES = 20
const LINKS_PER_NODE = 3
const MESSAGES = 500
const SEED = 5
const HEARTBEAT_MS = 100
const topic = new gossipsub.IdentTopic('swarm-of-twenty')
const { meshN: D, meshNLow: D_LO, meshNHigh: D_HI } = gossipsub.defaultConfig

/** Poll `condition` until it holds; throws with `describe()` after `timeout` ms. */
async function until (what: string, condition: () => boolean, timeout: number, describe: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeout
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms: ${what} ${describe()}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

async function node () {
  return SwarmBuilder.withNewIdentity().withTcp()
    .withBehaviour(key => combine({
      identify: new identify.Behaviour(key.publicKey),
      gossipsub: new gossipsub.Behaviour({
        authenticity: gossipsub.MessageAuthenticity.signed(key),
        meshN: D,
        meshNLow: D_LO,
        meshNHigh: D_HI,
        heartbeatInterval: HEARTBEAT_MS
      })
    }))
    .build()
}

type Swarm = Awaited<ReturnType<typeof node>>

function hex (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

describe('gossipsub: twenty swarms over TCP (127.0.0.1) in a sparse random topology', function () {
  it('keeps every mesh within [D_lo, D_hi] and delivers 500 messages from random publishers to every subscriber exactly once', async function () {
    // About 20 s on a 2-core machine (CPU-bound: twenty nodes share one event loop). Each wait
    // below has its own deadline, so that a failure names the condition that did not hold.
    this.timeout(60_000)
    const random = new Random(SEED)
    const links = topologyLinks({ type: 'random-dials', dials: LINKS_PER_NODE, maxDegree: D_HI }, NODES, random)
    const degree = degrees(NODES, links)
    expect(Math.min(...degree), 'every node has a peer').to.be.at.least(1)
    expect(Math.max(...degree), 'no node has more than D_hi peers').to.be.at.most(D_HI)
    // The seed gives both kinds of node the mesh check below distinguishes.
    expect(degree.some(d => d < D_LO) && degree.some(d => d >= D_LO), 'nodes with fewer and with at least D_lo peers').to.equal(true)

    const swarms: Swarm[] = []
    const loops: Array<Promise<void>> = []
    try {
      // Pushed one by one, so that `finally` closes those made even if another fails.
      await Promise.all(Array.from({ length: NODES }, async () => { swarms.push(await node()) }))
      const addresses: Array<Multiaddr | undefined> = []
      /** Per node: message id (hex) → times delivered. */
      const deliveries = swarms.map(() => new Map<string, number>())
      for (const [i, swarm] of swarms.entries()) {
        loops.push((async () => {
          for await (const event of swarm) {
            if (event.type === 'NewListenAddr' && addresses[i] == null) addresses[i] = event.address
            if (event.type === 'Behaviour' && event.event.behaviour === 'gossipsub' && event.event.event.type === 'Message') {
              const key = hex(event.event.event.messageId)
              deliveries[i].set(key, (deliveries[i].get(key) ?? 0) + 1)
            }
          }
        })())
        swarm.behaviour.gossipsub.subscribe(topic)
        swarm.listenOn('/ip4/127.0.0.1/tcp/0')
      }
      await until('every swarm listens', () => addresses.every(a => a != null) && addresses.length === NODES, 5_000)
      for (const [from, to] of links) swarms[from].dial(addresses[to] as Multiaddr)

      // Warm-up: every node knows its peers' subscriptions, and every mesh has its size: within
      // [D_lo, D_hi] for a node with at least D_lo peers, all of its peers for one with fewer.
      // Meshes are symmetric too (no GRAFT is refused here, as no node has more than D_hi peers).
      const gs = (i: number) => swarms[i].behaviour.gossipsub
      const meshOk = (i: number): boolean => {
        const size = gs(i).meshPeers(topic).length
        return degree[i] < D_LO ? size === degree[i] : size >= D_LO && size <= D_HI
      }
      const symmetric = (i: number): boolean => gs(i).meshPeers(topic).every(p => {
        const j = swarms.findIndex(s => s.localPeerId.equals(p))
        return j >= 0 && gs(j).meshPeers(topic).some(q => q.equals(swarms[i].localPeerId))
      })
      const state = (): string => JSON.stringify(swarms.map((_, i) => ({
        peers: degree[i], subscribers: gs(i).subscribers(topic).length, mesh: gs(i).meshPeers(topic).length
      })))
      await until('subscriptions', () => swarms.every((_, i) => gs(i).subscribers(topic).length === degree[i]), 10_000, state)
      await until('meshes', () => swarms.every((_, i) => meshOk(i) && symmetric(i)), 10_000, state)
      for (const [i] of swarms.entries()) {
        const size = gs(i).meshPeers(topic).length
        if (degree[i] < D_LO) expect(size, `node ${i}: mesh of a node with ${degree[i]} < D_lo peers`).to.equal(degree[i])
        else expect(size, `node ${i}: mesh of a node with ${degree[i]} peers`).to.be.within(D_LO, D_HI)
        expect(gs(i).allPeers().length, `node ${i}: pubsub peers`).to.equal(degree[i])
      }

      // 500 messages from random publishers, yielding to the event loop between two.
      const published: Array<{ id: string, from: number }> = []
      for (let m = 0; m < MESSAGES; m++) {
        const from = random.int(NODES)
        const id = gs(from).publish(topic, new TextEncoder().encode(`message ${m} from node ${from}`))
        published.push({ id: hex(id), from })
        await new Promise(resolve => setImmediate(resolve))
      }
      expect(new Set(published.map(p => p.id)).size, 'distinct message ids').to.equal(MESSAGES)
      const expected = MESSAGES * (NODES - 1)
      const delivered = (): number => published.reduce((sum, { id, from }) =>
        sum + deliveries.filter((d, i) => i !== from && d.has(id)).length, 0)
      await until('every message reaches every subscriber', () => delivered() === expected, 15_000,
        () => `(${delivered()} of ${expected} deliveries)`)

      // Barrier: every node publishes a marker after the last delivery and we wait until every
      // node has every other node's marker, so that frames still queued on any link when the
      // last message arrived have been read (a late copy would be counted below).
      const markers = swarms.map((_, i) => hex(gs(i).publish(topic, new TextEncoder().encode(`marker from node ${i}`))))
      await until('every marker reaches every node', () => markers.every((id, from) =>
        deliveries.every((d, i) => i === from || d.has(id))), 10_000)

      for (const [i, d] of deliveries.entries()) {
        for (const { id, from } of published) {
          expect(d.get(id) ?? 0, `node ${i}: deliveries of message ${id.slice(-16)} from node ${from}`).to.equal(i === from ? 0 : 1)
        }
        for (const [from, id] of markers.entries()) expect(d.get(id) ?? 0, `node ${i}: marker of node ${from}`).to.equal(i === from ? 0 : 1)
        expect(d.size, `node ${i}: distinct messages delivered`).to.equal(MESSAGES + NODES - 1 - published.filter(p => p.from === i).length)
      }
      // The meshes kept their shape through the load (nothing prunes here: no node has more
      // than D_hi peers and scoring is off).
      for (const [i] of swarms.entries()) expect(meshOk(i) && symmetric(i), `node ${i}: mesh after the run ${state()}`).to.equal(true)
    } finally {
      await Promise.allSettled(swarms.map(async s => { await s.close() }))
      await Promise.allSettled(loops)
    }
  })
})
