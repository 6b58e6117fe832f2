import { expect } from 'chai'
import { SwarmBuilder, combine, floodsub, identify } from '../../src/index.js'
import { EventLog } from '../fixtures/event-log.js'

const topic = new floodsub.IdentTopic('line')

async function node () {
  const swarm = await SwarmBuilder.withNewIdentity().withTcp()
    .withBehaviour(key => combine({
      identify: new identify.Behaviour(key.publicKey),
      floodsub: new floodsub.Behaviour({ authenticity: floodsub.MessageAuthenticity.signed(key) })
    }))
    .build()
  return new EventLog(swarm)
}

type Node = Awaited<ReturnType<typeof node>>

/** Five nodes in a line over TCP: 0 — 1 — 2 — 3 — 4. `relayAt` only relays the topic. */
async function line (relayAt?: number): Promise<Node[]> {
  const nodes = await Promise.all([0, 1, 2, 3, 4].map(async () => node()))
  for (const [i, n] of nodes.entries()) {
    if (i === relayAt) n.swarm.behaviour.floodsub.relay(topic)
    else n.swarm.behaviour.floodsub.subscribe(topic)
    n.swarm.listenOn('/ip4/127.0.0.1/tcp/0')
  }
  const addresses = await Promise.all(nodes.map(async n => n.find(e => e.type === 'NewListenAddr')))
  for (let i = 0; i < 4; i++) {
    const next = addresses[i + 1]
    if (next.type !== 'NewListenAddr') throw new Error('unreachable')
    nodes[i].swarm.dial(next.address)
  }
  // Every node heard its neighbours' subscriptions.
  await Promise.all(nodes.map(async (n, i) => {
    const neighbours = [nodes[i - 1], nodes[i + 1]].filter(m => m != null)
    await Promise.all(neighbours.map(async m => n.find(e => e.type === 'Behaviour' && e.event.behaviour === 'floodsub' &&
      e.event.event.type === 'Subscribed' && e.event.event.peerId.equals(m.swarm.localPeerId))))
  }))
  return nodes
}

function delivered (n: Node, text: string): number {
  return n.events.filter(e => e.type === 'Behaviour' && e.event.behaviour === 'floodsub' && e.event.event.type === 'Message' &&
    new TextDecoder().decode(e.event.event.message.data) === text).length
}

async function settle (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

describe('floodsub: a line of five swarms over TCP (127.0.0.1)', function () {
  this.timeout(30_000)
  let nodes: Node[] = []
  afterEach(async () => { await Promise.all(nodes.map(async n => { await n.close() })) })

  it('delivers a message published at either end to every node exactly once', async () => {
    nodes = await line()
    nodes[0].swarm.behaviour.floodsub.publish(topic, new TextEncoder().encode('from the left'))
    nodes[4].swarm.behaviour.floodsub.publish(topic, new TextEncoder().encode('from the right'))
    await Promise.all(nodes.slice(1).map(async n => n.find(e => e.type === 'Behaviour' && e.event.behaviour === 'floodsub' &&
      e.event.event.type === 'Message' && new TextDecoder().decode(e.event.event.message.data) === 'from the left')))
    await Promise.all(nodes.slice(0, 4).map(async n => n.find(e => e.type === 'Behaviour' && e.event.behaviour === 'floodsub' &&
      e.event.event.type === 'Message' && new TextDecoder().decode(e.event.event.message.data) === 'from the right')))
    // Duplicates would arrive within a few round trips; wait well past them.
    await settle(300)
    expect(nodes.map(n => delivered(n, 'from the left'))).to.deep.equal([0, 1, 1, 1, 1])
    expect(nodes.map(n => delivered(n, 'from the right'))).to.deep.equal([1, 1, 1, 1, 0])
  })

  it('forwards through a node that relays the topic without delivering it there', async () => {
    nodes = await line(2)
    nodes[0].swarm.behaviour.floodsub.publish(topic, new TextEncoder().encode('through the relay'))
    await nodes[4].find(e => e.type === 'Behaviour' && e.event.behaviour === 'floodsub' && e.event.event.type === 'Message')
    await settle(300)
    expect(nodes.map(n => delivered(n, 'through the relay'))).to.deep.equal([0, 1, 0, 1, 1])
  })
})
