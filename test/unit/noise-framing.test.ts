import { expect } from 'chai'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddrConnectionPair } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import { NOISE_MAX_MESSAGE, NOISE_MAX_PLAINTEXT, NoiseFrameDecoder, NoiseFrameError, sealFrames } from '../../src/upgrade/noise-framing.js'
import { FLUSH_BYTES, SecureChannel } from '../../src/upgrade/secure-channel.js'
import { fakeCipherPair } from '../fixtures/fake-cipher.js'
import type { Stream } from '@libp2p/interface'

/** `u16 BE length ‖ bytes`. */
function framed (...messages: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(messages.reduce((n, m) => n + 2 + m.byteLength, 0))
  let at = 0
  for (const m of messages) {
    out[at] = m.byteLength >>> 8
    out[at + 1] = m.byteLength & 0xff
    out.set(m, at + 2)
    at += 2 + m.byteLength
  }
  return out
}

function message (size: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (i * 31 + seed) & 0xff)
}

function same (frames: Uint8Array[], expected: Uint8Array[]): boolean {
  return frames.length === expected.length && frames.every((f, i) => Buffer.from(f).equals(expected[i]))
}

function decodeAll (decoder: NoiseFrameDecoder, chunks: Array<Uint8Array | Uint8ArrayList>): Uint8Array[] {
  const frames: Uint8Array[] = []
  // Copies: a frame is a view that may be decrypted in place, and the caller owns it now.
  for (const chunk of chunks) decoder.decode(chunk, (frame) => { frames.push(frame.slice()) })
  return frames
}

describe('Noise framing', () => {
  const sizes = [16, 17, 255, 256, 300, 1_000, NOISE_MAX_MESSAGE]
  const messages = sizes.map((size, i) => message(size, i))
  const wire = framed(...messages)

  it('decodes messages merged in one chunk', () => {
    expect(decodeAll(new NoiseFrameDecoder(), [wire])).to.deep.equal(messages)
  })

  it('decodes messages split at every byte boundary', () => {
    // Every split point of the whole stream (the large message makes this ~67k cases; the
    // small ones are covered by the three-way split below).
    for (let cut = 0; cut <= wire.byteLength; cut += cut < 2_000 || cut > wire.byteLength - 2_000 ? 1 : 13) {
      const frames = decodeAll(new NoiseFrameDecoder(), [wire.subarray(0, cut), wire.subarray(cut)])
      expect(same(frames, messages), `cut at ${cut}`).to.equal(true)
    }
    const small = framed(...messages.slice(0, 5))
    for (let a = 0; a <= small.byteLength; a++) {
      for (let b = a; b <= small.byteLength; b += 7) {
        const frames = decodeAll(new NoiseFrameDecoder(), [small.subarray(0, a), small.subarray(a, b), small.subarray(b)])
        expect(same(frames, messages.slice(0, 5)), `cuts at ${a}, ${b}`).to.equal(true)
      }
    }
  })

  it('decodes a list of one-byte arrays', () => {
    const small = framed(...messages.slice(0, 4))
    const list = new Uint8ArrayList(...Array.from(small, (byte) => Uint8Array.of(byte)))
    const decoder = new NoiseFrameDecoder()
    expect(decodeAll(decoder, [list])).to.deep.equal(messages.slice(0, 4))
    expect(decoder.buffered).to.equal(false)
  })

  it('decodes large messages trickled in small chunks (held as views, then copied past a bound)', () => {
    const large = [message(5_000, 1), message(NOISE_MAX_MESSAGE, 2), message(4_096, 3)]
    const stream = framed(...large)
    for (const size of [1, 1_000, 9_000]) {
      const chunks: Uint8Array[] = []
      for (let at = 0; at < stream.byteLength; at += size) chunks.push(stream.slice(at, at + size))
      const decoder = new NoiseFrameDecoder()
      expect(same(decodeAll(decoder, chunks), large), `chunks of ${size} B`).to.equal(true)
      expect(decoder.buffered).to.equal(false)
    }
    // Chunks that are views into one large buffer (as a big WebSocket message is) are copied.
    const backing = new Uint8Array(300_000)
    backing.set(stream, 1_000)
    const inBacking = stream.byteLength / 2 | 0
    const views = [backing.subarray(1_000, 1_000 + inBacking), backing.subarray(1_000 + inBacking, 1_000 + stream.byteLength)]
    expect(same(decodeAll(new NoiseFrameDecoder(), views), large)).to.equal(true)
  })

  it('refuses a message shorter than its tag', () => {
    expect(() => decodeAll(new NoiseFrameDecoder(), [framed(new Uint8Array(15))])).to.throw(NoiseFrameError)
  })

  it('seals parts into messages of at most 65,535 bytes, in order', () => {
    const [sender, receiver] = fakeCipherPair()
    const parts = [message(10, 1), message(70_000, 2), message(3, 3), message(NOISE_MAX_PLAINTEXT, 4), message(65_600, 5)]
    const total = parts.reduce((n, p) => n + p.byteLength, 0)
    const wireBytes = sealFrames(parts, total, (p) => sender.encrypt(p) as Uint8Array)
    const frames = decodeAll(new NoiseFrameDecoder(), [wireBytes])
    expect(frames.length).to.equal(Math.ceil(total / NOISE_MAX_PLAINTEXT))
    for (const frame of frames) expect(frame.byteLength).to.be.at.most(NOISE_MAX_MESSAGE)
    const plain = new Uint8ArrayList(...frames.map(f => receiver.decrypt(f) as Uint8Array)).subarray()
    expect(plain).to.deep.equal(new Uint8ArrayList(...parts).subarray())
  })

  it('copies a ciphertext handed over in pieces into its frame, in order', () => {
    const [sender, receiver] = fakeCipherPair()
    const parts = [message(10, 1), message(70_000, 2)]
    const total = parts.reduce((n, p) => n + p.byteLength, 0)
    const inPieces = (p: Uint8Array): Uint8ArrayList => {
      const sealed = sender.encrypt(p) as Uint8Array
      return new Uint8ArrayList(sealed.subarray(0, 5), sealed.subarray(5, 5), sealed.subarray(5))
    }
    const frames = decodeAll(new NoiseFrameDecoder(), [sealFrames(parts, total, inPieces)])
    const plain = new Uint8ArrayList(...frames.map(f => receiver.decrypt(f) as Uint8Array)).subarray()
    expect(plain).to.deep.equal(new Uint8ArrayList(...parts).subarray())
  })

  it('refuses to frame a message over 65,535 bytes', () => {
    const tooLong = (p: Uint8Array): Uint8Array => new Uint8Array(p.byteLength + 17)
    expect(() => sealFrames([new Uint8Array(NOISE_MAX_PLAINTEXT)], NOISE_MAX_PLAINTEXT, tooLong)).to.throw(NoiseFrameError)
  })
})

describe('SecureChannel', () => {
  async function pair (): Promise<{ a: SecureChannel, b: SecureChannel, writes: number[] }> {
    const [rawA, rawB] = multiaddrConnectionPair()
    const writes: number[] = []
    const send = rawA.send.bind(rawA)
    rawA.send = (data) => { writes.push(data.byteLength); return send(data) }
    // Each cipher's sent and received counters are separate: a→b uses c1, b→a uses c2.
    const [c1, c2] = fakeCipherPair()
    const a = new SecureChannel(rawA, { encrypt: c1.encrypt, decrypt: c2.decrypt })
    const b = new SecureChannel(rawB, { encrypt: c2.encrypt, decrypt: c1.decrypt })
    return { a, b, writes }
  }

  it('sends many streams written in one turn as one socket write, decoded in order', async () => {
    const { a, b, writes } = await pair()
    const muxA = yamux()().createStreamMuxer(a)
    const muxB = yamux()().createStreamMuxer(b)
    const received = new Map<number, Uint8ArrayList>()
    const done = new Map<number, Promise<void>>()
    const inbound: Stream[] = []
    muxB.addEventListener('stream', (evt) => { inbound.push(evt.detail) })
    const STREAMS = 20
    const streams = await Promise.all(Array.from({ length: STREAMS }, async () => muxA.createStream()))
    // Let stream openings settle, then write every stream's data in one synchronous turn.
    await new Promise(resolve => setTimeout(resolve, 50))
    expect(inbound.length).to.equal(STREAMS)
    inbound.forEach((stream, i) => {
      const list = new Uint8ArrayList()
      received.set(i, list)
      done.set(i, (async () => { for await (const chunk of stream) list.append(chunk) })())
    })
    writes.length = 0
    const expected = streams.map((_, i) => [message(100, i), message(2_000, i + 50), message(7, i + 99)])
    for (let round = 0; round < 3; round++) streams.forEach((stream, i) => { stream.send(expected[i][round]) })
    await new Promise(resolve => setImmediate(resolve))
    expect(writes.length, 'socket writes for 60 frames').to.equal(1)
    await Promise.all(streams.map(async s => { await s.close() }))
    await Promise.all(done.values())
    inbound.forEach((_, i) => {
      expect(received.get(i)?.subarray()).to.deep.equal(new Uint8ArrayList(...expected[i]).subarray())
    })
    muxA.abort(new Error('done'))
    muxB.abort(new Error('done'))
  })

  it('writes at once when the turn has queued a lot, and keeps the order', async () => {
    const { a, b, writes } = await pair()
    const got = new Uint8ArrayList()
    b.addEventListener('message', (evt) => { got.append(evt.data) })
    const parts = Array.from({ length: 40 }, (_, i) => message(10_000 + i, i))
    for (const part of parts) a.send(part)
    expect(writes.length).to.be.greaterThan(0)
    await new Promise(resolve => setTimeout(resolve, 50))
    expect(got.subarray()).to.deep.equal(new Uint8ArrayList(...parts).subarray())
    a.abort(new Error('done'))
    b.abort(new Error('done'))
  })

  it('under socket back-pressure takes at most FLUSH_BYTES (and the send that crossed it) before telling the writer to wait, and resumes on drain', async () => {
    expect(FLUSH_BYTES, 'what one turn may commit past a full socket').to.be.at.most(64 * 1024)
    const [rawA, rawB] = multiaddrConnectionPair()
    // The socket takes each write and says it is full (as a socket over its high-water mark).
    let full = true
    const send = rawA.send.bind(rawA)
    rawA.send = (data) => { send(data); return !full }
    const [c1, c2] = fakeCipherPair()
    const a = new SecureChannel(rawA, { encrypt: c1.encrypt, decrypt: c2.decrypt })
    const b = new SecureChannel(rawB, { encrypt: c2.encrypt, decrypt: c1.decrypt })
    const got = new Uint8ArrayList()
    b.addEventListener('message', (evt) => { got.append(evt.data) })
    const parts: Uint8Array[] = []
    let accepted = 0
    for (let i = 0; i < 100; i++) {
      const part = message(10_000, i)
      parts.push(part)
      accepted += part.byteLength
      if (!a.send(part)) break
    }
    expect(accepted, 'taken before the channel pushed back').to.be.at.most(FLUSH_BYTES + 10_000)
    let drained = false
    a.addEventListener('drain', () => { drained = true })
    full = false
    rawA.dispatchEvent(new Event('drain'))
    expect(drained).to.equal(true)
    await new Promise(resolve => setTimeout(resolve, 50))
    expect(got.subarray()).to.deep.equal(new Uint8ArrayList(...parts).subarray())
    a.abort(new Error('done'))
    b.abort(new Error('done'))
  })
})
