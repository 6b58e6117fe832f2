import { expect } from 'chai'
import { ConnectionDenied, DialDeniedError, ListenDeniedError, combine } from '../../src/index.js'
import { drive, listen, newSwarm } from '../../src/testing/index.js'
import { GateClosed, Gatekeeper, Recorder } from '../fixtures/behaviours.js'
import type { Gate } from '../fixtures/behaviours.js'

async function pair (dialerGate?: Gate, listenerGate?: Gate) {
  const a = await newSwarm(() => combine({ gate: new Gatekeeper(dialerGate), recorder: new Recorder() }))
  const b = await newSwarm(() => combine({ gate: new Gatekeeper(listenerGate), recorder: new Recorder() }))
  return { a, b, address: await listen(b) }
}

function deniedAt (error: unknown, gate: Gate): void {
  expect(error).to.have.property('cause').that.is.instanceOf(ConnectionDenied)
  const denied = (error as { cause: ConnectionDenied }).cause
  expect(denied.causeAs(GateClosed)?.gate).to.equal(gate)
}

describe('connection gates', () => {
  it('a denial in handlePendingOutboundConnection makes dial() throw DialDeniedError and every behaviour hears DialFailure', async () => {
    const { a, b, address } = await pair('pendingOutbound')
    try {
      let thrown: unknown
      try {
        a.dial(address)
      } catch (err) {
        thrown = err
      }
      expect(thrown).to.be.instanceOf(DialDeniedError)
      deniedAt(thrown, 'pendingOutbound')
      const failures = a.behaviour.recorder.of('DialFailure')
      expect(failures).to.have.length(1)
      expect(failures[0].error).to.equal(thrown)
      expect(a.networkInfo().connectionCounters.numPending).to.equal(0)
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('a denial in handleEstablishedOutboundConnection is an OutgoingConnectionError with DialDeniedError', async () => {
    const { a, b, address } = await pair('establishedOutbound')
    try {
      const connectionId = a.dial(address)
      const [[event]] = await drive([a, b], { count: [1, 0], filter: e => e.type === 'OutgoingConnectionError' })
      if (event.type !== 'OutgoingConnectionError') throw new Error('unreachable')
      expect(event.connectionId).to.equal(connectionId)
      expect(event.error).to.be.instanceOf(DialDeniedError)
      deniedAt(event.error, 'establishedOutbound')
      const failures = a.behaviour.recorder.of('DialFailure')
      expect(failures.map(f => f.connectionId)).to.deep.equal([connectionId])
      expect(a.behaviour.recorder.of('ConnectionEstablished')).to.have.length(0)
      expect(a.isConnected(b.localPeerId)).to.equal(false)
    } finally {
      await a.close()
      await b.close()
    }
  })

  for (const gate of ['pendingInbound', 'establishedInbound'] as const) {
    it(`a denial in ${gate === 'pendingInbound' ? 'handlePendingInboundConnection' : 'handleEstablishedInboundConnection'} is an IncomingConnectionError with ListenDeniedError`, async () => {
      const { a, b, address } = await pair(undefined, gate)
      try {
        a.dial(address)
        const [[dialerSide], [listenerSide]] = await drive([a, b], {
          count: 1,
          filter: (e, i) => i === 0 ? e.type === 'OutgoingConnectionError' || e.type === 'ConnectionClosed' : e.type === 'IncomingConnectionError'
        })
        if (listenerSide.type !== 'IncomingConnectionError') throw new Error('unreachable')
        expect(listenerSide.error).to.be.instanceOf(ListenDeniedError)
        deniedAt(listenerSide.error, gate)
        const failures = b.behaviour.recorder.of('ListenFailure')
        expect(failures).to.have.length(1)
        expect(failures[0].connectionId).to.equal(listenerSide.connectionId)
        expect(failures[0].error).to.equal(listenerSide.error)
        expect(b.behaviour.recorder.of('ConnectionEstablished')).to.have.length(0)
        // The dialer never keeps a connection the listener refused.
        expect(['OutgoingConnectionError', 'ConnectionClosed']).to.include(dialerSide.type)
      } finally {
        await a.close()
        await b.close()
      }
    })
  }
})
