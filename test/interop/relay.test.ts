/**
 * Circuit relay v2 with js-libp2p (`@libp2p/circuit-relay-v2`), over TCP on 127.0.0.1: a js
 * relay serving our clients, and our relay serving js clients; through each, relayed dials go
 * both ways between our peers and js peers, and ping runs over the relayed connection.
 */
import '../../src/compat.js'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify as jsIdentify } from '@libp2p/identify'
import { ping as jsPing } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'
import { createLibp2p } from 'libp2p'
import { SwarmBuilder, combine, identify, ping, relay } from '../../src/index.js'
import { EventLog } from '../fixtures/event-log.js'
import { relayNode } from '../fixtures/relay-node.js'
import type { Multiaddr } from '@multiformats/multiaddr'

const allow = { allow: ['/ip4/127.0.0.0/ipcidr/8'] }

async function jsRelay () {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: jsIdentify(), ping: jsPing(), relay: circuitRelayServer() },
    connectionManager: allow
  })
}

/** A js peer with the relay transport; `listen` may hold a circuit address to reserve on. */
async function jsClient (listen: readonly Multiaddr[] = []) {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0', ...listen.map(String)] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: jsIdentify(), ping: jsPing() },
    connectionManager: allow
  })
}

type JsNode = Awaited<ReturnType<typeof jsClient>> | Awaited<ReturnType<typeof jsRelay>>

async function ourRelay () {
  const { log } = await relayNode(key => combine({ relay: new relay.Behaviour(key), identify: new identify.Behaviour(key.publicKey), ping: new ping.Behaviour() }))
  return log
}

async function ourClient () {
  const swarm = await SwarmBuilder.withNewIdentity()
    .withTcp()
    .withRelayClient()
    .withBehaviour((key, relayClient) => combine({ relayClient, identify: new identify.Behaviour(key.publicKey), ping: new ping.Behaviour({ interval: 500 }) }))
    .withSwarmConfig({ idleConnectionTimeout: 30_000 })
    .build()
  return new EventLog(swarm)
}

type OurClient = Awaited<ReturnType<typeof ourClient>>

/** The relay's circuit address (without a destination). */
function circuitOf (address: Multiaddr, relayId: string): Multiaddr {
  const withId = address.getComponents().some(c => c.name === 'p2p') ? address : address.encapsulate(`/p2p/${relayId}`)
  return withId.encapsulate('/p2p-circuit')
}

/** Our client reserves a slot on the relay at `circuit`. */
async function reserveOurs (node: OurClient, circuit: Multiaddr): Promise<Multiaddr> {
  node.swarm.listenOn(circuit)
  await node.find(e => e.type === 'Behaviour' && e.event.behaviour === 'relayClient' && e.event.event.type === 'ReservationReqAccepted', 15_000)
  const listening = await node.find(e => e.type === 'NewListenAddr')
  if (listening.type !== 'NewListenAddr') throw new Error('unreachable')
  return listening.address
}

/** Our client dials `address` (through a relay) and pings the peer there over the limited connection. */
async function dialAndPing (node: OurClient, address: Multiaddr, peer: string): Promise<void> {
  node.swarm.dial(address)
  const established = await node.find(e => e.type === 'ConnectionEstablished' && e.peerId.toString() === peer, 15_000)
  expect(established.type === 'ConnectionEstablished' && established.endpoint.limited).to.equal(true)
  await node.find(e => e.type === 'Behaviour' && e.event.behaviour === 'ping' && e.event.event.type === 'Success' && e.event.event.peerId.toString() === peer, 15_000)
}

/** A js node pings `address` through a relay; resolves with the round-trip time. */
async function jsPingThrough (node: JsNode, address: Multiaddr): Promise<number> {
  return node.services.ping.ping(address, { signal: AbortSignal.timeout(15_000) })
}

/** Until js's reservation on the relay shows up in its own addresses. */
async function jsCircuitAddress (node: JsNode, relayId: string): Promise<Multiaddr> {
  const deadline = Date.now() + 15_000
  for (;;) {
    const address = node.getMultiaddrs().find(a => a.toString().includes(`/p2p/${relayId}/p2p-circuit`))
    if (address != null) return address
    if (Date.now() > deadline) throw new Error('the js peer made no reservation')
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

describe('interop with js-libp2p: circuit relay v2', function () {
  this.timeout(60_000)
  const stops: Array<() => Promise<void>> = []
  afterEach(async () => {
    await Promise.all(stops.splice(0).map(async stop => { await stop() }))
  })

  it('a js relay serves our clients: ours to ours, js to ours, ours to js', async () => {
    const js = await jsRelay()
    stops.push(async () => { await js.stop() })
    const relayId = js.peerId.toString()
    const circuit = circuitOf(js.getMultiaddrs()[0], relayId)
    const [a, b] = await Promise.all([ourClient(), ourClient()])
    stops.push(async () => { await a.close() }, async () => { await b.close() })

    const bAddress = await reserveOurs(b, circuit)
    const accepted = await b.find(e => e.type === 'Behaviour' && e.event.behaviour === 'relayClient' && e.event.event.type === 'ReservationReqAccepted')
    if (accepted.type !== 'Behaviour' || accepted.event.behaviour !== 'relayClient' || accepted.event.event.type !== 'ReservationReqAccepted') throw new Error('unreachable')
    expect(accepted.event.event.relayPeerId.toString()).to.equal(relayId)
    expect(accepted.event.event.limit?.data).to.equal(131_072)
    // js announces its 2 minutes as 120,000 in the field the spec gives in seconds.
    expect(accepted.event.event.limit?.duration).to.equal(120_000 * 1000)
    expect(js.services.relay.reservations.size).to.equal(1)

    // Ours to ours through the js relay.
    await dialAndPing(a, bAddress, b.swarm.localPeerId.toString())
    // js to ours.
    const jsA = await jsClient()
    stops.push(async () => { await jsA.stop() })
    expect(await jsPingThrough(jsA, bAddress)).to.be.a('number')
    await b.find(e => e.type === 'ConnectionEstablished' && e.peerId.equals(jsA.peerId) && e.endpoint.limited === true)
    // Ours to js: a js peer reserves on the js relay, our A dials it.
    const jsB = await jsClient([circuit])
    stops.push(async () => { await jsB.stop() })
    const jsBAddress = await jsCircuitAddress(jsB, relayId)
    await dialAndPing(a, jsBAddress, jsB.peerId.toString())
  })

  it('our relay serves js clients: js to js, ours to js, js to ours', async () => {
    const r = await ourRelay()
    stops.push(async () => { await r.close() })
    const relayId = r.swarm.localPeerId.toString()
    const circuit = circuitOf(r.swarm.listeners()[0], relayId)

    const jsB = await jsClient([circuit])
    stops.push(async () => { await jsB.stop() })
    const jsBAddress = await jsCircuitAddress(jsB, relayId)
    const reserved = await r.find(e => e.type === 'Behaviour' && e.event.behaviour === 'relay' && e.event.event.type === 'ReservationReqAccepted')
    expect(reserved.type === 'Behaviour' && reserved.event.behaviour === 'relay' && reserved.event.event.type === 'ReservationReqAccepted' && reserved.event.event.srcPeerId.equals(jsB.peerId)).to.equal(true)

    // js to js through our relay.
    const jsA = await jsClient()
    stops.push(async () => { await jsA.stop() })
    expect(await jsPingThrough(jsA, jsBAddress)).to.be.a('number')
    await r.find(e => e.type === 'Behaviour' && e.event.behaviour === 'relay' && e.event.event.type === 'CircuitReqAccepted' && e.event.event.srcPeerId.equals(jsA.peerId))
    // Ours to js.
    const a = await ourClient()
    stops.push(async () => { await a.close() })
    await dialAndPing(a, multiaddr(`${circuit.toString()}/p2p/${jsB.peerId.toString()}`), jsB.peerId.toString())
    // js to ours.
    const b = await ourClient()
    stops.push(async () => { await b.close() })
    const bAddress = await reserveOurs(b, circuit)
    expect(await jsPingThrough(jsA, bAddress)).to.be.a('number')
    await b.find(e => e.type === 'Behaviour' && e.event.behaviour === 'relayClient' && e.event.event.type === 'InboundCircuitEstablished' && e.event.event.srcPeerId.equals(jsA.peerId))
  })
})
