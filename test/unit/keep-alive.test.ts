import { expect } from 'chai'
import { KeepAliveTimeoutError, combine, dummy } from '../../src/index.js'
import { connect, drive, newSwarm, waitFor } from '../../src/testing/index.js'
import { KeepAlive } from '../fixtures/behaviours.js'

describe('idle connections', () => {
  it('close with KeepAliveTimeout once idle for idleConnectionTimeout, and not before', async () => {
    const idle = 150
    const a = await newSwarm(() => dummy(), { idleConnectionTimeout: idle })
    const b = await newSwarm(() => dummy(), { idleConnectionTimeout: 60_000 })
    try {
      await connect(a, b)
      const connectedAt = performance.now()
      const closed = await waitFor(a, e => e.type === 'ConnectionClosed', { drive: [b], timeout: 5_000 })
      const openFor = performance.now() - connectedAt
      if (closed.type !== 'ConnectionClosed') throw new Error('unreachable')
      expect(closed.cause).to.be.instanceOf(KeepAliveTimeoutError)
      // Timers may fire up to 1 ms early; the connection must not close noticeably before.
      expect(openFor).to.be.at.least(idle - 2)
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('stay open while a handler asks for keep-alive, and close once it stops', async () => {
    const idle = 50
    const a = await newSwarm(() => combine({ keepAlive: new KeepAlive() }), { idleConnectionTimeout: idle })
    const b = await newSwarm(() => dummy(), { idleConnectionTimeout: 60_000 })
    try {
      await connect(a, b)
      // Ten idle timeouts pass with no traffic at all: the connection must survive them.
      await waitFor(a, e => e.type === 'ConnectionClosed', { drive: [b], timeout: idle * 10 })
        .then(() => { throw new Error('closed although a handler keeps it alive') }, (err: Error) => {
          expect(err.name).to.equal('TestTimeoutError')
        })
      expect(a.isConnected(b.localPeerId)).to.equal(true)

      const releasedAt = performance.now()
      a.behaviour.keepAlive.release(b.localPeerId)
      const [[closed]] = await drive([a, b], { count: [1, 0], filter: e => e.type === 'ConnectionClosed', timeout: 5_000 })
      if (closed.type !== 'ConnectionClosed') throw new Error('unreachable')
      expect(closed.cause).to.be.instanceOf(KeepAliveTimeoutError)
      expect(performance.now() - releasedAt).to.be.at.least(idle - 2)
    } finally {
      await a.close()
      await b.close()
    }
  })
})
