/**
 * Kademlia on real swarms over the memory transport (Noise, Yamux, the real handler): peers
 * enter routing tables by themselves (the handler confirming the protocol, identify's protocol
 * list and listen addresses), client and server modes, and bad input over streams: oversized
 * messages, junk, floods of streams that never end, with the node still answering honest peers.
 */
import { expect } from 'chai'
import { combine, identify, kad, peerIdOf } from '../../src/index.js'
import { encodeFrame } from '../../src/behaviour/framing.js'
import { connect, driveUntil, listen, newSwarm } from '../../src/testing/index.js'
import { RawKad } from '../fixtures/raw-kad.js'
import type { AnyBehaviour, PeerId, Swarm } from '../../src/index.js'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

type KadSwarm = Swarm<ReturnType<typeof kadBehaviour>>

function kadBehaviour (key: Parameters<typeof peerIdOf>[0], options: Partial<kad.Config> = {}) {
  return combine({ kad: new kad.Behaviour(peerIdOf(key), { mode: 'server', ...options }), identify: new identify.Behaviour(key.publicKey) })
}

async function kadSwarm (options: Partial<kad.Config> = {}): Promise<KadSwarm> {
  return newSwarm(key => kadBehaviour(key, options))
}

function tablePeers (swarm: KadSwarm): Array<{ peerId: PeerId, addresses: readonly unknown[] }> {
  return [...swarm.behaviour.kad.kbuckets()].flatMap(b => b.entries)
}

/** Drive `swarms` until `id`'s last event arrives at `owner`; returns the events of `id`. */
async function runQuery (swarms: ReadonlyArray<Swarm<AnyBehaviour>>, owner: KadSwarm, id: kad.QueryId, timeout = 10_000): Promise<kad.Event[]> {
  const events: kad.Event[] = []
  let done = false
  const controller = new AbortController()
  const timer = setTimeout(() => { controller.abort() }, timeout)
  try {
    await Promise.all(swarms.map(async (swarm) => {
      while (!done) {
        let event
        try {
          event = await swarm.selectNextSome({ signal: controller.signal })
        } catch {
          return
        }
        if (swarm !== owner || event.type !== 'Behaviour') continue
        const tagged = event.event as { behaviour: string, event: kad.Event }
        if (tagged.behaviour !== 'kad') continue
        const e = tagged.event
        if (e.type === 'OutboundQueryProgressed' && e.id === id) {
          events.push(e)
          if (e.step.last) {
            done = true
            controller.abort()
          }
        }
      }
    }))
  } finally {
    clearTimeout(timer)
  }
  if (!done) throw new Error(`query ${id} did not end within ${timeout} ms`)
  return events
}

describe('kad over memory swarms', function () {
  this.timeout(30_000)
  const open: Array<Swarm<never>> = []
  afterEach(async () => { await Promise.all(open.splice(0).map(async s => { await s.close() })) })
  const track = <S>(swarm: S): S => { open.push(swarm as Swarm<never>); return swarm }

  it('puts connected peers in the table without addAddress: the dialed address, or identify\'s listen addresses', async () => {
    const [a, b, c] = await Promise.all([kadSwarm(), kadSwarm(), kadSwarm()]).then(s => s.map(track))
    await listen(c)
    await connect(a, b) // a dialed b: a knows the address; b learns a's from identify
    await connect(c, a) // c dialed a: a learns c's listen address from identify
    await driveUntil([a, b, c], () => tablePeers(a).length === 2 && tablePeers(b).length >= 1 && tablePeers(c).length >= 1)
    for (const entry of tablePeers(a)) expect(entry.addresses.length).to.be.at.least(1)
    expect(tablePeers(b).some(e => e.peerId.equals(a.localPeerId))).to.equal(true)
    // Records and providers go round.
    const put = a.behaviour.kad.putRecord({ key: bytes('/t/k'), value: bytes('v') }, 'all')
    const [putDone] = (await runQuery([a, b, c], a, put)).slice(-1)
    expect(putDone.type === 'OutboundQueryProgressed' && putDone.result.ok).to.not.equal(undefined)
    const get = c.behaviour.kad.getRecord(bytes('/t/k'))
    const found = (await runQuery([a, b, c], c, get)).filter(e => e.type === 'OutboundQueryProgressed' && e.result.type === 'GetRecord' && e.result.ok?.type === 'FoundRecord')
    expect(found.length).to.be.at.least(1)
    const provide = b.behaviour.kad.startProviding(bytes('content'))
    await runQuery([a, b, c], b, provide)
    const providers = (await runQuery([a, b, c], c, c.behaviour.kad.getProviders(bytes('content'))))
      .flatMap(e => e.type === 'OutboundQueryProgressed' && e.result.type === 'GetProviders' && e.result.ok?.type === 'FoundProviders' ? e.result.ok.providers : [])
    expect(providers.some(p => p.peerId.equals(b.localPeerId) && p.addresses.length > 0)).to.equal(true)
  })

  it('a client does not listen on the protocol and stays out of tables, but can query; it serves once an external address is confirmed', async () => {
    const server = track(await kadSwarm())
    const client = track(await kadSwarm({ mode: undefined }))
    expect(client.behaviour.kad.mode()).to.equal('client')
    await connect(client, server)
    await driveUntil([client, server], () => tablePeers(client).length === 1)
    const id = client.behaviour.kad.getClosestPeers(bytes('x'))
    await runQuery([client, server], client, id)
    expect(tablePeers(server)).to.have.length(0)
    // The server cannot store a record at a client: the negotiation fails.
    const refused = server.behaviour.kad.putRecordTo({ key: bytes('/t/x'), value: bytes('y') }, [client.localPeerId], 'one')
    const [failed] = (await runQuery([client, server], server, refused)).slice(-1)
    expect(failed.type === 'OutboundQueryProgressed' && failed.result.error).to.be.instanceOf(kad.PutRecordError)
    // A confirmed external address makes it a server: its handlers now accept Kademlia streams.
    client.addExternalAddress(await listen(client))
    await driveUntil([client, server], () => client.behaviour.kad.mode() === 'server')
    const toClient = server.behaviour.kad.putRecordTo({ key: bytes('/t/x'), value: bytes('y') }, [client.localPeerId], 'one')
    const [stored] = (await runQuery([client, server], server, toClient)).slice(-1)
    expect(stored.type === 'OutboundQueryProgressed' && stored.result.ok).to.not.equal(undefined)
  })

  it('resets oversized, undecodable and surplus streams, times out idle ones, and keeps answering honest peers', async () => {
    const victim = track(await kadSwarm({ maxPacketSize: 1024, maxInboundStreams: 4, substreamsTimeout: 1_000 }))
    const honest = track(await kadSwarm())
    const attacker = track(await newSwarm(() => new RawKad()))
    await connect(attacker, victim)
    await connect(honest, victim)
    await driveUntil([victim, honest, attacker], () => tablePeers(honest).length === 1)

    const raw = attacker.behaviour
    const oversized = raw.send(victim.localPeerId, encodeFrame(new Uint8Array(2_000)))
    const junk = raw.send(victim.localPeerId, encodeFrame(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3])))
    const valid = raw.send(victim.localPeerId, encodeFrame(kad.encodeMessage({ type: 'FIND_NODE', key: bytes('k'), closerPeers: [], providerPeers: [] })))
    await driveUntil([victim, honest, attacker], () => [oversized, junk, valid].every(id => raw.answers.has(id)))
    expect(raw.answers.get(oversized)?.error).to.be.instanceOf(Error)
    expect(raw.answers.get(junk)?.error).to.be.instanceOf(Error)
    expect(raw.answers.get(valid)?.error).to.equal(undefined)
    expect(raw.answers.get(valid)?.bytes.byteLength).to.be.above(0)

    // Ten streams that never end: four are served (then time out), the rest reset at once.
    const heldAt = performance.now()
    const held = Array.from({ length: 10 }, () => raw.send(victim.localPeerId, new Uint8Array([5]), true))
    await driveUntil([victim, honest, attacker], () => held.filter(id => raw.answers.has(id)).length >= 6, { timeout: 5_000 })
    const query = honest.behaviour.kad.getClosestPeers(bytes('still there'))
    const [end] = (await runQuery([victim, honest, attacker], honest, query)).slice(-1)
    expect(end.type === 'OutboundQueryProgressed' && end.result.ok).to.not.equal(undefined)
    await driveUntil([victim, honest, attacker], () => held.every(id => raw.answers.has(id)), { timeout: 10_000 })
    // The served ones were reset at the idle timeout (1 s), not before.
    expect(performance.now() - heldAt).to.be.at.least(1_000)
  })
})
