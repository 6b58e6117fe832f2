/**
 * `nextTurn`: one queue for the end of the turn, shared by the `SecureChannel`'s flush and the
 * pubsub handler's held forwards, drained a bounded number of times per turn.
 */
import { expect } from 'chai'
import * as FakeTimers from '@sinonjs/fake-timers'
import { nextTurn } from '../../src/next-turn.js'

/** Resolves in the check phase of a later turn than any `setImmediate` queued so far. */
async function afterImmediates (): Promise<void> {
  await new Promise<void>(resolve => { setTimeout(resolve, 5) })
}

describe('nextTurn', () => {
  it('runs callbacks later, in the order they were asked for', async () => {
    const order: string[] = []
    nextTurn(() => order.push('a'))
    nextTurn(() => order.push('b'))
    order.push('now')
    await afterImmediates()
    expect(order).to.deep.equal(['now', 'a', 'b'])
  })

  it('runs what a callback releases and asks for in turn within the same turn', async () => {
    const order: string[] = []
    nextTurn(() => {
      order.push('flush control')
      // A promise continuation (the handler's await) asks for the next flush.
      void Promise.resolve().then(() => { nextTurn(() => order.push('flush forwards')) })
    })
    // Queued after the first request: it runs after every drain of this turn.
    setImmediate(() => order.push('end of turn'))
    await afterImmediates()
    expect(order).to.deep.equal(['flush control', 'flush forwards', 'end of turn'])
  })

  it('leaves for the next turn what asks again past three drains, so I/O is never starved', async () => {
    let runs = 0
    const again = (): void => {
      runs++
      if (runs < 10) nextTurn(again)
    }
    nextTurn(again)
    let runsAtEndOfTurn = -1
    setImmediate(() => { runsAtEndOfTurn = runs })
    await afterImmediates()
    expect(runsAtEndOfTurn).to.equal(3)
    await new Promise<void>(resolve => { setTimeout(resolve, 50) })
    expect(runs).to.equal(10)
  })

  it('keeps what was asked under a fake clock to that clock, and the rest to the real one', async () => {
    const order: string[] = []
    nextTurn(() => order.push('real, before'))
    const clock = FakeTimers.install({ toFake: ['setImmediate', 'clearImmediate'] })
    try {
      nextTurn(() => order.push('fake'))
      await afterImmediates()
      expect(order).to.deep.equal(['real, before'])
      clock.runAll()
      expect(order).to.deep.equal(['real, before', 'fake'])
    } finally {
      clock.uninstall()
    }
    nextTurn(() => order.push('real, after'))
    await afterImmediates()
    expect(order).to.deep.equal(['real, before', 'fake', 'real, after'])
  })

  it('runs the callbacks behind one that throws, and the error still reaches the process', async () => {
    const order: string[] = []
    const uncaught: unknown[] = []
    const listeners = process.listeners('uncaughtException')
    process.removeAllListeners('uncaughtException')
    process.on('uncaughtException', (err) => { uncaught.push(err) })
    try {
      nextTurn(() => { throw new Error('boom') })
      nextTurn(() => order.push('behind'))
      await afterImmediates()
    } finally {
      process.removeAllListeners('uncaughtException')
      for (const listener of listeners) process.on('uncaughtException', listener)
    }
    expect(order).to.deep.equal(['behind'])
    expect(uncaught.map(e => (e as Error).message)).to.deep.equal(['boom'])
  })
})
