import { expect } from 'chai'
import { ConnectionIOError, ping } from '../../src/index.js'
import { drive, listen, newSwarm } from '../../src/testing/index.js'
import type { SwarmEvent } from '../../src/index.js'

type PingSwarmEvent = SwarmEvent<ping.Event>

function summary (event: PingSwarmEvent): string {
  return event.type === 'Behaviour' ? `Behaviour:${event.event.type}` : event.type
}

describe('ping over the memory transport', () => {
  it('connects, pings both ways with RTTs, and closes cleanly, in the expected event order', async () => {
    const a = await newSwarm(() => new ping.Behaviour({ interval: 20 }))
    const b = await newSwarm(() => new ping.Behaviour({ interval: 20 }))
    try {
      const address = await listen(b)
      a.dial(address)
      const [eventsA, eventsB] = await drive([a, b], { count: 4, filter: () => true })
      expect(eventsA.map(summary)).to.deep.equal(['Dialing', 'ConnectionEstablished', 'Behaviour:Success', 'Behaviour:Success'])
      expect(eventsB.map(summary)).to.deep.equal(['IncomingConnection', 'ConnectionEstablished', 'Behaviour:Success', 'Behaviour:Success'])

      const established = eventsA[1]
      if (established.type !== 'ConnectionEstablished') throw new Error('expected ConnectionEstablished')
      expect(established.peerId.equals(b.localPeerId)).to.equal(true)
      expect(established.numEstablished).to.equal(1)
      expect(established.endpoint.type).to.equal('Dialer')
      expect(established.establishedIn).to.be.greaterThan(0)
      for (const event of [...eventsA.slice(2), ...eventsB.slice(2)]) {
        if (event.type !== 'Behaviour' || event.event.type !== 'Success') throw new Error('expected a ping success')
        expect(event.event.rtt).to.be.greaterThan(0).and.lessThan(5_000)
        expect(event.event.connectionId).to.be.a('number')
      }

      expect(a.isConnected(b.localPeerId)).to.equal(true)
      expect(a.disconnectPeerId(b.localPeerId)).to.equal(true)
      const [[closedA], [closedB]] = await drive([a, b], { count: 1, filter: e => e.type === 'ConnectionClosed' })
      if (closedA.type !== 'ConnectionClosed' || closedB.type !== 'ConnectionClosed') throw new Error('expected ConnectionClosed')
      expect(closedA.cause, 'we closed it: no cause').to.equal(undefined)
      expect(closedA.numEstablished).to.equal(0)
      expect(closedB.cause).to.be.instanceOf(ConnectionIOError)
      expect(a.isConnected(b.localPeerId)).to.equal(false)
      expect(a.networkInfo().connectionCounters.numConnections).to.equal(0)
    } finally {
      await a.close()
      await b.close()
    }
  })
})
