import { jsAddress, jsNode } from './js-node.js'
import { expect } from 'chai'
import { SwarmBuilder, combine, identify, ping } from '../../src/index.js'
import { EventLog } from '../fixtures/event-log.js'
import type { JsNode } from './js-node.js'
import type { IdentifyResult } from '@libp2p/interface'

async function ours () {
  const swarm = await SwarmBuilder.withNewIdentity()
    .withTcp()
    .withWebSockets()
    .withBehaviour(key => combine({
      ping: new ping.Behaviour({ interval: 200 }),
      identify: new identify.Behaviour(key.publicKey)
    }))
    .withSwarmConfig({ idleConnectionTimeout: 60_000 })
    .build()
  return new EventLog(swarm)
}

type Ours = Awaited<ReturnType<typeof ours>>

/** Resolves when the js node has identified `peer`. */
async function jsIdentified (js: JsNode, peer: string): Promise<IdentifyResult> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('js-libp2p did not identify us')) }, 10_000)
    js.addEventListener('peer:identify', (evt) => {
      if (evt.detail.peerId.toString() !== peer) return
      clearTimeout(timer)
      resolve(evt.detail)
    })
  })
}

async function checkBothWays (node: Ours, js: JsNode, identified: Promise<IdentifyResult>): Promise<void> {
  // js-libp2p learned our protocols through identify, and its peer store has them.
  const result = await identified
  expect(result.protocols).to.include.members(['/ipfs/ping/1.0.0', '/ipfs/id/1.0.0', '/ipfs/id/push/1.0.0'])
  expect(result.agentVersion).to.match(/^peerswarm\//)
  const stored = await js.peerStore.get(node.swarm.localPeerId)
  expect(stored.protocols).to.include('/ipfs/ping/1.0.0')
  // js-libp2p pings us.
  const rtt = await js.services.ping.ping(node.swarm.localPeerId, { signal: AbortSignal.timeout(5_000) })
  expect(rtt).to.be.a('number').at.least(0)
  // We identified js-libp2p and pinged it.
  const received = await node.find(e => e.type === 'Behaviour' && e.event.behaviour === 'identify' && e.event.event.type === 'Received')
  if (received.type !== 'Behaviour' || received.event.behaviour !== 'identify' || received.event.event.type !== 'Received') throw new Error('unreachable')
  expect(received.event.event.peerId.equals(js.peerId)).to.equal(true)
  expect(received.event.event.info.protocols).to.include.members(['/ipfs/ping/1.0.0', '/ipfs/id/1.0.0'])
  expect(received.event.event.info.agentVersion).to.match(/js-libp2p/)
  const pinged = await node.find(e => e.type === 'Behaviour' && e.event.behaviour === 'ping' && e.event.event.type === 'Success')
  expect(pinged.type === 'Behaviour' && pinged.event.event.type === 'Success' && pinged.event.event.rtt).to.be.greaterThan(0)
}

describe('interop with js-libp2p: transports, ping, identify', function () {
  this.timeout(30_000)
  let node: Ours
  let js: JsNode
  beforeEach(async () => { [node, js] = await Promise.all([ours(), jsNode()]) })
  afterEach(async () => { await Promise.all([node.close(), js.stop()]) })

  for (const transport of ['tcp', 'ws'] as const) {
    it(`our swarm dials js-libp2p over ${transport}`, async () => {
      const identified = jsIdentified(js, node.swarm.localPeerId.toString())
      node.swarm.dial(jsAddress(js, transport))
      const established = await node.find(e => e.type === 'ConnectionEstablished')
      expect(established.type === 'ConnectionEstablished' && established.peerId.equals(js.peerId)).to.equal(true)
      expect(established.type === 'ConnectionEstablished' && established.endpoint.type).to.equal('Dialer')
      await checkBothWays(node, js, identified)
      expect(js.getConnections(node.swarm.localPeerId).map(c => c.direction)).to.deep.equal(['inbound'])
    })

    it(`js-libp2p dials our swarm over ${transport}`, async () => {
      node.swarm.listenOn(transport === 'tcp' ? '/ip4/127.0.0.1/tcp/0' : '/ip4/127.0.0.1/tcp/0/ws')
      const listening = await node.find(e => e.type === 'NewListenAddr')
      if (listening.type !== 'NewListenAddr') throw new Error('unreachable')
      const identified = jsIdentified(js, node.swarm.localPeerId.toString())
      const connection = await js.dial(listening.address.encapsulate(`/p2p/${node.swarm.localPeerId.toString()}`))
      expect(connection.direction).to.equal('outbound')
      const established = await node.find(e => e.type === 'ConnectionEstablished')
      expect(established.type === 'ConnectionEstablished' && established.endpoint.type).to.equal('Listener')
      await checkBothWays(node, js, identified)
    })
  }
})
