/**
 * Request-response with js-libp2p: a js-libp2p node registers a handler (`node.handle`) that
 * speaks the same small protocol (one length-prefixed UTF-8 JSON request, one length-prefixed
 * JSON response, over `lpStream` of @libp2p/utils), and requests go both ways over TCP.
 */
import { jsAddress, jsNode } from './js-node.js'
import { lpStream } from '@libp2p/utils'
import { expect } from 'chai'
import { SwarmBuilder, requestResponse } from '../../src/index.js'
import { EventLog } from '../fixtures/event-log.js'
import type { JsNode } from './js-node.js'
import type { Stream } from '@libp2p/interface'

const PROTOCOL = '/peerswarm-test/json/1.0.0'

type Request = { readonly op: 'add', readonly a: number, readonly b: number }
type Response = { readonly sum: number, readonly by: string }

const encoder = new TextEncoder()
const decoder = new TextDecoder()

async function ours () {
  const swarm = await SwarmBuilder.withNewIdentity()
    .withTcp()
    .withBehaviour(() => new requestResponse.Behaviour(requestResponse.jsonCodec<Request, Response>(), [PROTOCOL]))
    .withSwarmConfig({ idleConnectionTimeout: 30_000 })
    .build()
  // Answer every request at once, as a server would.
  return new EventLog(swarm, (event) => {
    if (event.type !== 'Behaviour' || event.event.type !== 'Message' || event.event.message.type !== 'Request') return
    const { request, channel } = event.event.message
    swarm.behaviour.sendResponse(channel, { sum: request.a + request.b, by: 'peerswarm' })
  })
}

type Ours = Awaited<ReturnType<typeof ours>>

/** js-libp2p's side of the protocol: read one request, answer it, close. */
async function jsServe (stream: Stream): Promise<void> {
  const lp = lpStream(stream, { maxDataLength: 64 * 1024 })
  const request = JSON.parse(decoder.decode((await lp.read()).subarray())) as Request
  await lp.write(encoder.encode(JSON.stringify({ sum: request.a + request.b, by: 'js-libp2p' } satisfies Response)))
  await stream.close()
}

/** js-libp2p's side as a requester, on a stream it opened. */
async function jsRequest (stream: Stream, request: Request): Promise<Response> {
  const lp = lpStream(stream, { maxDataLength: 64 * 1024 })
  await lp.write(encoder.encode(JSON.stringify(request)))
  await stream.close()
  const response = JSON.parse(decoder.decode((await lp.read({ signal: AbortSignal.timeout(5_000) })).subarray())) as Response
  return response
}

describe('interop with js-libp2p: request-response (length-prefixed JSON)', function () {
  this.timeout(30_000)
  let node: Ours
  let js: JsNode
  beforeEach(async () => {
    [node, js] = await Promise.all([ours(), jsNode()])
    await js.handle(PROTOCOL, async (stream) => {
      try {
        await jsServe(stream)
      } catch (err) {
        stream.abort(err instanceof Error ? err : new Error(String(err)))
      }
    })
  })
  afterEach(async () => { await Promise.all([node.close(), js.stop()]) })

  it('our requests are answered by js-libp2p\'s handler', async () => {
    node.swarm.dial(jsAddress(js, 'tcp'))
    await node.find(e => e.type === 'ConnectionEstablished')
    const ids = Array.from({ length: 20 }, (_, i) => node.swarm.behaviour.sendRequest(js.peerId, { op: 'add', a: i, b: 100 }))
    for (const [i, requestId] of ids.entries()) {
      const event = await node.find(e => e.type === 'Behaviour' && (e.event.type === 'Message' || e.event.type === 'OutboundFailure') && 'requestId' in (e.event.type === 'Message' ? e.event.message : e.event) &&
        (e.event.type === 'Message' ? e.event.message.requestId : e.event.requestId) === requestId)
      if (event.type !== 'Behaviour' || event.event.type !== 'Message') throw new Error(`request ${i} failed: ${event.type === "Behaviour" && event.event.type === "OutboundFailure" ? `${event.event.error.message} ${String((event.event.error.cause as Error)?.stack)}` : ""}`)
      expect(event.event.message).to.deep.equal({ type: 'Response', requestId, response: { sum: i + 100, by: 'js-libp2p' } })
      expect(event.event.peerId.equals(js.peerId)).to.equal(true)
    }
  })

  it('js-libp2p\'s requests (dialProtocol) are answered by ours', async () => {
    node.swarm.listenOn('/ip4/127.0.0.1/tcp/0')
    const listening = await node.find(e => e.type === 'NewListenAddr')
    if (listening.type !== 'NewListenAddr') throw new Error('unreachable')
    const address = listening.address.encapsulate(`/p2p/${node.swarm.localPeerId.toString()}`)
    const responses = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const stream = await js.dialProtocol(address, PROTOCOL, { signal: AbortSignal.timeout(10_000) })
      return jsRequest(stream, { op: 'add', a: i, b: 1 })
    }))
    expect(responses).to.deep.equal(Array.from({ length: 20 }, (_, i) => ({ sum: i + 1, by: 'peerswarm' })))
    // Each request ended with ResponseSent on our side.
    const sent = (): number => node.events.filter(e => e.type === 'Behaviour' && e.event.type === 'ResponseSent').length
    await node.find(e => e.type === 'Behaviour' && e.event.type === 'ResponseSent' && sent() === 20)
    const failures = node.events.filter(e => e.type === 'Behaviour' && e.event.type === 'InboundFailure')
    expect(failures).to.deep.equal([])
    const requests = node.events.filter(e => e.type === 'Behaviour' && e.event.type === 'Message' && e.event.message.type === 'Request')
    expect(requests).to.have.length(20)
    for (const event of requests) {
      if (event.type === 'Behaviour' && event.event.type === 'Message') expect(event.event.peerId.equals(js.peerId)).to.equal(true)
    }
  })

  it('js-libp2p refusing our protocol is reported as UnsupportedProtocols', async () => {
    await js.unhandle(PROTOCOL)
    node.swarm.dial(jsAddress(js, 'tcp'))
    await node.find(e => e.type === 'ConnectionEstablished')
    const requestId = node.swarm.behaviour.sendRequest(js.peerId, { op: 'add', a: 1, b: 2 })
    const event = await node.find(e => e.type === 'Behaviour' && e.event.type === 'OutboundFailure')
    if (event.type !== 'Behaviour' || event.event.type !== 'OutboundFailure') throw new Error('unreachable')
    expect(event.event.requestId).to.equal(requestId)
    expect(event.event.error.kind).to.equal('UnsupportedProtocols')
  })
})
