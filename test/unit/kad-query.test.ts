/**
 * Kademlia's queries without sockets, as rust-libp2p's kad tests: the iterative lookup as a
 * pure state machine, then the behaviour against a network of fake peers with fake time (see
 * test/fixtures/kad-harness.ts): every query kind, quorum, timeouts, peers that answer garbage
 * or nothing, republication and replication, mode switching and automatic insertion.
 */
import FakeTimers from '@sinonjs/fake-timers'
import { expect } from 'chai'
import { multiaddr } from '@multiformats/multiaddr'
import { kad, newConnectionId, newListenerId } from '../../src/index.js'
import { ClosestPeersIter } from '../../src/protocols/kad/query.js'
import { compareDistance, keyOf, keyOfPeer } from '../../src/protocols/kad/kbucket.js'
import { KadHarness, randomPeerId } from '../fixtures/kad-harness.js'
import type { PeerId } from '../../src/index.js'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const ids = (peers: readonly PeerId[]): string[] => peers.map(p => p.toString()).sort()

describe('kad: the iterative lookup (ClosestPeersIter)', () => {
  const target = keyOf(bytes('target')).hash
  const peers = Array.from({ length: 60 }, () => keyOfPeer(randomPeerId())).sort((a, b) => compareDistance(target, a.hash, b.hash))

  it('asks α peers at a time, closest first, and ends once the k closest answered', () => {
    // Start from the 10 farthest; each answer names the 3 next closer ones.
    const start = peers.slice(-10)
    const iter = new ClosestPeersIter(target, start, { parallelism: 3, numResults: 5, peerTimeout: 10_000 })
    let now = 0
    let maxWaiting = 0
    for (let round = 0; round < 200 && !iter.finished; round++) {
      const asked = []
      for (let state = iter.next(now); state.type === 'Waiting'; state = iter.next(now)) asked.push(state.peer)
      maxWaiting = Math.max(maxWaiting, iter.numWaiting)
      for (const peer of asked) {
        const at = peers.findIndex(p => p.id === peer.id)
        iter.onSuccess(peer.peerId, peers.slice(Math.max(0, at - 3), at))
      }
      now += 10
    }
    expect(iter.finished).to.equal(true)
    expect(iter.result().map(k => k.id)).to.deep.equal(peers.slice(0, 5).map(k => k.id))
    expect(maxWaiting).to.be.at.most(5)
  })

  it('has at most α requests in flight while it makes progress', () => {
    const iter = new ClosestPeersIter(target, peers.slice(0, 20), { parallelism: 3, numResults: 20, peerTimeout: 10_000 })
    const asked = []
    for (let state = iter.next(0); state.type === 'Waiting'; state = iter.next(0)) asked.push(state.peer)
    expect(asked.map(k => k.id)).to.deep.equal(peers.slice(0, 3).map(k => k.id))
    expect(iter.next(0).type).to.equal('AtCapacity')
  })

  it('stops counting a peer that does not answer in time, and leaves out peers that failed', () => {
    const iter = new ClosestPeersIter(target, peers.slice(0, 4), { parallelism: 2, numResults: 4, peerTimeout: 1_000 })
    const first = iter.next(0)
    const second = iter.next(0)
    if (first.type !== 'Waiting' || second.type !== 'Waiting') throw new Error('expected two requests')
    expect(iter.next(999).type).to.equal('AtCapacity')
    // At 1 s both are unresponsive (they no longer count against α): two more are asked.
    const third = iter.next(1_000)
    const fourth = iter.next(1_000)
    if (third.type !== 'Waiting' || fourth.type !== 'Waiting') throw new Error('expected two more requests')
    iter.onFailure(third.peer.peerId)
    iter.onSuccess(fourth.peer.peerId, [])
    // A late answer of an unresponsive peer still counts.
    iter.onSuccess(first.peer.peerId, [])
    expect(iter.next(2_000).type).to.equal('Finished')
    expect(iter.result().map(k => k.id)).to.deep.equal([first.peer.id, fourth.peer.id])
  })

  it('ends when nothing is left to ask; keeps a bounded number of candidates whatever the answers', () => {
    const iter = new ClosestPeersIter(target, peers.slice(0, 1), { parallelism: 3, numResults: 20, peerTimeout: 1_000, maxCandidates: 40 })
    const state = iter.next(0)
    if (state.type !== 'Waiting') throw new Error('expected a request')
    const flood = Array.from({ length: 5_000 }, () => keyOfPeer(randomPeerId()))
    iter.onSuccess(state.peer.peerId, flood)
    let asked = 0
    for (let s = iter.next(0); s.type === 'Waiting'; s = iter.next(0)) {
      asked++
      iter.onFailure(s.peer.peerId)
    }
    expect(asked).to.be.at.most(40)
    expect(iter.next(0).type).to.equal('Finished')
    expect(iter.result()).to.have.length(1)
  })
})

/** Peers of our routing table closer to `key` than we are. */
function closerInTable (h: KadHarness, key: Uint8Array): number {
  const target = keyOf(key).hash
  const local = keyOfPeer(h.local).hash
  return h.behaviour.closestLocalPeers(key, 10_000).filter(p => compareDistance(target, keyOfPeer(p.peerId).hash, local) < 0).length
}

/** The first key `/v/<i>` for which `accept(peers of our table closer to it than we are)` holds. */
function keyWhere (h: KadHarness, accept: (closer: number) => boolean): Uint8Array {
  for (let i = 0; i < 100_000; i++) {
    const key = bytes(`/v/${i}`)
    if (accept(closerInTable(h, key))) return key
  }
  throw new Error('no such key among 100,000')
}

describe('kad: the behaviour against fake peers', function () {
  this.timeout(60_000)
  let clock: ReturnType<typeof FakeTimers.install>
  let h: KadHarness

  beforeEach(() => { clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'], now: 1_000_000 }) })
  afterEach(() => {
    h?.close()
    clock.uninstall()
  })

  /** A harness with `n` honest peers, tables filled, and `seeds` of them in our table. */
  function network (n: number, seeds = 5, options: Partial<kad.Config> = {}): KadHarness {
    h = new KadHarness(options)
    const peers = h.addPeers(n)
    h.fillTables()
    for (const peer of peers.slice(0, seeds)) expect(h.behaviour.addAddress(peer.peerId, peer.address)).to.equal('Success')
    return h
  }

  it('getClosestPeers finds the true k closest, with their addresses, asking α at first', () => {
    network(300)
    const key = bytes('some key')
    const id = h.behaviour.getClosestPeers(key)
    h.pump()
    expect(h.inFlight).to.have.length(3)
    h.settle()
    const outcome = h.outcome(id)
    if (outcome?.result.type !== 'GetClosestPeers' || outcome.result.ok === undefined) throw new Error(`no result: ${String(outcome?.result.error)}`)
    expect(ids(outcome.result.ok.peers.map(p => p.peerId))).to.deep.equal(ids(h.trueClosest(key)))
    for (const p of outcome.result.ok.peers) expect(p.addresses.map(String)).to.deep.equal([h.peers.get(p.peerId.toString())?.address.toString()])
    const { stats } = outcome
    expect(stats.requests).to.equal(stats.success + stats.failure + stats.pending)
    expect(stats.success).to.be.at.least(20)
    expect(outcome.step).to.deep.equal({ count: 1, last: true })
  })

  it('accepts a peer id as the key and never lists us', () => {
    network(100)
    const target = [...h.peers.values()][50].peerId
    const id = h.behaviour.getClosestPeers(target)
    h.settle()
    const ok = h.outcome(id)?.result.ok as kad.GetClosestPeersOk
    expect(ok.peers[0].peerId.equals(target)).to.equal(true)
    expect(ok.peers.some(p => p.peerId.equals(h.local))).to.equal(false)
  })

  it('gets past peers that answer nothing (after the 10 s peer timeout), garbage, or lies, and leaves them out', () => {
    network(200, 8)
    const key = bytes('hard key')
    const truth = h.trueClosest(key, 40)
    // Among the 40 closest: silent, garbage and lying peers.
    truth.slice(0, 4).forEach(p => { (h.peers.get(p.toString()) as { behaviour: string }).behaviour = 'silent' })
    truth.slice(4, 8).forEach(p => { (h.peers.get(p.toString()) as { behaviour: string }).behaviour = 'garbage' })
    truth.slice(8, 10).forEach(p => { (h.peers.get(p.toString()) as { behaviour: string }).behaviour = 'liar' })
    const id = h.behaviour.getClosestPeers(key)
    for (let i = 0; i < 20 && h.outcome(id) === undefined; i++) {
      h.settle()
      clock.tick(10_000)
      h.pump()
    }
    const outcome = h.outcome(id)
    const ok = outcome?.result.ok as kad.GetClosestPeersOk
    // Liars answered (with peers that do not exist): they are in; the silent and the garbage are
    // out. Every answer names the 20 closest, so the rest of the result is what else the lookup
    // met (our seeds; honest peers never name the 21st closest and beyond).
    const got = new Set(ok.peers.map(p => p.peerId.toString()))
    expect(got.size).to.be.within(13, 20)
    for (const p of truth.slice(8, 21)) expect(got.has(p.toString())).to.equal(true)
    for (const p of truth.slice(0, 8)) expect(got.has(p.toString())).to.equal(false)
    expect((outcome?.stats.duration ?? 0)).to.be.at.least(10_000)
    expect(outcome?.stats.failure).to.be.at.least(4)
  })

  it('times out after queryTimeout with the peers found so far', () => {
    network(50, 5)
    for (const peer of h.peers.values()) peer.behaviour = 'silent'
    const first = [...h.peers.values()][0]
    first.behaviour = 'honest'
    const id = h.behaviour.getClosestPeers(bytes('k'))
    for (let i = 0; i < 70 && h.outcome(id) === undefined; i++) {
      h.settle()
      clock.tick(1_000)
      h.pump()
    }
    const outcome = h.outcome(id)
    expect(outcome?.result.error).to.be.instanceOf(kad.GetClosestPeersError)
    const error = outcome?.result.error as kad.GetClosestPeersError
    expect(error.kind).to.equal('Timeout')
    expect(error.peers.map(p => p.peerId.toString())).to.deep.equal([first.peerId.toString()])
    expect(outcome?.stats.duration).to.be.at.least(60_000)
  })

  it('bootstrap refuses an empty table, then looks up our id and refreshes farther buckets, one event each', () => {
    h = new KadHarness()
    expect(() => h.behaviour.bootstrap()).to.throw(kad.NoKnownPeersError)
    const peers = h.addPeers(200)
    h.fillTables()
    h.behaviour.addAddress(peers[0].peerId, peers[0].address)
    const id = h.behaviour.bootstrap()
    h.settle()
    const steps = h.progressOf(id)
    expect(steps.length).to.be.at.least(2)
    expect(steps.map(s => s.step.count)).to.deep.equal(steps.map((_, i) => i + 1))
    expect(steps.filter(s => s.step.last)).to.have.length(1)
    expect(steps.at(-1)?.step.last).to.equal(true)
    expect((steps[0].result.ok as kad.BootstrapOk).peer.equals(h.local)).to.equal(true)
    expect((steps.at(-1)?.result.ok as kad.BootstrapOk).numRemaining).to.equal(0)
    // Our 20 closest are now in the table.
    const table = [...h.behaviour.kbuckets()].flatMap(b => b.entries.map(e => e.peerId))
    const closest = h.trueClosest(h.local.toMultihash().bytes)
    expect(closest.every(p => table.some(q => q.equals(p)))).to.equal(true)
  })

  it('bootstraps by itself shortly after a peer enters a thin table, and periodically', () => {
    h = new KadHarness({ periodicBootstrapInterval: 300_000 })
    const peers = h.addPeers(50)
    h.fillTables()
    h.behaviour.addAddress(peers[0].peerId, peers[0].address)
    h.pump()
    clock.tick(500)
    h.settle()
    const bootstraps = (): number => h.events.filter(e => e.type === 'OutboundQueryProgressed' && e.result.type === 'Bootstrap' && e.step.last).length
    expect(bootstraps()).to.equal(1)
    clock.tick(300_000)
    h.settle()
    expect(bootstraps()).to.equal(2)
  })

  it('putRecord stores here and at the k closest, meeting the quorum; QuorumFailed keeps the peers that stored it', () => {
    network(200)
    const key = bytes('/v/record')
    const id = h.behaviour.putRecord({ key, value: bytes('hello') }, 'all')
    expect(h.behaviour.store.get(key)?.publisher?.equals(h.local)).to.equal(true)
    h.settle()
    expect(h.outcome(id)?.result).to.deep.include({ type: 'PutRecord' })
    expect((h.outcome(id)?.result.ok as kad.PutRecordOk).key).to.deep.equal(key)
    const holders = [...h.peers.values()].filter(p => p.records.has(Buffer.from(key).toString('hex')))
    expect(ids(holders.map(p => p.peerId))).to.deep.equal(ids(h.trueClosest(key)))

    // Now 5 of the closest refuse the put (their streams fail): 'all' cannot be met, 15 of 20 can.
    const key2 = bytes('/v/other')
    h.trueClosest(key2).slice(0, 5).forEach(p => { h.peers.get(p.toString())?.received.push('PING') })
    const failing = new Set(h.trueClosest(key2).slice(0, 5).map(String))
    const put = (quorum: kad.Quorum): kad.QueryId => {
      const qid = h.behaviour.putRecord({ key: key2, value: bytes('x') }, quorum)
      for (let i = 0; i < 1000 && h.outcome(qid) === undefined; i++) {
        h.pump()
        for (const request of h.inFlight) if (request.message.type === 'PUT_VALUE' && failing.has(request.peer.peerId.toString())) request.peer.behaviour = 'garbage'
        h.answerAll()
      }
      for (const p of h.peers.values()) if (p.behaviour === 'garbage') p.behaviour = 'honest'
      return qid
    }
    const all = h.outcome(put('all'))?.result.error
    expect(all).to.be.instanceOf(kad.PutRecordError)
    expect((all as kad.PutRecordError).kind).to.equal('QuorumFailed')
    expect((all as kad.PutRecordError).success).to.have.length(15)
    expect((all as kad.PutRecordError).quorum).to.equal(20)
    expect(h.outcome(put(15))?.result.ok).to.not.equal(undefined)
    expect(h.outcome(put('majority'))?.result.ok).to.not.equal(undefined)
    expect(h.outcome(put('one'))?.result.ok).to.not.equal(undefined)
  })

  it('putRecordTo stores at the given peers only', () => {
    network(50)
    const chosen = [...h.peers.values()].slice(10, 13)
    const id = h.behaviour.putRecordTo({ key: bytes('k'), value: bytes('v') }, chosen.map(p => p.peerId), 'all')
    h.settle()
    expect(h.outcome(id)?.result.ok).to.not.equal(undefined)
    expect([...h.peers.values()].filter(p => p.records.size > 0)).to.have.length(3)
    expect(h.behaviour.store.get(bytes('k'))).to.equal(undefined)
  })

  it('getRecord reports our copy first, then each holder, then FinishedWithNoAdditionalRecord with a cache candidate', () => {
    network(200)
    const key = bytes('/v/found')
    const holders = h.trueClosest(key).slice(0, 3)
    for (const p of holders) h.peers.get(p.toString())?.records.set(Buffer.from(key).toString('hex'), { key, value: bytes('remote') })
    h.behaviour.store.put({ key, value: bytes('local') })
    const id = h.behaviour.getRecord(key)
    h.settle()
    const steps = h.progressOf(id)
    const found = steps.filter(s => s.result.type === 'GetRecord' && s.result.ok?.type === 'FoundRecord')
    expect(found[0].step.count).to.equal(1)
    const first = found[0].result.ok as Extract<kad.GetRecordOk, { type: 'FoundRecord' }>
    expect(first.record.peer).to.equal(undefined)
    expect(ids(found.slice(1).map(s => (s.result.ok as Extract<kad.GetRecordOk, { type: 'FoundRecord' }>).record.peer as PeerId))).to.deep.equal(ids(holders))
    const end = h.outcome(id)?.result.ok as Extract<kad.GetRecordOk, { type: 'FinishedWithNoAdditionalRecord' }>
    expect(end.type).to.equal('FinishedWithNoAdditionalRecord')
    expect(end.cacheCandidates).to.have.length(1)
    expect(steps.map(s => s.step.count)).to.deep.equal(steps.map((_, i) => i + 1))
  })

  it('getRecord ends with NotFound and the closest peers when nobody has it; finish() ends it early', () => {
    network(100)
    const id = h.behaviour.getRecord(bytes('/v/missing'))
    h.settle()
    const error = h.outcome(id)?.result.error as kad.GetRecordError
    expect(error.kind).to.equal('NotFound')
    expect(error.closestPeers).to.have.length(20)
    const early = h.behaviour.getRecord(bytes('/v/missing'))
    h.pump()
    h.behaviour.query(early)?.finish()
    h.pump()
    expect(h.outcome(early)?.result.error).to.be.instanceOf(kad.GetRecordError)
    expect(h.behaviour.query(early)).to.equal(undefined)
  })

  it('ignores records for keys never asked and answers of no query', () => {
    network(50)
    const key = bytes('/v/asked')
    const id = h.behaviour.getRecord(key)
    h.pump()
    const request = h.inFlight.shift()
    if (request === undefined) throw new Error('no request')
    h.behaviour.onConnectionHandlerEvent(request.peer.peerId, request.connectionId, {
      type: 'Response',
      tag: request.tag,
      request: 'GET_VALUE',
      response: { type: 'GET_VALUE', key: bytes('/v/other'), record: { key: bytes('/v/other'), value: bytes('x') }, closerPeers: [], providerPeers: [] }
    })
    // An unsolicited answer: a query that does not exist.
    h.behaviour.onConnectionHandlerEvent(request.peer.peerId, request.connectionId, {
      type: 'Response',
      tag: { queryId: 9999 as kad.QueryId, phase: 0 },
      request: 'GET_VALUE',
      response: { type: 'GET_VALUE', key, record: { key, value: bytes('forged') }, closerPeers: [], providerPeers: [] }
    })
    h.settle()
    expect(h.progressOf(id).some(s => s.result.type === 'GetRecord' && s.result.ok?.type === 'FoundRecord')).to.equal(false)
    expect(h.behaviour.store.get(bytes('/v/other'))).to.equal(undefined)
  })

  it('startProviding sends our listen addresses to the k closest; getProviders finds providers with their addresses', () => {
    network(200)
    h.behaviour.onSwarmEvent({ type: 'NewListenAddr', listenerId: newListenerId(), address: multiaddr('/ip4/10.1.1.1/tcp/4001') })
    const key = bytes('content')
    const id = h.behaviour.startProviding(key)
    h.settle()
    expect(h.outcome(id)?.result).to.deep.include({ type: 'StartProviding' })
    expect((h.outcome(id)?.result.ok as kad.PutRecordOk).key).to.deep.equal(key)
    const providers = [...h.peers.values()].filter(p => p.providers.has(Buffer.from(key).toString('hex')))
    expect(ids(providers.map(p => p.peerId))).to.deep.equal(ids(h.trueClosest(key)))
    expect(providers[0].providers.get(Buffer.from(key).toString('hex'))?.[0].addresses.map(String)).to.deep.equal(['/ip4/10.1.1.1/tcp/4001'])

    // Another provider, known to the closest peers only.
    const other = randomPeerId()
    for (const p of h.trueClosest(key).slice(0, 2)) h.peers.get(p.toString())?.providers.get(Buffer.from(key).toString('hex'))?.push({ peerId: other, addresses: [multiaddr('/ip4/10.2.2.2/tcp/1')] })
    const lookup = h.behaviour.getProviders(key)
    h.settle()
    const found = h.progressOf(lookup).flatMap(s => s.result.type === 'GetProviders' && s.result.ok?.type === 'FoundProviders' ? s.result.ok.providers : [])
    expect(found[0].peerId.equals(h.local)).to.equal(true)
    expect(found.filter(p => p.peerId.equals(other))).to.have.length(1)
    expect(found.find(p => p.peerId.equals(other))?.addresses.map(String)).to.deep.equal(['/ip4/10.2.2.2/tcp/1'])
    const end = h.outcome(lookup)?.result.ok as Extract<kad.GetProvidersOk, { type: 'FinishedWithNoAdditionalRecord' }>
    expect(end.closestPeers).to.have.length(20)
    h.behaviour.stopProviding(key)
    expect([...h.behaviour.store.provided()]).to.have.length(0)
  })

  it('replicates stored records every hour and republishes its own every 22 h, providers every 12 h', () => {
    network(100, 5)
    const own = bytes('/v/own')
    h.behaviour.putRecord({ key: own, value: bytes('mine') }, 'one')
    h.behaviour.startProviding(bytes('provided'))
    h.settle()
    // A record a peer put at us, under a key we are among the k closest to: a record far from
    // us would expire sooner than the two hours this test runs (see the next test).
    const theirs = keyWhere(h, closer => closer < 20)
    const peer = [...h.peers.values()][0]
    const connectionId = h.connections.get(peer.peerId.toString()) ?? h.connect(peer)
    let echoed: kad.Message | undefined
    const channel = new kad.InboundChannel(m => { echoed = m })
    h.behaviour.onConnectionHandlerEvent(peer.peerId, connectionId, {
      type: 'InboundRequest',
      request: { type: 'PUT_VALUE', key: theirs, record: { key: theirs, value: bytes('yours') }, closerPeers: [], providerPeers: [] },
      channel
    })
    expect(echoed?.record?.value).to.deep.equal(bytes('yours'))
    expect(h.behaviour.store.get(theirs)?.expires).to.equal(Date.now() + 48 * 3_600_000)
    h.events.length = 0
    const puts = (key: Uint8Array): number => [...h.peers.values()].reduce((n, p) => n + (p.records.has(Buffer.from(key).toString('hex')) ? 1 : 0), 0)
    expect(puts(theirs)).to.equal(0)
    // The record received just now is skipped by the first run (its sender replicated it).
    clock.tick(3_600_000)
    h.settle()
    expect(puts(theirs)).to.equal(0)
    clock.tick(3_600_000)
    h.settle()
    expect(puts(theirs)).to.equal(20)
    // Replication reports nothing; our own record waits for its publication.
    expect(h.events.filter(e => e.type === 'OutboundQueryProgressed' && e.result.type === 'RepublishRecord')).to.have.length(0)
    for (let hour = 2; hour < 22; hour++) {
      clock.tick(3_600_000)
      h.settle()
    }
    const types = h.events.flatMap(e => e.type === 'OutboundQueryProgressed' ? [e.result.type] : [])
    expect(types.filter(t => t === 'RepublishRecord')).to.have.length(1)
    expect(types.filter(t => t === 'RepublishProvider')).to.have.length(1)
  })

  it('a record received far from us (n peers of our table beyond the k closer than us) expires after TTL / 2^n', () => {
    h = new KadHarness()
    // 200 peers offered to our table: its buckets near us fill up, far ones keep k each.
    for (const p of h.addPeers(200)) h.behaviour.addAddress(p.peerId, p.address)
    const peer = [...h.peers.values()][0]
    const connectionId = h.connections.get(peer.peerId.toString()) ?? h.connect(peer)
    const put = (key: Uint8Array): number | undefined => {
      h.behaviour.onConnectionHandlerEvent(peer.peerId, connectionId, {
        type: 'InboundRequest',
        request: { type: 'PUT_VALUE', key, record: { key, value: bytes('v') }, closerPeers: [], providerPeers: [] },
        channel: new kad.InboundChannel(() => {})
      })
      return h.behaviour.store.get(key)?.expires
    }
    const ttl = 48 * 3_600_000
    const near = keyWhere(h, closer => closer <= 20)
    expect(put(near)).to.equal(Date.now() + ttl)
    // Keys 1 to 10 peers beyond the k closest (which distances exist depends on the random ids).
    const beyondK = new Map<number, Uint8Array>()
    for (let i = 0; i < 2_000; i++) {
      const key = bytes(`/far/${i}`)
      const beyond = closerInTable(h, key) - 20
      if (beyond > 0 && beyond <= 10 && !beyondK.has(beyond)) beyondK.set(beyond, key)
    }
    expect(beyondK.size).to.be.greaterThan(0)
    for (const [beyond, key] of beyondK) expect(put(key)).to.equal(Date.now() + Math.floor(ttl / 2 ** beyond), `${beyond} beyond k`)
    // Expired, the farthest is gone: the store no longer answers with it.
    const farthest = Math.max(...beyondK.keys())
    const far = beyondK.get(farthest) as Uint8Array
    clock.tick(Math.floor(ttl / 2 ** farthest) - 1)
    expect(h.behaviour.store.get(far)).to.not.equal(undefined)
    clock.tick(1)
    expect(h.behaviour.store.get(far)).to.equal(undefined)
  })

  it('its jobs start at most 10 queries per poll and have at most 100 running: 250 records to replicate wait their turn', () => {
    h = new KadHarness()
    const peers = h.addPeers(30, 'silent')
    h.fillTables()
    for (const peer of peers.slice(0, 5)) h.behaviour.addAddress(peer.peerId, peer.address)
    const publisher = randomPeerId()
    for (let i = 0; i < 250; i++) h.behaviour.store.put({ key: bytes(`/v/${i}`), value: bytes('x'), publisher })
    // Polled one step at a time; nobody answers (the requests are dropped): queries stay running.
    const queries = (): kad.QueryRef[] => Array.from({ length: 600 }, (_, id) => h.behaviour.query((id + 1) as kad.QueryId)).filter(q => q !== undefined)
    const replicating = (): number => queries().filter(q => q.type === 'PutRecord').length
    // The 100 count every query (the automatic bootstrap too).
    const running = (): number => queries().length
    const started: number[] = []
    const pollAll = (): void => {
      for (let i = 0; i < 100_000; i++) {
        const before = replicating()
        const action = h.behaviour.poll({ waker: { wake: () => {} } })
        started.push(replicating() - before)
        if (action === undefined) return
      }
      throw new Error('the behaviour never stopped')
    }
    pollAll()
    clock.tick(3_600_000)
    pollAll()
    expect(Math.max(...started)).to.equal(10)
    expect(running()).to.equal(100)
    expect(replicating()).to.be.at.least(99)
    // While they run (a query has 60 s), no more start, however often it is polled.
    for (let second = 0; second < 15; second++) {
      clock.tick(1_000)
      pollAll()
      expect(running()).to.equal(100)
    }
    // They time out; the next ones take their place, 10 per poll at most.
    const before = replicating()
    started.length = 0
    clock.tick(60_000)
    pollAll()
    expect(Math.max(...started)).to.equal(10)
    expect(running()).to.equal(100)
    expect(replicating()).to.be.at.least(before)
  })

  it('remembers the addresses of at most 1,024 peers the swarm told about, 16 each, forgetting the least recently told', () => {
    h = new KadHarness()
    const told = Array.from({ length: 1_100 }, () => randomPeerId())
    for (const [i, peerId] of told.entries()) {
      for (let a = 0; a < 20; a++) h.behaviour.onSwarmEvent({ type: 'NewExternalAddrOfPeer', peerId, address: multiaddr(`/ip4/10.${i >> 8}.${i & 255}.${a}/tcp/1`) })
    }
    const addressesOf = (peerId: PeerId): number => h.behaviour.handlePendingOutboundConnection({ connectionId: newConnectionId(), peerId, addresses: [], effectiveRole: 'Dialer' }).length
    expect(told.slice(0, 1_100 - 1_024).map(addressesOf).every(n => n === 0)).to.equal(true)
    expect(told.slice(1_100 - 1_024).map(addressesOf).every(n => n === kad.MAX_ENTRY_ADDRESSES)).to.equal(true)
  })

  it('answers FIND_NODE, GET_VALUE and GET_PROVIDERS from its table and store, never naming the requester', () => {
    network(100, 30)
    const [requester] = [...h.peers.values()]
    const connectionId = h.connect(requester)
    const ask = (request: kad.Message): kad.Message | undefined => {
      let answer: kad.Message | undefined
      h.behaviour.onConnectionHandlerEvent(requester.peerId, connectionId, { type: 'InboundRequest', request, channel: new kad.InboundChannel(m => { answer = m }) })
      return answer
    }
    const found = ask({ type: 'FIND_NODE', key: requester.peerId.toMultihash().bytes, closerPeers: [], providerPeers: [] })
    expect(found?.closerPeers).to.have.length(20)
    expect(found?.closerPeers.some(p => p.id.equals(requester.peerId))).to.equal(false)
    expect(found?.closerPeers.every(p => p.addrs.length > 0)).to.equal(true)
    h.behaviour.store.put({ key: bytes('/v/x'), value: bytes('y') })
    const got = ask({ type: 'GET_VALUE', key: bytes('/v/x'), closerPeers: [], providerPeers: [] })
    expect(got?.record?.value).to.deep.equal(bytes('y'))
    expect(got?.record?.timeReceived).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/)
    const provided = ask({ type: 'GET_PROVIDERS', key: bytes('nothing'), closerPeers: [], providerPeers: [] })
    expect(provided?.providerPeers).to.have.length(0)
    expect(provided?.closerPeers).to.have.length(20)
    // ADD_PROVIDER: only the sender itself is taken.
    ask({ type: 'ADD_PROVIDER', key: bytes('c'), closerPeers: [], providerPeers: [{ id: randomPeerId(), addrs: [multiaddr('/ip4/10.3.3.3/tcp/1')], connection: 'CONNECTED' }, { id: requester.peerId, addrs: [requester.address], connection: 'CONNECTED' }] })
    expect(h.behaviour.store.providers(bytes('c')).map(p => p.provider.toString())).to.deep.equal([requester.peerId.toString()])
    h.pump()
    const events = h.events.filter(e => e.type === 'InboundRequest').map(e => e.type === 'InboundRequest' ? e.request.type : '')
    expect(events).to.deep.equal(['FindNode', 'GetRecord', 'GetProvider', 'AddProvider'])
  })

  /** A remote's `PUT_VALUE` of `key` (value `v`) handed to the behaviour: `'echoed'` or `'reset'`. */
  function remotePut (peerId: PeerId, connectionId: ReturnType<KadHarness['connect']>, key: string): string {
    let outcome = 'pending'
    const channel = new kad.InboundChannel(m => { outcome = m === undefined ? 'reset' : 'echoed' })
    h.behaviour.onConnectionHandlerEvent(peerId, connectionId, {
      type: 'InboundRequest', request: { type: 'PUT_VALUE', key: bytes(key), record: { key: bytes(key), value: bytes('v') }, closerPeers: [], providerPeers: [] }, channel
    })
    return outcome
  }

  it('the filter refuses records and provider records (the PUT_VALUE stream is reset)', () => {
    network(10, 3, { filter: (request) => request.type === 'PutRecord' ? new TextDecoder().decode(request.record.key).startsWith('/ok/') : false })
    const [peer] = [...h.peers.values()]
    const connectionId = h.connect(peer)
    const put = (key: string): string => remotePut(peer.peerId, connectionId, key)
    expect(put('/ok/a')).to.equal('echoed')
    expect(put('/no/a')).to.equal('reset')
    expect(h.behaviour.store.get(bytes('/no/a'))).to.equal(undefined)
    h.behaviour.onConnectionHandlerEvent(peer.peerId, connectionId, {
      type: 'InboundRequest', request: { type: 'ADD_PROVIDER', key: bytes('c'), providerPeers: [{ id: peer.peerId, addrs: [peer.address], connection: 'CONNECTED' }], closerPeers: [] }, channel: new kad.InboundChannel(() => {})
    })
    expect(h.behaviour.store.providers(bytes('c'))).to.have.length(0)
    h.pump()
    const stored = h.events.flatMap(e => e.type === 'InboundRequest' && 'stored' in e.request ? [e.request.stored] : [])
    expect(stored).to.deep.equal([true, false, false])
  })

  it('a full store refuses a remote PUT_VALUE: its stream is reset, nothing is stored', () => {
    network(10, 3, { store: new kad.MemoryStore(randomPeerId(), { maxRecords: 1 }) })
    const [peer] = [...h.peers.values()]
    const connectionId = h.connect(peer)
    const put = (key: string): string => remotePut(peer.peerId, connectionId, key)
    expect(put('first')).to.equal('echoed')
    expect(put('second'), 'over maxRecords').to.equal('reset')
    expect(h.behaviour.store.get(bytes('second'))).to.equal(undefined)
    expect(h.behaviour.store.get(bytes('first'))?.value).to.deep.equal(bytes('v'))
  })

  it('switches to server mode when an external address is confirmed, and back; setMode fixes it', () => {
    h = new KadHarness({ mode: undefined })
    const [peer] = h.addPeers(1)
    h.connect(peer)
    expect(h.behaviour.mode()).to.equal('client')
    const address = multiaddr('/ip4/198.18.0.1/tcp/4001')
    h.behaviour.onSwarmEvent({ type: 'ExternalAddrConfirmed', address })
    h.pump()
    expect(h.behaviour.mode()).to.equal('server')
    expect(h.events.filter(e => e.type === 'ModeChanged')).to.deep.equal([{ type: 'ModeChanged', newMode: 'server' }])
    expect(h.notified.filter(n => n.event.type === 'ReconfigureMode').map(n => n.event)).to.deep.equal([{ type: 'ReconfigureMode', mode: 'server' }])
    h.behaviour.onSwarmEvent({ type: 'ExternalAddrExpired', address })
    h.pump()
    expect(h.behaviour.mode()).to.equal('client')
    h.behaviour.setMode('server')
    h.behaviour.onSwarmEvent({ type: 'ExternalAddrExpired', address })
    expect(h.behaviour.mode()).to.equal('server')
    h.behaviour.setMode(undefined)
    expect(h.behaviour.mode()).to.equal('client')
    // A client handler listens on nothing; a server's on the protocol names.
    const handler = new kad.Handler({ config: h.behaviour.config, mode: 'client', peerId: peer.peerId })
    expect(handler.listenProtocol().protocols).to.deep.equal([])
    handler.onBehaviourEvent({ type: 'ReconfigureMode', mode: 'server' })
    expect(handler.listenProtocol().protocols).to.deep.equal(['/ipfs/kad/1.0.0'])
    handler.close()
  })

  it('puts a confirmed peer in the table with the dialed address, or with the addresses identify reported', () => {
    h = new KadHarness()
    const [dialed, inbound, client] = h.addPeers(3)
    h.connect(dialed)
    h.pump()
    expect(h.events.find(e => e.type === 'RoutingUpdated')).to.deep.include({ isNewPeer: true, peer: dialed.peerId })
    // An inbound connection: no address until identify tells one.
    const connectionId = newConnectionId()
    h.behaviour.handleEstablishedInboundConnection({ connectionId, peerId: inbound.peerId, localAddr: multiaddr('/ip4/10.9.9.9/tcp/4001'), remoteAddr: multiaddr('/ip4/10.0.0.7/tcp/55555') }).close()
    h.behaviour.onSwarmEvent({ type: 'ConnectionEstablished', peerId: inbound.peerId, connectionId, endpoint: { type: 'Listener', localAddr: multiaddr('/ip4/10.9.9.9/tcp/4001'), sendBackAddr: multiaddr('/ip4/10.0.0.7/tcp/55555') }, failedAddresses: [], otherEstablished: 0 })
    h.behaviour.onConnectionHandlerEvent(inbound.peerId, connectionId, { type: 'ProtocolConfirmed' })
    h.pump()
    expect(h.events.some(e => e.type === 'UnroutablePeer' && e.peer.equals(inbound.peerId))).to.equal(true)
    h.behaviour.onSwarmEvent({ type: 'NewExternalAddrOfPeer', peerId: inbound.peerId, address: inbound.address })
    h.pump()
    const entries = [...h.behaviour.kbuckets()].flatMap(b => b.entries)
    expect(entries.find(e => e.peerId.equals(inbound.peerId))?.addresses.map(String)).to.deep.equal([inbound.address.toString()])
    expect(entries.find(e => e.peerId.equals(inbound.peerId))?.status).to.equal('connected')
    // A peer that does not speak Kademlia never enters; one that stops is removed.
    h.connect(client, false)
    h.behaviour.onSwarmEvent({ type: 'NewExternalAddrOfPeer', peerId: client.peerId, address: client.address })
    expect([...h.behaviour.kbuckets()].flatMap(b => b.entries).some(e => e.peerId.equals(client.peerId))).to.equal(false)
    h.behaviour.onConnectionHandlerEvent(dialed.peerId, h.connections.get(dialed.peerId.toString()) as never, { type: 'ProtocolNotSupported' })
    expect([...h.behaviour.kbuckets()].flatMap(b => b.entries).some(e => e.peerId.equals(dialed.peerId))).to.equal(false)
    // Disconnection keeps the entry, disconnected.
    h.behaviour.onSwarmEvent({ type: 'ConnectionClosed', peerId: inbound.peerId, connectionId, endpoint: { type: 'Listener', localAddr: multiaddr('/ip4/10.9.9.9/tcp/4001'), sendBackAddr: multiaddr('/ip4/10.0.0.7/tcp/55555') }, remainingEstablished: 0 })
    expect([...h.behaviour.kbuckets()].flatMap(b => b.entries).find(e => e.peerId.equals(inbound.peerId))?.status).to.equal('disconnected')
  })

  it('addAddress: Success, Pending for a full bucket (dialing its least recently seen entry), replaced after the pending timeout', () => {
    h = new KadHarness({ replicationFactor: 2, kbucketPendingTimeout: 60_000 })
    const local = keyOfPeer(h.local)
    const inFar: ReturnType<KadHarness['addPeers']> = []
    while (inFar.length < 3) {
      const [peer] = h.addPeers(1)
      if (local.hash[0] >> 7 !== peer.key.hash[0] >> 7) inFar.push(peer)
    }
    expect(h.behaviour.addAddress(inFar[0].peerId, inFar[0].address)).to.equal('Success')
    expect(h.behaviour.addAddress(inFar[1].peerId, inFar[1].address)).to.equal('Success')
    expect(h.behaviour.addAddress(h.local, inFar[0].address)).to.equal('Failed')
    expect(h.behaviour.addAddress(inFar[0].peerId, multiaddr(`/ip4/10.0.0.1/tcp/1/p2p/${inFar[1].peerId.toString()}`))).to.equal('Failed')
    // A disconnected third: full. Connected (confirmed) third: pending, and the first is dialed.
    expect(h.behaviour.addAddress(inFar[2].peerId, inFar[2].address)).to.equal('Failed')
    inFar[0].behaviour = 'unreachable'
    h.connect(inFar[2])
    h.pump()
    expect(h.events.some(e => e.type === 'PendingRoutablePeer' && e.peer.equals(inFar[2].peerId))).to.equal(true)
    expect(h.dials.some(p => p.equals(inFar[0].peerId))).to.equal(true)
    clock.tick(60_000)
    h.pump()
    const replaced = h.events.find(e => e.type === 'RoutingUpdated' && e.peer.equals(inFar[2].peerId))
    expect(replaced).to.deep.include({ isNewPeer: true })
    expect(replaced?.type === 'RoutingUpdated' && replaced.oldPeer?.equals(inFar[0].peerId)).to.equal(true)
    expect(h.behaviour.removePeer(inFar[2].peerId)?.peerId.equals(inFar[2].peerId)).to.equal(true)
    expect(h.behaviour.removeAddress(inFar[1].peerId, inFar[1].address)?.peerId.equals(inFar[1].peerId)).to.equal(true)
    expect([...h.behaviour.kbuckets()]).to.have.length(0)
  })

  it('a query to a peer whose connection closes asks it once more on a new connection; a second close, or a failed dial, counts it as failed', () => {
    network(60, 1)
    const [first, second] = [...h.peers.values()]
    first.behaviour = 'silent'
    const id = h.behaviour.getClosestPeers(bytes('x'))
    h.pump()
    expect(h.inFlight.map(r => r.peer)).to.deep.equal([first])
    const dialsOfFirst = (): number => h.dials.filter(p => p.equals(first.peerId)).length
    expect(dialsOfFirst()).to.equal(1)
    h.disconnect(first)
    h.inFlight.length = 0
    h.pump()
    // Dialed again, the request goes out on the new connection.
    expect(dialsOfFirst()).to.equal(2)
    expect(h.inFlight.map(r => r.peer)).to.deep.equal([first])
    expect(h.outcome(id)).to.equal(undefined)
    h.disconnect(first)
    h.pump()
    const outcome = h.outcome(id)
    expect((outcome?.result.ok as kad.GetClosestPeersOk).peers).to.deep.equal([])
    expect(outcome?.stats).to.deep.include({ requests: 1, failure: 1, success: 0 })
    expect(dialsOfFirst()).to.equal(2)
    second.behaviour = 'unreachable'
    h.behaviour.removePeer(first.peerId)
    h.behaviour.addAddress(second.peerId, second.address)
    const again = h.behaviour.getClosestPeers(bytes('x'))
    h.pump()
    expect(h.outcome(again)?.stats).to.deep.include({ requests: 1, failure: 1 })
  })

  it('a request dropped with a connection that was closing (idle) when it was sent does not cost the peer its place in the result', () => {
    network(30)
    const peers = [...h.peers.values()]
    for (const peer of peers) h.connect(peer)
    const key = bytes('dropped')
    const id = h.behaviour.getClosestPeers(key)
    h.pump()
    // The swarm dropped the first request (its connection was closing when it was notified):
    // no answer, then the connection's ConnectionClosed.
    const [dropped] = h.inFlight.splice(0, 1)
    h.disconnect(dropped.peer)
    h.settle()
    const outcome = h.outcome(id)
    const found = (outcome?.result.ok as kad.GetClosestPeersOk).peers.map(p => p.peerId.toString())
    expect(found).to.include(dropped.peer.peerId.toString())
    expect(found.sort()).to.deep.equal(h.trueClosest(key).map(p => p.toString()).sort())
    expect(outcome?.stats.failure).to.equal(0)
  })

})
