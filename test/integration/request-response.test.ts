/**
 * Request-response over real TCP on 127.0.0.1: a JSON exchange, and responses far larger than
 * a Yamux window (so writes wait for the stream to drain).
 */
import { expect } from 'chai'
import { SwarmBuilder, requestResponse } from '../../src/index.js'
import { waitFor } from '../../src/testing/index.js'
import type { Swarm, SwarmEvent } from '../../src/index.js'

type Bytes = requestResponse.Behaviour<Uint8Array, Uint8Array>
type BytesEvent = requestResponse.Event<Uint8Array, Uint8Array>

const PROTOCOL = '/peerswarm-test/bytes/1.0.0'

async function node (): Promise<Swarm<Bytes>> {
  return SwarmBuilder.withNewIdentity()
    .withTcp()
    .withBehaviour(() => new requestResponse.Behaviour(requestResponse.bytesCodec({ maxResponseSize: 4 * 1024 * 1024 }), [PROTOCOL]))
    .build()
}

/** A response of `size` bytes whose content depends on the request. */
function responseFor (request: Uint8Array, size: number): Uint8Array {
  const response = new Uint8Array(size)
  for (let i = 0; i < size; i += 997) response[i] = (request[0] + i) & 0xff
  return response
}

describe('request-response over TCP (127.0.0.1)', function () {
  this.timeout(60_000)
  let a: Swarm<Bytes>
  let b: Swarm<Bytes>
  beforeEach(async () => { [a, b] = await Promise.all([node(), node()]) })
  afterEach(async () => { await Promise.all([a.close(), b.close()]) })

  it('exchanges requests and multi-MiB responses, each answered once', async () => {
    b.listenOn('/ip4/127.0.0.1/tcp/0')
    const listening = await waitFor(b, e => e.type === 'NewListenAddr')
    if (listening.type !== 'NewListenAddr') throw new Error('unreachable')
    a.dial(listening.address)
    await waitFor(a, e => e.type === 'ConnectionEstablished', { drive: [b] })

    const sizes = [1, 64 * 1024, 3 * 1024 * 1024, 10, 1024 * 1024]
    const sent = new Map<number, number>()
    for (const [i, size] of sizes.entries()) sent.set(a.behaviour.sendRequest(b.localPeerId, new Uint8Array([i, size >> 16, size >> 8 & 0xff, size & 0xff])), size)
    const received = new Map<number, Uint8Array>()
    const failures: string[] = []
    const signal = AbortSignal.timeout(30_000)
    const stopServing = new AbortController()
    const serving = AbortSignal.any([signal, stopServing.signal])
    const serve = (async () => {
      while (!serving.aborted) {
        const event = await b.selectNextSome({ signal: serving }).catch(() => undefined) as SwarmEvent<BytesEvent> | undefined
        if (event?.type !== 'Behaviour' || event.event.type !== 'Message' || event.event.message.type !== 'Request') continue
        const { request, channel } = event.event.message
        const size = request[1] << 16 | request[2] << 8 | request[3]
        expect(b.behaviour.sendResponse(channel, responseFor(request, size))).to.equal(true)
      }
    })()
    while (received.size + failures.length < sizes.length) {
      const event = await a.selectNextSome({ signal }) as SwarmEvent<BytesEvent>
      if (event.type !== 'Behaviour') continue
      if (event.event.type === 'OutboundFailure') failures.push(event.event.error.message)
      if (event.event.type === 'Message' && event.event.message.type === 'Response') received.set(event.event.message.requestId, event.event.message.response)
    }
    stopServing.abort()
    await serve
    expect(failures).to.deep.equal([])
    for (const [requestId, size] of sent) {
      const response = received.get(requestId)
      expect(response?.byteLength).to.equal(size)
      const index = [...sent.keys()].indexOf(requestId)
      expect(response).to.deep.equal(responseFor(new Uint8Array([index]), size))
    }
  })
})
