/**
 * The TCP dial port DCUtR relies on, over real sockets on 127.0.0.1 (the hole punch itself is
 * tested through real NATs in nat.test.ts): dials leave from the dial port, the listener and
 * identify see that port, and behaviours hear `portUse: 'reuse'`; a second dial to the same
 * endpoint (the 4-tuple taken: EADDRNOTAVAIL) and a dial port that is our own listening port
 * (EADDRINUSE) fall back to an ephemeral port (`portUse: 'new'`); `portUse: 'new'` dials never
 * use it.
 */
import { expect } from 'chai'
import { DummyBehaviour, DummyHandler, SwarmBuilder, combine, identify } from '../../src/index.js'
import { waitFor } from '../../src/testing/index.js'
import type { ConnectionId, EstablishedOutboundConnection, Multiaddr, Swarm, SwarmEvent } from '../../src/index.js'
import type { PortUse } from '../../src/core/dial-opts.js'

/** Records the `portUse` the swarm reports for each outbound connection. */
class PortProbe extends DummyBehaviour {
  readonly portUse = new Map<ConnectionId, PortUse | undefined>()
  override handleEstablishedOutboundConnection (connection?: EstablishedOutboundConnection): DummyHandler {
    if (connection != null) this.portUse.set(connection.connectionId, connection.portUse)
    return super.handleEstablishedOutboundConnection()
  }
}

async function node (dialPort?: number) {
  return SwarmBuilder.withNewIdentity()
    .withTcp(dialPort === undefined ? {} : { dialPort })
    .withBehaviour(key => combine({ identify: new identify.Behaviour(key.publicKey), probe: new PortProbe() }))
    .withSwarmConfig({ idleConnectionTimeout: 30_000 })
    .build()
}

type Node = Awaited<ReturnType<typeof node>>

async function listenTcp (swarm: Node, address = '/ip4/127.0.0.1/tcp/0'): Promise<Multiaddr> {
  const id = swarm.listenOn(address)
  const event = await waitFor(swarm, e => e.type === 'NewListenAddr' && e.listenerId === id)
  if (event.type !== 'NewListenAddr') throw new Error('unreachable')
  return event.address
}

/** A free port (bound by a throwaway listener, then released). */
async function freePort (): Promise<number> {
  const probe = await node()
  const address = await listenTcp(probe)
  await probe.close()
  return Number(address.getComponents()[1].value)
}

/** `dialer` dials `listener` at `address`: the port the listener sees and the dialer's portUse. */
async function dialOnce (dialer: Node, listener: Node, address: Multiaddr, portUse?: PortUse): Promise<{ seenPort: number, portUse: PortUse | undefined }> {
  const id = dialer.dial({ peerId: listener.localPeerId, addresses: [address], condition: 'always', portUse })
  const [onDialer, onListener] = await Promise.all([
    waitFor(dialer, e => e.type === 'ConnectionEstablished' && e.connectionId === id, { drive: [listener] }),
    waitFor(listener, (e: SwarmEvent<unknown>) => e.type === 'ConnectionEstablished' && e.peerId.equals(dialer.localPeerId) && !seen.has(e.connectionId))
  ])
  if (onDialer.type !== 'ConnectionEstablished' || onListener.type !== 'ConnectionEstablished' || onListener.endpoint.type !== 'Listener') throw new Error('unreachable')
  seen.add(onListener.connectionId)
  return { seenPort: Number(onListener.endpoint.sendBackAddr.getComponents()[1].value), portUse: dialer.behaviour.children.probe.portUse.get(id) }
}
const seen = new Set<ConnectionId>()

describe('TCP dial port (what DCUtR needs from Node)', function () {
  this.timeout(30_000)
  let swarms: Array<Swarm<any>> = []
  afterEach(async () => {
    await Promise.all(swarms.map(async s => { await s.close() }))
    swarms = []
  })

  it('dials leave from the dial port; identify reports that port; a second dial to the same endpoint falls back to an ephemeral port', async () => {
    const port = await freePort()
    const [a, b, c] = [await node(port), await node(), await node()]
    swarms.push(a, b, c)
    const [atB, atC] = [await listenTcp(b), await listenTcp(c)]

    const first = await dialOnce(a, b, atB)
    expect(first).to.deep.equal({ seenPort: port, portUse: 'reuse' })
    // identify: b tells a the address it sees: the dial port, a candidate for DCUtR.
    const candidate = await waitFor(a, e => e.type === 'NewExternalAddrCandidate', { drive: [b] })
    expect(candidate.type === 'NewExternalAddrCandidate' && candidate.address.toString()).to.equal(`/ip4/127.0.0.1/tcp/${port}`)

    // Another remote endpoint: the same local port again (SO_REUSEADDR, distinct 4-tuples).
    expect(await dialOnce(a, c, atC)).to.deep.equal({ seenPort: port, portUse: 'reuse' })

    // The same endpoint again: the 4-tuple is taken (EADDRNOTAVAIL), an ephemeral port is used.
    const again = await dialOnce(a, b, atB)
    expect(again.portUse).to.equal('new')
    expect(again.seenPort).to.not.equal(port)

    // Asked for a new port: never the dial port.
    const fresh = await dialOnce(a, c, atC, 'new')
    expect(fresh.portUse).to.equal('new')
    expect(fresh.seenPort).to.not.equal(port)
  })

  it('a dial port we listen on ourselves (EADDRINUSE) falls back to an ephemeral port', async () => {
    const port = await freePort()
    const [a, b] = [await node(port), await node()]
    swarms.push(a, b)
    await listenTcp(a, `/ip4/127.0.0.1/tcp/${port}`)
    const atB = await listenTcp(b)
    const dialed = await dialOnce(a, b, atB)
    expect(dialed.portUse).to.equal('new')
    expect(dialed.seenPort).to.not.equal(port)
  })

  it('dialPort 0 picks a port at the first dial and keeps it; without a dial port every dial is ephemeral', async () => {
    const [a, b, c, d] = [await node(0), await node(), await node(), await node()]
    swarms.push(a, b, c, d)
    const [atB, atC] = [await listenTcp(b), await listenTcp(c)]
    const first = await dialOnce(a, b, atB)
    expect(first.portUse).to.equal('reuse')
    expect(await dialOnce(a, c, atC)).to.deep.equal({ seenPort: first.seenPort, portUse: 'reuse' })
    const plain = await dialOnce(d, b, atB)
    expect(plain.portUse).to.equal('new')
  })

  it('refuses a dial port that is not a port number', () => {
    expect(() => SwarmBuilder.withNewIdentity().withTcp({ dialPort: 70_000 })).to.throw().with.property('field', 'dialPort')
  })
})
