/**
 * GossipSub between our swarms and real js-libp2p nodes running `@libp2p/gossipsub` 17: a
 * bipartite network (every link joins one of ours to one of theirs, dialed from both sides), so
 * that every mesh edge, every control message and every forwarded message crosses the boundary.
 * Scoring is on at both ends.
 */
import { authorSeqnoId, jsGossipsubNode } from './js-node.js'
import { createTopicScoreParams } from '@libp2p/gossipsub/score'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'
import { SwarmBuilder, combine, gossipsub, identify } from '../../src/index.js'
import { EventLog } from '../fixtures/event-log.js'
import type { Multiaddr } from '@multiformats/multiaddr'

const TOPIC = 'interop-gossipsub'
const HEARTBEAT_MS = 200
/** Small meshes, so that every node also has peers outside its mesh to gossip to. */
const MESH = { D: 3, Dlo: 2, Dhi: 4, Dscore: 1, Dout: 1, Dlazy: 3 }
/** Messages stay in the gossip window long enough for a node that subscribes late. */
const HISTORY = { length: 15, gossip: 12 }
/** Both ends send IDONTWANT for messages of at least this many bytes (js's default). */
const IDONTWANT_MIN = 512
const WHITELIST = ['127.0.0.1', '::1']
/** The same topic scoring at both ends; no delivery-deficit penalty (traffic is bursty here). */
const TOPIC_SCORE = {
  topicWeight: 1,
  timeInMeshWeight: 0.01,
  timeInMeshQuantum: 1_000,
  timeInMeshCap: 100,
  firstMessageDeliveriesWeight: 1,
  firstMessageDeliveriesDecay: 0.9,
  firstMessageDeliveriesCap: 50,
  meshMessageDeliveriesWeight: 0,
  meshFailurePenaltyWeight: 0,
  invalidMessageDeliveriesWeight: -10,
  invalidMessageDeliveriesDecay: 0.5
}

type Policy = 'StrictSign' | 'StrictNoSign'
type ControlKind = 'graft' | 'prune' | 'ihave' | 'iwant' | 'idontwant'

async function ourNode (policy: Policy) {
  const swarm = await SwarmBuilder.withNewIdentity().withTcp()
    .withBehaviour(key => combine({
      identify: new identify.Behaviour(key.publicKey),
      gossipsub: new gossipsub.Behaviour({
        authenticity: policy === 'StrictSign' ? gossipsub.MessageAuthenticity.signed(key) : gossipsub.MessageAuthenticity.anonymous(),
        meshN: MESH.D,
        meshNLow: MESH.Dlo,
        meshNHigh: MESH.Dhi,
        meshNScore: MESH.Dscore,
        meshOutboundMin: MESH.Dout,
        gossipLazy: MESH.Dlazy,
        heartbeatInterval: HEARTBEAT_MS,
        historyLength: HISTORY.length,
        historyGossip: HISTORY.gossip,
        idontwantMessageThreshold: IDONTWANT_MIN,
        scoreParams: { ipColocationFactorWhitelist: WHITELIST, topics: { [TOPIC]: TOPIC_SCORE } }
      })
    }))
    .build()
  return new EventLog(swarm)
}

async function jsNode (policy: Policy) {
  return jsGossipsubNode({
    ...MESH,
    heartbeatInterval: HEARTBEAT_MS,
    mcacheLength: HISTORY.length,
    mcacheGossip: HISTORY.gossip,
    idontwantMinDataSize: IDONTWANT_MIN,
    globalSignaturePolicy: policy,
    // StrictNoSign: js's default (SHA-256 of the data) is ours too.
    ...(policy === 'StrictSign' ? { msgIdFn: authorSeqnoId } : {}),
    scoreParams: { IPColocationFactorWhitelist: new Set(WHITELIST), topics: { [TOPIC]: createTopicScoreParams(TOPIC_SCORE) } }
  })
}

type JsNode = Awaited<ReturnType<typeof jsNode>>

/** What the js implementation class has beyond its `GossipSub` service interface. */
interface JsInternals {
  getMeshPeers: (topic: string) => string[]
  getScore: (peerId: string) => number
  handleControlMessage: (from: string, control: Record<string, Array<{ backoff?: number }> | undefined>) => Promise<void>
}

/** One node of the mixed network, whatever its implementation. */
interface Member {
  readonly name: string
  readonly peerId: string
  /** Texts of the messages it delivered, in order. */
  readonly received: () => string[]
  readonly publish: (data: Uint8Array) => void
  readonly subscribe: () => void
  readonly unsubscribe: () => void
  readonly subscribers: () => string[]
  readonly meshPeers: () => string[]
  readonly score: (peerId: string) => number
  /** Control entries it received, by kind (all from the other implementation: the network is bipartite). */
  readonly controlReceived: () => Record<ControlKind, number>
  readonly address: () => Promise<Multiaddr>
  readonly dial: (address: Multiaddr) => Promise<void>
  readonly close: () => Promise<void>
}

const decoder = new TextDecoder()

async function ourMember (name: string, policy: Policy): Promise<Member & { readonly node: Awaited<ReturnType<typeof ourNode>> }> {
  const node = await ourNode(policy)
  const pubsub = node.swarm.behaviour.gossipsub
  node.swarm.listenOn('/ip4/127.0.0.1/tcp/0')
  const listening = await node.find(e => e.type === 'NewListenAddr')
  if (listening.type !== 'NewListenAddr') throw new Error('unreachable')
  const address = listening.address.encapsulate(`/p2p/${node.swarm.localPeerId.toString()}`)
  return {
    name,
    node,
    peerId: node.swarm.localPeerId.toString(),
    received: () => node.events.flatMap(e => e.type === 'Behaviour' && e.event.behaviour === 'gossipsub' && e.event.event.type === 'Message'
      ? [decoder.decode(e.event.event.message.data)]
      : []),
    publish: (data) => { pubsub.publish(TOPIC, data) },
    subscribe: () => { pubsub.subscribe(TOPIC) },
    unsubscribe: () => { pubsub.unsubscribe(TOPIC) },
    subscribers: () => pubsub.subscribers(TOPIC).map(p => p.toString()),
    meshPeers: () => pubsub.meshPeers(TOPIC).map(p => p.toString()),
    score: (peerId) => pubsub.peerScore(peerIdFromString(peerId)) ?? Number.NaN,
    controlReceived: () => {
      const c = pubsub.controlCounters()
      return { graft: c.graftReceived, prune: c.pruneReceived, ihave: c.ihaveReceived, iwant: c.iwantReceived, idontwant: c.idontwantReceived }
    },
    address: async () => address,
    dial: async (to) => { node.swarm.dial(to) },
    close: async () => { await node.close() }
  }
}

async function jsMember (name: string, policy: Policy): Promise<Member & { readonly prunes: Array<{ from: string, backoff?: number }> }> {
  const node: JsNode = await jsNode(policy)
  const pubsub = node.services.pubsub
  const internals = pubsub as unknown as JsInternals
  const received: string[] = []
  pubsub.addEventListener('message', (evt) => { if (evt.detail.topic === TOPIC) received.push(decoder.decode(evt.detail.data)) })
  // Count the control entries it receives where the implementation reads them (test-only observation).
  const control: Record<ControlKind, number> = { graft: 0, prune: 0, ihave: 0, iwant: 0, idontwant: 0 }
  const prunes: Array<{ from: string, backoff?: number }> = []
  const handle = internals.handleControlMessage.bind(pubsub)
  internals.handleControlMessage = async (from, msg) => {
    for (const kind of Object.keys(control) as ControlKind[]) control[kind] += msg[kind]?.length ?? 0
    for (const prune of msg.prune ?? []) prunes.push({ from, backoff: prune.backoff })
    await handle(from, msg)
  }
  return {
    name,
    prunes,
    peerId: node.peerId.toString(),
    received: () => received,
    publish: (data) => { void pubsub.publish(TOPIC, data) },
    subscribe: () => { pubsub.subscribe(TOPIC) },
    unsubscribe: () => { pubsub.unsubscribe(TOPIC) },
    subscribers: () => pubsub.getSubscribers(TOPIC).map(p => p.toString()),
    meshPeers: () => internals.getMeshPeers(TOPIC),
    score: (peerId) => internals.getScore(peerId),
    controlReceived: () => ({ ...control }),
    address: async () => multiaddr(node.getMultiaddrs()[0].toString()),
    dial: async (address) => { await node.dial(address) },
    close: async () => { await node.stop() }
  }
}

/** Polls `condition` every 20 ms for at most `timeout` ms. */
async function until (what: string, condition: () => boolean, timeout = 15_000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

function sum (members: readonly Member[], kind: ControlKind): number {
  return members.reduce((total, m) => total + m.controlReceived()[kind], 0)
}

function text (s: string, size = 0): Uint8Array {
  return new TextEncoder().encode(s.padEnd(size, '.'))
}

const N = 5
const PER_PUBLISHER = 10

describe('interop: GossipSub with @libp2p/gossipsub 17 (5 of ours, 5 of js, bipartite)', function () {
  this.timeout(120_000)

  for (const policy of ['StrictSign', 'StrictNoSign'] as const) {
    describe(policy, () => {
      let ours: Array<Awaited<ReturnType<typeof ourMember>>> = []
      let js: Array<Awaited<ReturnType<typeof jsMember>>> = []
      /** The last node of each side subscribes late, to be served by gossip. */
      const early = (): Member[] => [...ours.slice(0, N - 1), ...js.slice(0, N - 1)]

      before(async () => {
        ours = await Promise.all(Array.from({ length: N }, async (_, i) => ourMember(`ours${i}`, policy)))
        js = await Promise.all(Array.from({ length: N }, async (_, i) => jsMember(`js${i}`, policy)))
        for (const m of early()) m.subscribe()
        // Every pair (ours i, js j) linked once, dialed by ours when i + j is even, by js otherwise.
        const dials: Array<Promise<void>> = []
        for (let i = 0; i < N; i++) {
          for (let j = 0; j < N; j++) {
            dials.push((i + j) % 2 === 0 ? ours[i].dial(await js[j].address()) : js[j].dial(await ours[i].address()))
          }
        }
        await Promise.all(dials)
        for (const m of early()) {
          const others = (ours.includes(m as typeof ours[number]) ? js : ours).slice(0, N - 1).map(o => o.peerId)
          await until(`${m.name} knows the other side's subscribers`, () => others.every(p => m.subscribers().includes(p)))
        }
        await until('every mesh has at least D_lo peers', () => early().every(m => m.meshPeers().length >= MESH.Dlo))
      })

      after(async () => {
        await Promise.all([...ours, ...js].map(async m => { await m.close() }))
      })

      it('forms meshes across the implementations and speaks /meshsub/1.2.0 with js', () => {
        for (const m of early()) {
          const other = new Set((ours.includes(m as typeof ours[number]) ? js : ours).map(o => o.peerId))
          expect(m.meshPeers().every(p => other.has(p)), `${m.name}'s mesh`).to.equal(true)
          expect(m.meshPeers().length, `${m.name}'s mesh size`).to.be.within(MESH.Dlo, MESH.Dhi)
        }
        for (const o of ours) {
          for (const j of js) {
            expect(o.node.swarm.behaviour.gossipsub.peerProtocol(peerIdFromString(j.peerId)), `${o.name} with ${j.name}`).to.equal('/meshsub/1.2.0')
          }
        }
        // Whichever side's heartbeat came first grafted the other; the late subscribers below
        // graft in both directions.
        expect(sum(ours, 'graft') + sum(js, 'graft'), 'GRAFTs').to.be.greaterThan(0)
      })

      it('delivers every message to every subscriber exactly once, in both directions', async () => {
        const members = early()
        const expected = new Map<Member, string[]>(members.map(m => [m, []]))
        for (let k = 0; k < PER_PUBLISHER; k++) {
          for (const publisher of members) {
            const body = `${policy} ${publisher.name} #${k}`
            publisher.publish(text(body))
            for (const m of members) if (m !== publisher) expected.get(m)!.push(body)
          }
          await new Promise(resolve => setImmediate(resolve))
        }
        const total = PER_PUBLISHER * (members.length - 1)
        await until('every subscriber got every message', () => members.every(m => m.received().length >= total), 30_000)
        // Duplicates would arrive within a few heartbeats.
        await new Promise(resolve => setTimeout(resolve, 3 * HEARTBEAT_MS))
        for (const m of members) {
          expect(m.received().length, `${m.name} delivered each message once`).to.equal(total)
          expect([...m.received()].sort(), `${m.name} got every message`).to.deep.equal([...expected.get(m)!].sort())
        }
      })

      it('joins across and gossips across: a late subscriber on each side GRAFTs and gets earlier messages by IHAVE and IWANT', async () => {
        const [lateOurs, lateJs] = [ours[N - 1], js[N - 1]]
        const count = (members: Member[]) => ({ graft: sum(members, 'graft'), ihave: sum(members, 'ihave'), iwant: sum(members, 'iwant') })
        const before = { ours: count(ours), js: count(js) }
        const fromOurs = `${policy} before js subscribed`
        const fromJs = `${policy} before ours subscribed`
        ours[0].publish(text(fromOurs))
        js[0].publish(text(fromJs))
        await until('the early nodes have both messages', () => early().every(m => m === ours[0] || m === js[0] || (m.received().includes(fromOurs) && m.received().includes(fromJs))))
        lateOurs.subscribe()
        lateJs.subscribe()
        await until('the late js node got the message of ours', () => lateJs.received().includes(fromOurs), 20_000)
        await until('the late node of ours got the message of js', () => lateOurs.received().includes(fromJs), 20_000)
        await until('the late nodes have grafted', () => lateOurs.meshPeers().length >= MESH.Dlo && lateJs.meshPeers().length >= MESH.Dlo)
        expect(sum(js, 'graft') - before.js.graft, 'GRAFT ours → js').to.be.greaterThan(0)
        expect(sum(ours, 'graft') - before.ours.graft, 'GRAFT js → ours').to.be.greaterThan(0)
        expect(sum(js, 'ihave') - before.js.ihave, 'IHAVE ours → js').to.be.greaterThan(0)
        expect(sum(ours, 'iwant') - before.ours.iwant, 'IWANT js → ours').to.be.greaterThan(0)
        expect(sum(ours, 'ihave') - before.ours.ihave, 'IHAVE js → ours').to.be.greaterThan(0)
        expect(sum(js, 'iwant') - before.js.iwant, 'IWANT ours → js').to.be.greaterThan(0)
        await new Promise(resolve => setTimeout(resolve, 3 * HEARTBEAT_MS))
        expect(lateJs.received().filter(m => m === fromOurs)).to.have.length(1)
        expect(lateOurs.received().filter(m => m === fromJs)).to.have.length(1)
      })

      it('sends IDONTWANT across for large messages, both ways', async () => {
        const before = { ours: sum(ours, 'idontwant'), js: sum(js, 'idontwant') }
        const bodies = [`${policy} large from ours`, `${policy} large from js`]
        ours[1].publish(text(bodies[0], 2 * IDONTWANT_MIN))
        js[1].publish(text(bodies[1], 2 * IDONTWANT_MIN))
        const all = [...ours, ...js]
        await until('every node got both large messages', () => all.every(m =>
          (m === ours[1] || m.received().some(r => r.startsWith(bodies[0]))) && (m === js[1] || m.received().some(r => r.startsWith(bodies[1])))))
        expect(sum(js, 'idontwant') - before.js, 'IDONTWANT ours → js').to.be.greaterThan(0)
        expect(sum(ours, 'idontwant') - before.ours, 'IDONTWANT js → ours').to.be.greaterThan(0)
      })

      it('scores the other implementation\'s honest peers at zero or above, at both ends', () => {
        for (const o of ours) for (const j of js) expect(o.score(j.peerId), `${o.name} scores ${j.name}`).to.be.at.least(0)
        for (const j of js) for (const o of ours) expect(j.score(o.peerId), `${j.name} scores ${o.name}`).to.be.at.least(0)
      })

      it('PRUNEs with the unsubscribe backoff on leaving, and each side honours the other\'s', async () => {
        // Ours leaves: its mesh peers (all js) get a PRUNE with a backoff of 10 s.
        const leaving = ours[2]
        const itsMesh = leaving.meshPeers()
        expect(itsMesh.length).to.be.greaterThan(0)
        leaving.unsubscribe()
        await until('its mesh peers got its PRUNE', () => itsMesh.every(p => js.find(j => j.peerId === p)!.prunes.some(x => x.from === leaving.peerId)))
        for (const p of itsMesh) {
          const prune = js.find(j => j.peerId === p)!.prunes.find(x => x.from === leaving.peerId)!
          expect(prune.backoff, `backoff in the PRUNE to ${p}`).to.equal(10)
        }
        // js leaves: ours in its mesh are pruned and back off from it.
        const jsLeaving = js[2]
        const jsMesh = jsLeaving.meshPeers()
        expect(jsMesh.length).to.be.greaterThan(0)
        const prunesBefore = new Map(ours.map(o => [o, o.controlReceived().prune]))
        jsLeaving.unsubscribe()
        const pruned = ours.filter(o => jsMesh.includes(o.peerId))
        await until('ours in its mesh got its PRUNE', () => pruned.every(o => o.controlReceived().prune > prunesBefore.get(o)!))
        for (const o of pruned) {
          const remaining = o.node.swarm.behaviour.gossipsub.backoffRemaining(TOPIC, peerIdFromString(jsLeaving.peerId))
          expect(remaining, `${o.name} backs off from ${jsLeaving.name} for the 10 s it asked`).to.be.within(5_000, 10_000)
          expect(o.meshPeers()).to.not.include(jsLeaving.peerId)
        }
      })
    })
  }
})

describe('interop: a js-libp2p peer that ours graylists is held, then read again', function () {
  this.timeout(60_000)
  let ours: Awaited<ReturnType<typeof ourMember>>
  let js: Awaited<ReturnType<typeof jsMember>>

  before(async () => {
    ours = await ourMember('ours', 'StrictSign')
    js = await jsMember('js', 'StrictSign')
    ours.subscribe()
    js.subscribe()
    await js.dial(await ours.address())
    await until('each side knows the other\'s subscription', () => ours.subscribers().includes(js.peerId) && js.subscribers().includes(ours.peerId))
  })

  after(async () => {
    await Promise.all([ours, js].map(async m => { await m.close() }))
  })

  it('delivers nothing of it while its score is below the graylist; once the score is back, what it sent meanwhile and after arrives, over the same connection', async () => {
    // js keeps its stream to ours while ours does not read it (its writes wait), and carries on
    // once ours reads again: nothing is reset, no connection closes.
    const pubsub = ours.node.swarm.behaviour.gossipsub
    const jsId = peerIdFromString(js.peerId)
    js.publish(text('before'))
    await until('the first message', () => ours.received().includes('before'))
    pubsub.setApplicationScore(jsId, -100)
    expect(pubsub.peerScore(jsId)).to.be.below(-80)
    // The first message while graylisted is ignored, and holds js's stream. (It may still
    // come back later by gossip, once ours reads js's IHAVEs again.)
    js.publish(text('ignored'))
    await new Promise(resolve => setTimeout(resolve, 5 * HEARTBEAT_MS))
    for (let i = 0; i < 20; i++) js.publish(text(`held ${i}`))
    await new Promise(resolve => setTimeout(resolve, 5 * HEARTBEAT_MS))
    expect(ours.received().filter(t => t !== 'before')).to.deep.equal([])
    pubsub.setApplicationScore(jsId, 0)
    js.publish(text('after'))
    await until('the message after the release', () => ours.received().includes('after'))
    await until('what js sent while held', () => ours.received().filter(t => t.startsWith('held ')).length === 20)
    expect(new Set(ours.received()).size, 'each message once').to.equal(ours.received().length)
    expect(ours.node.swarm.connectedPeers().map(p => p.toString())).to.include(js.peerId)
  })
})
