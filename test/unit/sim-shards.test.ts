import { expect } from 'chai'
import { LinkUnreachableError, SimulatedNetwork, VirtualClock, runScenario, runScenarioInShards, spawnShard } from '../../src/testing/index.js'
import { MemoryConnectionRefusedError } from '../../src/transport/memory.js'
import { rejection } from '../fixtures/promises.js'
import type { Scenario, ScenarioReport, SimulatedNetworkOptions } from '../../src/testing/index.js'
import type { MultiaddrConnection } from '@libp2p/interface'

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/**
 * Two networks as two shards of one simulation, on one clock in this thread: even hosts in
 * the first, odd in the second, each handing the other what crosses as the coordinator would.
 */
function twoShards (options: Omit<SimulatedNetworkOptions, 'shard'>): [SimulatedNetwork, SimulatedNetwork] {
  const nets: SimulatedNetwork[] = []
  const make = (index: number): SimulatedNetwork => new SimulatedNetwork({
    ...options,
    shard: { local: host => host % 2 === index, post: message => { nets[message.to % 2].deliver(message) } }
  })
  nets.push(make(0), make(1))
  return [nets[0], nets[1]]
}

/** What arrives on `connection`, with its virtual time. */
function arrivals (connection: MultiaddrConnection): Array<{ at: number, bytes: number }> {
  const seen: Array<{ at: number, bytes: number }> = []
  connection.addEventListener('message', (evt) => { seen.push({ at: performance.now(), bytes: evt.data.byteLength }) })
  return seen
}

describe('simulation over threads: the clocks\' windows', () => {
  it('a clock in step with others never reaches its horizon by itself, and goes on up to the one its barrier returns', async () => {
    const barriers: Array<[number, number]> = []
    const clock = new VirtualClock({
      window: {
        horizon: 100,
        barrier: async (horizon, next) => {
          barriers.push([horizon, next])
          return horizon + 100
        }
      }
    })
    const fired = await clock.run(async () => {
      const times: number[] = []
      setTimeout(() => { times.push(performance.now()) }, 50)
      setTimeout(() => { times.push(performance.now()) }, 250)
      await sleep(300)
      return times
    })
    expect(fired).to.deep.equal([50, 250])
    // At 100 and 200 the next timer is at 250; at 300 the sleep's own.
    expect(barriers).to.deep.equal([[100, 250], [200, 250], [300, 300]])
  })
})

describe('simulation over threads: connections across shards', () => {
  it('take a round trip to set up, carry bytes one latency later in order, and close at both ends', async () => {
    await new VirtualClock().run(async () => {
      const [even, odd] = twoShards({ link: { latency: 10, bandwidthMbps: 8 } })
      const a = even.host(0)
      const b = odd.host(1)
      let inbound: MultiaddrConnection | undefined
      const port = b.hub.bind('0', connection => { inbound = connection })
      expect(port, 'a host\'s first port is its id + 1').to.equal('2')
      const start = performance.now()
      const out = await a.hub.connect(port, { signal: AbortSignal.timeout(60_000) })
      expect(performance.now() - start, 'a round trip').to.equal(20)
      if (inbound == null) throw new Error('the listener got no connection')
      const got = arrivals(inbound)
      const back = arrivals(out)
      const sent = performance.now()
      for (let i = 0; i < 3; i++) out.send(new Uint8Array(10_000).fill(i))
      inbound.send(new Uint8Array(5))
      await sleep(100)
      expect(got.map(x => x.at - sent), '10 ms each at 8 Mbit/s, then the latency').to.deep.equal([20, 30, 40])
      expect(back.map(x => x.bytes)).to.deep.equal([5])
      expect(even.stats()).to.include({ bytes: 30_000, chunks: 3, connections: 1 })
      expect(odd.stats()).to.include({ bytes: 5, chunks: 1, connections: 0 })
      const closed = new Promise<void>(resolve => { inbound?.addEventListener('close', () => { resolve() }, { once: true }) })
      await out.close()
      await closed
      expect(inbound.status).to.equal('closed')
      expect(even.openConnections + odd.openConnections).to.equal(0)
      even.stop()
      odd.stop()
    })
  })

  it('refuse a port nothing listens on, find a partitioned host unreachable, and reset what a dial given up left open', async () => {
    await new VirtualClock().run(async () => {
      const [even, odd] = twoShards({ link: { latency: 10 } })
      const a = even.host(0)
      const b = odd.host(1)
      const c = odd.host(3)
      expect(await rejection(a.hub.connect('2', { signal: AbortSignal.timeout(5_000) }))).to.be.instanceOf(MemoryConnectionRefusedError)

      const accepted: MultiaddrConnection[] = []
      b.hub.bind('0', connection => { accepted.push(connection) })
      for (const net of [even, odd]) net.partition([[a.id], [b.id, c.id]])
      expect(await rejection(a.hub.connect('2', { signal: AbortSignal.timeout(5_000) }))).to.be.instanceOf(LinkUnreachableError)
      expect(even.stats().unreachableDials).to.equal(1)
      expect(accepted).to.have.length(0)

      // Given up after the SYN was accepted, before the answer came back: the listener's end is reset.
      const c2 = odd.host(5)
      c2.hub.bind('0', connection => { accepted.push(connection) })
      const gaveUp = rejection(even.host(2).hub.connect('6', { signal: AbortSignal.timeout(15) }))
      await gaveUp
      await sleep(50)
      expect(accepted).to.have.length(1)
      expect(accepted[0].status, 'reset by the dialer').to.equal('reset')
      even.stop()
      odd.stop()
    })
  })
})

describe('simulation over threads: scenarios', function () {
  this.timeout(120_000)

  const scenario: Scenario = {
    name: 'threads',
    peers: 16,
    seed: 'threads',
    link: { latency: { min: 10, max: 40 }, jitter: 2, loss: 0.01 },
    publish: { messages: 20, publishers: 4, interval: 40 },
    faults: [{ type: 'partition', at: 400, healAfter: 1_500, fraction: 0.25, resetAfter: 1_000 }],
    settle: 10_000
  }
  const withoutRealTimes = (report: ScenarioReport): Omit<ScenarioReport, 'real' | 'memory'> => {
    const { real, memory, ...rest } = report
    return rest
  }

  it('over two worker threads: delivers as one thread does, and the same seed gives the same report', async () => {
    const one = await runScenario(scenario)
    const first = await runScenarioInShards(scenario, { threads: 2, spawn: spawnShard })
    expect(first.total.messages).to.equal(20)
    expect(first.total.expected).to.equal(one.total.expected)
    expect(first.network.connections, 'every topology link connected once').to.equal(one.network.connections)
    expect(first.total.deliveredReachable, 'every reachable subscriber got every message').to.equal(first.total.reachable)
    expect(first.batches[0].deliveryRatio).to.be.greaterThan(0.5)
    expect(first.meshDegree.start.min).to.be.at.least(1)
    // Latencies are within what the links allow, as on one thread.
    expect(first.total.latency.p50).to.be.within(one.total.latency.p50 * 0.5, one.total.latency.p50 * 2)
    const second = await runScenarioInShards(scenario, { threads: 2, spawn: spawnShard })
    expect(withoutRealTimes(second)).to.deep.equal(withoutRealTimes(first))
  })

  it('stops on its signal and reports what the threads measured, marked partial; a thread that fails fails the run with its error', async () => {
    const stop = new AbortController()
    // The first thread's log of the set-up's end reaches the coordinator at the next barrier;
    // the stop reaches the threads one window later, early in the measurement (0.8 s of publishes).
    const report = await runScenarioInShards({ ...scenario, signal: stop.signal, log: line => { if (line.startsWith('set up in')) stop.abort(new Error('enough')) } }, { threads: 2, spawn: spawnShard })
    expect(report.partial).to.include({ phase: 'measurement', reason: 'enough' })
    expect(report.total.delivered).to.be.lessThan(report.total.expected)

    const failed = await rejection(runScenarioInShards({ ...scenario, warmupTimeout: 1 }, { threads: 2, spawn: spawnShard }))
    expect(failed).to.have.property('code', 'ERR_SHARD_FAILED')
    expect(String((failed as Error).message)).to.include('warm-up did not complete within 1 ms')
  })

  it('refuses what cannot cross to threads or run ahead: a links function, the real clock, links without latency', async () => {
    const options = { threads: 2, spawn: spawnShard }
    expect(await rejection(runScenarioInShards({ ...scenario, links: () => undefined }, options))).to.have.property('code', 'ERR_CONFIG')
    expect(await rejection(runScenarioInShards({ ...scenario, time: 'real' }, options))).to.have.property('code', 'ERR_CONFIG')
    expect(await rejection(runScenarioInShards({ ...scenario, link: { latency: 0 } }, options))).to.have.property('code', 'ERR_CONFIG')
  })
})
