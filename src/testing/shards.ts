/**
 * A scenario split over threads: each shard (a worker thread in Node) runs the peers `i` with
 * `i mod count = index` on its own virtual clock, and the coordinator keeps the clocks in step,
 * as a conservative parallel discrete-event simulation does. See docs/simulation.md, "Threads".
 *
 * - Everything a host sends a host of another shard (a dial's SYN and its answer, each chunk,
 *   close and reset of a connection) arrives at least the smallest link latency of the topology
 *   (the lookahead, L) after it left: the sender computes its arrival, from its link, its
 *   uplink and the loss and partitions, as a network in one thread does.
 * - So the clocks run in windows: each shard runs everything due before the horizon H, then
 *   hands the coordinator what it sent across, the time of its next timer and the state of the
 *   conditions it waits on (peers not ready, deliveries still due). The next horizon is the
 *   earliest of those timers and arrivals, plus L: nothing sent in the window can arrive
 *   before it.
 * - The phases of a run (peers built, listening, connected, warm, all delivered) end when the
 *   condition holds in every shard at the same barrier, and each shard goes on at that
 *   barrier's time: every shard sees the same virtual times.
 * - A run is deterministic for a given number of threads (the draws of `Math.random` are the
 *   shard's), not across numbers of threads.
 *
 * The module imports nothing of Node: `spawn` (a worker thread in Node, see
 * `node-shard.ts`) and `runShard` on the other side are the platform's.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { ConfigError, PeerswarmError } from '../core/errors.js'
import { SimulatedNetwork } from './network.js'
import { buildReport, planScenario, run, settingsOf } from './scenario.js'
import { SimulationStalledError, VirtualClock, timerAt } from './virtual-time.js'
import type { CrossMessage, NetworkStats } from './network.js'
import type { Distribution } from './random.js'
import type { Memory, RunData, Scenario, ScenarioProgress, ScenarioReport, ScenarioShard } from './scenario.js'

const log = logger('peerswarm:sim:shards')

/** What a shard is started with. */
export interface ShardInit {
  /** This shard's index: it runs the peers `i` with `i mod count = index`. */
  readonly index: number
  /** The number of shards. */
  readonly count: number
  /** The scenario without its functions (`log`, `progress`, `memoryUsage`, `gc`, `signal`). */
  readonly scenario: Scenario
  /** The smallest link latency of the topology, ms: the length of a window at least. */
  readonly lookahead: number
}

/** What crossed to another shard in one window: the messages, their bytes packed in one buffer. */
export interface Packed {
  readonly messages: ReadonlyArray<Omit<CrossMessage, 'bytes'> & { readonly offset?: number, readonly length?: number }>
  readonly buffer: ArrayBuffer
}

/** The coordinator's messages to a shard. */
export interface ToShard {
  readonly type: 'window'
  /** Run up to (not including) this virtual time. */
  readonly horizon: number
  /** What the other shards sent, by shard in order. */
  readonly inbound: readonly Packed[]
  /** Conditions that hold in every shard: their waits end at the barrier's time. */
  readonly release: readonly string[]
  /** Stop the run (a Ctrl-C): why. */
  readonly stop?: string
}

/** A shard's progress counters, for the coordinator's progress lines. */
type ShardProgress = Pick<ScenarioProgress, 'phase' | 'built' | 'dialed' | 'measuredMs' | 'scheduleMs' | 'published' | 'deliveries' | 'realLeftMs'>

/** A shard's messages to the coordinator. */
export type FromShard =
  | {
    readonly type: 'barrier'
    /** The time of its next timer (`Infinity`: none). */
    readonly next: number
    /** What it sent each shard in the window, by shard index (its own is empty). */
    readonly outbound: readonly Packed[]
    /** What is left of each condition it waits on. */
    readonly waits: Readonly<Record<string, number>>
    readonly progress?: ShardProgress
    readonly log: readonly string[]
  }
  | { readonly type: 'done', readonly data: RunData, readonly log: readonly string[] }
  | { readonly type: 'failed', readonly error: string }

/** The coordinator's end of a shard (in Node, a worker thread and its port). */
export interface ShardChannel {
  /** Send the shard `message`, handing over the buffers of `transfer` (they are the shard's after). */
  readonly send: (message: ToShard, transfer: ArrayBuffer[]) => void
  /** Call `receive` with each message of the shard, and `failed` if the shard dies. */
  readonly listen: (receive: (message: FromShard) => void, failed: (error: Error) => void) => void
  /** Stop the shard (its work is over, or the run failed). */
  readonly terminate: () => void | Promise<void>
}

/** The shard's end: what the coordinator sends, and the way back. */
export interface CoordinatorChannel {
  /** Send the coordinator `message`, handing over the buffers of `transfer`. */
  readonly send: (message: FromShard, transfer: ArrayBuffer[]) => void
  /** The coordinator's next message. */
  readonly receive: () => Promise<ToShard>
}

/** Options of {@link runScenarioInShards}. */
export interface ShardOptions {
  /** Number of shards (threads), at least 1. */
  readonly threads: number
  /** Start a shard that runs {@link runShard} with `init` (in Node: a worker thread). */
  readonly spawn: (init: ShardInit) => ShardChannel
  /** Give up when no shard had anything scheduled for this long in real time, in ms (default: 30,000). */
  readonly stallTimeout?: number
}

/**
 * Run `scenario` over `threads` shards (see the module) and report as `runScenario` does. The
 * scenario must be in virtual time, without a `links` function (a shard gets a copy of the
 * scenario, and functions do not cross), and with every link latency above 0.
 */
export async function runScenarioInShards (scenario: Scenario, options: ShardOptions): Promise<ScenarioReport> {
  const { threads } = options
  if (!Number.isInteger(threads) || threads < 1) throw new ConfigError('threads', 'must be an integer ≥ 1')
  if (scenario.time === 'real') throw new ConfigError('time', 'a run over threads is in virtual time')
  if (scenario.links != null) throw new ConfigError('links', 'cannot cross to the threads (a function): use `link`')
  const settings = settingsOf(scenario)
  const plan = planScenario(scenario, settings)
  const latencies = new SimulatedNetwork({ seed: settings.seed, link: scenario.link })
  const latency = (a: number, b: number): number => latencies.link(a, b).latency
  // The latency distribution's floor bounds every link, dialed in the plan or not (a peer
  // exchange may dial others); without one, the plan's links' smallest latency.
  const floor = latencyFloor(scenario.link?.latency ?? 0)
  const lookahead = floor > 0 ? floor : plan.links.reduce((min, [a, b]) => Math.min(min, latency(a, b)), Infinity)
  if (!(lookahead > 0) || lookahead === Infinity) throw new ConfigError('link.latency', 'must be above 0 on every link for a run over threads (it is how far ahead a thread may run)')
  const realStart = Date.now()
  const { log, progress, memoryUsage, gc, signal, ...plain } = scenario
  const shards = Array.from({ length: threads }, (_, index) => new ShardHandle(options.spawn({ index, count: threads, scenario: plain, lookahead })))
  const coordinator = new Coordinator(shards, lookahead, options.stallTimeout ?? 30_000)
  let lastProgress = -Infinity
  try {
    const results = await coordinator.run({
      stop: () => signal?.aborted === true ? String(signal.reason instanceof Error ? signal.reason.message : signal.reason) : undefined,
      log: lines => { for (const line of lines) log?.(line) },
      progress: reports => {
        const now = Date.now()
        if (progress == null || now - lastProgress < (scenario.progressInterval ?? 5_000)) return
        lastProgress = now
        const first = reports[0]
        if (first == null) return
        const sum = (field: 'built' | 'dialed' | 'published' | 'deliveries'): number => reports.reduce((s, r) => s + r[field], 0)
        progress({ ...first, name: scenario.name ?? 'scenario', peers: settings.n, links: plan.links.length, messages: plan.totalMessages, built: sum('built'), dialed: sum('dialed'), published: sum('published'), deliveries: sum('deliveries'), realMs: now - realStart })
      }
    })
    const memoryEnd = settings.measureMemory()
    return buildReport(scenario, settings, plan, latency, merge(results, memoryEnd, Date.now() - realStart))
  } finally {
    await Promise.all(shards.map(async shard => { await shard.channel.terminate() }))
  }
}

/** The smallest latency `distribution` can draw (0 when it cannot be told: a function, a normal without `min`). */
function latencyFloor (distribution: Distribution): number {
  if (typeof distribution === 'number') return distribution
  if (typeof distribution === 'function') return 0
  return 'max' in distribution ? distribution.min : distribution.min ?? 0
}

/** The shards' shares of a run, as one run's: sums, and each peer's entries from its shard. */
function merge (parts: readonly RunData[], coordinator: Memory | undefined, realMs: number): RunData {
  const [first] = parts
  const sumOf = (field: (part: RunData) => number): number => parts.reduce((s, part) => s + field(part), 0)
  const network = Object.fromEntries(Object.keys(first.network).map(key => [key, sumOf(p => p.network[key as keyof NetworkStats])])) as unknown as NetworkStats
  const gossip: Record<string, number> = {}
  for (const part of parts) for (const [key, value] of Object.entries(part.gossip)) gossip[key] = (gossip[key] ?? 0) + value
  // `published` has holes (messages published in other shards): `map` would skip them.
  const published = Array.from({ length: first.published.length }, (_, id) => parts.find(p => p.published[id] != null)?.published[id])
  const deliveredAt = first.deliveredAt.map((at, slot) => Number.isNaN(at) ? parts.find(p => !Number.isNaN(p.deliveredAt[slot]))?.deliveredAt[slot] ?? NaN : at)
  const duplicates = first.duplicates.map((_, peer) => sumOf(p => p.duplicates[peer]))
  // RSS is the process's (every shard reads it at the same barrier, the others waiting or about
  // to); heaps are per thread. Before: once every thread has loaded, none has built a peer.
  const memoryAt = (i: 0 | 1 | 2): Memory | undefined => parts.some(p => p.memory[i] == null)
    ? undefined
    : { rss: Math.max(...parts.map(p => p.memory[i]?.rss ?? 0)), heapUsed: sumOf(p => p.memory[i]?.heapUsed ?? 0) + (coordinator?.heapUsed ?? 0) }
  const partial = parts.find(p => p.partial != null)?.partial
  return {
    setupMs: Math.max(...parts.map(p => p.setupMs)),
    realSetupMs: Math.max(...parts.map(p => p.realSetupMs)),
    durationMs: Math.max(...parts.map(p => p.durationMs)),
    realMs,
    network,
    gossip: Object.fromEntries(Object.entries(gossip).sort(([a], [b]) => a.localeCompare(b))),
    meshStart: parts.flatMap(p => p.meshStart),
    meshEnd: parts.flatMap(p => p.meshEnd),
    memory: [memoryAt(0), memoryAt(1), memoryAt(2)],
    publishErrors: first.publishErrors.map((_, b) => sumOf(p => p.publishErrors[b])),
    faults: first.faults,
    t0: first.t0,
    partial: partial == null ? undefined : { ...partial, published: published.filter(p => p != null).length },
    published,
    deliveredAt,
    duplicates,
    redials: sumOf(p => p.redials)
  }
}

/**
 * @internal Messages from another thread, taken one at a time in order: those that came before
 * they were asked for wait here; once the channel failed, the next take rejects.
 */
export class Inbox<T> {
  private readonly queue: T[] = []
  private waiting?: { resolve: (message: T) => void, reject: (error: Error) => void }
  private error?: Error

  /** A message arrived. */
  readonly put = (message: T): void => {
    if (this.waiting == null) {
      this.queue.push(message)
    } else {
      this.waiting.resolve(message)
      this.waiting = undefined
    }
  }

  /** The channel failed: a take waiting now, and every later one, rejects with `error`. */
  readonly fail = (error: Error): void => {
    this.error = error
    this.waiting?.reject(error)
    this.waiting = undefined
  }

  /** The next message, in order of arrival. */
  async take (): Promise<T> {
    const queued = this.queue.shift()
    if (queued != null) return queued
    if (this.error != null) throw this.error
    return await new Promise((resolve, reject) => { this.waiting = { resolve, reject } })
  }
}

/** A shard as the coordinator sees it: its channel and the messages it sent not yet taken. */
class ShardHandle {
  readonly inbox = new Inbox<FromShard>()
  done?: RunData

  constructor (readonly channel: ShardChannel) {
    channel.listen(this.inbox.put, this.inbox.fail)
  }
}

/** What the coordinator does besides keeping the clocks in step. */
interface CoordinatorHooks {
  /** The reason to stop the run, once it should. */
  readonly stop: () => string | undefined
  readonly log: (lines: readonly string[]) => void
  readonly progress: (reports: readonly ShardProgress[]) => void
}

/** Keeps the shards' clocks in step (see the module), until each has reported its share. */
class Coordinator {
  constructor (private readonly shards: readonly ShardHandle[], private readonly lookahead: number, private readonly stallTimeout: number) {}

  async run (hooks: CoordinatorHooks): Promise<RunData[]> {
    let horizon = this.lookahead
    let idleSince: number | undefined
    let stopSent = false
    /** Each shard's latest progress (a shard sends it at most once a second). */
    const latest: Array<ShardProgress | undefined> = this.shards.map(() => undefined)
    const started = Date.now()
    let windows = 0
    let crossed = 0
    for (;;) {
      const active = this.shards.filter(shard => shard.done == null)
      const messages = await Promise.all(active.map(async shard => await shard.inbox.take()))
      windows++
      const inbound: Packed[][] = this.shards.map(() => [])
      const waits: Array<Readonly<Record<string, number>>> = []
      let next = Infinity
      let progressed = false
      messages.forEach((message, i) => {
        if (message.type === 'failed') throw new PeerswarmError('ERR_SHARD_FAILED', `a shard of the simulation failed: ${message.error}`)
        hooks.log(message.log)
        if (message.type === 'done') {
          active[i].done = message.data
          return
        }
        next = Math.min(next, message.next)
        waits.push(message.waits)
        if (message.progress != null) {
          latest[this.shards.indexOf(active[i])] = message.progress
          progressed = true
        }
        message.outbound.forEach((packed, to) => {
          if (packed.messages.length === 0 || this.shards[to].done != null) return
          inbound[to].push(packed)
          crossed += packed.messages.length
          for (const m of packed.messages) next = Math.min(next, m.at)
        })
      })
      if (this.shards.every(shard => shard.done != null)) {
        log('%d windows in %d ms of real time, %d messages across', windows, Date.now() - started, crossed)
        return this.shards.map(shard => shard.done as RunData)
      }
      if (windows % 1000 === 0) log('%d windows, virtual %d ms, real %d ms, %d messages across', windows, horizon, Date.now() - started, crossed)
      if (progressed) hooks.progress(latest.filter(p => p != null))
      // A condition ends once every shard still running reports it, with nothing left in all.
      const release = waits.length === 0
        ? []
        : Object.keys(waits[0]).filter(name => waits.every(w => name in w) && waits.reduce((sum, w) => sum + w[name], 0) === 0)
      // Released waits end at this barrier's time, which the next window must then include.
      if (release.length > 0) next = Math.min(next, horizon)
      if (next === Infinity && release.length === 0) {
        // Nothing scheduled anywhere: something real (a thread-pool job) is under way, or a deadlock.
        idleSince ??= Date.now()
        if (Date.now() - idleSince > this.stallTimeout) throw new SimulationStalledError(Date.now() - idleSince)
        await new Promise(resolve => setTimeout(resolve, 1))
      } else {
        idleSince = undefined
        horizon = Math.max(horizon, next + this.lookahead)
      }
      const stop = stopSent ? undefined : hooks.stop()
      if (stop != null) stopSent = true
      this.shards.forEach((shard, index) => {
        if (shard.done != null) return
        const transfer = inbound[index].map(p => p.buffer)
        shard.channel.send({ type: 'window', horizon, inbound: inbound[index], release, stop }, transfer)
      })
    }
  }
}

/**
 * Run shard `init.index` of a scenario split over threads, on the shard's side of `channel`
 * (in Node, a worker thread's `parentPort`). `platform` gives what the scenario's functions
 * would: the process's memory and a garbage collection.
 */
export async function runShard (init: ShardInit, channel: CoordinatorChannel, platform: Pick<Scenario, 'memoryUsage' | 'gc'> = {}): Promise<void> {
  const { index, count } = init
  const logs: string[] = []
  const controller = new AbortController()
  let progress: ShardProgress | undefined
  const scenario: Scenario = {
    ...init.scenario,
    ...platform,
    signal: controller.signal,
    log: index === 0 ? line => { logs.push(line) } : undefined,
    progress: p => { progress = p },
    progressInterval: 1_000
  }
  try {
    const settings = settingsOf(scenario)
    const plan = planScenario(scenario, settings)
    const outbound: CrossMessage[][] = Array.from({ length: count }, () => [])
    const waits = new Map<string, { remaining: () => number, release: () => void }>()
    let net: SimulatedNetwork | undefined
    let horizon = init.lookahead
    let barriers = 0
    let blocked = 0
    /** A message that would have arrived inside the window it left in: the run fails at the barrier. */
    let tooSoon: PeerswarmError | undefined
    const started = Date.now()
    const shard: ScenarioShard = {
      index,
      count,
      network: {
        local: host => host % count === index,
        post: message => {
          if (message.at >= horizon) outbound[message.to % count].push(message)
          else tooSoon ??= new PeerswarmError('ERR_LOOKAHEAD', `a message across threads would arrive at ${message.at} ms, before the window's end (${horizon} ms): a link shorter than the lookahead`)
        }
      },
      attach: network => { net = network },
      until: async (name, remaining, timeout, error, soft = false) => await new Promise<void>((resolve, reject) => {
        const timer = Number.isFinite(timeout)
          ? setTimeout(() => {
            waits.delete(name)
            if (soft) resolve(); else reject(error())
          }, timeout)
          : undefined
        waits.set(name, {
          remaining,
          release: () => {
            clearTimeout(timer)
            waits.delete(name)
            resolve()
          }
        })
      })
    }
    const barrier = async (at: number, next: number): Promise<number> => {
      if (tooSoon != null) throw tooSoon
      const packed = outbound.map(pack)
      for (const list of outbound) list.length = 0
      const report: Record<string, number> = {}
      for (const [name, wait] of waits) report[name] = wait.remaining()
      channel.send({ type: 'barrier', next, outbound: packed, waits: report, progress, log: logs.splice(0) }, packed.map(p => p.buffer))
      progress = undefined
      // The clock is installed: `Date.now` is virtual, its `realNow` is not.
      const waitStart = clock.realNow()
      const window = await channel.receive()
      blocked += clock.realNow() - waitStart
      if (++barriers % 1000 === 0) log('shard %d: %d barriers, %d of %d ms of real time waiting for the others', index, barriers, blocked, clock.realNow() - started)
      for (const p of window.inbound) for (const message of unpack(p)) net?.deliver(message)
      for (const name of window.release) {
        const wait = waits.get(name)
        if (wait != null) timerAt(at, wait.release)
      }
      if (window.stop != null) controller.abort(new Error(window.stop))
      horizon = window.horizon
      return horizon
    }
    const clock = new VirtualClock({ seed: `${settings.seed}/clock/${index}`, window: { horizon, barrier } })
    const { data } = await clock.run(async () => await run(scenario, settings, plan, () => clock.realNow(), shard))
    channel.send({ type: 'done', data, log: logs.splice(0) }, [])
  } catch (err) {
    channel.send({ type: 'failed', error: err instanceof Error ? err.stack ?? err.message : String(err) }, [])
  }
}

/** `messages` with their bytes copied into one buffer (views may share larger ones, which would cross whole). */
function pack (messages: readonly CrossMessage[]): Packed {
  let size = 0
  for (const m of messages) if (m.type === 'transmission' && m.bytes != null) size += m.bytes.byteLength
  const buffer = new Uint8Array(size)
  let offset = 0
  const out = messages.map(m => {
    if (m.type !== 'transmission' || m.bytes == null) return m
    const { bytes, ...rest } = m
    buffer.set(bytes, offset)
    offset += bytes.byteLength
    return { ...rest, offset: offset - bytes.byteLength, length: bytes.byteLength }
  })
  return { messages: out, buffer: buffer.buffer }
}

/** The messages of `packed`, each transmission's bytes an array of its own. */
function unpack (packed: Packed): CrossMessage[] {
  const buffer = new Uint8Array(packed.buffer)
  return packed.messages.map(m => {
    if (m.offset == null || m.length == null) return m as CrossMessage
    const { offset, length, ...rest } = m
    return { ...rest, bytes: buffer.slice(offset, offset + length) } as CrossMessage
  })
}
