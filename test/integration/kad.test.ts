/**
 * Kademlia over TCP on 127.0.0.1: 30 swarms (`combine({ kad, identify })`), each told one
 * bootstrap peer. After bootstrap every routing table holds its k closest (but those a full
 * bucket refused, see below); every node's record and provider key is found by every other node
 * (all 30 × 29 pairs); `getClosestPeers` of random keys matches the true k closest, computed
 * from all ids, with precision ≥ 0.9.
 *
 * The bootstraps run a few at a time and the lookups one at a time: the 30 swarms share one
 * process, and all of them at once on a loaded machine made requests wait past
 * `substreamsTimeout`, so that a lookup ended without peers that were only slow (the precision
 * test failed once at a load average of 12). What is checked is the precision, not how many
 * lookups the process can carry at once. (The same failure also had a cause in Kademlia: a
 * request sent as its idle connection was closing was dropped, and the peer counted as failed;
 * such a peer is now asked again on a new connection, test/unit/kad-query.test.ts.)
 *
 * A bucket holds at most k peers, and a full one whose entries are all connected refuses a
 * newcomer however close it is (rust-libp2p's `KBucket::insert` returns `Full`;
 * test/unit/kad-routing.test.ts): a table holds its k closest only where their bucket did not
 * overflow. With 30 random ids that is not always so: when the first bit of the ids splits them
 * 9 / 21 or worse (4.3% of draws), every node of the small side has 21 or more peers in its
 * farthest bucket, and at most 8 nearer, so some of its k closest are refused there (node 10
 * lacked 1 of its 20 closest once so). The check allows a missing close peer only in a bucket
 * that holds k peers.
 */
import { setMaxListeners } from 'node:events'
import { expect } from 'chai'
import { SwarmBuilder, combine, identify, kad, peerIdOf } from '../../src/index.js'
import { bucketIndex, compareDistance, keyOf, keyOfPeer } from '../../src/protocols/kad/kbucket.js'
import type { Multiaddr, PeerId, Swarm } from '../../src/index.js'

const N = 30
const K = 20
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

async function node () {
  return SwarmBuilder.withNewIdentity()
    .withTcp()
    .withBehaviour(key => combine({
      kad: new kad.Behaviour(peerIdOf(key), { mode: 'server', periodicBootstrapInterval: null }),
      identify: new identify.Behaviour(key.publicKey)
    }))
    .withSwarmConfig({ idleConnectionTimeout: 60_000 })
    .build()
}

type Node = Awaited<ReturnType<typeof node>>
type Progress = Extract<kad.Event, { type: 'OutboundQueryProgressed' }>

/** Drives every swarm in the background and files each query's events by (node, query id). */
class Network {
  readonly progress = new Map<string, Progress[]>()
  readonly listen = new Map<string, Multiaddr>()
  /** Queries ("node/id") ended at their first record from a peer, as applications do. */
  readonly firstRecordOnly = new Set<string>()
  private readonly controller = new AbortController()
  private readonly loops: Array<Promise<void>>

  constructor (readonly nodes: Node[]) {
    setMaxListeners(nodes.length + 10, this.controller.signal)
    this.loops = nodes.map(async (swarm, i) => {
      for (;;) {
        let event
        try {
          event = await swarm.selectNextSome({ signal: this.controller.signal })
        } catch {
          return
        }
        if (event.type === 'NewListenAddr') this.listen.set(swarm.localPeerId.toString(), event.address)
        if (event.type !== 'Behaviour' || event.event.behaviour !== 'kad') continue
        const e = event.event.event
        if (e.type !== 'OutboundQueryProgressed') continue
        const key = `${i}/${e.id}`
        if (this.firstRecordOnly.has(key) && e.result.type === 'GetRecord' && e.result.ok?.type === 'FoundRecord' && e.result.ok.record.peer !== undefined) {
          swarm.behaviour.kad.query(e.id)?.finish()
        }
        const list = this.progress.get(key) ?? []
        list.push(e)
        this.progress.set(key, list)
      }
    })
  }

  /** Wait (bounded) until `condition` holds, checking every 50 ms. */
  async until (what: string, condition: () => boolean, timeout: number): Promise<void> {
    const deadline = performance.now() + timeout
    while (!condition()) {
      if (performance.now() > deadline) throw new Error(`${what}: not within ${timeout} ms`)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }

  /** The events of query `id` of node `i`, once its last one arrived. */
  async outcome (i: number, id: kad.QueryId, timeout = 60_000): Promise<Progress[]> {
    const key = `${i}/${id}`
    await this.until(`query ${key}`, () => this.progress.get(key)?.some(e => e.step.last) === true, timeout)
    return this.progress.get(key) ?? []
  }

  async close (): Promise<void> {
    this.controller.abort()
    await Promise.all(this.loops)
    await Promise.all(this.nodes.map(async n => { await n.close() }))
  }
}

/** The k closest of `ids` to `key`, `exclude` left out. */
function trueClosest (ids: readonly PeerId[], key: Uint8Array, exclude: PeerId): string[] {
  const target = keyOf(key).hash
  return ids.filter(p => !p.equals(exclude)).sort((a, b) => compareDistance(target, keyOfPeer(a).hash, keyOfPeer(b).hash)).slice(0, K).map(String)
}

/** Run `tasks` with at most `limit` at once. */
async function pool<T> (tasks: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = []
  let next = 0
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < tasks.length) {
      const i = next++
      results[i] = await tasks[i]()
    }
  }))
  return results
}

describe(`kad: ${N} swarms over TCP (127.0.0.1)`, function () {
  this.timeout(600_000)
  let net: Network
  let nodes: Node[]
  let ids: PeerId[]

  before(async () => {
    nodes = await Promise.all(Array.from({ length: N }, node))
    ids = nodes.map(n => n.localPeerId)
    net = new Network(nodes)
    for (const n of nodes) n.listenOn('/ip4/127.0.0.1/tcp/0')
    await net.until('listening', () => net.listen.size === N, 10_000)
    // Each node knows one other (a random earlier one), then bootstraps.
    for (let i = 1; i < N; i++) {
      const seed = Math.floor(Math.random() * i)
      expect(nodes[i].behaviour.kad.addAddress(ids[seed], net.listen.get(ids[seed].toString()) as Multiaddr)).to.equal('Success')
    }
    const bootstrap = (i: number) => async () => await net.outcome(i, nodes[i].behaviour.kad.bootstrap(), 120_000)
    await pool(nodes.slice(1).map((_, i) => bootstrap(i + 1)), 5)
    // A second round, as the periodic bootstrap would: the early nodes learn of the late ones.
    await pool(nodes.map((_, i) => bootstrap(i)), 5)
  })

  after(async () => { await net?.close() })

  it('after bootstrap, every routing table holds its k closest peers (but those its full buckets refused)', () => {
    for (const [i, n] of nodes.entries()) {
      const buckets = [...n.behaviour.kad.kbuckets()]
      const table = new Set(buckets.flatMap(b => b.entries.map(e => e.peerId.toString())))
      const local = keyOfPeer(ids[i]).hash
      const sizeOf = (p: PeerId): number => buckets.find(b => b.index === bucketIndex(local, keyOfPeer(p).hash))?.entries.length ?? 0
      // A close peer may be missing only because its bucket is full (k peers of that range).
      const closest = new Set(trueClosest(ids, ids[i].toMultihash().bytes, ids[i]))
      const unexplained = ids.filter(p => closest.has(p.toString()) && !table.has(p.toString()) && sizeOf(p) < K).map(String)
      expect(unexplained, `node ${i} lacks ${unexplained.length} of its ${K} closest from buckets that are not full`).to.deep.equal([])
    }
  })

  it('every node\'s record and provider key is found by every other node (all pairs)', async () => {
    const puts = nodes.map((n, i) => ({ i, id: n.behaviour.kad.putRecord({ key: bytes(`/t/record-${i}`), value: bytes(`value of ${i}`) }, 'majority') }))
    const provides = nodes.map((n, i) => ({ i, id: n.behaviour.kad.startProviding(bytes(`provided-${i}`)) }))
    for (const { i, id } of [...puts, ...provides]) {
      const [end] = (await net.outcome(i, id)).slice(-1)
      expect(end.result.ok, `node ${i}: ${String(end.result.error)}`).to.not.equal(undefined)
    }
    const pairs = nodes.flatMap((_, getter) => nodes.map((__, owner) => ({ getter, owner }))).filter(p => p.getter !== p.owner)
    const missed: string[] = []
    await pool(pairs.map(({ getter, owner }) => async () => {
      const kadOf = nodes[getter].behaviour.kad
      const recordId = kadOf.getRecord(bytes(`/t/record-${owner}`))
      net.firstRecordOnly.add(`${getter}/${recordId}`)
      const providersId = kadOf.getProviders(bytes(`provided-${owner}`))
      const record = await net.outcome(getter, recordId)
      const found = record.find(e => e.result.type === 'GetRecord' && e.result.ok?.type === 'FoundRecord')
      const value = found?.result.type === 'GetRecord' && found.result.ok?.type === 'FoundRecord' ? new TextDecoder().decode(found.result.ok.record.record.value) : undefined
      if (value !== `value of ${owner}`) missed.push(`record of ${owner} at ${getter}`)
      const providers = (await net.outcome(getter, providersId)).flatMap(e => e.result.type === 'GetProviders' && e.result.ok?.type === 'FoundProviders' ? e.result.ok.providers : [])
      if (!providers.some(p => p.peerId.equals(ids[owner]) && p.addresses.length > 0)) missed.push(`provider ${owner} at ${getter}`)
    }), 30)
    expect(missed).to.deep.equal([])
  })

  it('getClosestPeers of random keys matches the true k closest with precision ≥ 0.9', async () => {
    const precisions: number[] = []
    for (let j = 0; j < 30; j++) {
      const key = crypto.getRandomValues(new Uint8Array(32))
      const i = j % N
      const [end] = (await net.outcome(i, nodes[i].behaviour.kad.getClosestPeers(key))).slice(-1)
      if (end.result.type !== 'GetClosestPeers' || end.result.ok === undefined) throw new Error(`lookup failed: ${String(end.result.error)}`)
      const truth = new Set(trueClosest(ids, key, ids[i]))
      const got = end.result.ok.peers.map(p => p.peerId.toString())
      precisions.push(got.filter(p => truth.has(p)).length / K)
      for (const p of end.result.ok.peers) expect(p.addresses.length).to.be.at.least(1)
    }
    expect(Math.min(...precisions)).to.be.at.least(0.9)
  })
})
