/**
 * Attacks on a scoring GossipSub node over TCP on 127.0.0.1, in the spirit of
 * go-libp2p-pubsub's attack tests. The attacker is a raw pubsub peer (test/fixtures/
 * raw-pubsub.ts) that sends whatever RPC the test hands it; the victim `a` also talks to an
 * honest node `b`, whose deliveries must not suffer.
 */
import { expect } from 'chai'
import { SwarmBuilder, combine, gossipsub } from '../../src/index.js'
import { EventLog, addressOf, until } from '../fixtures/event-log.js'
import { attackScoring, meshedPair } from '../fixtures/under-attack.js'
import { RawPubsub } from '../fixtures/raw-pubsub.js'
import type { Rpc } from '../../src/protocols/pubsub/rpc.js'

const TOPIC = 'attack'

const scoring = attackScoring(TOPIC)

async function honest (options: Partial<gossipsub.Options> = {}) {
  const swarm = await SwarmBuilder.withNewIdentity().withTcp()
    .withBehaviour(key => combine({ gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), ...scoring, ...options }) }))
    .build()
  swarm.behaviour.gossipsub.subscribe(TOPIC)
  swarm.listenOn('/ip4/127.0.0.1/tcp/0')
  return new EventLog(swarm)
}

async function attacker () {
  const swarm = await SwarmBuilder.withNewIdentity().withTcp().withBehaviour(() => new RawPubsub()).build()
  return new EventLog(swarm)
}

type Node = Awaited<ReturnType<typeof honest>>
type Attacker = Awaited<ReturnType<typeof attacker>>

const delivered = (node: Node): string[] => node.events.flatMap(e => e.type === 'Behaviour' && e.event.event.type === 'Message'
  ? [new TextDecoder().decode(e.event.event.message.data)]
  : [])

/** The raw peer joins the topic on `victim` and waits until the victim knows. */
async function join (m: Attacker, victim: Node): Promise<void> {
  m.swarm.dial(await addressOf(victim))
  await m.find(e => e.type === 'Behaviour' && e.event.type === 'Ready')
  m.swarm.behaviour.send(victim.swarm.localPeerId, { subscriptions: [{ subscribe: true, topicid: TOPIC }] })
  await until(() => victim.swarm.behaviour.gossipsub.subscribers(TOPIC).some(p => p.equals(m.swarm.localPeerId)), 5_000, 'the subscription')
}

describe('gossipsub under attack (127.0.0.1)', function () {
  this.timeout(30_000)
  const closing: Array<{ close: () => Promise<void> }> = []
  afterEach(async () => { await Promise.all(closing.splice(0).map(async n => { await n.close() })) })

  async function victimAndHonest () {
    const { a, b } = await meshedPair(async () => await honest(), TOPIC, closing)
    const m = await attacker()
    closing.push(m)
    await join(m, a)
    return { a, b, m }
  }

  it('a peer spamming forged messages is graylisted and ignored, while honest delivery stays complete', async () => {
    const { a, b, m } = await victimAndHonest()
    const mId = m.swarm.localPeerId
    for (let i = 0; i < 1_000; i++) {
      const seqno = new Uint8Array(8)
      new DataView(seqno.buffer).setUint32(4, i)
      m.swarm.behaviour.send(a.swarm.localPeerId, { publish: [{ topic: TOPIC, from: mId.toMultihash().bytes, seqno, data: new Uint8Array([i & 0xff]), signature: new Uint8Array(64) }] })
      if (i % 10 === 0) b.swarm.behaviour.gossipsub.publish(TOPIC, new TextEncoder().encode(`honest ${i / 10}`))
    }
    await until(() => delivered(a).length === 100, 15_000, 'every honest message at a')
    expect(new Set(delivered(a)).size).to.equal(100)
    const score = a.swarm.behaviour.gossipsub.peerScore(mId) ?? 0
    expect(score).to.be.below(-80)
    // Once graylisted, its RPCs are dropped before their messages are looked at.
    const invalid = a.events.filter(e => e.type === 'Behaviour' && e.event.event.type === 'InvalidMessage').length
    expect(invalid).to.be.at.least(1).and.below(50)
  })

  it('a graylisted peer is not read until its score is back: what it sends meanwhile (a subscription) is handled only then', async () => {
    const { a, b, m } = await victimAndHonest()
    const mId = m.swarm.localPeerId
    a.swarm.behaviour.gossipsub.setApplicationScore(mId, -1_000)
    expect(a.swarm.behaviour.gossipsub.peerScore(mId)).to.be.below(-80)
    const honestRound = async (label: string): Promise<void> => {
      await new Promise(resolve => setTimeout(resolve, 500))
      b.swarm.behaviour.gossipsub.publish(TOPIC, new TextEncoder().encode(label))
      await until(() => delivered(a).includes(label), 5_000, `the honest message "${label}"`)
    }
    const sees = (topic: string): boolean => a.swarm.behaviour.gossipsub.subscribers(topic).some(p => p.equals(mId))
    // The first RPC it sends while graylisted: its subscriptions are still heard, the rest is
    // ignored, and its stream is paused from then on.
    m.swarm.behaviour.send(a.swarm.localPeerId, { subscriptions: [{ subscribe: true, topicid: 'first' }] })
    await until(() => sees('first'), 5_000, 'the first subscription')
    await honestRound('after the first RPC')
    m.swarm.behaviour.send(a.swarm.localPeerId, { subscriptions: [{ subscribe: true, topicid: 'later' }] })
    // Honest traffic still flows through a for a second and a half (heartbeats of 200 ms), and
    // the later subscription is not heard: before, a graylisted peer's were heard at once.
    for (let i = 0; i < 3; i++) {
      await honestRound(`while held ${i}`)
      expect(sees('later')).to.equal(false)
    }
    // Its score back above the threshold, a heartbeat reads it again.
    a.swarm.behaviour.gossipsub.setApplicationScore(mId, 0)
    await until(() => sees('later'), 5_000, 'the later subscription, once the peer is read again')
  })

  it('a peer asking again and again for one message gets it at most gossipRetransmission times', async () => {
    const { a, b, m } = await victimAndHonest()
    b.swarm.behaviour.gossipsub.publish(TOPIC, new TextEncoder().encode('wanted'))
    const original = await m.find(e => e.type === 'Behaviour' && e.event.type === 'Rpc' && (e.event.rpc.publish?.length ?? 0) > 0)
    if (original.type !== 'Behaviour' || original.event.type !== 'Rpc') throw new Error('unreachable')
    const raw = original.event.rpc.publish?.[0]
    if (raw?.from == null || raw.seqno == null) throw new Error('no author fields')
    const id = new Uint8Array([...raw.from, ...raw.seqno])
    const copies = (): number => m.swarm.behaviour.from(a.swarm.localPeerId).flatMap(r => r.publish ?? []).filter(p => p.seqno != null && Buffer.from(p.seqno).equals(Buffer.from(raw.seqno as Uint8Array))).length
    for (let i = 0; i < 10; i++) m.swarm.behaviour.send(a.swarm.localPeerId, { control: { iwant: [{ messageIDs: [id] }] } })
    await until(() => a.swarm.behaviour.gossipsub.controlCounters().iwantReceived === 10, 5_000, 'the IWANTs at a')
    // A message forwarded after a handled them leaves behind every answer (same stream, same
    // priority): once it arrives, nothing more will.
    b.swarm.behaviour.gossipsub.publish(TOPIC, new TextEncoder().encode('after'))
    await m.find(e => e.type === 'Behaviour' && e.event.type === 'Rpc' && e.event.rpc.publish?.some(p => new TextDecoder().decode(p.data) === 'after') === true)
    expect(copies()).to.equal(4)
  })

  it('a peer that GRAFTs during its backoff is penalised and pruned', async () => {
    const { a, m } = await victimAndHonest()
    const mId = m.swarm.localPeerId
    m.swarm.behaviour.send(a.swarm.localPeerId, { control: { prune: [{ topicID: TOPIC, backoff: 60 }] } })
    m.swarm.behaviour.send(a.swarm.localPeerId, { control: { graft: [{ topicID: TOPIC }] } })
    await m.find(e => e.type === 'Behaviour' && e.event.type === 'Rpc' && (e.event.rpc.control?.prune?.length ?? 0) > 0)
    await until(() => (a.swarm.behaviour.gossipsub.peerScoreBreakdown(mId)?.p7 ?? 0) < 0, 5_000, 'the penalty')
    expect(a.swarm.behaviour.gossipsub.meshPeers(TOPIC).some(p => p.equals(mId))).to.equal(false)
  })

  it('a peer that advertises by IHAVE and never delivers is penalised', async () => {
    const { a, m } = await victimAndHonest()
    const mId = m.swarm.localPeerId
    const fake: Rpc = { control: { ihave: [{ topicID: TOPIC, messageIDs: [1, 2, 3].map(i => new Uint8Array([i, i, i])) }] } }
    m.swarm.behaviour.send(a.swarm.localPeerId, fake)
    await m.find(e => e.type === 'Behaviour' && e.event.type === 'Rpc' && (e.event.rpc.control?.iwant?.length ?? 0) > 0)
    await until(() => (a.swarm.behaviour.gossipsub.peerScoreBreakdown(mId)?.p7 ?? 0) < 0, 5_000, 'the broken-promise penalty')
  })

  it('a peer that stops reading does not slow the others down, and its queue stays bounded', async function () {
    this.timeout(60_000)
    const a = await honest({ maxQueuedBytes: 1024 * 1024 })
    const b = await honest()
    closing.push(a, b)
    b.swarm.dial(await addressOf(a))
    await until(() => a.swarm.behaviour.gossipsub.meshPeers(TOPIC).length === 1, 5_000, 'the mesh a–b')
    // The slow peer: connected and subscribed, then never driven again, so it reads nothing.
    const slow = await SwarmBuilder.withNewIdentity().withTcp().withBehaviour(() => new RawPubsub()).build()
    const driving = new AbortController()
    const loop = (async () => { try { for (;;) await slow.selectNextSome({ signal: driving.signal }) } catch {} })()
    slow.dial(await addressOf(a))
    await until(() => a.swarm.behaviour.gossipsub.allPeers().some(p => p.peerId.equals(slow.localPeerId)), 5_000, 'the slow peer')
    await until(() => { try { slow.behaviour.send(a.swarm.localPeerId, { subscriptions: [{ subscribe: true, topicid: TOPIC }] }); return true } catch { return false } }, 5_000, 'the slow peer\'s stream')
    await until(() => a.swarm.behaviour.gossipsub.subscribers(TOPIC).length === 2, 5_000, 'its subscription')
    driving.abort()
    await loop
    closing.push({ close: async () => { await slow.close() } })

    // 1,500 messages of 16 KiB (24 MB), in batches as fast as b takes them: more than the
    // slow peer can swallow before back-pressure reaches a (what it read before it stopped,
    // its Yamux window, which auto-tunes up to `maxStreamWindow`, 4 MiB, and a's queue of 1 MiB).
    const payload = new Uint8Array(16 * 1024)
    const started = Date.now()
    // Batches of 50 (800 KiB) stay within a's queue for b (1 MiB).
    for (let batch = 0; batch < 30; batch++) {
      for (let i = batch * 50; i < batch * 50 + 50; i++) {
        payload[0] = i & 0xff
        payload[1] = i >> 8
        a.swarm.behaviour.gossipsub.publish(TOPIC, payload.slice())
      }
      await until(() => delivered(b).length === batch * 50 + 50, 10_000, `batch ${batch} at b`)
    }
    const elapsed = Date.now() - started
    const slowPeerEvents = (): Array<{ peerId: { equals: (p: unknown) => boolean } }> => a.events.flatMap(e => e.type === 'Behaviour' && e.event.event.type === 'SlowPeer' ? [e.event.event] : [])
    await until(() => slowPeerEvents().length > 0, 5_000, 'a SlowPeer report')
    expect(slowPeerEvents().every(e => e.peerId.equals(slow.localPeerId))).to.equal(true)
    expect(elapsed).to.be.below(25_000)
  })
})
