/**
 * The WebRTC stream layer without sockets: the spec's framing, half-close with FIN/FIN_ACK,
 * STOP_SENDING, reset, the 16 KiB limit, malformed frames, back-pressure on `bufferedAmount`,
 * and the muxer's bounds on channels a remote opens. Data channels are fakes that deliver when
 * the test says (or at the next macrotask).
 */
import { expect } from 'chai'
import FakeTimers from '@sinonjs/fake-timers'
import { logger } from '@libp2p/logger'
import { multiaddr } from '@multiformats/multiaddr'
import { Flag, WebRTCMessageTooLargeError, MAX_MESSAGE_SIZE, MAX_PAYLOAD_SIZE, WebRTCMalformedFrameError, MessageDecoder, decodeMessage, encodeMessage } from '../../src/transport/webrtc/message.js'
import { DataChannelStream } from '../../src/transport/webrtc/stream.js'
import { DataChannelMuxer, EARLY_READ_BUFFER_LENGTH, WebRTCConnection } from '../../src/transport/webrtc/muxer.js'
import type { DataChannel } from '../../src/transport/webrtc/stream.js'
import type { PeerConnection } from '../../src/transport/webrtc/muxer.js'
import type { Stream } from '@libp2p/interface'

const log = logger('peerswarm:test:webrtc')

/** A fake data channel: sends queue until `flush()` (or the next macrotask when `auto`). */
class FakeChannel implements DataChannel {
  peer?: FakeChannel
  open = true
  closed = false
  buffered = 0
  maxBuffered = 0
  lowThreshold = 0
  readonly sent: Uint8Array[] = []
  private readonly queue: Uint8Array[] = []
  private cbs: { open?: () => void, closed?: () => void, low?: () => void, message?: (m: string | Uint8Array | ArrayBuffer) => void } = {}
  private scheduled = false

  constructor (readonly id: number, public auto = true) {}

  getId (): number { return this.id }
  isOpen (): boolean { return this.open }
  bufferedAmount (): number { return this.buffered }
  setBufferedAmountLowThreshold (size: number): void { this.lowThreshold = size }
  onOpen (cb: () => void): void { this.cbs.open = cb }
  onClosed (cb: () => void): void { this.cbs.closed = cb }
  onError (): void {}
  onBufferedAmountLow (cb: () => void): void { this.cbs.low = cb }
  onMessage (cb: (m: string | Uint8Array | ArrayBuffer) => void): void { this.cbs.message = cb }

  sendMessageBinary (buffer: Uint8Array): boolean {
    if (!this.open) throw new Error('channel closed')
    const copy = buffer.slice()
    this.sent.push(copy)
    this.queue.push(copy)
    this.buffered += copy.byteLength
    this.maxBuffered = Math.max(this.maxBuffered, this.buffered)
    if (this.auto && !this.scheduled) {
      this.scheduled = true
      setImmediate(() => { this.scheduled = false; this.flush() })
    }
    return true
  }

  /** Deliver up to `max` queued messages to the peer. */
  flush (max = Infinity): number {
    let n = 0
    while (this.queue.length > 0 && n < max) {
      const message = this.queue.shift() as Uint8Array
      const before = this.buffered
      this.buffered -= message.byteLength
      n++
      this.peer?.receive(message)
      if (before > this.lowThreshold && this.buffered <= this.lowThreshold) this.cbs.low?.()
    }
    return n
  }

  receive (message: string | Uint8Array): void {
    if (!this.closed) this.cbs.message?.(message)
  }

  close (): void {
    if (this.closed) return
    this.flush()
    this.closed = true
    this.open = false
    setImmediate(() => {
      this.cbs.closed?.()
      this.peer?.remoteClosed()
    })
  }

  remoteClosed (): void {
    if (this.closed) return
    this.closed = true
    this.open = false
    this.cbs.closed?.()
  }
}

function channelPair (id: number, auto = true): [FakeChannel, FakeChannel] {
  const a = new FakeChannel(id, auto)
  const b = new FakeChannel(id, auto)
  a.peer = b
  b.peer = a
  return [a, b]
}

function streamPair (options: { auto?: boolean, maxBufferedAmount?: number, finAckTimeout?: number } = {}): { a: DataChannelStream, b: DataChannelStream, ca: FakeChannel, cb: FakeChannel, bad: Error[] } {
  const [ca, cb] = channelPair(1, options.auto ?? true)
  const bad: Error[] = []
  const a = new DataChannelStream({ channel: ca, direction: 'outbound', log, ...options })
  const b = new DataChannelStream({ channel: cb, direction: 'inbound', log, onBadFrame: (err) => { bad.push(err) }, ...options })
  return { a, b, ca, cb, bad }
}

async function readAll (stream: Stream | DataChannelStream): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  for await (const chunk of stream) chunks.push(chunk.subarray())
  return Buffer.concat(chunks)
}

function bytes (n: number, seed = 1): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff)
}

/** Wait (bounded) until `check()` holds. */
async function until (check: () => boolean, what: string, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setImmediate(resolve))
  }
}

describe('WebRTC data-channel framing', () => {
  it('encodes the spec\'s Message and decodes it back', () => {
    const framed = encodeMessage({ flag: Flag.FIN_ACK, message: bytes(5) })
    // varint length 9, field 1 varint 3, field 2 length 5
    expect([...framed.subarray(0, 5)]).to.deep.equal([9, 0x08, 3, 0x12, 5])
    const decoded = new MessageDecoder().push(framed)
    expect(decoded).to.have.length(1)
    expect(decoded[0].flag).to.equal(Flag.FIN_ACK)
    expect([...decoded[0].message ?? []]).to.deep.equal([...bytes(5)])
  })

  it('fits the largest payload in 16 KiB and refuses to encode more', () => {
    expect(encodeMessage({ message: bytes(MAX_PAYLOAD_SIZE) }).byteLength).to.be.at.most(MAX_MESSAGE_SIZE)
    expect(encodeMessage({ flag: Flag.FIN, message: bytes(MAX_PAYLOAD_SIZE) }).byteLength).to.be.at.most(MAX_MESSAGE_SIZE)
    expect(() => encodeMessage({ message: bytes(MAX_MESSAGE_SIZE) })).to.throw(RangeError)
  })

  it('decodes frames split across data-channel messages and several in one', () => {
    const one = encodeMessage({ message: bytes(3000, 1) })
    const two = encodeMessage({ flag: Flag.FIN })
    const all = Buffer.concat([one, two, one])
    const decoder = new MessageDecoder()
    const out = [...decoder.push(all.subarray(0, 1)), ...decoder.push(all.subarray(1, 2500)), ...decoder.push(all.subarray(2500))]
    expect(out.map(m => m.flag)).to.deep.equal([undefined, Flag.FIN, undefined])
    expect(out[2].message?.byteLength).to.equal(3000)
    expect(decoder.bufferedBytes).to.equal(0)
  })

  it('refuses a length prefix over 16 KiB before buffering anything', () => {
    const decoder = new MessageDecoder()
    // varint 16385 = 0x81 0x80 0x01
    expect(() => decoder.push(Uint8Array.from([0x81, 0x80, 0x01, 0x12]))).to.throw(WebRTCMessageTooLargeError)
  })

  it('refuses malformed protobuf: truncated fields, bad wire types, unknown flags, long varints', () => {
    expect(() => decodeMessage(Uint8Array.from([0x12, 5, 1]))).to.throw(WebRTCMalformedFrameError)
    expect(() => decodeMessage(Uint8Array.from([0x0b]))).to.throw(WebRTCMalformedFrameError)
    expect(() => decodeMessage(Uint8Array.from([0x08, 9]))).to.throw(WebRTCMalformedFrameError)
    expect(() => decodeMessage(Uint8Array.from([0x08, 0x80, 0x80, 0x80, 0x80, 0x01]))).to.throw(WebRTCMalformedFrameError)
    expect(() => new MessageDecoder().push(Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x01]))).to.throw(WebRTCMalformedFrameError)
    // unknown fields are skipped
    expect(decodeMessage(Uint8Array.from([0x18, 1, 0x08, 1])).flag).to.equal(Flag.STOP_SENDING)
  })
})

describe('WebRTC data-channel streams', () => {
  it('carries 1 MiB in messages of at most 16 KiB, in order', async () => {
    const { a, b, ca } = streamPair()
    const data = bytes(1024 * 1024)
    const received = readAll(b)
    a.send(data)
    await a.close()
    await b.close()
    expect(Buffer.compare(await received, data)).to.equal(0)
    expect(ca.sent.every(m => m.byteLength <= MAX_MESSAGE_SIZE)).to.equal(true)
  })

  it('half-closes: FIN ends the remote\'s reading, the remote still writes back, FIN_ACK answers', async () => {
    const { a, b, ca, cb } = streamPair()
    const readByB = readAll(b)
    a.send(bytes(10))
    await a.close()
    expect(a.writeStatus).to.equal('closed')
    expect((await readByB).byteLength).to.equal(10)
    // b answered a's FIN with FIN_ACK
    expect(cb.sent.map(m => decodeMessage(m.subarray(1)).flag)).to.include(Flag.FIN_ACK)
    expect(ca.sent.map(m => decodeMessage(m.subarray(1)).flag)).to.include(Flag.FIN)
    const readByA = readAll(a)
    b.send(bytes(20))
    await b.close()
    expect((await readByA).byteLength).to.equal(20)
    await until(() => a.status === 'closed' && b.status === 'closed', 'both closed')
    await until(() => ca.closed && cb.closed, 'channels closed')
  })

  it('close() waits for FIN_ACK, and no longer than finAckTimeout when none comes', async () => {
    const clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      const { a, ca } = streamPair({ auto: false, finAckTimeout: 10_000 })
      let closed = false
      void a.close().then(() => { closed = true })
      await clock.tickAsync(9_999)
      expect(closed).to.equal(false)
      ca.peer?.receive(new Uint8Array(0)) // nothing
      await clock.tickAsync(1)
      expect(closed).to.equal(true)
    } finally {
      clock.uninstall()
    }
  })

  it('close() returns as soon as the FIN_ACK arrives', async () => {
    const clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      const { a, ca, cb } = streamPair({ auto: false })
      let closed = false
      void a.close().then(() => { closed = true })
      await clock.tickAsync(0)
      ca.flush()
      cb.flush()
      await clock.tickAsync(0)
      expect(closed).to.equal(true)
    } finally {
      clock.uninstall()
    }
  })

  it('reset: abort() sends RESET_STREAM; the remote stream is reset and the channel closed', async () => {
    const { a, b, cb } = streamPair()
    let resetSeen = false
    b.addEventListener('close', (evt) => { resetSeen = evt.error != null })
    a.abort(new Error('bye'))
    await until(() => b.status === 'reset', 'remote reset')
    expect(resetSeen).to.equal(true)
    await until(() => cb.closed, 'channel closed')
  })

  it('a channel closed without FIN resets the stream', async () => {
    const { b, ca } = streamPair()
    ca.close()
    await until(() => b.status === 'reset', 'reset on close')
  })

  it('STOP_SENDING: closeRead() tells the remote its writes are not wanted', async () => {
    const { a, b } = streamPair()
    await b.closeRead()
    await until(() => a.remoteReadStatus === 'closed', 'remote read closed')
  })

  it('a frame over 16 KiB resets that stream with WebRTCMessageTooLargeError', async () => {
    const { b, ca, bad } = streamPair()
    let error: Error | undefined
    b.addEventListener('close', (evt) => { error = evt.error })
    ca.sendMessageBinary(Uint8Array.from([0x81, 0x80, 0x01, 0x12, 0x80, 0x80, 0x01]))
    await until(() => b.status === 'aborted', 'abort')
    expect(error).to.be.instanceOf(WebRTCMessageTooLargeError)
    expect(bad).to.have.length(1)
  })

  it('a malformed frame or a text message resets the stream with WebRTCMalformedFrameError', async () => {
    for (const junk of [Uint8Array.from([2, 0x0b, 0]), 'hello']) {
      const { b, ca } = streamPair()
      let error: Error | undefined
      b.addEventListener('close', (evt) => { error = evt.error })
      if (typeof junk === 'string') ca.peer?.receive(junk)
      else ca.sendMessageBinary(junk)
      await until(() => b.status === 'aborted', 'abort')
      expect(error).to.be.instanceOf(WebRTCMalformedFrameError)
      expect((error as WebRTCMalformedFrameError).code).to.equal('ERR_WEBRTC_MALFORMED_FRAME')
    }
  })

  it('back-pressure: send() returns false at maxBufferedAmount and resumes on buffered-amount-low', async () => {
    const max = 256 * 1024
    const { a, b, ca } = streamPair({ auto: false, maxBufferedAmount: max })
    const received = readAll(b)
    const data = bytes(2 * 1024 * 1024)
    expect(a.send(data)).to.equal(false)
    // the channel held no more than the bound plus one message
    expect(ca.buffered).to.be.at.most(max + MAX_MESSAGE_SIZE)
    expect(a.writeBufferLength).to.be.greaterThan(0)
    let drains = 0
    let full = 0
    a.addEventListener('drain', () => { drains++ })
    const closing = a.close()
    for (let i = 0; i < 2000 && a.writeStatus !== 'closed'; i++) {
      // the channel sends nothing until it is full (or the stream has nothing left), then all it holds
      if (ca.buffered >= max) full++
      if (ca.buffered >= max || a.writeBufferLength === 0) ca.flush()
      ;(ca.peer as FakeChannel).flush()
      await new Promise(resolve => setImmediate(resolve))
    }
    ;(ca.peer as FakeChannel).auto = true
    ca.auto = true
    ca.flush()
    await closing
    await b.close()
    expect(Buffer.compare(await received, data)).to.equal(0)
    // the channel filled up again after each buffered-amount-low; the writer was told once, when all it wrote was with the channel
    expect(full).to.be.greaterThan(1)
    expect(drains).to.equal(1)
    expect(ca.maxBuffered).to.be.at.most(max + MAX_MESSAGE_SIZE)
  })
  it('back-pressure bounds the writer: one waiting for drain after each write holds at most one write in the stream', async () => {
    // Writes of four messages each: the stream sends one message per turn, so 'drain' must
    // wait until the stream has handed what it holds to the channel, or each drain lets the
    // writer add four messages while one leaves, and the write buffer grows to the whole stream.
    const { a, b, ca } = streamPair({ maxBufferedAmount: 64 * 1024 })
    const received = readAll(b)
    const data = bytes(1024 * 1024)
    const write = 4 * MAX_PAYLOAD_SIZE
    let maxWriteBuffer = 0
    let waits = 0
    for (let sent = 0; sent < data.byteLength; sent += write) {
      const more = a.send(data.subarray(sent, sent + write))
      maxWriteBuffer = Math.max(maxWriteBuffer, a.writeBufferLength)
      if (!more) {
        waits++
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => { reject(new Error('no drain within 2 s')) }, 2000)
          a.addEventListener('drain', () => { clearTimeout(timer); resolve() }, { once: true })
        })
      }
    }
    await a.close()
    await b.close()
    expect(Buffer.compare(await received, data)).to.equal(0)
    expect(waits).to.be.greaterThan(0)
    expect(maxWriteBuffer).to.be.at.most(write)
    expect(ca.maxBuffered).to.be.at.most(64 * 1024 + MAX_MESSAGE_SIZE)
  })
  it('in a page (no setImmediate) a stream\'s next turn comes from a MessageChannel, not a timer', async () => {
    // Browsers clamp chained setTimeout(0)s to 4 ms and throttle them in background tabs: the
    // turns must not wait for timers. Here timers are fake and never advance.
    const saved = globalThis.setImmediate
    const clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout'] })
    ;(globalThis as { setImmediate?: unknown }).setImmediate = undefined
    try {
      const { a, ca } = streamPair({ auto: false })
      expect(a.send(bytes(3 * MAX_PAYLOAD_SIZE))).to.equal(false)
      expect(ca.sent).to.have.length(1)
      for (let i = 0; i < 100 && ca.sent.length < 3; i++) {
        await new Promise<void>((resolve) => {
          const channel = new MessageChannel()
          channel.port1.onmessage = () => { channel.port1.close(); resolve() }
          channel.port2.postMessage(null)
        })
      }
      expect(ca.sent, 'messages sent without a timer firing').to.have.length(3)
      expect(a.writeBufferLength).to.equal(0)
    } finally {
      globalThis.setImmediate = saved
      clock.uninstall()
    }
  })
})

/** A fake peer connection: channels it opens appear on the remote's `onDataChannel`. */
class FakePeerConnection implements PeerConnection {
  peer?: FakePeerConnection
  private nextId: number
  private onChannel?: (channel: DataChannel) => void

  constructor (firstId: number) { this.nextId = firstId }

  createDataChannel (): DataChannel {
    const id = this.nextId
    this.nextId += 2
    const [local, remote] = channelPair(id)
    setImmediate(() => { this.peer?.onChannel?.(remote) })
    return local
  }

  onDataChannel (cb: (channel: DataChannel) => void): void { this.onChannel = cb }

  /** The remote opens a channel at once (a hostile remote's way). */
  remoteOpens (): FakeChannel {
    const [local, remote] = channelPair(this.nextId += 2)
    this.peer?.onChannel?.(remote)
    return local
  }
}

function muxerPair (options: { maxInboundStreams?: number, maxEarlyStreams?: number } = {}): { ma: DataChannelMuxer, mb: DataChannelMuxer, pa: FakePeerConnection, pb: FakePeerConnection } {
  const pa = new FakePeerConnection(1)
  const pb = new FakePeerConnection(2)
  pa.peer = pb
  pb.peer = pa
  const conn = (): WebRTCConnection => new WebRTCConnection({ remoteAddr: multiaddr('/ip4/127.0.0.1/udp/1/webrtc-direct'), direction: 'outbound', log, closePeer: () => {} })
  return { ma: new DataChannelMuxer(conn(), pa, options), mb: new DataChannelMuxer(conn(), pb, options), pa, pb }
}

describe('WebRTC data-channel muxer', () => {
  it('opens a stream per channel, both ways', async () => {
    const { ma, mb } = muxerPair()
    const reads: Array<Promise<Uint8Array>> = []
    mb.addEventListener('stream', (evt) => { reads.push(readAll(evt.detail)) })
    const s = await ma.createStream()
    s.send(bytes(100))
    await s.close()
    await until(() => reads.length === 1, 'inbound stream')
    expect((await reads[0]).byteLength).to.equal(100)
    expect(mb.protocol).to.equal('/webrtc')
  })

  it('closes channels beyond maxInboundStreams at once and counts them', async () => {
    const { mb, pa } = muxerPair({ maxInboundStreams: 4 })
    mb.addEventListener('stream', () => {})
    const opened = Array.from({ length: 10 }, () => pa.remoteOpens())
    expect(mb.streams).to.have.length(4)
    expect(mb.counters.refusedChannels).to.equal(6)
    await until(() => opened.slice(4).every(c => c.closed), 'refused channels closed')
    expect(opened.slice(0, 4).every(c => !c.closed)).to.equal(true)
  })

  it('holds at most maxEarlyStreams before the swarm listens, each with a small read buffer', async () => {
    const { mb, pa } = muxerPair({ maxEarlyStreams: 3 })
    for (let i = 0; i < 8; i++) pa.remoteOpens()
    expect(mb.streams).to.have.length(3)
    expect(mb.streams.every(s => s.maxReadBufferLength === EARLY_READ_BUFFER_LENGTH)).to.equal(true)
    expect(mb.counters.refusedChannels).to.equal(5)
    expect(mb.status).to.equal('open')
    const got: Stream[] = []
    mb.addEventListener('stream', (evt) => { got.push(evt.detail) })
    await until(() => got.length === 3, 'early streams handed over')
    expect(mb.streams.every(s => s.maxReadBufferLength > EARLY_READ_BUFFER_LENGTH)).to.equal(true)
  })

  it('an early stream that buffers more than its bound is reset, the connection stays', async () => {
    const { mb, pa } = muxerPair()
    const channel = pa.remoteOpens()
    for (let i = 0; i < 8; i++) channel.sendMessageBinary(encodeMessage({ message: bytes(MAX_PAYLOAD_SIZE) }))
    await until(() => mb.streams.length === 0, 'early stream reset')
    expect(mb.status).to.equal('open')
  })
})
