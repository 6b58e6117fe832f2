/**
 * DCUtR with stock js-libp2p 3.3.11 (`@libp2p/dcutr` 3.0.28), over TCP on 127.0.0.1 through our
 * relay, both ways. Stock js cannot hole punch over TCP (docs/nat-traversal.md; js-libp2p issue
 * 2620): it counts 127/8 (and every test range) as private and sends only addresses its address
 * manager verified. What must hold: the exchange starts and fails cleanly on our side with a
 * typed `dcutr.DcutrError`, no direct connection appears, and the relayed connection stays and
 * carries pings.
 *
 * Our peers declare 127/8 global (`isGlobal`) so that they send their observed addresses and
 * accept js's: the exchange then gets as far as the js side lets it.
 */
import '../../src/compat.js'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr as jsDcutr } from '@libp2p/dcutr'
import { identify as jsIdentify } from '@libp2p/identify'
import { ping as jsPing } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'
import { createLibp2p } from 'libp2p'
import { SwarmBuilder, combine, dcutr, identify, inIpv4Range, peerIdOf, ping, relay } from '../../src/index.js'
import { EventLog } from '../fixtures/event-log.js'
import { relayNode } from '../fixtures/relay-node.js'
import type { Multiaddr } from '@multiformats/multiaddr'

const allow = { allow: ['/ip4/127.0.0.0/ipcidr/8'] }
const LOOPBACK = (address: Multiaddr): boolean => inIpv4Range(address, '127.0.0.0/8')

/** A stock js peer with the relay transport and DCUtR; `listen` may hold a circuit address. */
async function jsPeer (listen: readonly Multiaddr[] = []) {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0', ...listen.map(String)] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: jsIdentify(), ping: jsPing(), dcutr: jsDcutr() },
    connectionManager: allow
  })
}

async function ourRelay () {
  return await relayNode(key => combine({ relay: new relay.Behaviour(key), identify: new identify.Behaviour(key.publicKey) }))
}

async function ourPeer () {
  const swarm = await SwarmBuilder.withNewIdentity()
    .withTcp({ dialPort: 0 })
    .withRelayClient()
    .withBehaviour((key, relayClient) => combine({
      relayClient,
      identify: new identify.Behaviour(key.publicKey),
      ping: new ping.Behaviour({ interval: 300 }),
      dcutr: new dcutr.Behaviour(peerIdOf(key), { isGlobal: LOOPBACK })
    }))
    .withSwarmConfig({ idleConnectionTimeout: 30_000 })
    .build()
  return new EventLog(swarm)
}

type Ours = Awaited<ReturnType<typeof ourPeer>>

function dcutrFailure (e: { type: string, event?: unknown }): boolean {
  const tagged = e.event as { behaviour?: string, event?: dcutr.Event } | undefined
  return e.type === 'Behaviour' && tagged?.behaviour === 'dcutr' && tagged.event?.result.ok === false
}

/** Every connection of `ours` to `peer` is relayed, and one carries a ping after the failure. */
async function relayedStays (ours: Ours, peer: string): Promise<void> {
  const connections = ours.swarm.connections().filter(c => c.peerId.toString() === peer)
  expect(connections.length).to.be.at.least(1)
  expect(connections.every(c => c.endpoint.limited === true && c.transport === 'p2p-circuit')).to.equal(true)
  const ids = new Set(connections.map(c => c.id))
  ours.clear()
  await ours.find(e => e.type === 'Behaviour' && e.event.behaviour === 'ping' && e.event.event.type === 'Success' &&
    e.event.event.peerId.toString() === peer && ids.has(e.event.event.connectionId), 10_000)
}

describe('interop with js-libp2p: DCUtR (stock js cannot hole punch; it must fail cleanly)', function () {
  this.timeout(60_000)
  const stops: Array<() => Promise<void>> = []
  afterEach(async () => {
    await Promise.all(stops.splice(0).map(async stop => { await stop() }))
  })

  it('a js peer dials ours through the relay: our exchange fails with a typed error, the relayed connection stays', async () => {
    const r = await ourRelay()
    stops.push(async () => { await r.log.close() })
    const b = await ourPeer()
    stops.push(async () => { await b.close() })
    b.swarm.listenOn(r.circuit)
    const listening = await b.find(e => e.type === 'NewListenAddr' && e.address.toString().includes('p2p-circuit'), 15_000)
    if (listening.type !== 'NewListenAddr') throw new Error('unreachable')
    // identify told b the address the relay sees it at: the candidate it sends.
    await b.find(e => e.type === 'NewExternalAddrCandidate', 10_000)
    expect(b.swarm.behaviour.children.dcutr.candidateAddresses().length).to.be.at.least(1)

    const js = await jsPeer()
    stops.push(async () => { await js.stop() })
    expect(await js.services.ping.ping(listening.address, { signal: AbortSignal.timeout(15_000) })).to.be.a('number')

    // We accepted the relayed connection: we start the exchange; js refuses our 127/8 addresses.
    const failed = await b.find(dcutrFailure, 20_000)
    if (failed.type !== 'Behaviour' || failed.event.behaviour !== 'dcutr' || failed.event.event.result.ok) throw new Error('unreachable')
    expect(failed.event.event.remotePeerId.equals(js.peerId)).to.equal(true)
    const error = failed.event.event.result.error
    expect(error).to.be.instanceOf(dcutr.DcutrError)
    expect(error.kind).to.equal('OutboundError')
    expect(error.code).to.equal('ERR_DCUTR_OUTBOUND_ERROR')
    // js read our CONNECT, found only private addresses in it and reset the stream.
    expect(error.failure).to.equal('Io')
    expect(error.message).to.include('reading CONNECT')
    await relayedStays(b, js.peerId.toString())
    expect(js.getConnections(b.swarm.localPeerId).every(c => c.limits != null || c.remoteAddr.toString().includes('p2p-circuit'))).to.equal(true)
  })

  it('ours dials a js peer through the relay: js starts the exchange, ours answers, it fails cleanly, the relayed connection stays', async () => {
    const r = await ourRelay()
    stops.push(async () => { await r.log.close() })
    const js = await jsPeer([r.circuit])
    stops.push(async () => { await js.stop() })
    const deadline = Date.now() + 15_000
    let jsAddress: Multiaddr | undefined
    while ((jsAddress = js.getMultiaddrs().find(a => a.toString().includes('p2p-circuit'))) == null) {
      if (Date.now() > deadline) throw new Error('the js peer made no reservation')
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    const a = await ourPeer()
    stops.push(async () => { await a.close() })
    a.swarm.dial(jsAddress)
    await a.find(e => e.type === 'ConnectionEstablished' && e.peerId.equals(js.peerId) && e.endpoint.limited === true, 15_000)

    // js (the relayed connection's listener) opens /libp2p/dcutr and sends CONNECT with its
    // addresses; we parse it, answer CONNECT with ours, and js, finding ours private, gives up
    // before SYNC: an inbound error on our side, each of js's attempts.
    const failed = await a.find(dcutrFailure, 30_000)
    if (failed.type !== 'Behaviour' || failed.event.behaviour !== 'dcutr' || failed.event.event.result.ok) throw new Error('unreachable')
    const error = failed.event.event.result.error
    expect(error).to.be.instanceOf(dcutr.DcutrError)
    expect(error.kind).to.equal('InboundError')
    // Not NoAddresses or MalformedMessage: js's CONNECT decoded and carried an address we
    // take, we answered, and js reset the stream instead of sending SYNC.
    expect(error.failure).to.equal('Io')
    expect(error.message).to.include('reading SYNC')
    await relayedStays(a, js.peerId.toString())
  })
})
