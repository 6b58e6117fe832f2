/**
 * GossipSub's and FloodSub's keep-alive rule: their long-lived streams do not keep a connection
 * open; the connection is kept while the peer shares a topic with us (both subscribed, or the
 * peer in one of our meshes or fanouts; for FloodSub, a topic we subscribe to or relay), is an
 * explicit peer (GossipSub) or in the partial view (FloodSub), or while its handler has work.
 * A peer we share nothing with lets the connection idle out.
 *
 * Both sides of the rule, socket-free (the handler alone; the behaviours with fake peers and
 * fake time), then over the memory transport with short idle timeouts.
 */
import { expect } from 'chai'
import { multiaddr } from '@multiformats/multiaddr'
import { KeepAliveTimeoutError, floodsub, generateKeypair, gossipsub, peerIdOf } from '../../src/index.js'
import { isIgnoredForKeepAlive } from '../../src/behaviour/connection-handler.js'
import { encodeFrame } from '../../src/behaviour/framing.js'
import { encodeRpc } from '../../src/protocols/pubsub/rpc.js'
import { StreamHandler } from '../../src/protocols/pubsub/stream-handler.js'
import { connect, newSwarm, waitFor } from '../../src/testing/index.js'
import { FakeOutbound, Harness, keyOf } from '../fixtures/gossipsub-harness.js'
import type { AnyBehaviour, ConnectionId, PeerId, Stream, Swarm } from '../../src/index.js'
import type { FakePeer } from '../fixtures/gossipsub-harness.js'

const T = 'shared'

/** What the swarm tests use of either behaviour. */
interface Subscriber { subscribe: (topic: string) => boolean, unsubscribe: (topic: string) => boolean }

function handlerConfig (): ConstructorParameters<typeof StreamHandler>[0] {
  return { protocols: ['/meshsub/1.2.0'], maxFrameSize: 1 << 20, maxQueuedBytes: 1 << 20, maxReceivedRpcs: 64, timeout: 10_000 }
}

async function microtasks (): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

describe('pubsub keep-alive: the handler', () => {
  it('marks both long-lived streams ignoreForKeepAlive, and does not keep an idle connection by itself', () => {
    const handler = new StreamHandler(handlerConfig())
    const outbound = new FakeOutbound(false)
    const inbound = new FakeOutbound(false)
    handler.onConnectionEvent({ type: 'FullyNegotiatedOutbound', stream: outbound as unknown as Stream, protocol: '/meshsub/1.2.0', info: undefined })
    handler.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: inbound as unknown as Stream, protocol: '/meshsub/1.2.0', info: undefined })
    expect(isIgnoredForKeepAlive(outbound as unknown as Stream)).to.equal(true)
    expect(isIgnoredForKeepAlive(inbound as unknown as Stream)).to.equal(true)
    // Its `Ready` report waits for the behaviour: work, so kept until taken.
    expect(handler.connectionKeepAlive()).to.equal(true)
    expect(handler.poll({ waker: { wake: () => {} } })).to.deep.include({ type: 'NotifyBehaviour' })
    expect(handler.connectionKeepAlive()).to.equal(false)
  })

  it('keeps the connection while the behaviour says so (KeepAlive), and not after', () => {
    const handler = new StreamHandler(handlerConfig())
    handler.onBehaviourEvent({ type: 'KeepAlive', value: true })
    expect(handler.connectionKeepAlive()).to.equal(true)
    handler.onBehaviourEvent({ type: 'KeepAlive', value: false })
    expect(handler.connectionKeepAlive()).to.equal(false)
  })

  it('keeps it while frames wait to be written, and wakes the connection once they are', async () => {
    const handler = new StreamHandler(handlerConfig())
    const stream = new FakeOutbound(true)
    let wakes = 0
    handler.onConnectionEvent({ type: 'FullyNegotiatedOutbound', stream: stream as unknown as Stream, protocol: '/meshsub/1.2.0', info: undefined })
    handler.poll({ waker: { wake: () => { wakes++ } } })
    handler.onBehaviourEvent({ type: 'Send', frames: encodeFrame(encodeRpc({ subscriptions: [{ subscribe: true, topicid: T }] })) })
    expect(handler.connectionKeepAlive()).to.equal(true)
    await microtasks()
    // Handed to a stream that pushes back: still being written.
    expect(stream.chunks).to.have.length(1)
    expect(handler.connectionKeepAlive()).to.equal(true)
    const before = wakes
    stream.release()
    await microtasks()
    expect(handler.connectionKeepAlive()).to.equal(false)
    expect(wakes).to.be.greaterThan(before)
  })
})

describe('pubsub keep-alive: GossipSub tells each peer\'s handlers whether it shares a topic', () => {
  let h: Harness
  afterEach(() => { h?.close() })

  /** What `peer`'s handlers were told, in order. */
  const told = (peer: FakePeer): boolean[] => h.keepAliveSent.filter(k => k.peer === keyOf(peer)).map(k => k.value)
  /** What `peer`'s handler answers the connection once its reports are taken and its frames written. */
  async function answer (peer: FakePeer): Promise<boolean> {
    h.drain()
    h.handlerReports(peer)
    await h.clock.tickAsync(0)
    return h.handlerOf(peer).connectionKeepAlive()
  }

  it('a peer subscribed to none of our topics is never kept; one subscribed to ours is, until it unsubscribes', async () => {
    h = Harness.create()
    h.behaviour.subscribe(T)
    const stranger = await h.connect({ topics: ['elsewhere'] })
    const member = await h.connect({ topics: [T] })
    expect(await answer(stranger)).to.equal(false)
    expect(told(stranger)).to.deep.equal([])
    expect(await answer(member)).to.equal(true)
    expect(told(member)).to.deep.equal([true])
    h.inject(member, { subscriptions: [{ subscribe: false, topicid: T }] })
    expect(await answer(member)).to.equal(false)
    expect(told(member)).to.deep.equal([true, false])
  })

  it('our own subscription counts the same way: subscribing keeps the topic\'s peers, unsubscribing releases them', async () => {
    h = Harness.create()
    const peer = await h.connect({ topics: [T] })
    expect(await answer(peer)).to.equal(false)
    h.behaviour.subscribe(T)
    expect(await answer(peer)).to.equal(true)
    h.behaviour.unsubscribe(T)
    expect(await answer(peer)).to.equal(false)
    expect(told(peer)).to.deep.equal([true, false])
  })

  it('fanout peers are kept while we publish to the topic without subscribing, and released when the fanout expires', async () => {
    h = Harness.create({ floodPublish: false, fanoutTtl: 5_000 })
    const peers = await h.connectMany(8, { topics: [T] })
    h.behaviour.publish(T, new Uint8Array([1]))
    const fanout = h.behaviour.fanoutPeers(T).map(keyOf)
    expect(fanout).to.have.length(6)
    for (const peer of peers) expect(await answer(peer)).to.equal(fanout.includes(keyOf(peer)))
    await h.heartbeats(8)
    expect(h.behaviour.fanoutPeers(T)).to.deep.equal([])
    for (const peer of peers) expect(await answer(peer)).to.equal(false)
  })

  it('explicit peers are kept whatever their topics', async () => {
    h = Harness.create()
    const peer = await h.connect({ topics: ['elsewhere'] })
    h.behaviour.addExplicitPeer(peer.peerId)
    expect(await answer(peer)).to.equal(true)
    h.behaviour.removeExplicitPeer(peer.peerId)
    expect(await answer(peer)).to.equal(false)
  })

  it('costs nothing per message or heartbeat: handlers hear only of changes', async () => {
    h = Harness.create()
    h.behaviour.subscribe(T)
    const peers = await h.connectMany(3, { topics: [T] })
    await h.heartbeats(2)
    const count = h.keepAliveSent.length
    expect(count).to.equal(3)
    for (let i = 0; i < 100; i++) h.inject(peers[i % 3], { publish: [{ topic: T, data: new Uint8Array([i, 1]) }] })
    await h.heartbeats(5)
    expect(h.keepAliveSent.length).to.equal(count)
  })
})

describe('pubsub keep-alive: FloodSub', () => {
  /** A FloodSub behaviour and fake peers whose handlers get what it sends. */
  async function withPeers (topicsOf: ReadonlyArray<readonly string[]>) {
    const behaviour = new floodsub.Behaviour({ authenticity: floodsub.MessageAuthenticity.anonymous() })
    const peers: Array<{ peerId: PeerId, connectionId: ConnectionId, handler: StreamHandler }> = []
    const route = async (): Promise<void> => {
      for (let action = behaviour.poll({ waker: { wake: () => {} } }); action != null; action = behaviour.poll({ waker: { wake: () => {} } })) {
        if (action.type === 'NotifyHandler') peers.find(p => p.connectionId === action.handler)?.handler.onBehaviourEvent(action.event)
      }
      for (const peer of peers) while (peer.handler.poll({ waker: { wake: () => {} } }) != null);
      await new Promise(resolve => setImmediate(resolve))
    }
    for (const [i, topics] of topicsOf.entries()) {
      const peerId = peerIdOf(await generateKeypair())
      const connectionId = (7_000 + i) as ConnectionId
      const handler = behaviour.handleEstablishedInboundConnection({ connectionId, peerId, localAddr: multiaddr('/memory/1'), remoteAddr: multiaddr('/memory/2') })
      handler.onConnectionEvent({ type: 'FullyNegotiatedOutbound', stream: new FakeOutbound(false) as unknown as Stream, protocol: floodsub.PROTOCOL, info: undefined })
      behaviour.onSwarmEvent({ type: 'ConnectionEstablished', peerId, connectionId, endpoint: { type: 'Listener', localAddr: multiaddr('/memory/1'), sendBackAddr: multiaddr('/memory/2') }, failedAddresses: [], otherEstablished: 0 })
      behaviour.onConnectionHandlerEvent(peerId, connectionId, { type: 'Rpc', rpc: { subscriptions: topics.map(topicid => ({ subscribe: true, topicid })) } })
      peers.push({ peerId, connectionId, handler })
    }
    await route()
    return { behaviour, peers, route }
  }

  it('keeps peers of the topics we subscribe to or relay, and peers of the partial view; not the others', async () => {
    const { behaviour, peers: [member, relayed, stranger], route } = await withPeers([[T], ['relayed'], ['elsewhere']])
    expect([member, relayed, stranger].map(p => p.handler.connectionKeepAlive())).to.deep.equal([false, false, false])
    behaviour.subscribe(T)
    behaviour.relay('relayed')
    await route()
    expect([member, relayed, stranger].map(p => p.handler.connectionKeepAlive())).to.deep.equal([true, true, false])
    behaviour.addNodeToPartialView(stranger.peerId)
    await route()
    expect(stranger.handler.connectionKeepAlive()).to.equal(true)
    behaviour.removeNodeFromPartialView(stranger.peerId)
    behaviour.unsubscribe(T)
    behaviour.onConnectionHandlerEvent(relayed.peerId, relayed.connectionId, { type: 'Rpc', rpc: { subscriptions: [{ subscribe: false, topicid: 'relayed' }] } })
    await route()
    expect([member, relayed, stranger].map(p => p.handler.connectionKeepAlive())).to.deep.equal([false, false, false])
  })
})

describe('pubsub keep-alive over the memory transport', function () {
  this.timeout(20_000)
  const IDLE = 150

  const gossip = async (topic: string, idleConnectionTimeout = IDLE): Promise<Swarm<AnyBehaviour & Subscriber>> => {
    const swarm = await newSwarm(key => new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), heartbeatInitialDelay: 20, heartbeatInterval: 50 }), { idleConnectionTimeout })
    swarm.behaviour.subscribe(topic)
    return swarm
  }
  const flood = async (topic: string, idleConnectionTimeout = IDLE): Promise<Swarm<AnyBehaviour & Subscriber>> => {
    const swarm = await newSwarm(key => new floodsub.Behaviour({ authenticity: floodsub.MessageAuthenticity.signed(key) }), { idleConnectionTimeout })
    swarm.behaviour.subscribe(topic)
    return swarm
  }

  for (const [name, make] of [['GossipSub', gossip], ['FloodSub', flood]] as const) {
    it(`${name}: two swarms without a common topic let their connection idle out, not before idleConnectionTimeout`, async () => {
      const a = await make('a')
      const b = await make('b', 60_000)
      try {
        await connect(a, b)
        const connectedAt = performance.now()
        const closed = await waitFor(a, e => e.type === 'ConnectionClosed', { drive: [b], timeout: 5_000 })
        if (closed.type !== 'ConnectionClosed') throw new Error('unreachable')
        expect(closed.cause).to.be.instanceOf(KeepAliveTimeoutError)
        expect(performance.now() - connectedAt).to.be.at.least(IDLE - 2)
      } finally {
        await Promise.all([a.close(), b.close()])
      }
    })

    it(`${name}: two swarms sharing a topic stay connected through ten idle timeouts; once one unsubscribes, the connection idles out`, async () => {
      const a = await make(T)
      const b = await make(T, 60_000)
      try {
        await connect(a, b)
        await waitFor(a, e => e.type === 'ConnectionClosed', { drive: [b], timeout: IDLE * 10 }).then(
          () => { throw new Error('closed although the peers share a topic') },
          (err: Error) => { expect(err.name).to.equal('TestTimeoutError') })
        expect(a.isConnected(b.localPeerId)).to.equal(true)
        const releasedAt = performance.now()
        b.behaviour.unsubscribe(T)
        const closed = await waitFor(a, e => e.type === 'ConnectionClosed', { drive: [b], timeout: 5_000 })
        if (closed.type !== 'ConnectionClosed') throw new Error('unreachable')
        expect(closed.cause).to.be.instanceOf(KeepAliveTimeoutError)
        expect(performance.now() - releasedAt).to.be.at.least(IDLE - 2)
      } finally {
        await Promise.all([a.close(), b.close()])
      }
    })
  }
})
