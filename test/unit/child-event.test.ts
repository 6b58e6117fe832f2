import { expect } from 'chai'
import { childEvent, combine, dummy, floodsub, gossipsub, identify, ping } from '../../src/index.js'
import { connect, drive, newSwarm } from '../../src/testing/index.js'
import type { ChildEventOf, CombinedEvent, ConnectionId, EventOf, SwarmEvent } from '../../src/index.js'
import type { PeerId } from '@libp2p/interface'

/** Compile-time equality of two types: `expectType<Equal<A, B>>(true)` fails to compile when they differ. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function expectType<T extends true> (_: T): void {}

type Children = { ping: ping.Behaviour, identify: identify.Behaviour }
type Combo = CombinedEvent<Children>
type Event = SwarmEvent<Combo>

const peerId = { toString: () => 'peer' } as unknown as PeerId
const pingSuccess: ping.Event = { type: 'Success', peerId, connectionId: 1 as ConnectionId, rtt: 3 }
const identifyError: identify.Event = { type: 'Error', peerId, connectionId: 1 as ConnectionId, error: new Error('bad') }

describe('childEvent: one child\'s events out of a combined behaviour\'s', () => {
  it('takes a child\'s event from a swarm event, and nothing from other children\'s or other swarm events', () => {
    const fromPing: Event = { type: 'Behaviour', event: { behaviour: 'ping', event: pingSuccess } }
    const fromIdentify: Event = { type: 'Behaviour', event: { behaviour: 'identify', event: identifyError } }
    const closed = { type: 'ListenerError', listenerId: 1, error: new Error('x') } as unknown as Event
    expect(childEvent(fromPing, 'ping')).to.equal(pingSuccess)
    expect(childEvent(fromPing, 'identify')).to.equal(undefined)
    expect(childEvent(fromIdentify, 'identify')).to.equal(identifyError)
    expect(childEvent(closed, 'ping')).to.equal(undefined)
  })

  it('takes a child\'s event from a combined event too, and from a combine inside a combine', () => {
    const combo: Combo = { behaviour: 'ping', event: pingSuccess }
    expect(childEvent(combo, 'ping')).to.equal(pingSuccess)
    type Outer = CombinedEvent<{ inner: ReturnType<typeof combine<Children>>, other: ReturnType<typeof dummy> }>
    const nested: SwarmEvent<Outer> = { type: 'Behaviour', event: { behaviour: 'inner', event: combo } }
    expect(childEvent(childEvent(nested, 'inner'), 'ping')).to.equal(pingSuccess)
    const other = { type: 'Behaviour', event: { behaviour: 'other', event: combo } } as unknown as SwarmEvent<Outer>
    expect(childEvent(childEvent(other, 'inner'), 'ping')).to.equal(undefined)
  })

  it('with a type, returns only that type of the child\'s events', () => {
    const fromIdentify: Event = { type: 'Behaviour', event: { behaviour: 'identify', event: identifyError } }
    const error = childEvent(fromIdentify, 'identify', 'Error')
    expect(error?.error.message).to.equal('bad')
    expect(childEvent(fromIdentify, 'identify', 'Received')).to.equal(undefined)
    expect(childEvent(fromIdentify, 'ping' as 'identify', 'Error')).to.equal(undefined)
  })

  it('is typed: the child\'s event, narrowed by type; unknown keys and types do not compile', () => {
    const event = { type: 'Behaviour', event: { behaviour: 'ping', event: pingSuccess } } as Event
    expectType<Equal<ReturnType<typeof childEvent<Event, 'ping'>>, ping.Event | undefined>>(true)
    expectType<Equal<ChildEventOf<Event, 'identify'>, EventOf<identify.Behaviour>>>(true)
    const received = childEvent(event, 'identify', 'Received')
    expectType<Equal<typeof received, Extract<identify.Event, { type: 'Received' }> | undefined>>(true)
    // @ts-expect-error: no child has this key
    childEvent(event, 'gossipsub')
    // @ts-expect-error: identify has no event of this type
    childEvent(event, 'identify', 'Message')
    // A child whose type is a union of behaviours (as in examples/chat.ts) gets the union of their events.
    type Either = SwarmEvent<CombinedEvent<{ pubsub: floodsub.Behaviour | gossipsub.Behaviour }>>
    const message = childEvent({ type: 'Dialing', connectionId: 1 } as Either, 'pubsub', 'Message')
    expectType<Equal<typeof message, Extract<floodsub.Event | gossipsub.Event, { type: 'Message' }> | undefined>>(true)
    expect(message).to.equal(undefined)
  })

  it('matches what two real swarms yield', async () => {
    const make = async (): Promise<ReturnType<typeof newSwarm<ReturnType<typeof combine<{ other: ReturnType<typeof dummy>, ping: ping.Behaviour }>>>>> =>
      newSwarm(() => combine({ other: dummy(), ping: new ping.Behaviour({ interval: 50 }) }))
    const a = await make()
    const b = await make()
    try {
      await connect(a, b)
      const [[event]] = await drive([a, b], { count: [1, 0], filter: e => childEvent(e, 'ping') != null })
      const pinged = childEvent(event, 'ping')
      expect(pinged?.peerId.equals(b.localPeerId)).to.equal(true)
      expect(childEvent(event, 'other')).to.equal(undefined)
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })
})
