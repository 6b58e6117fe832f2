/**
 * Yamux window updates held back under the muxer (src/upgrade/yamux-window.ts): the filter on
 * Yamux's byte stream, and two muxers over a pair of `SecureChannel`s, where a one-way stream
 * must neither stall nor make the reader write once per frame.
 */
import { expect } from 'chai'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddrConnectionPair } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import { SecureChannel } from '../../src/upgrade/secure-channel.js'
import { HELD_WINDOW_BYTES, MAX_HELD_STREAMS, WindowUpdateBatcher } from '../../src/upgrade/yamux-window.js'
import { fakeCipherPair } from '../fixtures/fake-cipher.js'
import type { Stream } from '@libp2p/interface'

const DATA = 0
const WINDOW_UPDATE = 1
const PING = 2
const GO_AWAY = 3
const SYN = 1
const ACK = 2

/** A Yamux frame: the 12-byte header (version 0) and its body. */
function frame (type: number, flags: number, stream: number, length: number, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(12 + body.byteLength)
  const view = new DataView(out.buffer)
  out[1] = type
  view.setUint16(2, flags)
  view.setUint32(4, stream)
  view.setUint32(8, length)
  out.set(body, 12)
  return out
}

function concat (parts: Uint8Array[]): Uint8Array {
  return new Uint8ArrayList(...parts).subarray()
}

/** Run `chunks` through a batcher: the bytes it passes on, and what it holds at the end. */
function run (chunks: Uint8Array[]): { passed: Uint8Array, held: Uint8Array | undefined, counted: number } {
  const batcher = new WindowUpdateBatcher()
  const out: Uint8Array[] = []
  let counted = 0
  for (const chunk of chunks) counted += batcher.filter(chunk, out)
  // Copies: what was passed may be views of the chunks.
  return { passed: concat(out.map(part => part.slice())), held: batcher.take(), counted }
}

describe('Yamux window updates held back', () => {
  // A data body that looks like a plain window update: it must pass as data.
  const lookalike = frame(WINDOW_UPDATE, 0, 9, 999)
  const kept = [
    frame(DATA, SYN, 1, 5, Uint8Array.of(1, 2, 3, 4, 5)),
    frame(DATA, 0, 3, lookalike.byteLength, lookalike),
    frame(WINDOW_UPDATE, ACK, 5, 0),
    frame(PING, SYN, 0, 7),
    frame(WINDOW_UPDATE, 0, 0, 100),
    frame(DATA, 0, 1, 0),
    frame(GO_AWAY, 0, 0, 0)
  ]
  const heldFrames = [frame(WINDOW_UPDATE, 0, 1, 100), frame(WINDOW_UPDATE, 0, 3, 50), frame(WINDOW_UPDATE, 0, 1, 30)]
  // Held updates between the others.
  const stream = concat([kept[0], heldFrames[0], kept[1], kept[2], heldFrames[1], kept[3], kept[4], heldFrames[2], kept[5], kept[6]])
  const expectedPassed = concat(kept)
  const expectedHeld = concat([frame(WINDOW_UPDATE, 0, 1, 130), frame(WINDOW_UPDATE, 0, 3, 50)])

  it('takes plain window updates out, one per stream with the deltas added up; passes data, flags, pings, the session\'s updates and go-aways', () => {
    const { passed, held, counted } = run([stream])
    expect(passed).to.deep.equal(expectedPassed)
    expect(counted).to.equal(expectedPassed.byteLength)
    expect(held).to.deep.equal(expectedHeld)
  })

  it('finds the frames whatever the writes\' boundaries: split at every byte, and one byte at a time', () => {
    for (let at = 0; at <= stream.byteLength; at++) {
      const { passed, held, counted } = run([stream.subarray(0, at), stream.subarray(at)])
      expect(passed, `split at ${at}`).to.deep.equal(expectedPassed)
      expect(counted).to.equal(expectedPassed.byteLength)
      expect(held, `split at ${at}`).to.deep.equal(expectedHeld)
    }
    const bytes = Array.from(stream, byte => Uint8Array.of(byte))
    const { passed, held } = run(bytes)
    expect(passed).to.deep.equal(expectedPassed)
    expect(held).to.deep.equal(expectedHeld)
  })

  it('passes a write with nothing to hold as it is, without copying', () => {
    const batcher = new WindowUpdateBatcher()
    const out: Uint8Array[] = []
    const write = kept[0]
    batcher.filter(write, out)
    expect(out).to.have.length(1)
    expect(out[0]).to.equal(write)
  })

  it('says the held updates are due once their deltas reach HELD_WINDOW_BYTES, or MAX_HELD_STREAMS streams have some; take() forgets them', () => {
    const byBytes = new WindowUpdateBatcher()
    byBytes.filter(frame(WINDOW_UPDATE, 0, 1, HELD_WINDOW_BYTES - 1), [])
    expect(byBytes.due).to.equal(false)
    byBytes.filter(frame(WINDOW_UPDATE, 0, 3, 1), [])
    expect(byBytes.due).to.equal(true)
    expect(byBytes.take()).to.deep.equal(concat([frame(WINDOW_UPDATE, 0, 1, HELD_WINDOW_BYTES - 1), frame(WINDOW_UPDATE, 0, 3, 1)]))
    expect(byBytes.due).to.equal(false)
    expect(byBytes.holding).to.equal(false)
    expect(byBytes.take()).to.equal(undefined)

    const byStreams = new WindowUpdateBatcher()
    for (let i = 0; i < MAX_HELD_STREAMS - 1; i++) byStreams.filter(frame(WINDOW_UPDATE, 0, 2 * i + 1, 1), [])
    expect(byStreams.due).to.equal(false)
    byStreams.filter(frame(WINDOW_UPDATE, 0, 2 * MAX_HELD_STREAMS + 1, 1), [])
    expect(byStreams.due).to.equal(true)
  })

  it('passes an update whose delta would take the held sum past 32 bits', () => {
    const big = frame(WINDOW_UPDATE, 0, 1, 0xffff0000)
    const more = frame(WINDOW_UPDATE, 0, 1, 0x20000)
    const { passed, held } = run([big, more])
    expect(passed).to.deep.equal(more)
    expect(held).to.deep.equal(big)
  })
})

describe('SecureChannel under Yamux, window updates held back', () => {
  /** Two channels, and `read`: what b has read, as one array, after three turns of the event loop. */
  function channels (): { a: SecureChannel, read: () => Promise<Uint8Array> } {
    const [rawA, rawB] = multiaddrConnectionPair()
    const [c1, c2] = fakeCipherPair()
    const a = new SecureChannel(rawA, { encrypt: c1.encrypt, decrypt: c2.decrypt })
    const b = new SecureChannel(rawB, { encrypt: c2.encrypt, decrypt: c1.decrypt })
    const got = new Uint8ArrayList()
    b.addEventListener('message', (evt) => { got.append(evt.data) })
    return {
      a,
      read: async () => {
        for (let i = 0; i < 3; i++) await new Promise(resolve => setImmediate(resolve))
        return got.subarray()
      }
    }
  }

  it('writes what was queued before Yamux ahead of any held update (a multistream-select reply still waiting for its turn)', async () => {
    const { a, read } = channels()
    const reply = new TextEncoder().encode('\x0d/yamux/1.0.0\n')
    a.send(reply)
    a.holdWindowUpdates()
    const ack = frame(WINDOW_UPDATE, ACK, 1, 0)
    a.send(ack)
    a.send(frame(WINDOW_UPDATE, 0, 1, 200))
    const data = frame(DATA, 0, 3, 2, Uint8Array.of(8, 9))
    a.send(data)
    expect(await read()).to.deep.equal(concat([reply, frame(WINDOW_UPDATE, 0, 1, 200), ack, data]))
    a.abort(new Error('done'))
  })

  it('puts held updates where a frame starts when a write ended inside a frame', async () => {
    const { a, read } = channels()
    a.holdWindowUpdates()
    const body = new Uint8Array(100).fill(5)
    const data = frame(DATA, 0, 3, body.byteLength, body)
    const first = frame(WINDOW_UPDATE, 0, 1, 10)
    // A frame handed over in two writes, in two turns, and an update held in each.
    a.send(first)
    a.send(data.subarray(0, 40))
    await new Promise(resolve => setImmediate(resolve))
    const second = frame(WINDOW_UPDATE, 0, 1, 20)
    a.send(concat([data.subarray(40), second]))
    expect(await read()).to.deep.equal(concat([first, data, second]))
    a.abort(new Error('done'))
  })


  /**
   * Two Yamux muxers over two channels and a stream from a (the writer) to b (the reader);
   * `readerWrites` counts b's socket writes.
   */
  async function link (): Promise<{ outbound: Stream, inbound: Stream, readerWrites: () => number, close: () => void }> {
    const [rawA, rawB] = multiaddrConnectionPair()
    let writes = 0
    const send = rawB.send.bind(rawB)
    rawB.send = (data) => { writes++; return send(data) }
    const [c1, c2] = fakeCipherPair()
    const a = new SecureChannel(rawA, { encrypt: c1.encrypt, decrypt: c2.decrypt })
    const b = new SecureChannel(rawB, { encrypt: c2.encrypt, decrypt: c1.decrypt })
    a.holdWindowUpdates()
    b.holdWindowUpdates()
    const muxA = yamux()().createStreamMuxer(a)
    const muxB = yamux()().createStreamMuxer(b)
    const received = new Promise<Stream>(resolve => { muxB.addEventListener('stream', (evt) => { resolve(evt.detail) }, { once: true }) })
    const outbound = await muxA.createStream()
    return {
      outbound,
      inbound: await received,
      readerWrites: () => writes,
      close: () => {
        muxA.abort(new Error('done'))
        muxB.abort(new Error('done'))
      }
    }
  }

  it('a one-way stream of 4 MiB, far past the 256 KiB window, arrives whole: the reader\'s held updates leave as they add up', async () => {
    const { outbound, inbound, readerWrites, close } = await link()
    try {
      const got = new Uint8ArrayList()
      const reading = (async () => { for await (const chunk of inbound) got.append(chunk) })()
      const total = 4 * 1024 * 1024
      const chunk = new Uint8Array(16 * 1024).map((_, i) => i & 0xff)
      const writesBefore = readerWrites()
      for (let sent = 0; sent < total; sent += chunk.byteLength) {
        if (!outbound.send(chunk)) await new Promise(resolve => outbound.addEventListener('drain', resolve, { once: true }))
      }
      await outbound.close()
      await reading
      expect(got.byteLength).to.equal(total)
      expect(got.subarray(0, chunk.byteLength)).to.deep.equal(chunk)
      // One update per HELD_WINDOW_BYTES read at most, not one per frame (256 frames of 16 KiB).
      expect(readerWrites() - writesBefore).to.be.at.most(total / HELD_WINDOW_BYTES + 4)
    } finally {
      close()
    }
  })

  it('a reader that gets a small message per turn writes nothing back for them', async () => {
    const { outbound, inbound, readerWrites, close } = await link()
    try {
      let got = 0
      inbound.addEventListener('message', (evt) => { got += evt.data.byteLength })
      // The first message makes the reader acknowledge the stream (an update with ACK: not held).
      outbound.send(new Uint8Array(300))
      await new Promise(resolve => setTimeout(resolve, 20))
      expect(got).to.equal(300)
      got = 0
      const writesBefore = readerWrites()
      for (let i = 0; i < 200; i++) {
        outbound.send(new Uint8Array(300))
        await new Promise(resolve => setImmediate(resolve))
      }
      await new Promise(resolve => setTimeout(resolve, 20))
      expect(got).to.equal(200 * 300)
      // 60,000 bytes read: their updates are held (without holding: a write per turn). Only
      // Yamux growing the stream's window (doubling it from 256 KiB up to 16 MiB when data comes
      // fast, six times at most) makes an update due at once.
      expect(readerWrites() - writesBefore).to.be.at.most(6)
    } finally {
      close()
    }
  })
})
