/**
 * Circuit relay v2 over real TCP on 127.0.0.1: a relay R and peers A and B that only ever dial
 * R. B reserves a slot on R, A dials B through it; ping and a request-response exchange run
 * over the relayed (limited) connection. R's limits: a circuit past its byte or time limit is
 * reset, a reservation is renewed before it expires, and a flood of reservations from one peer
 * (and from one IP address) is refused.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'
import { ConnectionIOError, SwarmBuilder, combine, ping, relay, requestResponse } from '../../src/index.js'
import { readFrame, writeFrame } from '../../src/behaviour/framing.js'
import { EventLog } from '../fixtures/event-log.js'
import { relayNode } from '../fixtures/relay-node.js'
import type {
  ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, Context, NetworkBehaviour, PeerId, Stream, SubstreamProtocol, ToSwarm, Waker
} from '../../src/index.js'
import type { Multiaddr } from '@multiformats/multiaddr'

const PROTOCOL = '/peerswarm-test/relay-echo/1.0.0'
const swarmConfig = { idleConnectionTimeout: 30_000 }

async function startRelay (options: Partial<relay.Config> = {}) {
  return await relayNode(key => combine({ relay: new relay.Behaviour(key, options), ping: new ping.Behaviour() }), swarmConfig)
}

/** A peer with the relay client, ping, and a request-response echo of byte arrays. */
async function clientNode () {
  const swarm = await SwarmBuilder.withNewIdentity()
    .withTcp()
    .withRelayClient()
    .withBehaviour((_key, relayClient) => combine({
      relayClient,
      ping: new ping.Behaviour({ interval: 500 }),
      echo: new requestResponse.Behaviour(requestResponse.bytesCodec({ maxRequestSize: 1 << 20, maxResponseSize: 1 << 20 }), [PROTOCOL])
    }))
    .withSwarmConfig(swarmConfig)
    .build()
  return new EventLog(swarm, (event) => {
    if (event.type !== 'Behaviour' || event.event.behaviour !== 'echo') return
    const inner = event.event.event
    if (inner.type === 'Message' && inner.message.type === 'Request') swarm.behaviour.children.echo.sendResponse(inner.message.channel, inner.message.request)
  })
}

type Client = Awaited<ReturnType<typeof clientNode>>

/** B reserves on the relay; resolves with B's circuit address. */
async function reserve (b: Client, circuit: Multiaddr): Promise<Multiaddr> {
  b.swarm.listenOn(circuit)
  await b.find(e => e.type === 'Behaviour' && e.event.behaviour === 'relayClient' && e.event.event.type === 'ReservationReqAccepted')
  const listening = await b.find(e => e.type === 'NewListenAddr')
  if (listening.type !== 'NewListenAddr') throw new Error('unreachable')
  return listening.address
}

/** A dials B's circuit address; resolves when both sides have the relayed connection. */
async function dialThrough (a: Client, b: Client, address: Multiaddr): Promise<void> {
  a.swarm.dial(address)
  await a.find(e => e.type === 'ConnectionEstablished' && e.peerId.equals(b.swarm.localPeerId))
  await b.find(e => e.type === 'ConnectionEstablished' && e.peerId.equals(a.swarm.localPeerId))
}

describe('circuit relay v2 over TCP (127.0.0.1)', function () {
  this.timeout(60_000)
  let nodes: Array<EventLog<any>> = []
  afterEach(async () => {
    await Promise.all(nodes.map(async node => { await node.close() }))
    nodes = []
  })

  async function setUp (options: Partial<relay.Config> = {}) {
    const r = await startRelay(options)
    const [a, b] = await Promise.all([clientNode(), clientNode()])
    nodes.push(r.log, a, b)
    return { r: r.log, circuit: r.circuit, a, b }
  }

  it('A reaches B through R only: pings and a request-response exchange over a limited connection', async () => {
    const { r, circuit, a, b } = await setUp()
    const address = await reserve(b, circuit)
    expect(address.toString()).to.equal(`${circuit.toString()}/p2p/${b.swarm.localPeerId.toString()}`)
    await dialThrough(a, b, address)

    for (const [node, other] of [[a, b], [b, a]] as const) {
      const established = await node.find(e => e.type === 'ConnectionEstablished' && e.peerId.equals(other.swarm.localPeerId))
      if (established.type !== 'ConnectionEstablished') throw new Error('unreachable')
      expect(established.endpoint.limited).to.equal(true)
      // Every connection between A and B goes through R.
      expect(node.swarm.connections().filter(c => c.peerId.equals(other.swarm.localPeerId)).every(c => c.transport === 'p2p-circuit')).to.equal(true)
      await node.find(e => e.type === 'Behaviour' && e.event.behaviour === 'ping' && e.event.event.type === 'Success' && e.event.event.peerId.equals(other.swarm.localPeerId))
    }
    await r.find(e => e.type === 'Behaviour' && e.event.behaviour === 'relay' && e.event.event.type === 'CircuitReqAccepted')

    const payload = crypto.getRandomValues(new Uint8Array(16 * 1024))
    const id = a.swarm.behaviour.children.echo.sendRequest(b.swarm.localPeerId, payload)
    const answer = await a.find(e => e.type === 'Behaviour' && e.event.behaviour === 'echo' &&
      ((e.event.event.type === 'Message' && e.event.event.message.type === 'Response' && e.event.event.message.requestId === id) ||
        (e.event.event.type === 'OutboundFailure' && e.event.event.requestId === id)))
    if (answer.type !== 'Behaviour' || answer.event.behaviour !== 'echo' || answer.event.event.type !== 'Message' || answer.event.event.message.type !== 'Response') {
      throw new Error('the request failed')
    }
    expect(answer.event.event.message.response).to.deep.equal(payload)
    expect(a.swarm.connectedPeers().map(String).sort()).to.deep.equal([b.swarm.localPeerId, r.swarm.localPeerId].map(String).sort())
  })

  it('R resets a circuit past its byte limit; both ends see the relayed connection close', async () => {
    const { r, circuit, a, b } = await setUp({ maxCircuitBytes: 48 * 1024 })
    await dialThrough(a, b, await reserve(b, circuit))
    const id = a.swarm.behaviour.children.echo.sendRequest(b.swarm.localPeerId, new Uint8Array(64 * 1024))
    const closedEvent = await r.find(e => e.type === 'Behaviour' && e.event.behaviour === 'relay' && e.event.event.type === 'CircuitClosed')
    if (closedEvent.type !== 'Behaviour' || closedEvent.event.behaviour !== 'relay' || closedEvent.event.event.type !== 'CircuitClosed') throw new Error('unreachable')
    expect(closedEvent.event.event.error).to.be.instanceOf(relay.CircuitLimitError).with.property('kind', 'Data')
    for (const [node, other] of [[a, b], [b, a]] as const) {
      const gone = await node.find(e => e.type === 'ConnectionClosed' && e.peerId.equals(other.swarm.localPeerId))
      expect(gone.type === 'ConnectionClosed' && gone.cause).to.be.instanceOf(ConnectionIOError)
    }
    await a.find(e => e.type === 'Behaviour' && e.event.behaviour === 'echo' && e.event.event.type === 'OutboundFailure' && e.event.event.requestId === id)
    // The reservation outlives the circuit: A can reach B again.
    await dialThrough(a, b, multiaddr(`${circuit.toString()}/p2p/${b.swarm.localPeerId.toString()}`))
  })

  it('R resets a circuit past its time limit', async () => {
    const { r, circuit, a, b } = await setUp({ maxCircuitDuration: 1_500 })
    await dialThrough(a, b, await reserve(b, circuit))
    const started = Date.now()
    const closedEvent = await r.find(e => e.type === 'Behaviour' && e.event.behaviour === 'relay' && e.event.event.type === 'CircuitClosed')
    if (closedEvent.type !== 'Behaviour' || closedEvent.event.behaviour !== 'relay' || closedEvent.event.event.type !== 'CircuitClosed') throw new Error('unreachable')
    expect(closedEvent.event.event.error).to.be.instanceOf(relay.CircuitLimitError).with.property('kind', 'Duration')
    expect(Date.now() - started).to.be.lessThan(5_000)
    await a.find(e => e.type === 'ConnectionClosed' && e.peerId.equals(b.swarm.localPeerId))
    await b.find(e => e.type === 'ConnectionClosed' && e.peerId.equals(a.swarm.localPeerId))
  })

  it('B renews its reservation before it expires and stays reachable', async () => {
    const { r, circuit, a, b } = await setUp({ reservationDuration: 2_000 })
    const address = await reserve(b, circuit)
    await b.find(e => e.type === 'Behaviour' && e.event.behaviour === 'relayClient' && e.event.event.type === 'ReservationReqAccepted' && e.event.event.renewal)
    await r.find(e => e.type === 'Behaviour' && e.event.behaviour === 'relay' && e.event.event.type === 'ReservationReqAccepted' && e.event.event.renewed)
    await new Promise(resolve => setTimeout(resolve, 1_000))
    expect(r.events.some(e => e.type === 'Behaviour' && e.event.behaviour === 'relay' && e.event.event.type === 'ReservationTimedOut'), 'no time-out').to.equal(false)
    await dialThrough(a, b, address)
  })

  it('a reservation flood from one peer, then from one IP address, is refused by the limits', async () => {
    const r = await startRelay()
    nodes.push(r.log)
    const relayAddress = r.circuit.decapsulateCode(290)
    // One peer, six connections to R, one RESERVE on each: four are accepted (per peer).
    const flooder = await flooderNode()
    nodes.push(flooder)
    for (let i = 0; i < 6; i++) flooder.swarm.dial({ peerId: r.log.swarm.localPeerId, addresses: [relayAddress], condition: 'always' })
    await waitForStatuses(flooder, 6)
    expect(statusCounts(flooder.swarm.behaviour.statuses)).to.deep.equal({ OK: 4, RESOURCE_LIMIT_EXCEEDED: 2 })
    const denied = r.log.events.filter(e => e.type === 'Behaviour' && e.event.behaviour === 'relay' && e.event.event.type === 'ReservationReqDenied')
    expect(denied).to.have.length(2)
    // Five more peers, all from 127.0.0.1: four fit under the per-IP limit of 8, the fifth does not.
    const others = await Promise.all(Array.from({ length: 5 }, flooderNode))
    nodes.push(...others)
    for (const other of others) {
      other.swarm.dial({ peerId: r.log.swarm.localPeerId, addresses: [relayAddress] })
      await waitForStatuses(other, 1)
    }
    expect(statusCounts(others.flatMap(o => o.swarm.behaviour.statuses))).to.deep.equal({ OK: 4, RESOURCE_LIMIT_EXCEEDED: 1 })
    expect((r.log.swarm.behaviour.children.relay).numReservations).to.equal(8)
  })
})

function statusCounts (statuses: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1
  return counts
}

async function waitForStatuses (node: EventLog<HopFlooder>, count: number): Promise<void> {
  const deadline = Date.now() + 10_000
  while (node.swarm.behaviour.statuses.length < count) {
    if (Date.now() > deadline) throw new Error(`only ${node.swarm.behaviour.statuses.length} of ${count} answers`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

async function flooderNode () {
  const swarm = await SwarmBuilder.withNewIdentity().withTcp().withBehaviour(() => new HopFlooder()).withSwarmConfig(swarmConfig).build()
  return new EventLog(swarm)
}

/**
 * A test peer that sends one raw hop RESERVE on every connection it has and records the
 * relay's status: what a misbehaving client flooding the relay would do.
 */
class HopFlooder implements NetworkBehaviour<never, never, string> {
  readonly statuses: string[] = []
  handleEstablishedInboundConnection (): FloodHandler { return new FloodHandler() }
  handleEstablishedOutboundConnection (): FloodHandler { return new FloodHandler() }
  onSwarmEvent (): void {}
  onConnectionHandlerEvent (_peer: PeerId, _connection: unknown, status: string): void { this.statuses.push(status) }
  poll (): ToSwarm<never, never> | undefined { return undefined }
}

class FloodHandler implements ConnectionHandler<never, string> {
  private asked = false
  private readonly answers: string[] = []
  private waker?: Waker
  private readonly streams = new Set<Stream>()
  listenProtocol (): SubstreamProtocol { return { protocols: [] } }
  connectionKeepAlive (): boolean { return true }
  onBehaviourEvent (): void {}
  onConnectionEvent (event: ConnectionEvent): void {
    if (event.type === 'FullyNegotiatedOutbound') void this.reserve(event.stream)
    if (event.type === 'DialUpgradeError') this.report(`upgrade error: ${event.error.message}`)
  }

  poll (cx: Context): ConnectionHandlerEvent<string> | undefined {
    this.waker = cx.waker
    const answer = this.answers.shift()
    if (answer != null) return { type: 'NotifyBehaviour', event: answer }
    if (this.asked) return undefined
    this.asked = true
    return { type: 'OutboundSubstreamRequest', protocol: { protocols: [relay.HOP_PROTOCOL] } }
  }

  close (): void { for (const stream of this.streams) stream.abort(new Error('closed')) }

  private async reserve (stream: Stream): Promise<void> {
    this.streams.add(stream)
    try {
      await writeFrame(stream, relay.encodeHopMessage({ type: 'RESERVE' }), { maxSize: relay.MAX_MESSAGE_SIZE })
      const answer = relay.decodeHopMessage(await readFrame(stream, { maxSize: relay.MAX_MESSAGE_SIZE }))
      this.report(answer.type === 'STATUS' ? answer.status : answer.type)
    } catch (err) {
      this.report(`error: ${String(err)}`)
    }
  }

  private report (answer: string): void {
    this.answers.push(answer)
    this.waker?.wake()
  }
}
