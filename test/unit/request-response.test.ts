/**
 * Request-response over the memory transport: exchanges, outcomes, limits, timeouts and
 * streams, through the public API only.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'
import { combine, DialPeerConditionFalseError, NoAddressesError, requestResponse } from '../../src/index.js'
import { connect, driveUntil, listen, newSwarm } from '../../src/testing/index.js'
import { AddressBook } from '../fixtures/behaviours.js'
import type { AnyBehaviour, ConnectionEvent, EstablishedInboundConnection, EstablishedOutboundConnection, Swarm, SwarmEvent } from '../../src/index.js'
import type { Stream } from '@libp2p/interface'

type Request = { readonly n: number, readonly pad?: string }
type Response = { readonly n: number, readonly echo: string }
type RR = requestResponse.Behaviour<Request, Response>
type RREvent = requestResponse.Event<Request, Response>

const PROTOCOL = '/peerswarm-test/json/1.0.0'

/** Every stream negotiated by the handlers it is given, to check that none is left open. */
class StreamWatch {
  readonly streams: Stream[] = []

  /** Record the streams `handler` negotiates. */
  handler (handler: requestResponse.Handler<Request, Response>): requestResponse.Handler<Request, Response> {
    const onConnectionEvent = handler.onConnectionEvent.bind(handler)
    handler.onConnectionEvent = (event: ConnectionEvent) => {
      if (event.type === 'FullyNegotiatedInbound' || event.type === 'FullyNegotiatedOutbound') this.streams.push(event.stream)
      onConnectionEvent(event)
    }
    return handler
  }

  /** Streams neither closed nor reset. */
  get open (): number {
    return this.streams.filter(s => s.status === 'open' || s.status === 'closing').length
  }
}

/** A request-response behaviour whose handlers' streams a {@link StreamWatch} sees. */
class Watched extends requestResponse.Behaviour<Request, Response> {
  constructor (private readonly watch: StreamWatch, ...args: ConstructorParameters<typeof requestResponse.Behaviour<Request, Response>>) {
    super(...args)
  }

  override handleEstablishedInboundConnection (connection: EstablishedInboundConnection): requestResponse.Handler<Request, Response> {
    return this.watch.handler(super.handleEstablishedInboundConnection(connection))
  }

  override handleEstablishedOutboundConnection (connection: EstablishedOutboundConnection): requestResponse.Handler<Request, Response> {
    return this.watch.handler(super.handleEstablishedOutboundConnection(connection))
  }
}

async function rrSwarm (options: Partial<requestResponse.Config> = {}, protocols: ReadonlyArray<string | requestResponse.ProtocolConfig> = [PROTOCOL],
  limits: requestResponse.SizeLimits = {}, watch?: StreamWatch): Promise<Swarm<RR>> {
  const codec = requestResponse.jsonCodec<Request, Response>(limits)
  return newSwarm((): RR => watch == null ? new requestResponse.Behaviour(codec, protocols, options) : new Watched(watch, codec, protocols, options))
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

/** Drive `swarms` for `ms`, handing every event to `on`. */
async function driveFor<B extends AnyBehaviour> (swarms: ReadonlyArray<Swarm<B>>, ms: number, on: (index: number, event: SwarmEvent<RREvent>) => void): Promise<void> {
  const signal = AbortSignal.timeout(ms)
  await Promise.all(swarms.map(async (swarm, i) => {
    while (!signal.aborted) {
      try {
        on(i, await swarm.selectNextSome({ signal }) as SwarmEvent<RREvent>)
      } catch (err) {
        if (!signal.aborted) throw err
      }
    }
  }))
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

  it('a request nobody answers times out at both ends, not before its timeout, and leaves no stream open', async () => {
    const watch = new StreamWatch()
    const a = await track(rrSwarm({ requestTimeout: 300 }, [PROTOCOL], {}, watch))
    const b = await track(rrSwarm({ requestTimeout: 300 }, [PROTOCOL], {}, watch))
    await connect(a, b)
    const c = collector([a, b])
    const started = performance.now()
    const requestId = a.behaviour.sendRequest(b.localPeerId, { n: 1 })
    await run([a, b], c.on, () => c.of(0, 'OutboundFailure').length === 1 && c.of(1, 'InboundFailure').length === 1)
    expect(performance.now() - started).to.be.at.least(290)
    const [outbound] = c.of(0, 'OutboundFailure')
    expect(outbound.requestId).to.equal(requestId)
    expect(outbound.error).to.be.instanceOf(requestResponse.OutboundFailure)
    expect(outbound.error.kind).to.equal('Timeout')
    expect(outbound.error.code).to.equal('ERR_OUTBOUND_TIMEOUT')
    const [inbound] = c.of(1, 'InboundFailure')
    expect(inbound.error.kind).to.equal('Timeout')
    const [request] = c.of(1, 'Message')
    if (request?.message.type !== 'Request') throw new Error('expected the request to arrive')
    expect(request.message.channel.isOpen).to.equal(false)
    expect(b.behaviour.sendResponse(request.message.channel, echo({ n: 1 })), 'too late').to.equal(false)
    expect(watch.streams).to.have.length(2)
    await driveUntil([a, b], () => watch.open === 0, { timeout: 2_000 })
    expect(watch.streams.map(s => s.status).sort()).to.satisfy((statuses: string[]) => statuses.every(s => s === 'aborted' || s === 'reset'))
  })

  it('a per-request timeout overrides the configured one', async () => {
    const a = await track(rrSwarm({ requestTimeout: 60_000 }))
    const b = await track(rrSwarm({ requestTimeout: 60_000 }))
    await connect(a, b)
    const c = collector([a, b])
    const started = performance.now()
    a.behaviour.sendRequest(b.localPeerId, { n: 1 }, { timeout: 200 })
    await run([a, b], c.on, () => c.of(0, 'OutboundFailure').length === 1, 5_000)
    expect(performance.now() - started).to.be.at.least(190)
    expect(c.of(0, 'OutboundFailure')[0].error.kind).to.equal('Timeout')
  })

  it('answered requests leave no stream open on either side', async () => {
    const watch = new StreamWatch()
    const a = await track(rrSwarm({}, [PROTOCOL], {}, watch))
    const b = await track(rrSwarm({}, [PROTOCOL], {}, watch))
    await connect(a, b)
    const c = collector([a, b], echo)
    for (let n = 0; n < 20; n++) a.behaviour.sendRequest(b.localPeerId, { n })
    await run([a, b], c.on, () => c.of(0, 'Message').length === 20 && c.of(1, 'ResponseSent').length === 20)
    await driveUntil([a, b], () => watch.open === 0, { timeout: 2_000 })
    expect(watch.streams).to.have.length(40)
    expect(watch.streams.every(s => s.status === 'closed'), 'closed gracefully, not reset').to.equal(true)
  })

  it('an oversize request is refused before it is sent: typed error, stream reset, nothing reaches the peer', async () => {
    const watch = new StreamWatch()
    const a = await track(rrSwarm({}, [PROTOCOL], { maxRequestSize: 64 }, watch))
    const b = await track(rrSwarm())
    await connect(a, b)
    const c = collector([a, b], echo)
    a.behaviour.sendRequest(b.localPeerId, { n: 1, pad: 'x'.repeat(100) })
    const small = a.behaviour.sendRequest(b.localPeerId, { n: 2 })
    await run([a, b], c.on, () => c.of(0, 'OutboundFailure').length === 1 && c.of(0, 'Message').length === 1)
    const [failure] = c.of(0, 'OutboundFailure')
    expect(failure.error.kind).to.equal('Io')
    expect(failure.error.cause).to.be.instanceOf(requestResponse.MessageTooLargeError)
    const cause = failure.error.cause as requestResponse.MessageTooLargeError
    expect(cause.limit).to.equal(64)
    expect(cause.size).to.be.greaterThan(100)
    expect(c.of(0, 'Message')[0].message.requestId, 'the other request is unaffected').to.equal(small)
    expect(c.of(1, 'Message').map(e => e.message.type === 'Request' ? e.message.request.n : -1)).to.deep.equal([2])
    expect(watch.streams.filter(s => s.status === 'aborted')).to.have.length(1)
  })

  it('an oversize request is refused by the receiver as soon as its length is read', async () => {
    const watch = new StreamWatch()
    const a = await track(rrSwarm())
    const b = await track(rrSwarm({}, [PROTOCOL], { maxRequestSize: 64 }, watch))
    await connect(a, b)
    const c = collector([a, b], echo)
    a.behaviour.sendRequest(b.localPeerId, { n: 1, pad: 'x'.repeat(10_000) })
    await run([a, b], c.on, () => c.of(0, 'OutboundFailure').length === 1 && c.of(1, 'InboundFailure').length === 1)
    const [inbound] = c.of(1, 'InboundFailure')
    expect(inbound.error.kind).to.equal('Io')
    expect(inbound.error.cause).to.be.instanceOf(requestResponse.MessageTooLargeError)
    expect((inbound.error.cause as requestResponse.MessageTooLargeError).limit).to.equal(64)
    expect(c.of(1, 'Message')).to.have.length(0)
    expect(c.of(0, 'OutboundFailure')[0].error.kind, 'the requester sees its stream reset').to.equal('Io')
    expect(watch.streams.map(s => s.status)).to.deep.equal(['aborted'])
  })

  it('an oversize response is refused by the responder and by the requester, both with typed errors', async () => {
    // The responder refuses to write it.
    const a = await track(rrSwarm())
    const b = await track(rrSwarm({}, [PROTOCOL], { maxResponseSize: 32 }))
    await connect(a, b)
    const big = (request: Request): Response => ({ n: request.n, echo: 'y'.repeat(1_000) })
    const c = collector([a, b], big)
    a.behaviour.sendRequest(b.localPeerId, { n: 1 })
    await run([a, b], c.on, () => c.of(0, 'OutboundFailure').length === 1 && c.of(1, 'InboundFailure').length === 1)
    expect(c.of(1, 'InboundFailure')[0].error.kind).to.equal('Io')
    expect(c.of(1, 'InboundFailure')[0].error.cause).to.be.instanceOf(requestResponse.MessageTooLargeError)
    expect(c.of(0, 'OutboundFailure')[0].error.kind).to.equal('Io')

    // The requester refuses to read it.
    const d = await track(rrSwarm({}, [PROTOCOL], { maxResponseSize: 32 }))
    const e = await track(rrSwarm())
    await connect(d, e)
    const c2 = collector([d, e], big)
    d.behaviour.sendRequest(e.localPeerId, { n: 1 })
    await run([d, e], c2.on, () => c2.of(0, 'OutboundFailure').length === 1)
    const [failure] = c2.of(0, 'OutboundFailure')
    expect(failure.error.kind).to.equal('Io')
    expect(failure.error.cause).to.be.instanceOf(requestResponse.MessageTooLargeError)
    expect(c2.of(0, 'Message')).to.have.length(0)
  })

  it('1,000 concurrent requests between two peers all complete, each answered once', async function () {
    this.timeout(60_000)
    const watch = new StreamWatch()
    const a = await track(rrSwarm({ requestTimeout: 50_000 }, [PROTOCOL], {}, watch))
    const b = await track(rrSwarm({ requestTimeout: 50_000 }, [PROTOCOL], {}, watch))
    await connect(a, b)
    const c = collector([a, b], echo)
    const ids = new Map<number, number>()
    for (let n = 0; n < 1_000; n++) ids.set(a.behaviour.sendRequest(b.localPeerId, { n }), n)
    await run([a, b], c.on, () => c.of(0, 'Message').length + c.of(0, 'OutboundFailure').length === 1_000, 50_000)
    expect(c.of(0, 'OutboundFailure').map(e => e.error.message)).to.deep.equal([])
    const answered = new Set<number>()
    for (const event of c.of(0, 'Message')) {
      if (event.message.type !== 'Response') throw new Error('expected responses only')
      expect(event.message.response.n).to.equal(ids.get(event.message.requestId))
      answered.add(event.message.requestId)
    }
    expect(answered.size).to.equal(1_000)
    await driveUntil([a, b], () => watch.open === 0, { timeout: 5_000 })
  })

  it('a peer that speaks none of our protocols: UnsupportedProtocols', async () => {
    const a = await track(rrSwarm({}, ['/peerswarm-test/a/1.0.0']))
    const b = await track(rrSwarm({}, ['/peerswarm-test/b/1.0.0']))
    await connect(a, b)
    const c = collector([a, b], echo)
    const requestId = a.behaviour.sendRequest(b.localPeerId, { n: 1 })
    await run([a, b], c.on, () => c.of(0, 'OutboundFailure').length === 1)
    const [failure] = c.of(0, 'OutboundFailure')
    expect(failure.requestId).to.equal(requestId)
    expect(failure.error.kind).to.equal('UnsupportedProtocols')
    expect(c.of(1, 'Message')).to.have.length(0)
  })

  it('the first protocol both speak is used', async () => {
    const a = await track(rrSwarm({}, ['/peerswarm-test/json/2.0.0', PROTOCOL]))
    const b = await track(rrSwarm({}, [PROTOCOL]))
    await connect(a, b)
    const c = collector([a, b], echo)
    a.behaviour.sendRequest(b.localPeerId, { n: 1 })
    await run([a, b], c.on, () => c.of(0, 'Message').length === 1)
    const [request] = c.of(1, 'Message')
    expect(request.message.type === 'Request' && request.message.protocol).to.equal(PROTOCOL)
  })

  it('dials a peer that is not connected, with the addresses another behaviour knows', async () => {
    const codec = requestResponse.jsonCodec<Request, Response>()
    const a = await track(newSwarm(() => combine({ book: new AddressBook(), rr: new requestResponse.Behaviour(codec, [PROTOCOL]) })))
    const b = await track(rrSwarm())
    const address = await listen(b)
    a.addPeerAddress(b.localPeerId, address)
    const requestId = a.behaviour.rr.sendRequest(b.localPeerId, { n: 5 })
    expect(a.behaviour.rr.isPendingOutbound(b.localPeerId, requestId)).to.equal(true)
    const second = a.behaviour.rr.sendRequest(b.localPeerId, { n: 6 })
    const responses: unknown[] = []
    let dials = 0
    const c = collector([b], echo)
    await run<AnyBehaviour>([a, b], (i, event) => {
      if (i === 1) {
        c.on(0, event)
        return
      }
      if (event.type === 'Dialing') dials++
      if (event.type !== 'Behaviour') return
      const inner = event.event as unknown as { behaviour: string, event: RREvent }
      if (inner.behaviour === 'rr' && inner.event.type === 'Message' && inner.event.message.type === 'Response') responses.push(inner.event.message)
    }, () => responses.length === 2)
    expect(responses).to.deep.equal([
      { type: 'Response', requestId, response: { n: 5, echo: 'echo 5' } },
      { type: 'Response', requestId: second, response: { n: 6, echo: 'echo 6' } }
    ])
    expect(dials, 'one dial for both requests').to.equal(1)
  })

  it('another dial of the peer failing does not fail requests waiting for our own dial', async () => {
    const codec = requestResponse.jsonCodec<Request, Response>()
    const a = await track(newSwarm(() => combine({ book: new AddressBook(), rr: new requestResponse.Behaviour(codec, [PROTOCOL]) })))
    const b = await track(rrSwarm())
    a.addPeerAddress(b.localPeerId, await listen(b))
    const requestId = a.behaviour.rr.sendRequest(b.localPeerId, { n: 1 })
    a.dial({ peerId: b.localPeerId, addresses: [multiaddr('/memory/424242')], condition: 'always' })
    const outcomes: RREvent[] = []
    let dialErrors = 0
    const c = collector([b], echo)
    await run<AnyBehaviour>([a, b], (i, event) => {
      if (i === 1) return c.on(0, event)
      if (event.type === 'OutgoingConnectionError') dialErrors++
      const inner = event.type === 'Behaviour' ? event.event as unknown as { behaviour: string, event: RREvent } : undefined
      if (inner?.behaviour === 'rr') outcomes.push(inner.event)
    }, () => outcomes.length === 1 && dialErrors === 1)
    expect(outcomes[0]).to.deep.include({ type: 'Message' })
    expect(outcomes[0].type === 'Message' && outcomes[0].message).to.deep.equal({ type: 'Response', requestId, response: echo({ n: 1 }) })
  })

  it('a peer without known addresses: DialFailure with the dial error', async () => {
    const a = await track(rrSwarm())
    const b = await track(rrSwarm())
    const c = collector([a])
    const requestId = a.behaviour.sendRequest(b.localPeerId, { n: 1 })
    await run([a], c.on, () => c.of(0, 'OutboundFailure').length === 1, 2_000)
    const [failure] = c.of(0, 'OutboundFailure')
    expect(failure.requestId).to.equal(requestId)
    expect(failure.error.kind).to.equal('DialFailure')
    expect(failure.error.cause).to.be.instanceOf(NoAddressesError)
    expect(failure.error.cause).not.to.be.instanceOf(DialPeerConditionFalseError)
    expect(a.behaviour.isPendingOutbound(b.localPeerId, requestId)).to.equal(false)
  })

  it('protocol support modes: outbound-only sends and never answers, inbound-only answers and never sends', async () => {
    const client = await track(rrSwarm({}, [{ protocol: PROTOCOL, support: 'outbound' }]))
    const server = await track(rrSwarm({}, [{ protocol: PROTOCOL, support: 'inbound' }]))
    const full = await track(rrSwarm())
    await connect(client, server)
    await connect(full, client)
    const c = collector([client, server, full], echo)
    client.behaviour.sendRequest(server.localPeerId, { n: 1 })
    const fromServer = server.behaviour.sendRequest(client.localPeerId, { n: 2 })
    const toClient = full.behaviour.sendRequest(client.localPeerId, { n: 3 })
    await run([client, server, full], c.on, () =>
      c.of(0, 'Message').length === 1 && c.of(1, 'OutboundFailure').length === 1 && c.of(2, 'OutboundFailure').length === 1)
    expect(c.of(0, 'Message')[0].message.type).to.equal('Response')
    expect(c.of(1, 'OutboundFailure')[0]).to.include({ requestId: fromServer, connectionId: undefined })
    expect(c.of(1, 'OutboundFailure')[0].error.kind, 'no outbound protocol: refused at once').to.equal('UnsupportedProtocols')
    expect(c.of(2, 'OutboundFailure')[0].requestId).to.equal(toClient)
    expect(c.of(2, 'OutboundFailure')[0].error.kind, 'an outbound-only peer does not listen').to.equal('UnsupportedProtocols')
    expect(c.of(0, 'Message').filter(e => e.message.type === 'Request')).to.have.length(0)
  })

  it('inbound streams over maxConcurrentStreams are reset; outbound requests over it wait for a slot', async () => {
    const watch = new StreamWatch()
    const a = await track(rrSwarm({ maxConcurrentStreams: 10, requestTimeout: 2_000 }))
    const b = await track(rrSwarm({ maxConcurrentStreams: 2, requestTimeout: 2_000 }, [PROTOCOL], {}, watch))
    await connect(a, b)
    const c = collector([a, b])
    for (let n = 0; n < 5; n++) a.behaviour.sendRequest(b.localPeerId, { n })
    await run([a, b], c.on, () => c.of(1, 'Message').length === 2 && c.of(0, 'OutboundFailure').length === 3, 1_500)
    expect(c.of(0, 'OutboundFailure').map(e => e.error.kind)).to.deep.equal(['Io', 'Io', 'Io'])
    expect(watch.streams.filter(s => s.status === 'aborted')).to.have.length(3)
    // Outbound: d may have 2 requests in flight; the others wait and are sent as those end.
    const d = await track(rrSwarm({ maxConcurrentStreams: 2 }))
    const e = await track(rrSwarm({ maxConcurrentStreams: 2 }))
    await connect(d, e)
    const c3 = collector([d, e], echo)
    for (let n = 0; n < 7; n++) d.behaviour.sendRequest(e.localPeerId, { n })
    await run([d, e], c3.on, () => c3.of(0, 'Message').length === 7)
    expect(c3.of(0, 'OutboundFailure')).to.have.length(0)
  })

  it('a connection that closes fails its requests in flight with ConnectionClosed, at both ends', async () => {
    const a = await track(rrSwarm())
    const b = await track(rrSwarm())
    await connect(a, b)
    const c = collector([a, b])
    const requestId = a.behaviour.sendRequest(b.localPeerId, { n: 1 })
    await run([a, b], c.on, () => c.of(1, 'Message').length === 1)
    const [request] = c.of(1, 'Message')
    if (request.message.type !== 'Request') throw new Error('expected a request')
    a.disconnectPeerId(b.localPeerId)
    await run([a, b], c.on, () => c.of(0, 'OutboundFailure').length === 1 && c.of(1, 'InboundFailure').length === 1)
    expect(c.of(0, 'OutboundFailure')[0]).to.include({ requestId })
    expect(c.of(0, 'OutboundFailure')[0].error.kind).to.equal('ConnectionClosed')
    expect(c.of(1, 'InboundFailure')[0].requestId).to.equal(request.message.requestId)
    expect(c.of(1, 'InboundFailure')[0].error.kind).to.equal('ConnectionClosed')
    expect(b.behaviour.sendResponse(request.message.channel, echo({ n: 1 }))).to.equal(false)
  })

  it('dropResponse: ResponseOmission here, a reset stream (Io) for the requester', async () => {
    const a = await track(rrSwarm())
    const b = await track(rrSwarm())
    await connect(a, b)
    const c = collector([a, b])
    a.behaviour.sendRequest(b.localPeerId, { n: 1 })
    await run([a, b], (i, event) => {
      c.on(i, event)
      const e = rr(event)
      if (i === 1 && e?.type === 'Message' && e.message.type === 'Request') expect(b.behaviour.dropResponse(e.message.channel)).to.equal(true)
    }, () => c.of(0, 'OutboundFailure').length === 1 && c.of(1, 'InboundFailure').length === 1)
    expect(c.of(1, 'InboundFailure')[0].error.kind).to.equal('ResponseOmission')
    expect(c.of(0, 'OutboundFailure')[0].error.kind).to.equal('Io')
  })

  it('keeps the connection alive while a request waits, and lets it go idle afterwards', async () => {
    const a = await newSwarm(() => new requestResponse.Behaviour(requestResponse.jsonCodec<Request, Response>(), [PROTOCOL], { requestTimeout: 5_000 }), { idleConnectionTimeout: 100 })
    const b = await newSwarm(() => new requestResponse.Behaviour(requestResponse.jsonCodec<Request, Response>(), [PROTOCOL], { requestTimeout: 5_000 }), { idleConnectionTimeout: 100 })
    swarms.push(a as unknown as Swarm<AnyBehaviour>, b as unknown as Swarm<AnyBehaviour>)
    await connect(a, b)
    const c = collector([a, b])
    a.behaviour.sendRequest(b.localPeerId, { n: 1 })
    await run([a, b], c.on, () => c.of(1, 'Message').length === 1)
    const [request] = c.of(1, 'Message')
    if (request.message.type !== 'Request') throw new Error('expected a request')
    // Answer only after several idle timeouts: the open stream keeps the connection.
    const closed: string[] = []
    await driveFor([a, b], 400, (i, event) => {
      c.on(i, event)
      if (event.type === 'ConnectionClosed') closed.push(String(i))
    })
    expect(closed).to.deep.equal([])
    expect(b.behaviour.sendResponse(request.message.channel, echo({ n: 1 }))).to.equal(true)
    await run([a, b], (i, event) => {
      c.on(i, event)
      if (event.type === 'ConnectionClosed') closed.push(String(i))
    }, () => closed.length === 2, 3_000)
    expect(c.of(0, 'Message')).to.have.length(1)
  })

  it('validates its options and protocols', () => {
    const codec = requestResponse.jsonCodec<Request, Response>()
    expect(() => new requestResponse.Behaviour(codec, [])).to.throw(/protocols/)
    expect(() => new requestResponse.Behaviour(codec, ['no-slash'])).to.throw(/protocols/)
    expect(() => new requestResponse.Behaviour(codec, [PROTOCOL, PROTOCOL])).to.throw(/twice/)
    expect(() => new requestResponse.Behaviour(codec, [PROTOCOL], { requestTimeout: 0 })).to.throw(/requestTimeout/)
    expect(() => new requestResponse.Behaviour(codec, [PROTOCOL], { maxConcurrentStreams: 1.5 })).to.throw(/maxConcurrentStreams/)
    expect(() => requestResponse.jsonCodec({ maxRequestSize: -1 })).to.throw(/maxRequestSize/)
    const b = new requestResponse.Behaviour(codec, [{ protocol: '/x/1', support: 'inbound' }, { protocol: '/y/1', support: 'outbound' }, '/z/1'])
    expect(b.protocols).to.deep.equal({ inbound: ['/x/1', '/z/1'], outbound: ['/y/1', '/z/1'] })
    expect(b.config).to.deep.equal(requestResponse.defaultConfig)
  })
})
