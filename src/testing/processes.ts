/**
 * A scenario as separate processes, one peer each (the peer program, `peer-program.ts`): the
 * peers' configs, the report made from their JSON lines (the simulator's report shape), and
 * the scenario as a Shadow simulation (shadow.yaml, a GML network graph with the scenario's
 * latencies, loss and bandwidth, one host per peer). `npm run net` and
 * `npm run sim -- --shadow <dir>` use them; see docs/simulation.md.
 *
 * @module
 */
import { ConfigError } from '../core/errors.js'
import * as gossipsub from '../protocols/gossipsub/index.js'
import { TimerHeap } from './heap.js'
import { SimulatedNetwork } from './network.js'
import { deliveriesPerPeer, deliveryReport, deliveryTimeline, ratioHistogram, summarise, summariseDegrees } from './report.js'
import { scenarioPlan } from './scenario.js'
import type { PeerConfig, PeerLine, PeerPublish } from './peer-program.js'
import type { PublishedMessage, Recorded, ScenarioReport } from './report.js'
import type { Scenario } from './scenario.js'

type ScenarioPlan = ReturnType<typeof scenarioPlan>

/** How {@link peerConfigs} places the peers and starts them. */
export interface PeerConfigOptions {
  /** Peer `index`'s listen (and dial) address, without `/p2p/`: e.g. `/ip4/127.0.0.1/tcp/<port>`. */
  readonly address: (index: number) => string
  /** When the schedule starts (see {@link PeerConfig.start}). */
  readonly start: PeerConfig['start']
}

/** The schedule of `plan`: each message's index, batch, publisher and time, as the simulator publishes them. */
function schedule (plan: ScenarioPlan): Array<PeerPublish & { readonly publisher: number }> {
  const out: Array<PeerPublish & { readonly publisher: number }> = []
  let id = 0
  plan.batches.forEach((batch, b) => {
    for (let m = 0; m < batch.messages; m++) {
      out.push({ id: id++, batch: b, at: batch.at + m * batch.interval, size: batch.size, publisher: batch.publishers[m % batch.publishers.length] })
    }
  })
  return out
}

/**
 * The config of every peer of `scenario`: the same identities, topology links (each dialed by
 * its first peer), subscribers, publishers and payloads as `runScenario` draws. Faults are not
 * supported yet (a partition would have to be made by the peers themselves).
 */
export function peerConfigs (scenario: Scenario, options: PeerConfigOptions): PeerConfig[] {
  if ((scenario.faults ?? []).length > 0) throw new ConfigError('faults', 'separate processes do not make partitions yet: run this scenario in the simulator')
  const plan = scenarioPlan(scenario)
  const messages = schedule(plan)
  const end = messages.reduce((t, m) => Math.max(t, m.at), 0) + 1
  const meshLow = scenario.gossipsub?.meshNLow ?? gossipsub.defaultConfig.meshNLow
  return Array.from({ length: scenario.peers }, (_, i): PeerConfig => {
    const subscribedNeighbours = plan.neighbours[i].reduce((sum, j) => sum + plan.subscribed[j], 0)
    return {
      index: i,
      seed: plan.seed,
      listen: options.address(i),
      dial: [...plan.dialsOf[i]].map(j => ({ index: j, address: options.address(j) })),
      neighbours: plan.neighbours[i],
      topic: plan.topic,
      subscribe: plan.subscribed[i] === 1,
      subscribedNeighbours,
      meshAtLeast: plan.subscribed[i] === 1 ? Math.min(meshLow, subscribedNeighbours) : 0,
      publish: messages.filter(m => m.publisher === i).map(({ id, batch, at, size }) => ({ id, batch, at, size })),
      start: options.start,
      stopAfter: end + plan.settle,
      ...(scenario.gossipsub == null ? {} : { gossipsub: scenario.gossipsub }),
      ...(scenario.identify === true ? { identify: true } : {})
    }
  })
}

/** What the runner of the processes measured itself (real ms). */
export interface ProcessRunTimes {
  /** From the first process started until every peer was ready. */
  readonly setupMs: number
  /** The whole run. */
  readonly totalMs: number
}

/**
 * The report of a run of separate processes, from every peer's lines: the simulator's report
 * shape (delivery per batch, latency percentiles and distribution, duplicates, bytes per
 * delivery, mesh degrees, deliveries over time) with RSS per process (`processes`) instead of
 * per simulated peer. There is no link model: `meanLinkLatency` is 0 and there are no
 * shortest paths. A peer without a `stats` line (stopped early) makes the report `partial`.
 */
export function reportFromLines (scenario: Scenario, lines: readonly PeerLine[], times: ProcessRunTimes): ScenarioReport {
  const plan = scenarioPlan(scenario)
  const n = scenario.peers
  const messages = schedule(plan)
  const published: Array<PublishedMessage | undefined> = new Array(plan.totalMessages).fill(undefined)
  const deliveredAt = new Float64Array(plan.totalMessages * n).fill(NaN)
  const publishErrors = plan.batches.map(() => 0)
  const starts: number[] = []
  const ready = new Map<number, Extract<PeerLine, { t: 'ready' }>>()
  const stats = new Map<number, Extract<PeerLine, { t: 'stats' }>>()
  for (const line of lines) {
    if (line.t === 'published' && line.id < messages.length) published[line.id] = { batch: messages[line.id].batch, publisher: line.index, at: line.at }
    else if (line.t === 'publish-error' && line.id < messages.length) publishErrors[messages[line.id].batch]++
    else if (line.t === 'delivery' && line.id < messages.length && line.index < n) {
      const slot = line.id * n + line.index
      if (Number.isNaN(deliveredAt[slot])) deliveredAt[slot] = line.at
    } else if (line.t === 'start') starts.push(line.at)
    else if (line.t === 'ready') ready.set(line.index, line)
    else if (line.t === 'stats') stats.set(line.index, line)
  }
  const t0 = starts.length === 0 ? 0 : Math.min(...starts)
  const endAt = stats.size === 0 ? t0 : Math.max(...[...stats.values()].map(s => s.at))
  const rec: Recorded = { peers: n, subscribed: plan.subscribed, published, deliveredAt }
  let first = 0
  const batches = plan.batches.map((batch, b) => {
    const ids = Array.from({ length: batch.messages }, (_, m) => first + m)
    first += batch.messages
    return deliveryReport(rec, batch.label, ids, publishErrors[b])
  })
  const total = deliveryReport(rec, 'all', messages.map(m => m.id), publishErrors.reduce((s, e) => s + e, 0))
  const gossip: Record<string, number> = {}
  const duplicates = new Uint32Array(n)
  let bytes = 0
  let connected = 0
  for (const s of stats.values()) {
    for (const [key, value] of Object.entries(s.gossip)) gossip[key] = (gossip[key] ?? 0) + value
    duplicates[s.index] = s.gossip.messages_duplicate ?? 0
    bytes += s.bytesSent
    connected += s.connected
  }
  const subscribers = (p: number): boolean => plan.subscribed[p] === 1
  const mb = (x: number | undefined): number => (x ?? NaN) / 2 ** 20
  const rssReady = [...ready.values()].map(r => mb(r.rss)).filter(x => !Number.isNaN(x))
  const rssEnd = [...stats.values()].map(s => mb(s.rss)).filter(x => !Number.isNaN(x))
  const heapEnd = [...stats.values()].map(s => mb(s.heapUsed)).filter(x => !Number.isNaN(x))
  const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
  const missing = n - stats.size
  const sortedGossip = Object.fromEntries(Object.entries(gossip).sort(([a], [b]) => a.localeCompare(b)))
  return {
    name: scenario.name ?? 'scenario',
    seed: plan.seed,
    peers: n,
    links: plan.links.length,
    degree: summariseDegrees(plan.degree),
    meanLinkLatency: 0,
    setupMs: times.setupMs,
    durationMs: endAt - t0,
    real: { setupMs: times.setupMs, totalMs: times.totalMs },
    batches,
    total,
    duplicatesPerDelivery: total.delivered === 0 ? NaN : (gossip.messages_duplicate ?? 0) / total.delivered,
    bytesPerDelivery: total.delivered === 0 ? NaN : bytes / total.delivered,
    gossip: sortedGossip,
    network: { bytes, chunks: 0, segments: 0, lostSegments: 0, delayedChunks: 0, heldChunks: 0, connections: Math.round(connected / 2), resets: 0, unreachableDials: 0 },
    meshDegree: {
      start: summariseDegrees([...ready.values()].filter(r => subscribers(r.index)).map(r => r.mesh ?? 0)),
      end: summariseDegrees([...stats.values()].filter(s => subscribers(s.index)).map(s => s.mesh))
    },
    redials: 0,
    memory: rssEnd.length === 0
      ? undefined
      : { rssPerPeerIdleMB: mean(rssReady), rssPerPeerEndMB: mean(rssEnd), heapPerPeerEndMB: mean(heapEnd), rssEndMB: rssEnd.reduce((a, b) => a + b, 0) },
    faults: [],
    timeline: deliveryTimeline(rec, t0, Math.max(1, endAt - t0)),
    duplicates: ratioHistogram(duplicates, deliveriesPerPeer(rec), subscribers),
    ...(missing === 0
      ? {}
      : { partial: { phase: starts.length === 0 ? 'set-up' : 'measurement', measuredMs: endAt - t0, published: published.filter(p => p != null).length, messages: plan.totalMessages, reason: `${missing} of ${n} peers reported no counters (stopped early or failed)` } }),
    processes: { processes: n, rssReadyMB: summarise(rssReady), rssEndMB: summarise(rssEnd) },
    runner: 'processes'
  }
}

/** How {@link shadowConfig} writes the hosts' processes. */
export interface ShadowOptions {
  /** The directory the files will be written to (absolute): shadow.yaml names the graph and the peers' configs by their path in it. */
  readonly dir: string
  /** The program that runs one peer with its config file: Node and its arguments (e.g. `--import tsx scripts/peer.ts <file>`, with absolute paths). */
  readonly command: (configFile: string) => { readonly path: string, readonly args: readonly string[], readonly environment?: Readonly<Record<string, string>> }
  /** The TCP port every peer listens on (default: 4000). */
  readonly port?: number
  /** When the processes start, in simulated s (default: 1). */
  readonly startTime?: number
  /** Ms from the processes' start to the schedule's start: the warm-up (default: 20 000). */
  readonly warmup?: number
  /** `general.parallelism`: cores Shadow may use (default: 1). */
  readonly parallelism?: number
  /** Bandwidth of the hosts where the scenario sets none, Mbit/s (default: 10 000). */
  readonly defaultBandwidthMbps?: number
  /** The command that makes the report from the hosts' output, for the README (default: a pointer to `reportFromLines`). */
  readonly collect?: string
}

/** A file of the Shadow simulation: its path in `dir`, and its text. */
interface ShadowFile {
  readonly path: string
  readonly text: string
}

/** The Shadow simulation of a scenario: its files, and what did not translate exactly. */
export interface ShadowConfig {
  readonly files: readonly ShadowFile[]
  /** Topology links for which the graph has a shorter path than the link itself (Shadow routes along shortest paths): their latency there is lower than in the simulator. */
  readonly shorterPaths: number
  /** Notes on what the Shadow run differs in. */
  readonly notes: readonly string[]
}

/** Host `i`'s IPv4 address: 11.a.b.c, c from 1 to 250. */
function shadowAddress (i: number): string {
  return `11.${Math.floor(i / 64_000)}.${Math.floor(i / 250) % 256}.${(i % 250) + 1}`
}

/** A Shadow time or bandwidth: integer magnitudes only (Shadow's unit parser takes integers). */
function micros (ms: number): string {
  return `${Math.max(1, Math.round(ms * 1000))} us`
}

function bandwidth (mbps: number): string {
  const kbps = Math.max(1, Math.round(mbps * 1000))
  return kbps % 1_000_000 === 0 ? `${kbps / 1_000_000} Gbit` : kbps % 1_000 === 0 ? `${kbps / 1_000} Mbit` : `${kbps} Kbit`
}

/** A GML string. */
function gmlString (text: string): string {
  return `"${text.replace(/"/g, "'")}"`
}

/** A YAML scalar, quoted. */
function yamlString (text: string): string {
  return JSON.stringify(text)
}

/** Links of the topology whose shortest path in the graph (Dijkstra over the link latencies) is shorter than the link. */
function countShorterPaths (n: number, links: ReadonlyArray<readonly [number, number]>, latency: (a: number, b: number) => number): number {
  const adjacent = Array.from({ length: n }, (): Array<[number, number]> => [])
  for (const [a, b] of links) {
    const l = latency(a, b)
    adjacent[a].push([b, l])
    adjacent[b].push([a, l])
  }
  let shorter = 0
  const dist = new Float64Array(n)
  for (let a = 0; a < n; a++) {
    const targets = adjacent[a].filter(([b]) => b > a)
    if (targets.length === 0) continue
    const radius = Math.max(...targets.map(([, l]) => l))
    dist.fill(Infinity)
    dist[a] = 0
    const heap = new TimerHeap<{ at: number, seq: number, node: number }>()
    let seq = 0
    heap.push({ at: 0, seq: seq++, node: a })
    for (let top = heap.pop(); top != null; top = heap.pop()) {
      if (top.at > dist[top.node] || top.at >= radius) continue
      for (const [w, l] of adjacent[top.node]) {
        const via = top.at + l
        if (via < dist[w]) {
          dist[w] = via
          heap.push({ at: via, seq: seq++, node: w })
        }
      }
    }
    for (const [b, l] of targets) if (dist[b] < l - 1e-9) shorter++
  }
  return shorter
}

/**
 * `scenario` as a Shadow simulation (https://shadow.github.io, its documented configuration
 * format): `shadow.yaml` (general, network.graph as a GML file, one host per peer at a fixed
 * address running the peer program), `network.gml` (a node per host with its bandwidth, an edge
 * per topology link with the link's latency, jitter and loss drawn from the scenario's seed as
 * the simulator draws them), `peers/peer-<i>.json` (each peer's config, starting its schedule
 * `warmup` ms after it starts) and a README.
 */
export function shadowConfig (scenario: Scenario, options: ShadowOptions): ShadowConfig {
  const plan = scenarioPlan(scenario)
  const n = scenario.peers
  const port = options.port ?? 4000
  const startTime = options.startTime ?? 1
  const warmup = options.warmup ?? 20_000
  const dir = options.dir.replace(/\/+$/, '')
  const net = new SimulatedNetwork({ seed: plan.seed, link: scenario.link, links: scenario.links })
  const configs = peerConfigs(scenario, { address: i => `/ip4/${shadowAddress(i)}/tcp/${port}`, start: { after: warmup } })
  const uplink = scenario.uplinkMbps ?? options.defaultBandwidthMbps ?? 10_000
  const down = options.defaultBandwidthMbps ?? 10_000
  const notes: string[] = []

  const gml = ['graph [', '  directed 0']
  for (let i = 0; i < n; i++) gml.push(`  node [ id ${i} label ${gmlString(`peer-${i}`)} host_bandwidth_up ${gmlString(bandwidth(uplink))} host_bandwidth_down ${gmlString(bandwidth(down))} ]`)
  let edgeBandwidth = false
  for (const [a, b] of plan.links) {
    const link = net.link(a, b)
    const attributes = [`source ${a}`, `target ${b}`, `latency ${gmlString(micros(link.latency))}`]
    if (link.options.jitter > 0) attributes.push(`jitter ${gmlString(micros(link.options.jitter))}`)
    attributes.push(`packet_loss ${link.options.loss}`)
    if (Number.isFinite(link.options.bandwidthMbps)) {
      edgeBandwidth = true
      attributes.push(`edge_bandwidth_up ${gmlString(bandwidth(link.options.bandwidthMbps))}`, `edge_bandwidth_down ${gmlString(bandwidth(link.options.bandwidthMbps))}`)
    }
    gml.push(`  edge [ ${attributes.join(' ')} ]`)
  }
  gml.push(']', '')
  const shorterPaths = countShorterPaths(n, plan.links, (a, b) => net.link(a, b).latency)
  if (shorterPaths > 0) notes.push(`${shorterPaths} of ${plan.links.length} topology links have a shorter path through other peers' nodes in the graph; Shadow routes along shortest paths, so those links are faster there than in the simulator.`)
  if (scenario.uplinkMbps == null) notes.push(`The scenario has no uplink limit: hosts get ${uplink} Mbit/s up and ${down} Mbit/s down.`)
  if (edgeBandwidth) notes.push('Per-link bandwidth is written as edge_bandwidth_up/down, which Shadow applies only with experimental.edge_bandwidth_limiting_enabled (set).')
  if (scenario.link?.jitter != null && scenario.link.jitter > 0) notes.push('Shadow documents edge jitter as reserved, not applied.')

  const end = configs.reduce((t, c) => Math.max(t, c.stopAfter), 0)
  const stopTime = Math.ceil(startTime + (warmup + end) / 1000 + 30)
  const yaml = [
    `# ${scenario.name ?? 'scenario'}: ${n} peers, ${plan.links.length} links, seed ${plan.seed}. Written by npm run sim -- --shadow; see README.md.`,
    '# Shadow 3 (https://shadow.github.io/docs/guide/shadow_config_spec.html); each host on one line, in flow style.',
    'general:',
    `  stop_time: ${stopTime} s`,
    '  seed: 1',
    `  parallelism: ${options.parallelism ?? 1}`,
    'network:',
    '  graph:',
    '    type: gml',
    '    file:',
    `      path: ${yamlString(`${dir}/network.gml`)}`,
    ...(edgeBandwidth ? ['experimental:', '  edge_bandwidth_limiting_enabled: true'] : []),
    'hosts:'
  ]
  // One line per host, its value in flow style (JSON, which YAML 1.2 reads as it is).
  for (let i = 0; i < n; i++) {
    const command = options.command(`${dir}/peers/peer-${i}.json`)
    const process = {
      path: command.path,
      args: command.args,
      ...(command.environment == null ? {} : { environment: command.environment }),
      start_time: `${startTime} s`,
      expected_final_state: { exited: 0 }
    }
    yaml.push(`  peer-${i}: ${JSON.stringify({ network_node_id: i, ip_addr: shadowAddress(i), processes: [process] })}`)
  }
  yaml.push('')
  const readme = [
    `# ${scenario.name ?? 'scenario'} under Shadow`,
    '',
    `${n} hosts, one peer program each (scripts/peer.ts), on a graph of ${n} nodes and ${plan.links.length} edges (the scenario's topology links, with their latencies and loss drawn from seed ${plan.seed} as the simulator draws them).`,
    '',
    'Run: `shadow shadow.yaml > shadow.log` (Shadow 3); each host\'s peer prints JSON lines to `shadow.data/hosts/<host>/*.stdout`. The report, in the simulator\'s shape:',
    options.collect ?? '`reportFromLines(scenario, lines, times)` of src/testing/processes.ts, over every line of every host.',
    '',
    `Each peer starts its schedule ${warmup / 1000} s after its process starts (the warm-up), publishes, waits the settle time and exits 0 after printing its counters.`,
    'Computing takes no simulated time (Shadow\'s default, as in the simulator); should a process spin, `general.model_unblocked_syscall_latency: true` is the documented remedy.',
    '',
    ...notes.map(note => `- ${note}`),
    ''
  ]
  return {
    files: [
      { path: 'shadow.yaml', text: yaml.join('\n') },
      { path: 'network.gml', text: gml.join('\n') },
      { path: 'README.md', text: readme.join('\n') },
      ...configs.map((config, i) => ({ path: `peers/peer-${i}.json`, text: `${JSON.stringify(config)}\n` }))
    ],
    shorterPaths,
    notes
  }
}
