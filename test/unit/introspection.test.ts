import { expect } from 'chai'
import { combine, floodsub, gossipsub } from '../../src/index.js'
import { connect, drive, driveUntil, newSwarm } from '../../src/testing/index.js'

const isMessage = (e: { type: string, event?: unknown }): boolean => e.type === 'Behaviour' && (e.event as { event: { type: string } }).event.type === 'Message'

describe('introspection: connections() and message totals', () => {
  it('connections() lists each open connection with its transport, direction, protocols and age', async () => {
    const [a, b] = await Promise.all([0, 1].map(async () => newSwarm(key => new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key) }))))
    try {
      const before = Date.now()
      const ids = await connect(a, b)
      const [onA] = a.connections()
      const [onB] = b.connections()
      expect(a.connections()).to.have.length(1)
      expect(onA.id).to.equal(ids.dialer)
      expect(onA.peerId.equals(b.localPeerId)).to.equal(true)
      expect(onA.endpoint.type).to.equal('Dialer')
      expect(onB.endpoint.type).to.equal('Listener')
      expect(onA.transport).to.equal('memory')
      expect(onB.transport).to.equal('memory')
      expect(onA.encryption).to.equal('/noise')
      expect(onA.multiplexer).to.equal('/yamux/1.0.0')
      expect(onA.establishedAt).to.be.within(before - 1, Date.now())
      expect(onA.remoteAddress.toString()).to.match(/^\/memory\//)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('gossipsub and floodsub count published, received, forwarded and duplicate messages', async () => {
    const create = (key: Parameters<Parameters<typeof newSwarm>[0]>[0]) => combine({
      gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), heartbeatInitialDelay: 10, heartbeatInterval: 100, supportFloodsub: false }),
      floodsub: new floodsub.Behaviour({ authenticity: floodsub.MessageAuthenticity.signed(key) })
    })
    // A triangle: node 0 publishes; 1 and 2 hear it from 0 and relay it to each other.
    const nodes = await Promise.all([0, 1, 2].map(async () => newSwarm(create)))
    try {
      for (const node of nodes) {
        node.behaviour.gossipsub.subscribe('g')
        node.behaviour.floodsub.subscribe('f')
      }
      await connect(nodes[0], nodes[1])
      await connect(nodes[1], nodes[2])
      await connect(nodes[2], nodes[0])
      await driveUntil(nodes, () => nodes.every(n => n.behaviour.gossipsub.meshPeers('g').length === 2 && n.behaviour.floodsub.subscribers('f').length === 2))
      for (let i = 0; i < 3; i++) {
        nodes[0].behaviour.gossipsub.publish('g', new TextEncoder().encode(`g${i}`))
        nodes[0].behaviour.floodsub.publish('f', new TextEncoder().encode(`f${i}`))
      }
      await drive(nodes, { count: [0, 6, 6], filter: isMessage })
      // Whichever of 1 and 2 gets a message first passes it on to the other (never back to its
      // source or author), where it is a duplicate; both may, when the copies cross.
      const settled = (kind: 'gossipsub' | 'floodsub'): boolean => {
        const [, t1, t2] = nodes.map(n => n.behaviour[kind].totals())
        return t1.forwarded + t2.forwarded >= 3 && t1.duplicates + t2.duplicates === t1.forwarded + t2.forwarded
      }
      await driveUntil(nodes, () => settled('gossipsub') && settled('floodsub'))
      for (const kind of ['gossipsub', 'floodsub'] as const) {
        const [t0, t1, t2] = nodes.map(n => n.behaviour[kind].totals())
        expect(t0.published, kind).to.equal(3)
        expect(t0.received + t0.forwarded, kind).to.equal(0)
        for (const t of [t1, t2]) {
          expect(t.published, kind).to.equal(0)
          expect(t.received, kind).to.equal(3)
          expect(t.invalid + t.ignored + t.droppedBytes, kind).to.equal(0)
        }
        expect(t1.forwarded + t2.forwarded, kind).to.be.within(3, 6)
      }
      expect(nodes[0].behaviour.gossipsub.fanoutTopics()).to.deep.equal([])
    } finally {
      await Promise.all(nodes.map(async n => { await n.close() }))
    }
  })
})
