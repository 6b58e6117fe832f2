/**
 * The scenario runner: N GossipSub swarms on a {@link SimulatedNetwork}, a topology, a publish
 * schedule and faults at chosen times; it reports delivery, latency, duplicates, bytes, mesh
 * degrees and memory. See docs/simulation.md.
 *
 * ```ts
 * const report = await runScenario({
 *   peers: 50,
 *   seed: 1,
 *   link: { latency: { min: 10, max: 50 }, loss: 0.01 },
 *   publish: { messages: 20, publishers: 5, size: 256, interval: 50 }
 * })
 * console.log(formatReport(report))
 * ```
 *
 * @module
 */
import '../compat.js'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { ConfigError } from '../core/errors.js'
import { deadline } from '../core/timers.js'
import { SwarmBuilder } from '../swarm/builder.js'
import { combine } from '../behaviour/combine.js'
import { toggle } from '../behaviour/toggle.js'
import * as gossipsub from '../protocols/gossipsub/index.js'
import * as identify from '../protocols/identify/index.js'
import { SimulatedNetwork } from './network.js'
import { Random } from './random.js'
import { TimerHeap } from './heap.js'
import { VirtualClock } from './virtual-time.js'
import { degrees, topologyLinks } from './topology.js'
import { deliveriesPerPeer, deliveryReport, deliveryTimeline, formatDuration, ratioHistogram, summariseDegrees } from './report.js'
import type { LinkOptions, NetworkShard, NetworkStats, SimulatedNetworkOptions } from './network.js'
import type { DegreeSummary, PartialRun, PublishedMessage, Recorded, ScenarioReport } from './report.js'
import type { Topology, TopologyLink } from './topology.js'
import type { SwarmConfig } from '../swarm/config.js'
import type { Swarm } from '../swarm/swarm.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** A batch of messages: `messages` of `size` bytes, one every `interval` ms from `at`, publishers in turn. */
export interface PublishBatch {
  /** Name in the report (default: `batch <i>`). */
  readonly label?: string
  /** Start, in ms after the warm-up (default: 0). */
  readonly at?: number
  /** Messages in the batch. */
  readonly messages: number
  /** Payload size in bytes, at least 8 (default: 256). */
  readonly size?: number
  /** Time between two messages, in ms (default: 100). */
  readonly interval?: number
  /**
   * Who publishes: a number of peers drawn at random (seeded), or their indexes (default: 1).
   * Message i of the batch comes from publisher i mod P.
   */
  readonly publishers?: number | readonly number[]
}

/** A fault at a chosen time. */
export type Fault = {
  readonly type: 'partition'
  /** When it opens, in ms after the warm-up. */
  readonly at: number
  /** It heals this many ms after it opened (default: never, within the run). */
  readonly healAfter?: number
  /** Share of the peers cut off from the rest, drawn at random (seeded)… */
  readonly fraction?: number
  /** …or explicit groups of peer indexes (peers in none form one more group). */
  readonly groups?: ReadonlyArray<readonly number[]>
  /** Reset connections still across it this many ms after it opened (default: they stall until it heals). */
  readonly resetAfter?: number
}

/** A scenario for {@link runScenario}. */
export interface Scenario {
  /** Name in the report. */
  readonly name?: string
  /** Number of peers (swarms). */
  readonly peers: number
  /** Seed of identities, topology, links, publishers, payloads and faults (default: 0). */
  readonly seed?: number | string
  /** Who dials whom (default: random regular of degree 8). */
  readonly topology?: Topology
  /** Every link's parameters (default: instant and lossless). */
  readonly link?: Partial<LinkOptions>
  /** Per pair of peers (`a < b`), parameters overriding `link`. */
  readonly links?: (a: number, b: number) => Partial<LinkOptions> | undefined
  /**
   * Bandwidth (Mbit/s) of each peer's uplink, shared by all its connections, first written,
   * first sent (default: none; see {@link SimulatedNetworkOptions.uplinkMbps}).
   */
  readonly uplinkMbps?: number
  /** GossipSub options of every peer (authenticity is StrictSign with the peer's key). */
  readonly gossipsub?: Partial<Omit<gossipsub.Options, 'authenticity'>>
  /** Run identify next to GossipSub (default: false). */
  readonly identify?: boolean
  /** Swarm options of every peer (default: `connectionTimeout` 30 s). */
  readonly swarm?: Partial<SwarmConfig>
  /** The topic (default: `sim`). */
  readonly topic?: string
  /**
   * Who subscribes to it: a number of peers drawn at random (seeded), or their indexes
   * (default: every peer). Only subscribers relay and receive; a publisher that does not
   * subscribe publishes to a fanout.
   */
  readonly subscribers?: number | readonly number[]
  /** The publish schedule. */
  readonly publish: PublishBatch | readonly PublishBatch[]
  /** Faults (default: none). */
  readonly faults?: readonly Fault[]
  /** After the last publish, wait at most this long for deliveries, in ms (default: 10 000). */
  readonly settle?: number
  /** Give up if the warm-up takes longer, in ms (default: 60 000 + 100 per peer). */
  readonly warmupTimeout?: number
  /** Dials in flight at once during set-up (default: 64). */
  readonly dialConcurrency?: number
  /** A topology link that closed is dialed again after this many ms, doubling up to 8 times that (default: 1 000). */
  readonly redialDelay?: number
  /**
   * The process's memory (`process.memoryUsage` in Node); without it, RSS is not reported.
   * The simulator does not import `node:` modules itself.
   */
  readonly memoryUsage?: () => { readonly rss: number, readonly heapUsed: number }
  /** Collect garbage before memory is measured (`globalThis.gc` with `--expose-gc`). */
  readonly gc?: () => void
  /**
   * `virtual` (default): a {@link VirtualClock} runs the scenario (the process's timers,
   * clock and `Math.random` are the simulation's while it runs). `real`: the real clock.
   */
  readonly time?: 'virtual' | 'real'
  /** Events of the run: set-up done, faults opened and healed, failed publishes (default: none). */
  readonly log?: (line: string) => void
  /**
   * Where the run is (peers set up, links connected, virtual time measured, real time and an
   * estimate of what the phase still needs), at most once every `progressInterval` ms of real
   * time (default: none). {@link formatProgress} makes a line of it.
   */
  readonly progress?: (progress: ScenarioProgress) => void
  /** Real ms between two `progress` calls, at least (default: 5 000). */
  readonly progressInterval?: number
  /**
   * Stop the run: when it aborts, the run stops at once (a set-up dial or wait, the schedule),
   * closes the swarms and reports what it measured until then, with `partial` set. `npm run sim`
   * aborts on Ctrl-C (SIGINT).
   */
  readonly signal?: AbortSignal
}

export { formatReport, summarise } from './report.js'
export type { DegreeSummary, DeliveryReport, LatencySummary, ScenarioReport } from './report.js'

/** A run's progress, for {@link Scenario.progress}. */
export interface ScenarioProgress {
  readonly name: string
  /**
   * `building` the swarms, `listening`, `connecting` the topology, `warm-up` (meshes forming),
   * `measuring` (publishes and faults on their schedule), `settling` (waiting for the last
   * deliveries).
   */
  readonly phase: 'building' | 'listening' | 'connecting' | 'warm-up' | 'measuring' | 'settling'
  readonly peers: number
  /** Swarms made so far. */
  readonly built: number
  /** Topology links, and set-up dials that have had their outcome. */
  readonly links: number
  readonly dialed: number
  /** Virtual ms of the measurement so far, and of its schedule (until the last publish or fault is due). */
  readonly measuredMs: number
  readonly scheduleMs: number
  /** Messages published so far, of all the scenario's. */
  readonly published: number
  readonly messages: number
  /** Deliveries so far. */
  readonly deliveries: number
  /** Real ms since the run started. */
  readonly realMs: number
  /** Real ms the current phase should still take, from its pace so far (undefined: unknown). */
  readonly realLeftMs?: number
}

/** One line for `progress`: where the run is, the real time it took and what the current phase still needs. */
export function formatProgress (p: ScenarioProgress): string {
  const n = (x: number): string => x.toLocaleString('en')
  const where = p.phase === 'building'
    ? `${n(p.built)}/${n(p.peers)} peers set up`
    : p.phase === 'connecting'
      ? `${n(p.dialed)}/${n(p.links)} links connected`
      : p.phase === 'measuring' || p.phase === 'settling'
        ? `t=${(p.measuredMs / 1000).toFixed(1)} s of ${(p.scheduleMs / 1000).toFixed(1)} s virtual, ${n(p.published)}/${n(p.messages)} published, ${n(p.deliveries)} deliveries`
        : `${n(p.peers)} peers`
  const left = p.realLeftMs == null ? '' : `, ~${formatDuration(p.realLeftMs)} left in this phase`
  return `${p.phase}: ${where}; real ${formatDuration(p.realMs)}${left}`
}

type SimBehaviour = ReturnType<typeof makeBehaviour>

function makeBehaviour (key: Parameters<typeof gossipsub.MessageAuthenticity.signed>[0], options: Scenario, sink: gossipsub.MetricsSink) {
  return combine({
    gossipsub: new gossipsub.Behaviour({
      ...options.gossipsub,
      authenticity: gossipsub.MessageAuthenticity.signed(key),
      metrics: sink
    }),
    identify: toggle(options.identify === true ? new identify.Behaviour(key.publicKey) : undefined)
  })
}

/**
 * Run `scenario` and report. The swarms, Noise, Yamux and GossipSub are the production code;
 * the wire is simulated ({@link SimulatedNetwork}). By default the run is in virtual time
 * ({@link VirtualClock}): computing takes no simulated time, waiting takes no real time, and
 * with everything random drawn from the seed a run is reproducible. With `time: 'real'` it runs
 * on the real clock: latencies then include the queueing of every peer's work on the one
 * process, and figures vary with the machine's load. `runScenarioInShards` runs it over
 * several threads.
 */
export async function runScenario (scenario: Scenario): Promise<ScenarioReport> {
  const settings = settingsOf(scenario)
  const plan = planScenario(scenario, settings)
  const clock = scenario.time === 'real' ? undefined : new VirtualClock({ seed: `${settings.seed}/clock` })
  const measured = clock == null
    ? await run(scenario, settings, plan, () => Date.now())
    : await clock.run(async () => await run(scenario, settings, plan, () => clock.realNow()))
  return buildReport(scenario, settings, plan, measured.latency, measured.data)
}

/**
 * @internal One shard of a run split over threads (`testing/shards.ts`): the peers it runs
 * (`index`, `index + count`, …), its way to the others' hosts, and how it waits for a
 * condition over every shard's peers.
 */
export interface ScenarioShard {
  readonly index: number
  readonly count: number
  readonly network: NetworkShard
  /** Called with the shard's network once it is made: what other shards send arrives through it. */
  readonly attach: (net: SimulatedNetwork) => void
  /**
   * Resolve once `remaining()`, summed over the shards, is 0 (each shard's sum is taken between
   * two windows of the clocks); all shards resolve at the same virtual time. After `timeout`
   * ms, reject with `error()` (`soft`: resolve).
   */
  readonly until: (name: string, remaining: () => number, timeout: number, error: () => Error, soft?: boolean) => Promise<void>
}

/** Whether peer `i` runs in `shard` (every peer does without shards). */
function runsIn (shard: ScenarioShard | undefined, i: number): boolean {
  return shard == null || i % shard.count === shard.index
}

/** @internal What {@link run} measured for the report, as plain data (a shard's share of it, with shards). */
export interface RunData {
  readonly setupMs: number
  readonly realSetupMs: number
  readonly durationMs: number
  readonly realMs: number
  readonly network: NetworkStats
  readonly gossip: Readonly<Record<string, number>>
  /** Mesh degrees of the subscribers after the warm-up and at the end. */
  readonly meshStart: readonly number[]
  readonly meshEnd: readonly number[]
  /** Before the swarms were made, after the warm-up, at the end. */
  readonly memory: readonly [Memory | undefined, Memory | undefined, Memory | undefined]
  readonly publishErrors: readonly number[]
  readonly faults: readonly FaultEntry[]
  /** When the measurement started (`performance.now()`); undefined if it never did. */
  readonly t0?: number
  readonly partial?: PartialRun
  readonly published: ReadonlyArray<PublishedMessage | undefined>
  readonly deliveredAt: Float64Array
  readonly duplicates: Uint32Array
  readonly redials: number
}

/**
 * One run, in phases: building the network (`buildSwarms`, `ScenarioRun`), set-up (`listen`,
 * `connect`, `warmUp`), measurement (`startMeasurement`, then the wait for the last
 * deliveries here); `buildReport` makes the report of what it returns. The measurement's
 * waits stay in this function: the counters are read in the same turn as the last delivery
 * that ends it, with no turn of other code in between. With `shard`, only that shard's peers
 * run here and what is returned is their share.
 */
export async function run (scenario: Scenario, settings: Settings, plan: Plan, realNow: () => number, shard?: ScenarioShard): Promise<{ data: RunData, latency: (a: number, b: number) => number }> {
  const realStart = realNow()
  const { n, seed, log } = settings
  const progress = new Progress(scenario, plan, () => realNow() - realStart)

  // Building the network: the simulated wire, the metrics, the swarms and their event loops.
  const net = new SimulatedNetwork({ seed, link: scenario.link, links: scenario.links, uplinkMbps: scenario.uplinkMbps, shard: shard?.network })
  shard?.attach(net)
  const latency = (a: number, b: number): number => net.link(a, b).latency
  const counters = new Map<string, number>()
  const duplicates = new Uint32Array(n)
  // With shards, memory is read once every thread has loaded, as one thread reads it in a process
  // that has: a thread's own code is not its peers'.
  if (shard != null) await shard.until('loaded', () => 0, Infinity, () => new Error('loading'))
  const memoryBefore = settings.measureMemory()
  const setupStart = performance.now()
  log(`${scenario.name ?? 'scenario'}: ${n} peers, ${plan.links.length} links, seed ${seed}`)
  const built = await buildSwarms(scenario, settings, net, countingSink(counters), duplicates, progress, shard)
  const sim = new ScenarioRun(settings, plan, net, counters, duplicates, built, shard)
  progress.sim = sim
  sim.start()
  // A stop ends the set-up dials waiting for their outcome (the waits and the schedule check it).
  const onAbort = (): void => { for (const resolve of sim.pending.values()) resolve(false) }
  scenario.signal?.addEventListener('abort', onAbort)

  try {
    // Set-up: listen, connect the topology, warm up.
    if (shard != null) await sim.until('built', () => 0, 60_000, 'building')
    if (!settings.aborted()) await listen(sim, progress)
    if (!settings.aborted()) await connect(sim, scenario.dialConcurrency ?? 64, progress)
    if (!settings.aborted()) await warmUp(sim, scenario, progress)
    const setupMs = performance.now() - setupStart
    const realSetupMs = realNow() - realStart
    if (settings.aborted()) return { data: stoppedInSetUp(sim, { setupMs, realSetupMs, realMs: realNow() - realStart, memoryBefore }), latency }
    log(`set up in ${(setupMs / 1000).toFixed(1)} s (${net.stats().connections} connections${shard == null ? '' : ' dialed by this thread\'s peers'}), ${(realSetupMs / 1000).toFixed(1)} s of real time`)
    const memoryIdle = settings.measureMemory()
    const meshStart = sim.meshDegrees()

    // Measurement: publishes and faults on their schedule.
    const schedule = startMeasurement(sim, progress)
    try {
      await sleep(schedule.end, scenario.signal)
      // Everything is published: wait for the last deliveries, at most `settle`.
      progress.enter('settling')
      if (shard != null) {
        // Deliveries here of messages published elsewhere count down here: the sum is what is left.
        if (!settings.aborted()) await shard.until('delivered', () => settings.aborted() ? 0 : sim.expectedRemaining, settings.settle, () => new Error('settled'), true)
      } else if (sim.expectedRemaining > 0 && !settings.aborted()) {
        // The settle timer is let go once everything arrived: in real time it would hold the
        // process open up to `settle` after the run.
        const settle = deadline(settings.settle, scenario.signal)
        await Promise.race([
          new Promise<void>(resolve => { sim.allDelivered = resolve }),
          new Promise<void>(resolve => {
            if (settle.signal.aborted) resolve()
            settle.signal.addEventListener('abort', () => { resolve() }, { once: true })
          })
        ])
        settle.clear()
      }
    } finally {
      schedule.stop()
    }
    const durationMs = performance.now() - schedule.t0
    const realMs = realNow() - realStart
    sim.measuring = false
    const network = net.stats()
    const gossip = sortedCounters(counters)
    const meshEnd = sim.meshDegrees()
    const memoryEnd = settings.measureMemory()
    const published = sim.published.filter(p => p != null).length

    return {
      latency,
      data: {
        setupMs,
        realSetupMs,
        durationMs,
        realMs,
        network,
        gossip,
        meshStart,
        meshEnd,
        memory: [memoryBefore, memoryIdle, memoryEnd],
        publishErrors: schedule.publishErrors,
        faults: schedule.faults,
        t0: schedule.t0,
        partial: settings.aborted() ? { phase: 'measurement', measuredMs: durationMs, published, messages: plan.totalMessages, reason: settings.abortReason() } : undefined,
        ...sim.recorded()
      }
    }
  } finally {
    scenario.signal?.removeEventListener('abort', onAbort)
    await sim.close()
  }
}

/** What a run stopped during its set-up measured: the set-up, no deliveries. */
function stoppedInSetUp (sim: ScenarioRun, m: { setupMs: number, realSetupMs: number, realMs: number, memoryBefore: Memory | undefined }): RunData {
  const mesh = sim.meshDegrees()
  const memory = sim.settings.measureMemory()
  return {
    setupMs: m.setupMs,
    realSetupMs: m.realSetupMs,
    durationMs: 0,
    realMs: m.realMs,
    network: sim.net.stats(),
    gossip: sortedCounters(sim.counters),
    meshStart: mesh,
    meshEnd: mesh,
    memory: [m.memoryBefore, memory, memory],
    publishErrors: sim.plan.batches.map(() => 0),
    faults: [],
    partial: { phase: 'set-up', measuredMs: 0, published: 0, messages: sim.plan.totalMessages, reason: sim.settings.abortReason() },
    ...sim.recorded()
  }
}

function sortedCounters (counters: ReadonlyMap<string, number>): Record<string, number> {
  return Object.fromEntries([...counters].sort(([a], [b]) => a.localeCompare(b)))
}

/** Progress for `Scenario.progress`: the run's phases and counts, reported at most once per `progressInterval` of real time. */
class Progress {
  sim: ScenarioRun | undefined
  built = 0
  dialed = 0
  /** Start (`performance.now()`) and length of the measurement's schedule. */
  t0: number | undefined
  scheduleMs = 0
  private phase: ScenarioProgress['phase'] = 'building'
  private phaseStart = 0
  private last: number
  private readonly interval: number

  constructor (private readonly scenario: Scenario, private readonly plan: Plan, private readonly realElapsed: () => number) {
    this.last = realElapsed()
    this.interval = scenario.progressInterval ?? 5_000
  }

  get enabled (): boolean {
    return this.scenario.progress != null
  }

  enter (phase: ScenarioProgress['phase']): void {
    this.phase = phase
    this.phaseStart = this.realElapsed()
  }

  /** Report, if the last report is at least `progressInterval` of real time old. */
  tick (): void {
    const report = this.scenario.progress
    if (report == null) return
    const now = this.realElapsed()
    if (now - this.last < this.interval) return
    this.last = now
    const measuredMs = this.t0 == null ? 0 : performance.now() - this.t0
    const done = this.phase === 'building'
      ? this.built / this.scenario.peers
      : this.phase === 'connecting' ? this.dialed / Math.max(1, this.plan.links.length) : this.phase === 'measuring' ? measuredMs / Math.max(1, this.scheduleMs) : 0
    const spent = now - this.phaseStart
    report({
      name: this.scenario.name ?? 'scenario',
      phase: this.phase,
      peers: this.scenario.peers,
      built: this.built,
      links: this.plan.links.length,
      dialed: this.dialed,
      measuredMs,
      scheduleMs: this.scheduleMs,
      published: this.sim?.published.filter(p => p != null).length ?? 0,
      messages: this.plan.totalMessages,
      deliveries: this.sim?.deliveries ?? 0,
      realMs: now,
      // An estimate from the pace so far, once there is some (5% of the phase done).
      realLeftMs: done >= 0.05 && done < 1 ? spent * (1 - done) / done : undefined
    })
  }
}

/** @internal Memory of the process at one point (after a GC). */
export interface Memory { readonly rss: number, readonly heapUsed: number }

/** @internal A scenario's options with their defaults applied. */
export interface Settings {
  readonly n: number
  readonly seed: string
  /** The root of every seeded draw (forked by label). */
  readonly random: Random
  readonly topic: string
  readonly settle: number
  readonly redialDelay: number
  readonly log: (line: string) => void
  /** The process's memory after a GC; undefined without `memoryUsage`. */
  readonly measureMemory: () => Memory | undefined
  /** Whether `signal` has stopped the run, and why. */
  readonly aborted: () => boolean
  readonly abortReason: () => string
}

/** @internal A scenario's settings: its options with their defaults. */
export function settingsOf (scenario: Scenario): Settings {
  const n = scenario.peers
  if (!Number.isInteger(n) || n < 2) throw new ConfigError('peers', `must be an integer ≥ 2, got ${n}`)
  const seed = String(scenario.seed ?? 0)
  const memoryUsage = scenario.memoryUsage
  const gc = scenario.gc ?? (() => {})
  const signal = scenario.signal
  return {
    n,
    seed,
    random: new Random(seed),
    topic: scenario.topic ?? 'sim',
    settle: scenario.settle ?? 10_000,
    redialDelay: scenario.redialDelay ?? 1_000,
    log: scenario.log ?? (() => {}),
    measureMemory: () => {
      if (memoryUsage == null) return undefined
      gc()
      const { rss, heapUsed } = memoryUsage()
      return { rss, heapUsed }
    },
    aborted: () => signal?.aborted === true,
    abortReason: () => {
      const reason: unknown = signal?.reason
      return reason instanceof Error ? reason.message : String(reason)
    }
  }
}

/** A publish batch with its defaults applied and its publishers drawn. */
interface BatchPlan {
  readonly label: string
  readonly at: number
  readonly messages: number
  readonly size: number
  readonly interval: number
  readonly publishers: readonly number[]
}

/** A fault with its groups drawn. */
type FaultPlan = Fault & { readonly groups: ReadonlyArray<readonly number[]> }

/** @internal The plan: topology, subscribers, publishers, faults: all drawn before anything runs. */
export interface Plan {
  readonly links: readonly TopologyLink[]
  /** Each peer's number of topology links. */
  readonly degree: readonly number[]
  /** 1 for the subscribers of the topic. */
  readonly subscribed: Uint8Array
  readonly subscriberCount: number
  /** Topology neighbours of each peer. */
  readonly neighbours: ReadonlyArray<readonly number[]>
  /** The peers each peer dials (the topology links it is the dialer of). */
  readonly dialsOf: ReadonlyArray<ReadonlySet<number>>
  readonly batches: readonly BatchPlan[]
  readonly faults: readonly FaultPlan[]
  readonly totalMessages: number
  /** The publisher of each message, by index. */
  readonly publisherOf: Uint32Array
}

/**
 * @internal What `runScenario` draws for `scenario` before anything runs (topology,
 * subscribers, publishers, faults), with its seed, topic and settle time: to run the same
 * scenario elsewhere (separate processes, Shadow).
 */
export function scenarioPlan (scenario: Scenario): Plan & { readonly seed: string, readonly topic: string, readonly settle: number } {
  const settings = settingsOf(scenario)
  return { ...planScenario(scenario, settings), seed: settings.seed, topic: settings.topic, settle: settings.settle }
}

/** @internal Draw the plan of `scenario`. */
export function planScenario (scenario: Scenario, settings: Settings): Plan {
  const { n, random } = settings
  const publish = (Array.isArray(scenario.publish) ? scenario.publish : [scenario.publish]) as readonly PublishBatch[]
  const links = topologyLinks(scenario.topology ?? { type: 'random-regular', degree: 8 }, n, random.fork('topology'))
  const degree = degrees(n, links)
  const subscribed = new Uint8Array(n)
  if (scenario.subscribers == null) {
    subscribed.fill(1)
  } else {
    const chosen = typeof scenario.subscribers === 'number'
      ? random.fork('subscribers').shuffle(Array.from({ length: n }, (_, p) => p)).slice(0, scenario.subscribers)
      : scenario.subscribers
    for (const p of chosen) {
      if (!Number.isInteger(p) || p < 0 || p >= n) throw new ConfigError('subscribers', 'must name peers of the scenario')
      subscribed[p] = 1
    }
  }
  const subscriberCount = subscribed.reduce((sum, x) => sum + x, 0)
  const neighbours = Array.from({ length: n }, (): number[] => [])
  /** Links each peer dials: peer → targets. */
  const dials = Array.from({ length: n }, (): number[] => [])
  for (const [a, b] of links) {
    neighbours[a].push(b)
    neighbours[b].push(a)
    dials[a].push(b)
  }
  const batches = publish.map((batch, i): BatchPlan => {
    if (!Number.isInteger(batch.messages) || batch.messages < 0) throw new ConfigError(`publish[${i}].messages`, 'must be an integer ≥ 0')
    const size = batch.size ?? 256
    if (size < 8) throw new ConfigError(`publish[${i}].size`, 'must be at least 8 bytes (index and batch)')
    const publishers = typeof batch.publishers === 'object'
      ? [...batch.publishers]
      : random.fork(`publishers/${i}`).shuffle(Array.from({ length: n }, (_, p) => p)).slice(0, batch.publishers ?? 1)
    if (publishers.length === 0 || publishers.some(p => !Number.isInteger(p) || p < 0 || p >= n)) throw new ConfigError(`publish[${i}].publishers`, 'must name peers of the scenario')
    return { label: batch.label ?? `batch ${i}`, at: batch.at ?? 0, messages: batch.messages, size, interval: batch.interval ?? 100, publishers }
  })
  const faults = (scenario.faults ?? []).map((fault, i): FaultPlan => {
    const groups = fault.groups ?? [random.fork(`fault/${i}`).shuffle(Array.from({ length: n }, (_, p) => p)).slice(0, Math.round((fault.fraction ?? 0.5) * n))]
    return { ...fault, groups }
  })
  const totalMessages = batches.reduce((sum, batch) => sum + batch.messages, 0)
  const publisherOf = new Uint32Array(batches.flatMap(batch => Array.from({ length: batch.messages }, (_, m) => batch.publishers[m % batch.publishers.length])))
  return { links, degree, subscribed, subscriberCount, neighbours, dialsOf: dials.map(targets => new Set(targets)), batches, faults, totalMessages, publisherOf }
}

/** A GossipSub metrics sink that sums every counter into `counters` (control and unwanted split by type and stage). */
function countingSink (counters: Map<string, number>): gossipsub.MetricsSink {
  return {
    increment: (name, value, labels) => {
      const key = name === 'control_sent' || name === 'control_received'
        ? `${name}_${(labels as { type: string }).type}`
        : name === 'messages_unwanted' ? `${name}_${(labels as { stage: string }).stage}` : name
      counters.set(key, (counters.get(key) ?? 0) + value)
    },
    observe: () => {}
  }
}

/** `sink`, also counting peer `i`'s duplicates into `duplicates[i]`. */
function peerSink (sink: gossipsub.MetricsSink, duplicates: Uint32Array, i: number): gossipsub.MetricsSink {
  return {
    increment: (name, value, labels) => {
      sink.increment(name, value, labels)
      if (name === 'messages_duplicate') duplicates[i] += value
    },
    observe: sink.observe
  }
}

/** The peers' swarms (with shards, only those of the shard; `undefined` for the others) and every peer's id. */
interface Built {
  readonly swarms: ReadonlyArray<Swarm<SimBehaviour> | undefined>
  readonly peerIds: readonly PeerId[]
}

/**
 * The swarms, with seeded identities, each on a host of `net` (fewer if the run is stopped
 * meanwhile; with shards, the shard's, and every peer's id).
 */
async function buildSwarms (scenario: Scenario, settings: Settings, net: SimulatedNetwork, sink: gossipsub.MetricsSink, duplicates: Uint32Array, progress: Progress, shard?: ScenarioShard): Promise<Built> {
  const swarms: Array<Swarm<SimBehaviour> | undefined> = []
  const peerIds: PeerId[] = []
  for (let i = 0; i < settings.n && !settings.aborted(); i++) {
    const key = await generateKeyPairFromSeed('Ed25519', settings.random.fork(`key/${i}`).bytes(32))
    if (!runsIn(shard, i)) {
      swarms.push(undefined)
      peerIds.push(peerIdFromPrivateKey(key))
      continue
    }
    const host = shard == null ? net.host() : net.host(i)
    const swarm = await SwarmBuilder.withExistingIdentity(key).withTransport(host.transport)
      .withBehaviour(k => makeBehaviour(k, scenario, peerSink(sink, duplicates, i)))
      .withSwarmConfig({ connectionTimeout: 30_000, ...scenario.swarm })
      .build()
    swarms.push(swarm)
    peerIds.push(swarm.localPeerId)
    progress.built++
    progress.tick()
  }
  return { swarms, peerIds }
}

/**
 * What the phases of a run share: the plan, the network, the swarms and their event loops, the
 * dialer (set-up dials wait for their outcome; closed topology links are dialed again) and the
 * delivery bookkeeping.
 */
class ScenarioRun {
  readonly indexOf: ReadonlyMap<string, number>
  /** Each swarm's first listen address. */
  readonly addresses: Array<Multiaddr | undefined>
  /** Delivery bookkeeping: one slot per (message, peer). */
  readonly published: Array<PublishedMessage | undefined>
  readonly deliveredAt: Float64Array
  deliveries = 0
  expectedRemaining = 0
  allDelivered: (() => void) | undefined
  measuring = false
  /** Topology links closed and dialed again while measuring. */
  redials = 0
  /** Set-up dials waiting for their outcome, by `from>to`. */
  readonly pending = new Map<string, (ok: boolean) => void>()
  private readonly redialTimers = new Set<ReturnType<typeof setTimeout>>()
  private readonly backoff = new Map<string, number>()
  private stopping = false
  private loops: Array<Promise<void>> = []

  /** The swarms of the peers that run here (`undefined` for those of other shards). */
  readonly swarms: ReadonlyArray<Swarm<SimBehaviour> | undefined>
  /** Every peer's id. */
  readonly peerIds: readonly PeerId[]

  constructor (
    readonly settings: Settings,
    readonly plan: Plan,
    readonly net: SimulatedNetwork,
    readonly counters: Map<string, number>,
    /** Duplicates received per peer (GossipSub's `messages_duplicate`), since the measurement started. */
    readonly duplicates: Uint32Array,
    built: Built,
    readonly shard?: ScenarioShard
  ) {
    const n = settings.n
    this.swarms = built.swarms
    this.peerIds = built.peerIds
    this.indexOf = new Map<string, number>(built.peerIds.map((id, i) => [id.toString(), i]))
    // With shards, a host's first listener is on port id + 1 (see `SimulatedNetwork`).
    this.addresses = Array.from({ length: n }, (_, i) => shard == null || runsIn(shard, i) ? undefined : multiaddr(`/memory/${i + 1}`))
    this.published = new Array(plan.totalMessages)
    this.deliveredAt = new Float64Array(plan.totalMessages * n).fill(NaN)
  }

  /** The swarm of peer `i`, which the caller knows runs here. */
  swarm (i: number): Swarm<SimBehaviour> {
    return this.swarms[i] as Swarm<SimBehaviour>
  }

  /** The swarms that run here, with their peers' indexes. */
  local (): Array<[number, Swarm<SimBehaviour>]> {
    return this.swarms.flatMap((swarm, i) => swarm == null ? [] : [[i, swarm]])
  }

  /**
   * Wait until `remaining()` is 0 (over every shard), polled every 50 ms (with shards: between
   * the clocks' windows); throw after `timeout` ms with `describe()`.
   */
  async until (name: string, remaining: () => number, timeout: number, what: string, describe: () => string = () => ''): Promise<void> {
    const condition = (): number => this.settings.aborted() ? 0 : remaining()
    const error = (): Error => new Error(`simulation: ${what} did not complete within ${timeout} ms. ${describe()}`)
    if (this.shard != null) return await this.shard.until(name, condition, timeout, error)
    const end = performance.now() + timeout
    while (condition() !== 0) {
      if (performance.now() > end) throw error()
      await sleep(50)
    }
  }

  /** The deliveries, publishes and duplicates recorded here, for the report. */
  recorded (): Pick<RunData, 'published' | 'deliveredAt' | 'duplicates' | 'redials'> {
    return { published: this.published, deliveredAt: this.deliveredAt, duplicates: this.duplicates, redials: this.redials }
  }

  dial (from: number, to: number): void {
    const target = this.addresses[to]
    if (target == null || this.stopping) return
    const swarm = this.swarm(from)
    try {
      swarm.dial({ peerId: this.peerIds[to], addresses: [target], condition: 'disconnected' })
    } catch {
      this.pending.get(`${from}>${to}`)?.(swarm.isConnected(this.peerIds[to]))
    }
  }

  private scheduleRedial (from: number, to: number): void {
    if (this.stopping) return
    const redialDelay = this.settings.redialDelay
    const key = `${from}>${to}`
    const delay = this.backoff.get(key) ?? redialDelay
    this.backoff.set(key, Math.min(delay * 2, redialDelay * 8))
    const timer = setTimeout(() => {
      this.redialTimers.delete(timer)
      if (!this.swarm(from).isConnected(this.peerIds[to])) {
        if (this.measuring) this.redials++
        this.dial(from, to)
      }
    }, delay)
    this.redialTimers.add(timer)
  }

  /** Start every swarm's event loop. */
  start (): void {
    const { n } = this.settings
    const { dialsOf } = this.plan
    const { indexOf, addresses, pending, published, deliveredAt, peerIds, shard } = this
    const { publisherOf } = this.plan
    this.loops = this.local().map(async ([i, swarm]) => {
      for await (const event of swarm) {
        switch (event.type) {
          case 'NewListenAddr':
            addresses[i] ??= event.address
            break
          case 'ConnectionEstablished': {
            const j = indexOf.get(event.peerId.toString())
            if (j == null) break
            this.backoff.delete(`${i}>${j}`)
            pending.get(`${i}>${j}`)?.(true)
            break
          }
          case 'OutgoingConnectionError': {
            const j = event.peerId == null ? undefined : indexOf.get(event.peerId.toString())
            if (j == null) break
            pending.get(`${i}>${j}`)?.(false)
            if (dialsOf[i].has(j) && !swarm.isConnected(peerIds[j])) this.scheduleRedial(i, j)
            break
          }
          case 'ConnectionClosed': {
            const j = indexOf.get(event.peerId.toString())
            if (j != null && event.numEstablished === 0 && dialsOf[i].has(j)) this.scheduleRedial(i, j)
            break
          }
          case 'Behaviour': {
            if (event.event.behaviour !== 'gossipsub' || event.event.event.type !== 'Message') break
            const data = event.event.event.message.data
            const index = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0)
            // With shards, messages published elsewhere are not in `published` here.
            const publisher = shard == null ? published[index]?.publisher : publisherOf[index]
            if (publisher == null || publisher === i) break
            const slot = index * n + i
            if (!Number.isNaN(deliveredAt[slot])) break
            deliveredAt[slot] = performance.now()
            this.deliveries++
            if (--this.expectedRemaining === 0) this.allDelivered?.()
            break
          }
        }
      }
    })
  }

  /** The subscribers (1) that topology links not cut by an open partition lead to from `source` through subscribers (0 itself). */
  reachableFrom (source: number): Uint8Array {
    const { neighbours, subscribed } = this.plan
    const seen = new Uint8Array(this.settings.n)
    const stack = [source]
    seen[source] = 1
    while (stack.length > 0) {
      const u = stack.pop() as number
      for (const w of neighbours[u]) {
        if (seen[w] === 0 && subscribed[w] === 1 && !this.net.blocked(u, w)) {
          seen[w] = 1
          stack.push(w)
        }
      }
    }
    seen[source] = 0
    return seen
  }

  /** The subscribers' mesh degrees now. */
  meshDegrees (): number[] {
    return this.local().filter(([i]) => this.plan.subscribed[i] === 1).map(([, s]) => s.behaviour.gossipsub.meshPeers(this.settings.topic).length)
  }

  /** Stop dialing, stop the network, close the swarms and wait for their event loops. */
  async close (): Promise<void> {
    this.stopping = true
    for (const timer of this.redialTimers) clearTimeout(timer)
    for (const resolve of this.pending.values()) resolve(false)
    this.net.stop()
    await Promise.all(this.local().map(async ([, swarm]) => { await swarm.close() }))
    await Promise.allSettled(this.loops)
  }
}

// The set-up phases return the promise they end on (no `async`), so that awaiting one takes the
// same turns as awaiting that promise where it was made: a run's timing does not depend on how
// its code is cut into functions.

/** Subscribe the subscribers, listen, and wait until every swarm has an address. */
function listen (sim: ScenarioRun, progress: Progress): Promise<void> {
  progress.enter('listening')
  const local = sim.local()
  for (const [i, swarm] of local) {
    if (sim.plan.subscribed[i] === 1) swarm.behaviour.gossipsub.subscribe(sim.settings.topic)
    swarm.listenOn('/memory/0')
  }
  return sim.until('listening', () => local.filter(([i]) => sim.addresses[i] == null).length, 10_000, 'listening')
}

/**
 * Connect the topology, `concurrency` dials at a time, each waiting for its outcome (with
 * shards, each shard dials its peers' links, `concurrency` shared out among them, and the
 * phase ends when every shard is done).
 */
function connect (sim: ScenarioRun, concurrency: number, progress: Progress): Promise<unknown> {
  progress.enter('connecting')
  let next = 0
  const { shard } = sim
  const work = sim.plan.links.filter(([a]) => runsIn(shard, a)).map(([a, b]) => [a, b] as const)
  const share = shard == null ? concurrency : Math.max(1, Math.ceil(concurrency / shard.count))
  const dialed = Promise.all(Array.from({ length: Math.min(share, work.length) }, async () => {
    while (next < work.length && !sim.settings.aborted()) {
      const [a, b] = work[next++]
      const key = `${a}>${b}`
      await new Promise<void>(resolve => {
        sim.pending.set(key, () => {
          sim.pending.delete(key)
          progress.dialed++
          progress.tick()
          resolve()
        })
        sim.dial(a, b)
      })
    }
  }))
  return shard == null ? dialed : dialed.then(async () => { await sim.until('connected', () => 0, Infinity, 'connecting') })
}

/**
 * Warm-up: wait until every peer is connected to its topology neighbours, knows which of them
 * subscribe, and (a subscriber) has a mesh of at least min(D_lo, subscribed neighbours).
 */
function warmUp (sim: ScenarioRun, scenario: Scenario, progress: Progress): Promise<void> {
  progress.enter('warm-up')
  const { n, topic } = sim.settings
  const { neighbours, subscribed, degree } = sim.plan
  const { peerIds } = sim
  const local = sim.local()
  const warmupTimeout = scenario.warmupTimeout ?? 60_000 + 100 * n
  const meshLow = scenario.gossipsub?.meshNLow ?? gossipsub.defaultConfig.meshNLow
  const ready = (i: number, swarm: Swarm<SimBehaviour>): boolean => {
    const g = swarm.behaviour.gossipsub
    const subscribedNeighbours = neighbours[i].reduce((sum, j) => sum + subscribed[j], 0)
    return neighbours[i].every(j => swarm.isConnected(peerIds[j])) &&
      g.subscribers(topic).length >= subscribedNeighbours &&
      (subscribed[i] === 0 || g.meshPeers(topic).length >= Math.min(meshLow, subscribedNeighbours))
  }
  const late = (): Array<[number, Swarm<SimBehaviour>]> => local.filter(([i, swarm]) => !ready(i, swarm))
  const remaining = (): number => {
    progress.tick()
    return local.some(([i, swarm]) => !ready(i, swarm)) ? 1 : 0
  }
  return sim.until('warm-up', remaining, warmupTimeout, 'warm-up', () => {
    const peers = late()
    return `${peers.length} peers not ready, e.g. ${peers.slice(0, 5).map(([i, swarm]) => `#${i}: ${swarm.connectedPeers().length}/${degree[i]} connected, ${swarm.behaviour.gossipsub.subscribers(topic).length} subscribers, mesh ${swarm.behaviour.gossipsub.meshPeers(topic).length}`).join('; ')}`
  })
}

/** A fault as it happened (see `ScenarioReport.faults`). */
interface FaultEntry { type: string, at: number, healedAt?: number, peers: number }

/** The measurement under way: its start, when its last publish or fault is due, what it logged so far. */
interface MeasurementSchedule {
  /** `performance.now()` when it started. */
  readonly t0: number
  /** Ms from the start until every publish and fault is due (and 1 more). */
  readonly end: number
  /** Per batch, publishes that threw. */
  readonly publishErrors: readonly number[]
  readonly faults: readonly FaultEntry[]
  /** Cancel the publishes, faults and heals not yet due, and the progress lines. */
  readonly stop: () => void
}

/**
 * Start the measurement: reset the counters and put the publishes and faults on their schedule
 * (and, with `Scenario.progress`, a look at the real time every 250 ms of virtual time).
 */
function startMeasurement (sim: ScenarioRun, progress: Progress): MeasurementSchedule {
  const { random, topic, log } = sim.settings
  const { batches, faults, subscriberCount, subscribed } = sim.plan
  const { net, published } = sim
  net.resetStats()
  sim.counters.clear()
  sim.duplicates.fill(0)
  sim.measuring = true
  const t0 = performance.now()
  sim.expectedRemaining = 0
  const timers: Array<ReturnType<typeof setTimeout>> = []
  const faultLog: FaultEntry[] = []
  let index = 0
  let lastPublish = 0
  const publishErrors = batches.map(() => 0)
  batches.forEach((batch, b) => {
    for (let m = 0; m < batch.messages; m++) {
      const id = index++
      const publisher = batch.publishers[m % batch.publishers.length]
      const at = batch.at + m * batch.interval
      lastPublish = Math.max(lastPublish, at)
      const payload = random.fork(`payload/${id}`).bytes(batch.size)
      new DataView(payload.buffer).setUint32(0, id)
      new DataView(payload.buffer).setUint32(4, b)
      // With shards, each publishes its own peers' messages.
      if (!runsIn(sim.shard, publisher)) continue
      timers.push(setTimeout(() => {
        published[id] = { batch: b, publisher, at: performance.now(), reachable: sim.reachableFrom(publisher) }
        const receivers = subscriberCount - subscribed[publisher]
        sim.expectedRemaining += receivers
        try {
          sim.swarm(publisher).behaviour.gossipsub.publish(topic, payload)
        } catch (err) {
          published[id] = undefined
          sim.expectedRemaining -= receivers
          publishErrors[b]++
          log(`publish ${id} from #${publisher} failed: ${(err as Error).message}`)
        }
      }, at))
    }
  })
  for (const fault of faults) {
    timers.push(setTimeout(() => {
      const partition = net.partition(fault.groups, { resetAfter: fault.resetAfter })
      const entry: FaultEntry = { type: fault.type, at: performance.now() - t0, peers: fault.groups.reduce((s, g) => s + g.length, 0) }
      faultLog.push(entry)
      log(`t=${(entry.at / 1000).toFixed(1)} s: partition of ${entry.peers} peers`)
      if (fault.healAfter != null) {
        timers.push(setTimeout(() => {
          partition.heal()
          entry.healedAt = performance.now() - t0
          log(`t=${(entry.healedAt / 1000).toFixed(1)} s: healed`)
        }, fault.healAfter))
      }
    }, fault.at))
  }
  const lastFault = faults.reduce((t, f) => Math.max(t, f.at + (f.healAfter ?? 0)), 0)
  const end = Math.max(lastPublish, lastFault) + 1
  progress.t0 = t0
  progress.scheduleMs = end
  progress.enter('measuring')
  const ticker = progress.enabled ? setInterval(() => { progress.tick() }, 250) : undefined
  return {
    t0,
    end,
    publishErrors,
    faults: faultLog,
    stop: () => {
      clearInterval(ticker)
      for (const timer of timers) clearTimeout(timer)
    }
  }
}

/**
 * @internal The report of what `run` measured (with shards: their shares, merged): delivery per
 * batch and in all (against the shortest paths), and what was measured.
 */
export function buildReport (scenario: Scenario, settings: Settings, plan: Plan, latencyOf: (a: number, b: number) => number, m: RunData): ScenarioReport {
  const { n, seed } = settings
  const { links, degree, neighbours, subscribed, batches, totalMessages } = plan
  // Shortest paths over link latencies from each publisher (Dijkstra), for the lower bound.
  const distances = new Map<number, Float64Array>()
  const pathFrom = (source: number): Float64Array => {
    let d = distances.get(source)
    if (d == null) {
      d = shortestPaths(n, neighbours, latencyOf, source, subscribed)
      distances.set(source, d)
    }
    return d
  }
  const rec: Recorded = { peers: n, subscribed, published: m.published, deliveredAt: m.deliveredAt }
  let first = 0
  const batchReports = batches.map((batch, b) => {
    const ids = Array.from({ length: batch.messages }, (_, m) => first + m)
    first += batch.messages
    return deliveryReport(rec, batch.label, ids, m.publishErrors[b], pathFrom)
  })
  const total = deliveryReport(rec, 'all', Array.from({ length: totalMessages }, (_, id) => id), m.publishErrors.reduce((s, e) => s + e, 0), pathFrom)
  const meanLinkLatency = links.reduce((sum, [a, b]) => sum + latencyOf(a, b), 0) / Math.max(1, links.length)
  const [memoryBefore, memoryIdle, memoryEnd] = m.memory
  return {
    name: scenario.name ?? 'scenario',
    seed,
    peers: n,
    links: links.length,
    degree: summariseDegrees(degree),
    meanLinkLatency,
    setupMs: m.setupMs,
    durationMs: m.durationMs,
    real: { setupMs: m.realSetupMs, totalMs: m.realMs },
    batches: batchReports,
    total,
    duplicatesPerDelivery: total.delivered === 0 ? NaN : (m.gossip.messages_duplicate ?? 0) / total.delivered,
    bytesPerDelivery: total.delivered === 0 ? NaN : m.network.bytes / total.delivered,
    gossip: m.gossip,
    network: m.network,
    meshDegree: { start: summariseDegrees(m.meshStart), end: summariseDegrees(m.meshEnd) },
    redials: m.redials,
    memory: memoryBefore == null || memoryIdle == null || memoryEnd == null
      ? undefined
      : {
          rssPerPeerIdleMB: (memoryIdle.rss - memoryBefore.rss) / n / 2 ** 20,
          rssPerPeerEndMB: (memoryEnd.rss - memoryBefore.rss) / n / 2 ** 20,
          heapPerPeerEndMB: (memoryEnd.heapUsed - memoryBefore.heapUsed) / n / 2 ** 20,
          rssEndMB: memoryEnd.rss / 2 ** 20
        },
    faults: m.faults,
    ...(m.t0 == null
      ? {}
      : {
          timeline: deliveryTimeline(rec, m.t0, m.durationMs),
          duplicates: ratioHistogram(m.duplicates, deliveriesPerPeer(rec), p => subscribed[p] === 1)
        }),
    ...(m.partial == null ? {} : { partial: m.partial }),
    runner: 'simulator'
  }
}

/**
 * @internal Dijkstra from `source` over link latencies, forwarding only through `relays` (and
 * the source): a peer that is not a relay is reached but passes nothing on. Over the
 * simulator's binary heap ({@link TimerHeap}), stale entries skipped: O(E log E) per
 * publisher, where the scan it replaced took n² steps.
 */
export function shortestPaths (n: number, neighbours: ReadonlyArray<readonly number[]>, latency: (a: number, b: number) => number, source: number, relays: Uint8Array): Float64Array {
  const d = new Float64Array(n).fill(Infinity)
  const done = new Uint8Array(n)
  d[source] = 0
  // Candidates by distance (`at`); a peer settled by an earlier, shorter entry skips the rest.
  const candidates = new TimerHeap<{ at: number, seq: number, peer: number }>()
  let seq = 0
  candidates.push({ at: 0, seq: seq++, peer: source })
  for (let next = candidates.pop(); next !== undefined; next = candidates.pop()) {
    const u = next.peer
    if (done[u] === 1) continue
    done[u] = 1
    if (u !== source && relays[u] === 0) continue
    for (const w of neighbours[u]) {
      const via = d[u] + latency(u, w)
      if (via < d[w]) {
        d[w] = via
        candidates.push({ at: via, seq: seq++, peer: w })
      }
    }
  }
  return d
}

/** Wait `ms`, or until `signal` aborts. */
async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  await new Promise<void>(resolve => {
    if (signal == null) {
      setTimeout(resolve, ms)
      return
    }
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done)
    if (signal.aborted) done()
  })
}
