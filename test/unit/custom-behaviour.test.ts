/**
 * The hello protocol of examples/custom-behaviour.ts, tested without sockets: the testing
 * section of docs/custom-behaviour.md is this file.
 */
import { expect } from 'chai'
import { DialDeniedError, ListenDeniedError } from '../../src/index.js'
import { connect, drive, listen, newSwarm } from '../../src/testing/index.js'
import { BlockedPeerError, HelloBehaviour } from '../../examples/custom-behaviour.js'

describe('the hello protocol (docs/custom-behaviour.md)', () => {
  it('greets a connected peer and hears the answer', async () => {
    const alice = await newSwarm(() => new HelloBehaviour('alice'))
    const bob = await newSwarm(() => new HelloBehaviour('bob'))
    try {
      await connect(alice, bob)
      expect(alice.behaviour.greet(bob.localPeerId)).to.equal(true)
      // Drive both swarms until each has one behaviour event.
      const [[answered], [greeted]] = await drive([alice, bob], { count: 1 })
      expect(answered.type === 'Behaviour' && answered.event).to.include({ type: 'Answered', answer: 'hello, alice!' })
      expect(greeted.type === 'Behaviour' && greeted.event).to.include({ type: 'Greeted', name: 'alice' })
    } finally {
      await Promise.all([alice.close(), bob.close()])
    }
  })

  it('refuses to greet a peer that is not connected', async () => {
    const alice = await newSwarm(() => new HelloBehaviour('alice'))
    const bob = await newSwarm(() => new HelloBehaviour('bob'))
    try {
      expect(alice.behaviour.greet(bob.localPeerId)).to.equal(false)
    } finally {
      await Promise.all([alice.close(), bob.close()])
    }
  })

  it('refuses greetings while the swarm has not taken the earlier ones (back-pressure)', async () => {
    const alice = await newSwarm(() => new HelloBehaviour('alice'))
    const bob = await newSwarm(() => new HelloBehaviour('bob'))
    try {
      await connect(alice, bob)
      let accepted = 0
      while (accepted < 1_000 && alice.behaviour.greet(bob.localPeerId)) accepted++
      expect(accepted).to.equal(64)
    } finally {
      await Promise.all([alice.close(), bob.close()])
    }
  })

  it('denies connections from and to blocked peers', async () => {
    const alice = await newSwarm(() => new HelloBehaviour('alice'))
    const bob = await newSwarm(() => new HelloBehaviour('bob', new Set([alice.localPeerId.toString()])))
    try {
      // alice dials bob: bob's inbound gate refuses her.
      alice.dial(await listen(bob))
      const [[refused]] = await drive([bob, alice], { count: [1, 0], filter: e => e.type === 'IncomingConnectionError' })
      if (refused.type !== 'IncomingConnectionError') throw new Error('unreachable')
      expect(refused.error).to.be.instanceOf(ListenDeniedError)
      const denied = refused.error as ListenDeniedError
      expect(denied.cause.causeAs(BlockedPeerError)?.peerId.equals(alice.localPeerId)).to.equal(true)

      // bob dials alice: his outbound gate refuses the connection once it is established.
      bob.dial(await listen(alice))
      const [[failed]] = await drive([bob, alice], { count: [1, 0], filter: e => e.type === 'OutgoingConnectionError' })
      if (failed.type !== 'OutgoingConnectionError') throw new Error('unreachable')
      expect(failed.error).to.be.instanceOf(DialDeniedError)
      expect(bob.isConnected(alice.localPeerId)).to.equal(false)
    } finally {
      await Promise.all([alice.close(), bob.close()])
    }
  })
})
