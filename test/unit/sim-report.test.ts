/**
 * The simulation's reports: the HTML page's SVG charts (well-formed XML, one chart per expected
 * series, axes labelled, nothing fetched), the report fields they draw (deliveries over time,
 * duplicates, latency quantiles), progress, and a run stopped through its AbortSignal (a
 * partial report), without signals.
 */
import { expect } from 'chai'
import { formatReport, runScenario } from '../../src/testing/index.js'
import { barChart, escapeXml, lineChart, renderReportHtml, scenarioCharts } from '../../src/testing/report-html.js'
import { formatProgress } from '../../src/testing/scenario.js'
import type { ScenarioReport } from '../../src/testing/index.js'
import type { ScenarioProgress } from '../../src/testing/scenario.js'

/** An XML element as the checker parsed it. */
interface Element { readonly name: string, readonly attributes: Record<string, string>, readonly children: Element[], text: string }

const ENTITY = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/

/**
 * Parse `text` as XML (elements, attributes, text, comments): throws where it is not
 * well-formed (unbalanced or crossed tags, an unquoted or repeated attribute, a raw `<` or `&`,
 * more than one root).
 */
function parseXml (text: string): Element {
  const token = /<!--[\s\S]*?-->|<\/([A-Za-z_][\w:.-]*)\s*>|<([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>|([^<]+)|(<)/g
  const root: Element = { name: '#document', attributes: {}, children: [], text: '' }
  const stack: Element[] = [root]
  for (const m of text.matchAll(token)) {
    const [whole, close, open, attributes, selfClosing, chars, stray] = m
    const top = stack[stack.length - 1]
    if (stray != null) throw new Error(`stray < at ${m.index}: ${text.slice(m.index, m.index + 40)}`)
    if (whole.startsWith('<!--')) continue
    if (chars != null) {
      if (ENTITY.test(chars)) throw new Error(`raw & in text: ${chars.slice(0, 40)}`)
      if (stack.length === 1 && chars.trim() !== '') throw new Error(`text outside the root: ${chars.slice(0, 40)}`)
      top.text += chars
      continue
    }
    if (close != null) {
      if (top.name !== close) throw new Error(`</${close}> closes <${top.name}>`)
      stack.pop()
      continue
    }
    const element: Element = { name: open, attributes: {}, children: [], text: '' }
    for (const a of (attributes ?? '').matchAll(/([A-Za-z_][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
      const value = a[2] ?? a[3]
      if (a[1] in element.attributes) throw new Error(`attribute ${a[1]} repeated on <${open}>`)
      if (ENTITY.test(value)) throw new Error(`raw & in attribute ${a[1]}`)
      element.attributes[a[1]] = value
    }
    if (stack.length === 1 && root.children.length > 0) throw new Error('more than one root element')
    top.children.push(element)
    if (selfClosing !== '/') stack.push(element)
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1].name}>`)
  if (root.children.length !== 1) throw new Error('no root element')
  return root.children[0]
}

function all (element: Element, predicate: (e: Element) => boolean): Element[] {
  const out: Element[] = []
  const walk = (e: Element): void => {
    if (predicate(e)) out.push(e)
    e.children.forEach(walk)
  }
  walk(element)
  return out
}

const hasClass = (e: Element, name: string): boolean => (e.attributes.class ?? '').split(' ').includes(name)
const decode = (text: string): string => text.replace(/&(lt|gt|amp|quot|apos|#39);/g, (_, e: string) => ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'", '#39': "'" })[e] as string)
const textOf = (e: Element): string => decode(e.text) + e.children.map(textOf).join('')

/** The points of a path's `d` (M and L commands only, as the charts write them). */
function pathPoints (d: string): Array<[number, number]> {
  return [...d.matchAll(/[ML]\s*(-?[\d.]+)\s+(-?[\d.]+)/g)].map(m => [Number(m[1]), Number(m[2])])
}

/** Checks every chart must pass: well-formed, a root svg with a title, both axis labels, each series drawn. */
function checkChart (svg: string, expected: { series: readonly string[], xLabel?: string, yLabel?: string }): Element {
  const root = parseXml(svg)
  expect(root.name).to.equal('svg')
  expect(root.attributes.xmlns).to.equal('http://www.w3.org/2000/svg')
  expect(all(root, e => e.name === 'title')).to.have.length.at.least(1)
  const labels = all(root, e => hasClass(e, 'axis-label')).map(textOf)
  expect(labels, 'an x and a y axis label').to.have.length(2)
  if (expected.xLabel != null) expect(labels[0]).to.equal(expected.xLabel)
  if (expected.yLabel != null) expect(labels[1]).to.equal(expected.yLabel)
  expect(all(root, e => hasClass(e, 'tick')).length, 'tick labels').to.be.at.least(4)
  const series = all(root, e => hasClass(e, 'series'))
  expect(series.map(s => decode(s.attributes['data-series'])), 'one group per series').to.deep.equal([...expected.series])
  for (const s of series) {
    const paths = all(s, e => e.name === 'path')
    const marks = all(s, e => e.name === 'circle' || e.name === 'rect')
    expect(paths.length + marks.length, `series ${s.attributes['data-series']} draws something`).to.be.greaterThan(0)
    for (const p of paths) {
      const points = pathPoints(p.attributes.d)
      expect(points.length, 'a line has points').to.be.at.least(2)
      for (const [x, y] of points) {
        expect(x).to.be.within(0, 640)
        expect(y).to.be.within(0, 320)
      }
    }
  }
  return root
}

/** A small report with everything the page draws: three batches, a partition, deliveries over time, duplicates, Kademlia hops. */
function sampleReport (overrides: Partial<ScenarioReport> = {}): ScenarioReport {
  const quantiles = (from: number, to: number): number[] => Array.from({ length: 201 }, (_, i) => from + (to - from) * (i / 200) ** 2)
  const summary = { count: 100, mean: 80, p50: 70, p95: 150, p99: 190, max: 200 }
  const delivery = (label: string, from: number, to: number) => ({
    label, messages: 10, publishErrors: 0, expected: 90, reachable: 90, delivered: 90, deliveredReachable: 90, deliveryRatio: 1, complete: 10,
    latency: summary, pathLatency: summary, latencyQuantiles: quantiles(from, to), pathQuantiles: quantiles(from * 0.8, to * 0.8)
  })
  return {
    name: 'sample <&>',
    seed: '1',
    peers: 10,
    links: 40,
    degree: { min: 8, mean: 8, max: 8, histogram: { 8: 10 } },
    meanLinkLatency: 50,
    setupMs: 1_000,
    durationMs: 30_000,
    real: { setupMs: 2_000, totalMs: 9_000 },
    batches: [delivery('before', 20, 200), delivery('during', 30, 3_000), delivery('after', 20, 220)],
    total: delivery('all', 20, 3_000),
    duplicatesPerDelivery: 3.2,
    bytesPerDelivery: 2_100,
    gossip: {},
    network: { bytes: 1, chunks: 1, segments: 1, lostSegments: 0, delayedChunks: 0, heldChunks: 0, connections: 40, resets: 3, unreachableDials: 0 },
    meshDegree: { start: { min: 4, mean: 5, max: 6, histogram: { 4: 2, 5: 5, 6: 3 } }, end: { min: 3, mean: 5, max: 7, histogram: { 3: 1, 5: 6, 7: 3 } } },
    redials: 2,
    faults: [{ type: 'partition', at: 5_000, healedAt: 15_000, peers: 3 }],
    timeline: {
      binMs: 500,
      delivered: Array.from({ length: 60 }, (_, i) => i >= 10 && i < 30 ? 5 : 40),
      published: Array.from({ length: 60 }, () => 1),
      messages: Array.from({ length: 30 }, (_, i) => ({ at: i * 1_000, batch: i < 10 ? 0 : i < 20 ? 1 : 2, delivered: i >= 10 && i < 20 ? 6 : 9, expected: 9, reachable: i >= 10 && i < 20 ? 6 : 9 }))
    },
    duplicates: { binWidth: 0.25, peers: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 5, 3] },
    kad: { lookups: 50, succeeded: 49, hops: { 2: 10, 3: 30, 4: 10 }, log2Peers: 3.3 },
    ...overrides
  }
}

describe('simulation report: SVG charts', () => {
  it('draws a line chart: well-formed, one group per series with its points, both axes labelled, a shaded band', () => {
    const svg = lineChart({
      id: 'c1',
      title: 'A & B',
      xLabel: 'time (s)',
      yLabel: 'deliveries <per second>',
      series: [
        { name: 'first', points: [[0, 1], [1, 3], [2, 2]] },
        { name: 'second "dashed"', points: [[0, 2], [2, 5]], style: 'dashed' },
        { name: 'dots', points: [[0.5, 1], [1.5, 4]], style: 'dots' }
      ],
      bands: [{ from: 0.5, to: 1.5, label: 'partition' }]
    })
    const root = checkChart(svg, { series: ['first', 'second "dashed"', 'dots'], xLabel: 'time (s)', yLabel: 'deliveries <per second>' })
    expect(all(root, e => hasClass(e, 'band'))).to.have.length(1)
    expect(all(root, e => e.name === 'circle' && e.attributes.r === '2.5')).to.have.length(2)
    expect(svg).to.include('A &amp; B').and.include('&lt;per second&gt;')
  })

  it('draws a logarithmic x axis with 1-2-5 ticks', () => {
    const svg = lineChart({ id: 'log', title: 'log', xLabel: 'ms', yLabel: 'share', xScale: 'log', series: [{ name: 'a', points: [[20, 0], [100, 0.5], [3_000, 1]] }] })
    const root = checkChart(svg, { series: ['a'] })
    const ticks = all(root, e => hasClass(e, 'tick')).map(textOf)
    expect(ticks).to.include.members(['20', '50', '100', '200', '500', '1,000', '2,000', '5,000'])
  })

  it('draws a bar chart: a rect per non-zero value, integer ticks', () => {
    const svg = barChart({ id: 'b', title: 'bars', xLabel: 'degree', yLabel: 'peers', categories: ['4', '5', '6'], series: [{ name: 'start', values: [1, 0, 3] }, { name: 'end', values: [2, 2, 2] }] })
    const root = checkChart(svg, { series: ['start', 'end'], xLabel: 'degree', yLabel: 'peers' })
    expect(all(root, e => e.name === 'rect' && hasClass(e, 'bar'))).to.have.length(5)
    for (const tick of all(all(root, e => hasClass(e, 'y-axis'))[0], e => hasClass(e, 'tick')).map(textOf)) expect(tick).to.match(/^\d+$/)
  })

  it("a scenario's charts: the CDF per batch and the shortest paths, delivery over time and per message with the partition, mesh degrees, duplicates, Kademlia hops", () => {
    const charts = scenarioCharts(sampleReport())
    expect(charts.map(c => c.id)).to.deep.equal([
      'sample-latency-cdf', 'sample-delivery-over-time', 'sample-delivery-per-message', 'sample-mesh-degree', 'sample-duplicates', 'sample-kad-hops'
    ])
    const expected: Record<string, { series: string[], xLabel: string, yLabel: string }> = {
      'sample-latency-cdf': { series: ['before', 'during', 'after', 'shortest path'], xLabel: 'publish → delivery (ms, log scale)', yLabel: 'share of deliveries' },
      'sample-delivery-over-time': { series: ['deliveries'], xLabel: 'time since the measurement started (s)', yLabel: 'deliveries per second' },
      'sample-delivery-per-message': { series: ['reachable when published', 'reached'], xLabel: 'publish time (s)', yLabel: 'share of subscribers' },
      'sample-mesh-degree': { series: ['after the warm-up', 'at the end'], xLabel: 'peers in the mesh (topic)', yLabel: 'subscribers' },
      'sample-duplicates': { series: ['subscribers'], xLabel: 'duplicates received per delivery (bins of 0.25, labelled by their lower end)', yLabel: 'subscribers' },
      'sample-kad-hops': { series: ['lookups'], xLabel: 'hops (peers asked in sequence to reach the result)', yLabel: 'lookups' }
    }
    for (const chart of charts) {
      expect(chart.series).to.deep.equal(expected[chart.id].series)
      const root = checkChart(chart.svg, expected[chart.id])
      if (chart.id.endsWith('over-time') || chart.id.endsWith('per-message')) {
        const bands = all(root, e => hasClass(e, 'band'))
        expect(bands, 'the partition shaded').to.have.length(1)
        expect(textOf(bands[0])).to.equal('partition (3 peers)')
      }
    }
    // Mesh degrees 3 to 7, two bars where both have peers; hops 2 to 4.
    const mesh = parseXml(charts[3].svg)
    expect(all(mesh, e => hasClass(e, 'bar'))).to.have.length(6)
    expect(all(parseXml(charts[5].svg), e => hasClass(e, 'bar'))).to.have.length(3)
  })

  it('leaves out what a report does not carry: no Kademlia section without hops, one latency series without batches', () => {
    const base = sampleReport()
    const { kad, ...withoutKad } = base
    void kad
    const charts = scenarioCharts({ ...withoutKad, batches: [base.total], faults: [] })
    expect(charts.map(c => c.id)).to.not.include('sample-kad-hops')
    expect(charts[0].series).to.deep.equal(['latency', 'shortest path'])
    expect(all(parseXml(charts[1].svg), e => hasClass(e, 'band'))).to.have.length(0)
  })

  it('a Kademlia report: the hop distribution and the latency CDF per kind of lookup, a table of them, no delivery or mesh', () => {
    const summary = (mean: number, p99: number) => ({ count: 20, mean, p50: mean, p95: p99, p99, max: p99 })
    const kind = (label: string, hops: Record<number, number>) => ({
      label, lookups: 20, succeeded: 20, hops, hopStats: summary(2.1, 4), messages: summary(31, 60), latency: summary(400, 1_200),
      latencyQuantiles: Array.from({ length: 101 }, (_, i) => 100 + 11 * i)
    })
    const none = { min: 0, mean: 0, max: 0, histogram: {} }
    const report = sampleReport({
      name: 'kad',
      batches: [],
      total: { ...sampleReport().total, messages: 0, delivered: 0, expected: 0, latencyQuantiles: [], pathQuantiles: [] },
      timeline: undefined,
      duplicates: undefined,
      meshDegree: { start: none, end: none },
      faults: [{ type: 'leave', at: 20_000, peers: 2 }],
      kad: {
        lookups: 40, succeeded: 40, hops: { 1: 5, 2: 20, 3: 15 }, log2Peers: Math.log2(60), k: 20,
        kinds: [kind('getClosestPeers', { 1: 5, 2: 10, 3: 5 }), kind('getRecord', { 2: 10, 3: 10 })],
        precision: { mean: 0.99, min: 0.9 }, tableRecall: 1, replicas: { afterPut: { min: 18, mean: 19.5, max: 20 }, afterLeave: { min: 12, mean: 15.5, max: 19 } }, left: 12, bytesPerLookup: 40_000
      }
    })
    const charts = scenarioCharts(report)
    expect(charts.map(c => c.id)).to.deep.equal(['kad-kad-hops', 'kad-kad-latency'])
    const hops = checkChart(charts[0].svg, { series: ['getClosestPeers', 'getRecord'], xLabel: 'hops (peers asked in sequence to reach the result)', yLabel: 'lookups' })
    expect(all(hops, e => hasClass(e, 'bar'))).to.have.length(5) // 1, 2, 3 hops; getRecord has none of 1
    checkChart(charts[1].svg, { series: ['getClosestPeers', 'getRecord'], xLabel: 'call → outcome (ms; a get: → the first record)', yLabel: 'share of lookups' })
    const page = renderReportHtml([report])
    expect(page).to.include('<td>getClosestPeers</td><td>20 / 20</td><td>2.10 / 4</td><td>31.0 / 60</td><td>400 / 1200 / 1200 / 1200</td>')
    expect(page).to.include('replicas per record: 19.5 (lowest 18) after the puts, 15.5 (lowest 12) after 12 peers left')
    expect(page).to.not.include('<th>batch</th>')
    expect(page).to.not.include('duplicates per delivery')
    const text = formatReport(report)
    expect(text).to.include('getClosestPeers: 20/20 ok, hops mean 2.10 p99 4 max 4, requests mean 31.0 p99 60')
    expect(text).to.not.include('duplicates/delivery')
  })

  it('makes one self-contained page: no script, nothing fetched, every chart well-formed, a partial run marked', () => {
    const page = renderReportHtml([sampleReport(), sampleReport({ name: 'stopped', partial: { phase: 'measurement', measuredMs: 12_000, published: 12, messages: 30, reason: 'interrupted (SIGINT)' } })], { title: 'T & co', subtitle: 'small run' })
    expect(page.startsWith('<!doctype html>')).to.equal(true)
    expect(page).to.not.match(/<script|<link|<img|<iframe|@import|url\(|\bsrc=|href="(?!#)/i)
    expect(page).to.include('<title>T &amp; co</title>')
    const svgs = page.match(/<svg[\s\S]*?<\/svg>/g) ?? []
    expect(svgs).to.have.length(12)
    for (const svg of svgs) parseXml(svg)
    expect(page).to.include('Partial: the run was stopped during the measurement, 12.0 s into the measurement (12 of 30 messages published)')
    expect(page).to.include('id="scenario-sample"').and.include('id="scenario-stopped"')
  })

  it('escapes text for XML', () => {
    expect(escapeXml(`a<b>&"c'`)).to.equal('a&lt;b&gt;&amp;&quot;c&#39;')
  })
})

describe('simulation report: runs', function () {
  this.timeout(120_000)

  const scenario = {
    name: 'small',
    peers: 12,
    seed: 4,
    topology: { type: 'random-regular', degree: 4 },
    link: { latency: { min: 10, max: 30 } },
    publish: { messages: 20, publishers: 3, interval: 100 }
  } as const

  it('reports deliveries over time, each message, duplicates per subscriber and the latency quantiles, and progress in every phase', async () => {
    const seen: ScenarioProgress[] = []
    const report = await runScenario({ ...scenario, progress: p => { seen.push(p) }, progressInterval: 0 })
    expect(report.total.deliveryRatio).to.equal(1)
    const timeline = report.timeline
    if (timeline == null) throw new Error('no timeline')
    expect(timeline.delivered.reduce((a, b) => a + b, 0)).to.equal(report.total.delivered)
    expect(timeline.published.reduce((a, b) => a + b, 0)).to.equal(20)
    expect(timeline.messages).to.have.length(20)
    expect(timeline.messages.every(m => m.delivered === m.expected && m.expected === 11)).to.equal(true)
    expect(timeline.delivered.length * timeline.binMs).to.be.at.least(report.durationMs)
    expect(report.duplicates?.peers.reduce((a, b) => a + b, 0), 'every subscriber in the histogram').to.equal(12)
    const q = report.total.latencyQuantiles ?? []
    expect(q).to.have.length(201)
    expect(q[0]).to.be.closeTo(Math.min(report.total.latency.p50, q[0]), 1e-9)
    expect(q[100]).to.be.closeTo(report.total.latency.p50, 0.001)
    expect(q[200]).to.be.closeTo(report.total.latency.max, 0.001)
    expect(report.total.pathQuantiles).to.have.length(201)
    expect(report.partial).to.equal(undefined)

    const phases = new Set(seen.map(p => p.phase))
    for (const phase of ['building', 'connecting', 'warm-up', 'measuring'] as const) expect(phases.has(phase), phase).to.equal(true)
    const measuring = seen.filter(p => p.phase === 'measuring')
    expect(measuring[measuring.length - 1].published).to.be.greaterThan(0)
    expect(seen.some(p => p.realLeftMs != null), 'an estimate of the time left').to.equal(true)
    expect(formatProgress(measuring[measuring.length - 1])).to.match(/^measuring: t=[\d.]+ s of 1\.9 s virtual, \d+\/20 published, \d+ deliveries; real \d+ s/)
  })

  it('reports progress at most once per progressInterval of real time', async () => {
    let calls = 0
    await runScenario({ ...scenario, publish: { messages: 2, interval: 10 }, progress: () => { calls++ }, progressInterval: 3_600_000 })
    expect(calls).to.equal(0)
  })

  it('stopped during the measurement (its signal aborted): reports what it measured so far, marked partial', async () => {
    const stop = new AbortController()
    const report = await runScenario({
      ...scenario,
      progressInterval: 0,
      progress: p => { if (p.phase === 'measuring' && p.published >= 5) stop.abort(new Error('enough')) },
      signal: stop.signal
    })
    const partial = report.partial
    if (partial == null) throw new Error('not partial')
    expect(partial.phase).to.equal('measurement')
    expect(partial.reason).to.equal('enough')
    expect(partial.messages).to.equal(20)
    expect(partial.published).to.be.within(5, 19)
    expect(report.total.messages).to.equal(partial.published)
    expect(report.total.delivered).to.be.greaterThan(0)
    expect(report.durationMs).to.be.lessThan(1_900)
    expect(report.timeline?.messages).to.have.length(partial.published)
    expect(formatReport(report)).to.include(`PARTIAL: stopped during the measurement after ${(partial.measuredMs / 1000).toFixed(1)} s, ${partial.published}/20 messages published (enough)`)
    // Read back from JSON (NaN becomes null), as `--from` and the parent of `npm run sim` read it.
    const page = renderReportHtml([JSON.parse(JSON.stringify(report)) as ScenarioReport])
    expect(page).to.include('Partial: the run was stopped during the measurement')
  })

  it('stopped during the set-up: a report with nothing measured, and no charts', async () => {
    const stop = new AbortController()
    const report = await runScenario({
      ...scenario,
      progressInterval: 0,
      progress: p => { if (p.phase === 'connecting' && p.dialed >= 3) stop.abort() },
      signal: stop.signal
    })
    expect(report.partial?.phase).to.equal('set-up')
    expect(report.partial?.published).to.equal(0)
    expect(report.total.messages).to.equal(0)
    expect(report.total.expected).to.equal(0)
    expect(report.timeline).to.equal(undefined)
    expect(formatReport(report)).to.include('PARTIAL: stopped during the set-up (nothing measured)')
    expect(scenarioCharts(report)).to.have.length(0)
    expect(renderReportHtml([JSON.parse(JSON.stringify(report)) as ScenarioReport])).to.include('nothing was measured')
  })

  it('with its signal aborted before it starts: builds nothing and reports at once', async () => {
    const stop = new AbortController()
    stop.abort(new Error('never mind'))
    const report = await runScenario({ ...scenario, signal: stop.signal })
    expect(report.partial).to.deep.include({ phase: 'set-up', reason: 'never mind' })
    expect(report.meshDegree.end).to.deep.equal({ min: 0, mean: 0, max: 0, histogram: {} })
  })
})
