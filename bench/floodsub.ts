/**
 * FloodSub benchmark: ours against js-libp2p's `@libp2p/floodsub`, in the same run.
 *
 * Ten nodes in one process over TCP on 127.0.0.1, each dialing the nodes 1 and 3 places
 * ahead of it in a ring (degree 4), all subscribed, StrictSign. Node 0 publishes 1,000
 * messages as fast as its publish call allows (yielding to the event loop between two), for
 * payloads of 256 B and of 16 KiB. Each payload carries its send time.
 *
 * Each network runs in a fresh child process (so that one network's heap does not inflate the
 * next one's RSS): ours, then js, per size.
 *
 * Reported per implementation and size: delivery ratio (deliveries / (1,000 × 9)), p50 and p99
 * latency (publish → delivery, over every delivery), messages per second (1,000 / time from the
 * first publish to the last delivery), wire bytes per delivery (bytes handed to TCP sockets —
 * `net.Socket.prototype.write` wrapped, all of Noise, Yamux and control traffic — from the first
 * publish to the last delivery, / deliveries), and RSS per node (RSS after the run − RSS before
 * the nodes were made, after a GC, / nodes). Per size, also the crypto ceiling measured in the
 * same run (bench/crypto-ceiling.ts: our sign and verify, 1 / (sign + 9 × verify)) and each
 * implementation's share of it. Ratios are ours / js (latency, bytes, RSS: lower is better;
 * rate: higher is better).
 *
 * `BENCH_SIZES=256,16384` picks sizes; `BENCH_ONLY=ours|js` runs one side in this process
 * (no child), `BENCH_PROFILE=dir` writes a CPU profile of each measured run (set-up excluded).
 *
 * Run: npm run bench:floodsub
 */
import '../src/compat.js'
import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { fileURLToPath } from 'node:url'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { floodsub as jsFloodsub } from '@libp2p/floodsub'
import { identify as jsIdentify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { SwarmBuilder, combine, floodsub, identify } from '../src/index.js'
import { ed25519Implementation } from '../src/node.js'
import { cryptoCeiling } from './crypto-ceiling.js'
import { REPEAT, alternated } from './repeat.js'
import { countSocketWrites, resetWireBytes, wireBytes } from './wire.js'
import type { Multiaddr } from '@multiformats/multiaddr'

const NODES = 10
const MESSAGES = 1_000
const TOPIC = 'bench'
const SIZES = process.env.BENCH_SIZES != null ? process.env.BENCH_SIZES.split(',').map(Number) : [256, 16 * 1024]
/** `BENCH_ONLY=ours` or `js` runs one implementation (e.g. to profile it alone). */
const ONLY = process.env.BENCH_ONLY
/**
 * `BENCH_PROFILE=dir`: write a CPU profile of each measured run (publish → last delivery, no
 * set-up) to `dir/<impl>-<size>.cpuprofile`.
 */
const PROFILE_DIR = process.env.BENCH_PROFILE

/** Run `body`, profiling it into `PROFILE_DIR/name.cpuprofile` when asked to. */
async function profiled<T> (name: string, body: () => Promise<T>): Promise<T> {
  if (PROFILE_DIR == null) return body()
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.start')
  try {
    return await body()
  } finally {
    const { profile } = await session.post('Profiler.stop')
    mkdirSync(PROFILE_DIR, { recursive: true })
    writeFileSync(`${PROFILE_DIR}/${name}.cpuprofile`, JSON.stringify(profile))
    session.disconnect()
  }
}
/** Give up when no delivery happened for this long. */
const STALL_MS = 10_000

interface Network {
  /** Publish one payload from node 0. */
  publish: (payload: Uint8Array) => Promise<void>
  /** Called with (node index, payload) on every delivery. */
  onDelivery: (listener: (node: number, payload: Uint8Array) => void) => void
  close: () => Promise<void>
}

/** Ring with chords: node i dials i+1 and i+3. */
function links (): Array<[number, number]> {
  return Array.from({ length: NODES }, (_, i) => [[i, (i + 1) % NODES], [i, (i + 3) % NODES]] as Array<[number, number]>).flat()
}

async function waitFor (what: string, condition: () => boolean, timeout = 20_000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

async function oursNetwork (): Promise<Network> {
  const swarms = await Promise.all(Array.from({ length: NODES }, async () => SwarmBuilder.withNewIdentity().withTcp()
    .withBehaviour(key => combine({
      identify: new identify.Behaviour(key.publicKey),
      floodsub: new floodsub.Behaviour({ authenticity: floodsub.MessageAuthenticity.signed(key) })
    }))
    .build()))
  let listener: (node: number, payload: Uint8Array) => void = () => {}
  const addresses: Array<Multiaddr | undefined> = []
  const loops = swarms.map(async (swarm, i) => {
    for await (const event of swarm) {
      if (event.type === 'NewListenAddr' && addresses[i] == null) addresses[i] = event.address
      if (event.type === 'Behaviour' && event.event.behaviour === 'floodsub' && event.event.event.type === 'Message') listener(i, event.event.event.message.data)
    }
  })
  for (const swarm of swarms) {
    swarm.behaviour.floodsub.subscribe(TOPIC)
    swarm.listenOn('/ip4/127.0.0.1/tcp/0')
  }
  await waitFor('listening', () => addresses.filter(a => a != null).length === NODES)
  for (const [from, to] of links()) swarms[from].dial(addresses[to] as Multiaddr)
  await waitFor('subscriptions', () => swarms.every(s => s.behaviour.floodsub.subscribers(TOPIC).length === 4))
  return {
    publish: async (payload) => { swarms[0].behaviour.floodsub.publish(TOPIC, payload) },
    onDelivery: (l) => { listener = l },
    close: async () => {
      await Promise.all(swarms.map(async s => { await s.close() }))
      await Promise.all(loops)
    }
  }
}

async function jsNetwork (): Promise<Network> {
  const nodes = await Promise.all(Array.from({ length: NODES }, async () => createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: jsIdentify(), pubsub: jsFloodsub() },
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] }
  })))
  let listener: (node: number, payload: Uint8Array) => void = () => {}
  nodes.forEach((node, i) => {
    node.services.pubsub.subscribe(TOPIC)
    node.services.pubsub.addEventListener('message', (evt) => { listener(i, evt.detail.data) })
  })
  for (const [from, to] of links()) await nodes[from].dial(nodes[to].getMultiaddrs()[0])
  await waitFor('subscriptions', () => nodes.every(n => n.services.pubsub.getSubscribers(TOPIC).length === 4))
  return {
    publish: async (payload) => { await nodes[0].services.pubsub.publish(TOPIC, payload) },
    onDelivery: (l) => { listener = l },
    close: async () => { await Promise.all(nodes.map(async n => { await n.stop() })) }
  }
}

interface Result {
  deliveryRatio: number
  p50Ms: number
  p99Ms: number
  msgsPerSec: number
  wireBytesPerDelivery: number
  rssMBPerNode: number
}

/** RSS after a full GC (with --expose-gc). */
function rssAfterGc (): number {
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  gc?.()
  return process.memoryUsage().rss
}

async function run (network: Network, size: number, rssBefore: number): Promise<Result> {
  const latencies: number[] = []
  const seen = new Set<string>()
  let lastDelivery = performance.now()
  network.onDelivery((node, payload) => {
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
    const key = `${node}:${view.getUint32(8)}`
    if (seen.has(key)) return
    seen.add(key)
    lastDelivery = performance.now()
    latencies.push(lastDelivery - view.getFloat64(0))
  })
  resetWireBytes()
  const started = performance.now()
  for (let i = 0; i < MESSAGES; i++) {
    const payload = new Uint8Array(size)
    const view = new DataView(payload.buffer)
    view.setFloat64(0, performance.now())
    view.setUint32(8, i)
    await network.publish(payload)
    await new Promise(resolve => setImmediate(resolve))
  }
  const expected = MESSAGES * (NODES - 1)
  while (seen.size < expected && performance.now() - lastDelivery < STALL_MS) {
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  const bytes = wireBytes()
  latencies.sort((a, b) => a - b)
  const percentile = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN
  return {
    deliveryRatio: seen.size / expected,
    p50Ms: percentile(0.5),
    p99Ms: percentile(0.99),
    msgsPerSec: MESSAGES / ((lastDelivery - started) / 1000),
    wireBytesPerDelivery: bytes / seen.size,
    rssMBPerNode: (rssAfterGc() - rssBefore) / (1024 * 1024) / NODES
  }
}

type Impl = 'ours' | 'js'

/** One implementation at one size, in this process. */
async function runCase (impl: Impl, size: number): Promise<Result> {
  countSocketWrites()
  const before = rssAfterGc()
  const network = impl === 'js' ? await jsNetwork() : await oursNetwork()
  try {
    return await profiled(`${impl}-${size}`, async () => run(network, size, before))
  } finally {
    await network.close()
  }
}

/** One implementation at one size in a fresh child process; its last stdout line is the result. */
async function inChild (impl: Impl, size: number): Promise<Result> {
  const file = fileURLToPath(import.meta.url)
  const child = spawn(process.execPath, [...process.execArgv, '--expose-gc', file], {
    env: { ...process.env, FLOODSUB_BENCH_CHILD: JSON.stringify({ impl, size }) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let out = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk: string) => { out += chunk })
  const code = await new Promise<number | null>(resolve => child.on('exit', resolve))
  const last = out.trim().split('\n').at(-1) ?? ''
  if (code !== 0 || !last.startsWith('{')) throw new Error(`${impl} ${size} B: child exited with ${String(code)}: ${out}`)
  return JSON.parse(last) as Result
}

function round (value: number): number {
  return Math.round(value * 1000) / 1000
}

function rounded<T extends object> (result: T): T {
  return Object.fromEntries(Object.entries(result).map(([k, v]) => [k, round(v as number)])) as T
}

const child = process.env.FLOODSUB_BENCH_CHILD
if (child != null) {
  const { impl, size } = JSON.parse(child) as { impl: Impl, size: number }
  console.log(JSON.stringify(await runCase(impl, size)))
  // js-libp2p may leave timers behind after stop(); the result is out.
  process.exit(0)
}

const results: Record<string, unknown> = {}
for (const size of SIZES) {
  if (ONLY === 'js' || ONLY === 'ours') {
    results[`${size}B`] = { [ONLY]: rounded(await runCase(ONLY, size)) }
    continue
  }
  const runs = await alternated(async () => inChild('ours', size), async () => inChild('js', size))
  const { ours, js } = runs
  const ceiling = await cryptoCeiling(NODES, size)
  results[`${size}B`] = {
    ...(REPEAT > 1 ? { runs: REPEAT, rateRatios: runs.rateRatios } : {}),
    ours: rounded(ours),
    js: rounded(js),
    cryptoCeiling: rounded({ ...ceiling, oursShare: ours.msgsPerSec / ceiling.msgsPerSec, jsShare: js.msgsPerSec / ceiling.msgsPerSec }),
    ratio: {
      p50: round(ours.p50Ms / js.p50Ms),
      p99: round(ours.p99Ms / js.p99Ms),
      msgsPerSec: round(ours.msgsPerSec / js.msgsPerSec),
      wireBytesPerDelivery: round(ours.wireBytesPerDelivery / js.wireBytesPerDelivery),
      rssPerNode: round(ours.rssMBPerNode / js.rssMBPerNode)
    }
  }
  console.log(JSON.stringify({ size, ...(results[`${size}B`] as object) }))
}
console.log(JSON.stringify({ bench: 'floodsub', nodes: NODES, degree: 4, messages: MESSAGES, runs: REPEAT, node: process.version, oursEd25519: ed25519Implementation(), results }))
