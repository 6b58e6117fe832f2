/**
 * Soak: a 10-node GossipSub network over TCP on 127.0.0.1 with steady traffic, for `--minutes`
 * (default 10), sampling memory as it goes.
 *
 * Every node subscribes to one topic; each node dials three others it has no link with yet
 * (seeded; `random-dials` in src/testing/topology.ts). Publishers take turns, `--rate` messages
 * per second in all (default 50) of 1 KiB. Every `--sample` seconds (default 10) one JSON line
 * reports RSS, then, after a compacting full GC, RSS again, the JS heap in use and reserved,
 * external and array-buffer memory, RSS split into anonymous and file-backed pages, and the
 * deliveries so far. The first `--warmup` share of the run (default 0.25) is warm-up (caches
 * fill: seen cache, message cache, score history); it must last at least 150 s, since the seen
 * cache keeps every id for 2 minutes and grows until then (a 2-minute run with 24 s of warm-up
 * measured that filling: heap +8 MB). The verdict compares the median RSS (before the GC) of
 * the first third of the samples after warm-up with the median of the last third: RSS must
 * grow by less than 5%, and every message must have reached every node. Exit code 1 otherwise.
 *
 * Why the sampler's GC compacts: a plain full GC frees the garbage but leaves the survivors
 * where they are, and the entries that live for minutes here (the seen cache, the message
 * cache, score history) sit on pages that also held short-lived objects. V8 then kept old
 * space committed at 2–4 times what it held (85–180 MB against 45 MB in use), drifting up over
 * a run, and RSS with it: two fresh-clone runs of the same code measured +0.8% and +15.3% with
 * the heap in use flat. With `--compact-on-every-full-gc` turned on for the sampler's own GC
 * only (V8's own GCs keep their heuristics), the reserved heap stays at ~79 MB and RSS is
 * flat to ±4%. RSS right after that GC still holds the pages the compaction just used, so it
 * is reported, not judged.
 *
 * Run: npm run soak (10 minutes), or a shorter run: npm run soak -- --minutes 5 --warmup 0.5.
 * The warm-up, --minutes × 60 × --warmup seconds, must last at least 150 s: at the default
 * --warmup 0.25, --minutes is at least 10.
 */
import { readFileSync } from 'node:fs'
import { setFlagsFromString } from 'node:v8'
import '../src/compat.js'
import { SwarmBuilder, combine, gossipsub, identify, ping } from '../src/index.js'
import type { Keypair, Swarm } from '../src/index.js'
import type { Multiaddr } from '@multiformats/multiaddr'
import { Random, topologyLinks } from '../src/testing/index.js'

const args = new Map<string, string>()
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i].replace(/^--/, ''), process.argv[i + 1] ?? '')
const number = (name: string, fallback: number): number => {
  const value = Number(args.get(name) ?? fallback)
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`)
  return value
}
const MINUTES = number('minutes', 10)
const RATE = number('rate', 50)
const SAMPLE_S = number('sample', 10)
const WARMUP = number('warmup', 0.25)
if (WARMUP >= 1) throw new Error('--warmup is the share of the run spent warming up: below 1')
/** The seen cache's TTL (2 min) and a margin: memory grows until its first ids expire. */
const MIN_WARMUP_S = 150
if (MINUTES * 60 * WARMUP < MIN_WARMUP_S) {
  /** `x` rounded up to two decimals (a value to type that passes). */
  const up = (x: number): number => Math.ceil(x * 100) / 100
  const minWarmup = up(MIN_WARMUP_S / (MINUTES * 60))
  throw new Error(`warm-up of ${Math.round(MINUTES * 60 * WARMUP)} s (--minutes ${MINUTES} × 60 × --warmup ${WARMUP}) is shorter than ${MIN_WARMUP_S} s ` +
    `(the seen cache fills for 2 minutes): with --warmup ${WARMUP}, --minutes must be at least ${up(MIN_WARMUP_S / 60 / WARMUP)}` +
    `${minWarmup < 1 ? `, or with --minutes ${MINUTES}, --warmup at least ${minWarmup}` : ''} (e.g. npm run soak -- --minutes 5 --warmup 0.5)`)
}
const NODES = 10
const SIZE = 1024
const TOPIC = 'soak'

const gc = (globalThis as { gc?: () => void }).gc
if (gc == null) throw new Error('run with --expose-gc (npm run soak does)')
/** A full GC that also compacts old space (V8's own GCs keep their default heuristics). */
function compactingGc (): void {
  setFlagsFromString('--compact-on-every-full-gc')
  try {
    gc?.()
  } finally {
    setFlagsFromString('--no-compact-on-every-full-gc')
  }
}

function behaviour (key: Keypair) {
  return combine({
    gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key) }),
    identify: new identify.Behaviour(key.publicKey),
    ping: new ping.Behaviour()
  })
}
type Node = Swarm<ReturnType<typeof behaviour>>

const nodes: Node[] = []
const delivered = new Array<number>(NODES).fill(0)
let running = true

/** Each node's event loop: count deliveries, ignore the rest. */
async function drive (node: Node, index: number): Promise<void> {
  for await (const event of node) {
    if (event.type === 'Behaviour' && event.event.behaviour === 'gossipsub' && event.event.event.type === 'Message') delivered[index]++
  }
}

for (let i = 0; i < NODES; i++) {
  const node = await SwarmBuilder.withNewIdentity().withTcp().withBehaviour(behaviour).build()
  node.listenOn('/ip4/127.0.0.1/tcp/0')
  node.behaviour.gossipsub.subscribe(TOPIC)
  nodes.push(node)
}
const addresses: Multiaddr[] = []
for (const node of nodes) {
  const event = await node.selectNextSome()
  if (event.type !== 'NewListenAddr') throw new Error(`expected NewListenAddr, got ${event.type}`)
  addresses.push(event.address.encapsulate(`/p2p/${node.localPeerId.toString()}`))
}
const loops = nodes.map(async (node, i) => { await drive(node, i) })
for (const [from, to] of topologyLinks({ type: 'random-dials', dials: 3 }, NODES, new Random(7))) nodes[from].dial(addresses[to])
// Let the meshes form (bounded).
const formed = Date.now() + 30_000
while (Date.now() < formed && !nodes.every(n => n.behaviour.gossipsub.meshPeers(TOPIC).length >= 2)) {
  await new Promise(resolve => setTimeout(resolve, 100))
}

interface Sample {
  /** RSS before the sampler's GC; every other figure is after it. */
  rssBeforeGcMB: number
  t: number, rssMB: number, heapMB: number, heapTotalMB: number, externalMB: number, arrayBuffersMB: number
  /** Linux only: resident anonymous memory (heaps, malloc) and file-backed pages (the node binary, libraries). */
  rssAnonMB?: number, rssFileMB?: number
  published: number, delivered: number
}
const samples: Sample[] = []
/** RSS split into anonymous and file-backed pages, from /proc/self/status (absent off Linux). */
function residentSplit (): Pick<Sample, 'rssAnonMB' | 'rssFileMB'> {
  try {
    const status = readFileSync('/proc/self/status', 'utf8')
    const kB = (field: string): number | undefined => {
      const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)
      return match == null ? undefined : mb(Number(match[1]) * 1024)
    }
    return { rssAnonMB: kB('RssAnon'), rssFileMB: kB('RssFile') }
  } catch {
    return {}
  }
}
const mb = (bytes: number): number => Math.round(bytes / 1024 / 10.24) / 100
let published = 0
const started = Date.now()
const end = started + MINUTES * 60_000

// Steady traffic: round-robin over the nodes at RATE per second of wall time. A tick publishes
// what is due since the start, so a late timer (a busy machine) does not lower the rate: the
// caches' steady state depends on it (the seen cache holds 2 minutes of ids).
let attempted = 0
const publishOne = (): void => {
  const payload = new Uint8Array(SIZE)
  new DataView(payload.buffer).setUint32(0, attempted)
  try {
    nodes[attempted % NODES].behaviour.gossipsub.publish(TOPIC, payload)
    published++
  } catch (err) {
    console.error(`publish ${attempted} failed: ${String(err)}`)
  }
  attempted++
}
const publisher = setInterval(() => {
  if (!running) return
  const due = Math.floor((Date.now() - started) * RATE / 1000)
  // At most one second's worth at once (after a long stall the rest waits for later ticks).
  for (let i = 0; i < RATE && attempted < due; i++) publishOne()
}, 1000 / RATE)

while (Date.now() < end) {
  await new Promise(resolve => setTimeout(resolve, Math.min(SAMPLE_S * 1000, Math.max(0, end - Date.now()))))
  const rssBeforeGcMB = mb(process.memoryUsage.rss())
  compactingGc()
  const memory = process.memoryUsage()
  const sample: Sample = {
    rssBeforeGcMB,
    t: Math.round((Date.now() - started) / 1000), rssMB: mb(memory.rss), heapMB: mb(memory.heapUsed), heapTotalMB: mb(memory.heapTotal),
    externalMB: mb(memory.external), arrayBuffersMB: mb(memory.arrayBuffers), ...residentSplit(), published, delivered: delivered.reduce((a, b) => a + b, 0)
  }
  samples.push(sample)
  console.log(JSON.stringify(sample))
}
running = false
clearInterval(publisher)
// Let the last messages arrive (bounded).
const expected = (): number => published * (NODES - 1)
const settle = Date.now() + 10_000
while (Date.now() < settle && delivered.reduce((a, b) => a + b, 0) < expected()) await new Promise(resolve => setTimeout(resolve, 50))
const total = delivered.reduce((a, b) => a + b, 0)

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN
const afterWarmup = samples.filter(s => s.t >= MINUTES * 60 * WARMUP)
const third = Math.floor(afterWarmup.length / 3)
const growthOf = (value: (s: Sample) => number): { first: number, last: number, growth: number } => {
  const first = median(afterWarmup.slice(0, third).map(value))
  const last = median(afterWarmup.slice(-third).map(value))
  return { first, last, growth: Math.round((last - first) / first * 10_000) / 10_000 }
}
// The verdict's RSS is the one before the sampler's GC (see the top of the file).
const rss = growthOf(s => s.rssBeforeGcMB)
const rssAfterGc = growthOf(s => s.rssMB)
const heap = growthOf(s => s.heapMB)
if (third < 3) console.error(`only ${afterWarmup.length} samples after warm-up: at least 9 are needed (lower --sample or raise --minutes)`)
const ok = third >= 3 && rss.growth < 0.05 && total === expected()
console.log(JSON.stringify({
  soak: 'gossipsub', nodes: NODES, minutes: MINUTES, rate: RATE, size: SIZE, node: process.version,
  published, deliveryRatio: total / expected(), rssAfterWarmupMB: rss.first, rssEndMB: rss.last, rssGrowth: rss.growth,
  rssAfterGcGrowth: rssAfterGc.growth, heapAfterWarmupMB: heap.first, heapEndMB: heap.last, heapGrowth: heap.growth,
  verdict: ok ? 'pass' : 'fail'
}))
await Promise.all(nodes.map(async n => { await n.close() }))
await Promise.all(loops)
process.exit(ok ? 0 : 1)
