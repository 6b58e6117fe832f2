/**
 * The pubsub handler's inbound side: RPCs read but not yet taken by the behaviour are bounded
 * in count (`maxReceivedRpcs`) and in the bytes of their frames (`maxReceivedBytes`, 1 MiB by
 * default); at either bound the inbound stream is paused, and it is resumed once the behaviour
 * has taken the queue below half of both. The behaviour may also hold the stream
 * (`HoldInbound`: GossipSub's graylisted peers). First with a fake inbound stream, then between
 * two GossipSub swarms over the memory transport.
 */
import { expect } from 'chai'
import { encodeFrame } from '../../src/behaviour/framing.js'
import { combine, gossipsub } from '../../src/index.js'
import { encodeRpc } from '../../src/protocols/pubsub/rpc.js'
import { MAX_RECEIVED_BYTES, StreamHandler } from '../../src/protocols/pubsub/stream-handler.js'
import { connect, drive, driveUntil, newSwarm } from '../../src/testing/index.js'
import type { Keypair, Swarm } from '../../src/index.js'
import type { ConnectionEvent } from '../../src/behaviour/connection-handler.js'
import type { ToBehaviour } from '../../src/protocols/pubsub/stream-handler.js'
import type { Stream } from '@libp2p/interface'

/** A read-side stream: the test dispatches its `message` events; pauses and resumes are counted. */
class FakeInbound extends EventTarget {
  paused = false
  pauses = 0
  resumes = 0
  pause (): void {
    this.paused = true
    this.pauses++
  }

  resume (): void {
    this.paused = false
    this.resumes++
  }

  abort (): void {}
  /** The remote writes `bytes` (they arrive as one read). */
  deliver (bytes: Uint8Array): void {
    const event = new Event('message') as Event & { data: Uint8Array }
    event.data = bytes
    this.dispatchEvent(event)
  }
}

/** A frame with one published message of `size` bytes of data, its first byte `tag`. */
function messageFrame (tag: number, size: number): Uint8Array {
  const data = new Uint8Array(size)
  data[0] = tag
  return encodeFrame(encodeRpc({ publish: [{ topic: 't', data }] }))
}

function open (maxReceivedRpcs = 64) {
  const handler = new StreamHandler({ protocols: ['/meshsub/1.1.0'], maxFrameSize: 1 << 20, maxQueuedBytes: 1 << 20, maxReceivedRpcs, timeout: 1_000 })
  const stream = new FakeInbound()
  handler.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: stream as unknown as Stream, protocol: '/meshsub/1.1.0', info: undefined })
  /** The behaviour takes one report (the next RPC), if there is one. */
  const takeRpc = (): number | undefined => {
    const event = handler.poll({ waker: { wake: () => {} } })
    if (event?.type !== 'NotifyBehaviour') return undefined
    const report: ToBehaviour = event.event
    if (report.type !== 'Rpc') return undefined
    return report.rpc.publish?.[0]?.data?.[0]
  }
  return { handler, stream, takeRpc }
}

describe('pubsub inbound queue', () => {
  it('pauses the stream once 1 MiB of frames wait, resumes it below half, and loses nothing', () => {
    expect(MAX_RECEIVED_BYTES).to.equal(1024 * 1024)
    const { stream, takeRpc } = open()
    // Three frames of 400 KB: 800 KB wait, then 1.2 MB (3 RPCs, far under the count bound).
    stream.deliver(messageFrame(1, 400_000))
    stream.deliver(messageFrame(2, 400_000))
    expect(stream.paused).to.equal(false)
    stream.deliver(messageFrame(3, 400_000))
    expect(stream.paused).to.equal(true)
    expect(stream.pauses).to.equal(1)
    // Taken one at a time: 800 KB left is not below half; 400 KB is.
    expect(takeRpc()).to.equal(1)
    expect(stream.paused).to.equal(true)
    expect(takeRpc()).to.equal(2)
    expect(stream.paused).to.equal(false)
    expect(stream.resumes).to.equal(1)
    // A paused stream's reads still arrive later (the muxer buffers them): nothing is lost.
    stream.deliver(messageFrame(4, 10))
    expect([takeRpc(), takeRpc(), takeRpc()]).to.deep.equal([3, 4, undefined])
  })

  it('a single frame of 1 MiB pauses the stream alone; taking it resumes', () => {
    const { stream, takeRpc } = open()
    stream.deliver(messageFrame(7, MAX_RECEIVED_BYTES - 64))
    expect(stream.paused).to.equal(false)
    stream.deliver(messageFrame(8, 100))
    expect(stream.paused).to.equal(true)
    expect(takeRpc()).to.equal(7)
    expect(stream.paused).to.equal(false)
    expect(takeRpc()).to.equal(8)
  })

  it('small frames still pause at the count bound, and resume below half of it', () => {
    const { stream, takeRpc } = open(8)
    // Eight frames in one read (one chunk of the muxer).
    const chunk = new Uint8Array(Array.from({ length: 8 }, (_, i) => [...messageFrame(i, 10)]).flat())
    stream.deliver(chunk)
    expect(stream.paused).to.equal(true)
    const taken: Array<number | undefined> = []
    for (let i = 0; i < 4; i++) taken.push(takeRpc())
    expect(stream.paused).to.equal(true)
    taken.push(takeRpc())
    expect(stream.paused).to.equal(false)
    for (let i = 0; i < 4; i++) taken.push(takeRpc())
    expect(taken).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, undefined])
  })

  it('HoldInbound pauses the stream and a new inbound stream of the peer at once; RPCs read before still reach the behaviour; released, the stream is read again', () => {
    const { handler, stream, takeRpc } = open()
    stream.deliver(messageFrame(1, 10))
    handler.onBehaviourEvent({ type: 'HoldInbound', value: true })
    expect(stream.paused).to.equal(true)
    // The RPC read before the hold is still handed over (the behaviour ignores it).
    expect(takeRpc()).to.equal(1)
    expect(stream.paused).to.equal(true)
    // A stream that replaces it is paused as it arrives.
    const second = new FakeInbound()
    handler.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: second as unknown as Stream, protocol: '/meshsub/1.1.0', info: undefined })
    expect(second.paused).to.equal(true)
    handler.onBehaviourEvent({ type: 'HoldInbound', value: false })
    expect(second.paused).to.equal(false)
    expect(second.resumes).to.equal(1)
    second.deliver(messageFrame(2, 10))
    expect(takeRpc()).to.equal(2)
  })

  it('a release does not resume a stream paused by a full queue; taking the queue below half does, once nothing holds it', () => {
    const { handler, stream, takeRpc } = open(4)
    const chunk = new Uint8Array(Array.from({ length: 4 }, (_, i) => [...messageFrame(i, 10)]).flat())
    stream.deliver(chunk)
    expect(stream.paused).to.equal(true)
    handler.onBehaviourEvent({ type: 'HoldInbound', value: true })
    handler.onBehaviourEvent({ type: 'HoldInbound', value: false })
    expect(stream.paused).to.equal(true)
    handler.onBehaviourEvent({ type: 'HoldInbound', value: true })
    for (let i = 0; i < 4; i++) expect(takeRpc()).to.equal(i)
    // The queue is empty, but the hold remains.
    expect(stream.paused).to.equal(true)
    handler.onBehaviourEvent({ type: 'HoldInbound', value: false })
    expect(stream.paused).to.equal(false)
    expect(stream.pauses).to.equal(1)
    expect(stream.resumes).to.equal(1)
  })
})

/** What the behaviour is handed, in order, until nothing more: `rpc <first data byte>` or the event's type. */
function reported (handler: StreamHandler): string[] {
  const events: string[] = []
  for (let i = 0; i < 100; i++) {
    const event = handler.poll({ waker: { wake: () => {} } })
    if (event?.type !== 'NotifyBehaviour') break
    events.push(event.event.type === 'Rpc' ? `rpc ${String(event.event.rpc.publish?.[0]?.data?.[0])}` : event.event.type)
  }
  return events
}

describe('pubsub inbound frames are decoded as the behaviour takes them', () => {
  /** An IHAVE of 5,000 ids of 40 bytes: ~215 KB on the wire, several times that decoded. */
  function ihaveFrame (tag: number): Uint8Array {
    const ids = Array.from({ length: 5_000 }, (_, i) => { const id = new Uint8Array(40); id[0] = tag; id[1] = i & 0xff; return id })
    return encodeFrame(encodeRpc({ control: { ihave: [{ topicID: 't', messageIDs: ids }] } }))
  }

  it('what a resumed stream hands over at once (its whole Yamux window) waits as bytes, not as decoded RPCs', () => {
    const { handler, stream } = open()
    // 4 MiB in one read, as a paused stream's buffer arrives on resume.
    const frames = Array.from({ length: 19 }, (_, i) => ihaveFrame(i))
    const burst = new Uint8Array(frames.reduce((n, f) => n + f.byteLength, 0))
    frames.reduce((at, f) => { burst.set(f, at); return at + f.byteLength }, 0)
    expect(burst.byteLength).to.be.within(3.9e6, 4.2e6)
    const gc = globalThis.gc as () => void
    gc()
    const before = process.memoryUsage().heapUsed
    stream.deliver(burst)
    gc()
    // Decoded at once, the 19 RPCs would be ~95,000 id arrays, over 8 MB of heap.
    expect(process.memoryUsage().heapUsed - before).to.be.below(1_000_000)
    expect(stream.paused).to.equal(true)
    // Taken one at a time, in order, every id there.
    const taken: number[] = []
    for (let i = 0; i < 25; i++) {
      const event = handler.poll({ waker: { wake: () => {} } })
      if (event?.type !== 'NotifyBehaviour' || event.event.type !== 'Rpc') break
      const ihave = event.event.rpc.control?.ihave?.[0]
      expect(ihave?.messageIDs).to.have.length(5_000)
      taken.push(ihave?.messageIDs?.[0]?.[0] ?? -1)
    }
    expect(taken).to.deep.equal(Array.from({ length: 19 }, (_, i) => i))
    expect(stream.paused).to.equal(false)
  })

  it('the RPCs before an undecodable frame reach the behaviour first; the stream ends there, and what followed on it is dropped', () => {
    const { handler, stream } = open()
    let aborted = 0
    stream.abort = () => { aborted++ }
    // A frame whose RPC is a field 1 (subscriptions) of wire type 7: no protobuf.
    const bad = encodeFrame(new Uint8Array([0x0f, 0x00]))
    stream.deliver(new Uint8Array([...messageFrame(1, 10), ...messageFrame(2, 10), ...bad, ...messageFrame(3, 10)]))
    expect(reported(handler)).to.deep.equal(['rpc 1', 'rpc 2', 'InvalidFrame'])
    expect(aborted).to.equal(1)
  })

  it('a frame over the size limit ends the stream as it is read; the RPCs read before it still come first', () => {
    const { handler, stream } = open()
    let aborted = 0
    stream.abort = () => { aborted++ }
    // A prefix announcing 2 MiB (the limit here is 1 MiB): 0x80 0x80 0x80 0x01.
    stream.deliver(new Uint8Array([...messageFrame(1, 10), ...messageFrame(2, 10), 0x80, 0x80, 0x80, 0x01, 1, 2, 3]))
    expect(aborted).to.equal(1)
    stream.deliver(messageFrame(3, 10))
    expect(reported(handler)).to.deep.equal(['rpc 1', 'rpc 2', 'InvalidFrame'])
  })
})

describe('pubsub inbound queue over the memory transport', function () {
  this.timeout(30_000)
  const nodes: Array<Swarm<ReturnType<typeof behaviour>>> = []
  afterEach(async () => { await Promise.all(nodes.splice(0).map(async n => { await n.close() })) })

  function behaviour (key: Keypair) {
    return combine({
      gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), heartbeatInterval: 100, heartbeatInitialDelay: 10 })
    })
  }

  it('a publisher of 24 messages of 200 KB to a receiver that does not poll: its stream is paused at 1 MiB, then every message is delivered once', async () => {
    // Every inbound stream of the receiver's handlers, to watch its pauses.
    const inbound: Array<{ pauses: number, resumes: number }> = []
    const original = StreamHandler.prototype.onConnectionEvent
    StreamHandler.prototype.onConnectionEvent = function (this: StreamHandler, event: ConnectionEvent) {
      if (event.type === 'FullyNegotiatedInbound' && receiverHandlers.has(this)) {
        const counts = { pauses: 0, resumes: 0 }
        inbound.push(counts)
        const stream = event.stream
        const pause = stream.pause.bind(stream)
        const resume = stream.resume.bind(stream)
        stream.pause = () => { counts.pauses++; pause() }
        stream.resume = () => { counts.resumes++; resume() }
      }
      original.call(this, event)
    }
    const receiverHandlers = new WeakSet<StreamHandler>()
    try {
      const publisher = await newSwarm(key => behaviour(key))
      const receiver = await newSwarm(key => behaviour(key))
      nodes.push(publisher, receiver)
      const makeHandler = receiver.behaviour.gossipsub.handleEstablishedInboundConnection.bind(receiver.behaviour.gossipsub)
      receiver.behaviour.gossipsub.handleEstablishedInboundConnection = (...args: Parameters<typeof makeHandler>) => {
        const handler = makeHandler(...args)
        receiverHandlers.add(handler as unknown as StreamHandler)
        return handler
      }
      const topic = new gossipsub.IdentTopic('inbound-bound')
      publisher.behaviour.gossipsub.subscribe(topic)
      receiver.behaviour.gossipsub.subscribe(topic)
      await connect(publisher, receiver)
      await driveUntil(nodes, () => publisher.behaviour.gossipsub.meshPeers(topic).length === 1 && receiver.behaviour.gossipsub.meshPeers(topic).length === 1)
      expect(inbound).to.have.length(1)
      const size = 200_000
      for (let i = 0; i < 24; i++) {
        const data = new Uint8Array(size)
        data[0] = i
        publisher.behaviour.gossipsub.publish(topic, data)
      }
      // Only the publisher is driven: its frames reach the receiver's handler, which nobody
      // takes from, until 1 MiB waits and its stream is paused.
      await driveUntil([publisher], () => inbound[0].pauses > 0, { timeout: 10_000 })
      const [, received] = await drive(nodes, { count: [0, 24], filter: e => e.type === 'Behaviour' && e.event.event.type === 'Message', timeout: 20_000 })
      const firsts = received.map(e => e.type === 'Behaviour' && e.event.event.type === 'Message' ? e.event.event.message.data[0] : -1)
      expect(firsts.sort((x, y) => x - y)).to.deep.equal(Array.from({ length: 24 }, (_, i) => i))
      expect(inbound[0].resumes).to.be.greaterThan(0)
    } finally {
      StreamHandler.prototype.onConnectionEvent = original
    }
  })
})
