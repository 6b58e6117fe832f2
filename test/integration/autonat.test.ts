/**
 * AutoNAT v2 over real TCP on 127.0.0.1, with an address policy that declares 127.0.0.0/8
 * global for this test only (the default refuses loopback addresses, on both sides). A client
 * A and a server S: A's listen address is confirmed (S dials it back on a new connection), the
 * address S observes A at (A's ephemeral dial port, where nothing listens) is not, and an
 * address on another loopback IP (127.0.0.2) costs A the dial data first.
 */
import { expect } from 'chai'
import { SwarmBuilder, autonat, combine, identify, inIpv4Range } from '../../src/index.js'
import { EventLog } from '../fixtures/event-log.js'
import type { Multiaddr, SwarmEvent } from '../../src/index.js'

const loopbackIsGlobal = (address: Multiaddr): boolean => inIpv4Range(address, '127.0.0.0/8')

async function node (listen: string[]) {
  const swarm = await SwarmBuilder.withNewIdentity()
    .withTcp()
    .withBehaviour(key => combine({
      identify: new identify.Behaviour(key.publicKey),
      client: new autonat.v2.client.Behaviour({ isGlobal: loopbackIsGlobal, probeInterval: 200 }),
      server: new autonat.v2.server.Behaviour({ isGlobal: loopbackIsGlobal })
    }))
    .withSwarmConfig({ idleConnectionTimeout: 30_000 })
    .build()
  const log = new EventLog(swarm)
  const addresses: Multiaddr[] = []
  for (const address of listen) {
    const id = swarm.listenOn(address)
    const event = await log.find(e => e.type === 'NewListenAddr' && e.listenerId === id)
    if (event.type === 'NewListenAddr') addresses.push(event.address)
  }
  return { swarm, log, addresses }
}

type Node = Awaited<ReturnType<typeof node>>

function clientResult (log: Node['log'], tested: (address: string) => boolean) {
  return async (): Promise<autonat.v2.client.Event> => {
    const event = await log.find(e => e.type === 'Behaviour' && e.event.behaviour === 'client' && tested(e.event.event.testedAddr.toString()), 20_000)
    if (event.type !== 'Behaviour' || event.event.behaviour !== 'client') throw new Error('unreachable')
    return event.event.event
  }
}

describe('AutoNAT v2 over TCP on 127.0.0.1', function () {
  this.timeout(40_000)
  let nodes: Node[] = []
  afterEach(async () => {
    await Promise.all(nodes.map(async n => { await n.log.close() }))
    nodes = []
  })

  it('confirms a dialable listen address, not the observed ephemeral port; another IP costs dial data', async () => {
    const s = await node(['/ip4/127.0.0.1/tcp/0'])
    const a = await node(['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.2/tcp/0'])
    nodes.push(s, a)
    const [listen1, listen2] = a.addresses as [Multiaddr, Multiaddr]
    a.swarm.dial(s.addresses[0] as Multiaddr)

    // Identify gives A the address S sees it at: its ephemeral dial port, where nobody listens.
    const candidate = await a.log.find(e => e.type === 'NewExternalAddrCandidate')
    if (candidate.type !== 'NewExternalAddrCandidate') throw new Error('unreachable')
    const observed = await clientResult(a.log, t => t === candidate.address.toString())()
    if (observed.result.ok) throw new Error('the ephemeral port was confirmed')
    expect(observed.result.error.kind).to.equal('AddressNotReachable')
    expect(observed.server.equals(s.swarm.localPeerId)).to.equal(true)
    expect(observed.bytesSent).to.equal(0)

    a.swarm.behaviour.children.client.probeAddress(listen1)
    const confirmed = await clientResult(a.log, t => t === listen1.toString())()
    expect(confirmed.result).to.deep.equal({ ok: true })
    expect(confirmed.bytesSent).to.equal(0)
    expect(a.swarm.externalAddresses().map(String)).to.include(listen1.toString())

    // 127.0.0.2 is not the IP S observes A at (127.0.0.1): S asks for dial data first.
    a.swarm.behaviour.children.client.probeAddress(listen2)
    const other = await clientResult(a.log, t => t === listen2.toString())()
    expect(other.result).to.deep.equal({ ok: true })
    expect(other.bytesSent).to.be.within(30_000, 100_000)

    const served = await s.log.find(e => e.type === 'Behaviour' && e.event.behaviour === 'server' && e.event.event.testedAddr?.toString() === listen2.toString())
    if (served.type !== 'Behaviour' || served.event.behaviour !== 'server') throw new Error('unreachable')
    expect(served.event.event.dataAmount).to.equal(other.bytesSent)
    // The dial-back connections were closed once done: only A's own connection to S is left.
    await until(() => s.swarm.connections().length === 1, 5_000)
  })

  it('does not test loopback addresses under the default policy', async () => {
    const s = await node(['/ip4/127.0.0.1/tcp/0'])
    const a = await SwarmBuilder.withNewIdentity()
      .withTcp()
      .withBehaviour(key => combine({ identify: new identify.Behaviour(key.publicKey), client: new autonat.v2.client.Behaviour({ probeInterval: 100 }) }))
      .build()
    const log = new EventLog(a)
    nodes.push(s, { swarm: a as never, log: log as never, addresses: [] })
    a.dial(s.addresses[0] as Multiaddr)
    await log.find(e => e.type === 'NewExternalAddrCandidate')
    a.behaviour.children.client.probeAddress(s.addresses[0] as Multiaddr)
    expect(a.behaviour.children.client.pendingCandidates).to.deep.equal([])
    let tested = false
    await log.find((e: SwarmEvent<unknown>) => {
      if (e.type === 'Behaviour' && (e.event as { behaviour: string }).behaviour === 'client') tested = true
      return false
    }, 1_000).catch(() => {})
    expect(tested).to.equal(false)
  })
})

async function until (condition: () => boolean, timeout: number): Promise<void> {
  const deadline = Date.now() + timeout
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached')
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}
