import { expect } from 'chai'
import { select } from '@libp2p/multistream-select'
import { multiaddr } from '@multiformats/multiaddr'
import { combine, floodsub, generateKeypair, peerIdOf } from '../../src/index.js'
import { noiseYamuxUpgrader } from '../../src/upgrade/noise-yamux.js'
import { dialUpgraded } from '../../src/upgrade/upgrader.js'
import { MemoryTransport } from '../../src/transport/memory.js'
import { connect, drive, driveUntil, listen, newSwarm } from '../../src/testing/index.js'
import { AddressBook } from '../fixtures/behaviours.js'
import { FakeOutbound } from '../fixtures/gossipsub-harness.js'
import type { AnyBehaviour, Swarm } from '../../src/index.js'
import type { StreamHandler } from '../../src/protocols/pubsub/stream-handler.js'
import type { ConnectionId } from '../../src/core/ids.js'
import type { PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

async function node (anonymous = false) {
  return newSwarm(key => combine({
    floodsub: new floodsub.Behaviour({ authenticity: anonymous ? floodsub.MessageAuthenticity.anonymous() : floodsub.MessageAuthenticity.signed(key) })
  }))
}

const topic = new floodsub.IdentTopic('chat')
const text = (s: string) => new TextEncoder().encode(s)

describe('floodsub over the memory transport', () => {
  for (const anonymous of [false, true]) {
    it(`delivers a published message (${anonymous ? 'StrictNoSign' : 'StrictSign'}) and reports subscriptions`, async () => {
      const a = await node(anonymous)
      const b = await node(anonymous)
      try {
        a.behaviour.floodsub.subscribe(topic)
        b.behaviour.floodsub.subscribe(topic)
        await connect(a, b)
        await driveUntil([a, b], () => b.behaviour.floodsub.subscribers(topic).length === 1)
        const id = b.behaviour.floodsub.publish(topic, text('hello'))
        const [[received]] = await drive([a, b], { count: [1, 0], filter: e => e.type === 'Behaviour' && e.event.event.type === 'Message' })
        if (received.type !== 'Behaviour' || received.event.event.type !== 'Message') throw new Error('unreachable')
        const event = received.event.event
        expect(new TextDecoder().decode(event.message.data)).to.equal('hello')
        expect(event.message.topic).to.equal('chat')
        expect(event.messageId).to.deep.equal(id)
        expect(event.propagationSource.equals(b.localPeerId)).to.equal(true)
        if (anonymous) expect(event.message.source).to.equal(undefined)
        else expect(event.message.source?.equals(b.localPeerId)).to.equal(true)
      } finally {
        await a.close()
        await b.close()
      }
    })
  }
})

describe('floodsub behaviour', () => {
  it('refuses to publish when not subscribed, too large, a duplicate, or (if configured) with nobody to hear', async () => {
    const swarm = await newSwarm(() => new floodsub.Behaviour({
      authenticity: floodsub.MessageAuthenticity.anonymous(),
      maxTransmitSize: 1024,
      publishRequiresPeers: true
    }))
    try {
      const kind = (fn: () => unknown): string | undefined => {
        try {
          fn()
        } catch (err) {
          return err instanceof floodsub.PublishError ? err.kind : String(err)
        }
        return undefined
      }
      expect(kind(() => swarm.behaviour.publish(topic, text('x')))).to.equal('NotSubscribed')
      swarm.behaviour.subscribe(topic)
      expect(kind(() => swarm.behaviour.publish(topic, new Uint8Array(2048)))).to.equal('MessageTooLarge')
      expect(kind(() => swarm.behaviour.publish(topic, text('x')))).to.equal('NoPeersSubscribedToTopic')
    } finally {
      await swarm.close()
    }
    const lax = await newSwarm(() => new floodsub.Behaviour({ authenticity: floodsub.MessageAuthenticity.anonymous() }))
    try {
      lax.behaviour.subscribe(topic)
      lax.behaviour.publish(topic, text('same'))
      // Unsigned ids are content hashes: the same payload again is a duplicate.
      expect(() => lax.behaviour.publish(topic, text('same'))).to.throw(floodsub.PublishError).with.property('kind', 'Duplicate')
    } finally {
      await lax.close()
    }
  })

  it('tells peers about unsubscriptions, and stops sending them the topic', async () => {
    const a = await node()
    const b = await node()
    try {
      a.behaviour.floodsub.subscribe(topic)
      b.behaviour.floodsub.subscribe(topic)
      await connect(a, b)
      await driveUntil([a, b], () => a.behaviour.floodsub.subscribers(topic).length === 1)
      b.behaviour.floodsub.unsubscribe(topic)
      const [[gone]] = await drive([a, b], { count: [1, 0], filter: e => e.type === 'Behaviour' && e.event.event.type === 'Unsubscribed' })
      expect(gone.type === 'Behaviour' && gone.event.event.type === 'Unsubscribed' && gone.event.event.topic).to.equal('chat')
      expect(a.behaviour.floodsub.subscribers(topic)).to.deep.equal([])
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('does not deliver or forward a message its validator rejects, and reports it', async () => {
    const [a, b, c] = await Promise.all([node(), node(), node()])
    try {
      for (const n of [a, b, c]) n.behaviour.floodsub.subscribe(topic)
      b.behaviour.floodsub.setValidator(topic, message => new TextDecoder().decode(message.data) === 'spam' ? 'reject' : 'accept')
      await connect(a, b)
      await connect(b, c)
      await driveUntil([a, b, c], () => b.behaviour.floodsub.subscribers(topic).length === 2 && a.behaviour.floodsub.subscribers(topic).length === 1 &&
        c.behaviour.floodsub.subscribers(topic).length === 1)
      a.behaviour.floodsub.publish(topic, text('spam'))
      a.behaviour.floodsub.publish(topic, text('ham'))
      const [, [rejected, delivered], [forwarded]] = await drive([a, b, c], {
        count: [0, 2, 1],
        filter: e => e.type === 'Behaviour' && (e.event.event.type === 'Message' || e.event.event.type === 'InvalidMessage')
      })
      expect(rejected.type === 'Behaviour' && rejected.event.event.type === 'InvalidMessage' && rejected.event.event.reason).to.equal('ValidationFailed')
      expect(delivered.type === 'Behaviour' && delivered.event.event.type === 'Message' && new TextDecoder().decode(delivered.event.event.message.data)).to.equal('ham')
      expect(forwarded.type === 'Behaviour' && forwarded.event.event.type === 'Message' && new TextDecoder().decode(forwarded.event.event.message.data)).to.equal('ham')
    } finally {
      await Promise.all([a.close(), b.close(), c.close()])
    }
  })

  it('dials peers of its partial view and redials them when they disconnect', async () => {
    const a = await newSwarm(key => combine({
      book: new AddressBook(),
      floodsub: new floodsub.Behaviour({ authenticity: floodsub.MessageAuthenticity.signed(key) })
    }))
    const b = await node()
    try {
      const address = await listen(b)
      a.addPeerAddress(b.localPeerId, address)
      a.behaviour.floodsub.addNodeToPartialView(b.localPeerId)
      await drive([a, b], { count: 1, filter: e => e.type === 'ConnectionEstablished' })
      expect(b.disconnectPeerId(a.localPeerId)).to.equal(true)
      await drive([a, b], { count: [2, 0], filter: e => e.type === 'ConnectionClosed' || e.type === 'ConnectionEstablished' })
      expect(a.isConnected(b.localPeerId)).to.equal(true)
    } finally {
      await a.close()
      await b.close()
    }
  })
})

describe('floodsub against a misbehaving peer', () => {
  /** A peer that speaks raw bytes on a /floodsub/1.0.0 stream to `victim`. */
  async function rawPeer (victim: Swarm<AnyBehaviour>, address: Multiaddr) {
    const upgrader = noiseYamuxUpgrader(await generateKeypair())
    const dialing = new MemoryTransport().dial(address, { upgrader: upgrader.transportUpgrader(async () => {}), signal: AbortSignal.timeout(5_000) })
    await drive([victim], { count: 1, filter: e => e.type === 'ConnectionEstablished' })
    const upgraded = dialUpgraded(await dialing)
    const stream = await upgraded.muxer.createStream()
    // The victim's connection negotiates by itself, without the victim being driven.
    await select(stream, [floodsub.PROTOCOL], { signal: AbortSignal.timeout(5_000) })
    return { upgraded, stream }
  }

  for (const [what, bytes] of [
    ['a frame announced over maxTransmitSize', new Uint8Array([0x80, 0x80, 0x80, 0x01])],
    ['an undecodable RPC', new Uint8Array([3, 0x0a, 0x05, 0x08])]
  ] as const) {
    it(`reports ${what} as InvalidRpc and closes the connection, and keeps serving others`, async () => {
      const victim = await newSwarm(key => new floodsub.Behaviour({ authenticity: floodsub.MessageAuthenticity.signed(key), maxTransmitSize: 1024 }))
      const address = await listen(victim)
      const { upgraded, stream } = await rawPeer(victim, address)
      try {
        stream.send(bytes)
        const [[invalid, closed]] = await drive([victim], { count: 2, filter: e => (e.type === 'Behaviour' && e.event.type === 'InvalidRpc') || e.type === 'ConnectionClosed' })
        expect(invalid.type === 'Behaviour' && invalid.event.type).to.equal('InvalidRpc')
        expect(closed.type).to.equal('ConnectionClosed')
        const honest = await node()
        await connect(honest, victim)
        expect(victim.isConnected(honest.localPeerId)).to.equal(true)
        await honest.close()
      } finally {
        upgraded.muxer.abort(new Error('done'))
        await victim.close()
      }
    })
  }
})

describe('floodsub forwarding, driven without sockets', () => {
  /** The behaviour with fake peers: each connection's real handler writes to a fake stream. */
  async function withPeers (n: number) {
    const behaviour = new floodsub.Behaviour({ authenticity: floodsub.MessageAuthenticity.anonymous() })
    behaviour.subscribe(topic)
    const peers: Array<{ peerId: PeerId, connectionId: ConnectionId, handler: StreamHandler, stream: FakeOutbound }> = []
    for (let i = 0; i < n; i++) {
      const peerId = peerIdOf(await generateKeypair())
      const connectionId = (9_000 + i) as ConnectionId
      const handler = behaviour.handleEstablishedInboundConnection({ connectionId, peerId, localAddr: multiaddr('/memory/1'), remoteAddr: multiaddr('/memory/2') })
      const stream = new FakeOutbound(false)
      handler.onConnectionEvent({ type: 'FullyNegotiatedOutbound', stream: stream as unknown as Stream, protocol: floodsub.PROTOCOL, info: undefined })
      behaviour.onSwarmEvent({ type: 'ConnectionEstablished', peerId, connectionId, endpoint: { type: 'Listener', localAddr: multiaddr('/memory/1'), sendBackAddr: multiaddr('/memory/2') }, failedAddresses: [], otherEstablished: 0 })
      behaviour.onConnectionHandlerEvent(peerId, connectionId, { type: 'Rpc', rpc: { subscriptions: [{ subscribe: true, topicid: topic.hash }] } })
      peers.push({ peerId, connectionId, handler, stream })
    }
    /** Hand what the behaviour asks for to the peers' handlers. */
    const route = (): void => {
      for (let action = behaviour.poll({ waker: { wake: () => {} } }); action != null; action = behaviour.poll({ waker: { wake: () => {} } })) {
        if (action.type === 'NotifyHandler') peers.find(p => p.connectionId === action.handler)?.handler.onBehaviourEvent(action.event)
      }
    }
    /** What each handler reports, handed back to the behaviour as the connection would. */
    const report = (): void => {
      for (const peer of peers) {
        for (let event = peer.handler.poll({ waker: { wake: () => {} } }); event?.type === 'NotifyBehaviour'; event = peer.handler.poll({ waker: { wake: () => {} } })) {
          behaviour.onConnectionHandlerEvent(peer.peerId, peer.connectionId, event.event)
        }
      }
    }
    route()
    return { behaviour, peers, route, report }
  }

  it('sends no copy back to a peer whose own copy arrives in the same turn, before the forward leaves', async () => {
    const { behaviour, peers: [source, echo, other], route, report } = await withPeers(3)
    const message = { topic: topic.hash, data: text('crossing') }
    behaviour.onConnectionHandlerEvent(source.peerId, source.connectionId, { type: 'Rpc', rpc: { publish: [message] } })
    route()
    // echo relays the same message to us before the turn ends: its copy and ours cross.
    behaviour.onConnectionHandlerEvent(echo.peerId, echo.connectionId, { type: 'Rpc', rpc: { publish: [message] } })
    route()
    await new Promise(resolve => setImmediate(resolve))
    await new Promise(resolve => setImmediate(resolve))
    const data = (peer: { stream: FakeOutbound }): string[] => peer.stream.rpcs().flatMap(r => r.publish ?? []).map(m => new TextDecoder().decode(m.data))
    expect(data(other)).to.deep.equal(['crossing'])
    expect(data(echo)).to.deep.equal([])
    expect(data(source)).to.deep.equal([])
    report()
    expect(behaviour.totals()).to.include({ received: 1, duplicates: 1, forwarded: 2, echoes: 1 })
  })
})
