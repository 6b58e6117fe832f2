/**
 * The Kademlia scenario of the simulator (`runKadScenario`, `npm run sim -- kad`) at a small
 * scale: 40 peers with link latency and 1% loss, k = 6 so that lookups take more than one hop
 * in so few peers. Every lookup succeeds within log₂ N hops, finds the true k closest, takes at
 * least a round trip; the records put are found again after 20% of the peers left; the report
 * carries it all, in text and in charts.
 */
import { expect } from 'chai'
import { ConfigError } from '../../src/index.js'
import { formatReport, runKadScenario } from '../../src/testing/index.js'
import { scenarioCharts } from '../../src/testing/report-html.js'
import type { ScenarioReport } from '../../src/testing/index.js'

describe('simulation: a Kademlia network', function () {
  this.timeout(300_000)
  let report: ScenarioReport

  before(async () => {
    report = await runKadScenario({
      peers: 40,
      seed: 3,
      link: { latency: { min: 20, max: 80 }, loss: 0.01 },
      kad: { replicationFactor: 6 },
      lookups: 12,
      records: 12,
      leave: 0.2
    })
  })

  it('40 peers, k = 6: every lookup succeeds within log2 N hops and at least a round trip, finding the true k closest', () => {
    const kad = report.kad
    if (kad?.kinds == null) throw new Error('no Kademlia figures')
    expect(kad.k).to.equal(6)
    expect(kad.log2Peers).to.be.closeTo(Math.log2(40), 1e-9)
    expect(kad.kinds.map(k => k.label)).to.deep.equal(['getClosestPeers', 'putRecord', 'getRecord', 'getRecord after the leave'])
    for (const kind of kad.kinds) {
      expect(kind.succeeded, kind.label).to.equal(kind.lookups)
      expect(kind.lookups, kind.label).to.equal(12)
      expect(kind.hopStats.mean, kind.label).to.be.at.least(1).and.at.most(Math.log2(40))
      expect(Object.values(kind.hops).reduce((s, c) => s + c, 0), kind.label).to.equal(12)
      expect(kind.messages.mean, kind.label).to.be.at.least(kind.label === 'putRecord' ? 6 : 1)
      // A lookup needs at least one round trip over links of 20 ms or more each way.
      expect(kind.latencyQuantiles?.[0], kind.label).to.be.at.least(40)
    }
    // With k = 6 among 40 peers, some lookups go beyond the peers of the asker's own table.
    expect(Math.max(...Object.keys(kad.kinds[0].hops).map(Number))).to.be.at.least(2)
    expect(kad.precision?.mean).to.be.at.least(0.9)
    expect(kad.tableRecall).to.be.at.least(0.9)
    expect(kad.succeeded).to.equal(kad.lookups)
  })

  it('the records put are replicated at about k peers and found again after 20% of the peers left', () => {
    const kad = report.kad
    expect(report.faults).to.deep.include({ type: 'leave', at: report.faults[0].at, peers: 8 })
    expect(kad?.left).to.equal(8)
    expect(kad?.replicas?.afterPut.min).to.be.at.least(3)
    expect(kad?.replicas?.afterPut.max).to.be.at.most(6 + 2)
    expect(kad?.replicas?.afterLeave.min).to.be.at.least(1)
    expect(kad?.replicas?.afterLeave.mean).to.be.below(kad?.replicas?.afterPut.mean ?? 0)
    expect(kad?.bytesPerLookup).to.be.above(0)
  })

  it('reports in text and in charts: the hop distribution and the latency per kind, no mesh', () => {
    const text = formatReport(report)
    expect(text).to.include('kademlia: 48/48 lookups succeeded')
    expect(text).to.include('getRecord after the leave: 12/12 ok')
    expect(text).to.not.include('duplicates/delivery')
    const charts = scenarioCharts(report)
    expect(charts.map(c => c.id)).to.deep.equal(['kad-kad-hops', 'kad-kad-latency'])
    for (const chart of charts) expect(chart.series).to.deep.equal(['getClosestPeers', 'putRecord', 'getRecord', 'getRecord after the leave'])
  })

  it('stopped (Ctrl-C in npm run sim), reports what it measured, marked partial: during the join, or after some lookups', async () => {
    // Stopped while peers join: fewer than all joined, nothing measured.
    const joining = new AbortController()
    const early = await runKadScenario({
      peers: 20, seed: 1, kad: { replicationFactor: 4 }, lookups: 5, records: 5, joinConcurrency: 1, signal: joining.signal,
      log: line => { if (line.startsWith('joining')) joining.abort(new Error('interrupted (SIGINT)')) }, progressInterval: 0
    })
    expect(early.partial).to.include({ phase: 'set-up', measuredMs: 0, published: 0, messages: 20, reason: 'interrupted (SIGINT)' })
    expect(early.kad?.lookups).to.equal(0)
    expect(early.faults).to.deep.equal([])
    expect(formatReport(early)).to.include('PARTIAL: stopped during the set-up (nothing measured)')

    // Stopped after 3 lookups: those 3 are reported, no record is put, nobody leaves.
    const measuring = new AbortController()
    const lines: string[] = []
    const late = await runKadScenario({
      peers: 20, seed: 1, kad: { replicationFactor: 4 }, lookups: 8, records: 5, concurrency: 1, signal: measuring.signal,
      log: line => {
        lines.push(line)
        if (line.startsWith('getClosestPeers: 3/')) measuring.abort(new Error('stop'))
      },
      progressInterval: 0
    })
    // Progress lines say how far, the virtual time run, the real time spent and (once the phase
    // is under way) the real time left at its recent pace.
    for (const line of [/^joining: \d+\/20 peers, t=[\d.]+ s virtual; real \d+ s, ~\d+ s left in this phase at the recent pace$/,
      /^getClosestPeers: 2\/8, t=[\d.]+ s virtual; real \d+ s, ~\d+ s left in this phase at the recent pace$/]) {
      expect(lines.some(l => line.test(l)), `a line like ${String(line)} in:\n${lines.join('\n')}`).to.equal(true)
    }
    expect(late.partial).to.include({ phase: 'measurement', published: 3, messages: 8 + 15, unit: 'lookups done' })
    expect(late.kad?.kinds?.map(k => k.lookups)).to.deep.equal([3, 0, 0, 0])
    expect(late.kad?.succeeded).to.equal(3)
    expect(late.faults).to.deep.equal([])
    expect(formatReport(late)).to.include('3/23 lookups done')
  })

  it('refuses bad options with a ConfigError naming the field', async () => {
    for (const [field, bad] of [['peers', { peers: 2 }], ['leave', { peers: 10, leave: 1 }], ['bootstrapPeers', { peers: 10, bootstrapPeers: 0 }]] as const) {
      const error = await runKadScenario(bad).then(() => undefined, (err: unknown) => err)
      expect(error, field).to.be.instanceOf(ConfigError)
      expect((error as ConfigError).field, field).to.equal(field)
    }
  })
})
