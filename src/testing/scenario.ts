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
import type { Topology } from './topology.js'
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

async function run (scenario: Scenario, realNow: () => number): Promise<ScenarioReport> {
  const realStart = realNow()
  const n = scenario.peers
  if (!Number.isInteger(n) || n < 2) throw new ConfigError('peers', `must be an integer ≥ 2, got ${n}`)
  const log = scenario.log ?? (() => {})
  const seed = String(scenario.seed ?? 0)
  const random = new Random(seed)
  const topic = scenario.topic ?? 'sim'
  const batches = (Array.isArray(scenario.publish) ? scenario.publish : [scenario.publish]) as readonly PublishBatch[]
  const settle = scenario.settle ?? 10_000
  const redialDelay = scenario.redialDelay ?? 1_000
  const memoryUsage = scenario.memoryUsage
  const gc = scenario.gc ?? (() => {})
  const measureMemory = (): { rss: number, heapUsed: number } | undefined => {
    if (memoryUsage == null) return undefined
    gc()
    const { rss, heapUsed } = memoryUsage()
    return { rss, heapUsed }
  }

  // The plan: topology, publishers, payload sizes, faults: all drawn before anything runs.
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
  const plans = batches.map((batch, i) => {
    if (!Number.isInteger(batch.messages) || batch.messages < 0) throw new ConfigError(`publish[${i}].messages`, 'must be an integer ≥ 0')
    const size = batch.size ?? 256
    if (size < 8) throw new ConfigError(`publish[${i}].size`, 'must be at least 8 bytes (index and batch)')
    const publishers = typeof batch.publishers === 'object'
      ? [...batch.publishers]
      : random.fork(`publishers/${i}`).shuffle(Array.from({ length: n }, (_, p) => p)).slice(0, batch.publishers ?? 1)
    if (publishers.length === 0 || publishers.some(p => !Number.isInteger(p) || p < 0 || p >= n)) throw new ConfigError(`publish[${i}].publishers`, 'must name peers of the scenario')
    return { label: batch.label ?? `batch ${i}`, at: batch.at ?? 0, messages: batch.messages, size, interval: batch.interval ?? 100, publishers }
  })
  const faults = (scenario.faults ?? []).map((fault, i) => {
    const groups = fault.groups ?? [random.fork(`fault/${i}`).shuffle(Array.from({ length: n }, (_, p) => p)).slice(0, Math.round((fault.fraction ?? 0.5) * n))]
    return { ...fault, groups }
  })
  const totalMessages = plans.reduce((sum, plan) => sum + plan.messages, 0)
  /** The subscribers (1) that topology links not cut by an open partition lead to from `source` through subscribers (0 itself). */
  const reachableFrom = (source: number): Uint8Array => {
    const seen = new Uint8Array(n)
    const stack = [source]
    seen[source] = 1
    while (stack.length > 0) {
      const u = stack.pop() as number
      for (const w of neighbours[u]) {
        if (seen[w] === 0 && subscribed[w] === 1 && !net.blocked(u, w)) {
          seen[w] = 1
          stack.push(w)
        }
      }
    }
    seen[source] = 0
    return seen
  }

  const net = new SimulatedNetwork({ seed, link: scenario.link, links: scenario.links, uplinkMbps: scenario.uplinkMbps })
  const counters = new Map<string, number>()
  const sink: gossipsub.MetricsSink = {
    increment: (name, value, labels) => {
      const key = name === 'control_sent' || name === 'control_received'
        ? `${name}_${(labels as { type: string }).type}`
        : name === 'messages_unwanted' ? `${name}_${(labels as { stage: string }).stage}` : name
      counters.set(key, (counters.get(key) ?? 0) + value)
    },
    observe: () => {}
  }

  const memoryBefore = measureMemory()
  const setupStart = performance.now()
  log(`${scenario.name ?? 'scenario'}: ${n} peers, ${links.length} links, seed ${seed}`)

  // The swarms, with seeded identities.
  const swarms: Array<Swarm<SimBehaviour>> = []
  for (let i = 0; i < n; i++) {
    const key = await generateKeyPairFromSeed('Ed25519', random.fork(`key/${i}`).bytes(32))
    const host = net.host()
    swarms.push(await SwarmBuilder.withExistingIdentity(key).withTransport(host.transport)
      .withBehaviour(k => makeBehaviour(k, scenario, sink))
      .withSwarmConfig({ connectionTimeout: 30_000, ...scenario.swarm })
      .build())
  }
  const indexOf = new Map<string, number>(swarms.map((swarm, i) => [swarm.localPeerId.toString(), i]))
  const addresses: Array<Multiaddr | undefined> = new Array<Multiaddr | undefined>(n).fill(undefined)

  // Delivery bookkeeping: one slot per (message, peer).
  const published: Array<Published | undefined> = new Array(totalMessages)
  const deliveredAt = new Float64Array(totalMessages * n).fill(NaN)
  let deliveries = 0
  let expectedRemaining = 0
  let allDelivered: (() => void) | undefined
  let measuring = false
  let redials = 0

  // Dials: set-up dials wait for their outcome; closed topology links are dialed again.
  const pending = new Map<string, (ok: boolean) => void>()
  const redialTimers = new Set<ReturnType<typeof setTimeout>>()
  let stopping = false
  const dial = (from: number, to: number): void => {
    const target = addresses[to]
    if (target == null || stopping) return
    try {
      swarms[from].dial({ peerId: swarms[to].localPeerId, addresses: [target], condition: 'disconnected' })
    } catch {
      pending.get(`${from}>${to}`)?.(swarms[from].isConnected(swarms[to].localPeerId))
    }
  }
  const backoff = new Map<string, number>()
  const scheduleRedial = (from: number, to: number): void => {
    if (stopping) return
    const key = `${from}>${to}`
    const delay = backoff.get(key) ?? redialDelay
    backoff.set(key, Math.min(delay * 2, redialDelay * 8))
    const timer = setTimeout(() => {
      redialTimers.delete(timer)
      if (!swarms[from].isConnected(swarms[to].localPeerId)) {
        if (measuring) redials++
        dial(from, to)
      }
    }, delay)
    redialTimers.add(timer)
  }
  const dialsOf = dials.map(targets => new Set(targets))

  // Every swarm's event loop.
  const loops = swarms.map(async (swarm, i) => {
    for await (const event of swarm) {
      switch (event.type) {
        case 'NewListenAddr':
          addresses[i] ??= event.address
          break
        case 'ConnectionEstablished': {
          const j = indexOf.get(event.peerId.toString())
          if (j == null) break
          backoff.delete(`${i}>${j}`)
          pending.get(`${i}>${j}`)?.(true)
          break
        }
        case 'OutgoingConnectionError': {
          const j = event.peerId == null ? undefined : indexOf.get(event.peerId.toString())
          if (j == null) break
          pending.get(`${i}>${j}`)?.(false)
          if (dialsOf[i].has(j) && !swarm.isConnected(swarms[j].localPeerId)) scheduleRedial(i, j)
          break
        }
        case 'ConnectionClosed': {
          const j = indexOf.get(event.peerId.toString())
          if (j != null && event.numEstablished === 0 && dialsOf[i].has(j)) scheduleRedial(i, j)
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
          deliveries++
          if (--expectedRemaining === 0) allDelivered?.()
          break
        }
      }
    }
  })

  try {
    for (const [i, swarm] of swarms.entries()) {
      if (subscribed[i] === 1) swarm.behaviour.gossipsub.subscribe(topic)
      swarm.listenOn('/memory/0')
    }
    await until(() => addresses.every(a => a != null), 10_000, 'listening')

    // Connect the topology, `dialConcurrency` dials at a time.
    const concurrency = scenario.dialConcurrency ?? 64
    let next = 0
    const work = links.map(([a, b]) => [a, b] as const)
    await Promise.all(Array.from({ length: Math.min(concurrency, work.length) }, async () => {
      while (next < work.length) {
        const [a, b] = work[next++]
        const key = `${a}>${b}`
        await new Promise<void>(resolve => {
          pending.set(key, () => {
            pending.delete(key)
            resolve()
          })
          dial(a, b)
        })
      }
    }))
    const warmupTimeout = scenario.warmupTimeout ?? 60_000 + 100 * n
    const meshLow = scenario.gossipsub?.meshNLow ?? gossipsub.defaultConfig.meshNLow
    const ready = (i: number): boolean => {
      const g = swarms[i].behaviour.gossipsub
      const subscribedNeighbours = neighbours[i].reduce((sum, j) => sum + subscribed[j], 0)
      return neighbours[i].every(j => swarms[i].isConnected(swarms[j].localPeerId)) &&
        g.subscribers(topic).length >= subscribedNeighbours &&
        (subscribed[i] === 0 || g.meshPeers(topic).length >= Math.min(meshLow, subscribedNeighbours))
    }
    await until(() => swarms.every((_, i) => ready(i)), warmupTimeout, 'warm-up', () => {
      const late = swarms.map((_, i) => i).filter(i => !ready(i))
      return `${late.length} peers not ready, e.g. ${late.slice(0, 5).map(i => `#${i}: ${swarms[i].connectedPeers().length}/${degree[i]} connected, ${swarms[i].behaviour.gossipsub.subscribers(topic).length} subscribers, mesh ${swarms[i].behaviour.gossipsub.meshPeers(topic).length}`).join('; ')}`
    })
    const setupMs = performance.now() - setupStart
    const realSetupMs = realNow() - realStart
    log(`set up in ${(setupMs / 1000).toFixed(1)} s (${net.stats().connections} connections), ${(realSetupMs / 1000).toFixed(1)} s of real time`)
    const memoryIdle = measureMemory()
    const meshDegrees = (): number[] => swarms.filter((_, i) => subscribed[i] === 1).map(s => s.behaviour.gossipsub.meshPeers(topic).length)
    const meshStart = summariseDegrees(meshDegrees())

    // Measurement: publishes and faults on their schedule.
    net.resetStats()
    counters.clear()
    measuring = true
    const t0 = performance.now()
    expectedRemaining = 0
    const timers: Array<ReturnType<typeof setTimeout>> = []
    const faultLog: Array<{ type: string, at: number, healedAt?: number, peers: number }> = []
    let index = 0
    let lastPublish = 0
    const publishErrors = plans.map(() => 0)
    plans.forEach((plan, b) => {
      for (let m = 0; m < plan.messages; m++) {
        const id = index++
        const publisher = plan.publishers[m % plan.publishers.length]
        const at = plan.at + m * plan.interval
        lastPublish = Math.max(lastPublish, at)
        const payload = random.fork(`payload/${id}`).bytes(plan.size)
        new DataView(payload.buffer).setUint32(0, id)
        new DataView(payload.buffer).setUint32(4, b)
        timers.push(setTimeout(() => {
          published[id] = { batch: b, publisher, at: performance.now(), reachable: reachableFrom(publisher) }
          const receivers = subscriberCount - subscribed[publisher]
          expectedRemaining += receivers
          try {
            swarms[publisher].behaviour.gossipsub.publish(topic, payload)
          } catch (err) {
            published[id] = undefined
            expectedRemaining -= receivers
            publishErrors[b]++
            log(`publish ${id} from #${publisher} failed: ${(err as Error).message}`)
          }
        }, at))
      }
    })
    for (const fault of faults) {
      timers.push(setTimeout(() => {
        const partition = net.partition(fault.groups, { resetAfter: fault.resetAfter })
        const entry: { type: string, at: number, healedAt?: number, peers: number } = { type: fault.type, at: performance.now() - t0, peers: fault.groups.reduce((s, g) => s + g.length, 0) }
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
      log(`t=${((performance.now() - t0) / 1000).toFixed(0)} s (real ${((realNow() - realStart) / 1000).toFixed(0)} s): ${published.filter(p => p != null).length}/${totalMessages} published, ${deliveries} deliveries`)
    }, 5_000)
    try {
      await sleep(Math.max(lastPublish, lastFault) + 1)
      // Everything is published: wait for the last deliveries, at most `settle`.
      if (expectedRemaining > 0) await Promise.race([new Promise<void>(resolve => { allDelivered = resolve }), sleep(settle)])
    } finally {
      clearInterval(progress)
      for (const timer of timers) clearTimeout(timer)
    }
    const durationMs = performance.now() - t0
    const realMs = realNow() - realStart
    measuring = false
    const network = net.stats()
    const gossip = Object.fromEntries([...counters].sort(([a], [b]) => a.localeCompare(b)))
    const meshEnd = summariseDegrees(meshDegrees())
    const memoryEnd = measureMemory()

    // Shortest paths over link latencies from each publisher (Dijkstra), for the lower bound.
    const latencyOf = (a: number, b: number): number => net.link(a, b).latency
    const distances = new Map<number, Float64Array>()
    const pathFrom = (source: number): Float64Array => {
      let d = distances.get(source)
      if (d == null) {
        d = shortestPaths(n, neighbours, latencyOf, source, subscribed)
        distances.set(source, d)
      }
      return d
    }
    const report = (label: string, ids: number[], errors: number): DeliveryReport => {
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
    let first = 0
    const batchReports = plans.map((plan, b) => {
      const ids = Array.from({ length: plan.messages }, (_, m) => first + m)
      first += plan.messages
      return report(plan.label, ids, publishErrors[b])
    })
    const total = report('all', Array.from({ length: totalMessages }, (_, id) => id), publishErrors.reduce((s, e) => s + e, 0))
    const meanLinkLatency = links.reduce((sum, [a, b]) => sum + latencyOf(a, b), 0) / Math.max(1, links.length)
    return {
      name: scenario.name ?? 'scenario',
      seed,
      peers: n,
      links: links.length,
      degree: summariseDegrees(degree),
      meanLinkLatency,
      setupMs,
      durationMs,
      real: { setupMs: realSetupMs, totalMs: realMs },
      batches: batchReports,
      total,
      duplicatesPerDelivery: total.delivered === 0 ? NaN : (counters.get('messages_duplicate') ?? 0) / total.delivered,
      bytesPerDelivery: total.delivered === 0 ? NaN : network.bytes / total.delivered,
      gossip,
      network,
      meshDegree: { start: meshStart, end: meshEnd },
      redials,
      memory: memoryBefore == null || memoryIdle == null || memoryEnd == null
        ? undefined
        : {
            rssPerPeerIdleMB: (memoryIdle.rss - memoryBefore.rss) / n / 2 ** 20,
            rssPerPeerEndMB: (memoryEnd.rss - memoryBefore.rss) / n / 2 ** 20,
            heapPerPeerEndMB: (memoryEnd.heapUsed - memoryBefore.heapUsed) / n / 2 ** 20,
            rssEndMB: memoryEnd.rss / 2 ** 20
          },
      faults: faultLog
    }
  } finally {
    stopping = true
    for (const timer of redialTimers) clearTimeout(timer)
    for (const resolve of pending.values()) resolve(false)
    net.stop()
    await Promise.all(swarms.map(async swarm => { await swarm.close() }))
    await Promise.allSettled(loops)
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
