/**
 * Memory under attack: one GossipSub node (StrictSign, the attack tests' scoring, heartbeat
 * 200 ms) in a child process of its own, over TCP on 127.0.0.1, meets the twenty-one attack kinds
 * of `test/fixtures/under-attack.ts` (`ATTACKS`) one after the other, while two honest peers
 * publish through it throughout. The same sequence then runs against js-libp2p's
 * `@libp2p/gossipsub` (same options where both have them) in another child process, so the two
 * growths compare within one run.
 *
 * This process is the driver: the honest peers (ours) and the attackers (a fresh identity per
 * kind, raw pubsub streams: `Attacker`) live here, so the victim's process holds the victim
 * alone. The honest peers are connected to the victim only, so each one's messages reach the
 * other through it; both publish `--rate` messages per second (default 10) of 1 KiB.
 *
 * Per attack kind, in the victim's process: `before` (after a full GC), `during` (the highest
 * value of each figure sampled every 20 ms from the first byte of the attack until the attacker
 * disconnects, no GC), `after` (the attacker gone for 500 ms, then a full GC). Figures: RSS, V8
 * heap used and total (reserved), external and array-buffer memory (`process.memoryUsage()`),
 * one JSON line per phase. Then, 30 s after the sequence ends (honest traffic going on), RSS
 * without a GC and after one. At the end: every honest message must have reached the victim
 * and the other honest peer, nothing bad anywhere (`valid:` messages of the attackers are
 * legitimate, once; the summary gives, for ours, the bytes of forwards the victim dropped, so
 * that valid messages the honest peers lack can be told from lost ones); a table of the growth
 * per kind, ours against js, and a JSON summary.
 *
 * Growth during the sequence is the highest RSS sampled during any attack minus RSS at the
 * start (after a GC, with the honest traffic running, and once the victim has written through
 * its young generation: see `warmYoungGeneration`); "after 30 s" is RSS then minus the same
 * start. The last row of the table, and `growthParts` in the summary, split the growth at the
 * highest RSS into the young generation's resident pages, the rest of V8's heap that is
 * resident, external memory, and native memory outside these (anonymous RSS, from `/proc`).
 * V8 sizes the young generation by the allocation rate (up to two semi-spaces of 16 MB on Node
 * 20), so a victim that allocates little at rest starts with a small one, and the first flood
 * grows it to its largest: both victims run with it held there (`YOUNG_GENERATION_PINNED`),
 * which leaves out of the growth what V8 reserves anyway.
 *
 * Options: `--only ours|js`, `--kinds a,b` (a subset, by kind), `--scale x` (every count
 * scaled, default 1), `--rate n`, `--settle s` (the wait after the sequence, default 30),
 * `--profile` (a sampling heap profile in each victim: the allocation sites of what is live at
 * the end of each attack, top 12 by function and by module), `--snapshots dir` (heap
 * snapshots before and at the end of each attack, diffed by constructor name),
 * `--node-flags "…"` (V8 flags for both victims, e.g. `--max-semi-space-size=1`),
 * `--live` (every 200 ms during an attack a full GC, then the array-buffer memory still in
 * use: its highest value is `liveArrayBuffers` in the `during` line; slows the victims),
 * `--compiled` (both victims run compiled JavaScript from `.bench-build/`, as users run the
 * package; the default runs them through tsx, like the tests, which adds ~40 MB to both
 * victims' RSS at rest), `--cold` (V8's own sizing of the young generation, and the start
 * without writing through it: how this script measured before 2026-12-07).
 *
 * Run: npm run attack:memory (both victims: about four and a half minutes with `--compiled` on
 * an idle 2-core machine, up to nine on a busy one).
 */
import '../src/compat.js'
import { spawn, spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from 'node:v8'
import { SwarmBuilder, combine, gossipsub, identify } from '../src/index.js'
import { EventLog, until } from '../test/fixtures/event-log.js'
import { ATTACKS, Attacker, VALID_PREFIX, attackScoring } from '../test/fixtures/under-attack.js'
import type { ChildProcess } from 'node:child_process'
import type { Session } from 'node:inspector'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const TOPIC = 'attack'
const PAYLOAD = 1024
const HONEST_PREFIX = 'honest:'

// ---------------------------------------------------------------------------------------------
// Shared: figures and messages between the driver and a victim
// ---------------------------------------------------------------------------------------------

/**
 * Memory figures, in MB: `process.memoryUsage()`; of V8's reserved heap (`heapTotal`) the part
 * that is the young generation (`young`: new space and new large-object space, committed),
 * which V8 grows with the allocation rate and shrinks only slowly; what of V8's heap is
 * resident (`heapResident`; `youngResident` of the young generation: committed pages count in
 * RSS only once they are written); and, where `/proc/self/status` tells, the anonymous part of
 * RSS (`anon`: RSS without the pages of the node binary and libraries, which do not move here).
 * `anon − heapResident − external` is native memory outside V8's heap and its buffers.
 */
interface Memory { rss: number, heapUsed: number, heapTotal: number, young: number, heapResident: number, youngResident: number, external: number, arrayBuffers: number, anon?: number }
const FIGURES = ['rss', 'heapUsed', 'heapTotal', 'young', 'heapResident', 'youngResident', 'external', 'arrayBuffers'] as const

const mb = (bytes: number): number => Math.round(bytes / 1024 / 10.24) / 100
const YOUNG_SPACES = new Set(['new_space', 'new_large_object_space'])
function memoryNow (): Memory {
  const m = process.memoryUsage()
  const young = getHeapSpaceStatistics().filter(s => YOUNG_SPACES.has(s.space_name))
  const sum = (key: 'space_size' | 'physical_space_size'): number => young.reduce((total, s) => total + s[key], 0)
  return {
    rss: mb(m.rss),
    heapUsed: mb(m.heapUsed),
    heapTotal: mb(m.heapTotal),
    young: mb(sum('space_size')),
    heapResident: mb(getHeapStatistics().total_physical_size),
    youngResident: mb(sum('physical_space_size')),
    external: mb(m.external),
    arrayBuffers: mb(m.arrayBuffers),
    anon: anonymousRss()
  }
}

/** RssAnon of `/proc/self/status`, MB (undefined where there is none). */
function anonymousRss (): number | undefined {
  try {
    const kb = /^RssAnon:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]
    return kb == null ? undefined : mb(Number(kb) * 1024)
  } catch {
    return undefined
  }
}

/**
 * Write through the young generation once: allocate short-lived objects until the pages V8
 * has committed for it are resident (at most 4 × its size, in steps). Until then, how much of
 * it is resident depends on how much garbage the node made before, and an attack that fills it
 * adds the rest to the growth: the victim that made less garbage at rest looked worse.
 */
function warmYoungGeneration (): void {
  const newSpace = (): { space_size: number, physical_space_size: number } | undefined => getHeapSpaceStatistics().find(s => s.space_name === 'new_space')
  const resident = (): boolean => {
    const young = newSpace()
    return young == null || young.physical_space_size >= young.space_size
  }
  const committed = newSpace()?.space_size ?? 0
  let sink: unknown
  // ~48 bytes per object: a step is ~1 MB.
  for (let allocated = 0; allocated < 4 * committed && !resident(); allocated += 20_000 * 48) {
    for (let i = 0; i < 20_000; i++) sink = { i, next: sink === undefined ? null : i }
  }
}

/** What the victim counted of what it delivered. */
interface Deliveries {
  honest: number
  honestDuplicates: number
  valid: number
  validDuplicates: number
  bad: number
  badSamples: string[]
  /**
   * Ours as the victim: bytes of forwards it dropped from its queues (`totals().droppedBytes`:
   * not written within `forwardDeadline` to a peer that reads slowly, or no room), which is
   * where the attacker's valid messages go missing when the driver's honest peers read late.
   */
  forwardBytesDropped?: number
}

type Request =
  | { cmd: 'memory', gc: boolean }
  | { cmd: 'peak-reset' }
  | { cmd: 'peak' }
  | { cmd: 'warm' }
  | { cmd: 'deliveries' }
  | { cmd: 'cpu' }
  | { cmd: 'mesh' }
  | { cmd: 'profile' }
  | { cmd: 'snapshot', path: string }
  | { cmd: 'close' }

// ---------------------------------------------------------------------------------------------
// The victim (child process)
// ---------------------------------------------------------------------------------------------

interface VictimNode {
  address: string
  peerId: string
  meshSize: () => number
  /** Bytes of forwards dropped from the outbound queues (ours only). */
  forwardBytesDropped?: () => number
  close: () => Promise<void>
}

/** Counts deliveries by kind of payload. */
class DeliveryCounter {
  private readonly honest = new Set<string>()
  private readonly valid = new Set<string>()
  readonly counts: Deliveries = { honest: 0, honestDuplicates: 0, valid: 0, validDuplicates: 0, bad: 0, badSamples: [] }
  private readonly decoder = new TextDecoder()

  add (data: Uint8Array): void {
    const text = this.decoder.decode(data.subarray(0, 64)).replace(/\0+$/, '')
    if (text.startsWith(HONEST_PREFIX)) {
      if (this.honest.has(text)) this.counts.honestDuplicates++
      else this.honest.add(text)
      this.counts.honest = this.honest.size
    } else if (text.startsWith(VALID_PREFIX)) {
      if (this.valid.has(text)) this.counts.validDuplicates++
      else this.valid.add(text)
      this.counts.valid = this.valid.size
    } else {
      this.counts.bad++
      if (this.counts.badSamples.length < 5) this.counts.badSamples.push(text.slice(0, 40))
    }
  }
}

async function oursVictim (counter: DeliveryCounter): Promise<VictimNode> {
  const swarm = await SwarmBuilder.withNewIdentity().withTcp()
    .withBehaviour(key => combine({
      gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), ...attackScoring(TOPIC) }),
      identify: new identify.Behaviour(key.publicKey)
    }))
    .build()
  swarm.behaviour.gossipsub.subscribe(TOPIC)
  swarm.listenOn('/ip4/127.0.0.1/tcp/0')
  // The application, as js's victim has it: each message counted and let go at once (a log
  // of the events would keep a second of them, and the frames their data are views of).
  let listening: (address: Multiaddr) => void = () => {}
  const bound = new Promise<Multiaddr>(resolve => { listening = resolve })
  const running = (async () => {
    for await (const event of swarm) {
      if (event.type === 'NewListenAddr') listening(event.address)
      else if (event.type === 'Behaviour' && event.event.behaviour === 'gossipsub' && event.event.event.type === 'Message') counter.add(event.event.event.message.data)
    }
  })()
  const address = (await bound).encapsulate(`/p2p/${swarm.localPeerId.toString()}`).toString()
  return {
    address,
    peerId: swarm.localPeerId.toString(),
    meshSize: () => swarm.behaviour.gossipsub.meshPeers(TOPIC).length,
    forwardBytesDropped: () => swarm.behaviour.gossipsub.totals().droppedBytes,
    close: async () => {
      await swarm.close()
      await running
    }
  }
}

async function jsVictim (counter: DeliveryCounter): Promise<VictimNode> {
  const { authorSeqnoId, jsGossipsubNode } = await import('../test/interop/js-node.js')
  const scoring = attackScoring(TOPIC)
  const topicParams = scoring.scoreParams?.topics?.[TOPIC]
  const node = await jsGossipsubNode({
    globalSignaturePolicy: 'StrictSign',
    msgIdFn: authorSeqnoId,
    heartbeatInterval: scoring.heartbeatInterval,
    gossipsubIWantFollowupMs: scoring.iwantFollowupTime,
    // js fills in the rest of the topic's parameters (`createTopicScoreParams`).
    scoreParams: {
      topics: { [TOPIC]: topicParams as never },
      behaviourPenaltyWeight: scoring.scoreParams?.behaviourPenaltyWeight,
      behaviourPenaltyDecay: scoring.scoreParams?.behaviourPenaltyDecay,
      IPColocationFactorWhitelist: new Set(['127.0.0.1'])
    },
    scoreThresholds: { ...scoring.scoreThresholds }
  })
  const pubsub = node.services.pubsub
  pubsub.subscribe(TOPIC)
  pubsub.addEventListener('message', (evt) => { counter.add(evt.detail.data) })
  const address = node.getMultiaddrs()[0]
  return {
    address: address.toString(),
    peerId: node.peerId.toString(),
    meshSize: () => (pubsub as unknown as { getMeshPeers: (topic: string) => string[] }).getMeshPeers(TOPIC).length,
    close: async () => { await node.stop() }
  }
}

/** A sampling heap profile of what is live now: top sites by function and by module. */
function summariseProfile (profile: { head: ProfileNode }): { byFunction: Array<[string, number]>, byModule: Array<[string, number]> } {
  const byFunction = new Map<string, number>()
  const byModule = new Map<string, number>()
  const visit = (node: ProfileNode, module: string): void => {
    const url = node.callFrame.url
    const here = moduleOf(url) ?? module
    if (node.selfSize > 0) {
      const name = `${node.callFrame.functionName === '' ? '(anonymous)' : node.callFrame.functionName} ${shortUrl(url)}:${node.callFrame.lineNumber + 1}`
      byFunction.set(name, (byFunction.get(name) ?? 0) + node.selfSize)
      byModule.set(here, (byModule.get(here) ?? 0) + node.selfSize)
    }
    for (const child of node.children) visit(child, here)
  }
  visit(profile.head, '(root)')
  const top = (map: Map<string, number>): Array<[string, number]> => [...map].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]) => [k, mb(v)])
  return { byFunction: top(byFunction), byModule: top(byModule) }
}
interface ProfileNode { callFrame: { functionName: string, url: string, lineNumber: number }, selfSize: number, children: ProfileNode[] }
/** The package, or our source file, a URL belongs to (the innermost on the stack wins). */
function moduleOf (url: string): string | undefined {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg != null) return pkg[1]
  const ours = /\/(src|test|scripts|\.bench-build\/src)\/(.+)$/.exec(url)
  if (ours != null) return `${ours[1]}/${ours[2]}`
  return undefined
}
function shortUrl (url: string): string {
  return url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(src|test|scripts)\//, '$1/')
}

async function victimMain (impl: 'ours' | 'js', options: { profile: boolean }): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc == null) throw new Error('the victim needs --expose-gc')
  const counter = new DeliveryCounter()
  const node = impl === 'ours' ? await oursVictim(counter) : await jsVictim(counter)
  // The highest value of each figure, and the whole sample at the highest RSS (`atHighestRss`):
  // what that RSS was made of.
  let peak: Memory & { liveArrayBuffers?: number, atHighestRss?: Memory } = memoryNow()
  let highest = memoryNow()
  // `--live`: every 10th sample follows a full GC, and the highest array-buffer memory then is
  // reported as `liveArrayBuffers`: what the attack made us hold, not garbage not yet collected.
  const live = process.env.ATTACK_MEMORY_LIVE === '1'
  let samples = 0
  const sampler = setInterval(() => {
    if (live && ++samples % 10 === 0) {
      gc()
      peak.liveArrayBuffers = Math.max(peak.liveArrayBuffers ?? 0, memoryNow().arrayBuffers)
    }
    const now = memoryNow()
    for (const figure of FIGURES) peak[figure] = Math.max(peak[figure], now[figure])
    if (now.anon !== undefined) peak.anon = Math.max(peak.anon ?? 0, now.anon)
    if (now.rss > highest.rss) highest = now
  }, 20)
  let session: Session | undefined
  if (options.profile) {
    const { Session } = await import('node:inspector')
    session = new Session()
    session.connect()
    await post(session, 'HeapProfiler.enable')
    await post(session, 'HeapProfiler.startSampling', { samplingInterval: 16 * 1024 })
  }
  let cpu = { usage: process.cpuUsage(), at: performance.now() }
  const send = (message: unknown): void => { process.send?.(message) }
  process.on('message', (request: Request & { seq: number }) => {
    const answer = (value: unknown): void => { send({ seq: request.seq, value }) }
    void (async () => {
      switch (request.cmd) {
        case 'memory':
          if (request.gc) { gc(); gc() }
          answer(memoryNow())
          break
        case 'peak-reset':
          peak = memoryNow()
          highest = peak
          answer(null)
          break
        case 'peak':
          answer({ ...peak, atHighestRss: highest })
          break
        case 'warm':
          warmYoungGeneration()
          answer(null)
          break
        case 'deliveries':
          answer({ ...counter.counts, forwardBytesDropped: node.forwardBytesDropped?.() })
          break
        case 'cpu': {
          // The share of one core used since the last ask.
          const usage = process.cpuUsage(cpu.usage)
          const now = performance.now()
          answer((usage.user + usage.system) / 1000 / (now - cpu.at))
          cpu = { usage: process.cpuUsage(), at: now }
          break
        }
        case 'mesh':
          answer(node.meshSize())
          break
        case 'profile': {
          if (session == null) { answer(null); break }
          const { profile } = await post(session, 'HeapProfiler.getSamplingProfile') as { profile: { head: ProfileNode } }
          answer(summariseProfile(profile))
          break
        }
        case 'snapshot':
          writeHeapSnapshot(request.path)
          answer(null)
          break
        case 'close':
          clearInterval(sampler)
          session?.disconnect()
          await node.close()
          answer(null)
          setTimeout(() => process.exit(0), 100)
          break
      }
    })()
  })
  send({ type: 'ready', address: node.address, peerId: node.peerId })
}

async function post (session: Session, method: string, params?: object): Promise<unknown> {
  return new Promise((resolve, reject) => {
    session.post(method, params, (err, result) => { if (err != null) reject(err); else resolve(result) })
  })
}

// ---------------------------------------------------------------------------------------------
// The driver
// ---------------------------------------------------------------------------------------------

/** A victim process as seen from the driver. */
class Victim {
  private seq = 0
  private readonly waiting = new Map<number, (value: unknown) => void>()
  readonly exited: Promise<number | null>

  private constructor (readonly impl: 'ours' | 'js', readonly child: ChildProcess, readonly address: string, readonly peerId: PeerId) {
    child.on('message', (message: { seq?: number, value?: unknown }) => {
      if (message.seq == null) return
      this.waiting.get(message.seq)?.(message.value)
      this.waiting.delete(message.seq)
    })
    this.exited = new Promise(resolve => child.on('exit', resolve))
  }

  static async start (impl: 'ours' | 'js', flags: string[], profile: boolean, compiled: boolean): Promise<Victim> {
    const file = fileURLToPath(import.meta.url)
    const child = spawn(process.execPath, compiled ? ['--expose-gc', ...flags, COMPILED] : ['--expose-gc', '--import', 'tsx', ...flags, file], {
      env: { ...process.env, ATTACK_MEMORY_VICTIM: JSON.stringify({ impl, profile }) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc']
    })
    const ready = await new Promise<{ address: string, peerId: string }>((resolve, reject) => {
      child.once('message', (message: { type?: string, address: string, peerId: string }) => {
        if (message.type === 'ready') resolve(message)
      })
      child.once('exit', (code) => { reject(new Error(`the ${impl} victim exited with ${String(code)}`)) })
    })
    const { peerIdFromString } = await import('@libp2p/peer-id')
    return new Victim(impl, child, ready.address, peerIdFromString(ready.peerId))
  }

  async ask<T> (request: Request): Promise<T> {
    const seq = this.seq++
    const value = new Promise<unknown>((resolve, reject) => {
      this.waiting.set(seq, resolve)
      setTimeout(() => { reject(new Error(`the ${this.impl} victim did not answer ${request.cmd}`)) }, 120_000).unref()
    })
    this.child.send({ ...request, seq })
    return await value as T
  }

  async close (): Promise<void> {
    try {
      await this.ask({ cmd: 'close' })
    } catch {}
    const timer = setTimeout(() => { this.child.kill('SIGKILL') }, 10_000)
    await this.exited
    clearTimeout(timer)
  }
}

/** An honest peer: ours, the attack tests' scoring, counting what it receives. */
async function honestPeer (counter: DeliveryCounter) {
  const swarm = await SwarmBuilder.withNewIdentity().withTcp()
    .withBehaviour(key => combine({
      gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), ...attackScoring(TOPIC) }),
      identify: new identify.Behaviour(key.publicKey)
    }))
    .build()
  swarm.behaviour.gossipsub.subscribe(TOPIC)
  const node = new EventLog(swarm, (event) => {
    if (event.type === 'Behaviour' && event.event.behaviour === 'gossipsub' && event.event.event.type === 'Message') counter.add(event.event.event.message.data)
  })
  const forget = setInterval(() => { node.clear() }, 1_000)
  return { node, swarm, close: async () => { clearInterval(forget); await node.close() } }
}

/** One phase's figures, as printed. */
interface PhaseLine { impl: string, kind: string, phase: 'before' | 'during' | 'after' | 'start' | 'end' | 'settled' | 'settled-gc', memory: Memory & { atHighestRss?: Memory } }

interface SequenceResult {
  impl: 'ours' | 'js'
  start: Memory
  perKind: Array<{ kind: string, before: Memory, during: Memory, after: Memory, profile?: unknown, snapshotDiff?: unknown }>
  end: Memory
  settled: Memory
  settledGc: Memory
  /** The sample at the highest RSS during the sequence (the start if none was higher). */
  highest: Memory
  /** Highest RSS sampled during the sequence − RSS at the start. */
  rssGrowth: number
  rssAfterSettle: number
  deliveries: { victim: Deliveries, honest: [Deliveries, Deliveries], published: [number, number] }
  ok: boolean
}

interface DriverOptions {
  readonly scale: number
  readonly rate: number
  readonly settleS: number
  readonly kinds?: readonly string[]
  readonly profile: boolean
  readonly snapshots?: string
  readonly flags: string[]
  readonly compiled: boolean
  /** V8 sizes the young generation itself, and the start is measured without writing through it. */
  readonly cold: boolean
  /** Called with each phase's line. */
  readonly print: (line: PhaseLine) => void
}

/**
 * The victims' young generation, held at Node 20's largest (two semi-spaces of 16 MB) unless
 * `--cold`: V8 sizes it by the allocation rate, so a node that allocates little at rest has a
 * small one, which the first flood grows by up to 30 MB (in either implementation). That is V8's
 * reserve, not what the attack makes the node hold, and it would charge the growth to the
 * victim that made less garbage before the start. Flags given with `--node-flags` come after,
 * and win.
 */
const YOUNG_GENERATION_PINNED = ['--min-semi-space-size=16', '--max-semi-space-size=16']

/** The V8 flags both victims run with. */
function victimFlags (options: DriverOptions): string[] {
  return options.cold ? options.flags : [...YOUNG_GENERATION_PINNED, ...options.flags]
}

/** Run the whole sequence against one implementation's victim. */
async function runSequence (impl: 'ours' | 'js', options: DriverOptions): Promise<SequenceResult> {
  const victim = await Victim.start(impl, victimFlags(options), options.profile, options.compiled)
  const counters = [new DeliveryCounter(), new DeliveryCounter()]
  const honest = await Promise.all(counters.map(async c => honestPeer(c)))
  const published: [number, number] = [0, 0]
  let publishing: ReturnType<typeof setInterval> | undefined
  try {
    for (const h of honest) h.swarm.dial(victim.address)
    const victimId = victim.peerId
    await until(() => honest.every(h => h.swarm.behaviour.gossipsub.meshPeers(TOPIC).some(p => p.equals(victimId))), 20_000, 'the honest peers in the victim\'s mesh')
    const deadline = Date.now() + 20_000
    while (await victim.ask<number>({ cmd: 'mesh' }) < 2) {
      if (Date.now() > deadline) throw new Error('the honest peers never joined the victim\'s mesh')
      await pause(100)
    }
    // Honest traffic, in wall time (a busy machine does not lower the rate).
    const started = Date.now()
    const payload = (text: string): Uint8Array => {
      const bytes = new Uint8Array(PAYLOAD)
      bytes.set(new TextEncoder().encode(text))
      return bytes
    }
    publishing = setInterval(() => {
      const due = Math.floor((Date.now() - started) * options.rate / 1000)
      honest.forEach((h, i) => {
        while (published[i] < due) {
          try {
            h.swarm.behaviour.gossipsub.publish(TOPIC, payload(`${HONEST_PREFIX}${i}:${published[i]}`))
          } catch (err) {
            console.error(`honest ${i}: publish failed: ${String(err)}`)
          }
          published[i]++
        }
      })
    }, 20)
    // Warm-up: the message cache and the score's counters reach their steady state.
    await pause(5_000)
    const line = <M extends PhaseLine['memory']>(kind: string, phase: PhaseLine['phase'], memory: M): M => {
      options.print({ impl, kind, phase, memory })
      return memory
    }
    // The start: the median RSS of three samples after a GC, a second apart (RSS after a GC
    // still moves by a few MB as V8 gives pages back), once the young generation has been
    // written through (`warmYoungGeneration`; neither this nor the pinned young generation
    // with `--cold`).
    if (!options.cold) await victim.ask({ cmd: 'warm' })
    const starts: Memory[] = []
    for (let i = 0; i < 3; i++) {
      if (i > 0) await pause(1_000)
      starts.push(await victim.ask<Memory>({ cmd: 'memory', gc: true }))
    }
    const start = line('sequence', 'start', starts.sort((a, b) => a.rss - b.rss)[1])
    const perKind: SequenceResult['perKind'] = []
    let highest = start
    for (const attack of ATTACKS) {
      if (options.kinds != null && !options.kinds.includes(attack.kind)) continue
      const before = line(attack.kind, 'before', await victim.ask<Memory>({ cmd: 'memory', gc: true }))
      const snapshot = async (phase: string): Promise<string | undefined> => {
        if (options.snapshots == null) return undefined
        const path = join(options.snapshots, `${impl}-${attack.kind}-${phase}.heapsnapshot`)
        await victim.ask({ cmd: 'snapshot', path })
        return path
      }
      const beforeSnapshot = await snapshot('before')
      await victim.ask({ cmd: 'peak-reset' })
      const attacker = await Attacker.create()
      try {
        await attack.run({ target: { address: multiaddr(victim.address), peerId: victimId, topic: TOPIC }, attacker, scale: options.scale })
      } catch (err) {
        console.error(`${impl} ${attack.kind}: the attack failed: ${String(err)}`)
      }
      // Let the victim work through what it read: until it uses less than a fifth of a core
      // over 250 ms (at most 20 s), then a second more.
      await victim.ask({ cmd: 'cpu' })
      for (const idleBy = Date.now() + 20_000; Date.now() < idleBy;) {
        await pause(250)
        if (await victim.ask<number>({ cmd: 'cpu' }) < 0.2) break
      }
      await pause(1_000)
      const profile = options.profile ? await victim.ask<unknown>({ cmd: 'profile' }) : undefined
      const duringSnapshot = await snapshot('during')
      await attacker.close()
      await pause(500)
      const during = line(attack.kind, 'during', await victim.ask<Memory & { atHighestRss?: Memory }>({ cmd: 'peak' }))
      if (during.rss > highest.rss) highest = during.atHighestRss ?? during
      const after = line(attack.kind, 'after', await victim.ask<Memory>({ cmd: 'memory', gc: true }))
      const snapshotDiff = beforeSnapshot != null && duringSnapshot != null ? diffSnapshots(beforeSnapshot, duringSnapshot) : undefined
      if (profile != null) console.log(JSON.stringify({ impl, kind: attack.kind, liveAllocations: profile }))
      if (snapshotDiff != null) console.log(JSON.stringify({ impl, kind: attack.kind, snapshotDiff }))
      perKind.push({ kind: attack.kind, before, during, after, profile, snapshotDiff })
    }
    const end = line('sequence', 'end', await victim.ask<Memory>({ cmd: 'memory', gc: true }))
    await pause(options.settleS * 1000)
    const settled = line('sequence', 'settled', await victim.ask<Memory>({ cmd: 'memory', gc: false }))
    const settledGc = line('sequence', 'settled-gc', await victim.ask<Memory>({ cmd: 'memory', gc: true }))
    clearInterval(publishing)
    publishing = undefined
    // Every honest message must arrive (bounded wait).
    const complete = async (): Promise<boolean> => {
      const at = await victim.ask<Deliveries>({ cmd: 'deliveries' })
      return at.honest === published[0] + published[1] && counters[0].counts.honest === published[1] && counters[1].counts.honest === published[0]
    }
    const settleBy = Date.now() + 15_000
    while (!await complete() && Date.now() < settleBy) await pause(100)
    const atVictim = await victim.ask<Deliveries>({ cmd: 'deliveries' })
    const clean = (d: Deliveries): boolean => d.bad === 0 && d.honestDuplicates === 0 && d.validDuplicates === 0
    const ok = await complete() && clean(atVictim) && counters.every(c => clean(c.counts))
    return {
      impl,
      start,
      perKind,
      end,
      settled,
      settledGc,
      highest,
      rssGrowth: round(highest.rss - start.rss),
      rssAfterSettle: round(settled.rss - start.rss),
      deliveries: { victim: atVictim, honest: [counters[0].counts, counters[1].counts], published },
      ok
    }
  } finally {
    if (publishing != null) clearInterval(publishing)
    await Promise.all(honest.map(async h => { await h.close() }))
    await victim.close()
  }
}

/** This script compiled by `--compiled` (with the library and the fixtures it imports). */
const COMPILED = join(process.cwd(), '.bench-build', 'scripts', 'attack-memory.js')

/** Compile this script into `.bench-build/` as `npm run bench:build` compiles the benchmarks. */
function compile (): void {
  const root = process.cwd()
  // Inside the repository (in the ignored build folder), so that `types` resolve as for the bench.
  mkdirSync(join(root, '.bench-build'), { recursive: true })
  const config = join(root, '.bench-build', 'attack-memory.tsconfig.json')
  writeFileSync(config, JSON.stringify({
    extends: join(root, 'tsconfig.bench.json'),
    compilerOptions: { rootDir: root, outDir: join(root, '.bench-build') },
    include: [fileURLToPath(import.meta.url)]
  }))
  const result = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', config], { stdio: 'inherit' })
  if (result.status !== 0) throw new Error('compiling scripts/attack-memory.ts failed')
}

const round = (x: number): number => Math.round(x * 100) / 100
const pause = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
function multiaddr (address: string) {
  // Imported lazily so that the victim's process does not need it before it listens.
  return multiaddrOf(address)
}
let multiaddrOf: (address: string) => import('@multiformats/multiaddr').Multiaddr

/** Heap snapshot figures by constructor name: `during` − `before`, top 15 by self size. */
function diffSnapshots (before: string, during: string): Array<{ name: string, mb: number, count: number }> {
  const a = byConstructor(before)
  const b = byConstructor(during)
  const rows = [...b].map(([name, { size, count }]) => ({ name, mb: mb(size - (a.get(name)?.size ?? 0)), count: count - (a.get(name)?.count ?? 0) }))
  return rows.sort((x, y) => y.mb - x.mb).slice(0, 15)
}

/** Self size and count of a heap snapshot's nodes, by constructor name (node type for non-objects). */
function byConstructor (path: string): Map<string, { size: number, count: number }> {
  const snapshot = JSON.parse(readFileSync(path, 'utf8')) as {
    snapshot: { meta: { node_fields: string[], node_types: [string[], ...unknown[]] } }
    nodes: number[]
    strings: string[]
  }
  const fields = snapshot.snapshot.meta.node_fields
  const types = snapshot.snapshot.meta.node_types[0]
  const width = fields.length
  const typeAt = fields.indexOf('type')
  const nameAt = fields.indexOf('name')
  const sizeAt = fields.indexOf('self_size')
  const out = new Map<string, { size: number, count: number }>()
  for (let i = 0; i < snapshot.nodes.length; i += width) {
    const type = types[snapshot.nodes[i + typeAt]]
    const name = type === 'object' || type === 'closure' ? snapshot.strings[snapshot.nodes[i + nameAt]] : `(${type})`
    const entry = out.get(name) ?? { size: 0, count: 0 }
    entry.size += snapshot.nodes[i + sizeAt]
    entry.count++
    out.set(name, entry)
  }
  return out
}

/**
 * What the growth is made of: at the highest RSS of the sequence, minus at the start, MB: the
 * young generation's resident pages, the rest of V8's heap that is resident, external memory
 * (array buffers and other memory V8 is told of), and native memory outside these (from the
 * anonymous RSS, where `/proc` tells).
 */
function growthParts (r: SequenceResult): { young: number, restOfHeap: number, external: number, native?: number } {
  const d = (f: (m: Memory) => number): number => round(f(r.highest) - f(r.start))
  const native = r.highest.anon !== undefined && r.start.anon !== undefined
    ? d(m => (m.anon ?? 0) - m.heapResident - m.external)
    : undefined
  return {
    young: d(m => m.youngResident),
    restOfHeap: d(m => m.heapResident - m.youngResident),
    external: d(m => m.external),
    ...(native === undefined ? {} : { native })
  }
}

/** The table: growth during (peak − before) and retained (after − before) per kind, MB of RSS and heap. */
function table (results: SequenceResult[]): string {
  const ours = results.find(r => r.impl === 'ours')
  const js = results.find(r => r.impl === 'js')
  const kinds = (ours ?? js)?.perKind.map(k => k.kind) ?? []
  const cell = (r: SequenceResult | undefined, kind: string, f: (k: SequenceResult['perKind'][number]) => number): string => {
    const k = r?.perKind.find(x => x.kind === kind)
    return k == null ? '—' : f(k).toFixed(1)
  }
  const rows = [
    '| attack kind | RSS peak − before, ours / js (MB) | heap used peak − before, ours / js | RSS after − before, ours / js | heap used after − before, ours / js |',
    '|---|---:|---:|---:|---:|'
  ]
  for (const kind of kinds) {
    rows.push(`| ${kind} | ${cell(ours, kind, k => k.during.rss - k.before.rss)} / ${cell(js, kind, k => k.during.rss - k.before.rss)} | ` +
      `${cell(ours, kind, k => k.during.heapUsed - k.before.heapUsed)} / ${cell(js, kind, k => k.during.heapUsed - k.before.heapUsed)} | ` +
      `${cell(ours, kind, k => k.after.rss - k.before.rss)} / ${cell(js, kind, k => k.after.rss - k.before.rss)} | ` +
      `${cell(ours, kind, k => k.after.heapUsed - k.before.heapUsed)} / ${cell(js, kind, k => k.after.heapUsed - k.before.heapUsed)} |`)
  }
  const whole = (r: SequenceResult | undefined, f: (r: SequenceResult) => number): string => r == null ? '—' : f(r).toFixed(1)
  rows.push(`| **whole sequence** (highest RSS − start; end − start after GC) | ${whole(ours, r => r.rssGrowth)} / ${whole(js, r => r.rssGrowth)} | ` +
    `${whole(ours, r => Math.max(...r.perKind.map(k => k.during.heapUsed)) - r.start.heapUsed)} / ${whole(js, r => Math.max(...r.perKind.map(k => k.during.heapUsed)) - r.start.heapUsed)} | ` +
    `${whole(ours, r => r.end.rss - r.start.rss)} / ${whole(js, r => r.end.rss - r.start.rss)} | ${whole(ours, r => r.end.heapUsed - r.start.heapUsed)} / ${whole(js, r => r.end.heapUsed - r.start.heapUsed)} |`)
  rows.push(`| **${results[0]?.settled != null ? 'RSS' : ''} settled** (no GC; after a GC) − start | ${whole(ours, r => r.rssAfterSettle)} / ${whole(js, r => r.rssAfterSettle)} | | ${whole(ours, r => r.settledGc.rss - r.start.rss)} / ${whole(js, r => r.settledGc.rss - r.start.rss)} | ${whole(ours, r => r.settledGc.heapUsed - r.start.heapUsed)} / ${whole(js, r => r.settledGc.heapUsed - r.start.heapUsed)} |`)
  const parts = (r: SequenceResult | undefined): string => {
    if (r == null) return '—'
    const p = growthParts(r)
    return `${p.young.toFixed(1)} + ${p.restOfHeap.toFixed(1)} + ${p.external.toFixed(1)} + ${p.native?.toFixed(1) ?? '?'}`
  }
  rows.push(`| **the growth, at the highest RSS**: young generation resident + rest of V8's heap resident + external + native | ${parts(ours)} / ${parts(js)} | | | |`)
  return rows.join('\n')
}

async function driverMain (): Promise<void> {
  const args = new Map<string, string>()
  const argv = process.argv.slice(2)
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].replace(/^--/, '')
    if (['profile', 'compiled', 'live', 'cold'].includes(name)) args.set(name, 'true')
    else args.set(name, argv[++i] ?? '')
  }
  const { multiaddr: parse } = await import('@multiformats/multiaddr')
  multiaddrOf = parse
  const only = args.get('only')
  const impls = (['ours', 'js'] as const).filter(i => only == null || only === i)
  const snapshots = args.get('snapshots')
  if (args.has('live')) process.env.ATTACK_MEMORY_LIVE = '1'
  if (snapshots != null) mkdirSync(snapshots, { recursive: true })
  const options: DriverOptions = {
    scale: Number(args.get('scale') ?? 1),
    rate: Number(args.get('rate') ?? 10),
    settleS: Number(args.get('settle') ?? 30),
    kinds: args.get('kinds')?.split(','),
    profile: args.has('profile'),
    snapshots,
    flags: (args.get('node-flags') ?? '').split(' ').filter(f => f !== ''),
    compiled: args.has('compiled'),
    cold: args.has('cold'),
    print: (line) => { console.log(JSON.stringify(line)) }
  }
  if (options.compiled) compile()
  const results: SequenceResult[] = []
  for (const impl of impls) results.push(await runSequence(impl, options))
  console.log(table(results))
  const summary = {
    bench: 'attack-memory',
    node: process.version,
    scale: options.scale,
    flags: victimFlags(options),
    compiled: options.compiled,
    cold: options.cold,
    results: Object.fromEntries(results.map(r => [r.impl, {
      ok: r.ok,
      rssStartMB: r.start.rss,
      rssGrowthMB: r.rssGrowth,
      youngResidentStartMB: r.start.youngResident,
      growthParts: growthParts(r),
      rssEndAfterGcMB: round(r.end.rss - r.start.rss),
      rssAfterSettleMB: r.rssAfterSettle,
      heapUsedEndMB: round(r.end.heapUsed - r.start.heapUsed),
      deliveries: r.deliveries
    }]))
  }
  console.log(JSON.stringify(summary))
  if (snapshots != null) writeFileSync(join(snapshots, 'summary.json'), JSON.stringify({ summary, results }, null, 1))
  process.exit(results.every(r => r.ok) ? 0 : 1)
}

const victimSpec = process.env.ATTACK_MEMORY_VICTIM
if (victimSpec != null) {
  const { impl, profile } = JSON.parse(victimSpec) as { impl: 'ours' | 'js', profile: boolean }
  await victimMain(impl, { profile })
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await driverMain()
}
