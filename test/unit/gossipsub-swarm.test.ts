/**
 * GossipSub between real swarms over the memory transport (Noise, Yamux, the swarm loop): a
 * relay line, and peer exchange bootstrapping a mesh from a star (39: libp2p specs,
 * pubsub/gossipsub/gossipsub-v1.1.md, "PRUNE Backoff and Peer Exchange" and "Recommendations
 * for Network Operators").
 */
import { expect } from 'chai'
import { combine, gossipsub } from '../../src/index.js'
import { connect, drive, driveUntil, listen, newSwarm } from '../../src/testing/index.js'
import type { Keypair, Swarm } from '../../src/index.js'

const topic = new gossipsub.IdentTopic('swarm-test')
const text = (s: string) => new TextEncoder().encode(s)

type Node = Swarm<ReturnType<typeof behaviour>>

function behaviour (key: Keypair, options: Partial<gossipsub.Config> = {}) {
  return combine({
    gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), heartbeatInterval: 100, heartbeatInitialDelay: 10, ...options })
  })
}

describe('gossipsub over the memory transport', function () {
  this.timeout(20_000)
  const nodes: Node[] = []
  afterEach(async () => { await Promise.all(nodes.splice(0).map(async n => { await n.close() })) })

  it('relays along a line of five: every message reaches every node exactly once', async () => {
    for (let i = 0; i < 5; i++) nodes.push(await newSwarm(key => behaviour(key)))
    for (const node of nodes) node.behaviour.gossipsub.subscribe(topic)
    for (let i = 0; i < 4; i++) await connect(nodes[i], nodes[i + 1])
    await driveUntil(nodes, () => nodes.every((n, i) => n.behaviour.gossipsub.meshPeers(topic).length === (i === 0 || i === 4 ? 1 : 2)))
    for (let m = 0; m < 10; m++) nodes[m % 5].behaviour.gossipsub.publish(topic, text(`m${m}`))
    // Each node's first 8 deliveries are the 8 messages of the others, each once.
    const received = await drive(nodes, { count: 8, filter: e => e.type === 'Behaviour' && e.event.event.type === 'Message' })
    for (const [i, events] of received.entries()) {
      const texts = events.map(e => e.type === 'Behaviour' && e.event.event.type === 'Message' ? new TextDecoder().decode(e.event.event.message.data) : '')
      expect(texts.sort()).to.deep.equal(Array.from({ length: 10 }, (_, m) => `m${m}`).filter((_, m) => m % 5 !== i).sort())
    }
  })

  it('peer exchange: leaves of a star pruned by a bootstrapper (D = 0, PX on) find each other and form a mesh (39)', async () => {
    const hub = await newSwarm(key => behaviour(key, { meshN: 0, meshNLow: 0, meshNHigh: 0, meshOutboundMin: 0, meshNScore: 0, doPX: true, gossipLazy: 0 }))
    nodes.push(hub)
    const keys: Keypair[] = []
    for (let i = 0; i < 6; i++) nodes.push(await newSwarm(key => { keys.push(key); return behaviour(key) }))
    const leaves = nodes.slice(1)
    for (const node of nodes) node.behaviour.gossipsub.subscribe(topic)
    // Each leaf's signed record reaches the hub (as identify would hand it over).
    for (const [i, leaf] of leaves.entries()) {
      const address = await listen(leaf)
      await hub.behaviour.gossipsub.addPeerRecord(await gossipsub.signPeerRecord(keys[i], [address]))
    }
    for (const leaf of leaves) await connect(leaf, hub)
    await driveUntil(nodes, () => leaves.every(leaf => leaf.connectedPeers().length > 1 && leaf.behaviour.gossipsub.meshPeers(topic).length >= 1), { timeout: 15_000 })
    expect(hub.behaviour.gossipsub.meshPeers(topic)).to.deep.equal([])
    for (const leaf of leaves) {
      const mesh = leaf.behaviour.gossipsub.meshPeers(topic)
      expect(mesh.some(p => p.equals(hub.localPeerId))).to.equal(false)
    }
    expect(hub.behaviour.gossipsub.controlCounters().pruneSent).to.be.greaterThan(0)
  })
})
