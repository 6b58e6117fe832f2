/**
 * `/webrtc` (private to private) against js-libp2p's `webRTC()` (@libp2p/webrtc, Node,
 * node-datachannel) through a peerswarm relay on 127.0.0.1, both directions: signaling over
 * the relayed connection, then ping and GossipSub over the direct connection, after the relay
 * has been stopped.
 */
import { authorSeqnoId } from './js-node.js'
import { expect } from 'chai'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { gossipsub as jsGossipsub } from '@libp2p/gossipsub'
import { identify as jsIdentify } from '@libp2p/identify'
import { ping as jsPing } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webRTC } from '@libp2p/webrtc'
import { createLibp2p } from 'libp2p'
import { SwarmBuilder, combine, gossipsub, identify, ping, relay } from '../../src/index.js'
import { EventLog, until } from '../fixtures/event-log.js'
import { relayNode } from '../fixtures/relay-node.js'
import type { Message } from '@libp2p/gossipsub'
import type { Multiaddr } from '@multiformats/multiaddr'

const TOPIC = 'webrtc-private-interop'
const topic = new gossipsub.IdentTopic(TOPIC)

async function ourRelay () {
  return await relayNode(key => combine({ relay: new relay.Behaviour(key), identify: new identify.Behaviour(key.publicKey), ping: new ping.Behaviour() }))
}

async function ours () {
  const swarm = await SwarmBuilder.withNewIdentity()
    .withTcp()
    .withRelayClient()
    .withWebRTC()
    .withBehaviour((key, relayClient) => combine({
      relayClient,
      ping: new ping.Behaviour({ interval: 500 }),
      identify: new identify.Behaviour(key.publicKey),
      gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), heartbeatInterval: 200 })
    }))
    .withSwarmConfig({ idleConnectionTimeout: 60_000 })
    .build()
  return new EventLog(swarm)
}

async function jsPeer (listen: string[]) {
  return createLibp2p({
    addresses: { listen },
    transports: [tcp(), circuitRelayTransport(), webRTC({ rtcConfiguration: { iceServers: [] } })],
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
type Js = Awaited<ReturnType<typeof jsPeer>>

/** Ping both ways and ten GossipSub messages each way. */
async function exchange (node: Ours, js: Js): Promise<void> {
  const rtt = await js.services.ping.ping(node.swarm.localPeerId, { signal: AbortSignal.timeout(10_000) })
  expect(rtt).to.be.a('number').at.least(0)
  await node.find(e => e.type === 'Behaviour' && e.event.behaviour === 'ping' && e.event.event.type === 'Success' && e.event.event.peerId.equals(js.peerId), 10_000)
  const fromUs: string[] = []
  const fromJs: string[] = []
  js.services.pubsub.addEventListener('message', (evt: CustomEvent<Message>) => { fromUs.push(new TextDecoder().decode(evt.detail.data)) })
  const gs = node.swarm.behaviour.children.gossipsub
  js.services.pubsub.subscribe(TOPIC)
  gs.subscribe(topic)
  await until(() => gs.subscribers(topic).length === 1 && js.services.pubsub.getSubscribers(TOPIC).length === 1, 10_000, 'subscriptions both ways')
  for (let n = 0; n < 10; n++) {
    gs.publish(topic, new TextEncoder().encode(`ours ${n}`))
    await js.services.pubsub.publish(TOPIC, new TextEncoder().encode(`js ${n}`))
  }
  await until(() => fromUs.length === 10, 10_000, 'ten messages from us at js')
  for (let n = 0; n < 10; n++) {
    const message = await node.find(e => e.type === 'Behaviour' && e.event.behaviour === 'gossipsub' && e.event.event.type === 'Message' &&
      new TextDecoder().decode(e.event.event.message.data) === `js ${n}`, 10_000)
    if (message.type === 'Behaviour' && message.event.behaviour === 'gossipsub' && message.event.event.type === 'Message') fromJs.push(new TextDecoder().decode(message.event.event.message.data))
  }
  expect(fromJs).to.deep.equal(Array.from({ length: 10 }, (_, n) => `js ${n}`))
  expect(fromUs).to.deep.equal(Array.from({ length: 10 }, (_, n) => `ours ${n}`))
}

/** Only direct WebRTC connections left between us and js: the relayed one served signaling. */
async function onlyWebRTC (node: Ours, js: Js): Promise<void> {
  await until(() => {
    const theirs = js.getConnections(node.swarm.localPeerId)
    return theirs.length === 1 && theirs[0].limits == null && theirs[0].remoteAddr.getComponents().some(c => c.name === 'webrtc')
  }, 10_000, 'js with one (WebRTC) connection to us')
  const mine = node.swarm.connections().filter(c => c.peerId.equals(js.peerId))
  expect(mine.map(c => [c.transport, c.multiplexer])).to.deep.equal([['webrtc', '/webrtc']])
}

describe('interop with js-libp2p: /webrtc private to private (@libp2p/webrtc webRTC(), Node) through a relay', function () {
  this.timeout(60_000)
  let r: Awaited<ReturnType<typeof ourRelay>>
  let node: Ours
  let js: Js | undefined
  beforeEach(async () => {
    r = await ourRelay()
    node = await ours()
  })
  afterEach(async () => { await Promise.all([node.close(), js?.stop(), r.log.close().catch(() => {})]) })

  it('our swarm dials js-libp2p\'s /webrtc address; ping and GossipSub go on after the relay stops', async () => {
    js = await jsPeer(['/ip4/127.0.0.1/tcp/0', r.circuit.toString(), '/webrtc'])
    const jsNode = js
    let address: Multiaddr | undefined
    await until(() => (address = jsNode.getMultiaddrs().find(a => a.toString().includes('/p2p-circuit/webrtc/p2p/'))) != null, 15_000, 'js announcing a /webrtc address')
    if (address == null) throw new Error('unreachable')
    expect(address.toString()).to.equal(`${r.circuit.toString()}/webrtc/p2p/${js.peerId.toString()}`)
    node.swarm.dial(address)
    const established = await node.find(e => (e.type === 'ConnectionEstablished' && e.peerId.equals(jsNode.peerId)) || e.type === 'OutgoingConnectionError', 20_000)
    if (established.type === 'OutgoingConnectionError') throw established.error
    await onlyWebRTC(node, js)
    await r.log.close()
    await exchange(node, js)
  })

  it('js-libp2p dials our /webrtc address; ping and GossipSub go on after the relay stops', async () => {
    js = await jsPeer(['/ip4/127.0.0.1/tcp/0'])
    node.swarm.listenOn(r.circuit.encapsulate('/webrtc'))
    const listening = await node.find(e => e.type === 'NewListenAddr', 15_000)
    if (listening.type !== 'NewListenAddr') throw new Error('unreachable')
    const connection = await js.dial(listening.address, { signal: AbortSignal.timeout(20_000) })
    expect(connection.remoteAddr.toString()).to.equal(listening.address.toString())
    expect(connection.limits).to.equal(undefined)
    const established = await node.find(e => e.type === 'ConnectionEstablished' && e.peerId.equals(js?.peerId ?? node.swarm.localPeerId), 20_000)
    expect(established.type === 'ConnectionEstablished' && established.endpoint.type).to.equal('Listener')
    await onlyWebRTC(node, js)
    await r.log.close()
    await exchange(node, js)
  })
})
