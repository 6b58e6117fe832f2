/**
 * Kademlia's connection handler alone, without sockets (in-memory stream pairs, fake time where
 * time matters): the three bounds of the handler that the swarm tests do not reach: a request's
 * own timeout (`substreamsTimeout`), the streams of ours at once (`maxOutboundStreams`, one
 * until the remote answered a negotiation), and the 64 remote requests that may wait for the
 * behaviour before the inbound streams stop reading.
 */
import FakeTimers from '@sinonjs/fake-timers'
import { streamPair } from '@libp2p/utils'
import { expect } from 'chai'
import { kad } from '../../src/index.js'
import { StreamUpgradeError } from '../../src/behaviour/connection-handler.js'
import { encodeFrame, readFrame } from '../../src/behaviour/framing.js'
import { config } from '../../src/protocols/kad/config.js'
import { randomPeerId } from '../fixtures/kad-harness.js'
import type { ConnectionHandlerEvent } from '../../src/behaviour/connection-handler.js'
import type { Stream } from '@libp2p/interface'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const cx = { waker: { wake: () => {} } }
const findNode = (key: string): kad.Message => ({ type: 'FIND_NODE', key: bytes(key), closerPeers: [], providerPeers: [] })
const tag = (queryId: number): kad.RequestTag => ({ queryId: queryId as kad.QueryId, phase: 0 })

type Polled = ConnectionHandlerEvent<kad.ToBehaviour> | undefined

/** Poll until the handler has nothing (bounded). */
function drain (handler: kad.Handler, context: typeof cx = cx): Array<NonNullable<Polled>> {
  const out: Array<NonNullable<Polled>> = []
  for (let i = 0; i < 10_000; i++) {
    const event = handler.poll(context)
    if (event === undefined) return out
    out.push(event)
  }
  throw new Error('the handler never stopped')
}

const opened = (events: Array<NonNullable<Polled>>): Array<{ tag: kad.RequestTag }> =>
  events.flatMap(e => e.type === 'OutboundSubstreamRequest' ? [e.protocol.info as { tag: kad.RequestTag }] : [])
const reported = (events: Array<NonNullable<Polled>>): kad.ToBehaviour[] => events.flatMap(e => e.type === 'NotifyBehaviour' ? [e.event] : [])

describe('kad: the connection handler', () => {
  describe('with fake time', () => {
    let clock: ReturnType<typeof FakeTimers.install>
    beforeEach(() => { clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'performance'] }) })
    afterEach(() => { clock.uninstall() })

    it('fails a request with a typed Timeout after substreamsTimeout, waiting for its stream or for its answer, and resets the stream', async () => {
      const handler = new kad.Handler({ config: config({ substreamsTimeout: 10_000 }), mode: 'server', peerId: randomPeerId() })
      handler.onBehaviourEvent({ type: 'Request', tag: tag(1), message: findNode('a') })
      const [open] = drain(handler)
      if (open?.type !== 'OutboundSubstreamRequest') throw new Error('expected a stream request')
      expect(open.protocol.timeout).to.equal(10_000)
      expect(handler.connectionKeepAlive()).to.equal(true)
      clock.tick(9_999)
      expect(drain(handler)).to.deep.equal([])
      clock.tick(1)
      const [failed] = reported(drain(handler))
      if (failed?.type !== 'RequestFailed') throw new Error('expected RequestFailed')
      expect(failed.error).to.be.instanceOf(kad.RequestError)
      expect(failed.error.kind).to.equal('Timeout')
      expect(failed.error.code).to.equal('ERR_KAD_REQUEST_TIMEOUT')
      expect(failed.tag).to.deep.equal(tag(1))
      expect(handler.connectionKeepAlive()).to.equal(false)
      // Its stream, negotiated too late, is reset at once.
      const [late, remote] = await streamPair()
      handler.onConnectionEvent({ type: 'FullyNegotiatedOutbound', stream: late, protocol: kad.PROTOCOL, info: open.protocol.info })
      expect(late.status).to.not.equal('open')
      await readFrame(remote, { maxSize: 1024 }).then(() => { throw new Error('read a frame of a reset stream') }, () => {})

      // A request whose stream is negotiated but whose answer never comes.
      handler.onBehaviourEvent({ type: 'Request', tag: tag(2), message: findNode('b') })
      const second = drain(handler).find(e => e.type === 'OutboundSubstreamRequest')
      if (second?.type !== 'OutboundSubstreamRequest') throw new Error('expected a stream request')
      const [ours, theirs] = await streamPair()
      handler.onConnectionEvent({ type: 'FullyNegotiatedOutbound', stream: ours, protocol: kad.PROTOCOL, info: second.protocol.info })
      const request = kad.decodeMessage(await readFrame(theirs, { maxSize: 1024 }))
      expect(request.type).to.equal('FIND_NODE')
      expect(reported(drain(handler)).filter(e => e.type !== 'ProtocolConfirmed')).to.deep.equal([])
      clock.tick(10_000)
      await clock.runAllAsync()
      const [timedOut] = reported(drain(handler))
      if (timedOut?.type !== 'RequestFailed') throw new Error('expected RequestFailed')
      expect(timedOut.error.kind).to.equal('Timeout')
      expect(ours.status).to.not.equal('open')
      handler.close()
    })

    it('resets a remote stream that stopped within a request at substreamsTimeout, not before, and a garbage collection meanwhile changes nothing', async () => {
      const handler = new kad.Handler({ config: config({ substreamsTimeout: 10_000 }), mode: 'server', peerId: randomPeerId() })
      const [ours, theirs] = await streamPair()
      handler.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: ours, protocol: kad.PROTOCOL, info: undefined })
      theirs.send(new Uint8Array([5])) // one byte of a length prefix, and nothing more
      await clock.tickAsync(9_999)
      // On Node 20 a timeout inside AbortSignal.any did not survive a collection (nodejs/node#57736).
      const gc = (globalThis as { gc?: () => void }).gc
      if (gc == null) throw new Error('run with --expose-gc (.mocharc does)')
      gc()
      expect(ours.status).to.equal('open')
      await clock.tickAsync(1)
      expect(ours.status).to.not.equal('open')
      expect(reported(drain(handler)).filter(e => e.type === 'InboundError')).to.have.length(1)
      handler.close()
    })

    it('opens at most maxOutboundStreams streams at once (one until the remote answered a negotiation); the others wait, within their timeout', () => {
      const handler = new kad.Handler({ config: config({ maxOutboundStreams: 3, substreamsTimeout: 10_000 }), mode: 'server', peerId: randomPeerId() })
      for (let i = 1; i <= 8; i++) handler.onBehaviourEvent({ type: 'Request', tag: tag(i), message: findNode(`k${i}`) })
      // One stream until the remote answered a negotiation.
      const first = drain(handler)
      expect(opened(first).map(r => r.tag.queryId)).to.deep.equal([1])
      // It answered (that it does not speak the protocol, here): three at once from now on.
      handler.onConnectionEvent({ type: 'DialUpgradeError', info: opened(first)[0], error: new StreamUpgradeError('NegotiationFailed', 'na') })
      const next = drain(handler)
      const failed = reported(next)
      expect(failed.map(e => e.type === 'RequestFailed' ? e.error.kind : e.type)).to.deep.equal(['UnsupportedProtocols'])
      const inFlight = opened(next)
      expect(inFlight.map(r => r.tag.queryId)).to.deep.equal([2, 3, 4])
      // At the limit nothing more opens; one ending lets the next one open.
      clock.tick(5_000)
      expect(drain(handler)).to.deep.equal([])
      handler.onConnectionEvent({ type: 'DialUpgradeError', info: inFlight[0], error: new StreamUpgradeError('Io', 'reset') })
      const after = drain(handler)
      expect(reported(after).map(e => e.type === 'RequestFailed' ? `${e.tag.queryId}:${e.error.kind}` : e.type)).to.deep.equal(['2:Io'])
      expect(opened(after).map(r => r.tag.queryId)).to.deep.equal([5])
      // The requests still waiting for a stream (6, 7, 8) fail at their own deadline, as the
      // ones holding a stream do: 10 s after they were made, not after a stream freed up.
      clock.tick(5_000)
      const timedOut = reported(drain(handler))
      expect(timedOut.map(e => e.type === 'RequestFailed' ? `${e.tag.queryId}:${e.error.kind}` : e.type).sort()).to.deep.equal(
        ['3:Timeout', '4:Timeout', '5:Timeout', '6:Timeout', '7:Timeout', '8:Timeout'])
      expect(handler.connectionKeepAlive()).to.equal(false)
      handler.close()
    })
  })

  it('holds at most 64 remote requests for the behaviour: the inbound streams stop reading until it takes some', async () => {
    const handler = new kad.Handler({ config: config({ maxInboundStreams: 4 }), mode: 'server', peerId: randomPeerId() })
    const provider = randomPeerId()
    // ADD_PROVIDER has no answer: a remote can send them back to back on one stream.
    const addProvider = encodeFrame(kad.encodeMessage({ type: 'ADD_PROVIDER', key: bytes('key'), closerPeers: [], providerPeers: [{ id: provider, addrs: [], connection: 'CONNECTED' }] }))
    // Every report wakes the handler's waker: count them, to wait for the frames to arrive
    // (the streams deliver them on timers) rather than for a number of turns.
    let wakes = 0
    const counting = { waker: { wake: () => { wakes++ } } }
    expect(drain(handler, counting)).to.deep.equal([])
    const wakesAtLeast = async (n: number): Promise<void> => {
      for (let i = 0; i < 5_000 && wakes < n; i++) await new Promise(resolve => setTimeout(resolve, 1))
      // A little longer: a 65th report would show now (and fail the test).
      for (let i = 0; i < 20; i++) await new Promise(resolve => setImmediate(resolve))
    }
    const streams: Array<[Stream, Stream]> = []
    for (let s = 0; s < 2; s++) {
      const [ours, theirs] = await streamPair()
      streams.push([ours, theirs])
      handler.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: ours, protocol: kad.PROTOCOL, info: undefined })
      for (let i = 0; i < 100; i++) theirs.send(addProvider)
    }
    await wakesAtLeast(64)
    // Nobody polled: 64 requests wait (and the protocol's confirmation), no more.
    const held = reported(drain(handler, counting))
    expect(held.filter(e => e.type === 'InboundRequest')).to.have.length(64)
    // Taking them made room: the streams read on, never more than 64 waiting, until all arrived.
    const rounds = [held.filter(e => e.type === 'InboundRequest').length]
    const all = [...held]
    for (let round = 0; round < 20 && all.filter(e => e.type === 'InboundRequest').length < 200; round++) {
      wakes = 0
      await wakesAtLeast(Math.min(64, 200 - all.filter(e => e.type === 'InboundRequest').length))
      const more = reported(drain(handler, counting))
      rounds.push(more.filter(e => e.type === 'InboundRequest').length)
      all.push(...more)
    }
    expect(rounds.slice(0, -1).every(n => n === 64), `requests waiting per round: ${rounds.join(', ')}`).to.equal(true)
    expect(rounds[rounds.length - 1]).to.be.within(1, 64)
    const requests = all.filter(e => e.type === 'InboundRequest')
    expect(requests).to.have.length(200)
    for (const event of requests) {
      if (event.type === 'InboundRequest') expect(event.request.type).to.equal('ADD_PROVIDER')
    }
    handler.close()
    for (const [, theirs] of streams) theirs.abort(new Error('done'))
  })
})
