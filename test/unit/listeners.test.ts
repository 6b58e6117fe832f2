import { expect } from 'chai'
import { multiaddr } from '@multiformats/multiaddr'
import { combine } from '../../src/index.js'
import { drive, listen, newSwarm, waitFor } from '../../src/testing/index.js'
import { Recorder } from '../fixtures/behaviours.js'

describe('listeners and addresses', () => {
  it('reports NewListenAddr, then ExpiredListenAddr and ListenerClosed when removed', async () => {
    const swarm = await newSwarm(() => combine({ recorder: new Recorder() }))
    try {
      const id = swarm.listenOn('/memory/0')
      const added = await waitFor(swarm, e => e.type === 'NewListenAddr')
      if (added.type !== 'NewListenAddr') throw new Error('unreachable')
      expect(added.listenerId).to.equal(id)
      expect(added.address.toString()).to.match(/^\/memory\/\d+$/)
      expect(swarm.listeners().map(String)).to.deep.equal([added.address.toString()])

      expect(swarm.removeListener(id)).to.equal(true)
      const [events] = await drive([swarm], { count: 2, filter: e => e.type === 'ExpiredListenAddr' || e.type === 'ListenerClosed' })
      expect(events.map(e => e.type)).to.deep.equal(['ExpiredListenAddr', 'ListenerClosed'])
      const closed = events[1]
      expect(closed.type === 'ListenerClosed' && closed.addresses.map(String)).to.deep.equal([added.address.toString()])
      expect(closed.type === 'ListenerClosed' && closed.reason).to.equal(undefined)
      expect(swarm.listeners()).to.deep.equal([])
      expect(swarm.removeListener(id)).to.equal(false)
      // Behaviours heard each step before the application did.
      expect(swarm.behaviour.recorder.events.map(e => e.type)).to.deep.equal(['NewListener', 'NewListenAddr', 'ExpiredListenAddr', 'ListenerClosed'])
    } finally {
      await swarm.close()
    }
  })

  it('reports a listener that cannot bind as ListenerClosed with a reason', async () => {
    const a = await newSwarm(() => combine({ recorder: new Recorder() }))
    const b = await newSwarm(() => combine({ recorder: new Recorder() }))
    try {
      const taken = await listen(a)
      b.listenOn(taken)
      const closed = await waitFor(b, e => e.type === 'ListenerClosed')
      expect(closed.type === 'ListenerClosed' && closed.reason?.message).to.match(/in use/)
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('keeps confirmed external addresses and tells behaviours and the application', async () => {
    const swarm = await newSwarm(() => combine({ recorder: new Recorder() }))
    try {
      const address = multiaddr('/ip4/203.0.113.7/tcp/4001')
      swarm.addExternalAddress(address)
      swarm.addExternalAddress(address)
      expect(swarm.externalAddresses().map(String)).to.deep.equal([address.toString()])
      swarm.removeExternalAddress(address)
      expect(swarm.externalAddresses()).to.deep.equal([])
      const [events] = await drive([swarm], { count: 2, filter: () => true })
      expect(events.map(e => e.type)).to.deep.equal(['ExternalAddrConfirmed', 'ExternalAddrExpired'])
      expect(swarm.behaviour.recorder.events.map(e => e.type)).to.deep.equal(['ExternalAddrConfirmed', 'ExternalAddrExpired'])
    } finally {
      await swarm.close()
    }
  })
})
