/**
 * `/webrtc-direct` against js-libp2p's `@libp2p/webrtc` (Node, node-datachannel), both
 * directions, on 127.0.0.1: ping and GossipSub across.
 */
import { authorSeqnoId } from './js-node.js'
import { expect } from 'chai'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub as jsGossipsub } from '@libp2p/gossipsub'
import { identify as jsIdentify } from '@libp2p/identify'
import { ping as jsPing } from '@libp2p/ping'
import { webRTCDirect } from '@libp2p/webrtc'
import { createLibp2p } from 'libp2p'
import { SwarmBuilder, combine, gossipsub, identify, ping } from '../../src/index.js'
import { EventLog } from '../fixtures/event-log.js'
import type { Message } from '@libp2p/gossipsub'

const TOPIC = 'webrtc-interop'
const topic = new gossipsub.IdentTopic(TOPIC)

async function ours () {
  const swarm = await SwarmBuilder.withNewIdentity()
    .withWebRTCDirect({ dialBindAddress: '127.0.0.1' })
    .withBehaviour(key => combine({
      ping: new ping.Behaviour({ interval: 500 }),
      identify: new identify.Behaviour(key.publicKey),
      gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), heartbeatInterval: 200 })
    }))
    .withSwarmConfig({ idleConnectionTimeout: 60_000 })
    .build()
  return new EventLog(swarm)
}

async function jsWebRTCNode () {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/udp/0/webrtc-direct'] },
    transports: [webRTCDirect({ rtcConfiguration: { iceServers: [] } })],
    // Unused by WebRTC (it brings its own Noise and muxer), but libp2p wants them listed.
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: jsIdentify(),
      ping: jsPing(),
      pubsub: jsGossipsub({ msgIdFn: authorSeqnoId, heartbeatInterval: 200, scoreParams: { IPColocationFactorWhitelist: new Set(['127.0.0.1']) } })
    },
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] }
  })
}

type Ours = Awaited<ReturnType<typeof ours>>
type Js = Awaited<ReturnType<typeof jsWebRTCNode>>

async function until (condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

/** Ping both ways and ten GossipSub messages each way over the connection between them. */
async function exchange (node: Ours, js: Js): Promise<void> {
  const rtt = await js.services.ping.ping(node.swarm.localPeerId, { signal: AbortSignal.timeout(10_000) })
  expect(rtt).to.be.a('number').at.least(0)
  const pinged = await node.find(e => e.type === 'Behaviour' && e.event.behaviour === 'ping' && e.event.event.type === 'Success', 10_000)
  expect(pinged.type === 'Behaviour' && pinged.event.event.type === 'Success' && pinged.event.event.rtt).to.be.greaterThan(0)

  const fromJs: string[] = []
  const fromUs: string[] = []
  js.services.pubsub.addEventListener('message', (evt: CustomEvent<Message>) => { fromUs.push(new TextDecoder().decode(evt.detail.data)) })
  const gs = node.swarm.behaviour.gossipsub
  js.services.pubsub.subscribe(TOPIC)
  gs.subscribe(topic)
  await until(() => gs.subscribers(topic).length === 1 && js.services.pubsub.getSubscribers(TOPIC).length === 1, 'subscriptions both ways')
  for (let n = 0; n < 10; n++) {
    gs.publish(topic, new TextEncoder().encode(`ours ${n}`))
    await js.services.pubsub.publish(TOPIC, new TextEncoder().encode(`js ${n}`))
  }
  await until(() => fromUs.length === 10, 'ten messages from us at js')
  for (let n = 0; n < 10; n++) {
    const message = await node.find(e => e.type === 'Behaviour' && e.event.behaviour === 'gossipsub' && e.event.event.type === 'Message' &&
      new TextDecoder().decode(e.event.event.message.data) === `js ${n}`, 10_000)
    if (message.type === 'Behaviour' && message.event.behaviour === 'gossipsub' && message.event.event.type === 'Message') fromJs.push(new TextDecoder().decode(message.event.event.message.data))
  }
  expect(fromJs).to.deep.equal(Array.from({ length: 10 }, (_, n) => `js ${n}`))
  expect(fromUs).to.deep.equal(Array.from({ length: 10 }, (_, n) => `ours ${n}`))
}

describe('interop with js-libp2p: /webrtc-direct (@libp2p/webrtc, Node)', function () {
  this.timeout(60_000)
  let node: Ours
  let js: Js
  beforeEach(async () => { [node, js] = await Promise.all([ours(), jsWebRTCNode()]) })
  afterEach(async () => { await Promise.all([node.close(), js.stop()]) })

  it('our swarm dials js-libp2p\'s webrtc-direct listener', async () => {
    const address = js.getMultiaddrs().find(a => a.toString().includes('/webrtc-direct/certhash/'))
    if (address == null) throw new Error(`js has no webrtc-direct address: ${js.getMultiaddrs().join(' ')}`)
    node.swarm.dial(address)
    const established = await node.find(e => e.type === 'ConnectionEstablished', 20_000)
    expect(established.type === 'ConnectionEstablished' && established.peerId.equals(js.peerId)).to.equal(true)
    await exchange(node, js)
    expect(js.getConnections(node.swarm.localPeerId).map(c => c.direction)).to.deep.equal(['inbound'])
  })

  it('js-libp2p dials our webrtc-direct listener', async () => {
    node.swarm.listenOn('/ip4/127.0.0.1/udp/0/webrtc-direct')
    const listening = await node.find(e => e.type === 'NewListenAddr')
    if (listening.type !== 'NewListenAddr') throw new Error('unreachable')
    const connection = await js.dial(listening.address.encapsulate(`/p2p/${node.swarm.localPeerId.toString()}`), { signal: AbortSignal.timeout(20_000) })
    expect(connection.direction).to.equal('outbound')
    const established = await node.find(e => e.type === 'ConnectionEstablished', 20_000)
    expect(established.type === 'ConnectionEstablished' && established.endpoint.type).to.equal('Listener')
    await exchange(node, js)
  })
})
