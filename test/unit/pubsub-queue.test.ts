/**
 * The pubsub handler's outbound queue: priorities, the byte bound, the deadline of forwarded
 * frames, SlowPeer reports, how much a stream is handed under back-pressure, and frames the
 * remote no longer wants (IDONTWANT) dropped as they reach the front. A fake stream stands for
 * the remote: it accepts writes until told to push back, and drains when told.
 */
import { expect } from 'chai'
import * as FakeTimers from '@sinonjs/fake-timers'
import { QueueGauge, RECENT_IDS, RecentIds, UnwantedIds } from '../../src/protocols/pubsub/peer-state.js'
import { StreamHandler } from '../../src/protocols/pubsub/stream-handler.js'
import { MAX_WRITE } from '../../src/protocols/pubsub/write-queue.js'
import type { ToBehaviour } from '../../src/protocols/pubsub/stream-handler.js'
import type { Stream } from '@libp2p/interface'

/** A write-side stream that records what it was sent and pushes back on demand. */
class FakeStream extends EventTarget {
  readonly written: number[] = []
  /** Bytes of each `send`. */
  readonly sends: number[] = []
  writable = true
  send (chunk: Uint8Array): boolean {
    // Each test frame is a length prefix (one byte, or two from 128 bytes on) and a payload
    // whose first byte names it.
    for (let i = 0; i < chunk.byteLength;) {
      const long = (chunk[i] & 0x80) !== 0
      const length = long ? (chunk[i] & 0x7f) + (chunk[i + 1] << 7) : chunk[i]
      const start = i + (long ? 2 : 1)
      this.written.push(chunk[start])
      i = start + length
    }
    this.sends.push(chunk.byteLength)
    return this.writable
  }

  drain (): void {
    this.writable = true
    this.dispatchEvent(new Event('drain'))
  }

  pause (): void {}
  resume (): void {}
  abort (): void {}
}

/** A frame of `size` bytes (prefix included, 2 to 16,385) whose first payload byte is `tag`. */
function frame (tag: number, size = 2): Uint8Array {
  const bytes = new Uint8Array(size)
  if (size <= 128) {
    bytes[0] = size - 1
    bytes[1] = tag
  } else {
    const length = size - 2
    bytes[0] = 0x80 | (length & 0x7f)
    bytes[1] = length >> 7
    bytes[2] = tag
  }
  return bytes
}

/**
 * Let the handler run as turns of the event loop would: its (fake) microtasks, then a real
 * turn (a forward is held back for one after control, see the handler), then again.
 */
async function turn (clock: ReturnType<typeof FakeTimers.install>): Promise<void> {
  await clock.tickAsync(0)
  await new Promise(resolve => setImmediate(resolve))
  await clock.tickAsync(0)
}

describe('pubsub outbound queue', () => {
  let clock: ReturnType<typeof FakeTimers.install>
  beforeEach(() => { clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'queueMicrotask'], now: 1_000 }) })
  afterEach(() => { clock.uninstall() })

  function open (options: { maxQueuedBytes?: number, lowPriorityDeadline?: number, gauge?: QueueGauge, unwanted?: UnwantedIds } = {}) {
    const handler = new StreamHandler({ protocols: ['/meshsub/1.1.0'], maxFrameSize: 1024, maxQueuedBytes: options.maxQueuedBytes ?? 1024, maxReceivedRpcs: 8, timeout: 1_000, lowPriorityDeadline: options.lowPriorityDeadline, gauge: options.gauge, unwanted: options.unwanted })
    const stream = new FakeStream()
    handler.onConnectionEvent({ type: 'FullyNegotiatedOutbound', stream: stream as unknown as Stream, protocol: '/meshsub/1.1.0', info: undefined })
    const reports = (): ToBehaviour[] => {
      const out: ToBehaviour[] = []
      for (;;) {
        const event = handler.poll({ waker: { wake: () => {} } })
        if (event?.type !== 'NotifyBehaviour') return out
        out.push(event.event)
      }
    }
    return { handler, stream, reports }
  }

  it('sends high-priority frames before forwarded ones queued earlier', async () => {
    const { handler, stream } = open()
    stream.writable = false
    handler.onBehaviourEvent({ type: 'Send', frames: frame(0) })
    await turn(clock)
    for (let i = 1; i <= 3; i++) handler.onBehaviourEvent({ type: 'Send', frames: frame(i), priority: 'low' })
    handler.onBehaviourEvent({ type: 'Send', frames: frame(9) })
    stream.drain()
    await turn(clock)
    expect(stream.written).to.deep.equal([0, 9, 1, 2, 3])
  })

  it('lets control push forwarded frames out of a full queue, and reports the drops', async () => {
    const { handler, stream, reports } = open({ maxQueuedBytes: 40 })
    stream.writable = false
    handler.onBehaviourEvent({ type: 'Send', frames: frame(0) })
    await turn(clock)
    for (let i = 1; i <= 4; i++) handler.onBehaviourEvent({ type: 'Send', frames: frame(i, 10), priority: 'low' })
    // Full (40 bytes): another forward is dropped, a control frame evicts the oldest forward.
    handler.onBehaviourEvent({ type: 'Send', frames: frame(5, 10), priority: 'low' })
    handler.onBehaviourEvent({ type: 'Send', frames: frame(6, 10) })
    expect(reports()).to.deep.include({ type: 'SlowPeer', droppedBytes: 20 })
    stream.drain()
    await turn(clock)
    expect(stream.written).to.deep.equal([0, 6, 2, 3, 4])
  })

  it('drops a high-priority frame that cannot fit even after evicting every forward', async () => {
    const { handler, stream, reports } = open({ maxQueuedBytes: 20 })
    stream.writable = false
    handler.onBehaviourEvent({ type: 'Send', frames: frame(0) })
    await turn(clock)
    handler.onBehaviourEvent({ type: 'Send', frames: frame(1, 15) })
    handler.onBehaviourEvent({ type: 'Send', frames: frame(2, 10) })
    expect(reports()).to.deep.include({ type: 'SlowPeer', droppedBytes: 10 })
  })

  it('drops forwarded frames that waited longer than the deadline; never control', async () => {
    const { handler, stream, reports } = open({ lowPriorityDeadline: 1_000 })
    stream.writable = false
    handler.onBehaviourEvent({ type: 'Send', frames: frame(0) })
    await turn(clock)
    handler.onBehaviourEvent({ type: 'Send', frames: frame(1), priority: 'low' })
    handler.onBehaviourEvent({ type: 'Send', frames: frame(2) })
    await clock.tickAsync(1_500)
    handler.onBehaviourEvent({ type: 'Send', frames: frame(3), priority: 'low' })
    stream.drain()
    await turn(clock)
    expect(stream.written).to.deep.equal([0, 2, 3])
    expect(reports()).to.deep.include({ type: 'SlowPeer', droppedBytes: 2 })
  })

  it('keeps FIFO order among frames of one priority, coalesced into one write', async () => {
    const { handler, stream } = open()
    const writes: number[] = []
    const send = stream.send.bind(stream)
    stream.send = (chunk) => { writes.push(chunk.byteLength); return send(chunk) }
    for (let i = 0; i < 5; i++) handler.onBehaviourEvent({ type: 'Send', frames: frame(i) })
    await turn(clock)
    expect(stream.written).to.deep.equal([0, 1, 2, 3, 4])
    expect(writes).to.deep.equal([10])
  })

  it('hands forwards to the stream a turn after control of the same turn, so that every connection\'s control is flushed first; a forward alone waits for the end of its turn', async () => {
    const { handler, stream } = open()
    handler.onBehaviourEvent({ type: 'Send', frames: frame(0) })
    handler.onBehaviourEvent({ type: 'Send', frames: frame(1), priority: 'low' })
    clock.runMicrotasks()
    await Promise.resolve()
    expect(stream.written, 'within the turn: the control frame only').to.deep.equal([0])
    // A forward arriving later in the same turn waits too.
    handler.onBehaviourEvent({ type: 'Send', frames: frame(2), priority: 'low' })
    clock.runMicrotasks()
    await Promise.resolve()
    expect(stream.written).to.deep.equal([0])
    await turn(clock)
    expect(stream.written, 'the next turn: the forwards').to.deep.equal([0, 1, 2])
    expect(stream.sends, 'in two sends').to.have.length(2)
    // With no control in this turn, a forward waits for the end of the turn only.
    await turn(clock)
    handler.onBehaviourEvent({ type: 'Send', frames: frame(3), priority: 'low' })
    clock.runMicrotasks()
    await Promise.resolve()
    expect(stream.written).to.deep.equal([0, 1, 2])
    await turn(clock)
    expect(stream.written).to.deep.equal([0, 1, 2, 3])
  })

  it('drops a forward queued in this turn when the remote\'s own copy of the message arrives later in the same turn', async () => {
    const heard = new RecentIds()
    const unwanted = new UnwantedIds()
    unwanted.bind({ heard })
    const { handler, stream, reports } = open({ unwanted })
    handler.onBehaviourEvent({ type: 'Send', frames: frame(1, 10), priority: 'low', id: 'a' })
    handler.onBehaviourEvent({ type: 'Send', frames: frame(2), priority: 'low', id: 'b' })
    clock.runMicrotasks()
    await Promise.resolve()
    // The remote's copy of 'a' is read before the turn ends: it has the message.
    heard.add('a')
    await turn(clock)
    expect(stream.written).to.deep.equal([2])
    expect(reports()).to.deep.include({ type: 'Unwanted', frames: 1, bytes: 10, echoes: 1 })
  })

  it('remembers the last RecentIds capacity ids a remote sent, forgetting the oldest first', () => {
    const heard = new RecentIds(3)
    for (const key of ['a', 'b', 'c', 'b', 'd']) heard.add(key)
    expect(['a', 'b', 'c', 'd'].map(key => heard.has(key))).to.deep.equal([false, true, true, true])
    expect(new RecentIds().capacity).to.equal(RECENT_IDS)
  })

  it('keeps the shared gauge of high-priority bytes true as frames are written, dropped and discarded', async () => {
    const gauge = new QueueGauge(30)
    const { handler, stream } = open({ maxQueuedBytes: 30, gauge })
    stream.writable = false
    const send = (tag: number, size: number, priority?: 'low'): void => {
      // The behaviour reserves what it sends at high priority before the handler sees it.
      if (priority == null) gauge.reserve(size)
      handler.onBehaviourEvent({ type: 'Send', frames: frame(tag, size), priority })
    }
    send(0, 10)
    await turn(clock)
    expect(gauge.bytes, 'written (the stream took it before pushing back)').to.equal(0)
    send(1, 10)
    send(2, 10, 'low')
    send(3, 10)
    expect(gauge.bytes, 'two high frames queued; forwards do not count').to.equal(20)
    expect(gauge.hasRoom(10)).to.equal(true)
    send(4, 20)
    expect(gauge.bytes, 'a frame that cannot fit (even after evicting the forward) is dropped and released').to.equal(20)
    stream.drain()
    await turn(clock)
    expect(stream.written).to.deep.equal([0, 1, 3])
    expect(gauge.bytes).to.equal(0)
    stream.writable = false
    send(5, 10)
    send(6, 10)
    await turn(clock)
    handler.close()
    expect(gauge.bytes, 'discarded on close').to.equal(0)
    send(7, 10)
    expect(gauge.bytes, 'refused after close').to.equal(0)
  })

  it('drops a queued forward whose id the remote no longer wants when it reaches the front; others keep their order', async () => {
    const ids = new Set<string>()
    const unwanted = new UnwantedIds()
    unwanted.bind({ dontWant: ids })
    const { handler, stream, reports } = open({ unwanted })
    stream.writable = false
    handler.onBehaviourEvent({ type: 'Send', frames: frame(0) })
    await turn(clock)
    handler.onBehaviourEvent({ type: 'Send', frames: frame(1), priority: 'low', id: 'a' })
    handler.onBehaviourEvent({ type: 'Send', frames: frame(2, 10), priority: 'low', id: 'b' })
    handler.onBehaviourEvent({ type: 'Send', frames: frame(3), priority: 'low' })
    handler.onBehaviourEvent({ type: 'Send', frames: frame(4, 10), priority: 'low', id: 'c' })
    // High-priority frames carry no id that counts: our own messages are never dropped.
    handler.onBehaviourEvent({ type: 'Send', frames: frame(5), id: 'a' } as const)
    // The remote says IDONTWANT for 'b' and 'c' while they wait.
    ids.add('b').add('c')
    stream.drain()
    await turn(clock)
    expect(stream.written).to.deep.equal([0, 5, 1, 3])
    expect(reports()).to.deep.include({ type: 'Unwanted', frames: 2, bytes: 20, echoes: 0 })
  })

  it('under back-pressure hands the stream at most MAX_WRITE bytes, keeps the rest queued within its bound, and sends it all in order once drained', async () => {
    expect(MAX_WRITE, 'what may wait below our queue, beyond IDONTWANT').to.be.at.most(64 * 1024)
    const bound = 160 * 1024
    const { handler, stream, reports } = open({ maxQueuedBytes: bound })
    stream.writable = false
    // A stalled remote: 40 forwards of 8 KiB are offered at once, more than the bound.
    const size = 8 * 1024
    for (let i = 0; i < 40; i++) handler.onBehaviourEvent({ type: 'Send', frames: frame(i, size), priority: 'low' })
    await turn(clock)
    expect(stream.sends, 'one send, then the stream pushed back').to.have.length(1)
    expect(stream.sends[0]).to.be.at.most(MAX_WRITE)
    const dropped = reports().filter(r => r.type === 'SlowPeer').reduce((sum, r) => sum + (r.type === 'SlowPeer' ? r.droppedBytes : 0), 0)
    expect(dropped, 'what did not fit in the bound').to.equal(40 * size - bound)
    stream.drain()
    // Each send returns true now; bounded: at most one send per frame.
    for (let i = 0; i < 40 && stream.sends.reduce((a, b) => a + b, 0) < bound; i++) await turn(clock)
    expect(stream.sends.reduce((a, b) => a + b, 0), 'everything kept is written').to.equal(bound)
    expect(Math.max(...stream.sends)).to.be.at.most(MAX_WRITE)
    expect(stream.written).to.deep.equal(Array.from({ length: bound / size }, (_, i) => i))
  })
})
