/**
 * `/webrtc-direct` between two peerswarm Node peers on 127.0.0.1 (node-datachannel): connect,
 * ping, GossipSub both ways, and ten 1 MiB streams at once with none starved.
 */
import { expect } from 'chai'
import { SwarmBuilder, combine, gossipsub, ping, requestResponse } from '../../src/index.js'
import { waitFor } from '../../src/testing/index.js'
import type { SwarmEvent } from '../../src/index.js'
import type { Multiaddr } from '@multiformats/multiaddr'

const PROTOCOL = '/peerswarm-test/webrtc-bytes/1.0.0'
const topic = new gossipsub.IdentTopic('webrtc-direct')
const MiB = 1024 * 1024

async function node () {
  return SwarmBuilder.withNewIdentity()
    .withWebRTCDirect({ dialBindAddress: '127.0.0.1' })
    .withBehaviour(key => combine({
      ping: new ping.Behaviour({ interval: 1_000 }),
      gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), heartbeatInterval: 200 }),
      rr: new requestResponse.Behaviour(requestResponse.bytesCodec({ maxRequestSize: 2 * MiB }), [PROTOCOL], { maxConcurrentStreams: 20 })
    }))
    .withSwarmConfig({ idleConnectionTimeout: 30_000 })
    .build()
}

type Node = Awaited<ReturnType<typeof node>>

async function listenAddress (swarm: Node): Promise<Multiaddr> {
  swarm.listenOn('/ip4/127.0.0.1/udp/0/webrtc-direct')
  const event = await waitFor(swarm, e => e.type === 'NewListenAddr')
  if (event.type !== 'NewListenAddr') throw new Error('unreachable')
  return event.address
}

/** Drive `swarms` in the background, handing every event to `onEvent`, until `stop()`. */
function run (swarms: Node[], onEvent: (event: Awaited<ReturnType<Node['selectNextSome']>>, index: number) => void): { stop: () => Promise<void> } {
  const controller = new AbortController()
  const loops = swarms.map(async (swarm, i) => {
    for (;;) {
      let event
      try {
        event = await swarm.selectNextSome({ signal: controller.signal })
      } catch {
        return
      }
      onEvent(event, i)
    }
  })
  return { stop: async () => { controller.abort(); await Promise.all(loops) } }
}

async function until (condition: () => boolean, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

describe('WebRTC Direct between two peerswarm swarms (127.0.0.1)', function () {
  this.timeout(60_000)
  let a: Node
  let b: Node
  let driver: { stop: () => Promise<void> } | undefined
  before(async () => {
    // An optional peer dependency of peerswarm, a devDependency here: say so if it is missing.
    const ndc = await import('node-datachannel').catch((err: unknown) => { throw new Error(`node-datachannel (a devDependency) did not load: ${String(err)}`) })
    expect(ndc.default.getLibraryVersion()).to.match(/^\d+\.\d+/)
  })
  beforeEach(async () => { [a, b] = await Promise.all([node(), node()]) })
  afterEach(async () => {
    await driver?.stop()
    driver = undefined
    await Promise.all([a.close(), b.close()])
  })

  it('listens on a UDP port with a certhash, connects, pings and exchanges GossipSub messages both ways', async () => {
    const address = await listenAddress(b)
    expect(address.toString(), address.toString()).to.match(/^\/ip4\/127\.0\.0\.1\/udp\/[1-9]\d*\/webrtc-direct\/certhash\/uEi[A-Za-z0-9_-]{44}$/)
    const started = performance.now()
    let connectedAt = 0
    const rtts: number[][] = [[], []]
    const messages: string[][] = [[], []]
    const encryption: string[] = []
    driver = run([a, b], (event, i) => {
      if (event.type === 'ConnectionEstablished') {
        connectedAt ||= performance.now() - started
        encryption.push(String(event.endpoint.type))
      }
      if (event.type !== 'Behaviour') return
      const e = event.event
      if (e.behaviour === 'ping' && e.event.type === 'Success') rtts[i].push(e.event.rtt)
      if (e.behaviour === 'gossipsub' && e.event.type === 'Message') messages[i].push(new TextDecoder().decode(e.event.message.data))
    })
    a.behaviour.gossipsub.subscribe(topic)
    b.behaviour.gossipsub.subscribe(topic)
    a.dial(address.encapsulate(`/p2p/${b.localPeerId.toString()}`))
    await until(() => rtts[0].length > 0 && rtts[1].length > 0, 'a ping each way', 20_000)
    expect(a.isConnected(b.localPeerId)).to.equal(true)
    await until(() => a.behaviour.gossipsub.subscribers(topic).length === 1 && b.behaviour.gossipsub.subscribers(topic).length === 1, 'subscriptions', 10_000)
    for (let n = 0; n < 10; n++) {
      a.behaviour.gossipsub.publish(topic, new TextEncoder().encode(`a${n}`))
      b.behaviour.gossipsub.publish(topic, new TextEncoder().encode(`b${n}`))
    }
    await until(() => messages[0].length === 10 && messages[1].length === 10, 'ten messages each way', 10_000)
    expect(messages[1]).to.deep.equal(Array.from({ length: 10 }, (_, n) => `a${n}`))
    expect(messages[0]).to.deep.equal(Array.from({ length: 10 }, (_, n) => `b${n}`))
    console.log(`      connected in ${Math.round(connectedAt)} ms; first ping rtt ${rtts.map(r => r[0].toFixed(1)).join(' / ')} ms`)
  })

  it('carries ten 1 MiB streams at once, none starved', async () => {
    const address = await listenAddress(b)
    const received = new Map<number, number>()
    const completed = new Map<number, number>()
    const failures: unknown[] = []
    let t0 = 0
    driver = run([a, b], (event, i) => {
      if (event.type !== 'Behaviour' || event.event.behaviour !== 'rr') return
      const e = event.event.event
      if (i === 1 && e.type === 'Message' && e.message.type === 'Request') {
        const request = e.message.request
        received.set(request[0], request.byteLength)
        b.behaviour.rr.sendResponse(e.message.channel, Uint8Array.of(request[0]))
      }
      if (i === 0 && e.type === 'Message' && e.message.type === 'Response') completed.set(e.message.response[0], performance.now() - t0)
      if (e.type === 'OutboundFailure' || e.type === 'InboundFailure') failures.push(e.error)
    })
    a.dial(address)
    await until(() => a.isConnected(b.localPeerId), 'connection', 20_000)
    t0 = performance.now()
    for (let n = 0; n < 10; n++) {
      const request = new Uint8Array(MiB)
      request.fill(n)
      a.behaviour.rr.sendRequest(b.localPeerId, request)
    }
    await until(() => completed.size === 10 || failures.length > 0, 'ten responses', 30_000)
    expect(failures).to.deep.equal([])
    expect([...received.values()]).to.deep.equal(Array(10).fill(MiB))
    const times = [...completed.values()].sort((x, y) => x - y)
    // Starvation would show as streams finishing one after another: the second done when a
    // fifth of the bytes had gone. Sharing the link, the second finishes well after half. (The
    // first may finish early on a loaded machine: its stream can be open and sending before
    // the others have negotiated theirs; seen once, 93 ms against 365-387 ms for the other nine.)
    expect(times[1] / times[9], `completion times ${times.map(Math.round).join(', ')} ms`).to.be.greaterThan(0.5)
    console.log(`      10 × 1 MiB: first done at ${Math.round(times[0])} ms, last at ${Math.round(times[9])} ms (${(10 / (times[9] / 1000)).toFixed(1)} MiB/s)`)
  })
})
