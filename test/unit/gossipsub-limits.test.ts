/**
 * GossipSub's resource bounds, each hit on purpose (docs/limits.md lists them all): what a
 * peer can make us hold is capped, and going over the cap costs only that peer.
 */
import { createHash } from 'node:crypto'
import { expect } from 'chai'
import { gossipsub } from '../../src/index.js'
import { collect, Harness, keyOf } from '../fixtures/gossipsub-harness.js'
import { MessageAuthor } from '../../src/protocols/pubsub/authenticity.js'

const T = 'topic'

describe('GossipSub limits', () => {
  let h: Harness
  afterEach(() => { h.close() })

  it('maxTopicsPerPeer: subscriptions beyond it are ignored; the topics it already has still work', async () => {
    h = Harness.create({ maxTopicsPerPeer: 10 })
    h.behaviour.subscribe(T)
    const [peer] = await h.connectMany(1, { topics: [T] })
    h.inject(peer, { subscriptions: Array.from({ length: 100 }, (_, i) => ({ subscribe: true, topicid: `spam-${i}` })) })
    const known = h.behaviour.allPeers().find(p => p.peerId.equals(peer.peerId))
    expect(known?.topics).to.have.length(10)
    expect(known?.topics).to.include(T)
    expect(h.behaviour.subscribers(T).map(keyOf)).to.deep.equal([keyOf(peer)])
  })

  it('maxIDontWantIds: IDONTWANT ids beyond it in one heartbeat are not recorded (the message is still sent)', async () => {
    h = Harness.create({ maxIDontWantIds: 5, idontwantMessageThreshold: 1 })
    h.behaviour.subscribe(T)
    const [source, peer] = await h.connectMany(2, { topics: [T] })
    await h.heartbeats(1)
    // Messages whose ids the peer announces: the first five are honoured, the rest not.
    const author = new MessageAuthor(gossipsub.MessageAuthenticity.anonymous())
    const raws = await Promise.all(Array.from({ length: 8 }, async (_, i) => author.build(T, new Uint8Array([i, 1, 2]), BigInt(i)).complete))
    // Unsigned messages are identified by the SHA-256 of their data.
    const ids = raws.map(raw => createHash('sha256').update(raw.data as Uint8Array).digest())
    h.inject(peer, { control: { idontwant: [{ messageIDs: ids }] } })
    h.clearSent()
    for (const raw of raws) h.inject(source, { publish: [raw] })
    expect(collect.messages(h.takeSent(peer))).to.have.length(3)
  })

  it('maxIDontWantBytes: IDONTWANT ids past the byte budget of a heartbeat are not recorded, a long one is skipped; the budget comes back at the heartbeat', async () => {
    // Ids of unsigned messages are 32 bytes: a budget of 100 takes three of them.
    h = Harness.create({ maxIDontWantBytes: 100, idontwantMessageThreshold: 1 })
    h.behaviour.subscribe(T)
    const [source, peer] = await h.connectMany(2, { topics: [T] })
    await h.heartbeats(1)
    const author = new MessageAuthor(gossipsub.MessageAuthenticity.anonymous())
    const raws = await Promise.all(Array.from({ length: 12 }, async (_, i) => author.build(T, new Uint8Array([i, 7, 7]), BigInt(i)).complete))
    const ids = raws.map(raw => createHash('sha256').update(raw.data as Uint8Array).digest())
    // A 100 KB id first: over the budget alone, skipped; then ids 0–7, of which 0–2 fit.
    h.inject(peer, { control: { idontwant: [{ messageIDs: [new Uint8Array(100_000), ...ids.slice(0, 8)] }] } })
    h.clearSent()
    for (const raw of raws.slice(0, 8)) h.inject(source, { publish: [raw] })
    expect(collect.messages(h.takeSent(peer)).map(m => m.data?.[0])).to.deep.equal([3, 4, 5, 6, 7])
    // The next heartbeat gives a new budget: ids 8–10 are honoured, 11 not.
    await h.heartbeats(1)
    h.inject(peer, { control: { idontwant: [{ messageIDs: ids.slice(8) }] } })
    h.clearSent()
    for (const raw of raws.slice(8)) h.inject(source, { publish: [raw] })
    expect(collect.messages(h.takeSent(peer)).map(m => m.data?.[0])).to.deep.equal([11])
  })

  it('maxIHaveBytes: ids asked by IWANT per heartbeat stay within the byte budget; a long id is never asked for', async () => {
    h = Harness.create({ maxIHaveBytes: 30 })
    h.behaviour.subscribe(T)
    const peer = await h.connect({ topics: [T] })
    h.clearSent()
    const short = Array.from({ length: 20 }, (_, i) => new Uint8Array([i, 1, 2]))
    const long = new Uint8Array(50_000).fill(9)
    h.inject(peer, { control: { ihave: [{ topicID: T, messageIDs: [long, ...short.slice(0, 12)] }] } })
    h.inject(peer, { control: { ihave: [{ topicID: T, messageIDs: short.slice(12) }] } })
    const asked = collect.iwants(h.takeSent(peer))
    // Ten ids of 3 bytes fill the 30 bytes; the long id and the rest are not asked for.
    expect(asked).to.have.length(10)
    expect(asked.every(id => id.byteLength === 3 && id[0] < 12)).to.equal(true)
    await h.heartbeats(1)
    h.clearSent()
    h.inject(peer, { control: { ihave: [{ topicID: T, messageIDs: short.slice(12) }] } })
    expect(collect.iwants(h.takeSent(peer))).to.have.length(8)
  })

  it('maxPendingValidations: with manual validation, the oldest held message is dropped past the bound', async () => {
    h = Harness.create({ validateMessagesManually: true, maxPendingValidations: 4 })
    h.behaviour.subscribe(T)
    const [source, other] = await h.connectMany(2, { topics: [T] })
    await h.heartbeats(1)
    const author = new MessageAuthor(gossipsub.MessageAuthenticity.anonymous())
    for (let i = 0; i < 6; i++) h.inject(source, { publish: [await author.build(T, new Uint8Array([i]), BigInt(i)).complete] })
    h.drain()
    const held = h.events.flatMap(e => e.type === 'Message' ? [e.messageId] : [])
    expect(held).to.have.length(6)
    h.clearSent()
    // The two oldest were dropped: accepting them forwards nothing; the four others go out.
    const accepted = held.map(id => h.behaviour.reportMessageValidationResult(id, source.peerId, 'accept'))
    expect(accepted).to.deep.equal([false, false, true, true, true, true])
    expect(collect.messages(h.takeSent(other))).to.have.length(4)
  })

  it('maxPendingValidations: asynchronous validations past the bound are not waited for; those messages are ignored', async () => {
    h = Harness.create({ maxPendingValidations: 3 })
    h.behaviour.subscribe(T)
    const [spammer, other] = await h.connectMany(2, { topics: [T] })
    await h.heartbeats(1)
    const pending: Array<() => void> = []
    h.behaviour.setValidator(T, async () => await new Promise<'accept'>(resolve => { pending.push(() => { resolve('accept') }) }))
    const author = new MessageAuthor(gossipsub.MessageAuthenticity.anonymous())
    const raws = await Promise.all(Array.from({ length: 5 }, async (_, i) => author.build(T, new Uint8Array([i, 9]), BigInt(i)).complete))
    h.clearSent()
    for (const raw of raws) h.inject(spammer, { publish: [raw] })
    // Five validations started, but only three are waited for: the last two were ignored at
    // once, whatever their validators say later.
    expect(pending).to.have.length(5)
    for (const resolve of pending.splice(0)) resolve()
    await h.clock.tickAsync(0)
    h.drain()
    expect(collect.messages(h.takeSent(other)).map(m => m.data?.[0])).to.deep.equal([0, 1, 2])
    expect(h.events.filter(e => e.type === 'Message')).to.have.length(3)
    // The two turned away were not recorded as seen: an honest peer's later copy is judged and
    // delivered, not dropped as a duplicate.
    h.inject(other, { publish: [raws[3]] })
    expect(pending).to.have.length(1)
    for (const resolve of pending.splice(0)) resolve()
    await h.clock.tickAsync(0)
    h.drain()
    const delivered = h.events.flatMap(e => e.type === 'Message' ? [e.message.data[0]] : [])
    expect(delivered).to.deep.equal([0, 1, 2, 3])
  })
})
