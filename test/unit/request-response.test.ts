/**
 * Request-response over the memory transport: exchanges, outcomes, limits, timeouts and
 * streams, through the public API only.
 */
import { expect } from 'chai'
import { combine, DialPeerConditionFalseError, NoAddressesError, requestResponse } from '../../src/index.js'
import { connect, driveUntil, listen, newSwarm } from '../../src/testing/index.js'
import { AddressBook } from '../fixtures/behaviours.js'
import type { AnyBehaviour, ConnectionEvent, Swarm, SwarmEvent } from '../../src/index.js'
import type { Stream } from '@libp2p/interface'

type Request = { readonly n: number, readonly pad?: string }
type Response = { readonly n: number, readonly echo: string }
type RR = requestResponse.Behaviour<Request, Response>
type RREvent = requestResponse.Event<Request, Response>

const PROTOCOL = '/peerswarm-test/json/1.0.0'

/** Every stream negotiated by the handlers of `behaviour`, to check that none is left open. */
class StreamWatch {
  readonly streams: Stream[] = []

  /** Record the streams of every handler `behaviour` creates from now on. */
  watch<B extends RR> (behaviour: B): B {
    for (const gate of ['handleEstablishedInboundConnection', 'handleEstablishedOutboundConnection'] as const) {
      const original = behaviour[gate].bind(behaviour) as (c: never) => requestResponse.Handler<Request, Response>
      behaviour[gate] = ((connection: never) => {
        const handler = original(connection)
        const onConnectionEvent = handler.onConnectionEvent.bind(handler)
        handler.onConnectionEvent = (event: ConnectionEvent) => {
          if (event.type === 'FullyNegotiatedInbound' || event.type === 'FullyNegotiatedOutbound') this.streams.push(event.stream)
          onConnectionEvent(event)
        }
        return handler
      }) as B[typeof gate]
    }
    return behaviour
  }

  /** Streams neither closed nor reset. */
  get open (): number {
    return this.streams.filter(s => s.status === 'open' || s.status === 'closing').length
  }
}

async function rrSwarm (options: Partial<requestResponse.Config> = {}, protocols: ReadonlyArray<string | requestResponse.ProtocolConfig> = [PROTOCOL],
  limits: requestResponse.SizeLimits = {}, watch?: StreamWatch): Promise<Swarm<RR>> {
  return newSwarm(() => {
    const behaviour = new requestResponse.Behaviour(requestResponse.jsonCodec<Request, Response>(limits), protocols, options)
    return watch == null ? behaviour : watch.watch(behaviour)
  })
}

/**
 * Drive `swarms` until `until()` holds, handing each behaviour event to `on` (which may answer
 * requests). Bounded by `timeout`.
 */
async function run<B extends AnyBehaviour> (swarms: ReadonlyArray<Swarm<B>>, on: (index: number, event: SwarmEvent<RREvent>) => void,
  until: () => boolean, timeout = 10_000): Promise<void> {
  const controller = new AbortController()
  const timer = setTimeout(() => { controller.abort(new Error(`condition not met within ${timeout} ms`)) }, timeout)
  try {
    await Promise.all(swarms.map(async (swarm, i) => {
      while (!until()) {
        let event
        try {
          event = await swarm.selectNextSome({ signal: controller.signal })
        } catch (err) {
          if (until()) return
          throw err
        }
        on(i, event as SwarmEvent<RREvent>)
      }
      controller.abort(new Error('done'))
    })).catch((err: unknown) => {
      if (!until()) throw err
    })
  } finally {
    clearTimeout(timer)
  }
}

/** The behaviour event of a swarm event, if any. */
function rr (event: SwarmEvent<RREvent>): RREvent | undefined {
  return event.type === 'Behaviour' ? event.event : undefined
}

/** An event collector that answers every request with `answer` (none: never answers). */
function collector (swarms: ReadonlyArray<Swarm<RR>>, answer?: (request: Request) => Response) {
  const events: RREvent[][] = swarms.map(() => [])
  const on = (i: number, event: SwarmEvent<RREvent>): void => {
    const e = rr(event)
    if (e == null) return
    events[i].push(e)
    if (answer != null && e.type === 'Message' && e.message.type === 'Request') {
      expect(swarms[i].behaviour.sendResponse(e.message.channel, answer(e.message.request))).to.equal(true)
    }
  }
  const of = <T extends RREvent['type']>(i: number, type: T): Array<Extract<RREvent, { type: T }>> =>
    events[i].filter((e): e is Extract<RREvent, { type: T }> => e.type === type)
  return { events, on, of }
}

const echo = (request: Request): Response => ({ n: request.n, echo: `echo ${request.n}` })

describe('request-response', () => {
  const swarms: Array<Swarm<AnyBehaviour>> = []
  async function track<B extends AnyBehaviour> (swarm: Promise<Swarm<B>>): Promise<Swarm<B>> {
    const s = await swarm
    swarms.push(s as unknown as Swarm<AnyBehaviour>)
    return s
  }
  afterEach(async () => {
    await Promise.all(swarms.splice(0).map(async s => s.close()))
  })

  it('a request and its response: ids, peers and connections match, and each side hears the outcome once', async () => {
    const a = await track(rrSwarm())
    const b = await track(rrSwarm())
    const ids = await connect(a, b)
    const c = collector([a, b], echo)
    const requestId = a.behaviour.sendRequest(b.localPeerId, { n: 7 })
    expect(a.behaviour.isPendingOutbound(b.localPeerId, requestId)).to.equal(true)
    await run([a, b], c.on, () => c.of(0, 'Message').length === 1 && c.of(1, 'ResponseSent').length === 1)

    const [request] = c.of(1, 'Message')
    expect(request.peerId.equals(a.localPeerId)).to.equal(true)
    expect(request.connectionId).to.equal(ids.listener)
    if (request.message.type !== 'Request') throw new Error('expected a request')
    expect(request.message.request).to.deep.equal({ n: 7 })
    expect(request.message.protocol).to.equal(PROTOCOL)
    expect(request.message.channel.isOpen, 'answered').to.equal(false)
    expect(b.behaviour.sendResponse(request.message.channel, { n: 0, echo: 'twice' }), 'a channel answers once').to.equal(false)

    const [response] = c.of(0, 'Message')
    expect(response.peerId.equals(b.localPeerId)).to.equal(true)
    expect(response.connectionId).to.equal(ids.dialer)
    expect(response.message).to.deep.equal({ type: 'Response', requestId, response: { n: 7, echo: 'echo 7' } })
    expect(c.of(1, 'ResponseSent')[0].requestId).to.equal(request.message.requestId)
    expect(a.behaviour.isPendingOutbound(b.localPeerId, requestId)).to.equal(false)
    expect(b.behaviour.isPendingInbound(a.localPeerId, request.message.requestId)).to.equal(false)
    expect(c.events.flat().filter(e => e.type.endsWith('Failure'))).to.deep.equal([])
  })

  it('requests in both directions on one connection', async () => {
    const a = await track(rrSwarm())
    const b = await track(rrSwarm())
    await connect(a, b)
    const c = collector([a, b], echo)
    a.behaviour.sendRequest(b.localPeerId, { n: 1 })
    b.behaviour.sendRequest(a.localPeerId, { n: 2 })
    await run([a, b], c.on, () => c.of(0, 'Message').length === 2 && c.of(1, 'Message').length === 2)
    const responses = (i: number): unknown[] => c.of(i, 'Message').flatMap(e => e.message.type === 'Response' ? [e.message.response] : [])
    expect(responses(0)).to.deep.equal([{ n: 1, echo: 'echo 1' }])
    expect(responses(1)).to.deep.equal([{ n: 2, echo: 'echo 2' }])
  })
})
