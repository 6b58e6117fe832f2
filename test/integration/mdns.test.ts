import { expect } from 'chai'
import { SwarmBuilder, combine, floodsub, mdns, peerIdOf } from '../../src/index.js'
import { EventLog } from '../fixtures/event-log.js'

const topic = new floodsub.IdentTopic('mdns-chat')

/** A service name of this run only, so that nothing else on the host joins in. */
function testService (): string {
  return `_ps${Math.random().toString(36).slice(2, 10)}._udp.local`
}

/** Real `node:dgram` sockets, counted as they open and close. */
const sockets = { open: 0 }
const countingFactory: mdns.MulticastSocketFactory = async (options) => {
  const socket = await mdns.dgramSocketFactory(options)
  sockets.open++
  let closed = false
  return {
    send: async (packet) => { await socket.send(packet) },
    close: async () => {
      if (!closed) sockets.open--
      closed = true
      await socket.close()
    }
  }
}

/** A node on 127.0.0.1 that dials every peer mDNS discovers, through floodsub's partial view. */
async function node (serviceName: string) {
  const swarm = await SwarmBuilder.withNewIdentity().withTcp()
    .withBehaviour(key => combine({
      mdns: new mdns.Behaviour(peerIdOf(key), { interface: '127.0.0.1', serviceName, socketFactory: countingFactory }),
      floodsub: new floodsub.Behaviour({ authenticity: floodsub.MessageAuthenticity.signed(key) })
    }))
    .build()
  swarm.behaviour.floodsub.subscribe(topic)
  swarm.listenOn('/ip4/127.0.0.1/tcp/0')
  return new EventLog(swarm, (event) => {
    if (event.type !== 'Behaviour' || event.event.behaviour !== 'mdns' || event.event.event.type !== 'Discovered') return
    const peers = new Map(event.event.event.peers.map(p => [p.peerId.toString(), p.peerId]))
    for (const peerId of peers.values()) swarm.behaviour.floodsub.addNodeToPartialView(peerId)
  })
}

type Node = Awaited<ReturnType<typeof node>>

function received (n: Node): string[] {
  return n.events.flatMap(e => e.type === 'Behaviour' && e.event.behaviour === 'floodsub' && e.event.event.type === 'Message'
    ? [new TextDecoder().decode(e.event.event.message.data)]
    : [])
}

describe('mdns: swarms on 127.0.0.1 discover each other and talk floodsub with no address given', function () {
  this.timeout(30_000)
  let nodes: Node[] = []
  afterEach(async () => { await Promise.all(nodes.map(async n => { await n.close() })) })

  for (const count of [2, 5]) {
    it(`${count} swarms: each discovers and connects to every other, then every message reaches every other node exactly once`, async () => {
      const service = testService()
      nodes = await Promise.all(Array.from({ length: count }, async () => node(service)))
      await Promise.all(nodes.map(async (n) => {
        for (const other of nodes) {
          if (other === n) continue
          await n.find(e => e.type === 'Behaviour' && e.event.behaviour === 'mdns' && e.event.event.type === 'Discovered' &&
            e.event.event.peers.some(p => p.peerId.equals(other.swarm.localPeerId) && p.address.toString().startsWith('/ip4/127.0.0.1/tcp/')))
          await n.find(e => e.type === 'Behaviour' && e.event.behaviour === 'floodsub' && e.event.event.type === 'Subscribed' &&
            e.event.event.peerId.equals(other.swarm.localPeerId))
        }
      }))
      for (const n of nodes) expect(n.swarm.connectedPeers()).to.have.length(count - 1)
      expect(sockets.open).to.equal(count)

      for (const [i, n] of nodes.entries()) n.swarm.behaviour.floodsub.publish(topic, new TextEncoder().encode(`hello from ${i}`))
      await Promise.all(nodes.map(async (n, i) => {
        for (const [j] of nodes.entries()) {
          if (j !== i) await n.find(e => e.type === 'Behaviour' && e.event.behaviour === 'floodsub' && e.event.event.type === 'Message' &&
            new TextDecoder().decode(e.event.event.message.data) === `hello from ${j}`)
        }
      }))
      // Let duplicates, if any, arrive before counting.
      await Promise.all(nodes.map(async n => { n.swarm.behaviour.floodsub.publish(topic, new TextEncoder().encode('barrier')) }))
      await Promise.all(nodes.map(async n => { for (let k = 0; k < count - 1; k++) await n.find(() => received(n).filter(t => t === 'barrier').length >= count - 1) }))
      for (const [i, n] of nodes.entries()) {
        expect(received(n).filter(t => t !== 'barrier').sort()).to.deep.equal(nodes.map((_, j) => `hello from ${j}`).filter((_, j) => j !== i).sort())
      }

      await Promise.all(nodes.map(async n => { await n.close() }))
      nodes = []
      expect(sockets.open).to.equal(0)
    })
  }
})
