/**
 * GossipSub mesh maintenance, GRAFT/PRUNE and backoff, explicit and floodsub peers, driven
 * without sockets (test/fixtures/gossipsub-harness.ts). The numbers in test names point at
 * rules of the libp2p specs (github.com/libp2p/specs, pubsub/gossipsub/): 9, 12, 17
 * gossipsub-v1.0.md "Topic Membership" (subscriptions announced to every peer, JOIN, LEAVE);
 * 13 gossipsub-v1.0.md "Mesh Maintenance"; 14 gossipsub-v1.1.md "Spam Protection Measures"
 * (GRAFT for an unknown topic ignored); 15, 16, 17 gossipsub-v1.1.md "PRUNE Backoff and Peer
 * Exchange"; 18 gossipsub-v1.1.md "Outbound Mesh Quotas"; 19 gossipsub-v1.1.md "Explicit
 * Peering Agreements"; 20, 22 gossipsub-v1.0.md "Message Processing" (control messages,
 * floodsub peers) and "Peering State".
 */
import { expect } from 'chai'
import { ConfigError, gossipsub } from '../../src/index.js'
import { collect, FLOODSUB, Harness, keyOf, V10, V11 } from '../fixtures/gossipsub-harness.js'

const T = 'topic'

describe('gossipsub config', () => {
  const anonymous = gossipsub.MessageAuthenticity.anonymous()
  const field = (options: Partial<gossipsub.Config>): string | undefined => {
    try {
      // eslint-disable-next-line no-new
      new gossipsub.Behaviour({ authenticity: anonymous, ...options })
    } catch (err) {
      if (err instanceof ConfigError) return err.field
      throw err
    }
    return undefined
  }

  it('has the spec defaults', () => {
    const config = new gossipsub.Behaviour({ authenticity: anonymous }).config
    expect([config.meshN, config.meshNLow, config.meshNHigh, config.meshNScore, config.meshOutboundMin, config.gossipLazy])
      .to.deep.equal([6, 4, 12, 4, 2, 6])
    expect([config.heartbeatInterval, config.fanoutTtl, config.historyLength, config.historyGossip, config.seenTtl])
      .to.deep.equal([1_000, 60_000, 5, 3, 120_000])
    expect([config.pruneBackoff, config.unsubscribeBackoff, config.gossipFactor, config.floodPublish]).to.deep.equal([60_000, 10_000, 0.25, true])
  })

  it('names the field that breaks D_lo ≤ D ≤ D_hi, D_out < D_lo, D_out ≤ D/2, and positive times', () => {
    expect(field({ meshNLow: 7 })).to.equal('meshNLow')
    expect(field({ meshNHigh: 5 })).to.equal('meshNHigh')
    expect(field({ meshOutboundMin: 4 })).to.equal('meshOutboundMin')
    expect(field({ meshN: 4, meshNLow: 4, meshOutboundMin: 3 })).to.equal('meshOutboundMin')
    expect(field({ heartbeatInterval: 0 })).to.equal('heartbeatInterval')
    expect(field({ historyGossip: 6 })).to.equal('historyGossip')
    expect(field({ gossipFactor: 2 })).to.equal('gossipFactor')
    expect(field({ meshN: 1.5 })).to.equal('meshN')
    expect(field({ authenticity: undefined as unknown as gossipsub.Config['authenticity'] })).to.equal('authenticity')
  })

  it('accepts the bootstrapper profile (D = D_lo = D_hi = D_out = 0)', () => {
    expect(field({ meshN: 0, meshNLow: 0, meshNHigh: 0, meshOutboundMin: 0, meshNScore: 0, doPX: true })).to.equal(undefined)
  })
})

describe('gossipsub mesh', () => {
  let h: Harness
  afterEach(() => { h?.close() })

  it('JOIN grafts D peers of the topic and sends each a GRAFT (12, 17)', async () => {
    h = Harness.create()
    const peers = await h.connectMany(10, { topics: [T] })
    h.behaviour.subscribe(T)
    const mesh = h.behaviour.meshPeers(T).map(keyOf)
    expect(mesh).to.have.length(6)
    for (const peer of peers) {
      const grafts = collect.grafts(h.takeSent(peer))
      expect(grafts).to.deep.equal(mesh.includes(keyOf(peer)) ? [T] : [])
    }
  })

  it('announces the subscription to every peer, in the hello of new connections too (9)', async () => {
    h = Harness.create()
    const early = await h.connect()
    h.behaviour.subscribe(T)
    expect(collect.subscriptions(h.takeSent(early))).to.deep.equal([{ subscribe: true, topicid: T }])
    const late = await h.connect()
    expect(collect.subscriptions(h.takeSent(late))).to.deep.equal([{ subscribe: true, topicid: T }])
  })

  it('a peer subscribing to a short mesh is grafted at once, not at the next heartbeat', async () => {
    h = Harness.create()
    h.behaviour.subscribe(T)
    const peer = await h.connect({ topics: [T] })
    expect(h.behaviour.meshPeers(T).map(keyOf)).to.deep.equal([keyOf(peer)])
    expect(collect.grafts(h.takeSent(peer))).to.deep.equal([T])
  })

  it('the heartbeat tops a mesh below D_lo up to D', async () => {
    h = Harness.create()
    h.behaviour.subscribe(T)
    // Peers whose subscription arrives while the mesh is full enough are not grafted at once.
    const first = await h.connectMany(4, { topics: [T] })
    const more = await h.connectMany(6, { topics: [T] })
    expect(h.behaviour.meshPeers(T).map(keyOf)).to.have.members(first.map(keyOf))
    // Two mesh peers leave the topic: 2 < D_lo, so the heartbeat grafts up to D = 6.
    for (const peer of first.slice(0, 2)) h.inject(peer, { subscriptions: [{ subscribe: false, topicid: T }] })
    expect(h.behaviour.meshPeers(T)).to.have.length(2)
    await h.heartbeats(1)
    expect(h.behaviour.meshPeers(T)).to.have.length(6)
    expect(more.filter(p => collect.grafts(h.takeSent(p)).includes(T))).to.have.length(4)
  })

  it('prunes a mesh above D_hi back to D with PRUNE and a 60 s backoff (13)', async () => {
    h = Harness.create({ meshNHigh: 8 })
    h.behaviour.subscribe(T)
    const peers = await h.connectMany(9, { topics: [T] })
    // Inbound GRAFTs are accepted while the mesh is below D_hi.
    for (const peer of peers) h.inject(peer, { control: { graft: [{ topicID: T }] } })
    expect(h.behaviour.meshPeers(T).length).to.be.greaterThan(8)
    h.clearSent()
    await h.heartbeats(1)
    expect(h.behaviour.meshPeers(T)).to.have.length(6)
    const pruned = peers.filter(p => collect.prunes(h.takeSent(p)).length > 0)
    expect(pruned).to.have.length(3)
    for (const peer of pruned) expect(h.behaviour.backoffRemaining(T, peer.peerId)).to.be.closeTo(60_000, 1_000)
  })

  it('keeps at least D_out outbound peers when pruning an oversubscribed mesh (18)', async () => {
    h = Harness.create({ meshNHigh: 8 })
    h.behaviour.subscribe(T)
    const inbound = await h.connectMany(10, { topics: [T], outbound: false })
    for (const peer of inbound) h.inject(peer, { control: { graft: [{ topicID: T }] } })
    const outbound = await h.connectMany(2, { topics: [T], outbound: true })
    for (const peer of outbound) h.inject(peer, { control: { graft: [{ topicID: T }] } })
    expect(h.behaviour.meshPeers(T)).to.have.length(10)
    for (let round = 0; round < 5; round++) {
      await h.heartbeats(1)
      const mesh = h.behaviour.meshPeers(T).map(keyOf)
      expect(mesh).to.have.length.within(6, 8)
      expect(outbound.filter(p => mesh.includes(keyOf(p)))).to.have.length(2)
    }
  })

  it('accepts a GRAFT into a full mesh only from an outbound peer (18)', async () => {
    h = Harness.create({ meshN: 2, meshNLow: 2, meshNHigh: 2, meshOutboundMin: 1, meshNScore: 1 })
    h.behaviour.subscribe(T)
    await h.connectMany(2, { topics: [T] })
    expect(h.behaviour.meshPeers(T)).to.have.length(2)
    const inbound = await h.connect({ topics: [T], outbound: false })
    h.inject(inbound, { control: { graft: [{ topicID: T }] } })
    expect(collect.prunes(h.takeSent(inbound)).map(p => p.topicID)).to.deep.equal([T])
    const outbound = await h.connect({ topics: [T], outbound: true })
    h.inject(outbound, { control: { graft: [{ topicID: T }] } })
    expect(collect.prunes(h.takeSent(outbound))).to.deep.equal([])
    expect(h.behaviour.meshPeers(T).map(keyOf)).to.include(keyOf(outbound))
  })

  it('ignores a GRAFT for a topic we have not joined: no PRUNE, no mesh (14)', async () => {
    h = Harness.create()
    const peer = await h.connect({ topics: ['other'] })
    h.inject(peer, { control: { graft: [{ topicID: 'other' }] } })
    expect(collect.prunes(h.takeSent(peer))).to.deep.equal([])
    expect(h.behaviour.allMeshPeers()).to.deep.equal([])
  })

  it('ignores a PRUNE for a topic we have no mesh of: nothing is recorded', async () => {
    h = Harness.create()
    const peer = await h.connect({ topics: ['other'] })
    h.inject(peer, { control: { prune: [{ topicID: 'other', backoff: 3_600 }] } })
    expect(h.behaviour.backoffRemaining('other', peer.peerId)).to.equal(0)
  })

  it('applies every GRAFT of one RPC (20)', async () => {
    h = Harness.create()
    h.behaviour.subscribe('a')
    h.behaviour.subscribe('b')
    h.behaviour.subscribe('c')
    const peer = await h.connect()
    h.inject(peer, { subscriptions: ['a', 'b', 'c'].map(topicid => ({ subscribe: false, topicid })) })
    h.inject(peer, { control: { graft: [{ topicID: 'a' }, { topicID: 'b' }, { topicID: 'c' }] } })
    for (const topic of ['a', 'b', 'c']) expect(h.behaviour.meshPeers(topic).map(keyOf)).to.deep.equal([keyOf(peer)])
  })

  it('answers a GRAFT during backoff with PRUNE and keeps the peer out (15)', async () => {
    h = Harness.create()
    h.behaviour.subscribe(T)
    const peer = await h.connect({ topics: [T] })
    h.inject(peer, { control: { prune: [{ topicID: T, backoff: 30 }] } })
    expect(h.behaviour.meshPeers(T)).to.deep.equal([])
    h.clearSent()
    h.inject(peer, { control: { graft: [{ topicID: T }] } })
    const prunes = collect.prunes(h.takeSent(peer))
    expect(prunes.map(p => p.topicID)).to.deep.equal([T])
    expect(prunes[0].peers ?? []).to.deep.equal([])
    expect(h.behaviour.meshPeers(T)).to.deep.equal([])
  })

  it('does not graft a peer that pruned us until its backoff (plus a heartbeat of slack) is over (16)', async () => {
    h = Harness.create()
    h.behaviour.subscribe(T)
    const peer = await h.connect({ topics: [T] })
    h.inject(peer, { control: { prune: [{ topicID: T, backoff: 5 }] } })
    h.clearSent()
    await h.heartbeats(5)
    expect(collect.grafts(h.takeSent(peer))).to.deep.equal([])
    await h.heartbeats(2)
    expect(collect.grafts(h.takeSent(peer))).to.deep.equal([T])
  })

  it('backs off for 60 s after a PRUNE without a backoff (16)', async () => {
    h = Harness.create()
    h.behaviour.subscribe(T)
    const peer = await h.connect({ topics: [T] })
    h.inject(peer, { control: { prune: [{ topicID: T }] } })
    expect(h.behaviour.backoffRemaining(T, peer.peerId)).to.equal(60_000)
    h.clearSent()
    await h.heartbeats(59)
    expect(collect.grafts(h.takeSent(peer))).to.deep.equal([])
    await h.heartbeats(3)
    expect(collect.grafts(h.takeSent(peer))).to.deep.equal([T])
  })

  it('LEAVE prunes the mesh with a 10 s backoff both ways; JOIN skips backed-off peers (17)', async () => {
    h = Harness.create()
    const peers = await h.connectMany(3, { topics: [T] })
    h.behaviour.subscribe(T)
    h.clearSent()
    h.behaviour.unsubscribe(T)
    for (const peer of peers) {
      const rpcs = h.takeSent(peer)
      expect(collect.prunes(rpcs)).to.deep.equal([{ topicID: T, backoff: 10 }])
      expect(collect.subscriptions(rpcs)).to.deep.equal([{ subscribe: false, topicid: T }])
      expect(h.behaviour.backoffRemaining(T, peer.peerId)).to.equal(10_000)
    }
    h.behaviour.subscribe(T)
    expect(h.behaviour.meshPeers(T)).to.deep.equal([])
    await h.heartbeats(12)
    expect(h.behaviour.meshPeers(T)).to.have.length(3)
  })

  it('sends a v1.0 peer a bare PRUNE (no backoff, no PX)', async () => {
    h = Harness.create({ doPX: true })
    const old = await h.connect({ topics: [T], protocol: V10 })
    await h.connectMany(2, { topics: [T], protocol: V11 })
    h.behaviour.subscribe(T)
    h.clearSent()
    h.behaviour.unsubscribe(T)
    expect(collect.prunes(h.takeSent(old))).to.deep.equal([{ topicID: T }])
  })

  it('never grafts floodsub peers, but forwards them the messages of their topics (22)', async () => {
    h = Harness.create()
    const flood = await h.connect({ topics: [T], protocol: FLOODSUB })
    const mesh = await h.connect({ topics: [T] })
    h.behaviour.subscribe(T)
    await h.heartbeats(3)
    expect(h.behaviour.meshPeers(T).map(keyOf)).to.deep.equal([keyOf(mesh)])
    expect(collect.grafts(h.takeSent(flood))).to.deep.equal([])
    h.inject(mesh, { publish: [{ topic: T, data: new Uint8Array([1, 2, 3]) }] })
    expect(collect.messages(h.takeSent(flood)).map(m => m.data)).to.deep.equal([new Uint8Array([1, 2, 3])])
  })

  it('explicit peers: never grafted, always forwarded to, their GRAFT gets a PRUNE without PX (19)', async () => {
    h = Harness.create({ doPX: true })
    const direct = await h.connect({ topics: [T] })
    h.behaviour.addExplicitPeer(direct.peerId)
    const other = await h.connect({ topics: [T] })
    h.behaviour.subscribe(T)
    await h.heartbeats(2)
    expect(h.behaviour.meshPeers(T).map(keyOf)).to.deep.equal([keyOf(other)])
    h.clearSent()
    h.inject(direct, { control: { graft: [{ topicID: T }] } })
    expect(collect.prunes(h.takeSent(direct))).to.deep.equal([{ topicID: T, backoff: 60 }])
    h.inject(other, { publish: [{ topic: T, data: new Uint8Array([7]) }] })
    expect(collect.messages(h.takeSent(direct))).to.have.length(1)
  })

  it('dials explicit peers at once and again every directConnectTicks while disconnected (19)', async () => {
    h = Harness.create({ directConnectTicks: 3 })
    const direct = await h.connect()
    h.disconnect(direct)
    h.behaviour.addExplicitPeer(direct.peerId)
    h.drain()
    expect(h.dials.map(d => d.peerId?.toString())).to.deep.equal([keyOf(direct)])
    await h.heartbeats(3)
    expect(h.dials.map(d => d.peerId?.toString())).to.deep.equal([keyOf(direct), keyOf(direct)])
  })

  it('a disconnected peer leaves every mesh', async () => {
    h = Harness.create()
    h.behaviour.subscribe(T)
    const peer = await h.connect({ topics: [T] })
    expect(h.behaviour.meshPeers(T)).to.have.length(1)
    h.disconnect(peer)
    expect(h.behaviour.meshPeers(T)).to.deep.equal([])
    expect(h.behaviour.allPeers()).to.deep.equal([])
  })

  it('reports peers that speak no pubsub protocol once', async () => {
    h = Harness.create()
    const peer = await h.connect()
    h.handlerEvent(peer, { type: 'Unsupported' })
    h.drain()
    expect(h.events.filter(e => e.type === 'NotSupported')).to.have.length(1)
    expect(h.behaviour.peerProtocol(peer.peerId)).to.equal(undefined)
  })
})
