/**
 * Kademlia against bad input over real TCP on 127.0.0.1: a victim (`combine({ kad, identify })`)
 * next to an honest peer and an attacker that speaks raw Kademlia (test/fixtures/raw-kad.ts),
 * both as a client (it opens streams and writes what it likes) and as a server the victim asks
 * (it answers what it likes): answers naming thousands of peers, or one peer with thousands of
 * addresses; records for keys never asked; answers nobody asked for; oversized messages; junk;
 * streams opened without end. Each gets a typed error or is ignored, within the bounds of
 * docs/limits.md, and the victim keeps answering the honest peer.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'
import * as varint from 'uint8-varint'
import { SwarmBuilder, combine, identify, kad, peerIdOf } from '../../src/index.js'
import { encodeFrame } from '../../src/behaviour/framing.js'
import { driveUntil, waitFor } from '../../src/testing/index.js'
import { RawKad } from '../fixtures/raw-kad.js'
import { randomPeerId } from '../fixtures/kad-harness.js'
import type { Serve } from '../fixtures/raw-kad.js'
import type { AnyBehaviour, Multiaddr, PeerId, Swarm } from '../../src/index.js'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const frame = (message: kad.Message): Uint8Array => encodeFrame(kad.encodeMessage(message))
type Progress = Extract<kad.Event, { type: 'OutboundQueryProgressed' }>

async function kadNode (options: Partial<kad.Config> = {}) {
  return await SwarmBuilder.withNewIdentity()
    .withTcp()
    .withBehaviour(key => combine({
      kad: new kad.Behaviour(peerIdOf(key), { mode: 'server', periodicBootstrapInterval: null, ...options }),
      identify: new identify.Behaviour(key.publicKey)
    }))
    .withSwarmConfig({ idleConnectionTimeout: 60_000 })
    .build()
}
type KadNode = Awaited<ReturnType<typeof kadNode>>

async function rawNode (serve?: Serve): Promise<Swarm<RawKad>> {
  return await SwarmBuilder.withNewIdentity().withTcp().withBehaviour(() => new RawKad(kad.PROTOCOL, serve)).withSwarmConfig({ idleConnectionTimeout: 60_000 }).build()
}

async function listenTcp (swarm: Swarm<AnyBehaviour>): Promise<Multiaddr> {
  const id = swarm.listenOn('/ip4/127.0.0.1/tcp/0')
  const event = await waitFor(swarm, e => e.type === 'NewListenAddr' && e.listenerId === id)
  if (event.type !== 'NewListenAddr') throw new Error('unreachable')
  return event.address
}

/** Drive `swarms` until query `id` of `owner` ends; its events, and the swarm events of `owner` meanwhile. */
async function runQuery (swarms: ReadonlyArray<Swarm<AnyBehaviour>>, owner: KadNode, id: kad.QueryId, timeout = 20_000): Promise<{ events: Progress[], swarmEvents: unknown[] }> {
  const events: Progress[] = []
  const swarmEvents: unknown[] = []
  let done = false
  const controller = new AbortController()
  const timer = setTimeout(() => { controller.abort() }, timeout)
  try {
    await Promise.all(swarms.map(async swarm => {
      while (!done) {
        let event
        try {
          event = await swarm.selectNextSome({ signal: controller.signal })
        } catch {
          return
        }
        if (swarm !== owner) continue
        swarmEvents.push(event)
        if (event.type !== 'Behaviour') continue
        const tagged = event.event as { behaviour: string, event: kad.Event }
        if (tagged.behaviour !== 'kad' || tagged.event.type !== 'OutboundQueryProgressed' || tagged.event.id !== id) continue
        events.push(tagged.event)
        if (tagged.event.step.last) {
          done = true
          controller.abort()
        }
      }
    }))
  } finally {
    clearTimeout(timer)
  }
  if (!done) throw new Error(`query ${id} did not end within ${timeout} ms`)
  return { events, swarmEvents }
}

const tableOf = (node: KadNode): kad.EntryView[] => [...node.behaviour.kad.kbuckets()].flatMap(b => b.entries)

/** `count` made-up peers, each with `addresses` addresses on a closed port of 127.0.0.1. */
function fakePeers (count: number, addresses = 1): kad.WirePeer[] {
  return Array.from({ length: count }, (_, i) => ({
    id: randomPeerId(),
    addrs: Array.from({ length: addresses }, (__, a) => multiaddr(`/ip4/127.0.0.1/tcp/${1 + ((i + a) % 3)}`)),
    connection: 'NOT_CONNECTED' as const
  }))
}

describe('kad over TCP: bad input', function () {
  this.timeout(120_000)
  const open: Array<Swarm<AnyBehaviour>> = []
  afterEach(async () => { await Promise.all(open.splice(0).map(async s => { await s.close() })) })

  /** A victim and an honest peer that know each other, and an attacker serving `serve`, known to the victim. */
  async function setUp (victimOptions: Partial<kad.Config>, serve?: Serve): Promise<{ victim: KadNode, honest: KadNode, attacker: Swarm<RawKad>, all: Array<Swarm<AnyBehaviour>> }> {
    const victim = await kadNode(victimOptions)
    const honest = await kadNode()
    const attacker = await rawNode(serve)
    open.push(victim, honest, attacker)
    const all = [victim, honest, attacker] as Array<Swarm<AnyBehaviour>>
    const [victimAddr, honestAddr, attackerAddr] = await Promise.all([listenTcp(victim), listenTcp(honest), listenTcp(attacker)])
    victim.behaviour.kad.addAddress(honest.localPeerId, honestAddr)
    honest.behaviour.kad.addAddress(victim.localPeerId, victimAddr)
    if (serve !== undefined) victim.behaviour.kad.addAddress(attacker.localPeerId, attackerAddr)
    attacker.dial({ peerId: victim.localPeerId, addresses: [victimAddr] })
    await driveUntil(all, () => victim.isConnected(attacker.localPeerId))
    return { victim, honest, attacker, all }
  }

  /** The honest peer still gets answers from the victim. */
  async function stillAnswers (all: Array<Swarm<AnyBehaviour>>, honest: KadNode, victim: KadNode): Promise<void> {
    const { events } = await runQuery(all, honest, honest.behaviour.kad.getClosestPeers(bytes('still there')))
    const end = events[events.length - 1]
    expect(end.result.type === 'GetClosestPeers' && end.result.ok?.peers.some(p => p.peerId.equals(victim.localPeerId))).to.equal(true)
  }

  it('answers naming thousands of peers, or a peer with thousands of addresses: decoded up to the bounds, the lookup ends with the honest peers', async () => {
    const many = fakePeers(5_000)
    const crowded = fakePeers(1, 3_000)[0]
    const { victim, honest, attacker, all } = await setUp({ maxPacketSize: 1 << 20 }, request => {
      const message = kad.decodeMessage(request)
      return frame({ type: message.type, key: message.key, closerPeers: [crowded, ...many], providerPeers: [] })
    })
    const { events, swarmEvents } = await runQuery(all, victim, victim.behaviour.kad.getClosestPeers(bytes('target')), 60_000)
    const end = events[events.length - 1]
    if (end.result.type !== 'GetClosestPeers' || end.result.ok === undefined) throw new Error(`the lookup failed: ${String(end.result.error)}`)
    const found = end.result.ok.peers.map(p => p.peerId.toString())
    expect(found).to.include.members([honest.localPeerId.toString(), attacker.localPeerId.toString()])
    expect(found).to.have.length(2) // the made-up peers never answered
    // At most MAX_PEERS_PER_LIST of the 5,001 named were decoded (and each dialed once).
    expect(end.stats.requests).to.be.at.most(2 + kad.MAX_PEERS_PER_LIST)
    expect(end.stats.requests).to.be.above(2)
    // The peer with 3,000 addresses was dialed with at most 16 of them (32 decoded, 16 kept).
    const dialed = swarmEvents.flatMap(e => {
      const event = e as { type: string, peerId?: PeerId, error?: { type?: string, errors?: unknown[] } }
      return event.type === 'OutgoingConnectionError' && event.peerId?.equals(crowded.id) === true ? [event.error?.errors?.length ?? 0] : []
    })
    expect(dialed.length, 'the crowded peer was dialed').to.be.at.least(1)
    for (const tried of dialed) expect(tried).to.be.within(1, kad.MAX_ENTRY_ADDRESSES)
    // Nobody made up entered the routing table; entries keep at most 16 addresses.
    const table = tableOf(victim)
    expect(table.map(e => e.peerId.toString()).sort()).to.deep.equal([honest.localPeerId.toString(), attacker.localPeerId.toString()].sort())
    for (const entry of table) expect(entry.addresses.length).to.be.at.most(kad.MAX_ENTRY_ADDRESSES)
    await stillAnswers(all, honest, victim)
  })

  it('an answer larger than maxPacketSize is refused before it is buffered: that peer fails, the lookup goes on', async () => {
    const { victim, honest, attacker, all } = await setUp({}, request => {
      const message = kad.decodeMessage(request)
      return frame({ type: message.type, key: message.key, closerPeers: fakePeers(2_000), providerPeers: [] })
    })
    const { events } = await runQuery(all, victim, victim.behaviour.kad.getClosestPeers(bytes('target')))
    const end = events[events.length - 1]
    if (end.result.type !== 'GetClosestPeers' || end.result.ok === undefined) throw new Error('the lookup failed')
    expect(end.result.ok.peers.map(p => p.peerId.toString())).to.deep.equal([honest.localPeerId.toString()])
    expect(end.stats.failure).to.equal(1)
    expect(attacker.behaviour.requests).to.be.at.least(1)
    await stillAnswers(all, honest, victim)
  })

  it('records of keys never asked, answers of another type, junk and a second answer nobody asked for are ignored', async () => {
    let mode: 'other-key' | 'other-type' | 'junk' = 'other-key'
    const { victim, honest, attacker, all } = await setUp({}, request => {
      const message = kad.decodeMessage(request)
      if (mode === 'junk') return Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x40, 1, 2])
      if (mode === 'other-type') return frame({ type: 'PUT_VALUE', key: message.key, record: { key: message.key ?? bytes(''), value: bytes('forged') }, closerPeers: [], providerPeers: [] })
      // The record of a key we did not ask, and after the answer a second one nobody asked for.
      return Uint8Array.from([
        ...frame({ type: 'GET_VALUE', key: message.key, record: { key: bytes('/t/never-asked'), value: bytes('forged') }, closerPeers: fakePeers(3), providerPeers: [] }),
        ...frame({ type: 'GET_VALUE', key: message.key, record: { key: message.key ?? bytes(''), value: bytes('forged too') }, closerPeers: [], providerPeers: [] })
      ])
    })
    for (const m of ['other-key', 'other-type', 'junk'] as const) {
      mode = m
      const { events } = await runQuery(all, victim, victim.behaviour.kad.getRecord(bytes('/t/asked')))
      expect(events.filter(e => e.result.type === 'GetRecord' && e.result.ok?.type === 'FoundRecord'), m).to.deep.equal([])
      const end = events[events.length - 1]
      expect(end.result.error, m).to.be.instanceOf(kad.GetRecordError)
      expect(end.result.error?.kind, m).to.equal('NotFound')
      expect(victim.behaviour.kad.store.get(bytes('/t/never-asked')), m).to.equal(undefined)
      expect(victim.behaviour.kad.store.get(bytes('/t/asked')), m).to.equal(undefined)
    }
    expect(tableOf(victim)).to.have.length(2)
    await stillAnswers(all, honest, victim)
  })

  it('requests shaped as answers (peers, records, providers of others) are answered as requests: nothing named enters the table or the store', async () => {
    const { victim, honest, attacker, all } = await setUp({})
    const raw = attacker.behaviour
    const named = fakePeers(50)
    const someoneElse = randomPeerId()
    const sent = [
      raw.send(victim.localPeerId, frame({ type: 'FIND_NODE', key: bytes('k'), closerPeers: named, providerPeers: named })),
      raw.send(victim.localPeerId, frame({ type: 'GET_VALUE', key: bytes('/t/g'), record: { key: bytes('/t/g'), value: bytes('not stored') }, closerPeers: named, providerPeers: [] })),
      // A provider record naming another peer than the sender: dropped.
      raw.send(victim.localPeerId, frame({ type: 'ADD_PROVIDER', key: bytes('content'), closerPeers: [], providerPeers: [{ id: someoneElse, addrs: [multiaddr('/ip4/127.0.0.1/tcp/9')], connection: 'CONNECTED' }] }))
    ]
    await driveUntil(all, () => sent.every(id => raw.answers.has(id)))
    const answered = raw.answers.get(sent[0])?.bytes ?? new Uint8Array(0)
    const answer = kad.decodeMessage(answered.subarray(varint.encodingLength(varint.decode(answered))))
    expect(answer.type).to.equal('FIND_NODE')
    expect(answer.closerPeers.map(p => p.id.toString())).to.deep.equal([honest.localPeerId.toString()])
    const names = new Set(named.map(p => p.id.toString()))
    expect(tableOf(victim).filter(e => names.has(e.peerId.toString()))).to.deep.equal([])
    expect(victim.behaviour.kad.store.get(bytes('/t/g'))).to.equal(undefined)
    expect(victim.behaviour.kad.store.providers(bytes('content'))).to.deep.equal([])
    await stillAnswers(all, honest, victim)
  })

  it('oversized requests and junk: each stream reset, the connection kept; streams opened without end: at most maxInboundStreams served', async () => {
    const idle = 10_000
    const { victim, honest, attacker, all } = await setUp({ maxInboundStreams: 8, substreamsTimeout: idle })
    const raw = attacker.behaviour
    const oversized = raw.send(victim.localPeerId, encodeFrame(new Uint8Array(20 * 1024)))
    const huge = raw.send(victim.localPeerId, Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f])) // announces 4 GiB
    const junk = raw.send(victim.localPeerId, encodeFrame(Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3])))
    const valid = raw.send(victim.localPeerId, frame({ type: 'FIND_NODE', key: bytes('k'), closerPeers: [], providerPeers: [] }))
    await driveUntil(all, () => [oversized, huge, junk, valid].every(id => raw.answers.has(id)))
    for (const id of [oversized, huge, junk]) expect(raw.answers.get(id)?.error, `stream ${id}`).to.be.instanceOf(Error)
    expect(raw.answers.get(valid)?.error).to.equal(undefined)
    expect(victim.isConnected(attacker.localPeerId)).to.equal(true)

    // 300 streams that send one byte of a length prefix and never end: 8 are served (and wait
    // for the rest of their request), the others are reset at once.
    const started = performance.now()
    const held = Array.from({ length: 300 }, () => raw.send(victim.localPeerId, new Uint8Array([5]), true))
    await driveUntil(all, () => held.filter(id => raw.answers.has(id)).length >= 300 - 8, { timeout: idle })
    expect(performance.now() - started, 'the surplus was reset before the served ones timed out').to.be.below(idle)
    expect(held.filter(id => !raw.answers.has(id))).to.have.length(8)
    await stillAnswers(all, honest, victim)
    // The served ones are reset at the idle limit, not before.
    await driveUntil(all, () => held.every(id => raw.answers.has(id)), { timeout: 3 * idle })
    expect(performance.now() - started).to.be.at.least(idle)
    await stillAnswers(all, honest, victim)
  })
})
