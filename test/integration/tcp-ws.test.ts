import { expect } from 'chai'
import { SwarmBuilder, combine, identify, ping } from '../../src/index.js'
import { drive, waitFor } from '../../src/testing/index.js'

async function node () {
  return SwarmBuilder.withNewIdentity()
    .withTcp()
    .withWebSockets()
    .withBehaviour(key => combine({
      ping: new ping.Behaviour({ interval: 60_000 }),
      identify: new identify.Behaviour(key.publicKey)
    }))
    .build()
}

type Node = Awaited<ReturnType<typeof node>>

async function listenAddresses (swarm: Node, count: number) {
  const [events] = await drive([swarm], { count, filter: e => e.type === 'NewListenAddr' })
  return events.map(e => e.type === 'NewListenAddr' ? e.address : undefined).filter(a => a != null)
}

describe('TCP and WebSockets between two swarms (127.0.0.1)', () => {
  let a: Node
  let b: Node
  beforeEach(async () => { [a, b] = await Promise.all([node(), node()]) })
  afterEach(async () => { await Promise.all([a.close(), b.close()]) })

  it('listens on several addresses and reports the real ports', async () => {
    b.listenOn('/ip4/127.0.0.1/tcp/0')
    b.listenOn('/ip4/127.0.0.1/tcp/0/ws')
    const addresses = await listenAddresses(b, 2)
    expect(addresses.map(String).sort()).to.satisfy((list: string[]) =>
      list.some(a => /^\/ip4\/127\.0\.0\.1\/tcp\/[1-9]\d*$/.test(a)) && list.some(a => /^\/ip4\/127\.0\.0\.1\/tcp\/[1-9]\d*\/ws$/.test(a)))
    expect(b.listeners()).to.have.length(2)
  })

  it('expands /ip4/0.0.0.0 to the interface addresses, loopback included', async () => {
    // Binding only: no traffic leaves loopback.
    b.listenOn('/ip4/0.0.0.0/tcp/0')
    await waitFor(b, e => e.type === 'NewListenAddr')
    const all = b.listeners().map(String)
    expect(all.some(a => /^\/ip4\/127\.0\.0\.1\/tcp\/[1-9]\d*$/.test(a)), all.join(' ')).to.equal(true)
    expect(all.some(a => a.startsWith('/ip4/0.0.0.0')), all.join(' ')).to.equal(false)
  })

  for (const transport of ['tcp', 'ws'] as const) {
    it(`connects over ${transport}, pings and identifies both ways`, async () => {
      b.listenOn(transport === 'tcp' ? '/ip4/127.0.0.1/tcp/0' : '/ip4/127.0.0.1/tcp/0/ws')
      const [address] = await listenAddresses(b, 1)
      a.dial(address)
      const [eventsA, eventsB] = await drive([a, b], {
        count: 2,
        filter: e => e.type === 'Behaviour' && ((e.event.behaviour === 'ping' && e.event.event.type === 'Success') ||
          (e.event.behaviour === 'identify' && e.event.event.type === 'Received'))
      })
      for (const [events, remote] of [[eventsA, b], [eventsB, a]] as const) {
        const received = events.map(e => e.type === 'Behaviour' && e.event.behaviour === 'identify' && e.event.event.type === 'Received' ? e.event.event : undefined).find(e => e != null)
        expect(received?.peerId.equals(remote.localPeerId)).to.equal(true)
        expect(received?.info.protocols).to.include.members(['/ipfs/ping/1.0.0', '/ipfs/id/1.0.0', '/ipfs/id/push/1.0.0'])
        expect(received?.info.agentVersion).to.match(/^peerswarm\//)
        const rtt = events.map(e => e.type === 'Behaviour' && e.event.behaviour === 'ping' && e.event.event.type === 'Success' ? e.event.event.rtt : undefined).find(r => r != null)
        expect(rtt).to.be.a('number').greaterThan(0)
      }
      // b advertised its listen address; a learned it.
      const fromB = eventsA.map(e => e.type === 'Behaviour' && e.event.behaviour === 'identify' && e.event.event.type === 'Received' ? e.event.event.info : undefined).find(i => i != null)
      expect(fromB?.listenAddrs.map(String)).to.include(address.toString())
      expect(fromB?.observedAddr?.toString()).to.match(/^\/ip4\/127\.0\.0\.1\/tcp\//)
    })
  }

  it('reports the observed address as a candidate, and pushes identify info on request', async () => {
    b.listenOn('/ip4/127.0.0.1/tcp/0')
    const [address] = await listenAddresses(b, 1)
    a.dial(address)
    const [[candidate], [received]] = await drive([a, b], {
      count: 1,
      filter: (e, i) => i === 0
        ? e.type === 'NewExternalAddrCandidate'
        : e.type === 'Behaviour' && e.event.behaviour === 'identify' && e.event.event.type === 'Received'
    })
    // b saw a's outbound connection come from an ephemeral port on 127.0.0.1.
    expect(candidate.type === 'NewExternalAddrCandidate' && candidate.address.toString()).to.match(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/)
    expect(received.type).to.equal('Behaviour')

    a.behaviour.identify.push([b.localPeerId])
    const [[pushed], [pushReceived]] = await drive([a, b], {
      count: 1,
      filter: (e, i) => e.type === 'Behaviour' && e.event.behaviour === 'identify' && e.event.event.type === (i === 0 ? 'Pushed' : 'Received')
    })
    expect(pushed.type === 'Behaviour' && pushed.event.event.type).to.equal('Pushed')
    const info = pushReceived.type === 'Behaviour' && pushReceived.event.behaviour === 'identify' && pushReceived.event.event.type === 'Received' ? pushReceived.event.event.info : undefined
    expect(info?.protocols).to.include('/ipfs/ping/1.0.0')
  })
})
