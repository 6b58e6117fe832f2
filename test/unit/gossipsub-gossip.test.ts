/**
 * GossipSub forwarding, publishing, fanout, gossip (IHAVE/IWANT), IDONTWANT, peer exchange
 * and manual validation, driven without sockets (test/fixtures/gossipsub-harness.ts).
 * The numbers in test names point at rules of the libp2p specs (github.com/libp2p/specs,
 * pubsub/gossipsub/): 10, 11 gossipsub-v1.0.md "Message Processing"; 21 gossipsub-v1.0.md
 * "Message Processing" (publishing through a fanout), "Fanout Maintenance" and "Topic
 * Membership"; 23 gossipsub-v1.0.md "Gossip Emission" and gossipsub-v1.1.md "Adaptive Gossip
 * Dissemination"; 23, 24 gossipsub-v1.0.md "Message Cache"; 24, 25 gossipsub-v1.1.md "Spam
 * Protection Measures" (IWANT retransmissions, IHAVE caps); 26 gossipsub-v1.0.md "Message
 * Processing" (IHAVE); 27, 28 gossipsub-v1.0.md "Control Message Piggybacking"; 39
 * gossipsub-v1.1.md "PRUNE Backoff and Peer Exchange".
 */
import { expect } from 'chai'
import { multiaddr } from '@multiformats/multiaddr'
import { generateKeypair, gossipsub, peerIdOf } from '../../src/index.js'
import { collect, FLOODSUB, Harness, keyOf, V11, V12 } from '../fixtures/gossipsub-harness.js'
import { MessageAuthor } from '../../src/protocols/pubsub/authenticity.js'
import { encodeFrame } from '../../src/behaviour/framing.js'
import { encodeRpc } from '../../src/protocols/pubsub/rpc.js'
import type { FakePeer } from '../fixtures/gossipsub-harness.js'

const T = 'topic'
const bytes = (...values: number[]) => new Uint8Array(values)

/** The `PublishError` kind `fn` throws, or undefined if it returns. */
function kind (fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof gossipsub.PublishError ? err.kind : String(err)
  }
  return undefined
}

describe('gossipsub forwarding and publishing', () => {
  let h: Harness
  afterEach(() => { h?.close() })

  it('forwards a valid message to the mesh only, never back to its source (10)', async () => {
    h = Harness.create()
    h.behaviour.subscribe(T)
    // Peers are grafted as they subscribe while the mesh is below D_lo (4).
    const mesh = await h.connectMany(4, { topics: [T] })
    const outside = await h.connectMany(6, { topics: [T] })
    expect(h.behaviour.meshPeers(T).map(keyOf)).to.have.members(mesh.map(keyOf))
    h.clearSent()
    h.inject(mesh[0], { publish: [{ topic: T, data: bytes(1) }] })
    expect(collect.messages(h.takeSent(mesh[0]))).to.deep.equal([])
    for (const peer of mesh.slice(1)) expect(collect.messages(h.takeSent(peer))).to.have.length(1)
    for (const peer of outside) expect(collect.messages(h.takeSent(peer))).to.deep.equal([])
    h.drain()
    expect(h.events.filter(e => e.type === 'Message')).to.have.length(1)
  })

  it('drops duplicates and messages of topics we do not subscribe to (10, 11)', async () => {
    h = Harness.create()
    h.behaviour.subscribe(T)
    const [a, b] = await h.connectMany(2, { topics: [T, 'other'] })
    h.inject(a, { publish: [{ topic: T, data: bytes(1) }] })
    h.inject(b, { publish: [{ topic: T, data: bytes(1) }] })
    h.inject(a, { publish: [{ topic: 'other', data: bytes(2) }] })
    h.drain()
    expect(h.events.filter(e => e.type === 'Message')).to.have.length(1)
    expect(collect.messages(h.takeSent(b))).to.have.length(1)
    expect(collect.messages(h.takeSent(a))).to.deep.equal([])
  })

  it('flood-publishes to every peer of the topic, not only the mesh', async () => {
    h = Harness.create()
    h.behaviour.subscribe(T)
    const peers = await h.connectMany(10, { topics: [T] })
    h.clearSent()
    h.behaviour.publish(T, bytes(9))
    for (const peer of peers) expect(collect.messages(h.takeSent(peer))).to.have.length(1)
  })

  it('without flood publish, publishes to the mesh; to D fanout peers when not subscribed; the fanout expires (21)', async () => {
    h = Harness.create({ floodPublish: false })
    const peers = await h.connectMany(10, { topics: [T] })
    h.behaviour.publish(T, bytes(1))
    const fanout = h.behaviour.fanoutPeers(T).map(keyOf)
    expect(fanout).to.have.length(6)
    for (const peer of peers) expect(collect.messages(h.takeSent(peer))).to.have.length(fanout.includes(keyOf(peer)) ? 1 : 0)
    await h.heartbeats(30)
    expect(h.behaviour.fanoutPeers(T)).to.have.length(6)
    await h.heartbeats(35)
    expect(h.behaviour.fanoutPeers(T)).to.deep.equal([])
  })

  it('JOIN promotes the fanout to the mesh (21)', async () => {
    h = Harness.create({ floodPublish: false })
    await h.connectMany(10, { topics: [T] })
    h.behaviour.publish(T, bytes(1))
    const fanout = h.behaviour.fanoutPeers(T).map(keyOf)
    h.behaviour.subscribe(T)
    expect(h.behaviour.meshPeers(T).map(keyOf)).to.have.members(fanout)
    expect(h.behaviour.fanoutPeers(T)).to.deep.equal([])
  })

  it('refuses to publish with typed errors: no peers, too large, duplicate, failed transform', async () => {
    h = Harness.create({ maxTransmitSize: 1024, dataTransform: { outbound: (_t, d) => { if (d[0] === 0xff) throw new Error('no'); return d }, inbound: (_t, d) => d } })
    expect(kind(() => h.behaviour.publish(T, bytes(1)))).to.equal('NoPeersSubscribedToTopic')
    await h.connect({ topics: [T] })
    expect(kind(() => h.behaviour.publish(T, new Uint8Array(2048)))).to.equal('MessageTooLarge')
    expect(kind(() => h.behaviour.publish(T, bytes(0xff)))).to.equal('TransformFailed')
    expect(kind(() => h.behaviour.publish(T, bytes(1)))).to.equal(undefined)
    // Unsigned ids are content hashes: the same payload again is a duplicate.
    expect(kind(() => h.behaviour.publish(T, bytes(1)))).to.equal('Duplicate')
  })

  it('refuses a publish with AllQueuesFull when no recipient\'s queue has room, and not while one has', async () => {
    h = Harness.create({ maxQueuedBytes: 4096, publishRequiresPeers: true })
    h.behaviour.subscribe(T)
    await h.connectMany(2, { topics: [T], stalled: true })
    await h.heartbeats(1)
    const outcomes: Array<string | undefined> = []
    for (let i = 0; i < 8; i++) {
      outcomes.push(kind(() => h.behaviour.publish(T, new Uint8Array(1000).fill(i))))
      h.drain()
    }
    // Four 1 kB messages (with their framing) fill 4 KiB queues; nothing is sent after that.
    expect(outcomes.slice(0, 3)).to.deep.equal([undefined, undefined, undefined])
    expect(outcomes.slice(-1)).to.deep.equal(['AllQueuesFull'])
    // A recipient that reads makes room: publishing works again, for that peer.
    const reader = await h.connect({ topics: [T] })
    await h.heartbeats(1)
    h.clearSent()
    expect(kind(() => h.behaviour.publish(T, new Uint8Array(1000).fill(0xee)))).to.equal(undefined)
    expect(collect.messages(h.takeSent(reader))).to.have.length(1)
  })

  it('signs with StrictSign and never forwards a message to its author', async () => {
    const key = await generateKeypair()
    h = Harness.create({ authenticity: gossipsub.MessageAuthenticity.signed(key) })
    h.behaviour.subscribe(T)
    const [author, relay, other] = await h.connectMany(3, { topics: [T] })
    const raw = await new MessageAuthor(gossipsub.MessageAuthenticity.signed(author.key)).build(T, bytes(5), 7n).complete
    h.inject(relay, { publish: [raw] })
    expect(collect.messages(h.takeSent(author))).to.deep.equal([])
    expect(collect.messages(h.takeSent(other))).to.have.length(1)
    h.drain()
    const message = h.events.find(e => e.type === 'Message')
    expect(message?.type === 'Message' && message.message.source?.equals(author.peerId)).to.equal(true)
    expect(message?.type === 'Message' && message.message.sequenceNumber).to.equal(7n)
  })

  it('holds messages for manual validation: forwarded on accept, dropped on reject', async () => {
    h = Harness.create({ validateMessagesManually: true })
    h.behaviour.subscribe(T)
    const [a, b] = await h.connectMany(2, { topics: [T] })
    h.inject(a, { publish: [{ topic: T, data: bytes(1) }, { topic: T, data: bytes(2) }] })
    expect(collect.messages(h.takeSent(b))).to.deep.equal([])
    h.drain()
    const [first, second] = h.events.filter(e => e.type === 'Message')
    if (first?.type !== 'Message' || second?.type !== 'Message') throw new Error('expected two messages')
    expect(h.behaviour.reportMessageValidationResult(first.messageId, b.peerId, 'accept')).to.equal(false)
    expect(h.behaviour.reportMessageValidationResult(first.messageId, a.peerId, 'accept')).to.equal(true)
    expect(h.behaviour.reportMessageValidationResult(second.messageId, a.peerId, 'reject')).to.equal(true)
    expect(collect.messages(h.takeSent(b)).map(m => m.data)).to.deep.equal([bytes(1)])
    expect(h.behaviour.reportMessageValidationResult(first.messageId, a.peerId, 'accept')).to.equal(false)
  })

  it('applies the inbound transform before delivery and forwards the wire bytes', async () => {
    h = Harness.create({ dataTransform: { outbound: (_t, d) => d, inbound: (_t, d) => d.map(x => x + 1) } })
    h.behaviour.subscribe(T)
    const [a, b] = await h.connectMany(2, { topics: [T] })
    h.inject(a, { publish: [{ topic: T, data: bytes(1) }] })
    h.drain()
    const message = h.events.find(e => e.type === 'Message')
    expect(message?.type === 'Message' && message.message.data).to.deep.equal(bytes(2))
    expect(collect.messages(h.takeSent(b)).map(m => m.data)).to.deep.equal([bytes(1)])
  })
})

describe('gossipsub gossip', () => {
  let h: Harness
  afterEach(() => { h?.close() })

  it('sends IHAVE only to non-mesh peers, to max(D_lazy, 0.25 × eligible) of them (23)', async () => {
    h = Harness.create({ meshN: 2, meshNLow: 1, meshNHigh: 3, meshOutboundMin: 0, meshNScore: 1 })
    h.behaviour.subscribe(T)
    const peers = await h.connectMany(40, { topics: [T] })
    await h.heartbeats(1)
    h.inject(peers[0], { publish: [{ topic: T, data: bytes(1) }] })
    h.clearSent()
    await h.heartbeats(1)
    const mesh = h.behaviour.meshPeers(T).map(keyOf)
    const gossiped = peers.filter(p => collect.ihaves(h.takeSent(p)).length > 0)
    // 38 eligible non-mesh peers: max(6, floor(0.25 × 38) = 9) = 9.
    expect(gossiped).to.have.length(9)
    for (const peer of gossiped) expect(mesh).to.not.include(keyOf(peer))
  })

  it('advertises a message in IHAVE for historyGossip heartbeats, answers IWANT for historyLength (23, 24)', async () => {
    h = Harness.create({ meshN: 1, meshNLow: 1, meshNHigh: 1, meshOutboundMin: 0, meshNScore: 1, gossipLazy: 20 })
    h.behaviour.subscribe(T)
    const peers = await h.connectMany(4, { topics: [T] })
    const source = h.behaviour.meshPeers(T).map(keyOf)[0]
    const outsider = peers.find(p => keyOf(p) !== source) as FakePeer
    h.inject(peers.find(p => keyOf(p) === source) as FakePeer, { publish: [{ topic: T, data: bytes(42) }] })
    h.clearSent()
    const advertised: number[] = []
    let id: Uint8Array | undefined
    for (let beat = 1; beat <= 4; beat++) {
      await h.heartbeats(1)
      const ihaves = collect.ihaves(h.takeSent(outsider))
      if (ihaves.length > 0) {
        advertised.push(beat)
        id = ihaves[0].messageIDs?.[0]
      }
    }
    expect(advertised).to.deep.equal([1, 2, 3])
    if (id == null) throw new Error('no id advertised')
    // Still in the cache at the 4th and 5th window…
    h.inject(outsider, { control: { iwant: [{ messageIDs: [id] }] } })
    expect(collect.messages(h.takeSent(outsider))).to.have.length(1)
    await h.heartbeats(1)
    // …and gone after historyLength (5) shifts.
    h.inject(outsider, { control: { iwant: [{ messageIDs: [id] }] } })
    expect(collect.messages(h.takeSent(outsider))).to.deep.equal([])
  })

  it('answers the same peer\'s IWANT for a message at most gossipRetransmission (3) times (24)', async () => {
    h = Harness.create()
    h.behaviour.subscribe(T)
    const [source, asker] = await h.connectMany(2, { topics: [T] })
    h.inject(source, { publish: [{ topic: T, data: bytes(3) }] })
    h.drain()
    const message = h.events.find(e => e.type === 'Message')
    if (message?.type !== 'Message') throw new Error('no message')
    h.clearSent()
    for (let i = 0; i < 5; i++) h.inject(asker, { control: { iwant: [{ messageIDs: [message.messageId] }] } })
    expect(collect.messages(h.takeSent(asker))).to.have.length(3)
  })

  it('asks by IWANT for unseen ids of an IHAVE, and only for topics in its mesh (26)', async () => {
    h = Harness.create()
    h.behaviour.subscribe(T)
    const peer = await h.connect({ topics: [T] })
    h.inject(peer, { publish: [{ topic: T, data: bytes(1) }] })
    h.clearSent()
    const seen = (h.events.find(e => e.type === 'Message') as Extract<gossipsub.Event, { type: 'Message' }>).messageId
    const unseen = bytes(9, 9, 9)
    h.inject(peer, { control: { ihave: [{ topicID: T, messageIDs: [seen, unseen] }, { topicID: 'other', messageIDs: [bytes(8)] }] } })
    expect(collect.iwants(h.takeSent(peer))).to.deep.equal([unseen])
  })

  /** A harness subscribed to T that has received one message of it; returns the message's id. */
  async function withOneMessage (options: Partial<gossipsub.Options> = {}): Promise<Uint8Array> {
    h = Harness.create(options)
    h.behaviour.subscribe(T)
    const source = await h.connect({ topics: [T] })
    h.inject(source, { publish: [{ topic: T, data: bytes(5) }] })
    h.drain()
    const message = h.events.find(e => e.type === 'Message')
    if (message?.type !== 'Message') throw new Error('no message')
    return message.messageId
  }

  it('offers the ids of the gossip windows by IHAVE to a gossipsub peer that subscribes, not to a floodsub peer, not once they left the windows', async () => {
    const id = await withOneMessage()
    const late = await h.connect({ topics: [T] })
    expect(collect.ihaves(h.takeSent(late)).flatMap(i => i.messageIDs ?? [])).to.deep.equal([id])
    const flood = await h.connect({ protocol: FLOODSUB, topics: [T] })
    expect(collect.ihaves(h.takeSent(flood))).to.deep.equal([])
    // A peer that subscribes before our stream to it is negotiated is offered once it is.
    const slow = await h.connect({ topics: [T], ready: false })
    expect(collect.ihaves(h.takeSent(slow))).to.deep.equal([])
    h.ready(slow)
    expect(collect.ihaves(h.takeSent(slow)).flatMap(i => i.messageIDs ?? [])).to.deep.equal([id])
    // historyGossip (3) heartbeats later the id is no longer offered.
    await h.heartbeats(3)
    const later = await h.connect({ topics: [T] })
    expect(collect.ihaves(h.takeSent(later))).to.deep.equal([])
  })

  it('offers a peer that toggles its subscription at most maxIHaveMessages IHAVEs per heartbeat', async () => {
    await withOneMessage({ maxIHaveMessages: 4 })
    const toggler = await h.connect()
    const offered = (): number => {
      let count = 0
      for (let i = 0; i < 20; i++) {
        h.inject(toggler, { subscriptions: [{ subscribe: true, topicid: T }] })
        h.inject(toggler, { subscriptions: [{ subscribe: false, topicid: T }] })
        count += collect.ihaves(h.takeSent(toggler)).length
      }
      return count
    }
    expect(offered()).to.equal(4)
    await h.heartbeats(1)
    expect(offered()).to.equal(4)
  })

  it('offers nothing to a subscriber below the gossip threshold, nor to any with gossipOnSubscribe off', async () => {
    const scoring: Partial<gossipsub.Options> = {
      scoreParams: { appSpecificWeight: 1, ipColocationFactorWeight: 0 },
      scoreThresholds: { gossipThreshold: -10, publishThreshold: -50, graylistThreshold: -80, acceptPXThreshold: 0, opportunisticGraftThreshold: 0 }
    }
    for (const gossipOnSubscribe of [true, false]) {
      await withOneMessage({ ...scoring, gossipOnSubscribe })
      const [low, ok] = await h.connectMany(2)
      h.behaviour.setApplicationScore(low.peerId, -20)
      for (const peer of [low, ok]) h.inject(peer, { subscriptions: [{ subscribe: true, topicid: T }] })
      expect(collect.ihaves(h.takeSent(low))).to.deep.equal([])
      expect(collect.ihaves(h.takeSent(ok))).to.have.length(gossipOnSubscribe ? 1 : 0)
      h.close()
    }
  })

  it('follows at most maxIHaveMessages IHAVE RPCs per peer per heartbeat (25)', async () => {
    h = Harness.create({ maxIHaveMessages: 10 })
    h.behaviour.subscribe(T)
    const peer = await h.connect({ topics: [T] })
    h.clearSent()
    for (let i = 0; i < 15; i++) h.inject(peer, { control: { ihave: [{ topicID: T, messageIDs: [bytes(i)] }] } })
    expect(collect.iwants(h.takeSent(peer))).to.have.length(10)
    await h.heartbeats(1)
    h.inject(peer, { control: { ihave: [{ topicID: T, messageIDs: [bytes(100)] }] } })
    expect(collect.iwants(h.takeSent(peer))).to.have.length(1)
  })

  it('asks one peer for at most maxIHaveLength ids per heartbeat (25)', async () => {
    h = Harness.create({ maxIHaveLength: 100 })
    h.behaviour.subscribe(T)
    const peer = await h.connect({ topics: [T] })
    h.clearSent()
    const ids = Array.from({ length: 150 }, (_, i) => bytes(i >> 8, i & 0xff, 1))
    h.inject(peer, { control: { ihave: [{ topicID: T, messageIDs: ids.slice(0, 80) }] } })
    h.inject(peer, { control: { ihave: [{ topicID: T, messageIDs: ids.slice(80) }] } })
    expect(collect.iwants(h.takeSent(peer))).to.have.length(100)
  })

  it('sends a peer\'s control messages of one heartbeat together, split to respect the control size bound (27, 28)', async () => {
    h = Harness.create({ meshN: 1, meshNLow: 1, meshNHigh: 1, meshOutboundMin: 0, meshNScore: 1, gossipLazy: 20 })
    h.behaviour.subscribe(T)
    const [source, outsider] = await h.connectMany(2, { topics: [T] })
    const sender = h.behaviour.meshPeers(T).map(keyOf)[0] === keyOf(source) ? source : outsider
    const receiver = sender === source ? outsider : source
    for (let i = 0; i < 2_000; i++) h.inject(sender, { publish: [{ topic: T, data: bytes(i >> 8, i & 0xff) }] })
    h.clearSent()
    await h.heartbeats(1)
    const rpcs = h.takeSent(receiver)
    const advertised = collect.ihaves(rpcs).flatMap(i => i.messageIDs ?? [])
    expect(advertised).to.have.length(2_000)
    // 2,000 ids of 32 bytes do not fit in 16 KiB of control: several RPCs, each within it.
    expect(rpcs.length).to.be.greaterThan(1)
    for (const rpc of rpcs) {
      const idBytes = (rpc.control?.ihave ?? []).flatMap(i => i.messageIDs ?? []).reduce((n, id) => n + id.byteLength + 2, 0)
      expect(idBytes).to.be.at.most(16 * 1024)
    }
  })

  it('IDONTWANT: sent to v1.2 mesh peers (not the source, not v1.1) for large messages only; honoured when received', async () => {
    h = Harness.create({ idontwantMessageThreshold: 100 })
    h.behaviour.subscribe(T)
    const [source, modern] = await h.connectMany(2, { topics: [T], protocol: V12 })
    const older = await h.connect({ topics: [T], protocol: V11 })
    const large = new Uint8Array(200).fill(1)
    h.clearSent()
    h.inject(source, { publish: [{ topic: T, data: large }] })
    expect(collect.idontwants(h.takeSent(source))).to.deep.equal([])
    const toModern = h.takeSent(modern)
    expect(collect.idontwants(toModern)).to.have.length(1)
    // The IDONTWANT goes out before the message itself.
    expect(toModern[0].control?.idontwant).to.have.length(1)
    expect(collect.messages(toModern)).to.have.length(1)
    expect(collect.idontwants(h.takeSent(older))).to.deep.equal([])
    h.inject(source, { publish: [{ topic: T, data: bytes(1) }] })
    expect(collect.idontwants(h.takeSent(modern))).to.deep.equal([])

    // modern says it does not want a message: it is not forwarded to it, nor sent on IWANT.
    const next = new Uint8Array(200).fill(2)
    const { sha256 } = await import('@noble/hashes/sha2.js')
    const id = sha256(next)
    h.inject(modern, { control: { idontwant: [{ messageIDs: [id] }] } })
    h.inject(source, { publish: [{ topic: T, data: next }] })
    expect(collect.messages(h.takeSent(modern))).to.deep.equal([])
    expect(h.behaviour.totals().unwanted, 'counted').to.equal(1)
    h.inject(modern, { control: { iwant: [{ messageIDs: [id] }] } })
    expect(collect.messages(h.takeSent(modern))).to.deep.equal([])
    expect(h.behaviour.totals().unwanted).to.equal(2)
    expect(collect.messages(h.takeSent(older))).to.have.length(2)
  })

  it('IDONTWANT goes out before validation ends; the message only after', async () => {
    h = Harness.create({ idontwantMessageThreshold: 100 })
    h.behaviour.subscribe(T)
    const [source, modern] = await h.connectMany(2, { topics: [T] })
    let accept: (result: gossipsub.ValidationResult) => void = () => {}
    h.behaviour.setValidator(T, async () => await new Promise(resolve => { accept = resolve }))
    h.clearSent()
    h.inject(source, { publish: [{ topic: T, data: new Uint8Array(200) }] })
    const before = h.takeSent(modern)
    expect(collect.idontwants(before)).to.have.length(1)
    expect(collect.messages(before)).to.deep.equal([])
    accept('accept')
    await h.clock.tickAsync(0)
    expect(collect.messages(h.takeSent(modern))).to.have.length(1)
  })

  it('IDONTWANT received while a forward or an IWANT answer is still queued for that peer: dropped before it is written; our own message is sent', async () => {
    h = Harness.create({ idontwantMessageThreshold: 100 })
    h.behaviour.subscribe(T)
    const [source, other] = await h.connectMany(2, { topics: [T] })
    // `slow` reads nothing for now: what its stream was handed before pushing back (the hello,
    // the GRAFT) stays there, and everything after waits in our queue.
    const slow = await h.connect({ topics: [T], stalled: true })
    h.drain()
    await h.clock.tickAsync(0)
    expect(h.behaviour.meshPeers(T).map(keyOf)).to.include(keyOf(slow))
    const stream = h.outbound(slow)
    const handed = stream.chunks.length
    expect(handed).to.equal(1)
    const { sha256 } = await import('@noble/hashes/sha2.js')
    const forwarded = new Uint8Array(200).fill(1)
    const asked = new Uint8Array(200).fill(2)
    const ours = new Uint8Array(200).fill(3)
    const kept = new Uint8Array(200).fill(4)
    h.inject(source, { publish: [{ topic: T, data: asked }] })
    h.inject(slow, { control: { iwant: [{ messageIDs: [sha256(asked)] }] } })
    h.inject(source, { publish: [{ topic: T, data: forwarded }] })
    h.inject(source, { publish: [{ topic: T, data: kept }] })
    h.behaviour.publish(T, ours)
    h.drain()
    await h.clock.tickAsync(0)
    expect(stream.chunks.length, 'nothing more is handed to a stream that pushes back').to.equal(handed)
    // slow got the messages from elsewhere meanwhile, and says so.
    h.inject(slow, { control: { idontwant: [{ messageIDs: [sha256(forwarded), sha256(asked), sha256(ours)] }] } })
    h.drain()
    stream.release()
    await h.clock.tickAsync(0)
    const written = collect.messages(stream.rpcs()).map(m => m.data?.[0])
    // Our own message is never held back by IDONTWANT (it concerns messages we pass on).
    expect(written).to.have.members([3, 4])
    // Dropped: the forward of `forwarded`, and of `asked` both its forward and its IWANT answer.
    const frameSize = encodeFrame(encodeRpc({ publish: [{ topic: T, data: forwarded }] })).byteLength
    expect(h.handlerReports(slow)).to.deep.include({ type: 'Unwanted', frames: 3, bytes: 3 * frameSize, echoes: 0 })
    expect(h.behaviour.totals().unwanted).to.equal(3)
    // The other peer, which said nothing, got everything it should.
    expect(collect.messages(h.outbound(other).rpcs()).map(m => m.data?.[0])).to.have.members([1, 2, 3, 4])
  })

  it('sends no copy back to a peer whose own copy arrived in the meantime: a forward queued in the turn is dropped, and one not yet made is not queued', async () => {
    h = Harness.create()
    h.behaviour.subscribe(T)
    const [source, echo, other] = await h.connectMany(3, { topics: [T] })
    h.drain()
    await h.clock.tickAsync(0)
    expect(h.behaviour.meshPeers(T).map(keyOf)).to.have.members([source, echo, other].map(keyOf))
    const data = bytes(7, 7, 7)
    h.inject(source, { publish: [{ topic: T, data }] })
    h.drain()
    // In the same turn, before our forwards leave, echo's copy (a duplicate) arrives.
    h.inject(echo, { publish: [{ topic: T, data }] })
    h.drain()
    await h.clock.tickAsync(0)
    const got = (peer: FakePeer): Array<number | undefined> => collect.messages(h.outbound(peer).rpcs()).map(m => m.data?.[0])
    expect(got(echo)).to.deep.equal([])
    expect(got(other)).to.deep.equal([7])
    const frameSize = encodeFrame(encodeRpc({ publish: [{ topic: T, data }] })).byteLength
    expect(h.handlerReports(echo)).to.deep.include({ type: 'Unwanted', frames: 1, bytes: frameSize, echoes: 1 })
    expect(h.behaviour.totals().echoes).to.equal(1)
    expect(h.behaviour.totals().unwanted, 'no IDONTWANT was involved').to.equal(0)

    // With manual validation a copy can arrive before we forward at all: none is queued for it.
    h.close()
    h = Harness.create({ validateMessagesManually: true })
    h.behaviour.subscribe(T)
    const [a, b, c] = await h.connectMany(3, { topics: [T] })
    h.inject(a, { publish: [{ topic: T, data }] })
    h.inject(b, { publish: [{ topic: T, data }] })
    h.drain()
    const message = h.events.find(e => e.type === 'Message')
    if (message?.type !== 'Message') throw new Error('expected the message')
    h.clearSent()
    expect(h.behaviour.reportMessageValidationResult(message.messageId, a.peerId, 'accept')).to.equal(true)
    expect(collect.messages(h.takeSent(b))).to.deep.equal([])
    expect(collect.messages(h.takeSent(c)).map(m => m.data)).to.deep.equal([data])
    expect(h.behaviour.totals().echoes).to.equal(1)
  })

  it('a queued forward whose peer never says IDONTWANT is written, in order', async () => {
    h = Harness.create({ idontwantMessageThreshold: 100 })
    h.behaviour.subscribe(T)
    const [source] = await h.connectMany(1, { topics: [T] })
    const slow = await h.connect({ topics: [T], stalled: true })
    h.drain()
    await h.clock.tickAsync(0)
    const stream = h.outbound(slow)
    const { sha256 } = await import('@noble/hashes/sha2.js')
    for (let i = 1; i <= 4; i++) h.inject(source, { publish: [{ topic: T, data: new Uint8Array(200).fill(i) }] })
    // An IDONTWANT for something else changes nothing.
    h.inject(slow, { control: { idontwant: [{ messageIDs: [sha256(new Uint8Array(200).fill(9))] }] } })
    h.drain()
    stream.release()
    await h.clock.tickAsync(0)
    expect(collect.messages(stream.rpcs()).map(m => m.data?.[0])).to.deep.equal([1, 2, 3, 4])
    expect(h.behaviour.totals().unwanted).to.equal(0)
  })

  it('forgets an IDONTWANT after idontwantTtlHeartbeats', async () => {
    h = Harness.create({ idontwantTtlHeartbeats: 2 })
    h.behaviour.subscribe(T)
    const [source, peer] = await h.connectMany(2, { topics: [T] })
    const data = bytes(5, 5)
    const { sha256 } = await import('@noble/hashes/sha2.js')
    h.inject(peer, { control: { idontwant: [{ messageIDs: [sha256(data)] }] } })
    h.inject(source, { publish: [{ topic: T, data }] })
    expect(collect.messages(h.takeSent(peer))).to.deep.equal([])
    await h.heartbeats(2)
    h.inject(peer, { control: { iwant: [{ messageIDs: [sha256(data)] }] } })
    expect(collect.messages(h.takeSent(peer))).to.have.length(1)
  })
})

describe('gossipsub peer exchange', () => {
  let h: Harness
  afterEach(() => { h?.close() })

  it('attaches PX with known signed records to PRUNEs of v1.1 peers when doPX is on', async () => {
    h = Harness.create({ doPX: true })
    const peers = await h.connectMany(3, { topics: [T], protocol: V11 })
    const record = await gossipsub.signPeerRecord(peers[1].key, [multiaddr('/ip4/127.0.0.1/tcp/4001')])
    await h.behaviour.addPeerRecord(record)
    h.behaviour.subscribe(T)
    h.clearSent()
    h.behaviour.unsubscribe(T)
    const [prune] = collect.prunes(h.takeSent(peers[0]))
    const named = (prune.peers ?? []).map(p => p.peerID)
    expect(named).to.have.length(2)
    expect(named).to.deep.include(peers[1].peerId.toMultihash().bytes)
    expect(named).to.deep.include(peers[2].peerId.toMultihash().bytes)
    expect(prune.peers?.find(p => p.signedPeerRecord != null)?.signedPeerRecord).to.deep.equal(record)
  })

  it('dials the peers of a received PX, with the addresses their signed records prove; forged records are skipped (39)', async () => {
    h = Harness.create()
    h.behaviour.subscribe(T)
    const pruner = await h.connect({ topics: [T] })
    const honest = await generateKeypair()
    const liar = await generateKeypair()
    const honestRecord = await gossipsub.signPeerRecord(honest, [multiaddr('/ip4/127.0.0.1/tcp/4001')])
    // A record signed by `liar` but put in an entry naming `honest`'s neighbour.
    const forged = await gossipsub.signPeerRecord(liar, [multiaddr('/ip4/127.0.0.1/tcp/4002')])
    const victim = peerIdOf(await generateKeypair())
    h.inject(pruner, {
      control: {
        prune: [{
          topicID: T,
          backoff: 60,
          peers: [
            { peerID: peerIdOf(honest).toMultihash().bytes, signedPeerRecord: honestRecord },
            { peerID: victim.toMultihash().bytes, signedPeerRecord: forged },
            { peerID: bytes(1, 2, 3) }
          ]
        }]
      }
    })
    for (let i = 0; i < 50 && h.dials.length === 0; i++) {
      await h.clock.tickAsync(0)
      await h.realTurn()
      h.drain()
    }
    expect(h.dials.map(d => d.peerId?.toString())).to.deep.equal([peerIdOf(honest).toString()])
    expect(h.dials[0].addresses?.map(a => a.toString())).to.deep.equal(['/ip4/127.0.0.1/tcp/4001'])
  })
})

describe('gossipsub metrics', () => {
  let h: Harness
  afterEach(() => { h?.close() })

  it('reports messages, control and mesh sizes to the sink', async () => {
    const counters = new Map<string, number>()
    const histograms: Array<[string, number, unknown]> = []
    h = Harness.create({
      metrics: {
        increment: (name, value, labels) => {
          const key = `${name}${labels == null ? '' : JSON.stringify(labels)}`
          counters.set(key, (counters.get(key) ?? 0) + value)
        },
        observe: (name, value, labels) => { histograms.push([name, value, labels]) }
      }
    })
    h.behaviour.subscribe(T)
    const [a, b, c] = await h.connectMany(3, { topics: [T] })
    h.behaviour.publish(T, bytes(1))
    h.inject(a, { publish: [{ topic: T, data: bytes(2) }] })
    h.inject(b, { publish: [{ topic: T, data: bytes(2) }] })
    h.behaviour.setValidator(T, () => 'reject')
    h.inject(c, { publish: [{ topic: T, data: bytes(3) }] })
    await h.heartbeats(1)
    expect(Object.fromEntries(counters)).to.deep.include({
      'messages_published{"topic":"topic"}': 1,
      'messages_received{"topic":"topic"}': 1,
      'messages_forwarded{"topic":"topic"}': 2,
      messages_duplicate: 1,
      'messages_invalid{"reason":"ValidationFailed"}': 1,
      'control_sent{"type":"graft"}': 3
    })
    expect(histograms).to.deep.include(['mesh_size', 3, { topic: T }])
    expect(gossipsub.METRICS.counters.control_sent).to.deep.equal(['type'])
  })
})
