/**
 * The report of a scenario run, and the figures computed from what a run recorded: shared by
 * the simulator ({@link runScenario}), the same scenario run as separate processes
 * (`npm run net`), and the HTML report (`report-html.ts`).
 *
 * @module
 */
import type { NetworkStats } from './network.js'

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
  /**
   * The latency distribution: quantile `i / (length − 1)` of the latencies at index `i`
   * (201 values, nearest rank, in ms; empty without deliveries). For
   * the CDF of the HTML report.
   */
  readonly latencyQuantiles?: readonly number[]
  /** The same of the shortest-path latencies (absent where there is no link model). */
  readonly pathQuantiles?: readonly number[]
}

/** One message in {@link DeliveryTimeline.messages}. */
interface MessageDelivery {
  /** Publish time, in ms after the start of the measurement. */
  readonly at: number
  /** Index of its batch. */
  readonly batch: number
  readonly delivered: number
  readonly expected: number
  /** Receivers reachable from the publisher when it published (see `DeliveryReport.reachable`). */
  readonly reachable: number
}

/** Deliveries over the measurement's time (what the HTML report draws as delivery over time). */
export interface DeliveryTimeline {
  /** Width of a bin, in ms; bin `i` covers [i × binMs, (i + 1) × binMs) after the start of the measurement. */
  readonly binMs: number
  /** Deliveries (first copies) arriving in each bin. */
  readonly delivered: readonly number[]
  /** Messages published in each bin. */
  readonly published: readonly number[]
  /** Every published message, in publish order. */
  readonly messages: readonly MessageDelivery[]
}

/** A histogram of a ratio per peer, in bins of equal width. */
export interface RatioHistogram {
  /** Width of a bin: bin `i` counts the peers with a value in [i × binWidth, (i + 1) × binWidth). */
  readonly binWidth: number
  /** Peers per bin. */
  readonly peers: readonly number[]
}

/** The lowest, mean and highest of a set of values. */
export interface RangeSummary {
  readonly min: number
  readonly mean: number
  readonly max: number
}

/** One kind of Kademlia lookup of a run (`getClosestPeers`, `putRecord`, …): success, hops, requests, latency. */
export interface KadLookupKind {
  readonly label: string
  readonly lookups: number
  /** Lookups that found what they looked for (k peers, the quorum, the record). */
  readonly succeeded: number
  /** Lookups per number of hops (`QueryStats.hops`). */
  readonly hops: Readonly<Record<number, number>>
  /** Hops per lookup: mean and percentiles. */
  readonly hopStats: LatencySummary
  /** Requests sent per lookup (`QueryStats.requests`; each a request and its answer): mean and percentiles. */
  readonly messages: LatencySummary
  /** ms from the call to the outcome (to the first record found, for a get), of the lookups that succeeded. */
  readonly latency: LatencySummary
  /** The latency distribution: quantile `i / (length − 1)` at index `i` (101 values, nearest rank). */
  readonly latencyQuantiles?: readonly number[]
}

/**
 * Kademlia lookups of a run ({@link runKadScenario} fills it; the HTML report then draws the hop
 * distribution, the latency distribution and the requests per lookup).
 */
export interface KadLookups {
  /** Lookups made. */
  readonly lookups: number
  /** Lookups that found what they looked for. */
  readonly succeeded: number
  /** Lookups per number of hops (peers queried in sequence on the path to the result). */
  readonly hops: Readonly<Record<number, number>>
  /** log₂ of the number of peers, the expected order of the hops. */
  readonly log2Peers?: number
  /** k, the replication factor. */
  readonly k?: number
  /** The same, per kind of lookup. */
  readonly kinds?: readonly KadLookupKind[]
  /** Share of the true k closest (of all ids) among the peers each `getClosestPeers` found: mean and lowest. */
  readonly precision?: { readonly mean: number, readonly min: number }
  /** After the join: the share of its true k closest that a peer's routing table holds, mean over the peers. */
  readonly tableRecall?: number
  /** Peers (other than the publisher, and still there) storing each record: after the puts, and after the leave. */
  readonly replicas?: { readonly afterPut: RangeSummary, readonly afterLeave: RangeSummary }
  /** Peers that left before the last gets. */
  readonly left?: number
  /** Bytes on the links during the measurement per lookup (connections, Noise, identify included). */
  readonly bytesPerLookup?: number
}

/** Why a report covers less than the scenario: the run was stopped (`Scenario.signal`). */
export interface PartialRun {
  /** The phase it was stopped in: during the set-up nothing was measured. */
  readonly phase: 'set-up' | 'measurement'
  /** Virtual ms of the measurement run before it was stopped (0 during the set-up). */
  readonly measuredMs: number
  /** Messages published before it was stopped, of all the scenario's (Kademlia: lookups done, of those planned). */
  readonly published: number
  readonly messages: number
  /** What `published` counts, in the text report (default `messages published`). */
  readonly unit?: string
  /** The abort reason, as text. */
  readonly reason: string
}

/** Memory of the separate processes of `npm run net` (RSS in MB, per process). */
interface ProcessMemory {
  readonly processes: number
  /** RSS of each process when it was ready (connected, mesh formed), after a GC. */
  readonly rssReadyMB: LatencySummary
  /** RSS of each process at the end. */
  readonly rssEndMB: LatencySummary
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
  /** Deliveries over time, and each message's. */
  readonly timeline?: DeliveryTimeline
  /** The subscribers by their duplicates per delivery during the measurement. */
  readonly duplicates?: RatioHistogram
  /** Kademlia lookups, when the scenario made any. */
  readonly kad?: KadLookups
  /** Present when the run was stopped before its end: the report covers what was measured until then. */
  readonly partial?: PartialRun
  /** Separate processes (`npm run net`): their memory. */
  readonly processes?: ProcessMemory
  /** What ran the scenario (default: the simulator, in virtual time). */
  readonly runner?: 'simulator' | 'processes'
}

/** Quantiles kept per delivery report, from 0 to 1 in steps of 1 / QUANTILE_POINTS. */
const QUANTILE_POINTS = 200

/** A message as published: when, by whom, in which batch. */
export interface PublishedMessage {
  readonly batch: number
  readonly publisher: number
  /** When it was published (the clock of `deliveredAt`). */
  readonly at: number
  /** Receivers a path of topology links not cut by a partition led to when it was published (1: reachable); every receiver when absent. */
  readonly reachable?: Uint8Array
}

/** What a run recorded: its messages and when each reached each peer. */
export interface Recorded {
  readonly peers: number
  /** 1 for the subscribers of the topic. */
  readonly subscribed: Uint8Array
  /** By message index; undefined: not published (not yet, or its publish threw). */
  readonly published: ReadonlyArray<PublishedMessage | undefined>
  /** When message `id` reached peer `p`, at `id × peers + p` (NaN: never). */
  readonly deliveredAt: Float64Array
}

/** Delivery of the messages `ids`: counts, latencies and their quantiles; with `pathFrom(publisher)` the shortest-path latencies too. */
export function deliveryReport (rec: Recorded, label: string, ids: readonly number[], errors: number, pathFrom?: (source: number) => Float64Array): DeliveryReport {
  const n = rec.peers
  const { subscribed, published, deliveredAt } = rec
  const latencies: number[] = []
  const paths: number[] = []
  let expected = 0
  let reachable = 0
  let deliveredReachable = 0
  let complete = 0
  for (const id of ids) {
    const message = published[id]
    if (message == null) continue
    const d = pathFrom?.(message.publisher)
    let all = true
    for (let p = 0; p < n; p++) {
      if (p === message.publisher || subscribed[p] === 0) continue
      expected++
      const canReach = message.reachable == null ? 1 : message.reachable[p]
      reachable += canReach
      const at = deliveredAt[id * n + p]
      if (Number.isNaN(at)) {
        all = false
        continue
      }
      deliveredReachable += canReach
      latencies.push(at - message.at)
      if (d != null) paths.push(d[p])
    }
    if (all) complete++
  }
  const messages = ids.filter(id => published[id] != null).length
  const latency = sortedOf(latencies)
  const path = sortedOf(paths)
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
    latency: summariseSorted(latency),
    pathLatency: summariseSorted(path),
    latencyQuantiles: quantilesOf(latency),
    ...(pathFrom == null ? {} : { pathQuantiles: quantilesOf(path) })
  }
}

/** Deliveries and publishes per bin of time from `t0` (the clock of `rec`), over `durationMs`, and each message's delivery. */
export function deliveryTimeline (rec: Recorded, t0: number, durationMs: number): DeliveryTimeline {
  const n = rec.peers
  const binMs = niceBin(durationMs / 60)
  const bins = Math.max(1, Math.ceil(durationMs / binMs))
  const delivered = new Array<number>(bins).fill(0)
  const published = new Array<number>(bins).fill(0)
  const binOf = (at: number): number => Math.min(bins - 1, Math.max(0, Math.floor((at - t0) / binMs)))
  const messages: MessageDelivery[] = []
  rec.published.forEach((message, id) => {
    if (message == null) return
    published[binOf(message.at)]++
    let count = 0
    let expected = 0
    let reachable = 0
    for (let p = 0; p < n; p++) {
      if (p === message.publisher || rec.subscribed[p] === 0) continue
      expected++
      reachable += message.reachable == null ? 1 : message.reachable[p]
      const at = rec.deliveredAt[id * n + p]
      if (Number.isNaN(at)) continue
      count++
      delivered[binOf(at)]++
    }
    messages.push({ at: round3(message.at - t0), batch: message.batch, delivered: count, expected, reachable })
  })
  return { binMs, delivered, published, messages }
}

/** The subscribers by their duplicates per delivery (`duplicates[p] / delivered[p]`), in bins of `binWidth`. */
export function ratioHistogram (duplicates: ArrayLike<number>, deliveries: ArrayLike<number>, include: (p: number) => boolean, binWidth = 0.25): RatioHistogram {
  const peers: number[] = []
  for (let p = 0; p < duplicates.length; p++) {
    if (!include(p) || deliveries[p] === 0) continue
    const bin = Math.floor(duplicates[p] / deliveries[p] / binWidth)
    while (peers.length <= bin) peers.push(0)
    peers[bin]++
  }
  return { binWidth, peers }
}

/** Deliveries per peer (of the messages published). */
export function deliveriesPerPeer (rec: Recorded): Uint32Array {
  const n = rec.peers
  const out = new Uint32Array(n)
  rec.published.forEach((message, id) => {
    if (message == null) return
    for (let p = 0; p < n; p++) if (!Number.isNaN(rec.deliveredAt[id * n + p])) out[p]++
  })
  return out
}

/** Percentiles (nearest rank) of `values`. */
export function summarise (values: readonly number[]): LatencySummary {
  return summariseSorted(sortedOf(values))
}

function sortedOf (values: readonly number[]): Float64Array {
  return Float64Array.from(values).sort()
}

function rankOf (sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

function summariseSorted (sorted: Float64Array): LatencySummary {
  if (sorted.length === 0) return { count: 0, mean: NaN, p50: NaN, p95: NaN, p99: NaN, max: NaN }
  let sum = 0
  for (const v of sorted) sum += v
  return { count: sorted.length, mean: sum / sorted.length, p50: rankOf(sorted, 0.5), p95: rankOf(sorted, 0.95), p99: rankOf(sorted, 0.99), max: sorted[sorted.length - 1] }
}

/** Quantiles 0, 1/Q, …, 1 of sorted values (nearest rank; quantile 0 is the minimum), rounded to µs. */
function quantilesOf (sorted: Float64Array): number[] {
  if (sorted.length === 0) return []
  return Array.from({ length: QUANTILE_POINTS + 1 }, (_, i) => round3(rankOf(sorted, i / QUANTILE_POINTS)))
}

/** Min, mean, max and histogram of small integers (zeros when there are none). */
export function summariseDegrees (values: readonly number[]): DegreeSummary {
  const histogram: Record<number, number> = {}
  let sum = 0
  let min = Infinity
  let max = -Infinity
  for (const v of values) {
    histogram[v] = (histogram[v] ?? 0) + 1
    sum += v
    if (v < min) min = v
    if (v > max) max = v
  }
  if (values.length === 0) return { min: 0, mean: 0, max: 0, histogram }
  return { min, mean: sum / values.length, max, histogram }
}

/** The smallest of 1, 2, 2.5, 5 × 10^k that is at least `x` (and at least 1). */
function niceBin (x: number): number {
  if (!(x > 1)) return 1
  const magnitude = 10 ** Math.floor(Math.log10(x))
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= x) return step * magnitude
  return 10 * magnitude
}

function round3 (x: number): number {
  return Math.round(x * 1000) / 1000
}

/** @internal A real duration for progress lines: `42 s`, or `3 min 5 s` from two minutes up. */
export function formatDuration (ms: number): string {
  return ms >= 120_000 ? `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s` : `${(ms / 1000).toFixed(0)} s`
}

/** A human-readable summary of `report`, a few lines. */
export function formatReport (report: ScenarioReport): string {
  const ms = (x: number): string => Number.isNaN(x) ? '–' : x.toFixed(0)
  const pct = (x: number): string => Number.isNaN(x) ? '–' : `${(100 * x).toFixed(2)}%`
  const degree = (d: DegreeSummary): string => `${d.min}–${d.max} (mean ${d.mean.toFixed(1)})`
  const processes = report.runner === 'processes'
  const lines = [
    `${report.name}: ${report.peers} peers, ${report.links} links (degree ${degree(report.degree)}), ${processes ? 'separate processes on real TCP' : `mean link latency ${report.meanLinkLatency.toFixed(1)} ms`}, seed ${report.seed}`,
    `  set-up ${(report.setupMs / 1000).toFixed(1)} s, measured ${(report.durationMs / 1000).toFixed(1)} s; real time ${(report.real.setupMs / 1000).toFixed(1)} s + ${((report.real.totalMs - report.real.setupMs) / 1000).toFixed(1)} s`
  ]
  if (report.partial != null) {
    const p = report.partial
    lines.push(`  PARTIAL: stopped during the ${p.phase}${p.phase === 'measurement' ? ` after ${(p.measuredMs / 1000).toFixed(1)} s, ${p.published}/${p.messages} ${p.unit ?? 'messages published'}` : ' (nothing measured)'} (${p.reason})`)
  }
  for (const d of [...report.batches, ...(report.batches.length > 1 ? [report.total] : [])]) {
    lines.push(`  ${d.label}: ${d.messages} messages${d.publishErrors > 0 ? ` (${d.publishErrors} publish errors)` : ''}, delivered ${pct(d.deliveryRatio)} (${d.delivered}/${d.expected}${d.reachable < d.expected ? `; ${d.deliveredReachable}/${d.reachable} reachable` : ''}), complete ${d.complete}/${d.messages}, ` +
      `latency p50 ${ms(d.latency.p50)} p95 ${ms(d.latency.p95)} p99 ${ms(d.latency.p99)} max ${ms(d.latency.max)} ms` +
      (d.pathLatency.count === 0 ? '' : ` (shortest path p50 ${ms(d.pathLatency.p50)} p99 ${ms(d.pathLatency.p99)})`))
  }
  if (report.batches.length > 0) lines.push(`  duplicates/delivery ${report.duplicatesPerDelivery.toFixed(2)}, bytes/delivery ${report.bytesPerDelivery.toFixed(0)}, mesh degree start ${degree(report.meshDegree.start)} end ${degree(report.meshDegree.end)}`)
  if (!processes) lines.push(`  network: ${report.network.chunks} chunks, ${report.network.segments} segments, ${report.network.lostSegments} lost, ${report.network.delayedChunks} chunks delayed, ${report.network.heldChunks} held, ${report.network.resets} resets, ${report.redials} redials`)
  for (const fault of report.faults) lines.push(`  fault: ${fault.type} of ${fault.peers} peers at ${(fault.at / 1000).toFixed(1)} s${fault.healedAt == null ? '' : `, healed at ${(fault.healedAt / 1000).toFixed(1)} s`}`)
  if (report.memory != null && !processes) lines.push(`  RSS per peer ${report.memory.rssPerPeerIdleMB.toFixed(2)} MB after warm-up, ${report.memory.rssPerPeerEndMB.toFixed(2)} MB at the end (heap ${report.memory.heapPerPeerEndMB.toFixed(2)} MB); process RSS ${report.memory.rssEndMB.toFixed(0)} MB`)
  if (report.processes != null) {
    const { processes, rssReadyMB, rssEndMB } = report.processes
    lines.push(`  ${processes} processes: RSS per process when ready p50 ${rssReadyMB.p50.toFixed(0)} max ${rssReadyMB.max.toFixed(0)} MB, at the end p50 ${rssEndMB.p50.toFixed(0)} max ${rssEndMB.max.toFixed(0)} MB`)
  }
  if (report.kad != null) lines.push(...formatKad(report.kad))
  return lines.join('\n')
}

/** The Kademlia lines of a report. */
function formatKad (kad: KadLookups): string[] {
  const f = (x: number, digits = 0): string => x == null || Number.isNaN(x) ? '–' : x.toFixed(digits)
  const lines = [`  kademlia: ${kad.succeeded}/${kad.lookups} lookups succeeded; hops ${Object.entries(kad.hops).map(([h, c]) => `${h}: ${c}`).join(', ')}${kad.log2Peers == null ? '' : ` (log2 N = ${kad.log2Peers.toFixed(1)})`}`]
  for (const kind of kad.kinds ?? []) {
    lines.push(`    ${kind.label}: ${kind.succeeded}/${kind.lookups} ok, hops mean ${f(kind.hopStats.mean, 2)} p99 ${f(kind.hopStats.p99)} max ${f(kind.hopStats.max)}, ` +
      `requests mean ${f(kind.messages.mean, 1)} p99 ${f(kind.messages.p99)}, latency p50 ${f(kind.latency.p50)} p95 ${f(kind.latency.p95)} p99 ${f(kind.latency.p99)} max ${f(kind.latency.max)} ms`)
  }
  const facts: string[] = []
  if (kad.precision != null) facts.push(`precision of getClosestPeers mean ${f(kad.precision.mean, 3)} min ${f(kad.precision.min, 2)}`)
  if (kad.tableRecall != null) facts.push(`routing tables hold ${f(100 * kad.tableRecall, 1)}% of their k closest`)
  if (kad.replicas != null) facts.push(`replicas per record after the puts mean ${f(kad.replicas.afterPut.mean, 1)} min ${f(kad.replicas.afterPut.min)}, after ${kad.left ?? 0} peers left mean ${f(kad.replicas.afterLeave.mean, 1)} min ${f(kad.replicas.afterLeave.min)}`)
  if (kad.bytesPerLookup != null) facts.push(`${f(kad.bytesPerLookup)} bytes per lookup`)
  if (facts.length > 0) lines.push(`    ${facts.join('; ')}`)
  return lines
}
