/**
 * Floods over TCP on 127.0.0.1. A victim `a` (GossipSub with scoring, ping every 100 ms) is
 * connected to an honest node `b` and to a flooder (test/fixtures/flooder.ts, in its own
 * process so that its work does not count against a's event loop). While it floods, `b`
 * publishes 100 messages: all must reach `a`, nine in ten of `a`'s pings to `b` must take under
 * 50 ms (and the median under 10 ms), and this process's RSS (a and b) must stay within a
 * bound.
 */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { expect } from 'chai'
import { SwarmBuilder, combine, gossipsub, ping } from '../../src/index.js'
import { EventLog, addressOf, until } from '../fixtures/event-log.js'
import { attackScoring, meshedPair } from '../fixtures/under-attack.js'
import type { PeerId } from '@libp2p/interface'

const TOPIC = 'flood'
/** RTT bound for a's pings to the honest peer while a flood lasts. */
const RTT_BOUND_MS = 50
/** RSS growth allowed for this process (victim and honest node). */
const RSS_BOUND_MB = 200
const MAX_TOPICS_PER_PEER = 1_000

const scoring: Partial<gossipsub.Options> = { ...attackScoring(TOPIC), maxTopicsPerPeer: MAX_TOPICS_PER_PEER }

async function honest () {
  const swarm = await SwarmBuilder.withNewIdentity().withTcp()
    .withBehaviour(key => combine({
      gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), ...scoring }),
      ping: new ping.Behaviour({ interval: 100 })
    }))
    .build()
  swarm.behaviour.gossipsub.subscribe(TOPIC)
  swarm.listenOn('/ip4/127.0.0.1/tcp/0')
  return new EventLog(swarm)
}
type Node = Awaited<ReturnType<typeof honest>>

const tick = async (ms = 10): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** A flooder process of `kind`, connected to `victim` (and subscribed, for the raw kinds). */
async function flooder (kind: string, victim: Node) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/flooder.ts', kind, (await addressOf(victim)).toString(), TOPIC], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: child.stdout })
  const waiting: Array<{ line: string, resolve: () => void }> = []
  lines.on('line', (line) => {
    const index = waiting.findIndex(w => w.line === line.trim())
    if (index >= 0) waiting.splice(index, 1)[0].resolve()
  })
  const exited = new Promise<number | null>(resolve => child.on('exit', resolve))
  const expectLine = async (line: string): Promise<void> => {
    const seen = new Promise<void>(resolve => { waiting.push({ line, resolve }) })
    const code = await Promise.race([seen.then(() => 'seen' as const), exited, new Promise<'timeout'>(resolve => setTimeout(() => { resolve('timeout') }, 20_000))])
    if (code !== 'seen') throw new Error(`flooder ${kind}: no "${line}" (${String(code)})`)
  }
  await expectLine('ready')
  return {
    flood: async (): Promise<void> => {
      child.stdin.write('go\n')
      await expectLine('done')
    },
    close: async (): Promise<void> => {
      child.stdin.end()
      const timer = setTimeout(() => { child.kill() }, 5_000)
      await exited
      clearTimeout(timer)
    }
  }
}

describe('floods (127.0.0.1)', function () {
  this.timeout(60_000)
  const closing: Array<{ close: () => Promise<void> }> = []
  afterEach(async () => { await Promise.all(closing.splice(0).map(async n => { await n.close() })) })

  /** a and b meshed; returns them and a function giving a's ping RTTs to b since a point. */
  async function victimAndHonest () {
    const { a, b } = await meshedPair(honest, TOPIC, closing)
    const rttsToB = (from: number): number[] => a.events.slice(from).flatMap(e =>
      e.type === 'Behaviour' && e.event.behaviour === 'ping' && e.event.event.type === 'Success' && e.event.event.peerId.equals(b.swarm.localPeerId) ? [e.event.event.rtt] : [])
    return { a, b, rttsToB }
  }

  /**
   * Run `flood` (which floods for about two seconds) while b publishes 100 messages; then check
   * delivery at a, a's RTTs to b during the flood, and RSS.
   */
  async function underFlood (a: Node, b: Node, rttsToB: (from: number) => number[], flood: () => Promise<void>): Promise<{ rtts: number[] }> {
    const rssBefore = process.memoryUsage().rss
    const from = a.events.length
    const delivered = (): Set<string> => new Set(a.events.slice(from).flatMap(e => e.type === 'Behaviour' && e.event.behaviour === 'gossipsub' && e.event.event.type === 'Message'
      ? [new TextDecoder().decode(e.event.event.message.data)]
      : []))
    const honestTraffic = (async () => {
      for (let i = 0; i < 100; i++) {
        b.swarm.behaviour.gossipsub.publish(TOPIC, new TextEncoder().encode(`honest ${i}`))
        await tick(20)
      }
    })()
    await Promise.all([flood(), honestTraffic])
    await until(() => delivered().size === 100, 15_000, 'every honest message at a')
    const rtts = rttsToB(from)
    const rssGrowthMB = (process.memoryUsage().rss - rssBefore) / (1024 * 1024)
    expect(rtts.length, 'pings during the flood').to.be.at.least(10)
    // The flooder runs on the same two cores: a single ping may meet a scheduling stall of the
    // machine (seen up to ~85 ms under load, with the median at 1–3 ms), so the bound holds for
    // nine pings in ten, and the median must show no queueing at all.
    const sorted = [...rtts].sort((x, y) => x - y)
    const described = `a's ping RTTs to b during the flood: ${rtts.map(r => Math.round(r)).join(', ')}`
    expect(sorted[Math.floor(sorted.length * 0.9)], described).to.be.below(RTT_BOUND_MS)
    expect(sorted[Math.floor(sorted.length / 2)], described).to.be.below(10)
    expect(rssGrowthMB, 'RSS growth (MB)').to.be.below(RSS_BOUND_MB)
    return { rtts }
  }

  /** The flooder of `kind` floods a; for raw kinds, it is a's subscriber first. */
  async function floodedBy (kind: string) {
    const { a, b, rttsToB } = await victimAndHonest()
    const m = await flooder(kind, a)
    closing.push(m)
    const others = (): PeerId[] => a.swarm.connectedPeers().filter(p => !p.equals(b.swarm.localPeerId))
    if (kind !== 'streams') await until(() => a.swarm.behaviour.gossipsub.subscribers(TOPIC).length === 2, 5_000, 'the flooder\'s subscription')
    await underFlood(a, b, rttsToB, m.flood)
    return { a, b, mId: others()[0] }
  }

  it('10,000 invalid messages per second for two seconds', async () => {
    const { a, mId } = await floodedBy('invalid')
    expect(a.swarm.behaviour.gossipsub.peerScore(mId) ?? 0).to.be.below(-80)
  })

  it('100,000 subscriptions', async () => {
    const { a, mId } = await floodedBy('subscriptions')
    const topics = a.swarm.behaviour.gossipsub.allPeers().find(p => p.peerId.equals(mId))?.topics ?? []
    expect(topics.length).to.be.at.most(MAX_TOPICS_PER_PEER)
    expect(topics).to.include(TOPIC)
  })

  it('IHAVE, IWANT and GRAFT storms', async () => {
    const { a, b, mId } = await floodedBy('control')
    // The storm made a distrust the flooder (broken IHAVE promises), not b.
    expect(a.swarm.behaviour.gossipsub.peerScore(mId) ?? 0).to.be.below(0)
    expect(a.swarm.behaviour.gossipsub.peerScore(b.swarm.localPeerId) ?? 0).to.be.at.least(0)
  })

  it('a peer opening thousands of streams', async () => {
    const { a, b } = await floodedBy('streams')
    expect(a.swarm.connectedPeers().some(p => p.equals(b.swarm.localPeerId))).to.equal(true)
  })
})
