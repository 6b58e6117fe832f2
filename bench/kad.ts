/**
 * Kademlia benchmark: ours against js-libp2p's `@libp2p/kad-dht` 16.4.5, in the same run.
 *
 * 50 nodes in one process over TCP on 127.0.0.1 (Noise, Yamux), each with identify, ping and
 * Kademlia in server mode (ours: `mode: 'server'`, no periodic bootstrap; js: `clientMode:
 * false`, `passthroughMapper`, a validator and selector that accept any `/t/` record; both with
 * their defaults otherwise: k = 20; α = 3 for ours, α = 10 over 10 disjoint paths for js). Each
 * implementation runs in a fresh child process (so that one network's heap does not inflate the
 * other's RSS): ours, then js.
 *
 * Bootstrap: node i (i > 0) is told one random earlier node (ours: `addAddress`; js: a dial to
 * it, which is how js learns a peer), then every node bootstraps (ours `bootstrap()` to its last
 * event, js `refreshRoutingTable()`), twice (the second round lets early nodes learn late ones,
 * as the periodic bootstrap would). `bootstrapMs` is the wall time of both rounds. Then the run
 * waits until the process's CPU stays under 25% for a second (`settleMs`, at most 120 s), so that
 * work a bootstrap left running in the background is not billed to the lookups.
 *
 * Then, one lookup at a time, `LOOKUPS` of each kind (fewer if the kind's time budget,
 * `BENCH_BUDGET_MS`, default 180 s, runs out; `lookups` says how many), from node j mod 50:
 * - getClosestPeers of a random key: success = it ended without error with k peers; `precision`
 *   is the mean share of them among the true k closest (computed from all ids);
 * - putRecord of `/t/bench-<j>` (100 B): success = stored at every peer the lookup found (ours:
 *   quorum `'all'`, since js sends to every final peer and waits for each answer; js: one correct
 *   PUT_VALUE answer per final peer);
 * - getRecord of `/t/bench-<j>` from node (j + 25) mod 50: success = the right value from a peer
 *   other than the getter; the lookup ends there (ours `query(id).finish()`, js leaves its loop).
 *
 * Reported per kind: success ratio; p50 and p99 latency (call → end); CPU time per lookup
 * (`process.cpuUsage()` user + system over the kind's lookups, all 50 nodes included, / lookups);
 * messages per lookup (requests the querying node sent: ours `stats.requests` of the last event,
 * js its `SEND_QUERY` events); wire bytes per lookup (bytes handed to TCP sockets over the kind's
 * lookups, all of Noise, Yamux, identify and ping included, bench/wire.ts, / lookups). And RSS
 * per node (RSS after the run − RSS before the nodes were made, after a GC, / nodes). Ratios are
 * ours / js (lower is better, success aside).
 *
 * `BENCH_LOOKUPS=n` sets the lookups per kind (default 50); `BENCH_ONLY=ours|js` runs one side in
 * this process (no child); `BENCH_PROFILE=dir` writes a CPU profile of the lookups (bootstrap
 * excluded) to `dir/<impl>-kad.cpuprofile`.
 *
 * Run: npm run bench:kad
 */
import '../src/compat.js'
import { spawn } from 'node:child_process'
import { setMaxListeners } from 'node:events'
import { mkdirSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { fileURLToPath } from 'node:url'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify as jsIdentify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { ping as jsPing } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { SwarmBuilder, combine, identify, kad, peerIdOf, ping } from '../src/index.js'
import { compareDistance, keyOf, keyOfPeer } from '../src/protocols/kad/kbucket.js'
import { countSocketWrites, resetWireBytes, wireBytes } from './wire.js'
import type { Multiaddr, PeerId } from '../src/index.js'

const NODES = 50
const K = 20
const LOOKUPS = Math.max(1, Number(process.env.BENCH_LOOKUPS ?? 50) || 50)
const ONLY = process.env.BENCH_ONLY
const PROFILE_DIR = process.env.BENCH_PROFILE
/** A lookup that has not ended by then counts as failed. */
const LOOKUP_TIMEOUT_MS = 60_000
/**
 * A kind's lookups stop after this long (`BENCH_BUDGET_MS`), counting what was done: on this
 * shared machine a slow side must not hold the run for half an hour.
 */
const KIND_BUDGET_MS = Number(process.env.BENCH_BUDGET_MS ?? 180_000)
/** A bootstrap (one lookup per bucket beyond the nearest non-empty one) that has not ended by then fails the run. */
const BOOTSTRAP_TIMEOUT_MS = 600_000

type Kind = 'getClosestPeers' | 'putRecord' | 'getRecord'
const KINDS: Kind[] = ['getClosestPeers', 'putRecord', 'getRecord']

/** One lookup's outcome. */
interface Lookup {
  ok: boolean
  /** Requests the querying node sent. */
  messages: number
  /** getClosestPeers only: the peers it returned. */
  peers?: PeerId[]
}

interface Network {
  readonly ids: PeerId[]
  /** Both bootstrap rounds. */
  bootstrap: () => Promise<void>
  getClosestPeers: (node: number, key: Uint8Array) => Promise<Lookup>
  putRecord: (node: number, key: Uint8Array, value: Uint8Array) => Promise<Lookup>
  getRecord: (node: number, key: Uint8Array, value: Uint8Array) => Promise<Lookup>
  close: () => Promise<void>
}

async function waitFor (what: string, condition: () => boolean, timeout = 20_000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** A random earlier node for each node i > 0 (index 0 unused). */
function seeds (): number[] {
  return Array.from({ length: NODES }, (_, i) => i === 0 ? -1 : Math.floor(Math.random() * i))
}

const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i])

async function oursNetwork (): Promise<Network> {
  const swarms = await Promise.all(Array.from({ length: NODES }, async () => SwarmBuilder.withNewIdentity().withTcp()
    .withBehaviour(key => combine({
      kad: new kad.Behaviour(peerIdOf(key), { mode: 'server', periodicBootstrapInterval: null }),
      identify: new identify.Behaviour(key.publicKey),
      ping: new ping.Behaviour()
    }))
    .withSwarmConfig({ idleConnectionTimeout: 600_000 })
    .build()))
  type Progress = Extract<kad.Event, { type: 'OutboundQueryProgressed' }>
  const ids = swarms.map(s => s.localPeerId)
  const addresses: Array<Multiaddr | undefined> = []
  /** Waiters by "node/query id", given every progress event of that query. */
  const watchers = new Map<string, (event: Progress) => void>()
  const controller = new AbortController()
  setMaxListeners(NODES + 10, controller.signal)
  const loops = swarms.map(async (swarm, i) => {
    for (;;) {
      let event
      try {
        event = await swarm.selectNextSome({ signal: controller.signal })
      } catch {
        return
      }
      if (event.type === 'NewListenAddr' && addresses[i] == null) addresses[i] = event.address
      if (event.type !== 'Behaviour' || event.event.behaviour !== 'kad') continue
      const e = event.event.event
      if (e.type === 'OutboundQueryProgressed') watchers.get(`${i}/${e.id}`)?.(e)
    }
  })
  /** Feed query `id` of node `i`'s events to `onEvent` until it returns a value or the last event. */
  const follow = async <T>(i: number, id: kad.QueryId, onEvent: (e: Progress) => T | undefined, onEnd: (e: Progress) => T, timeout = LOOKUP_TIMEOUT_MS): Promise<T> => {
    const key = `${i}/${id}`
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => { watchers.delete(key); reject(new Error(`query ${key} did not end`)) }, timeout)
      watchers.set(key, (e) => {
        const value = onEvent(e)
        if (value === undefined && !e.step.last) return
        clearTimeout(timer)
        watchers.delete(key)
        resolve(value ?? onEnd(e))
      })
    })
  }
  const lastOf = async (i: number, id: kad.QueryId, timeout?: number): Promise<Progress> => await follow(i, id, e => e.step.last ? e : undefined, e => e, timeout)
  for (const swarm of swarms) swarm.listenOn('/ip4/127.0.0.1/tcp/0')
  await waitFor('listening', () => addresses.filter(a => a != null).length === NODES)
  const seed = seeds()
  const kadOf = (i: number): kad.Behaviour => swarms[i].behaviour.kad
  return {
    ids,
    bootstrap: async () => {
      for (let i = 1; i < NODES; i++) kadOf(i).addAddress(ids[seed[i]], addresses[seed[i]] as Multiaddr)
      await Promise.all(swarms.slice(1).map(async (_, j) => { await lastOf(j + 1, kadOf(j + 1).bootstrap(), BOOTSTRAP_TIMEOUT_MS) }))
      await Promise.all(swarms.map(async (_, i) => { await lastOf(i, kadOf(i).bootstrap(), BOOTSTRAP_TIMEOUT_MS) }))
    },
    getClosestPeers: async (i, key) => {
      const end = await lastOf(i, kadOf(i).getClosestPeers(key))
      const peers = end.result.type === 'GetClosestPeers' && end.result.ok !== undefined ? end.result.ok.peers.map(p => p.peerId) : undefined
      return { ok: peers?.length === K, messages: end.stats.requests, peers }
    },
    putRecord: async (i, key, value) => {
      const end = await lastOf(i, kadOf(i).putRecord({ key, value }, 'all'))
      return { ok: end.result.type === 'PutRecord' && end.result.ok !== undefined, messages: end.stats.requests }
    },
    getRecord: async (i, key, value) => {
      const id = kadOf(i).getRecord(key)
      return await follow(i, id, (e) => {
        if (e.result.type !== 'GetRecord' || e.result.ok?.type !== 'FoundRecord' || e.result.ok.record.peer === undefined) return undefined
        const ok = equalBytes(e.result.ok.record.record.value, value)
        kadOf(i).query(id)?.finish()
        return { ok, messages: e.stats.requests }
      }, e => ({ ok: false, messages: e.stats.requests }))
    },
    close: async () => {
      controller.abort()
      await Promise.all(loops)
      await Promise.all(swarms.map(async s => { await s.close() }))
    }
  }
}

async function jsNetwork (): Promise<Network> {
  const nodes = await Promise.all(Array.from({ length: NODES }, async () => createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: jsIdentify(),
      ping: jsPing(),
      dht: kadDHT({
        clientMode: false,
        peerInfoMapper: passthroughMapper,
        validators: { t: async () => {} },
        selectors: { t: () => 0 }
      })
    },
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] }
  })))
  const ids = nodes.map(n => n.peerId)
  const seed = seeds()
  const signal = (): AbortSignal => AbortSignal.timeout(LOOKUP_TIMEOUT_MS)
  return {
    ids,
    bootstrap: async () => {
      // One dial at a time (as bench/floodsub.ts does): 49 at once time out in Noise on 2 cores.
      // A dial whose Noise handshake times out (a loaded machine) is tried again, up to 5 times.
      for (let i = 1; i < NODES; i++) {
        for (let attempt = 1; ; attempt++) {
          try {
            await nodes[i].dial(nodes[seed[i]].getMultiaddrs()[0])
            break
          } catch (err) {
            if (attempt === 5) throw err
            console.error(`js: dial ${i} → ${seed[i]} failed (${(err as Error).message}), again`)
          }
        }
      }
      await Promise.all(nodes.slice(1).map(async n => { await n.services.dht.refreshRoutingTable() }))
      await Promise.all(nodes.map(async n => { await n.services.dht.refreshRoutingTable() }))
    },
    getClosestPeers: async (i, key) => {
      let messages = 0
      const peers: PeerId[] = []
      try {
        for await (const event of nodes[i].services.dht.getClosestPeers(key, { signal: signal() })) {
          if (event.name === 'SEND_QUERY') messages++
          if (event.name === 'FINAL_PEER') peers.push(event.peer.id)
        }
      } catch {
        return { ok: false, messages, peers }
      }
      return { ok: peers.length === K, messages, peers }
    },
    putRecord: async (i, key, value) => {
      let messages = 0
      let finals = 0
      let stored = 0
      try {
        for await (const event of nodes[i].services.dht.put(key, value, { signal: signal() })) {
          if (event.name === 'SEND_QUERY') messages++
          if (event.name === 'FINAL_PEER') finals++
          if (event.name === 'PEER_RESPONSE' && event.messageName === 'PUT_VALUE' && event.record != null && equalBytes(event.record.value, value)) stored++
        }
      } catch {
        return { ok: false, messages }
      }
      // Not "no QUERY_ERROR": js's put passes on its lookup's events, whose errors (a peer that
      // did not answer the lookup) say nothing of the put. A wrong echo leaves `stored` short.
      return { ok: finals > 0 && stored === finals, messages }
    },
    getRecord: async (i, key, value) => {
      let messages = 0
      try {
        for await (const event of nodes[i].services.dht.get(key, { signal: signal() })) {
          if (event.name === 'SEND_QUERY') messages++
          if (event.name === 'VALUE' && !event.from.equals(ids[i])) return { ok: equalBytes(event.value, value), messages }
        }
      } catch {}
      return { ok: false, messages }
    },
    close: async () => { await Promise.all(nodes.map(async n => { await n.stop() })) }
  }
}

interface KindResult {
  /** Lookups made (fewer than `LOOKUPS` when the time budget ran out). */
  lookups: number
  success: number
  p50Ms: number
  p99Ms: number
  cpuMsPerLookup: number
  messagesPerLookup: number
  wireBytesPerLookup: number
  /** getClosestPeers only. */
  precision?: number
}

interface Result {
  bootstrapMs: number
  /** After bootstrap, until the process's CPU stayed under 25% for a second (background work done). */
  settleMs: number
  rssMBPerNode: number
  getClosestPeers: KindResult
  putRecord: KindResult
  getRecord: KindResult
}

function rssAfterGc (): number {
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  gc?.()
  return process.memoryUsage().rss
}

/** The true k closest of `ids` to `key`, `exclude` left out. */
function trueClosest (ids: readonly PeerId[], key: Uint8Array, exclude: PeerId): Set<string> {
  const target = keyOf(key).hash
  return new Set(ids.filter(p => !p.equals(exclude)).sort((a, b) => compareDistance(target, keyOfPeer(a).hash, keyOfPeer(b).hash)).slice(0, K).map(String))
}

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

/** `LOOKUPS` lookups of one kind, one at a time. */
async function measure (network: Network, kind: Kind, keys: Uint8Array[], values: Uint8Array[]): Promise<KindResult> {
  const latencies: number[] = []
  const precisions: number[] = []
  let ok = 0
  let messages = 0
  resetWireBytes()
  const cpu = process.cpuUsage()
  const deadline = performance.now() + KIND_BUDGET_MS
  let done = 0
  for (let j = 0; j < LOOKUPS && performance.now() < deadline; j++) {
    done++
    const node = kind === 'getRecord' ? (j + NODES / 2) % NODES : j % NODES
    const started = performance.now()
    let lookup: Lookup
    try {
      lookup = kind === 'getClosestPeers'
        ? await network.getClosestPeers(node, keys[j])
        : kind === 'putRecord' ? await network.putRecord(node, keys[j], values[j]) : await network.getRecord(node, keys[j], values[j])
    } catch {
      lookup = { ok: false, messages: 0 }
    }
    latencies.push(performance.now() - started)
    if (lookup.ok) ok++
    messages += lookup.messages
    if (lookup.peers !== undefined) {
      const truth = trueClosest(network.ids, keys[j], network.ids[node])
      precisions.push(lookup.peers.filter(p => truth.has(p.toString())).length / K)
    }
  }
  const used = process.cpuUsage(cpu)
  const bytes = wireBytes()
  latencies.sort((a, b) => a - b)
  const percentile = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN
  return {
    lookups: done,
    success: ok / done,
    p50Ms: percentile(0.5),
    p99Ms: percentile(0.99),
    cpuMsPerLookup: (used.user + used.system) / 1000 / done,
    messagesPerLookup: messages / done,
    wireBytesPerLookup: bytes / done,
    ...(kind === 'getClosestPeers' ? { precision: precisions.reduce((a, b) => a + b, 0) / Math.max(1, precisions.length) } : {})
  }
}

type Impl = 'ours' | 'js'

/** Wait (at most 120 s) until a second passes with the process's CPU under 25%; how long it took. */
async function settle (): Promise<number> {
  const started = performance.now()
  while (performance.now() - started < 120_000) {
    const cpu = process.cpuUsage()
    await new Promise(resolve => setTimeout(resolve, 1000))
    const used = process.cpuUsage(cpu)
    if ((used.user + used.system) / 1000 < 250) break
  }
  return performance.now() - started
}

async function runCase (impl: Impl): Promise<Result> {
  countSocketWrites()
  const before = rssAfterGc()
  const network = impl === 'js' ? await jsNetwork() : await oursNetwork()
  try {
    const started = performance.now()
    await network.bootstrap()
    const bootstrapMs = performance.now() - started
    const settleMs = await settle()
    const encoder = new TextEncoder()
    const randomKeys = Array.from({ length: LOOKUPS }, () => crypto.getRandomValues(new Uint8Array(32)))
    const recordKeys = Array.from({ length: LOOKUPS }, (_, j) => encoder.encode(`/t/bench-${j}`))
    const values = Array.from({ length: LOOKUPS }, () => crypto.getRandomValues(new Uint8Array(100)))
    const kinds = await profiled(`${impl}-kad`, async () => ({
      getClosestPeers: await measure(network, 'getClosestPeers', randomKeys, values),
      putRecord: await measure(network, 'putRecord', recordKeys, values),
      getRecord: await measure(network, 'getRecord', recordKeys, values)
    }))
    return { bootstrapMs, settleMs, rssMBPerNode: (rssAfterGc() - before) / (1024 * 1024) / NODES, ...kinds }
  } finally {
    await network.close()
  }
}

async function inChild (impl: Impl): Promise<Result> {
  const file = fileURLToPath(import.meta.url)
  const child = spawn(process.execPath, [...process.execArgv, '--expose-gc', file], {
    env: { ...process.env, KAD_BENCH_CHILD: impl },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let out = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk: string) => { out += chunk })
  const code = await new Promise<number | null>(resolve => child.on('exit', resolve))
  const last = out.trim().split('\n').at(-1) ?? ''
  if (code !== 0 || !last.startsWith('{')) throw new Error(`${impl}: child exited with ${String(code)}: ${out}`)
  return JSON.parse(last) as Result
}

function round (value: number): number {
  return Math.round(value * 1000) / 1000
}

function rounded (result: Result): Result {
  const kind = (r: KindResult): KindResult => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, round(v as number)])) as unknown as KindResult
  return { bootstrapMs: round(result.bootstrapMs), settleMs: round(result.settleMs), rssMBPerNode: round(result.rssMBPerNode), getClosestPeers: kind(result.getClosestPeers), putRecord: kind(result.putRecord), getRecord: kind(result.getRecord) }
}

const child = process.env.KAD_BENCH_CHILD
if (child != null) {
  console.log(JSON.stringify(await runCase(child as Impl)))
  // js-libp2p may leave timers behind after stop(); the result is out.
  process.exit(0)
}

if (ONLY === 'ours' || ONLY === 'js') {
  console.log(JSON.stringify({ bench: 'kad', nodes: NODES, lookups: LOOKUPS, [ONLY]: rounded(await runCase(ONLY)) }))
  process.exit(0)
}
const ours = await inChild('ours')
console.log(JSON.stringify({ impl: 'ours', ...rounded(ours) }))
const js = await inChild('js')
console.log(JSON.stringify({ impl: 'js', ...rounded(js) }))
const ratio: Record<string, unknown> = { bootstrapMs: round(ours.bootstrapMs / js.bootstrapMs), rssPerNode: round(ours.rssMBPerNode / js.rssMBPerNode) }
for (const kind of KINDS) {
  const o = ours[kind]
  const j = js[kind]
  ratio[kind] = {
    p50: round(o.p50Ms / j.p50Ms),
    p99: round(o.p99Ms / j.p99Ms),
    cpuPerLookup: round(o.cpuMsPerLookup / j.cpuMsPerLookup),
    messagesPerLookup: round(o.messagesPerLookup / j.messagesPerLookup),
    wireBytesPerLookup: round(o.wireBytesPerLookup / j.wireBytesPerLookup)
  }
}
console.log(JSON.stringify({ bench: 'kad', nodes: NODES, k: K, lookups: LOOKUPS, node: process.version, ours: rounded(ours), js: rounded(js), ratio }))
