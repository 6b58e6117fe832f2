/**
 * GossipSub peer scoring: the score store with numeric expectations (after go-libp2p-pubsub's
 * score tests), and the router's use of scores and thresholds, driven without sockets. The
 * numbers in test names point at rules of pubsub/gossipsub/gossipsub-v1.1.md in the libp2p
 * specs (github.com/libp2p/specs), "Peer Scoring": 29–35 "The Score Function" with "P₁: Time in
 * Mesh", "P₂: First Message Deliveries", "P₃ and P₃b: Mesh Message Delivery", "P₄: Invalid
 * Messages", "Parameter Decay" and `RetainScore` ("Overview of New Parameters"); 36–38 "Score
 * Thresholds", "Heartbeat Maintenance" and "Extended Validators".
 */
import { expect } from 'chai'
import { ConfigError, gossipsub } from '../../src/index.js'
import { peerScoreParams } from '../../src/protocols/gossipsub/score/params.js'
import { PeerScore } from '../../src/protocols/gossipsub/score/peer-score.js'
import { multiaddr } from '@multiformats/multiaddr'
import { collect, Harness, keyOf } from '../fixtures/gossipsub-harness.js'
import type { ConnectionId } from '../../src/index.js'
import type { PeerScoreOptions, TopicScoreParams } from '../../src/protocols/gossipsub/score/params.js'

const T = 'topic'

/** Every weight 0 except those given. */
const ZERO_TOPIC: Partial<TopicScoreParams> = {
  topicWeight: 1,
  timeInMeshWeight: 0,
  firstMessageDeliveriesWeight: 0,
  meshMessageDeliveriesWeight: 0,
  meshFailurePenaltyWeight: 0,
  invalidMessageDeliveriesWeight: 0
}

function store (topic: Partial<TopicScoreParams>, peer: PeerScoreOptions = {}) {
  let now = 1_000_000
  const params = peerScoreParams({ topicScoreCap: 0, appSpecificWeight: 0, ipColocationFactorWeight: 0, behaviourPenaltyWeight: 0, ...peer, topics: { [T]: { ...ZERO_TOPIC, ...topic } } })
  const score = new PeerScore(params, () => now)
  return { score, advance: (ms: number) => { now += ms } }
}

describe('gossipsub score store', () => {
  it('P1: time in mesh in quanta, capped (29)', () => {
    const { score, advance } = store({ timeInMeshWeight: 1, timeInMeshQuantum: 1_000, timeInMeshCap: 3_600 })
    score.addPeer('a', [])
    score.graft('a', T)
    advance(200_000)
    score.refresh()
    expect(score.score('a')).to.equal(200)
    const capped = store({ timeInMeshWeight: 1, timeInMeshQuantum: 1_000, timeInMeshCap: 10 })
    capped.score.addPeer('a', [])
    capped.score.graft('a', T)
    capped.advance(100_000)
    capped.score.refresh()
    expect(capped.score.score('a')).to.equal(10)
  })

  it('P2: first deliveries, decaying by the factor at each refresh (30)', () => {
    const { score } = store({ firstMessageDeliveriesWeight: 1, firstMessageDeliveriesDecay: 0.9, firstMessageDeliveriesCap: 2_000 })
    score.addPeer('a', [])
    for (let i = 0; i < 100; i++) {
      score.validate(`m${i}`, T)
      score.deliver(`m${i}`, T, 'a')
    }
    expect(score.score('a')).to.equal(100)
    score.refresh()
    expect(score.score('a')).to.be.closeTo(90, 1e-9)
    score.refresh()
    expect(score.score('a')).to.be.closeTo(81, 1e-9)
  })

  it('P3: the first deliverer and a duplicate within the window count, a late one does not (31)', () => {
    const { score, advance } = store({
      meshMessageDeliveriesWeight: -1,
      meshMessageDeliveriesDecay: 0.5,
      meshMessageDeliveriesThreshold: 20,
      meshMessageDeliveriesCap: 100,
      meshMessageDeliveriesActivation: 1_000,
      meshMessageDeliveriesWindow: 10
    })
    for (const peer of ['first', 'within', 'late']) {
      score.addPeer(peer, [])
      score.graft(peer, T)
    }
    advance(2_000)
    score.refresh()
    for (let i = 0; i < 20; i++) {
      score.validate(`m${i}`, T)
      score.duplicate(`m${i}`, 'within')
      score.deliver(`m${i}`, T, 'first')
      advance(20)
      score.duplicate(`m${i}`, 'late')
    }
    expect(score.score('first')).to.equal(0)
    expect(score.score('within')).to.equal(0)
    expect(score.score('late')).to.equal(-400)
  })

  it('P3b: a deficit when pruned becomes a sticky penalty (31)', () => {
    const { score, advance } = store({ meshMessageDeliveriesWeight: -1, meshMessageDeliveriesThreshold: 5, meshMessageDeliveriesActivation: 1_000, meshFailurePenaltyWeight: -1, meshFailurePenaltyDecay: 0.5 })
    score.addPeer('a', [])
    score.graft('a', T)
    advance(2_000)
    score.refresh()
    expect(score.score('a')).to.equal(-25)
    score.prune('a', T)
    expect(score.score('a')).to.equal(-25)
    score.refresh()
    expect(score.score('a')).to.equal(-12.5)
  })

  it('P4: invalid messages squared; ignored ones cost nothing (32)', () => {
    const { score } = store({ invalidMessageDeliveriesWeight: -1, invalidMessageDeliveriesDecay: 0.5 })
    score.addPeer('a', [])
    score.addPeer('b', [])
    for (let i = 0; i < 3; i++) {
      score.validate(`m${i}`, T)
      score.reject(`m${i}`, T, 'a')
    }
    score.validate('x', T)
    score.ignore('x')
    score.duplicate('x', 'b')
    expect(score.score('a')).to.equal(-9)
    expect(score.score('b')).to.equal(0)
  })

  it('P4: whoever sent a copy of an invalid message while it was validated is blamed too', () => {
    const { score } = store({ invalidMessageDeliveriesWeight: -1, invalidMessageDeliveriesDecay: 0.5 })
    for (const peer of ['a', 'b', 'c']) score.addPeer(peer, [])
    score.validate('m', T)
    score.duplicate('m', 'b')
    score.reject('m', T, 'a')
    score.duplicate('m', 'c')
    expect([score.score('a'), score.score('b'), score.score('c')]).to.deep.equal([-1, -1, -1])
  })

  it('a delivery record gets a set of peers only for copies that arrive while it is pending, and drops it at the verdict', () => {
    const { score } = store({ invalidMessageDeliveriesWeight: -1, invalidMessageDeliveriesDecay: 0.5 })
    for (const peer of ['a', 'b']) score.addPeer(peer, [])
    const records = (score as unknown as { deliveries: Map<string, { peers?: Set<string> }> }).deliveries
    for (let i = 0; i < 1_000; i++) {
      score.validate(`m${i}`, T)
      score.deliver(`m${i}`, T, 'a')
      score.duplicate(`m${i}`, 'b')
    }
    expect([...records.values()].filter(r => r.peers != null)).to.have.length(0)
    score.validate('x', T)
    score.duplicate('x', 'b')
    expect(records.get('x')?.peers?.size).to.equal(1)
    score.reject('x', T, 'a')
    expect(records.get('x')?.peers).to.equal(undefined)
    // The copy that came while it was pending was blamed all the same.
    expect(score.score('b')).to.equal(-1)
  })

  it('P6: three peers on one IP with threshold 1 and weight −1 score −4 each; whitelisted IPs are exempt (33)', () => {
    const { score } = store({}, { ipColocationFactorWeight: -1, ipColocationFactorThreshold: 1, ipColocationFactorWhitelist: ['10.0.0.0/8'] })
    for (const peer of ['a', 'b', 'c']) score.addPeer(peer, ['192.0.2.1'])
    score.addPeer('d', ['192.0.2.2'])
    for (const peer of ['e', 'f']) score.addPeer(peer, ['10.1.2.3'])
    expect(['a', 'b', 'c', 'd', 'e', 'f'].map(p => score.score(p))).to.deep.equal([-4, -4, -4, 0, 0, 0])
    score.removePeer('c')
    expect(score.score('a')).to.equal(-1)
  })

  it('P6 whitelist entries may be plain addresses, IPv4 or IPv6', () => {
    const { score } = store({}, { ipColocationFactorWeight: -1, ipColocationFactorThreshold: 1, ipColocationFactorWhitelist: ['127.0.0.1', '::1'] })
    for (const peer of ['a', 'b']) score.addPeer(peer, ['127.0.0.1'])
    for (const peer of ['c', 'd']) score.addPeer(peer, ['::1'])
    for (const peer of ['e', 'f']) score.addPeer(peer, ['127.0.0.2'])
    // Two hosts of one IPv6 /64 count as colocated.
    for (const peer of ['g', 'h']) score.addPeer(peer, [peer === 'g' ? '2001:db8::1' : '2001:db8::2'])
    expect(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map(p => score.score(p))).to.deep.equal([0, 0, 0, 0, -1, -1, -1, -1])
  })

  it('P7: penalties beyond the threshold squared, decaying (34)', () => {
    const { score } = store({}, { behaviourPenaltyWeight: -1, behaviourPenaltyDecay: 0.99, decayToZero: 0.01 })
    score.addPeer('a', [])
    score.addPenalty('a', 1)
    expect(score.score('a')).to.equal(-1)
    score.addPenalty('a', 1)
    expect(score.score('a')).to.equal(-4)
    score.refresh()
    expect(score.score('a')).to.be.closeTo(-3.9204, 1e-9)
  })

  it('keeps a negative score across a reconnect for retainScore, then forgets it (35)', () => {
    const { score, advance } = store({}, { appSpecificWeight: 1, retainScore: 10_000 })
    score.addPeer('a', [])
    score.setApplicationScore('a', -1_000)
    score.removePeer('a')
    score.addPeer('a', [])
    expect(score.score('a')).to.equal(-1_000)
    score.removePeer('a')
    advance(5_000)
    score.refresh()
    expect(score.score('a')).to.equal(-1_000)
    advance(6_000)
    score.refresh()
    expect(score.has('a')).to.equal(false)
    expect(score.score('a')).to.equal(0)
  })

  it('forgets a positive score at once on disconnect', () => {
    const { score } = store({}, { appSpecificWeight: 1 })
    score.addPeer('a', [])
    score.setApplicationScore('a', 5)
    score.removePeer('a')
    expect(score.has('a')).to.equal(false)
  })

  it('caps the topic sum, not P5–P7', () => {
    const { score } = store({ firstMessageDeliveriesWeight: 1, firstMessageDeliveriesDecay: 0.5 }, { topicScoreCap: 5, appSpecificWeight: 1 })
    score.addPeer('a', [])
    for (let i = 0; i < 10; i++) {
      score.validate(`m${i}`, T)
      score.deliver(`m${i}`, T, 'a')
    }
    score.setApplicationScore('a', 100)
    expect(score.score('a')).to.equal(105)
    expect(score.breakdown('a')?.topics[T].p2).to.equal(10)
  })

  it('validates parameters, naming the field', () => {
    const field = (options: PeerScoreOptions): string | undefined => {
      try {
        peerScoreParams(options)
      } catch (err) {
        if (err instanceof ConfigError) return err.field
        throw err
      }
      return undefined
    }
    expect(field({ decayInterval: 10 })).to.equal('scoreParams.decayInterval')
    expect(field({ behaviourPenaltyWeight: 1 })).to.equal('scoreParams.behaviourPenaltyWeight')
    expect(field({ ipColocationFactorWhitelist: ['not an ip'] })).to.equal('scoreParams.ipColocationFactorWhitelist')
    expect(field({ topics: { t: { meshMessageDeliveriesWeight: 1 } } })).to.equal('scoreParams.topics[t].meshMessageDeliveriesWeight')
    expect(field({ topics: { t: { firstMessageDeliveriesDecay: 1.5 } } })).to.equal('scoreParams.topics[t].firstMessageDeliveriesDecay')
    expect(() => new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.anonymous(), scoreThresholds: { publishThreshold: 5 } }))
      .to.throw(ConfigError).with.property('field', 'scoreThresholds.publishThreshold')
  })

  it('gives go\'s decay helper', () => {
    expect(gossipsub.scoreParameterDecay(60_000)).to.be.closeTo(0.9261, 1e-4)
  })
})

describe('gossipsub scoring in the router', () => {
  let h: Harness
  afterEach(() => { h?.close() })

  const scoring = (topic: Partial<TopicScoreParams> = {}, peer: PeerScoreOptions = {}): Partial<gossipsub.Options> => ({
    scoreParams: { appSpecificWeight: 1, ipColocationFactorWeight: 0, ...peer, topics: { [T]: { ...ZERO_TOPIC, ...topic } } },
    scoreThresholds: { gossipThreshold: -10, publishThreshold: -50, graylistThreshold: -80, acceptPXThreshold: 0, opportunisticGraftThreshold: 0 }
  })

  it('is off by default: no scores', async () => {
    h = Harness.create()
    const peer = await h.connect()
    expect(h.behaviour.peerScore(peer.peerId)).to.equal(undefined)
    expect(h.behaviour.setApplicationScore(peer.peerId, 1)).to.equal(false)
  })

  it('prunes a mesh peer whose score fell below 0, without PX, and does not graft it again (36)', async () => {
    h = Harness.create({ ...scoring(), doPX: true })
    h.behaviour.subscribe(T)
    const [bad, good] = await h.connectMany(2, { topics: [T] })
    expect(h.behaviour.meshPeers(T)).to.have.length(2)
    h.behaviour.setApplicationScore(bad.peerId, -1)
    h.clearSent()
    await h.heartbeats(3)
    expect(h.behaviour.meshPeers(T).map(keyOf)).to.deep.equal([keyOf(good)])
    const prunes = collect.prunes(h.takeSent(bad))
    expect(prunes).to.have.length(1)
    expect(prunes[0].peers ?? []).to.deep.equal([])
    expect(collect.grafts(h.takeSent(bad))).to.deep.equal([])
  })

  it('ignores gossip from, and sends none to, peers below the gossip threshold (36)', async () => {
    h = Harness.create({ ...scoring(), meshN: 1, meshNLow: 1, meshNHigh: 1, meshOutboundMin: 0, meshNScore: 1, gossipLazy: 10 })
    h.behaviour.subscribe(T)
    const [meshPeer, low, ok] = await h.connectMany(3, { topics: [T] })
    expect(h.behaviour.meshPeers(T).map(keyOf)).to.deep.equal([keyOf(meshPeer)])
    h.behaviour.setApplicationScore(low.peerId, -20)
    h.clearSent()
    h.inject(low, { control: { ihave: [{ topicID: T, messageIDs: [new Uint8Array([1])] }] } })
    expect(collect.iwants(h.takeSent(low))).to.deep.equal([])
    h.inject(meshPeer, { publish: [{ topic: T, data: new Uint8Array([5]) }] })
    await h.heartbeats(1)
    expect(collect.ihaves(h.takeSent(low))).to.deep.equal([])
    expect(collect.ihaves(h.takeSent(ok))).to.have.length(1)
  })

  it('publishes to no peer below the publish threshold (36)', async () => {
    h = Harness.create(scoring())
    const [low, ok] = await h.connectMany(2, { topics: [T] })
    h.behaviour.setApplicationScore(low.peerId, -60)
    h.clearSent()
    h.behaviour.publish(T, new Uint8Array([1]))
    expect(collect.messages(h.takeSent(low))).to.deep.equal([])
    expect(collect.messages(h.takeSent(ok))).to.have.length(1)
  })

  it('ignores the messages and control of a graylisted peer, but still hears its subscriptions', async () => {
    h = Harness.create(scoring())
    h.behaviour.subscribe(T)
    const peer = await h.connect({ topics: [T] })
    h.behaviour.setApplicationScore(peer.peerId, -100)
    h.inject(peer, { subscriptions: [{ subscribe: true, topicid: 'more' }], publish: [{ topic: T, data: new Uint8Array([1]) }], control: { graft: [{ topicID: T }] } })
    h.drain()
    expect(h.events.filter(e => e.type === 'Message')).to.deep.equal([])
    expect(h.events.some(e => e.type === 'Subscribed' && e.topic === 'more')).to.equal(true)
  })

  it('holds a graylisted peer\'s inbound streams (also on a further connection) and reads them again at the heartbeat after its score is back', async () => {
    h = Harness.create(scoring())
    h.behaviour.subscribe(T)
    const peer = await h.connect({ topics: [T] })
    const id = peer.peerId.toString()
    h.behaviour.setApplicationScore(peer.peerId, -100)
    h.drain()
    // Nothing until it sends an RPC while graylisted; then once, however many it sends.
    expect(h.holdSent).to.deep.equal([])
    h.inject(peer, { publish: [{ topic: T, data: new Uint8Array([1]) }] })
    h.inject(peer, { publish: [{ topic: T, data: new Uint8Array([2]) }] })
    h.drain()
    expect(h.holdSent).to.deep.equal([{ peer: id, value: true }])
    // A further connection of the peer is held from the start.
    const connectionId = 9_999 as ConnectionId
    h.behaviour.handleEstablishedOutboundConnection({ connectionId, peerId: peer.peerId, address: multiaddr('/memory/1'), roleOverride: 'Dialer' })
    h.behaviour.onSwarmEvent({ type: 'ConnectionEstablished', peerId: peer.peerId, connectionId, endpoint: { type: 'Dialer', address: multiaddr('/memory/1') }, failedAddresses: [], otherEstablished: 1 })
    h.drain()
    expect(h.holdSent).to.deep.equal([{ peer: id, value: true }, { peer: id, value: true }])
    // Still graylisted at the heartbeat: still held.
    await h.heartbeats(1)
    expect(h.holdSent).to.have.length(2)
    h.behaviour.setApplicationScore(peer.peerId, 0)
    await h.heartbeats(1)
    expect(h.holdSent.slice(2)).to.deep.equal([{ peer: id, value: false }, { peer: id, value: false }])
    await h.heartbeats(1)
    expect(h.holdSent).to.have.length(4)
  })

  it('holds a peer at once when a rejected message of its takes it below the graylist, not only at its next RPC', async () => {
    h = Harness.create(scoring({ invalidMessageDeliveriesWeight: -100, invalidMessageDeliveriesDecay: 0.9 }))
    h.behaviour.subscribe(T)
    const [bad, good] = await h.connectMany(2, { topics: [T] })
    h.behaviour.setValidator(T, message => message.data[0] === 1 ? 'reject' : 'accept')
    h.inject(good, { publish: [{ topic: T, data: new Uint8Array([2]) }] })
    h.drain()
    expect(h.holdSent).to.deep.equal([])
    h.inject(bad, { publish: [{ topic: T, data: new Uint8Array([1]) }] })
    h.drain()
    expect(h.behaviour.peerScore(bad.peerId)).to.equal(-100)
    expect(h.holdSent).to.deep.equal([{ peer: bad.peerId.toString(), value: true }])
  })

  it('validator reject costs the sender (P4), ignore does not (38)', async () => {
    h = Harness.create(scoring({ invalidMessageDeliveriesWeight: -1, invalidMessageDeliveriesDecay: 0.5 }))
    h.behaviour.subscribe(T)
    const [rejected, ignored] = await h.connectMany(2, { topics: [T] })
    h.behaviour.setValidator(T, message => message.data[0] === 1 ? 'reject' : 'ignore')
    h.inject(rejected, { publish: [{ topic: T, data: new Uint8Array([1]) }] })
    h.inject(ignored, { publish: [{ topic: T, data: new Uint8Array([2]) }] })
    expect(h.behaviour.peerScore(rejected.peerId)).to.equal(-1)
    expect(h.behaviour.peerScore(ignored.peerId)).to.equal(0)
  })

  it('a forged signature costs the sender (P4)', async () => {
    const { generateKeypair } = await import('../../src/index.js')
    h = Harness.create({ ...scoring({ invalidMessageDeliveriesWeight: -1, invalidMessageDeliveriesDecay: 0.5 }), authenticity: gossipsub.MessageAuthenticity.signed(await generateKeypair()) })
    h.behaviour.subscribe(T)
    const peer = await h.connect({ topics: [T] })
    h.inject(peer, { publish: [{ topic: T, data: new Uint8Array([1]), from: peer.peerId.toMultihash().bytes, seqno: new Uint8Array(8), signature: new Uint8Array(64) }] })
    expect(h.behaviour.peerScore(peer.peerId)).to.equal(-1)
  })

  it('a GRAFT during backoff costs P7, double right after the PRUNE; repeated, it ends in the graylist (15)', async () => {
    h = Harness.create(scoring({}, { behaviourPenaltyWeight: -10, behaviourPenaltyDecay: 0.9 }))
    h.behaviour.subscribe(T)
    const peer = await h.connect({ topics: [T] })
    h.inject(peer, { control: { prune: [{ topicID: T, backoff: 60 }] } })
    h.inject(peer, { control: { graft: [{ topicID: T }] } })
    expect(h.behaviour.peerScoreBreakdown(peer.peerId)?.p7).to.equal(-40)
    h.inject(peer, { control: { graft: [{ topicID: T }] } })
    expect(h.behaviour.peerScore(peer.peerId)).to.be.below(-80)
    h.clearSent()
    // Graylisted: its RPCs are dropped, so no PRUNE answers this GRAFT.
    h.inject(peer, { control: { graft: [{ topicID: T }] } })
    expect(collect.prunes(h.takeSent(peer))).to.deep.equal([])
  })

  it('a peer that never answers our IWANT gets a P7 penalty for the broken promise (25)', async () => {
    h = Harness.create({ ...scoring({}, { behaviourPenaltyWeight: -1, behaviourPenaltyDecay: 0.9 }), iwantFollowupTime: 3_000 })
    h.behaviour.subscribe(T)
    const peer = await h.connect({ topics: [T] })
    h.inject(peer, { control: { ihave: [{ topicID: T, messageIDs: [new Uint8Array([9, 9])] }] } })
    expect(collect.iwants(h.takeSent(peer))).to.have.length(1)
    await h.heartbeats(2)
    expect(h.behaviour.peerScoreBreakdown(peer.peerId)?.p7).to.equal(0)
    await h.heartbeats(3)
    expect(h.behaviour.peerScoreBreakdown(peer.peerId)?.p7).to.be.below(0)
  })

  it('a delivered promise costs nothing', async () => {
    h = Harness.create({ ...scoring({}, { behaviourPenaltyWeight: -1, behaviourPenaltyDecay: 0.9 }) })
    h.behaviour.subscribe(T)
    const peer = await h.connect({ topics: [T] })
    const data = new Uint8Array([4, 2])
    const { sha256 } = await import('@noble/hashes/sha2.js')
    h.inject(peer, { control: { ihave: [{ topicID: T, messageIDs: [sha256(data)] }] } })
    expect(collect.iwants(h.takeSent(peer))).to.have.length(1)
    h.inject(peer, { publish: [{ topic: T, data }] })
    await h.heartbeats(6)
    expect(h.behaviour.peerScoreBreakdown(peer.peerId)?.p7).to.equal(0)
  })

  it('opportunistic grafting: a mesh whose median score is low grafts two better peers every opportunisticGraftTicks (37)', async () => {
    h = Harness.create({ ...scoring(), scoreThresholds: { opportunisticGraftThreshold: 20 }, opportunisticGraftTicks: 5, meshNHigh: 12 })
    h.behaviour.subscribe(T)
    const squatters = await h.connectMany(6, { topics: [T] })
    const honest = await h.connectMany(4, { topics: [T] })
    for (const peer of squatters) h.behaviour.setApplicationScore(peer.peerId, 1)
    for (const peer of honest) h.behaviour.setApplicationScore(peer.peerId, 50)
    // Subscriptions arriving while the mesh is full enough are not grafted at once.
    expect(h.behaviour.meshPeers(T).map(keyOf).filter(k => honest.some(p => keyOf(p) === k))).to.have.length(0)
    await h.heartbeats(4)
    expect(h.behaviour.meshPeers(T).filter(p => honest.some(q => q.peerId.equals(p)))).to.have.length(0)
    await h.heartbeats(1)
    expect(h.behaviour.meshPeers(T).filter(p => honest.some(q => q.peerId.equals(p)))).to.have.length(2)
  })

  it('counts IP colocation from connection addresses (P6)', async () => {
    h = Harness.create(scoring({}, { ipColocationFactorWeight: -1, ipColocationFactorThreshold: 1, ipColocationFactorWhitelist: ['127.0.0.0/8'] }))
    const a = await h.connect({ address: '/ip4/192.0.2.7/tcp/1' })
    await h.connect({ address: '/ip4/192.0.2.7/tcp/2' })
    const local = await h.connect({ address: '/ip4/127.0.0.1/tcp/3' })
    await h.connect({ address: '/ip4/127.0.0.1/tcp/4' })
    expect(h.behaviour.peerScore(a.peerId)).to.equal(-1)
    expect(h.behaviour.peerScore(local.peerId)).to.equal(0)
  })
})

describe('docs/gossipsub.md: the worked scoring example holds', () => {
  const decay = gossipsub.scoreParameterDecay
  const options: PeerScoreOptions = {
    topics: {
      blocks: {
        topicWeight: 1,
        timeInMeshWeight: 0.01, timeInMeshQuantum: 1_000, timeInMeshCap: 600,
        firstMessageDeliveriesWeight: 1, firstMessageDeliveriesDecay: decay(600_000), firstMessageDeliveriesCap: 20,
        meshMessageDeliveriesWeight: -0.5, meshMessageDeliveriesThreshold: 10, meshMessageDeliveriesDecay: decay(60_000),
        meshMessageDeliveriesCap: 100, meshMessageDeliveriesActivation: 30_000, meshMessageDeliveriesWindow: 50,
        meshFailurePenaltyWeight: -0.5, meshFailurePenaltyDecay: decay(300_000),
        invalidMessageDeliveriesWeight: -20, invalidMessageDeliveriesDecay: decay(3_600_000)
      }
    },
    topicScoreCap: 30,
    appSpecificWeight: 1,
    ipColocationFactorWeight: -10,
    ipColocationFactorThreshold: 3,
    behaviourPenaltyWeight: -5,
    behaviourPenaltyDecay: decay(600_000),
    decayInterval: 1_000,
    decayToZero: 0.01,
    retainScore: 600_000
  }
  function run () {
    let now = 0
    const score = new PeerScore(peerScoreParams(options), () => now)
    return { score, tick: (seconds: number, each?: (second: number) => void) => { for (let s = 0; s < seconds; s++) { now += 1_000; each?.(s); score.refresh() } } }
  }

  it('an honest peer, first with a third of 120 messages and a close second with the rest, scores about +20 after 60 s', () => {
    const { score, tick } = run()
    for (const peer of ['honest', 'other']) {
      score.addPeer(peer, [])
      score.graft(peer, 'blocks')
    }
    let m = 0
    tick(60, () => {
      for (let i = 0; i < 2; i++, m++) {
        score.validate(`m${m}`, 'blocks')
        const [first, second] = m % 3 === 0 ? ['honest', 'other'] : ['other', 'honest']
        score.deliver(`m${m}`, 'blocks', first)
        score.duplicate(`m${m}`, second)
      }
    })
    const parts = score.breakdown('honest')?.topics.blocks
    // P2 hits its cap of 20 and hovers just under it between deliveries.
    expect(parts?.p2).to.be.within(19.5, 20)
    expect(parts?.p3).to.equal(0)
    expect(score.score('honest')).to.be.within(20.1, 20.6)
  })

  it('a silent mesh peer falls to about −50 once active, and keeps P3b after the prune', () => {
    const { score, tick } = run()
    score.addPeer('silent', [])
    score.graft('silent', 'blocks')
    tick(31)
    expect(score.score('silent')).to.be.closeTo(-50 + 0.31, 0.01)
    score.prune('silent', 'blocks')
    expect(score.score('silent')).to.equal(-50)
  })

  it('one, two, three invalid blocks: −20, −80, −180', () => {
    const { score } = run()
    score.addPeer('bad', [])
    const seen: number[] = []
    for (let i = 0; i < 3; i++) {
      score.rejectUnrecorded('blocks', 'bad')
      seen.push(score.score('bad'))
    }
    expect(seen).to.deep.equal([-20, -80, -180])
  })

  it('five peers on one IP score −40 each', () => {
    const { score } = run()
    for (let i = 0; i < 5; i++) score.addPeer(`p${i}`, ['192.0.2.9'])
    expect(score.score('p0')).to.equal(-40)
  })
})
