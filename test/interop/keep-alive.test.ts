import { jsAddress, jsNode } from './js-node.js'
import { expect } from 'chai'
import { KeepAliveTimeoutError, SwarmBuilder, combine, identify, ping } from '../../src/index.js'
import { EventLog } from '../fixtures/event-log.js'
import { KeepAlive } from '../fixtures/behaviours.js'
import type { JsNode } from './js-node.js'

const IDLE = 1_000

async function ours () {
  const swarm = await SwarmBuilder.withNewIdentity()
    .withTcp()
    .withBehaviour(key => combine({
      ping: new ping.Behaviour({ interval: 5_000 }),
      identify: new identify.Behaviour(key.publicKey),
      keepAlive: new KeepAlive()
    }))
    .withSwarmConfig({ idleConnectionTimeout: IDLE })
    .build()
  return new EventLog(swarm)
}

async function noKeepAlive () {
  const swarm = await SwarmBuilder.withNewIdentity()
    .withTcp()
    .withBehaviour(key => combine({ ping: new ping.Behaviour({ interval: 200 }), identify: new identify.Behaviour(key.publicKey) }))
    .withSwarmConfig({ idleConnectionTimeout: IDLE })
    .build()
  return new EventLog(swarm)
}

async function jsDisconnected (js: JsNode, peer: string, timeout: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('js-libp2p still connected')) }, timeout)
    js.addEventListener('peer:disconnect', (evt) => {
      if (evt.detail.toString() !== peer) return
      clearTimeout(timer)
      resolve(performance.now())
    })
  })
}

describe('interop with js-libp2p: keep-alive', function () {
  this.timeout(60_000)
  let js: JsNode
  beforeEach(async () => { js = await jsNode() })
  afterEach(async () => { await js.stop() })

  it('keeps a connection to js-libp2p open through 30 s of idle time while a handler asks, then closes it when released', async () => {
    const node = await ours()
    try {
      node.swarm.dial(jsAddress(js, 'tcp'))
      await node.find(e => e.type === 'ConnectionEstablished')
      const deadline = performance.now() + 30_000
      // 30 s with no application traffic, many idle timeouts long.
      await node.find(e => e.type === 'ConnectionClosed', 30_000).then(
        () => { throw new Error('closed although a handler keeps the connection alive') },
        (err: Error) => { expect(err.message).to.match(/no matching event/) })
      expect(performance.now()).to.be.at.least(deadline - 5)
      expect(node.swarm.isConnected(js.peerId)).to.equal(true)
      expect(js.getConnections(node.swarm.localPeerId)).to.have.length(1)

      const released = performance.now()
      const gone = jsDisconnected(js, node.swarm.localPeerId.toString(), 10_000)
      node.swarm.behaviour.keepAlive.release(js.peerId)
      const closed = await node.find(e => e.type === 'ConnectionClosed', 10_000)
      expect(closed.type === 'ConnectionClosed' && closed.cause).to.be.instanceOf(KeepAliveTimeoutError)
      expect(await gone - released).to.be.at.least(IDLE - 5)
    } finally {
      await node.close()
    }
  })

  it('closes an idle connection js-libp2p dialed when no handler keeps it alive', async () => {
    const node = await noKeepAlive()
    try {
      node.swarm.listenOn('/ip4/127.0.0.1/tcp/0')
      const listening = await node.find(e => e.type === 'NewListenAddr')
      if (listening.type !== 'NewListenAddr') throw new Error('unreachable')
      const gone = jsDisconnected(js, node.swarm.localPeerId.toString(), 15_000)
      const dialed = performance.now()
      await js.dial(listening.address.encapsulate(`/p2p/${node.swarm.localPeerId.toString()}`))
      const closed = await node.find(e => e.type === 'ConnectionClosed', 15_000)
      expect(closed.type === 'ConnectionClosed' && closed.cause).to.be.instanceOf(KeepAliveTimeoutError)
      expect(await gone - dialed).to.be.at.least(IDLE - 5)
    } finally {
      await node.close()
    }
  })
})
