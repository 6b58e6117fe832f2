/**
 * Graceful shutdown over real TCP on 127.0.0.1: after `close()` of every swarm of a small
 * gossipsub network, the process holds no more sockets, servers or timers than before it.
 */
import { expect } from 'chai'
import { SwarmBuilder, combine, gossipsub, identify, ping } from '../../src/index.js'
import { driveUntil, waitFor } from '../../src/testing/index.js'
import type { Keypair, Swarm } from '../../src/index.js'

const topic = new gossipsub.IdentTopic('shutdown')

function behaviour (key: Keypair) {
  return combine({
    gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), heartbeatInterval: 100, heartbeatInitialDelay: 10 }),
    identify: new identify.Behaviour(key.publicKey),
    ping: new ping.Behaviour({ interval: 200 })
  })
}

/** The process's active handles of the kinds a swarm creates, by kind. */
function handles (): Record<string, number> {
  const counts: Record<string, number> = { TCPSocketWrap: 0, TCPServerWrap: 0, Timeout: 0, Immediate: 0 }
  for (const kind of process.getActiveResourcesInfo()) if (kind in counts) counts[kind]++
  return counts
}

describe('graceful shutdown over TCP', function () {
  this.timeout(30_000)

  it('leaves no sockets, servers or timers behind once every swarm is closed', async () => {
    const before = await settled()
    const swarms: Array<Swarm<ReturnType<typeof behaviour>>> = []
    for (let i = 0; i < 4; i++) swarms.push(await SwarmBuilder.withNewIdentity().withTcp().withBehaviour(behaviour).build())
    const addresses = []
    for (const swarm of swarms) {
      swarm.listenOn('/ip4/127.0.0.1/tcp/0')
      const event = await waitFor(swarm, e => e.type === 'NewListenAddr')
      if (event.type !== 'NewListenAddr') throw new Error('unreachable')
      addresses.push(event.address.encapsulate(`/p2p/${swarm.localPeerId.toString()}`))
      swarm.behaviour.gossipsub.subscribe(topic)
    }
    // A ring.
    for (let i = 0; i < swarms.length; i++) swarms[i].dial(addresses[(i + 1) % swarms.length])
    await driveUntil(swarms, () => swarms.every(s => s.behaviour.gossipsub.meshPeers(topic).length >= 2))
    swarms[0].behaviour.gossipsub.publish(topic, new TextEncoder().encode('last words'))
    const during = await settled()
    expect(during.TCPSocketWrap).to.be.greaterThan(before.TCPSocketWrap)
    expect(during.TCPServerWrap).to.be.greaterThan(before.TCPServerWrap)
    expect(during.Timeout).to.be.greaterThan(before.Timeout)

    await Promise.all(swarms.map(async s => { await s.close() }))
    // Sockets finish closing in the next turns: give the process a bounded while to settle.
    const deadline = Date.now() + 5_000
    let after = await settled()
    while (Date.now() < deadline && (after.TCPSocketWrap > before.TCPSocketWrap || after.TCPServerWrap > before.TCPServerWrap || after.Timeout > before.Timeout)) {
      await new Promise(resolve => setTimeout(resolve, 50))
      after = await settled()
    }
    expect({ sockets: after.TCPSocketWrap, servers: after.TCPServerWrap, timers: after.Timeout })
      .to.deep.equal({ sockets: before.TCPSocketWrap, servers: before.TCPServerWrap, timers: before.Timeout })
  })
})

/**
 * The counts, read in the check phase (setImmediate) so that a timer that has just fired (the
 * settling loop's own) is no longer counted.
 */
async function settled (): Promise<Record<string, number>> {
  return await new Promise(resolve => setImmediate(() => { resolve(handles()) }))
}
