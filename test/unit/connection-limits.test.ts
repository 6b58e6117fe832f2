import { expect } from 'chai'
import { multiaddr } from '@multiformats/multiaddr'
import { ConfigError, DialDeniedError, ListenDeniedError, combine, connectionLimits, dummy } from '../../src/index.js'
import { connect, drive, listen, newSwarm } from '../../src/testing/index.js'
import type { ConnectionLimits, LimitKind } from '../../src/protocols/connection-limits/index.js'

async function limited (limits: ConnectionLimits) {
  return newSwarm(() => combine({ limits: new connectionLimits.Behaviour(limits) }))
}

function limitOf (error: unknown): { kind: LimitKind, limit: number } | undefined {
  if (!(error instanceof DialDeniedError || error instanceof ListenDeniedError)) return undefined
  const exceeded = error.cause.causeAs(connectionLimits.LimitExceededError)
  return exceeded == null ? undefined : { kind: exceeded.kind, limit: exceeded.limit }
}

describe('connection limits', () => {
  it('denies a second connection to the same peer, unless the peer is bypassed', async () => {
    const a = await limited({ maxEstablishedPerPeer: 1 })
    const b = await newSwarm(() => dummy())
    try {
      await connect(a, b)
      a.dial({ peerId: b.localPeerId, addresses: b.listeners(), condition: 'always' })
      const [[denied]] = await drive([a, b], { count: [1, 0], filter: e => e.type === 'OutgoingConnectionError' })
      if (denied.type !== 'OutgoingConnectionError') throw new Error('unreachable')
      expect(denied.error).to.be.instanceOf(DialDeniedError)
      expect(limitOf(denied.error)).to.deep.equal({ kind: 'EstablishedPerPeer', limit: 1 })

      a.behaviour.limits.bypassPeerId(b.localPeerId)
      a.dial({ peerId: b.localPeerId, addresses: b.listeners(), condition: 'always' })
      const [[second]] = await drive([a, b], { count: [1, 0], filter: e => e.type === 'ConnectionEstablished' })
      expect(second.type === 'ConnectionEstablished' && second.numEstablished).to.equal(2)
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('denies incoming connections beyond maxEstablishedIncoming, and frees the slot when one closes', async () => {
    const listener = await limited({ maxEstablishedIncoming: 1 })
    const first = await newSwarm(() => dummy())
    const second = await newSwarm(() => dummy())
    try {
      await connect(first, listener)
      second.dial(listener.listeners()[0])
      const [[refused]] = await drive([listener, second], { count: [1, 0], filter: e => e.type === 'IncomingConnectionError' })
      if (refused.type !== 'IncomingConnectionError') throw new Error('unreachable')
      expect(refused.error).to.be.instanceOf(ListenDeniedError)
      expect(limitOf(refused.error)).to.deep.equal({ kind: 'EstablishedIncoming', limit: 1 })

      first.disconnectPeerId(listener.localPeerId)
      await drive([listener, first], { count: [1, 0], filter: e => e.type === 'ConnectionClosed' })
      await connect(second, listener)
      expect(listener.isConnected(second.localPeerId)).to.equal(true)
    } finally {
      await Promise.all([listener.close(), first.close(), second.close()])
    }
  })

  it('denies a dial beyond maxPendingOutgoing at once, and counts a failed dial out again', async () => {
    const a = await limited({ maxPendingOutgoing: 1 })
    const b = await newSwarm(() => dummy())
    try {
      a.dial(multiaddr('/memory/4242424244'))
      let thrown: unknown
      try {
        a.dial(await listen(b))
      } catch (err) {
        thrown = err
      }
      expect(thrown).to.be.instanceOf(DialDeniedError)
      expect(limitOf(thrown)).to.deep.equal({ kind: 'PendingOutgoing', limit: 1 })
      await drive([a], { count: 1, filter: e => e.type === 'OutgoingConnectionError' })
      // The refused dial failed and was counted out: the next one may go.
      await connect(a, b)
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('caps the total of established connections', async () => {
    const a = await limited({ maxEstablished: 1 })
    const b = await newSwarm(() => dummy())
    const c = await newSwarm(() => dummy())
    try {
      await connect(a, b)
      a.dial(await listen(c))
      const [[denied]] = await drive([a, c], { count: [1, 0], filter: e => e.type === 'OutgoingConnectionError' })
      expect(limitOf(denied.type === 'OutgoingConnectionError' ? denied.error : undefined)).to.deep.equal({ kind: 'EstablishedTotal', limit: 1 })
    } finally {
      await Promise.all([a.close(), b.close(), c.close()])
    }
  })

  it('rejects invalid limits', () => {
    expect(() => new connectionLimits.Behaviour({ maxEstablished: -1 })).to.throw(ConfigError).with.property('field', 'maxEstablished')
  })
})
