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
import { ConfigError } from '../core/errors.js'
import { SwarmBuilder } from '../swarm/builder.js'
import { combine } from '../behaviour/combine.js'
import { toggle } from '../behaviour/toggle.js'
import * as gossipsub from '../protocols/gossipsub/index.js'
import * as identify from '../protocols/identify/index.js'
import { SimulatedNetwork } from './network.js'
import { Random } from './random.js'
import { VirtualClock } from './virtual-time.js'
import { degrees, topologyLinks } from './topology.js'
import type { LinkOptions, NetworkStats, SimulatedNetworkOptions } from './network.js'
import type { Topology, TopologyLink } from './topology.js'
import type { SwarmConfig } from '../swarm/config.js'
import type { Swarm } from '../swarm/swarm.js'
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
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void
}

/** Percentiles of a set of latencies, in ms (`NaN` when empty). */
export interface LatencySummary {
  readonly count: number
  readonly mean: number
  readonly p50: number
  readonly p95: number
  readonly p99: number
  readonly max: number
}

/** A distribution of small integers (mesh degrees). */
export interface DegreeSummary {
  readonly min: number
  readonly mean: number
  readonly max: number
  /** Peers per value. */
  readonly histogram: Readonly<Record<number, number>>
}

/** Delivery of a batch (or of all messages). */
export interface DeliveryReport {
  readonly label: string
  /** Messages published (publishes that threw are not counted). */
  readonly messages: number
  /** Publishes that threw (`PublishError`). */
  readonly publishErrors: number
  /** Deliveries expected: every subscriber but the publisher, for each message. */
  readonly expected: number
  /**
   * Deliveries possible when each message was published: receivers joined to the publisher by
   * topology links that no open partition cut (equal to `expected` without partitions).
   */
  readonly reachable: number
  /** Distinct deliveries. */
  readonly delivered: number
  /** Of those, deliveries to receivers that were reachable (`delivered − deliveredReachable` crossed a partition, late). */
  readonly deliveredReachable: number
  /** delivered / expected. */
  readonly deliveryRatio: number
  /** Messages that reached every subscriber. */
  readonly complete: number
  /** Publish → delivery, over every delivery. */
  readonly latency: LatencySummary
  /**
   * The lower bound of each delivery's latency: the shortest path from publisher to receiver
   * over the links' latencies (what an ideal router with no processing would achieve).
   */
  readonly pathLatency: LatencySummary
}

/** What {@link runScenario} reports. */
export interface ScenarioReport {
  readonly name: string
  readonly seed: string
  readonly peers: number
  /** Topology links, and each peer's number of links. */
  readonly links: number
  readonly degree: DegreeSummary
  /** Mean one-way latency of the topology's links, in ms. */
  readonly meanLinkLatency: number
  /** Creating the swarms, connecting and warming up, in ms. */
  readonly setupMs: number
  /** From the first publish to the end of the settle time, in ms. */
  readonly durationMs: number
  /** Real (wall-clock) time of the set-up and of the whole run until the report, in ms (the same as the above with `time: 'real'`). */
  readonly real: { readonly setupMs: number, readonly totalMs: number }
  readonly batches: readonly DeliveryReport[]
  readonly total: DeliveryReport
  /** Copies of messages received that a peer already had, per delivery. */
  readonly duplicatesPerDelivery: number
  /** Bytes on the links (every protocol, control included) during the measurement, per delivery. */
  readonly bytesPerDelivery: number
  /** GossipSub counters summed over the peers, during the measurement. */
  readonly gossip: Readonly<Record<string, number>>
  /** The network's counters during the measurement. */
  readonly network: NetworkStats
  /** Mesh degrees of the subscribers after the warm-up and at the end. */
  readonly meshDegree: { readonly start: DegreeSummary, readonly end: DegreeSummary }
  /** Topology links closed and dialed again during the measurement. */
  readonly redials: number
  /** RSS per peer (MB): after the warm-up and at the end; total RSS (MB). Absent without `memoryUsage`. */
  readonly memory?: { readonly rssPerPeerIdleMB: number, readonly rssPerPeerEndMB: number, readonly heapPerPeerEndMB: number, readonly rssEndMB: number }
  /** Faults as they happened: what, when (ms after the warm-up), and peers affected. */
  readonly faults: ReadonlyArray<{ readonly type: string, readonly at: number, readonly healedAt?: number, readonly peers: number }>
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

/** A message as published: when, by whom, in which batch. */
interface Published {
  readonly batch: number
  readonly publisher: number
  readonly at: number
  /** Receivers a path of topology links not cut by a partition led to when it was published (1: reachable). */
  readonly reachable: Uint8Array
}

/**
 * Run `scenario` and report. The swarms, Noise, Yamux and GossipSub are the production code;
 * the wire is simulated ({@link SimulatedNetwork}). By default the run is in virtual time
 * ({@link VirtualClock}): computing takes no simulated time, waiting takes no real time, and
 * with everything random drawn from the seed a run is reproducible. With `time: 'real'` it runs
 * on the real clock: latencies then include the queueing of every peer's work on the one
 * process, and figures vary with the machine's load.
 */
export async function runScenario (scenario: Scenario): Promise<ScenarioReport> {
  if (scenario.time === 'real') return await run(scenario, () => Date.now())
  const clock = new VirtualClock({ seed: `${String(scenario.seed ?? 0)}/clock` })
  return await clock.run(async () => await run(scenario, () => clock.realNow()))
}

/**
 * One run, in phases: the plan (`planScenario`), building the network (`buildSwarms`,
 * `ScenarioRun`), set-up (`listen`, `connect`, `warmUp`), measurement (`startMeasurement`, then
 * the wait for the last deliveries here), and the report (`buildReport`). The measurement's
 * waits stay in this function: the counters are read in the same turn as the last delivery
 * that ends it, with no turn of other code in between.
 */
async function run (scenario: Scenario, realNow: () => number): Promise<ScenarioReport> {
  const realStart = realNow()
  const settings = settingsOf(scenario)
  const { n, seed, log } = settings
  const plan = planScenario(scenario, settings)

  // Building the network: the simulated wire, the metrics, the swarms and their event loops.
  const net = new SimulatedNetwork({ seed, link: scenario.link, links: scenario.links, uplinkMbps: scenario.uplinkMbps })
  const counters = new Map<string, number>()
  const sink = countingSink(counters)
  const memoryBefore = settings.measureMemory()
  const setupStart = performance.now()
  log(`${scenario.name ?? 'scenario'}: ${n} peers, ${plan.links.length} links, seed ${seed}`)
  const swarms = await buildSwarms(scenario, settings, net, sink)
  const sim = new ScenarioRun(settings, plan, net, counters, swarms)
  sim.start()

  try {
    // Set-up: listen, connect the topology, warm up.
    await listen(sim)
    await connect(sim, scenario.dialConcurrency ?? 64)
    await warmUp(sim, scenario)
    const setupMs = performance.now() - setupStart
    const realSetupMs = realNow() - realStart
    log(`set up in ${(setupMs / 1000).toFixed(1)} s (${net.stats().connections} connections), ${(realSetupMs / 1000).toFixed(1)} s of real time`)
    const memoryIdle = settings.measureMemory()
    const meshStart = summariseDegrees(sim.meshDegrees())

    // Measurement: publishes and faults on their schedule.
    const schedule = startMeasurement(sim, () => realNow() - realStart)
    try {
      await sleep(schedule.end)
      // Everything is published: wait for the last deliveries, at most `settle`.
      if (sim.expectedRemaining > 0) await Promise.race([new Promise<void>(resolve => { sim.allDelivered = resolve }), sleep(settings.settle)])
    } finally {
      schedule.stop()
    }
    const durationMs = performance.now() - schedule.t0
    const realMs = realNow() - realStart
    sim.measuring = false
    const network = net.stats()
    const gossip = Object.fromEntries([...counters].sort(([a], [b]) => a.localeCompare(b)))
    const meshEnd = summariseDegrees(sim.meshDegrees())
    const memoryEnd = settings.measureMemory()

    return buildReport(scenario, sim, {
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
      faults: schedule.faults
    })
  } finally {
    await sim.close()
  }
}

/** Memory of the process at one point (after a GC). */
interface Memory { readonly rss: number, readonly heapUsed: number }

/** A scenario's options with their defaults applied. */
interface Settings {
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
}

function settingsOf (scenario: Scenario): Settings {
  const n = scenario.peers
  if (!Number.isInteger(n) || n < 2) throw new ConfigError('peers', `must be an integer ≥ 2, got ${n}`)
  const seed = String(scenario.seed ?? 0)
  const memoryUsage = scenario.memoryUsage
  const gc = scenario.gc ?? (() => {})
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

/** The plan: topology, subscribers, publishers, faults: all drawn before anything runs. */
interface Plan {
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
}

function planScenario (scenario: Scenario, settings: Settings): Plan {
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
  return { links, degree, subscribed, subscriberCount, neighbours, dialsOf: dials.map(targets => new Set(targets)), batches, faults, totalMessages }
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

/** The swarms, with seeded identities, each on a host of `net`. */
async function buildSwarms (scenario: Scenario, settings: Settings, net: SimulatedNetwork, sink: gossipsub.MetricsSink): Promise<Array<Swarm<SimBehaviour>>> {
  const swarms: Array<Swarm<SimBehaviour>> = []
  for (let i = 0; i < settings.n; i++) {
    const key = await generateKeyPairFromSeed('Ed25519', settings.random.fork(`key/${i}`).bytes(32))
    const host = net.host()
    swarms.push(await SwarmBuilder.withExistingIdentity(key).withTransport(host.transport)
      .withBehaviour(k => makeBehaviour(k, scenario, sink))
      .withSwarmConfig({ connectionTimeout: 30_000, ...scenario.swarm })
      .build())
  }
  return swarms
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
  readonly published: Array<Published | undefined>
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

  constructor (
    readonly settings: Settings,
    readonly plan: Plan,
    readonly net: SimulatedNetwork,
    readonly counters: Map<string, number>,
    readonly swarms: ReadonlyArray<Swarm<SimBehaviour>>
  ) {
    const n = settings.n
    this.indexOf = new Map<string, number>(swarms.map((swarm, i) => [swarm.localPeerId.toString(), i]))
    this.addresses = new Array<Multiaddr | undefined>(n).fill(undefined)
    this.published = new Array(plan.totalMessages)
    this.deliveredAt = new Float64Array(plan.totalMessages * n).fill(NaN)
  }

  dial (from: number, to: number): void {
    const target = this.addresses[to]
    if (target == null || this.stopping) return
    try {
      this.swarms[from].dial({ peerId: this.swarms[to].localPeerId, addresses: [target], condition: 'disconnected' })
    } catch {
      this.pending.get(`${from}>${to}`)?.(this.swarms[from].isConnected(this.swarms[to].localPeerId))
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
      if (!this.swarms[from].isConnected(this.swarms[to].localPeerId)) {
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
    const { swarms, indexOf, addresses, pending, published, deliveredAt } = this
    this.loops = swarms.map(async (swarm, i) => {
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
            if (dialsOf[i].has(j) && !swarm.isConnected(swarms[j].localPeerId)) this.scheduleRedial(i, j)
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
            const message = published[index]
            if (message == null || message.publisher === i) break
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
    return this.swarms.filter((_, i) => this.plan.subscribed[i] === 1).map(s => s.behaviour.gossipsub.meshPeers(this.settings.topic).length)
  }

  /** Stop dialing, stop the network, close the swarms and wait for their event loops. */
  async close (): Promise<void> {
    this.stopping = true
    for (const timer of this.redialTimers) clearTimeout(timer)
    for (const resolve of this.pending.values()) resolve(false)
    this.net.stop()
    await Promise.all(this.swarms.map(async swarm => { await swarm.close() }))
    await Promise.allSettled(this.loops)
  }
}

// The set-up phases return the promise they end on (no `async`), so that awaiting one takes the
// same turns as awaiting that promise where it was made: a run's timing does not depend on how
// its code is cut into functions.

/** Subscribe the subscribers, listen, and wait until every swarm has an address. */
function listen (sim: ScenarioRun): Promise<void> {
  for (const [i, swarm] of sim.swarms.entries()) {
    if (sim.plan.subscribed[i] === 1) swarm.behaviour.gossipsub.subscribe(sim.settings.topic)
    swarm.listenOn('/memory/0')
  }
  return until(() => sim.addresses.every(a => a != null), 10_000, 'listening')
}

/** Connect the topology, `concurrency` dials at a time, each waiting for its outcome. */
function connect (sim: ScenarioRun, concurrency: number): Promise<void[]> {
  let next = 0
  const work = sim.plan.links.map(([a, b]) => [a, b] as const)
  return Promise.all(Array.from({ length: Math.min(concurrency, work.length) }, async () => {
    while (next < work.length) {
      const [a, b] = work[next++]
      const key = `${a}>${b}`
      await new Promise<void>(resolve => {
        sim.pending.set(key, () => {
          sim.pending.delete(key)
          resolve()
        })
        sim.dial(a, b)
      })
    }
  }))
}

/**
 * Warm-up: wait until every peer is connected to its topology neighbours, knows which of them
 * subscribe, and (a subscriber) has a mesh of at least min(D_lo, subscribed neighbours).
 */
function warmUp (sim: ScenarioRun, scenario: Scenario): Promise<void> {
  const { n, topic } = sim.settings
  const { neighbours, subscribed, degree } = sim.plan
  const swarms = sim.swarms
  const warmupTimeout = scenario.warmupTimeout ?? 60_000 + 100 * n
  const meshLow = scenario.gossipsub?.meshNLow ?? gossipsub.defaultConfig.meshNLow
  const ready = (i: number): boolean => {
    const g = swarms[i].behaviour.gossipsub
    const subscribedNeighbours = neighbours[i].reduce((sum, j) => sum + subscribed[j], 0)
    return neighbours[i].every(j => swarms[i].isConnected(swarms[j].localPeerId)) &&
      g.subscribers(topic).length >= subscribedNeighbours &&
      (subscribed[i] === 0 || g.meshPeers(topic).length >= Math.min(meshLow, subscribedNeighbours))
  }
  return until(() => swarms.every((_, i) => ready(i)), warmupTimeout, 'warm-up', () => {
    const late = swarms.map((_, i) => i).filter(i => !ready(i))
    return `${late.length} peers not ready, e.g. ${late.slice(0, 5).map(i => `#${i}: ${swarms[i].connectedPeers().length}/${degree[i]} connected, ${swarms[i].behaviour.gossipsub.subscribers(topic).length} subscribers, mesh ${swarms[i].behaviour.gossipsub.meshPeers(topic).length}`).join('; ')}`
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
 * (and a progress line every 5 s). `elapsedReal()`: real ms since the run started.
 */
function startMeasurement (sim: ScenarioRun, elapsedReal: () => number): MeasurementSchedule {
  const { random, topic, log } = sim.settings
  const { batches, faults, subscriberCount, subscribed, totalMessages } = sim.plan
  const { net, swarms, published } = sim
  net.resetStats()
  sim.counters.clear()
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
      timers.push(setTimeout(() => {
        published[id] = { batch: b, publisher, at: performance.now(), reachable: sim.reachableFrom(publisher) }
        const receivers = subscriberCount - subscribed[publisher]
        sim.expectedRemaining += receivers
        try {
          swarms[publisher].behaviour.gossipsub.publish(topic, payload)
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
  // Progress every 5 s.
  const progress = setInterval(() => {
    log(`t=${((performance.now() - t0) / 1000).toFixed(0)} s (real ${(elapsedReal() / 1000).toFixed(0)} s): ${published.filter(p => p != null).length}/${totalMessages} published, ${sim.deliveries} deliveries`)
  }, 5_000)
  return {
    t0,
    end: Math.max(lastPublish, lastFault) + 1,
    publishErrors,
    faults: faultLog,
    stop: () => {
      clearInterval(progress)
      for (const timer of timers) clearTimeout(timer)
    }
  }
}

/** What the set-up and the measurement measured, for the report. */
interface Measured {
  readonly setupMs: number
  readonly realSetupMs: number
  readonly durationMs: number
  readonly realMs: number
  readonly network: NetworkStats
  readonly gossip: Readonly<Record<string, number>>
  readonly meshStart: DegreeSummary
  readonly meshEnd: DegreeSummary
  /** Before the swarms were made, after the warm-up, at the end. */
  readonly memory: readonly [Memory | undefined, Memory | undefined, Memory | undefined]
  readonly publishErrors: readonly number[]
  readonly faults: readonly FaultEntry[]
}

/** The report: delivery per batch and in all (against the shortest paths), and what was measured. */
function buildReport (scenario: Scenario, sim: ScenarioRun, m: Measured): ScenarioReport {
  const { n, seed } = sim.settings
  const { links, degree, neighbours, subscribed, batches, totalMessages } = sim.plan
  // Shortest paths over link latencies from each publisher (Dijkstra), for the lower bound.
  const latencyOf = (a: number, b: number): number => sim.net.link(a, b).latency
  const distances = new Map<number, Float64Array>()
  const pathFrom = (source: number): Float64Array => {
    let d = distances.get(source)
    if (d == null) {
      d = shortestPaths(n, neighbours, latencyOf, source, subscribed)
      distances.set(source, d)
    }
    return d
  }
  let first = 0
  const batchReports = batches.map((batch, b) => {
    const ids = Array.from({ length: batch.messages }, (_, m) => first + m)
    first += batch.messages
    return deliveryReport(sim, pathFrom, batch.label, ids, m.publishErrors[b])
  })
  const total = deliveryReport(sim, pathFrom, 'all', Array.from({ length: totalMessages }, (_, id) => id), m.publishErrors.reduce((s, e) => s + e, 0))
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
    duplicatesPerDelivery: total.delivered === 0 ? NaN : (sim.counters.get('messages_duplicate') ?? 0) / total.delivered,
    bytesPerDelivery: total.delivered === 0 ? NaN : m.network.bytes / total.delivered,
    gossip: m.gossip,
    network: m.network,
    meshDegree: { start: m.meshStart, end: m.meshEnd },
    redials: sim.redials,
    memory: memoryBefore == null || memoryIdle == null || memoryEnd == null
      ? undefined
      : {
          rssPerPeerIdleMB: (memoryIdle.rss - memoryBefore.rss) / n / 2 ** 20,
          rssPerPeerEndMB: (memoryEnd.rss - memoryBefore.rss) / n / 2 ** 20,
          heapPerPeerEndMB: (memoryEnd.heapUsed - memoryBefore.heapUsed) / n / 2 ** 20,
          rssEndMB: memoryEnd.rss / 2 ** 20
        },
    faults: m.faults
  }
}

/** Delivery of the messages `ids`: counts, latencies, and the shortest-path latencies (`pathFrom(publisher)`). */
function deliveryReport (sim: ScenarioRun, pathFrom: (source: number) => Float64Array, label: string, ids: readonly number[], errors: number): DeliveryReport {
  const { n } = sim.settings
  const { subscribed } = sim.plan
  const { published, deliveredAt } = sim
  const latencies: number[] = []
  const paths: number[] = []
  let expected = 0
  let reachable = 0
  let deliveredReachable = 0
  let complete = 0
  for (const id of ids) {
    const message = published[id]
    if (message == null) continue
    const d = pathFrom(message.publisher)
    let all = true
    for (let p = 0; p < n; p++) {
      if (p === message.publisher || subscribed[p] === 0) continue
      expected++
      reachable += message.reachable[p]
      const at = deliveredAt[id * n + p]
      if (Number.isNaN(at)) {
        all = false
        continue
      }
      deliveredReachable += message.reachable[p]
      latencies.push(at - message.at)
      paths.push(d[p])
    }
    if (all) complete++
  }
  const messages = ids.filter(id => published[id] != null).length
  return {
    label,
    messages,
    publishErrors: errors,
    expected,
    reachable,
    delivered: latencies.length,
    deliveredReachable,
    deliveryRatio: expected === 0 ? NaN : latencies.length / expected,
    complete,
    latency: summarise(latencies),
    pathLatency: summarise(paths)
  }
}

/** A human-readable summary of `report`, a few lines. */
export function formatReport (report: ScenarioReport): string {
  const ms = (x: number): string => Number.isNaN(x) ? '–' : x.toFixed(0)
  const pct = (x: number): string => Number.isNaN(x) ? '–' : `${(100 * x).toFixed(2)}%`
  const degree = (d: DegreeSummary): string => `${d.min}–${d.max} (mean ${d.mean.toFixed(1)})`
  const lines = [
    `${report.name}: ${report.peers} peers, ${report.links} links (degree ${degree(report.degree)}), mean link latency ${report.meanLinkLatency.toFixed(1)} ms, seed ${report.seed}`,
    `  set-up ${(report.setupMs / 1000).toFixed(1)} s, measured ${(report.durationMs / 1000).toFixed(1)} s; real time ${(report.real.setupMs / 1000).toFixed(1)} s + ${((report.real.totalMs - report.real.setupMs) / 1000).toFixed(1)} s`
  ]
  for (const d of [...report.batches, ...(report.batches.length > 1 ? [report.total] : [])]) {
    lines.push(`  ${d.label}: ${d.messages} messages${d.publishErrors > 0 ? ` (${d.publishErrors} publish errors)` : ''}, delivered ${pct(d.deliveryRatio)} (${d.delivered}/${d.expected}${d.reachable < d.expected ? `; ${d.deliveredReachable}/${d.reachable} reachable` : ''}), complete ${d.complete}/${d.messages}, ` +
      `latency p50 ${ms(d.latency.p50)} p95 ${ms(d.latency.p95)} p99 ${ms(d.latency.p99)} max ${ms(d.latency.max)} ms (shortest path p50 ${ms(d.pathLatency.p50)} p99 ${ms(d.pathLatency.p99)})`)
  }
  lines.push(`  duplicates/delivery ${report.duplicatesPerDelivery.toFixed(2)}, bytes/delivery ${report.bytesPerDelivery.toFixed(0)}, mesh degree start ${degree(report.meshDegree.start)} end ${degree(report.meshDegree.end)}`)
  lines.push(`  network: ${report.network.chunks} chunks, ${report.network.segments} segments, ${report.network.lostSegments} lost, ${report.network.delayedChunks} chunks delayed, ${report.network.heldChunks} held, ${report.network.resets} resets, ${report.redials} redials`)
  for (const fault of report.faults) lines.push(`  fault: ${fault.type} of ${fault.peers} peers at ${(fault.at / 1000).toFixed(1)} s${fault.healedAt == null ? '' : `, healed at ${(fault.healedAt / 1000).toFixed(1)} s`}`)
  if (report.memory != null) lines.push(`  RSS per peer ${report.memory.rssPerPeerIdleMB.toFixed(2)} MB after warm-up, ${report.memory.rssPerPeerEndMB.toFixed(2)} MB at the end (heap ${report.memory.heapPerPeerEndMB.toFixed(2)} MB); process RSS ${report.memory.rssEndMB.toFixed(0)} MB`)
  return lines.join('\n')
}

/** Percentiles (nearest rank) of `values`. */
export function summarise (values: readonly number[]): LatencySummary {
  if (values.length === 0) return { count: 0, mean: NaN, p50: NaN, p95: NaN, p99: NaN, max: NaN }
  const sorted = Float64Array.from(values).sort()
  const rank = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
  let sum = 0
  for (const v of sorted) sum += v
  return { count: sorted.length, mean: sum / sorted.length, p50: rank(0.5), p95: rank(0.95), p99: rank(0.99), max: sorted[sorted.length - 1] }
}

function summariseDegrees (values: readonly number[]): DegreeSummary {
  const histogram: Record<number, number> = {}
  let sum = 0
  for (const v of values) {
    histogram[v] = (histogram[v] ?? 0) + 1
    sum += v
  }
  return { min: Math.min(...values), mean: sum / Math.max(1, values.length), max: Math.max(...values), histogram }
}

/** Dijkstra from `source` through `relays` only (O(n²): fine for thousands of peers). */
function shortestPaths (n: number, neighbours: ReadonlyArray<readonly number[]>, latency: (a: number, b: number) => number, source: number, relays: Uint8Array): Float64Array {
  const d = new Float64Array(n).fill(Infinity)
  const done = new Uint8Array(n)
  d[source] = 0
  for (let round = 0; round < n; round++) {
    let u = -1
    for (let v = 0; v < n; v++) if (done[v] === 0 && (u === -1 || d[v] < d[u])) u = v
    if (u === -1 || d[u] === Infinity) break
    done[u] = 1
    if (u !== source && relays[u] === 0) continue
    for (const w of neighbours[u]) {
      const via = d[u] + latency(u, w)
      if (via < d[w]) d[w] = via
    }
  }
  return d
}

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** Poll `condition` every 50 ms until it holds; throw after `timeout` ms with `describe()`. */
async function until (condition: () => boolean, timeout: number, what: string, describe: () => string = () => ''): Promise<void> {
  const deadline = performance.now() + timeout
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`simulation: ${what} did not complete within ${timeout} ms. ${describe()}`)
    await sleep(50)
  }
}
