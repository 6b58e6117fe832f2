/**
 * Graceful shutdown over the memory transport: `close()` says what the protocols say on leaving
 * (GossipSub PRUNE and unsubscription, FloodSub unsubscription), sends what was queued before
 * it, stays bounded when a handler cannot drain, and is harmless to call twice.
 */
import { expect } from 'chai'
import { SwarmClosedError, combine, dummy, floodsub, gossipsub } from '../../src/index.js'
import { DummyHandler } from '../../src/behaviour/dummy.js'
import { connect, drive, driveUntil, newSwarm } from '../../src/testing/index.js'
import { RawPubsub } from '../fixtures/raw-pubsub.js'
import type { Keypair, Swarm } from '../../src/index.js'
import type { AnyBehaviour } from '../../src/behaviour/network-behaviour.js'

const topic = new gossipsub.IdentTopic('leaving')
const text = (s: string): Uint8Array => new TextEncoder().encode(s)

function gossip (key: Keypair) {
  return combine({
    gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), heartbeatInterval: 100, heartbeatInitialDelay: 10 })
  })
}

function flood (key: Keypair) {
  return combine({ floodsub: new floodsub.Behaviour({ authenticity: floodsub.MessageAuthenticity.signed(key) }) })
}

/** Distinct message texts in `events` (Behaviour → Message events of any pubsub child). */
function messageTexts (events: ReadonlyArray<{ type: string, event?: unknown }>): string[] {
  const texts = new Set<string>()
  for (const e of events) {
    const inner = (e.event as { event?: { type: string, message?: { data: Uint8Array } } } | undefined)?.event
    if (inner?.type === 'Message' && inner.message != null) texts.add(new TextDecoder().decode(inner.message.data))
  }
  return [...texts].sort()
}

describe('graceful shutdown', function () {
  this.timeout(20_000)
  const swarms: Array<Swarm<AnyBehaviour>> = []
  afterEach(async () => { await Promise.all(swarms.splice(0).map(async s => { await s.close() })) })

  // The same check for both pubsub behaviours: each case makes a swarm, and reads its pubsub
  // child and whether it is ready to publish to the other swarm.
  interface PubsubCase {
    readonly name: string
    readonly make: () => Promise<Swarm<AnyBehaviour>>
    readonly pubsub: (s: Swarm<AnyBehaviour>) => { subscribe: (t: gossipsub.IdentTopic) => unknown, publish: (t: gossipsub.IdentTopic, data: Uint8Array) => unknown }
    readonly ready: (s: Swarm<AnyBehaviour>) => boolean
  }
  const cases: PubsubCase[] = [
    {
      name: 'gossipsub',
      make: async () => await newSwarm(gossip) as unknown as Swarm<AnyBehaviour>,
      pubsub: s => (s as unknown as Swarm<ReturnType<typeof gossip>>).behaviour.gossipsub,
      ready: s => (s as unknown as Swarm<ReturnType<typeof gossip>>).behaviour.gossipsub.meshPeers(topic).length === 1
    },
    {
      name: 'floodsub',
      make: async () => await newSwarm(flood) as unknown as Swarm<AnyBehaviour>,
      pubsub: s => (s as unknown as Swarm<ReturnType<typeof flood>>).behaviour.floodsub,
      ready: s => (s as unknown as Swarm<ReturnType<typeof flood>>).behaviour.floodsub.subscribers(topic).length === 1
    }
  ]
  for (const c of cases) {
    it(`${c.name}: messages published just before close() all arrive`, async () => {
      const a = await c.make()
      const b = await c.make()
      swarms.push(a, b)
      for (const s of [a, b]) c.pubsub(s).subscribe(topic)
      await connect(a, b)
      await driveUntil([a, b], () => c.ready(a) && c.ready(b))
      const sent = Array.from({ length: 50 }, (_, i) => `m${String(i).padStart(2, '0')}`)
      for (const m of sent) c.pubsub(a).publish(topic, text(m))
      // Nobody polls a again: close() alone must carry the queued messages out.
      const [received] = await Promise.all([
        drive([b], { count: 50, filter: e => messageTexts([e]).length === 1 }),
        a.close()
      ])
      expect(messageTexts(received[0])).to.deep.equal(sent)
    })
  }

  it('gossipsub: close() PRUNEs the mesh with the unsubscribe backoff and unsubscribes, before the connection closes', async () => {
    const ours = await newSwarm(gossip)
    const raw = await newSwarm(() => new RawPubsub(['/meshsub/1.1.0']))
    swarms.push(ours, raw)
    ours.behaviour.gossipsub.subscribe(topic)
    await connect(raw, ours)
    await drive([raw], { count: 1, filter: e => e.type === 'Behaviour' && e.event.type === 'Ready' })
    raw.behaviour.send(ours.localPeerId, { subscriptions: [{ subscribe: true, topicid: topic.hash }], control: { graft: [{ topicID: topic.hash }] } })
    await driveUntil([ours, raw], () => ours.behaviour.gossipsub.meshPeers(topic).length === 1)

    await Promise.all([ours.close(), driveUntil([raw], () => raw.connectedPeers().length === 0)])
    const rpcs = raw.behaviour.from(ours.localPeerId)
    const prunes = rpcs.flatMap(r => r.control?.prune ?? [])
    const unsubscriptions = rpcs.flatMap(r => r.subscriptions ?? []).filter(s => s.subscribe === false)
    expect(prunes.map(p => [p.topicID, p.backoff])).to.deep.equal([[topic.hash, 10]])
    expect(unsubscriptions.map(s => s.topicid)).to.deep.equal([topic.hash])
  })

  it('floodsub: close() unsubscribes from every topic, relayed ones included', async () => {
    const ours = await newSwarm(flood)
    const raw = await newSwarm(() => new RawPubsub(['/floodsub/1.0.0']))
    swarms.push(ours, raw)
    const relayed = new floodsub.IdentTopic('relayed')
    ours.behaviour.floodsub.subscribe(topic)
    ours.behaviour.floodsub.relay(relayed)
    await connect(raw, ours)
    await drive([raw], { count: 1, filter: e => e.type === 'Behaviour' && e.event.type === 'Ready' })
    await Promise.all([ours.close(), driveUntil([raw], () => raw.connectedPeers().length === 0)])
    const unsubscribed = raw.behaviour.from(ours.localPeerId).flatMap(r => r.subscriptions ?? []).filter(s => s.subscribe === false)
    expect(unsubscribed.map(s => s.topicid).sort()).to.deep.equal([relayed.hash, topic.hash].sort())
  })

  it('a handler that never drains holds close() for drainTimeout at most', async () => {
    class Stuck extends DummyHandler {
      async drain (): Promise<void> { await new Promise<void>(() => {}) }
    }
    const stuck = Object.assign(dummy(), {
      handleEstablishedInboundConnection: () => new Stuck(),
      handleEstablishedOutboundConnection: () => new Stuck()
    })
    const a = await newSwarm(() => stuck, { drainTimeout: 300, idleConnectionTimeout: Infinity })
    const b = await newSwarm(() => dummy(), { idleConnectionTimeout: Infinity })
    swarms.push(a, b)
    await connect(a, b)
    // Resolves (the mocha timeout would catch a hang), and the peer sees the connection go.
    await Promise.all([a.close(), driveUntil([b], () => b.connectedPeers().length === 0)])
    expect(a.connectedPeers()).to.deep.equal([])
  })

  it('a behaviour that fails while saying goodbye does not stop close()', async () => {
    let leaving = false
    const failing = Object.assign(dummy(), {
      shutdown: () => { leaving = true },
      poll: () => {
        if (leaving) throw new Error('broken behaviour')
        return undefined
      }
    })
    const a = await newSwarm(() => failing)
    const b = await newSwarm(() => dummy())
    swarms.push(b)
    await connect(a, b)
    await a.close()
    await a.close()
    expect(a.connectedPeers()).to.deep.equal([])
  })

  it('a second close() waits for the first; selectNextSome rejects once closing; await using closes', async () => {
    const a = await newSwarm(gossip)
    const b = await newSwarm(gossip)
    swarms.push(b)
    await connect(a, b)
    const first = a.close()
    const second = a.close()
    let firstDone = false
    void first.then(() => { firstDone = true })
    await second
    expect(firstDone).to.equal(true)
    await a.close()
    let error: unknown
    try { await a.selectNextSome() } catch (err) { error = err }
    expect(error).to.be.instanceOf(SwarmClosedError)

    let scoped: Swarm<AnyBehaviour> | undefined
    {
      await using c = await newSwarm(gossip)
      scoped = c
      await connect(c, b)
    }
    let scopedError: unknown
    try { await scoped.selectNextSome() } catch (err) { scopedError = err }
    expect(scopedError).to.be.instanceOf(SwarmClosedError)
  })
})
