/**
 * Bad input on `/webrtc-signaling/0.0.1`: a js-libp2p peer opens a circuit to our `/webrtc`
 * listener through a relay and sends, on the signaling stream, a message of an unknown type,
 * an SDP offer that does not parse, a length prefix over the limit, or nothing at all. Each
 * time our side fails that connection with `ERR_WEBRTC_SIGNALING` (bounded by
 * `signalingTimeout` for the silent one), closes the circuit, and still accepts an honest
 * `/webrtc` dial afterwards.
 */
import { expect } from 'chai'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify as jsIdentify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { webRTC } from '@libp2p/webrtc'
import { createLibp2p } from 'libp2p'
import * as varint from 'uint8-varint'
import { SwarmBuilder, combine, identify, ping, relay } from '../../src/index.js'
import { SIGNALING_PROTOCOL, SignalingType, encodeSignalingMessage, MAX_SIGNALING_MESSAGE_SIZE } from '../../src/transport/webrtc/signaling.js'
import { EventLog, until } from '../fixtures/event-log.js'
import { relayNode } from '../fixtures/relay-node.js'

const SIGNALING_TIMEOUT = 4_000

async function ourRelay () {
  return await relayNode(key => combine({ relay: new relay.Behaviour(key), identify: new identify.Behaviour(key.publicKey) }), {})
}

async function listener () {
  const swarm = await SwarmBuilder.withNewIdentity()
    .withTcp()
    .withRelayClient()
    .withWebRTC({ signalingTimeout: SIGNALING_TIMEOUT })
    .withBehaviour((key, relayClient) => combine({ relayClient, identify: new identify.Behaviour(key.publicKey), ping: new ping.Behaviour() }))
    .build()
  return new EventLog(swarm)
}

function frame (body: Uint8Array): Uint8Array {
  return Uint8Array.from([...varint.encode(body.byteLength), ...body])
}

/** The `code`s along `err`'s cause chain. */
function codes (err: unknown): string[] {
  const out: string[] = []
  for (let e = err as { code?: string, cause?: unknown } | undefined, n = 0; e != null && n < 10; e = e.cause as typeof e, n++) if (typeof e.code === 'string') out.push(e.code)
  return out
}

describe('bad input on /webrtc-signaling from a js-libp2p peer', function () {
  this.timeout(60_000)
  let r: Awaited<ReturnType<typeof ourRelay>>
  let b: Awaited<ReturnType<typeof listener>>
  let js: Awaited<ReturnType<typeof createLibp2p>> | undefined

  beforeEach(async () => {
    r = await ourRelay()
    b = await listener()
  })
  afterEach(async () => { await Promise.all([b.close(), js?.stop(), r.log.close()]) })

  it('fails each bad exchange with ERR_WEBRTC_SIGNALING, closes the circuit, and still accepts an honest dial', async () => {
    b.swarm.listenOn(r.circuit.encapsulate('/webrtc'))
    const listening = await b.find(e => e.type === 'NewListenAddr', 15_000)
    if (listening.type !== 'NewListenAddr') throw new Error('unreachable')
    js = await createLibp2p({
      addresses: { listen: [] },
      transports: [tcp(), circuitRelayTransport(), webRTC({ rtcConfiguration: { iceServers: [] } })],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: jsIdentify() },
      connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] }
    })
    const jsNode = js
    const circuit = r.circuit.encapsulate(`/p2p/${b.swarm.localPeerId.toString()}`)
    const cases: Array<{ name: string, bytes: Uint8Array, message: RegExp }> = [
      { name: 'unknown type', bytes: frame(Uint8Array.from([0x08, 0x07, 0x12, 0x00])), message: /unknown type/ },
      { name: 'SDP that does not parse', bytes: frame(encodeSignalingMessage({ type: SignalingType.SDP_OFFER, data: 'hello, not an SDP' })), message: /SDP/ },
      { name: 'ICE candidate first', bytes: frame(encodeSignalingMessage({ type: SignalingType.ICE_CANDIDATE, data: 'null' })), message: /expected an SDP offer/ },
      { name: 'length over the limit', bytes: Uint8Array.from(varint.encode(MAX_SIGNALING_MESSAGE_SIZE + 1)), message: /larger than/ },
      { name: 'silence', bytes: new Uint8Array(0), message: /in time/ }
    ]
    let seen = 0
    for (const { name, bytes, message } of cases) {
      const started = Date.now()
      const stream = await jsNode.dialProtocol(circuit, SIGNALING_PROTOCOL, { runOnLimitedConnection: true, signal: AbortSignal.timeout(10_000) })
        .catch((err: unknown) => { throw new Error(`${name}: js could not open the signaling stream`, { cause: err }) })
      if (bytes.byteLength > 0) stream.send(bytes)
      const failed = await b.find(e => e.type === 'IncomingConnectionError' && b.events.filter(x => x.type === 'IncomingConnectionError').indexOf(e) === seen, 10_000)
      seen++
      if (failed.type !== 'IncomingConnectionError') throw new Error('unreachable')
      expect(codes(failed.error), name).to.include('ERR_WEBRTC_SIGNALING')
      expect(String((failed.error as { cause?: Error }).cause?.message), name).to.match(message)
      expect(Date.now() - started, name).to.be.below(SIGNALING_TIMEOUT + 3_000)
      // Our side closed the circuit: js's relayed connection to us goes.
      await until(() => jsNode.getConnections(b.swarm.localPeerId).length === 0, 10_000, `the circuit closed after ${name}`)
    }
    expect(b.swarm.connections().filter(c => c.peerId.equals(jsNode.peerId))).to.have.length(0)
    // The listener is still fine: an honest /webrtc dial from js succeeds.
    const connection = await jsNode.dial(listening.address, { signal: AbortSignal.timeout(20_000) })
    expect(connection.limits).to.equal(undefined)
    await b.find(e => e.type === 'ConnectionEstablished' && e.peerId.equals(jsNode.peerId), 10_000)
  })
})
