import { expect } from 'chai'
import { newSwarm } from '../../src/testing/index.js'
import type { Context, NetworkBehaviour, ToSwarm, Waker } from '../../src/index.js'
import { IdleHandler } from '../fixtures/behaviours.js'

/** Emits what `send` is given, now or after a delay, and counts its polls. */
class Mailbox implements NetworkBehaviour<string, never, never> {
  polls = 0
  private readonly queue: string[] = []
  private waker?: Waker
  handleEstablishedInboundConnection (): IdleHandler { return new IdleHandler() }
  handleEstablishedOutboundConnection (): IdleHandler { return new IdleHandler() }
  onSwarmEvent (): void {}
  onConnectionHandlerEvent (): void {}
  send (text: string): void {
    this.queue.push(text)
    this.waker?.wake()
  }

  sendLater (ms: number, text: string): void {
    setTimeout(() => { this.send(text) }, ms)
  }

  poll (cx: Context): ToSwarm<string, never> | undefined {
    this.polls++
    this.waker = cx.waker
    const text = this.queue.shift()
    return text === undefined ? undefined : { type: 'GenerateEvent', event: text }
  }
}

describe('waking a behaviour', () => {
  it('polls a behaviour again when an API call wakes it while the application waits', async () => {
    const swarm = await newSwarm(() => new Mailbox())
    try {
      const next = swarm.selectNextSome({ signal: AbortSignal.timeout(5_000) })
      // The application is already waiting when the call comes, from outside any poll.
      queueMicrotask(() => { swarm.behaviour.send('from the API') })
      expect(await next).to.deep.equal({ type: 'Behaviour', event: 'from the API' })
    } finally {
      await swarm.close()
    }
  })

  it('wakes every waiting call at once, with and without an abort signal', async () => {
    const swarm = await newSwarm(() => new Mailbox())
    try {
      const waiting = [swarm.selectNextSome(), swarm.selectNextSome(), swarm.selectNextSome({ signal: AbortSignal.timeout(5_000) })]
      queueMicrotask(() => { for (const text of ['a', 'b', 'c']) swarm.behaviour.send(text) })
      const events = await Promise.all(waiting)
      expect(events.map(e => e.type === 'Behaviour' ? e.event : e.type).sort()).to.deep.equal(['a', 'b', 'c'])
    } finally {
      await swarm.close()
    }
  })

  it('does not lose a wake that comes while the swarm polls, before it waits', async () => {
    // Wakes itself inside its first poll, with nothing yet; has its event on the next poll. A
    // lost wake would leave the caller waiting for ever (and the test would time out).
    class WakesWhilePolled extends Mailbox {
      override poll (cx: Context): ToSwarm<string, never> | undefined {
        if (this.polls === 0) {
          this.polls++
          cx.waker.wake()
          this.send('after the wake')
          return undefined
        }
        return super.poll(cx)
      }
    }
    const swarm = await newSwarm(() => new WakesWhilePolled())
    try {
      expect(await swarm.selectNextSome()).to.deep.equal({ type: 'Behaviour', event: 'after the wake' })
    } finally {
      await swarm.close()
    }
  })

  it('polls a behaviour again when its own timer wakes it', async () => {
    const swarm = await newSwarm(() => new Mailbox())
    try {
      swarm.behaviour.sendLater(20, 'from a timer')
      const event = await swarm.selectNextSome({ signal: AbortSignal.timeout(5_000) })
      expect(event).to.deep.equal({ type: 'Behaviour', event: 'from a timer' })
    } finally {
      await swarm.close()
    }
  })

  it('does not poll a behaviour that has no work and was not woken (no busy loop)', async () => {
    const swarm = await newSwarm(() => new Mailbox())
    try {
      const waited = swarm.selectNextSome({ signal: AbortSignal.timeout(100) })
      await waited.then(() => { throw new Error('an event appeared from nowhere') }, (err: Error) => {
        expect(err.name).to.equal('TimeoutError')
      })
      expect(swarm.behaviour.polls).to.equal(1)
    } finally {
      await swarm.close()
    }
  })

  it('ends iteration and rejects waiting calls when the swarm closes', async () => {
    const swarm = await newSwarm(() => new Mailbox())
    const seen: unknown[] = []
    const iteration = (async () => { for await (const event of swarm) seen.push(event) })()
    const waiting = swarm.selectNextSome()
    await swarm.close()
    await iteration
    expect(seen).to.deep.equal([])
    await waiting.then(() => { throw new Error('resolved after close') }, (err: Error) => {
      expect(err.name).to.equal('SwarmClosedError')
    })
  })
})
