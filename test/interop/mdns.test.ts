import { jsMdnsNode, pinMulticastToLoopback } from './js-node.js'
import { expect } from 'chai'
import { SwarmBuilder, combine, identify, mdns, peerIdOf } from '../../src/index.js'
import { EventLog } from '../fixtures/event-log.js'
import type { JsMdnsNode } from './js-node.js'
import type { PeerInfo } from '@libp2p/interface'

async function ours (serviceName: string) {
  const swarm = await SwarmBuilder.withNewIdentity().withTcp()
    .withBehaviour(key => combine({
      mdns: new mdns.Behaviour(peerIdOf(key), { interface: '127.0.0.1', serviceName }),
      identify: new identify.Behaviour(key.publicKey)
    }))
    .withSwarmConfig({ idleConnectionTimeout: 30_000 })
    .build()
  swarm.listenOn('/ip4/127.0.0.1/tcp/0')
  return new EventLog(swarm)
}

/** Resolves with the first peer js-libp2p discovers that has id `peer`. */
async function jsDiscovers (js: JsMdnsNode, peer: string): Promise<PeerInfo> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('js-libp2p did not discover us')) }, 10_000)
    js.addEventListener('peer:discovery', (evt) => {
      if (evt.detail.id.toString() !== peer) return
      clearTimeout(timer)
      resolve(evt.detail)
    })
  })
}

describe('interop with js-libp2p mdns (multicast pinned to 127.0.0.1)', function () {
  this.timeout(30_000)
  let unpin: () => void
  let node: EventLog<Awaited<ReturnType<typeof ours>>['swarm']['behaviour']> | undefined
  let js: JsMdnsNode | undefined
  let service: string
  before(() => { unpin = pinMulticastToLoopback() })
  after(() => { unpin() })
  beforeEach(() => { service = `_ps${Math.random().toString(36).slice(2, 10)}._udp.local` })
  afterEach(async () => {
    await node?.close()
    await js?.stop()
    node = js = undefined
  })

  it('js-libp2p discovers our swarm with its TCP address and dials it', async () => {
    node = await ours(service)
    js = await jsMdnsNode(service)
    const found = await jsDiscovers(js, node.swarm.localPeerId.toString())
    const listen = await node.find(e => e.type === 'NewListenAddr')
    if (listen.type !== 'NewListenAddr') throw new Error('unreachable')
    expect(found.multiaddrs.map(String)).to.include(listen.address.toString())
    await js.dial(found.id)
    const established = await node.find(e => e.type === 'ConnectionEstablished')
    if (established.type !== 'ConnectionEstablished') throw new Error('unreachable')
    expect(established.peerId.equals(js.peerId)).to.equal(true)
    expect(established.endpoint.type).to.equal('Listener')
  })

  it('our swarm discovers js-libp2p and dials it by peer id alone', async () => {
    js = await jsMdnsNode(service)
    node = await ours(service)
    const discovered = await node.find(e => e.type === 'Behaviour' && e.event.behaviour === 'mdns' && e.event.event.type === 'Discovered' &&
      e.event.event.peers.some(p => p.peerId.equals(js!.peerId)))
    if (discovered.type !== 'Behaviour' || discovered.event.behaviour !== 'mdns' || discovered.event.event.type !== 'Discovered') throw new Error('unreachable')
    expect(discovered.event.event.peers.map(p => p.address.toString())).to.include.members(js.getMultiaddrs().map(a => a.decapsulateCode(421).toString()))
    const jsConnected = new Promise<void>((resolve) => {
      js!.addEventListener('peer:connect', (evt) => { if (evt.detail.equals(node!.swarm.localPeerId)) resolve() })
    })
    node.swarm.dial(js.peerId)
    const established = await node.find(e => e.type === 'ConnectionEstablished')
    if (established.type !== 'ConnectionEstablished') throw new Error('unreachable')
    expect(established.peerId.equals(js.peerId)).to.equal(true)
    await jsConnected
  })
})
