import { expect } from 'chai'
import { multiaddr } from '@multiformats/multiaddr'
import {
  DialPeerConditionFalseError, DialTransportError, InvalidDialTargetError, InvalidListenAddressError, LocalPeerIdError, MemoryConnectionRefusedError, NoAddressesError,
  UnsupportedAddressError, WrongPeerIdError, combine, generateKeypair, peerIdOf
} from '../../src/index.js'
import { connect, drive, listen, newSwarm } from '../../src/testing/index.js'
import { AddressBook } from '../fixtures/behaviours.js'
import type { PeerId } from '@libp2p/interface'

async function threeSwarms () {
  const swarms = await Promise.all([0, 1, 2].map(async () => newSwarm(() => combine({ book: new AddressBook() }))))
  return { a: swarms[0], b: swarms[1], c: swarms[2], closeAll: async () => { await Promise.all(swarms.map(async s => { await s.close() })) } }
}

function thrown (fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  throw new Error('expected a throw')
}

async function randomPeer (): Promise<PeerId> {
  return peerIdOf(await generateKeypair())
}

describe('dialing', () => {
  it('throws NoAddressesError for a peer nobody knows an address of, and behaviours hear DialFailure', async () => {
    const { a, closeAll } = await threeSwarms()
    try {
      const peer = await randomPeer()
      const error = thrown(() => a.dial(peer))
      expect(error).to.be.instanceOf(NoAddressesError)
      expect(a.behaviour.book.of('DialFailure').map(f => f.error)).to.deep.equal([error])
    } finally {
      await closeAll()
    }
  })

  it('throws LocalPeerIdError when dialing ourselves', async () => {
    const { a, closeAll } = await threeSwarms()
    try {
      expect(thrown(() => a.dial(a.localPeerId))).to.be.instanceOf(LocalPeerIdError)
    } finally {
      await closeAll()
    }
  })

  it('dials a peer by id with the addresses a behaviour knows', async () => {
    const { a, b, closeAll } = await threeSwarms()
    try {
      a.behaviour.book.known.set(b.localPeerId.toString(), await listen(b))
      a.dial(b.localPeerId)
      const [[established]] = await drive([a, b], { count: [1, 0], filter: e => e.type === 'ConnectionEstablished' })
      expect(established.type === 'ConnectionEstablished' && established.peerId.equals(b.localPeerId)).to.equal(true)
    } finally {
      await closeAll()
    }
  })

  it('honours the peer condition: no second dial to a connected peer unless "always"', async () => {
    const { a, b, closeAll } = await threeSwarms()
    try {
      await connect(a, b)
      const address = b.listeners()[0]
      const error = thrown(() => a.dial({ peerId: b.localPeerId, addresses: [address] }))
      expect(error).to.be.instanceOf(DialPeerConditionFalseError)
      expect((error as DialPeerConditionFalseError).condition).to.equal('disconnectedAndNotDialing')

      a.dial({ peerId: b.localPeerId, addresses: [address], condition: 'always' })
      const [[second]] = await drive([a, b], { count: [1, 0], filter: e => e.type === 'ConnectionEstablished' })
      expect(second.type === 'ConnectionEstablished' && second.numEstablished).to.equal(2)
      expect(a.networkInfo()).to.deep.include({ numPeers: 1 })
      expect(a.networkInfo().connectionCounters.numEstablishedOutgoing).to.equal(2)
    } finally {
      await closeAll()
    }
  })

  it('reports a refused address as OutgoingConnectionError with a DialTransportError', async () => {
    const { a, closeAll } = await threeSwarms()
    try {
      const nowhere = multiaddr('/memory/4242424242')
      const connectionId = a.dial(nowhere)
      const [[event]] = await drive([a], { count: 1, filter: e => e.type === 'OutgoingConnectionError' })
      if (event.type !== 'OutgoingConnectionError') throw new Error('unreachable')
      expect(event.connectionId).to.equal(connectionId)
      expect(event.error).to.be.instanceOf(DialTransportError)
      const errors = (event.error as DialTransportError).errors
      expect(errors).to.have.length(1)
      expect(errors[0].address.toString()).to.equal(nowhere.toString())
      expect(errors[0].error).to.be.instanceOf(MemoryConnectionRefusedError)
      expect(a.behaviour.book.of('DialFailure')).to.have.length(1)
    } finally {
      await closeAll()
    }
  })

  it('reports WrongPeerIdError when the address leads to another peer', async () => {
    const { a, b, c, closeAll } = await threeSwarms()
    try {
      const address = await listen(b)
      a.dial({ peerId: c.localPeerId, addresses: [address] })
      const [[event]] = await drive([a, b], { count: [1, 0], filter: e => e.type === 'OutgoingConnectionError' })
      if (event.type !== 'OutgoingConnectionError') throw new Error('unreachable')
      expect(event.error).to.be.instanceOf(WrongPeerIdError)
      expect((event.error as WrongPeerIdError).obtained.equals(b.localPeerId)).to.equal(true)
      expect(a.isConnected(b.localPeerId)).to.equal(false)
    } finally {
      await closeAll()
    }
  })

  it('tries several addresses and reports the ones that failed before one succeeded', async () => {
    const { a, b, closeAll } = await threeSwarms()
    try {
      const good = await listen(b)
      const bad = multiaddr('/memory/4242424243')
      a.dial({ peerId: b.localPeerId, addresses: [bad, good], dialConcurrencyFactor: 1 })
      const [[event]] = await drive([a, b], { count: [1, 0], filter: e => e.type === 'ConnectionEstablished' })
      if (event.type !== 'ConnectionEstablished') throw new Error('unreachable')
      expect(event.concurrentDialErrors?.map(e => e.address.toString())).to.deep.equal([bad.encapsulate(`/p2p/${b.localPeerId.toString()}`).toString()])
      expect(event.endpoint.type === 'Dialer' && event.endpoint.address.toString()).to.equal(good.encapsulate(`/p2p/${b.localPeerId.toString()}`).toString())
    } finally {
      await closeAll()
    }
  })

  it('refuses to listen on an address no transport supports', async () => {
    const { a, closeAll } = await threeSwarms()
    try {
      expect(thrown(() => a.listenOn('/ip4/127.0.0.1/tcp/0'))).to.be.instanceOf(UnsupportedAddressError)
    } finally {
      await closeAll()
    }
  })

  it('dials a multiaddr given as a string, /p2p/ suffix included', async () => {
    const { a, b, closeAll } = await threeSwarms()
    try {
      const address = (await listen(b)).encapsulate(`/p2p/${b.localPeerId.toString()}`)
      a.dial(address.toString())
      const [[established]] = await drive([a, b], { count: [1, 0], filter: e => e.type === 'ConnectionEstablished' })
      expect(established.type === 'ConnectionEstablished' && established.peerId.equals(b.localPeerId)).to.equal(true)
    } finally {
      await closeAll()
    }
  })

  it('refuses an unusable dial target with InvalidDialTargetError saying what was passed, and behaviours hear DialFailure', async () => {
    const { a, closeAll } = await threeSwarms()
    try {
      const garbage = thrown(() => a.dial('/ip4/not-an-ip/tcp/1'))
      expect(garbage).to.be.instanceOf(InvalidDialTargetError)
      expect((garbage as Error).message).to.include('"/ip4/not-an-ip/tcp/1"').and.include('not a multiaddr')
      expect((garbage as InvalidDialTargetError).input).to.equal('/ip4/not-an-ip/tcp/1')
      const badPeer = thrown(() => a.dial('/memory/1/p2p/notapeerid'))
      expect(badPeer).to.be.instanceOf(InvalidDialTargetError)
      for (const value of [42, null, { hello: 'world' }, { addresses: ['/memory/1'] }]) {
        const error = thrown(() => a.dial(value as never))
        expect(error, JSON.stringify(value)).to.be.instanceOf(InvalidDialTargetError)
        expect((error as Error).message).to.include(JSON.stringify(value))
      }
      expect(a.behaviour.book.of('DialFailure').map(f => f.error)).to.have.length(6)
    } finally {
      await closeAll()
    }
  })

  it('refuses to listen on a string that is not a multiaddr, naming it', async () => {
    const { a, closeAll } = await threeSwarms()
    try {
      const error = thrown(() => a.listenOn('tcp://127.0.0.1:80'))
      expect(error).to.be.instanceOf(InvalidListenAddressError)
      expect((error as Error).message).to.include('"tcp://127.0.0.1:80"')
    } finally {
      await closeAll()
    }
  })
})
