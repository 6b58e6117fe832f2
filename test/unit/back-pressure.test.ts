import { expect } from 'chai'
import { dummy } from '../../src/index.js'
import { listen, newSwarm } from '../../src/testing/index.js'
import { Flood } from '../fixtures/behaviours.js'

describe('back-pressure from the application to handlers', () => {
  it('a handler flooding events stays within the buffer of a slow application, and nothing is lost', async () => {
    const bufferSize = 7
    const a = await newSwarm(() => new Flood(), { perConnectionEventBufferSize: bufferSize })
    const b = await newSwarm(() => dummy())
    const stopB = new AbortController()
    const driveB = (async () => {
      try {
        for (;;) await b.selectNextSome({ signal: stopB.signal })
      } catch {}
    })()
    try {
      a.dial(await listen(b))
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
      stopB.abort()
      await driveB
      await a.close()
      await b.close()
    }
  })
})
