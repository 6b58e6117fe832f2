/**
 * The WebRTC muxer lets go of every data channel it does not keep, without sockets: a fake of
 * node-datachannel's `DataChannel` that keeps, as the real one does, a hold on Node's event
 * loop until the close reaches JavaScript through the callback given to `onClosed()` (none
 * given: never), and drops a close already queued when `onClosed()` is called again. The real
 * stack is exercised by test/integration/webrtc-bad-input.test.ts ("… exits by itself …").
 */
import { expect } from 'chai'
import { logger } from '@libp2p/logger'
import { multiaddr } from '@multiformats/multiaddr'
import { DataChannelMuxer, WebRTCConnection } from '../../src/transport/webrtc/muxer.js'
import type { DataChannelMuxerOptions, PeerConnection } from '../../src/transport/webrtc/muxer.js'
import type { DataChannel } from '../../src/transport/webrtc/stream.js'

const log = logger('peerswarm:test:webrtc-release')

/** node-datachannel's `DataChannel`, as far as its hold on the event loop goes. */
class NativeChannel implements DataChannel {
  /** The thread-safe function made with the channel: released once a close reaches JavaScript. */
  holdsLoop = true
  private onClosedCb?: () => void
  private onOpenCb?: () => void
  /** Each `onClosed()` makes a new thread-safe function; calls queued on an older one are lost. */
  private generation = 0
  private opened = false
  private closeReported = false
  private destroyed = false

  constructor (private readonly id: number) {}

  getId (): number { return this.id }
  sendMessageBinary (): boolean { return true }
  bufferedAmount (): number { return 0 }
  setBufferedAmountLowThreshold (): void {}
  isOpen (): boolean { return this.opened && !this.closeReported }
  onOpen (cb: () => void): void { this.onOpenCb = cb }
  onError (): void {}
  onBufferedAmountLow (): void {}
  onMessage (): void {}

  onClosed (cb: () => void): void {
    if (this.destroyed) throw new Error('onClosed() called on destroyed channel')
    this.onClosedCb = cb
    this.generation++
  }

  close (): void {
    this.destroyed = true
    this.reportClosed()
  }

  /** libdatachannel reports the channel open (queued to the JavaScript thread). */
  reportOpen (): void {
    this.opened = true
    setImmediate(() => { this.onOpenCb?.() })
  }

  /** libdatachannel reports the channel closed, on the callback registered now, if any. */
  reportClosed (): void {
    if (this.closeReported) return
    this.closeReported = true
    const cb = this.onClosedCb
    if (cb == null) return
    const generation = this.generation
    setImmediate(() => {
      if (generation !== this.generation) return
      cb()
      this.holdsLoop = false
    })
  }
}

class FakePeerConnection implements PeerConnection {
  readonly created: NativeChannel[] = []
  private nextId = 1
  private onChannel?: (channel: DataChannel) => void

  createDataChannel (): DataChannel {
    const channel = new NativeChannel(this.nextId += 2)
    this.created.push(channel)
    return channel
  }

  onDataChannel (cb: (channel: DataChannel) => void): void { this.onChannel = cb }

  /** The remote opens a channel. */
  remoteOpens (): NativeChannel {
    const channel = new NativeChannel(this.nextId += 2)
    this.onChannel?.(channel)
    return channel
  }
}

function muxer (options: DataChannelMuxerOptions = {}): { muxer: DataChannelMuxer, pc: FakePeerConnection } {
  const pc = new FakePeerConnection()
  const connection = new WebRTCConnection({ remoteAddr: multiaddr('/ip4/127.0.0.1/udp/1/webrtc-direct'), direction: 'inbound', log, closePeer: () => {} })
  return { muxer: new DataChannelMuxer(connection, pc, options), pc }
}

async function until (condition: () => boolean, what: string, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise(resolve => setImmediate(resolve))
  }
}

describe('WebRTC muxer: channels it does not keep are released', () => {
  it('a channel refused over maxInboundStreams is closed with an onClosed callback, which releases it', async () => {
    const { muxer: m, pc } = muxer({ maxInboundStreams: 2 })
    m.addEventListener('stream', () => {})
    const channels = Array.from({ length: 5 }, () => pc.remoteOpens())
    expect(m.counters.refusedChannels).to.equal(3)
    await until(() => channels.slice(2).every(c => !c.holdsLoop), 'refused channels released')
    expect(channels.slice(0, 2).every(c => c.holdsLoop)).to.equal(true)
  })

  it('a channel refused over maxEarlyStreams (no stream listener yet) is released too', async () => {
    const { muxer: m, pc } = muxer({ maxEarlyStreams: 1 })
    const channels = Array.from({ length: 4 }, () => pc.remoteOpens())
    expect(m.counters.refusedChannels).to.equal(3)
    await until(() => channels.slice(1).every(c => !c.holdsLoop), 'refused channels released')
  })

  it('a channel we open that the remote closes as it opens: its close reaches the stream and releases it', async () => {
    const { muxer: m, pc } = muxer()
    const opening = m.createStream()
    const channel = pc.created[0]
    // Both reports queued before JavaScript runs again: open, then the remote's close.
    channel.reportOpen()
    channel.reportClosed()
    const stream = await opening
    await until(() => !channel.holdsLoop, 'the channel released')
    await until(() => stream.status !== 'open', 'the stream ended')
  })

  it('a channel we open that closes before opening fails the open and is released', async () => {
    const { muxer: m, pc } = muxer()
    const opening = m.createStream()
    pc.created[0].reportClosed()
    const err = await opening.then(() => undefined, (e: unknown) => e)
    expect((err as { code?: string })?.code).to.equal('ERR_WEBRTC_CHANNEL_OPEN')
    await until(() => !pc.created[0].holdsLoop, 'the channel released')
  })
})
