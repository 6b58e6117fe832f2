/**
 * The Kademlia scenario runner: N swarms with `kad.Behaviour` (and identify) on a
 * {@link SimulatedNetwork}, each joining from a few peers that joined before it; then lookups
 * of the closest peers of random keys, records put and got from random peers, and a share of
 * the peers leaving before the records are looked up again. It reports, per kind of lookup,
 * success, hops (against log₂ N), requests and latency, the lookups' precision against the true
 * k closest, and the records' replicas. See docs/simulation.md, "Kademlia".
 *
 * ```ts
 * import { formatReport, runKadScenario } from 'peerswarm/testing'
 *
 * const report = await runKadScenario({ peers: 100, seed: 1, link: { latency: { min: 20, max: 80 } } })
 * console.log(formatReport(report))
 * ```
 *
 * @module
 */
import '../compat.js'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { ConfigError } from '../core/errors.js'
import { peerIdOf } from '../core/identity.js'
import { SwarmBuilder } from '../swarm/builder.js'
import { combine } from '../behaviour/combine.js'
import { toggle } from '../behaviour/toggle.js'
import * as identify from '../protocols/identify/index.js'
import * as kad from '../protocols/kad/index.js'
import { compareDistance, keyOf, keyOfPeer } from '../protocols/kad/kbucket.js'
import { SimulatedNetwork } from './network.js'
import { Random } from './random.js'
import { formatDuration, summarise, summariseDegrees } from './report.js'
import { VirtualClock } from './virtual-time.js'
import type { LinkOptions } from './network.js'
import type { DeliveryReport, KadLookupKind, KadLookups, RangeSummary, ScenarioReport } from './report.js'
import type { SwarmConfig } from '../swarm/config.js'
import type { Swarm } from '../swarm/swarm.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** A Kademlia scenario for {@link runKadScenario}. */
export interface KadScenario {
  /** Name in the report (default `kad`). */
  readonly name?: string
  /** Number of peers (swarms). */
  readonly peers: number
  /** Seed of identities, links, bootstrap peers, keys and who asks (default 0). */
  readonly seed?: number | string
  /** Every link's parameters (default: instant and lossless). */
  readonly link?: Partial<LinkOptions>
  /** Per pair of peers (`a < b`), parameters overriding `link`. */
  readonly links?: (a: number, b: number) => Partial<LinkOptions> | undefined
  /** Kademlia's options of every peer (default: `mode: 'server'`, rust's defaults otherwise). */
  readonly kad?: Partial<kad.Config>
  /** Run identify next to Kademlia, so that peers that dial a node enter its table (default true). */
  readonly identify?: boolean
  /** Swarm options of every peer (default: `connectionTimeout` 30 s). */
  readonly swarm?: Partial<SwarmConfig>
  /** Peers each joining peer is told of, drawn among those that joined before it (default 3). */
  readonly bootstrapPeers?: number
  /** Peers joining (bootstrapping) at once (default 20). */
  readonly joinConcurrency?: number
  /**
   * Bootstrap rounds of every peer after all joined, as the periodic bootstrap would run
   * (default 0: the join's own bootstrap only; later peers' lookups reach the first ones).
   */
  readonly refreshRounds?: number
  /** `getClosestPeers` of random keys from random peers (default 200). */
  readonly lookups?: number
  /** Records put by random peers, each then got by another random peer (default 200). */
  readonly records?: number
  /** Quorum of the puts (default `'majority'`). */
  readonly quorum?: kad.Quorum
  /** Value size of the records, bytes (default 64). */
  readonly valueSize?: number
  /** Lookups in flight at once, over the whole network (default 20). */
  readonly concurrency?: number
  /** Share of the peers that leave (their swarms close) before the records are got again (default 0.2). */
  readonly leave?: number
  /** Virtual ms between the leave and the gets after it (default 1 000). */
  readonly afterLeave?: number
  /** The process's memory (`process.memoryUsage` in Node); without it, RSS is not reported. */
  readonly memoryUsage?: () => { readonly rss: number, readonly heapUsed: number }
  /** Collect garbage before memory is measured (`globalThis.gc` with `--expose-gc`). */
  readonly gc?: () => void
  /** `virtual` (default) or `real` time, as {@link Scenario.time}. */
  readonly time?: 'virtual' | 'real'
  /** Where the run is: phases, and a line at most every `progressInterval` ms of real time (default: none). */
  readonly log?: (line: string) => void
  /** Real ms between two progress lines in `log`, at least (default 5 000). */
  readonly progressInterval?: number
  /**
   * Stop the run: when it aborts, no further peer joins and no further lookup starts; those
   * in flight end (in virtual time, at once), the swarms close, and the report holds what was
   * measured, with `partial` set (its `published`/`messages`: lookups done of those planned).
   * `npm run sim` aborts on Ctrl-C (SIGINT).
   */
  readonly signal?: AbortSignal
}

/** One query's outcome. */
interface Outcome {
  readonly ok: boolean
  readonly stats: kad.QueryStats
  /** ms from the call to the outcome that counts (the first record found, for a get). */
  readonly latency: number
  readonly events: ReadonlyArray<Extract<kad.Event, { type: 'OutboundQueryProgressed' }>>
}

type Progressed = Extract<kad.Event, { type: 'OutboundQueryProgressed' }>

function makeBehaviour (key: Parameters<typeof peerIdOf>[0], scenario: KadScenario) {
  return combine({
    kad: new kad.Behaviour(peerIdOf(key), { mode: 'server', ...scenario.kad }),
    identify: toggle(scenario.identify === false ? undefined : new identify.Behaviour(key.publicKey))
  })
}

type KadSwarm = Swarm<ReturnType<typeof makeBehaviour>>

/**
 * Run a Kademlia scenario and report (`ScenarioReport.kad`). Every peer is a real swarm
 * (Noise, Yamux, identify, our Kademlia) on the simulated wire, in virtual time by default.
 *
 * Phases: **join**: peer i is told `bootstrapPeers` peers among 0…i−1 (`addAddress`) and
 * bootstraps, `joinConcurrency` at a time; then `refreshRounds` bootstraps of every peer.
 * **Lookups**: `lookups` `getClosestPeers` of random keys from random peers (success: k peers
 * found; precision against the true k closest of all ids). **Records**: `records` puts from
 * random peers (success: the quorum), then a get of each from another random peer (success: a
 * peer sent the record; latency: until that first record). **Leave**: a share of the peers
 * closes; every record is got again from a random peer still there. The runs are seeded, but
 * not replayed bit for bit: Kademlia draws its bootstrap keys from `crypto.getRandomValues`.
 */
export async function runKadScenario (scenario: KadScenario): Promise<ScenarioReport> {
  if (scenario.time === 'real') return await run(scenario, () => Date.now())
  const clock = new VirtualClock({ seed: `${String(scenario.seed ?? 0)}/clock` })
  return await clock.run(async () => await run(scenario, () => clock.realNow()))
}

/** The default Kademlia scenario of `npm run sim -- kad`: see docs/simulation.md. */
export function standardKadScenario (peers: number, seed: number | string): KadScenario {
  return {
    name: 'kad',
    peers,
    seed,
    link: { latency: { min: 20, max: 80 }, loss: 0.01 },
    // 20 at a time up to 400 peers, then N / 20: the join lasts about the same virtual time
    // (~20 rounds of ~13 s) at any N, near the 5-minute periodic bootstrap, not far past it.
    joinConcurrency: Math.max(20, Math.ceil(peers / 20)),
    lookups: 200,
    records: 200,
    leave: 0.2
  }
}

async function run (scenario: KadScenario, realNow: () => number): Promise<ScenarioReport> {
  const realStart = realNow()
  const n = scenario.peers
  if (!Number.isInteger(n) || n < 3) throw new ConfigError('peers', `must be an integer ≥ 3, got ${n}`)
  const seed = String(scenario.seed ?? 0)
  const random = new Random(seed)
  const log = scenario.log ?? (() => {})
  const name = scenario.name ?? 'kad'
  const bootstrapPeers = positive('bootstrapPeers', scenario.bootstrapPeers ?? 3)
  const joinConcurrency = positive('joinConcurrency', scenario.joinConcurrency ?? 20)
  const concurrency = positive('concurrency', scenario.concurrency ?? 20)
  const lookups = nonNegative('lookups', scenario.lookups ?? 200)
  const records = nonNegative('records', scenario.records ?? 200)
  const refreshRounds = nonNegative('refreshRounds', scenario.refreshRounds ?? 0)
  const leaveShare = scenario.leave ?? 0.2
  if (!(leaveShare >= 0 && leaveShare < 1)) throw new ConfigError('leave', `must be within [0, 1), got ${leaveShare}`)
  const valueSize = positive('valueSize', scenario.valueSize ?? 64)
  const quorum = scenario.quorum ?? 'majority'
  const progressInterval = scenario.progressInterval ?? 5_000
  const signal = scenario.signal
  const aborted = (): boolean => signal?.aborted === true
  let lastProgress = realNow()
  // The phase's (real ms, items done) at its last progress lines: what is left is estimated at
  // the pace of the last minute or so, since a join costs more as the network grows.
  let phase = ''
  let marks: Array<readonly [number, number]> = []
  const progress = (what: string, done: number, total: number, unit = ''): void => {
    const now = realNow()
    if (what !== phase) {
      phase = what
      marks = [[now, done]]
    }
    if (now - lastProgress < progressInterval) return
    lastProgress = now
    marks.push([now, done])
    while (marks.length > 2 && now - marks[1][0] >= 60_000) marks.shift()
    const [since, doneThen] = marks[0]
    const left = done > doneThen && done >= 0.05 * total && done < total ? `, ~${formatDuration((total - done) * (now - since) / (done - doneThen))} left in this phase at the recent pace` : ''
    log(`${what}: ${done}/${total}${unit}, t=${(performance.now() / 1000).toFixed(1)} s virtual; real ${formatDuration(now - realStart)}${left}`)
  }
  const measureMemory = (): { rss: number, heapUsed: number } | undefined => {
    if (scenario.memoryUsage == null) return undefined
    scenario.gc?.()
    const { rss, heapUsed } = scenario.memoryUsage()
    return { rss, heapUsed }
  }

  const net = new SimulatedNetwork({ seed, link: scenario.link, links: scenario.links })
  const memoryBefore = measureMemory()
  const setupStart = performance.now()
  log(`${name}: ${n} peers, seed ${seed}`)

  // The swarms, their event loops and the queries' waiters.
  const swarms: KadSwarm[] = []
  for (let i = 0; i < n; i++) {
    const key = await generateKeyPairFromSeed('Ed25519', random.fork(`key/${i}`).bytes(32))
    swarms.push(await SwarmBuilder.withExistingIdentity(key).withTransport(net.host().transport)
      .withBehaviour(k => makeBehaviour(k, scenario))
      .withSwarmConfig({ connectionTimeout: 30_000, ...scenario.swarm })
      .build())
    progress('building', i + 1, n, ' peers')
  }
  const ids = swarms.map(s => s.localPeerId)
  const k = swarms[0].behaviour.kad.config.replicationFactor
  const addresses: Array<Multiaddr | undefined> = new Array(n).fill(undefined)
  const waiters = new Map<string, (event: Progressed) => void>()
  const loops = swarms.map(async (swarm, i) => {
    for await (const event of swarm) {
      if (event.type === 'NewListenAddr') addresses[i] ??= event.address
      if (event.type !== 'Behaviour' || event.event.behaviour !== 'kad') continue
      const e = event.event.event
      if (e.type === 'OutboundQueryProgressed') waiters.get(`${i}/${e.id}`)?.(e)
    }
  })
  const gone = new Set<number>()

  /** Start a query at peer `i` and wait for its last event; `found` marks the event that counts as its success. */
  const query = async (i: number, start: (b: kad.Behaviour) => kad.QueryId, success: (events: readonly Progressed[]) => boolean, firstCounts?: (e: Progressed) => boolean): Promise<Outcome> => {
    const t0 = performance.now()
    const events: Progressed[] = []
    let counted: number | undefined
    let id: kad.QueryId
    try {
      id = start(swarms[i].behaviour.kad)
    } catch (err) {
      // bootstrap() of a peer that knows nobody (NoKnownPeersError): a failed step.
      if (!(err instanceof kad.NoKnownPeersError)) throw err
      return { ok: false, stats: { requests: 0, success: 0, failure: 0, pending: 0 }, latency: 0, events: [] }
    }
    const key = `${i}/${id}`
    await new Promise<void>(resolve => {
      waiters.set(key, e => {
        events.push(e)
        if (counted === undefined && firstCounts?.(e) === true) counted = performance.now() - t0
        if (e.step.last) resolve()
      })
    })
    waiters.delete(key)
    const last = events[events.length - 1]
    return { ok: success(events), stats: last.stats, latency: counted ?? performance.now() - t0, events }
  }
  /** Run `tasks`, `limit` at a time. */
  const pool = async <T>(count: number, limit: number, task: (j: number) => Promise<T>, what: string): Promise<T[]> => {
    const out: T[] = new Array(count)
    let next = 0
    let done = 0
    await Promise.all(Array.from({ length: Math.min(limit, count) }, async () => {
      while (next < count && !aborted()) {
        const j = next++
        out[j] = await task(j)
        done++
        progress(what, done, count)
      }
    }))
    return out.slice(0, done)
  }
  const bootstrap = async (i: number): Promise<Outcome> => await query(i, b => b.bootstrap(), events => events.every(e => e.result.error === undefined))

  try {
    // Listen.
    for (const swarm of swarms) swarm.listenOn('/memory/0')
    await until(() => addresses.every(a => a != null), 10_000, 'listening')

    // Join: peer i knows a few of the peers that joined before it, and bootstraps.
    const ready = [0]
    let nextJoin = 1
    let joinFailures = 0
    const seedPairs: Array<[number, number]> = []
    await new Promise<void>((resolve, reject) => {
      let running = 0
      const startJoin = (): void => {
        if (nextJoin >= n || aborted()) {
          if (ready.length >= n || (aborted() && running === 0)) resolve()
          return
        }
        running++
        const i = nextJoin++
        for (const s of random.fork(`seeds/${i}`).shuffle(ready).slice(0, bootstrapPeers)) {
          seedPairs.push([s, i])
          swarms[i].behaviour.kad.addAddress(ids[s], addresses[s] as Multiaddr)
        }
        bootstrap(i).then(outcome => {
          running--
          if (!outcome.ok) joinFailures++
          ready.push(i)
          progress('joining', ready.length, n, ' peers')
          startJoin()
        }, reject)
      }
      for (let c = 0; c < joinConcurrency; c++) startJoin()
    })
    for (let round = 0; round < refreshRounds && !aborted(); round++) {
      const outcomes = await pool(n, joinConcurrency * 2, async i => await bootstrap(i), `refresh ${round + 1}`)
      joinFailures += outcomes.filter(o => !o.ok).length
    }
    const setupMs = performance.now() - setupStart
    const realSetupMs = realNow() - realStart
    const tables = swarms.map(s => [...s.behaviour.kad.kbuckets()].reduce((sum, b) => sum + b.entries.length, 0))
    log(`set up in ${(setupMs / 1000).toFixed(1)} s virtual (${net.stats().connections} connections so far, ${joinFailures} bootstrap steps failed), ${(realSetupMs / 1000).toFixed(1)} s of real time; routing tables ${Math.min(...tables)}–${Math.max(...tables)} peers`)
    const memoryIdle = measureMemory()
    const tableRecall = tableRecallOf(swarms, ids, k)

    // Measurement.
    net.resetStats()
    const t0 = performance.now()
    const draw = random.fork('measurement')
    const live = (): number[] => Array.from({ length: n }, (_, i) => i).filter(i => !gone.has(i))
    const pick = (among: readonly number[], not?: number): number => {
      for (;;) {
        const i = among[draw.int(among.length)]
        if (i !== not) return i
      }
    }

    // getClosestPeers of random keys.
    const precisions: number[] = []
    const closest = await pool(lookups, concurrency, async j => {
      const key = draw.fork(`lookup/${j}`).bytes(32)
      const i = pick(live())
      const outcome = await query(i, b => b.getClosestPeers(key), events => {
        const result = events[events.length - 1].result
        return result.type === 'GetClosestPeers' && result.ok !== undefined && result.ok.peers.length === Math.min(k, n - 1)
      })
      const last = outcome.events[outcome.events.length - 1].result
      if (last.type === 'GetClosestPeers' && last.ok !== undefined) {
        const truth = new Set(trueClosest(ids, key, ids[i], k))
        precisions.push(last.ok.peers.filter(p => truth.has(p.peerId.toString())).length / truth.size)
      }
      return outcome
    }, 'getClosestPeers')

    // Records: put from one peer, got from another.
    const keys = Array.from({ length: records }, (_, j) => new TextEncoder().encode(`/sim/record-${j}`))
    const values = keys.map((_, j) => draw.fork(`value/${j}`).bytes(valueSize))
    const publishers = keys.map(() => pick(live()))
    const puts = await pool(records, concurrency, async j => await query(publishers[j], b => b.putRecord({ key: keys[j], value: values[j] }, quorum),
      events => events[events.length - 1].result.type === 'PutRecord' && events[events.length - 1].result.ok !== undefined), 'putRecord')
    const foundRemotely = (j: number) => (e: Progressed): boolean => e.result.type === 'GetRecord' && e.result.ok?.type === 'FoundRecord' &&
      e.result.ok.record.peer !== undefined && equal(e.result.ok.record.record.value, values[j])
    const gets = await pool(records, concurrency, async j => {
      const found = foundRemotely(j)
      return await query(pick(live(), publishers[j]), b => b.getRecord(keys[j]), events => events.some(found), found)
    }, 'getRecord')
    // The records put (all of them, unless the run was stopped).
    const putKeys = keys.slice(0, puts.length)
    const replicasAfterPut = putKeys.map((key, j) => replicas(swarms, key, publishers[j], gone))

    // A share of the peers leaves (not in a stopped run).
    const leaving = aborted() ? [] : draw.fork('leave').shuffle(live()).slice(0, Math.round(leaveShare * n))
    const leftAt = performance.now() - t0
    await Promise.all(leaving.map(async i => {
      gone.add(i)
      await swarms[i].close()
    }))
    if (leaving.length > 0) log(`t=${(leftAt / 1000).toFixed(1)} s: ${leaving.length} peers left`)
    if (!aborted()) await sleep(scenario.afterLeave ?? 1_000)
    const replicasAfterLeave = putKeys.map((key, j) => replicas(swarms, key, publishers[j], gone))
    const remaining = live()
    const getsAfter = await pool(records, concurrency, async j => {
      const found = foundRemotely(j)
      return await query(pick(remaining, publishers[j]), b => b.getRecord(keys[j]), events => events.some(found), found)
    }, 'getRecord after the leave')
    const durationMs = performance.now() - t0
    const realMs = realNow() - realStart
    const network = net.stats()
    const memoryEnd = measureMemory()

    const kinds = [
      kindOf('getClosestPeers', closest),
      kindOf('putRecord', puts),
      kindOf('getRecord', gets),
      kindOf('getRecord after the leave', getsAfter)
    ]
    const all = [...closest, ...puts, ...gets, ...getsAfter]
    const report: KadLookups = {
      lookups: all.length,
      succeeded: all.filter(o => o.ok).length,
      hops: histogram(all.map(o => o.stats.hops ?? 0)),
      log2Peers: Math.log2(n),
      k,
      kinds,
      precision: { mean: mean(precisions), min: precisions.length === 0 ? NaN : Math.min(...precisions) },
      tableRecall,
      replicas: { afterPut: range(replicasAfterPut), afterLeave: range(replicasAfterLeave) },
      left: leaving.length,
      bytesPerLookup: all.length === 0 ? NaN : network.bytes / all.length
    }
    const seedDegrees = new Array<number>(n).fill(0)
    for (const [a, b] of seedPairs) {
      seedDegrees[a]++
      seedDegrees[b]++
    }
    const meanLinkLatency = seedPairs.reduce((sum, [a, b]) => sum + net.link(a, b).latency, 0) / Math.max(1, seedPairs.length)
    const none = summariseDegrees([])
    return {
      name,
      seed,
      peers: n,
      links: seedPairs.length,
      degree: summariseDegrees(seedDegrees),
      meanLinkLatency,
      setupMs,
      durationMs,
      real: { setupMs: realSetupMs, totalMs: realMs },
      batches: [],
      total: emptyDelivery(),
      duplicatesPerDelivery: NaN,
      bytesPerDelivery: NaN,
      gossip: {},
      network,
      meshDegree: { start: none, end: none },
      redials: 0,
      memory: memoryBefore == null || memoryIdle == null || memoryEnd == null
        ? undefined
        : {
            rssPerPeerIdleMB: (memoryIdle.rss - memoryBefore.rss) / n / 2 ** 20,
            rssPerPeerEndMB: (memoryEnd.rss - memoryBefore.rss) / n / 2 ** 20,
            heapPerPeerEndMB: (memoryEnd.heapUsed - memoryBefore.heapUsed) / n / 2 ** 20,
            rssEndMB: memoryEnd.rss / 2 ** 20
          },
      faults: leaving.length === 0 ? [] : [{ type: 'leave', at: leftAt, peers: leaving.length }],
      kad: report,
      ...(aborted()
        ? { partial: { phase: ready.length < n || lookups + 3 * records === 0 ? 'set-up' : 'measurement', measuredMs: ready.length < n ? 0 : durationMs, published: all.length, messages: lookups + 3 * records, unit: 'lookups done', reason: abortReason(signal) } as const }
        : {}),
      runner: 'simulator'
    }
  } finally {
    net.stop()
    await Promise.all(swarms.map(async (swarm, i) => { if (!gone.has(i)) await swarm.close() }))
    await Promise.allSettled(loops)
  }
}

/** Why `signal` stopped the run, as text. */
function abortReason (signal: AbortSignal | undefined): string {
  const reason: unknown = signal?.reason
  return reason instanceof Error ? reason.message : String(reason)
}

/** A kind of lookup's figures. */
function kindOf (label: string, outcomes: readonly Outcome[]): KadLookupKind {
  const hops = outcomes.map(o => o.stats.hops ?? 0)
  const latency = outcomes.filter(o => o.ok).map(o => o.latency)
  const sorted = [...latency].sort((a, b) => a - b)
  return {
    label,
    lookups: outcomes.length,
    succeeded: outcomes.filter(o => o.ok).length,
    hops: histogram(hops),
    hopStats: summarise(hops),
    messages: summarise(outcomes.map(o => o.stats.requests)),
    latency: summarise(latency),
    latencyQuantiles: sorted.length === 0 ? [] : Array.from({ length: 101 }, (_, q) => Math.round(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q / 100 * sorted.length) - 1))] * 1000) / 1000)
  }
}

/**
 * The share of each live peer's true k closest (among all the ids) that its routing table
 * holds, averaged over the peers, after the join.
 */
function tableRecallOf (swarms: readonly KadSwarm[], ids: readonly PeerId[], k: number): number {
  let sum = 0
  for (const [i, swarm] of swarms.entries()) {
    const table = new Set([...swarm.behaviour.kad.kbuckets()].flatMap(b => b.entries.map(e => e.peerId.toString())))
    const truth = trueClosest(ids, ids[i].toMultihash().bytes, ids[i], k)
    sum += truth.filter(p => table.has(p)).length / truth.length
  }
  return sum / swarms.length
}

/** Peers still there, but the publisher, whose store holds the record of `key`. */
function replicas (swarms: readonly KadSwarm[], key: Uint8Array, publisher: number, gone: ReadonlySet<number>): number {
  let count = 0
  for (const [i, swarm] of swarms.entries()) {
    if (i === publisher || gone.has(i)) continue
    if (swarm.behaviour.kad.store.get(key) !== undefined) count++
  }
  return count
}

function trueClosest (ids: readonly PeerId[], key: Uint8Array, exclude: PeerId, k: number): string[] {
  const target = keyOf(key).hash
  return ids.filter(p => !p.equals(exclude)).map(p => ({ p, hash: keyOfPeer(p).hash }))
    .sort((a, b) => compareDistance(target, a.hash, b.hash)).slice(0, k).map(({ p }) => p.toString())
}

function histogram (values: readonly number[]): Record<number, number> {
  const out: Record<number, number> = {}
  for (const v of values) out[v] = (out[v] ?? 0) + 1
  return out
}

function range (values: readonly number[]): RangeSummary {
  return values.length === 0 ? { min: NaN, mean: NaN, max: NaN } : { min: Math.min(...values), mean: mean(values), max: Math.max(...values) }
}

function mean (values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((s, v) => s + v, 0) / values.length
}

function equal (a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((x, i) => x === b[i])
}

function emptyDelivery (): DeliveryReport {
  const none = summarise([])
  return { label: 'all', messages: 0, publishErrors: 0, expected: 0, reachable: 0, delivered: 0, deliveredReachable: 0, deliveryRatio: NaN, complete: 0, latency: none, pathLatency: none }
}

function positive (field: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(field, `must be an integer ≥ 1, got ${value}`)
  return value
}

function nonNegative (field: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) throw new ConfigError(field, `must be an integer ≥ 0, got ${value}`)
  return value
}

async function sleep (ms: number): Promise<void> {
  await new Promise<void>(resolve => { setTimeout(resolve, ms) })
}

async function until (condition: () => boolean, timeout: number, what: string): Promise<void> {
  const deadline = performance.now() + timeout
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`simulation: ${what} did not complete within ${timeout} ms`)
    await sleep(50)
  }
}

