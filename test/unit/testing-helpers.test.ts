import { expect } from 'chai'
import { ConnectionIOError, combine, dummy, ping } from '../../src/index.js'
import {
  MAX_RECORDED_EVENTS, TestTimeoutError, clearRecordedEvents, connect, drive, driveUntil, newSwarm, recordedEvents, waitFor
} from '../../src/testing/index.js'
import { Gatekeeper, KeepAlive } from '../fixtures/behaviours.js'
import type { NetworkBehaviour, ToSwarm } from '../../src/index.js'

/** Generates `total` events of its own, as fast as the swarm polls it. */
class Counter implements NetworkBehaviour<{ readonly type: 'Tick', readonly n: number }, never, never> {
  emitted = 0
  constructor (private readonly total: number) {}
  handleEstablishedInboundConnection (): never { throw new Error('no connections') }
  handleEstablishedOutboundConnection (): never { throw new Error('no connections') }
  onSwarmEvent (): void {}
  onConnectionHandlerEvent (): void {}
  poll (): ToSwarm<{ readonly type: 'Tick', readonly n: number }, never> | undefined {
    return this.emitted < this.total ? { type: 'GenerateEvent', event: { type: 'Tick', n: this.emitted++ } } : undefined
  }
}

async function expectTimeout (promise: Promise<unknown>): Promise<TestTimeoutError> {
  try {
    await promise
  } catch (err) {
    expect(err).to.be.instanceOf(TestTimeoutError)
    return err as TestTimeoutError
  }
  throw new Error('did not time out')
}

describe('peerswarm/testing: no helper loses an event', () => {
  it('connect keeps the events it passes over: a later waitFor finds them at once', async () => {
    const a = await newSwarm(() => dummy())
    const b = await newSwarm(() => dummy())
    try {
      await connect(a, b)
      // Both happened during connect, before the connection it waited for.
      expect(recordedEvents(a).map(e => e.type)).to.include('Dialing')
      expect(recordedEvents(b).map(e => e.type)).to.include('IncomingConnection')
      const dialing = await waitFor(a, e => e.type === 'Dialing', { timeout: 50 })
      expect(dialing.type).to.equal('Dialing')
      await waitFor(b, e => e.type === 'IncomingConnection', { timeout: 50 })
      // Each event is returned once.
      expect(recordedEvents(a).map(e => e.type)).not.to.include('Dialing')
      await expectTimeout(waitFor(a, e => e.type === 'Dialing', { timeout: 50 }))
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('drive keeps what its filter does not take, and what comes past its count; later helpers get them oldest first', async () => {
    const a = await newSwarm(() => new ping.Behaviour({ interval: 20 }))
    const b = await newSwarm(() => new ping.Behaviour({ interval: 20 }))
    try {
      await connect(a, b)
      // a's first ping; b keeps being driven meanwhile, and its pings are recorded.
      await drive([a, b], { count: [1, 0] })
      const [[fromRecord]] = await drive([b], { count: 1 })
      expect(fromRecord.type).to.equal('Behaviour')
      // drive took it from the record: the oldest Behaviour event recorded for b.
      const recorded = recordedEvents(b)
      expect(recorded.every(e => e !== fromRecord)).to.equal(true)
      const next = recorded.find(e => e.type === 'Behaviour')
      if (next != null) expect(await waitFor(b, e => e.type === 'Behaviour', { timeout: 50 })).to.equal(next)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('clearRecordedEvents forgets them; driveUntil records too; the record is bounded', async () => {
    const counter = new Counter(MAX_RECORDED_EVENTS + 5)
    const swarm = await newSwarm(() => counter)
    try {
      await driveUntil([swarm], () => counter.emitted === MAX_RECORDED_EVENTS + 5)
      await driveUntil([swarm], () => recordedEvents(swarm).length === MAX_RECORDED_EVENTS)
      const recorded = recordedEvents(swarm)
      // The oldest five were dropped.
      expect(recorded[0]).to.deep.include({ type: 'Behaviour', event: { type: 'Tick', n: 5 } })
      const tick = await waitFor(swarm, e => e.type === 'Behaviour')
      expect(tick).to.deep.include({ event: { type: 'Tick', n: 5 } })
      clearRecordedEvents(swarm)
      expect(recordedEvents(swarm)).to.deep.equal([])
    } finally {
      await swarm.close()
    }
  })
})

describe('peerswarm/testing: time-out messages', () => {
  it('waitFor says what it waited for and what it saw, and explains the format', async () => {
    const a = await newSwarm(() => new ping.Behaviour({ interval: 20 }))
    const b = await newSwarm(() => new ping.Behaviour({ interval: 20 }))
    try {
      await connect(a, b)
      const err = await expectTimeout(waitFor(a, function pingFailure (e) { return e.type === 'Behaviour' && e.event.type === 'Failure' }, { timeout: 200, drive: [b] }))
      const id = a.localPeerId.toString().slice(-6)
      expect(err.message).to.match(new RegExp(`^waitFor\\(pingFailure\\) timed out after 200 ms, waiting for an event of swarm …${id} matching pingFailure\\. It saw \\d+ events, oldest first, each as "Type"`))
      expect(err.message).to.include('"Behaviour(Type)" one of a behaviour not combined')
      // Connect's own events come first (they were recorded), then the pings, counted.
      expect(err.message).to.match(/Dialing, .*Behaviour\(Success\)( ×\d+)?/)
      expect(err.seen).to.include('Behaviour(Success)')
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('drive says what each swarm collected, with the swarm index prefix explained', async () => {
    const a = await newSwarm(() => combine({ ping: new ping.Behaviour({ interval: 20 }) }))
    const b = await newSwarm(() => combine({ ping: new ping.Behaviour({ interval: 20 }) }))
    try {
      await connect(a, b)
      const err = await expectTimeout(drive([a, b], { count: [1, 3], filter: function failures (e) { return e.type === 'Behaviour' && e.event.event.type === 'Failure' }, timeout: 200 }))
      expect(err.message).to.match(/^drive timed out after 200 ms, waiting for 1 from swarm 0, 3 from swarm 1 of events passing failures; collected 0 of 1 from swarm 0 \(…\w{6}\), 0 of 3 from swarm 1 \(…\w{6}\)\./)
      expect(err.message).to.include('each as "i:Type", i being the swarm\'s index in the helper\'s list')
      expect(err.message).to.match(/[01]:Behaviour\(ping:Success\)/)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('connect names the connection it waited for', async () => {
    const a = await newSwarm(() => dummy())
    const b = await newSwarm(() => new Gatekeeper('establishedInbound'))
    try {
      const err = await expectTimeout(connect(a, b, { timeout: 300 }))
      expect(err.message).to.match(/^connect timed out after 300 ms, waiting for ConnectionEstablished on both sides: swarm 0 \(the dialer, …\w{6}\) with …\w{6}, swarm 1 \(the listener\) with …\w{6}; collected 1 of 1 from swarm 0 \(…\w{6}\), 0 of 1 from swarm 1 \(…\w{6}\)\./)
      // The listener denied it: the dialer saw it established, then closed.
      for (const entry of ['0:Dialing', '1:IncomingConnection', '1:IncomingConnectionError', '0:ConnectionClosed']) expect(err.seen).to.include(entry)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })
})

describe('a connection the remote closed while idle', () => {
  it('says that the remote\'s idle timeout most likely closed it', async () => {
    const a = await newSwarm(() => dummy(), { idleConnectionTimeout: 100 })
    const b = await newSwarm(() => dummy(), { idleConnectionTimeout: 60_000 })
    try {
      await connect(a, b)
      const closed = await waitFor(b, e => e.type === 'ConnectionClosed', { drive: [a], timeout: 5_000 })
      if (closed.type !== 'ConnectionClosed') throw new Error('unreachable')
      expect(closed.cause).to.be.instanceOf(ConnectionIOError)
      expect(closed.cause?.message).to.match(/^connection closed by the remote after being idle here for \d+ ms \(most likely the remote's idleConnectionTimeout ran out\)$/)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('says it may have been the remote\'s idle timeout when the connection was in use here', async () => {
    const a = await newSwarm(() => dummy(), { idleConnectionTimeout: 100 })
    const b = await newSwarm(() => combine({ keepAlive: new KeepAlive() }), { idleConnectionTimeout: 60_000 })
    try {
      await connect(a, b)
      const closed = await waitFor(b, e => e.type === 'ConnectionClosed', { drive: [a], timeout: 5_000 })
      if (closed.type !== 'ConnectionClosed') throw new Error('unreachable')
      expect(closed.cause?.message).to.equal('connection closed by the remote (a graceful close: its application or swarm closed it, or, if it was idle there, its idleConnectionTimeout)')
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })
})
