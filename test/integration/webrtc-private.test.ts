/**
 * `/webrtc` (private to private) between two peerswarm Node peers through a peerswarm relay on
 * 127.0.0.1: B listens on `<relay>/p2p-circuit/webrtc`, A dials the announced address, they
 * signal over the relayed connection and then talk directly; ping and GossipSub go on after
 * the relay is stopped. The relay runs no GossipSub, so messages cannot take it.
 */
import { expect } from 'chai'
import { SwarmBuilder, combine, gossipsub, ping, relay } from '../../src/index.js'
import { EventLog, until } from '../fixtures/event-log.js'
import { relayNode } from '../fixtures/relay-node.js'
import type { Multiaddr } from '@multiformats/multiaddr'

const topic = new gossipsub.IdentTopic('webrtc-private')
const swarmConfig = { idleConnectionTimeout: 30_000 }

async function ourRelay () {
  return await relayNode(key => combine({ relay: new relay.Behaviour(key), ping: new ping.Behaviour() }), swarmConfig)
}

const messages = new Map<string, string[]>()

async function peer () {
  const swarm = await SwarmBuilder.withNewIdentity()
    .withTcp()
    .withRelayClient()
    .withWebRTC()
    .withBehaviour((key, relayClient) => combine({
      relayClient,
      ping: new ping.Behaviour({ interval: 500 }),
      gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), heartbeatInterval: 200 })
    }))
    .withSwarmConfig(swarmConfig)
    .build()
  const received: string[] = []
  messages.set(swarm.localPeerId.toString(), received)
  return new EventLog(swarm, (event) => {
    if (event.type === 'Behaviour' && event.event.behaviour === 'gossipsub' && event.event.event.type === 'Message') received.push(new TextDecoder().decode(event.event.event.message.data))
  })
}

type Peer = Awaited<ReturnType<typeof peer>>

describe('WebRTC private to private between two peerswarm swarms through a relay (127.0.0.1)', function () {
  this.timeout(60_000)
  let r: Awaited<ReturnType<typeof ourRelay>>
  let a: Peer
  let b: Peer

  beforeEach(async () => {
    r = await ourRelay()
    ;[a, b] = await Promise.all([peer(), peer()])
  })
  afterEach(async () => {
    await Promise.all([a.close(), b.close(), r.log.close().catch(() => {})])
  })

  async function listenWebRTC (): Promise<Multiaddr> {
    b.swarm.listenOn(r.circuit.encapsulate('/webrtc'))
    const listening = await b.find(e => e.type === 'NewListenAddr')
    if (listening.type !== 'NewListenAddr') throw new Error('unreachable')
    return listening.address
  }

  it('announces <relay>/p2p-circuit/webrtc/p2p/<B>, connects directly, then pings and gossips after the relay is gone', async () => {
    const address = await listenWebRTC()
    expect(address.toString()).to.equal(`${r.circuit.toString()}/webrtc/p2p/${b.swarm.localPeerId.toString()}`)
    const started = performance.now()
    a.swarm.dial(address)
    const established = await a.find(e => (e.type === 'ConnectionEstablished' && e.peerId.equals(b.swarm.localPeerId)) || e.type === 'OutgoingConnectionError', 20_000)
    if (established.type === 'OutgoingConnectionError') throw established.error
    const connectedIn = performance.now() - started
    await b.find(e => e.type === 'ConnectionEstablished' && e.peerId.equals(a.swarm.localPeerId))
    if (established.type !== 'ConnectionEstablished') throw new Error('unreachable')
    expect(established.endpoint).to.not.have.property('limited')
    // The relayed connection served the signaling only: A and B have one connection, WebRTC.
    const conns = (node: Peer, other: Peer) => node.swarm.connections().filter(c => c.peerId.equals(other.swarm.localPeerId))
    await until(() => conns(a, b).length === 1 && conns(b, a).length === 1, 5_000, 'one connection each way')
    expect(conns(a, b).map(c => [c.transport, c.multiplexer])).to.deep.equal([['webrtc', '/webrtc']])
    expect(conns(b, a).map(c => [c.transport, c.multiplexer, c.remoteAddress.toString()])).to.deep.equal([['webrtc', '/webrtc', `/webrtc/p2p/${a.swarm.localPeerId.toString()}`]])

    // Stop the relay, then ping and GossipSub still cross.
    await r.log.close()
    await until(() => !a.swarm.isConnected(r.log.swarm.localPeerId) && !b.swarm.isConnected(r.log.swarm.localPeerId), 10_000, 'the relay gone')
    const pingsAfter = a.find(e => e.type === 'Behaviour' && e.event.behaviour === 'ping' && e.event.event.type === 'Success' && e.event.event.peerId.equals(b.swarm.localPeerId), 10_000)
    a.swarm.behaviour.children.gossipsub.subscribe(topic)
    b.swarm.behaviour.children.gossipsub.subscribe(topic)
    await until(() => a.swarm.behaviour.children.gossipsub.subscribers(topic).length === 1 && b.swarm.behaviour.children.gossipsub.subscribers(topic).length === 1, 10_000, 'subscriptions')
    await until(() => a.swarm.behaviour.children.gossipsub.meshPeers(topic).length === 1 && b.swarm.behaviour.children.gossipsub.meshPeers(topic).length === 1, 10_000, 'mesh')
    for (let n = 0; n < 100; n++) {
      a.swarm.behaviour.children.gossipsub.publish(topic, new TextEncoder().encode(`a${n}`))
      b.swarm.behaviour.children.gossipsub.publish(topic, new TextEncoder().encode(`b${n}`))
    }
    const atA = messages.get(a.swarm.localPeerId.toString()) ?? []
    const atB = messages.get(b.swarm.localPeerId.toString()) ?? []
    await until(() => atA.length === 100 && atB.length === 100, 10_000, '100 messages each way')
    expect(atB).to.deep.equal(Array.from({ length: 100 }, (_, n) => `a${n}`))
    expect(atA).to.deep.equal(Array.from({ length: 100 }, (_, n) => `b${n}`))
    await pingsAfter
    expect(a.swarm.isConnected(b.swarm.localPeerId)).to.equal(true)
    console.log(`      /webrtc connected in ${Math.round(connectedIn)} ms (relay dial, circuit upgrade, signaling, ICE, DTLS, SCTP)`)
  })

  it('fails a dial to a peer that does not listen on /webrtc with a typed error, and leaves no connection', async () => {
    // B reserves a plain circuit: the circuit is upgraded, but B refuses the signaling protocol.
    b.swarm.listenOn(r.circuit)
    await b.find(e => e.type === 'NewListenAddr')
    a.swarm.dial(r.circuit.encapsulate(`/webrtc/p2p/${b.swarm.localPeerId.toString()}`))
    const failed = await a.find(e => e.type === 'OutgoingConnectionError', 20_000)
    expect(failed.type).to.equal('OutgoingConnectionError')
    await until(() => !a.swarm.isConnected(b.swarm.localPeerId), 10_000, 'no connection left')
  })
})
