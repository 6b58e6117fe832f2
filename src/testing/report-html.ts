/**
 * Scenario reports as one self-contained HTML page (`npm run sim -- --report <file.html>`):
 * inline SVG charts, inline CSS, no script, no framework, no font or anything else fetched.
 * Per scenario: a summary table, the latency distribution (CDF) of each batch against the
 * shortest paths, delivery over time (with the partitions shaded), delivery per message, the
 * mesh degree and duplicate histograms, and the Kademlia hop distribution when the report has
 * one.
 *
 * `renderReportHtml([await runScenario(scenario)], { title: 'My network' })` is the page's text.
 *
 * @module
 */
import type { DegreeSummary, ScenarioReport } from './report.js'

/** A line chart's series: points in data units; `dots` draws them unjoined, `dashed` as a dashed line. */
interface ChartSeries {
  readonly name: string
  readonly points: ReadonlyArray<readonly [number, number]>
  readonly style?: 'line' | 'dashed' | 'dots'
}

/** A shaded interval of the x axis (a partition), with its label. */
interface ChartBand {
  readonly from: number
  readonly to: number
  readonly label: string
}

/** What {@link lineChart} draws. */
export interface LineChartSpec {
  /** The SVG's id (unique in the page). */
  readonly id: string
  readonly title: string
  readonly xLabel: string
  readonly yLabel: string
  readonly series: readonly ChartSeries[]
  readonly bands?: readonly ChartBand[]
  /** `log`: a logarithmic x axis (values ≤ 0 are drawn at its left end). Default linear. */
  readonly xScale?: 'linear' | 'log'
  /** Axis ranges (default: from the data, y from 0). */
  readonly x?: { readonly min?: number, readonly max?: number }
  readonly y?: { readonly min?: number, readonly max?: number }
  /** Format of the y ticks (default: the number). */
  readonly yFormat?: (y: number) => string
}

/** What {@link barChart} draws: one group of bars per category, one bar per series. */
export interface BarChartSpec {
  readonly id: string
  readonly title: string
  readonly xLabel: string
  readonly yLabel: string
  readonly categories: readonly string[]
  readonly series: ReadonlyArray<{ readonly name: string, readonly values: readonly number[] }>
}

/** A chart of a scenario's section: its SVG and the names of the series it draws. */
export interface ReportChart {
  readonly id: string
  readonly title: string
  readonly series: readonly string[]
  readonly svg: string
  /** A sentence under the chart. */
  readonly caption: string
}

/** Options of {@link renderReportHtml}. */
export interface ReportPageOptions {
  /** The page's title (default: "Simulation report"). */
  readonly title?: string
  /** A line under the title: how the reports were made (command, machine, date). */
  readonly subtitle?: string
}

const WIDTH = 640
const HEIGHT = 320
const MARGIN = { left: 64, right: 16, top: 36, bottom: 72 } as const
/** Okabe–Ito: told apart also with the common colour blindnesses. */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442']

/** `text` for XML text and attribute values. */
export function escapeXml (text: string): string {
  return text.replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)
}

/**
 * `x` with `digits` decimals, '–' where there is no figure: NaN in a report, null in one read
 * back from JSON (which writes NaN as null).
 */
function fixed (x: number | null | undefined, digits: number, scale = 1): string {
  return x == null || Number.isNaN(x) ? '–' : (x * scale).toFixed(digits)
}

/** A number for SVG coordinates: two decimals at most. */
function num (x: number): string {
  return String(Math.round(x * 100) / 100)
}

/** A tick label: thousands separated, decimals only where the step needs them. */
function tickLabel (x: number, step: number): string {
  const decimals = Math.min(6, (String(Number(step.toPrecision(6))).split('.')[1] ?? '').length)
  const fixed = x.toFixed(decimals)
  const [whole, fraction] = fixed.split('.')
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',')
  return fraction == null ? grouped : `${grouped}.${fraction}`
}

/** About `count` round ticks (1, 2, 5 × 10^k apart) covering [min, max]. */
function linearTicks (min: number, max: number, count = 6, integers = false): { ticks: number[], step: number, min: number, max: number } {
  if (!(max > min)) max = min + 1
  const raw = (max - min) / count
  const magnitude = 10 ** Math.floor(Math.log10(raw))
  const step = Math.max(integers ? 1 : 0, [1, 2, ...(integers && magnitude < 10 ? [] : [2.5]), 5, 10].map(s => s * magnitude).find(s => s >= raw) ?? 10 * magnitude)
  const lo = Math.floor(min / step) * step
  const hi = Math.ceil(max / step) * step
  const ticks: number[] = []
  for (let t = lo; t <= hi + step / 2; t += step) ticks.push(Math.round(t / step) * step)
  return { ticks, step, min: lo, max: hi }
}

/** 1, 2, 5 × 10^k ticks covering [min, max] (both > 0). */
function logTicks (min: number, max: number): { ticks: number[], min: number, max: number } {
  const candidates: number[] = []
  for (let e = Math.floor(Math.log10(min)) - 1; e <= Math.ceil(Math.log10(max)) + 1; e++) {
    for (const m of [1, 2, 5]) candidates.push(Number((m * 10 ** e).toPrecision(6)))
  }
  const lo = [...candidates].reverse().find(t => t <= min) ?? candidates[0]
  const hi = candidates.find(t => t >= max) ?? candidates[candidates.length - 1]
  return { ticks: candidates.filter(t => t >= lo && t <= hi), min: lo, max: hi }
}

function svgOpen (id: string, title: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="${escapeXml(id)}" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-labelledby="${escapeXml(id)}-title">` +
    `<title id="${escapeXml(id)}-title">${escapeXml(title)}</title>` +
    `<text class="chart-title" x="${MARGIN.left}" y="20">${escapeXml(title)}</text>`
}

/** The axes: lines, ticks, tick labels and the axis labels. */
function axes (xTicks: ReadonlyArray<{ at: number, label: string }>, yTicks: ReadonlyArray<{ at: number, label: string }>, xLabel: string, yLabel: string): string {
  const x0 = MARGIN.left
  const x1 = WIDTH - MARGIN.right
  const y0 = HEIGHT - MARGIN.bottom
  const y1 = MARGIN.top
  const grid = yTicks.map(t => `<line class="grid" x1="${x0}" x2="${x1}" y1="${num(t.at)}" y2="${num(t.at)}"/>`).join('')
  const xAxis = `<g class="axis x-axis"><line x1="${x0}" x2="${x1}" y1="${y0}" y2="${y0}"/>` +
    xTicks.map(t => `<line x1="${num(t.at)}" x2="${num(t.at)}" y1="${y0}" y2="${y0 + 5}"/><text class="tick" x="${num(t.at)}" y="${y0 + 18}" text-anchor="middle">${escapeXml(t.label)}</text>`).join('') +
    `<text class="axis-label" x="${num((x0 + x1) / 2)}" y="${y0 + 38}" text-anchor="middle">${escapeXml(xLabel)}</text></g>`
  const yAxis = `<g class="axis y-axis"><line x1="${x0}" x2="${x0}" y1="${y0}" y2="${y1}"/>` +
    yTicks.map(t => `<line x1="${x0 - 5}" x2="${x0}" y1="${num(t.at)}" y2="${num(t.at)}"/><text class="tick" x="${x0 - 8}" y="${num(t.at + 4)}" text-anchor="end">${escapeXml(t.label)}</text>`).join('') +
    `<text class="axis-label" transform="translate(16 ${num((y0 + y1) / 2)}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text></g>`
  return `<g class="grid-lines">${grid}</g>${xAxis}${yAxis}`
}

/** The legend, in a row under the x axis label. */
function legend (names: ReadonlyArray<{ name: string, color: string, style?: string }>): string {
  let x = MARGIN.left
  const y = HEIGHT - 12
  const items = names.map(({ name, color, style }) => {
    const mark = style === 'dots'
      ? `<circle cx="${x + 9}" cy="${y - 4}" r="3.5" fill="${color}"/>`
      : style === 'bar'
        ? `<rect x="${x + 3}" y="${y - 10}" width="12" height="12" fill="${color}"/>`
        : `<line x1="${x}" x2="${x + 18}" y1="${y - 4}" y2="${y - 4}" stroke="${color}" stroke-width="2.5"${style === 'dashed' ? ' stroke-dasharray="5 3"' : ''}/>`
    const item = `<g class="legend-item">${mark}<text x="${x + 24}" y="${y}">${escapeXml(name)}</text></g>`
    x += 24 + 7 * name.length + 18
    return item
  })
  return `<g class="legend">${items.join('')}</g>`
}

/** A line chart as an SVG element (one `g.series` per series, with a `path` or `circle`s). */
export function lineChart (spec: LineChartSpec): string {
  const all = spec.series.flatMap(s => s.points)
  const log = spec.xScale === 'log'
  const xs = all.map(p => p[0]).filter(x => !log || x > 0)
  const ys = all.map(p => p[1])
  const dataMinX = spec.x?.min ?? (xs.length === 0 ? (log ? 1 : 0) : Math.min(...xs))
  const dataMaxX = spec.x?.max ?? (xs.length === 0 ? dataMinX + 1 : Math.max(...xs, ...(spec.bands ?? []).map(b => b.to)))
  const yScale = linearTicks(spec.y?.min ?? Math.min(0, ...ys), spec.y?.max ?? (ys.length === 0 ? 1 : Math.max(...ys)), 5)
  const x0 = MARGIN.left
  const x1 = WIDTH - MARGIN.right
  const y0 = HEIGHT - MARGIN.bottom
  const y1 = MARGIN.top
  let xOf: (x: number) => number
  let xTicks: Array<{ at: number, label: string }>
  if (log) {
    const t = logTicks(Math.max(dataMinX, 1e-3), Math.max(dataMaxX, dataMinX * 10, 1e-3))
    const a = Math.log10(t.min)
    const b = Math.log10(t.max)
    xOf = x => x0 + (Math.log10(Math.max(x, t.min)) - a) / (b - a) * (x1 - x0)
    xTicks = t.ticks.map(v => ({ at: xOf(v), label: tickLabel(v, v) }))
  } else {
    const t = linearTicks(dataMinX, dataMaxX)
    xOf = x => x0 + (x - t.min) / (t.max - t.min) * (x1 - x0)
    xTicks = t.ticks.map(v => ({ at: xOf(v), label: tickLabel(v, t.step) }))
  }
  const yOf = (y: number): number => y0 - (y - yScale.min) / (yScale.max - yScale.min) * (y0 - y1)
  const yTicks = yScale.ticks.map(v => ({ at: yOf(v), label: spec.yFormat?.(v) ?? tickLabel(v, yScale.step) }))
  const bands = (spec.bands ?? []).map(b => {
    const left = Math.max(x0, xOf(b.from))
    const right = Math.min(x1, xOf(b.to))
    return `<g class="band"><rect x="${num(left)}" y="${y1}" width="${num(Math.max(1, right - left))}" height="${y0 - y1}"/><text x="${num(left + 4)}" y="${y1 + 14}">${escapeXml(b.label)}</text></g>`
  }).join('')
  const series = spec.series.map((s, i) => {
    const color = PALETTE[i % PALETTE.length]
    const points = s.points.map(([x, y]) => [xOf(x), yOf(y)] as const)
    const body = s.style === 'dots'
      ? points.map(([x, y]) => `<circle cx="${num(x)}" cy="${num(y)}" r="2.5" fill="${color}"/>`).join('')
      : `<path class="series-line" d="${points.map(([x, y], k) => `${k === 0 ? 'M' : 'L'}${num(x)} ${num(y)}`).join(' ')}" fill="none" stroke="${color}" stroke-width="2"${s.style === 'dashed' ? ' stroke-dasharray="5 3"' : ''}/>`
    return `<g class="series" data-series="${escapeXml(s.name)}">${body}</g>`
  }).join('')
  return svgOpen(spec.id, spec.title) + `<g class="bands">${bands}</g>` + axes(xTicks, yTicks, spec.xLabel, spec.yLabel) +
    `<g class="plot">${series}</g>` + legend(spec.series.map((s, i) => ({ name: s.name, color: PALETTE[i % PALETTE.length], style: s.style }))) + '</svg>'
}

/** A bar chart as an SVG element (one `g.series` per series, a `rect` per category). */
export function barChart (spec: BarChartSpec): string {
  const max = Math.max(1, ...spec.series.flatMap(s => s.values))
  const yScale = linearTicks(0, max, 5, true)
  const x0 = MARGIN.left
  const x1 = WIDTH - MARGIN.right
  const y0 = HEIGHT - MARGIN.bottom
  const y1 = MARGIN.top
  const yOf = (y: number): number => y0 - y / yScale.max * (y0 - y1)
  const group = (x1 - x0) / Math.max(1, spec.categories.length)
  const bar = group * 0.8 / Math.max(1, spec.series.length)
  // Every label, or every k-th where they would overlap (about 6.5 px a character).
  const widest = Math.max(1, ...spec.categories.map(c => c.length)) * 6.5 + 6
  const every = Math.max(1, Math.ceil(widest / group))
  const xTicks = spec.categories.map((label, i) => ({ at: x0 + group * (i + 0.5), label })).filter((_, i) => i % every === 0)
  const yTicks = yScale.ticks.map(v => ({ at: yOf(v), label: tickLabel(v, yScale.step) }))
  const series = spec.series.map((s, k) => {
    const color = PALETTE[k % PALETTE.length]
    const rects = s.values.map((v, i) => v <= 0
      ? ''
      : `<rect class="bar" x="${num(x0 + group * i + group * 0.1 + bar * k)}" y="${num(yOf(v))}" width="${num(bar)}" height="${num(y0 - yOf(v))}" fill="${color}"><title>${escapeXml(`${s.name}, ${spec.categories[i]}: ${v}`)}</title></rect>`).join('')
    return `<g class="series" data-series="${escapeXml(s.name)}">${rects}</g>`
  }).join('')
  return svgOpen(spec.id, spec.title) + axes(xTicks, yTicks, spec.xLabel, spec.yLabel) + `<g class="plot">${series}</g>` +
    legend(spec.series.map((s, k) => ({ name: s.name, color: PALETTE[k % PALETTE.length], style: 'bar' }))) + '</svg>'
}

/** A scenario's name as an id fragment. */
function slug (name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'scenario'
}

function cdfPoints (quantiles: readonly number[]): Array<[number, number]> {
  const q = quantiles.length - 1
  return quantiles.map((x, i) => [x, i / q])
}

function degreeBars (id: string, start: DegreeSummary, end: DegreeSummary): BarChartSpec {
  const lo = Math.min(start.min, end.min)
  const hi = Math.max(start.max, end.max)
  const categories = Array.from({ length: hi - lo + 1 }, (_, i) => String(lo + i))
  return {
    id,
    title: 'Mesh degree',
    xLabel: 'peers in the mesh (topic)',
    yLabel: 'subscribers',
    categories,
    series: [
      { name: 'after the warm-up', values: categories.map(c => start.histogram[Number(c)] ?? 0) },
      { name: 'at the end', values: categories.map(c => end.histogram[Number(c)] ?? 0) }
    ]
  }
}

/**
 * The charts of one report, in page order. A report stopped during its set-up has none (it
 * measured no delivery).
 */
export function scenarioCharts (report: ScenarioReport): ReportChart[] {
  if (report.partial?.phase === 'set-up') return []
  const id = slug(report.name)
  const charts: ReportChart[] = []
  const line = (spec: LineChartSpec, caption: string): void => { charts.push({ id: spec.id, title: spec.title, series: spec.series.map(s => s.name), svg: lineChart(spec), caption }) }
  const bars = (spec: BarChartSpec, caption: string): void => { charts.push({ id: spec.id, title: spec.title, series: spec.series.map(s => s.name), svg: barChart(spec), caption }) }

  // Latency CDF: each batch (or the one), and the shortest paths of all.
  const batches = report.batches.length > 1 ? report.batches : [report.total]
  const cdf: ChartSeries[] = batches.filter(b => (b.latencyQuantiles?.length ?? 0) > 0)
    .map(b => ({ name: report.batches.length > 1 ? b.label : 'latency', points: cdfPoints(b.latencyQuantiles ?? []) }))
  if ((report.total.pathQuantiles?.length ?? 0) > 0) cdf.push({ name: 'shortest path', points: cdfPoints(report.total.pathQuantiles ?? []), style: 'dashed' })
  if (cdf.length > 0) {
    const xs = cdf.flatMap(s => s.points.map(p => p[0])).filter(x => x > 0)
    const spread = xs.length === 0 ? 1 : Math.max(...xs) / Math.min(...xs)
    line({ id: `${id}-latency-cdf`, title: 'Latency distribution (CDF)', xLabel: spread > 20 ? 'publish → delivery (ms, log scale)' : 'publish → delivery (ms)', yLabel: 'share of deliveries', series: cdf, xScale: spread > 20 ? 'log' : 'linear', ...(spread > 20 ? {} : { x: { min: 0 } }), y: { min: 0, max: 1 }, yFormat: y => `${Math.round(y * 100)}%` },
      'Share of the deliveries that took at most that long, per batch; dashed: the shortest path the links allow (no timers, no processing).')
  }

  const timeline = report.timeline
  if (timeline != null) {
    const bands = report.faults.map(f => ({ from: f.at / 1000, to: (f.healedAt ?? report.durationMs) / 1000, label: `${f.type} (${f.peers} peers)` }))
    const rate = timeline.delivered.map((count, i): [number, number] => [(i + 0.5) * timeline.binMs / 1000, count * 1000 / timeline.binMs])
    line({ id: `${id}-delivery-over-time`, title: 'Delivery over time', xLabel: 'time since the measurement started (s)', yLabel: 'deliveries per second', series: [{ name: 'deliveries', points: rate }], bands, x: { min: 0, max: Math.max(report.durationMs / 1000, 1e-3) } },
      `First copies arriving, in bins of ${timeline.binMs} ms${bands.length > 0 ? '; shaded: the partition, from its opening to its heal' : ''}.`)
    const reached = timeline.messages.map((m): [number, number] => [m.at / 1000, m.expected === 0 ? 1 : m.delivered / m.expected])
    const series: ChartSeries[] = []
    if (timeline.messages.some(m => m.reachable < m.expected)) {
      series.push({ name: 'reachable when published', points: timeline.messages.map((m): [number, number] => [m.at / 1000, m.expected === 0 ? 1 : m.reachable / m.expected]), style: 'dashed' })
    }
    series.push({ name: 'reached', points: reached, style: 'dots' })
    line({ id: `${id}-delivery-per-message`, title: 'Delivery per message', xLabel: 'publish time (s)', yLabel: 'share of subscribers', series, bands, x: { min: 0, max: Math.max(report.durationMs / 1000, 1e-3) }, y: { min: 0, max: 1 }, yFormat: y => `${Math.round(y * 100)}%` },
      'Each message: the share of its subscribers it reached by the end of the run, by the time it was published.')
  }

  // A run without a topic (Kademlia) has no mesh to draw.
  if (Object.keys(report.meshDegree.start.histogram).length + Object.keys(report.meshDegree.end.histogram).length > 0) {
    bars(degreeBars(`${id}-mesh-degree`, report.meshDegree.start, report.meshDegree.end), 'Subscribers by the number of peers in their mesh for the topic, after the warm-up and at the end.')
  }

  const dup = report.duplicates
  if (dup != null && dup.peers.length > 0) {
    const w = dup.binWidth
    const from = Math.max(0, dup.peers.findIndex(c => c > 0))
    const values = dup.peers.slice(from)
    bars({ id: `${id}-duplicates`, title: 'Duplicates per delivery', xLabel: `duplicates received per delivery (bins of ${w}, labelled by their lower end)`, yLabel: 'subscribers', categories: values.map((_, i) => String(Number(((from + i) * w).toFixed(3)))), series: [{ name: 'subscribers', values }] },
      `Subscribers by the copies they received of messages they already had, per delivery (mean ${fixed(report.duplicatesPerDelivery, 2)}).`)
  }

  const kad = report.kad
  if (kad != null) {
    // One series per kind of lookup when the report has them, else all lookups together.
    const kinds = kad.kinds != null && kad.kinds.length > 0 ? kad.kinds : [{ label: 'lookups', hops: kad.hops, latencyQuantiles: undefined }]
    const hops = [...new Set(kinds.flatMap(k => Object.keys(k.hops).map(Number)))].sort((a, b) => a - b)
    const categories = hops.length === 0 ? [] : Array.from({ length: hops[hops.length - 1] - hops[0] + 1 }, (_, i) => String(hops[0] + i))
    bars({ id: `${id}-kad-hops`, title: 'Kademlia hop distribution', xLabel: 'hops (peers asked in sequence to reach the result)', yLabel: 'lookups', categories, series: kinds.map(k => ({ name: k.label, values: categories.map(c => k.hops[Number(c)] ?? 0) })) },
      `Lookups by the hops they took (${kad.succeeded} of ${kad.lookups} succeeded)${kad.log2Peers == null ? '' : `; log₂ N = ${kad.log2Peers.toFixed(1)}`}.`)
    const latency: ChartSeries[] = kinds.filter(k => (k.latencyQuantiles?.length ?? 0) > 1).map(k => ({ name: k.label, points: cdfPoints(k.latencyQuantiles ?? []) }))
    if (latency.length > 0) {
      line({ id: `${id}-kad-latency`, title: 'Kademlia lookup latency (CDF)', xLabel: 'call → outcome (ms; a get: → the first record)', yLabel: 'share of lookups', series: latency, x: { min: 0 }, y: { min: 0, max: 1 }, yFormat: y => `${Math.round(y * 100)}%` },
        'Share of the lookups that succeeded within that long, per kind.')
    }
  }
  return charts
}

/** The Kademlia table of a report: a row per kind of lookup, and the facts of the records. */
function kadTable (kad: NonNullable<ScenarioReport['kad']>): string {
  const f = (x: number | null | undefined, digits = 0): string => fixed(x, digits)
  const rows = (kad.kinds ?? []).map(k => `<tr><td>${escapeXml(k.label)}</td><td>${k.succeeded} / ${k.lookups}</td><td>${f(k.hopStats.mean, 2)} / ${f(k.hopStats.p99)}</td>` +
    `<td>${f(k.messages.mean, 1)} / ${f(k.messages.p99)}</td><td>${f(k.latency.p50)} / ${f(k.latency.p95)} / ${f(k.latency.p99)} / ${f(k.latency.max)}</td></tr>`)
  const facts = [
    `${kad.succeeded} of ${kad.lookups} lookups succeeded${kad.log2Peers == null ? '' : `; log₂ N = ${kad.log2Peers.toFixed(1)}`}${kad.k == null ? '' : `, k = ${kad.k}`}`,
    ...(kad.precision == null ? [] : [`getClosestPeers found ${f(100 * kad.precision.mean, 1)}% of the true k closest on average (lowest ${f(100 * kad.precision.min, 0)}%)`]),
    ...(kad.tableRecall == null ? [] : [`after the join, routing tables held ${f(100 * kad.tableRecall, 1)}% of their k closest`]),
    ...(kad.replicas == null ? [] : [`replicas per record: ${f(kad.replicas.afterPut.mean, 1)} (lowest ${f(kad.replicas.afterPut.min)}) after the puts, ${f(kad.replicas.afterLeave.mean, 1)} (lowest ${f(kad.replicas.afterLeave.min)}) after ${kad.left ?? 0} peers left`]),
    ...(kad.bytesPerLookup == null ? [] : [`${f(kad.bytesPerLookup)} bytes on the links per lookup`])
  ]
  return `<ul class="facts">${facts.map(x => `<li>${escapeXml(x)}</li>`).join('')}</ul>` + (rows.length === 0
    ? ''
    : '<table><thead><tr><th>lookups</th><th>succeeded</th><th>hops mean / p99</th><th>requests mean / p99</th><th>latency p50 / p95 / p99 / max (ms)</th></tr></thead>' +
      `<tbody>${rows.join('')}</tbody></table>`)
}

function summaryTable (r: ScenarioReport): string {
  const ms = (x: number): string => fixed(x, 0)
  const pct = (x: number): string => x == null || Number.isNaN(x) ? '–' : `${fixed(x, 2, 100)}%`
  const rows = [...r.batches, ...(r.batches.length > 1 ? [r.total] : [])].map(d =>
    `<tr><td>${escapeXml(d.label)}</td><td>${d.messages}</td><td>${pct(d.deliveryRatio)} (${d.delivered.toLocaleString('en')} / ${d.expected.toLocaleString('en')})</td>` +
    `<td>${ms(d.latency.p50)} / ${ms(d.latency.p95)} / ${ms(d.latency.p99)} / ${ms(d.latency.max)}</td><td>${ms(d.pathLatency.p50)} / ${ms(d.pathLatency.p99)}</td></tr>`)
  const facts = [
    `${r.peers.toLocaleString('en')} peers, ${r.links.toLocaleString('en')} links, mean link latency ${fixed(r.meanLinkLatency, 1)} ms, seed ${escapeXml(r.seed)}${r.runner === 'processes' ? ', separate processes on real TCP' : ''}`,
    ...(r.batches.length === 0 ? [] : [`duplicates per delivery ${fixed(r.duplicatesPerDelivery, 2)}, bytes per delivery ${fixed(r.bytesPerDelivery, 0)}`]),
    `set-up ${(r.setupMs / 1000).toFixed(1)} s, measured ${(r.durationMs / 1000).toFixed(1)} s${r.runner === 'processes' ? '' : ' (virtual)'}; real time ${(r.real.setupMs / 1000).toFixed(1)} s + ${((r.real.totalMs - r.real.setupMs) / 1000).toFixed(1)} s`,
    ...(r.memory == null ? [] : [`RSS per peer ${fixed(r.memory.rssPerPeerIdleMB, 2)} MB after the warm-up, ${fixed(r.memory.rssPerPeerEndMB, 2)} MB at the end`]),
    ...(r.processes == null ? [] : [`RSS per process p50 ${fixed(r.processes.rssEndMB.p50, 0)} MB, max ${fixed(r.processes.rssEndMB.max, 0)} MB (${r.processes.processes} processes)`])
  ]
  const delivery = r.batches.length === 0 ? '' : '<table><thead><tr><th>batch</th><th>messages</th><th>delivered</th><th>latency p50 / p95 / p99 / max (ms)</th><th>shortest path p50 / p99 (ms)</th></tr></thead>' +
    `<tbody>${rows.join('')}</tbody></table>`
  return `<ul class="facts">${facts.map(f => `<li>${f}</li>`).join('')}</ul>` + delivery + (r.kad == null ? '' : kadTable(r.kad))
}

const STYLE = `
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #1a1a1a; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
.subtitle { color: #555; margin: 0 0 16px; } nav a { margin-right: 12px; }
.partial { background: #fff3cd; border: 1px solid #e0c060; padding: 8px 12px; margin: 8px 0; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; } th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; } th:first-child, td:first-child { text-align: left; }
.facts { font-size: 13px; margin: 4px 0; padding-left: 20px; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(${WIDTH * 0.85}px, 1fr)); gap: 16px 24px; }
figure { margin: 0; } figcaption { font-size: 12px; color: #555; max-width: ${WIDTH}px; }
svg.chart { background: #fff; font-size: 11px; width: 100%; max-width: ${WIDTH}px; height: auto; }
svg.chart .chart-title { font-size: 14px; font-weight: 600; }
svg.chart .axis line { stroke: #333; } svg.chart .grid { stroke: #e6e6e6; }
svg.chart .axis-label { font-size: 12px; } svg.chart .tick { fill: #333; }
svg.chart .band rect { fill: #f4c2c2; fill-opacity: 0.45; } svg.chart .band text { fill: #8b0000; font-size: 11px; }
`

/** The page: every report's section (summary, charts), inline CSS, no script, nothing fetched. */
export function renderReportHtml (reports: readonly ScenarioReport[], options: ReportPageOptions = {}): string {
  const title = options.title ?? 'Simulation report'
  // Names made unique (a second report of the same name gets " 2"), for the sections' ids.
  const used = new Map<string, number>()
  const named = reports.map(r => {
    const seen = used.get(slug(r.name)) ?? 0
    used.set(slug(r.name), seen + 1)
    return seen === 0 ? r : { ...r, name: `${r.name} ${seen + 1}` }
  })
  const sections = named.map(report => {
    const charts = scenarioCharts(report)
    const partial = report.partial == null
      ? ''
      : `<p class="partial">Partial: the run was stopped during the ${report.partial.phase}${report.partial.phase === 'measurement' ? `, ${(report.partial.measuredMs / 1000).toFixed(1)} s into the measurement (${report.partial.published} of ${report.partial.messages} messages published)` : '; nothing was measured'}.</p>`
    return `<section class="scenario" id="scenario-${slug(report.name)}"><h2>${escapeXml(report.name)}</h2>${partial}${summaryTable(report)}` +
      `<div class="charts">${charts.map(c => `<figure class="chart-figure" data-chart="${escapeXml(c.id)}">${c.svg}<figcaption>${escapeXml(c.caption)}</figcaption></figure>`).join('')}</div></section>`
  })
  const nav = named.length > 1 ? `<nav>${named.map(r => `<a href="#scenario-${slug(r.name)}">${escapeXml(r.name)}</a>`).join('')}</nav>` : ''
  return '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">' +
    `<title>${escapeXml(title)}</title><style>${STYLE}</style></head><body><h1>${escapeXml(title)}</h1>` +
    (options.subtitle == null ? '' : `<p class="subtitle">${escapeXml(options.subtitle)}</p>`) + nav + sections.join('\n') + '\n</body></html>\n'
}
