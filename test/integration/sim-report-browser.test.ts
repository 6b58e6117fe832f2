/**
 * The simulation report page in a real browser: headless Chromium (Debian's `chromium`, found
 * on PATH or through `CHROMIUM_PATH`), driven by playwright-core, opens a page made from a
 * small simulated run with a partition and a small Kademlia run (its hop distribution and
 * lookup latency per kind of lookup, and its table of lookups) and checks that
 * every chart drew: each SVG parses, has a size, each series has a non-empty bounding box,
 * each line has points and a length, each bar a height; and that the page fetched nothing.
 * Without a Chromium the tests are skipped with the reason printed; with
 * `PEERSWARM_REQUIRE_ALL=1` (CI) they fail instead.
 */
import { expect } from 'chai'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { chromium } from 'playwright-core'
import { runKadScenario, runScenario } from '../../src/testing/index.js'
import { renderReportHtml, scenarioCharts } from '../../src/testing/report-html.js'
import { chromiumPath, requireCapability } from '../fixtures/capabilities.js'
import type { ScenarioReport } from '../../src/testing/index.js'
import type { Browser } from 'playwright-core'

/** What the page says about one chart. */
interface Drawn {
  readonly id: string
  readonly parses: boolean
  readonly width: number
  readonly height: number
  readonly series: ReadonlyArray<{ name: string, width: number, height: number, paths: Array<{ points: number, length: number }>, bars: number[], dots: number }>
  readonly axisLabels: ReadonlyArray<{ text: string, width: number }>
}

describe('simulation report in a browser', function () {
  this.timeout(120_000)
  let browser: Browser | undefined
  let dir = ''
  let reports: ScenarioReport[] = []

  before(async function () {
    requireCapability(this, 'chromium')
    dir = mkdtempSync(join(tmpdir(), 'peerswarm-report-'))
    const simulated = await runScenario({
      name: 'partition',
      peers: 24,
      seed: 2,
      topology: { type: 'random-regular', degree: 6 },
      link: { latency: { min: 20, max: 80 } },
      publish: [
        { label: 'before', at: 0, messages: 10, publishers: 4, interval: 100 },
        { label: 'during', at: 3_000, messages: 10, publishers: 4, interval: 300 },
        { label: 'after', at: 12_000, messages: 10, publishers: 4, interval: 100 }
      ],
      faults: [{ type: 'partition', at: 2_000, fraction: 0.3, healAfter: 6_000, resetAfter: 2_000 }],
      settle: 5_000
    })
    const kademlia = await runKadScenario({ name: 'kademlia', peers: 24, seed: 2, link: { latency: { min: 20, max: 80 } }, kad: { replicationFactor: 5 }, lookups: 6, records: 6 })
    reports = [simulated, kademlia]
    browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox'] })
  })

  after(async () => {
    await browser?.close()
    if (dir !== '') rmSync(dir, { recursive: true, force: true })
  })

  it('draws every chart of every scenario, fetching nothing', async () => {
    const file = join(dir, 'report.html')
    writeFileSync(file, renderReportHtml(reports, { title: 'browser test' }))
    const page = await (browser as Browser).newPage({ viewport: { width: 1400, height: 1000 } })
    // tsx compiles this file keeping function names through a helper the page lacks.
    await page.addInitScript('globalThis.__name = (f) => f')
    const requests: string[] = []
    page.on('request', request => { requests.push(request.url()) })
    await page.goto(pathToFileURL(file).href)
    await page.waitForLoadState('load')
    expect(requests, 'the page itself, nothing else').to.deep.equal([pathToFileURL(file).href])

    const drawn = await page.evaluate((): Drawn[] => {
      const box = (e: Element): { width: number, height: number } => {
        const r = (e as SVGGraphicsElement).getBBox()
        return { width: r.width, height: r.height }
      }
      return [...document.querySelectorAll('svg.chart')].map(svg => {
        const parsed = new DOMParser().parseFromString(svg.outerHTML, 'image/svg+xml')
        const rect = svg.getBoundingClientRect()
        return {
          id: svg.id,
          parses: parsed.getElementsByTagName('parsererror').length === 0 && parsed.documentElement.nodeName === 'svg',
          width: rect.width,
          height: rect.height,
          series: [...svg.querySelectorAll('g.series')].map(g => ({
            name: g.getAttribute('data-series') ?? '',
            ...box(g),
            paths: [...g.querySelectorAll('path')].map(p => ({ points: ((p.getAttribute('d') ?? '').match(/[ML]/g) ?? []).length, length: (p as SVGPathElement).getTotalLength() })),
            bars: [...g.querySelectorAll('rect')].map(r => box(r).height),
            dots: g.querySelectorAll('circle').length
          })),
          axisLabels: [...svg.querySelectorAll('.axis-label')].map(t => ({ text: t.textContent ?? '', width: box(t).width }))
        }
      })
    })

    const expected = reports.flatMap(r => scenarioCharts(r).map(c => ({ id: c.id, series: c.series })))
    expect(drawn.map(d => d.id)).to.deep.equal(expected.map(e => e.id))
    expect(expected.map(e => e.id)).to.include.members(['partition-latency-cdf', 'partition-delivery-over-time', 'partition-delivery-per-message', 'partition-mesh-degree', 'partition-duplicates', 'kademlia-kad-hops', 'kademlia-kad-latency'])
    // The Kademlia section: its charts (no mesh, no delivery), a row per kind of lookup.
    expect(expected.filter(e => e.id.startsWith('kademlia-')).map(e => e.id)).to.deep.equal(['kademlia-kad-hops', 'kademlia-kad-latency'])
    expect(drawn.find(d => d.id === 'kademlia-kad-hops')?.series.map(s => s.name)).to.deep.equal(['getClosestPeers', 'putRecord', 'getRecord', 'getRecord after the leave'])
    expect(await page.locator('#scenario-kademlia table tbody tr').count()).to.equal(4)
    for (const [k, chart] of drawn.entries()) {
      expect(chart.parses, `${chart.id} parses as SVG`).to.equal(true)
      expect(chart.width, `${chart.id} has a width`).to.be.greaterThan(100)
      expect(chart.height, `${chart.id} has a height`).to.be.greaterThan(50)
      expect(chart.series.map(s => s.name), `${chart.id}'s series`).to.deep.equal(expected[k].series)
      expect(chart.axisLabels, `${chart.id}'s axis labels`).to.have.length(2)
      for (const label of chart.axisLabels) expect(label.width, `${chart.id}: "${label.text}" drawn`).to.be.greaterThan(0)
      for (const s of chart.series) {
        expect(s.width + s.height, `${chart.id}/${s.name} drew something`).to.be.greaterThan(0)
        for (const path of s.paths) {
          expect(path.points, `${chart.id}/${s.name}: a line with points`).to.be.at.least(2)
          expect(path.length, `${chart.id}/${s.name}: a line with a length`).to.be.greaterThan(0)
        }
        expect(s.bars.every(h => h > 0), `${chart.id}/${s.name}: bars with a height`).to.equal(true)
        expect(s.paths.length + s.bars.length + s.dots, `${chart.id}/${s.name}: marks`).to.be.greaterThan(0)
      }
    }
    // The partition is shaded on the time charts, and the screenshot is not blank.
    expect(await page.locator('#partition-delivery-over-time .band rect').count()).to.equal(1)
    const png = await page.locator('#scenario-partition .charts').screenshot()
    expect(png.byteLength).to.be.greaterThan(10_000)
    await page.close()
  })
})
