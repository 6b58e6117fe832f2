import { expect } from 'chai'
import { dummy } from '../../src/index.js'
import { listen, newSwarm } from '../../src/testing/index.js'
import { Flood } from '../fixtures/behaviours.js'

/**
 * `a` (an endless flood handler per connection, buffer of 7 events) dialing `b`, which is
 * driven in the background; `a` is left to the test.
 */
async function floodingPair () {
  const bufferSize = 7
  const a = await newSwarm(() => new Flood(), { perConnectionEventBufferSize: bufferSize })
  const b = await newSwarm(() => dummy())
  const stopB = new AbortController()
  const driveB = (async () => {
    try {
      for (;;) await b.selectNextSome({ signal: stopB.signal })
    } catch {}
  })()
  a.dial(await listen(b))
  const stop = async (): Promise<void> => {
    stopB.abort()
    await driveB
    await a.close()
    await b.close()
  }
  return { a, b, bufferSize, stop }
}

describe('back-pressure from the application to handlers', () => {
  it('a handler flooding events stays within the buffer of a slow application, and nothing is lost', async () => {
    const { a, b, bufferSize, stop } = await floodingPair()
    try {
      const received: number[] = []
      let maxAhead = 0
      const deadline = Date.now() + 10_000
      while (received.length < 300 && Date.now() < deadline) {
        const event = await a.selectNextSome({ signal: AbortSignal.timeout(5_000) })
        if (event.type !== 'Behaviour') continue
        received.push(event.event)
        const produced = a.behaviour.handlers[0].produced
        maxAhead = Math.max(maxAhead, produced - received.length)
        if (received.length % 100 === 0) {
          // The application stalls: the handler must stall too instead of queueing more.
          await new Promise(resolve => setTimeout(resolve, 30))
          maxAhead = Math.max(maxAhead, a.behaviour.handlers[0].produced - received.length)
        }
      }
      expect(received).to.deep.equal(Array.from({ length: 300 }, (_, i) => i))
      // The connection's buffer (bufferSize + 1) plus the one event the behaviour holds.
      expect(maxAhead).to.be.at.most(bufferSize + 2)
      expect(a.behaviour.handlers).to.have.length(1)
    } finally {
      await stop()
    }
  })
})

describe('events a handler still has when its connection closes', () => {
  it('are kept up to MAX_LAST_EVENTS (1,024) and reported before ConnectionClosed; the rest are dropped', async () => {
    const { a, b, bufferSize, stop } = await floodingPair()
    try {
      // Drive `a` until its connection is up, then stop taking its events: the endless handler
      // fills the connection's buffer and waits.
      for (let i = 0; i < 20; i++) {
        const event = await a.selectNextSome({ signal: AbortSignal.timeout(5_000) })
        if (event.type === 'ConnectionEstablished') break
      }
      const handler = a.behaviour.handlers[0]
      // The remote closes while `a` is not polled; the connection notices on its own.
      const deadline = Date.now() + 5_000
      while (!b.isConnected(a.localPeerId) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
      expect(b.disconnectPeerId(a.localPeerId)).to.equal(true)
      while (a.connectedPeers().length > 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
      const producedAtClose = handler.produced
      const received: number[] = []
      let closed = false
      for (let i = 0; i < 5_000 && !closed; i++) {
        const event = await a.selectNextSome({ signal: AbortSignal.timeout(5_000) })
        if (event.type === 'Behaviour') received.push(event.event)
        if (event.type === 'ConnectionClosed') closed = true
      }
      expect(closed).to.equal(true)
      // Once closed the handler is never polled again: at most the buffer plus 1,024 more.
      expect(handler.produced).to.equal(producedAtClose)
      expect(handler.produced).to.be.at.most(bufferSize + 1 + 1_024 + 1)
      expect(handler.produced).to.be.at.least(1_024)
      // What was kept arrives in order, with nothing missing before the cut.
      expect(received).to.deep.equal(Array.from({ length: received.length }, (_, i) => i))
      expect(received.length).to.be.at.least(1_024)
    } finally {
      await stop()
    }
  })
})
