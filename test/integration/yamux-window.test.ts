/**
 * The cap on a stream's Yamux receive window (`SwarmConfig.maxStreamWindow`), over TCP on
 * 127.0.0.1. `@chainsafe/libp2p-yamux` grants window as data arrives (not as it is read) and
 * doubles a busy stream's window up to its own maximum, 16 MiB unless told otherwise: a handler
 * that pauses a stream (as pubsub does when its behaviour falls behind) still receives whatever
 * the remote had window for, and holds it in the stream's read buffer. Here a sender writes as
 * fast as Yamux lets it; the receiver reads long enough for the window to grow, then pauses;
 * once the sender is stopped by its window and everything it sent has arrived, what the
 * receiver holds must be within the cap. Then the receiver resumes and gets every byte: the
 * sender was slowed down, not cut off.
 */
import { expect } from 'chai'
import { SwarmBuilder } from '../../src/index.js'
import { EventLog, addressOf, until } from '../fixtures/event-log.js'
import type {
  ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, Context, NetworkBehaviour, Stream, SubstreamProtocol,
  SwarmConfig, ToSwarm, Waker
} from '../../src/index.js'
import type { PeerId } from '@libp2p/interface'

const PROTOCOL = '/peerswarm-test/firehose/1.0.0'
const MiB = 1024 * 1024
/** Bytes the sender writes in all (its loop is bounded by this and by the test's timeouts). */
const TOTAL = 64 * MiB
/** Bytes the receiver reads before it pauses: enough for Yamux to grow the window. */
const READ_BEFORE_PAUSE = 24 * MiB
const CHUNK = 64 * 1024

/** Opens one stream to the peer it is told to; hands every negotiated stream to its owner. */
class FirehoseHandler implements ConnectionHandler<'open', never> {
  private requested = false
  private waker?: Waker
  constructor (private readonly owner: Firehose) {}
  listenProtocol (): SubstreamProtocol { return { protocols: [PROTOCOL] } }
  connectionKeepAlive (): boolean { return true }
  onBehaviourEvent (): void { this.requested = true; this.waker?.wake() }
  onConnectionEvent (event: ConnectionEvent): void {
    if (event.type === 'FullyNegotiatedOutbound') this.owner.outbound = event.stream
    else if (event.type === 'FullyNegotiatedInbound') this.owner.inbound = event.stream
  }

  poll (cx: Context): ConnectionHandlerEvent<never> | undefined {
    this.waker = cx.waker
    if (!this.requested) return undefined
    this.requested = false
    return { type: 'OutboundSubstreamRequest', protocol: { protocols: [PROTOCOL] } }
  }
}

/** Keeps the streams of its connections for the test to drive. */
class Firehose implements NetworkBehaviour<never, 'open', never> {
  outbound?: Stream
  inbound?: Stream
  private readonly actions: Array<ToSwarm<never, 'open'>> = []
  private waker?: Waker
  open (peerId: PeerId): void {
    this.actions.push({ type: 'NotifyHandler', peerId, handler: 'any', event: 'open' })
    this.waker?.wake()
  }

  handleEstablishedInboundConnection (): FirehoseHandler { return new FirehoseHandler(this) }
  handleEstablishedOutboundConnection (): FirehoseHandler { return new FirehoseHandler(this) }
  onSwarmEvent (): void {}
  onConnectionHandlerEvent (): void {}
  poll (cx: Context): ToSwarm<never, 'open'> | undefined {
    this.waker = cx.waker
    return this.actions.shift()
  }
}

async function node (config: Partial<SwarmConfig>): Promise<EventLog<Firehose>> {
  return new EventLog(await SwarmBuilder.withNewIdentity().withTcp().withBehaviour(() => new Firehose()).withSwarmConfig(config).build())
}

/** The sender's side: writes `TOTAL` bytes, waiting for `drain` whenever `send()` says so. */
class Writer {
  /** Bytes handed to `send()`. */
  handed = 0
  /** Whether it waits for `drain`. */
  waiting = false
  readonly done: Promise<void>
  constructor (private readonly stream: Stream) {
    this.done = this.run()
  }

  /** Bytes Yamux has put on the connection (handed over, minus what waits in the stream). */
  get onWire (): number { return this.handed - this.stream.writeBufferLength }

  /**
   * The stream's Yamux send window is used up: only a window update from the receiver lets it
   * go on (`YamuxStream.sendWindowCapacity`, @chainsafe/libp2p-yamux 8; if it is renamed, the
   * wait below times out rather than passing).
   */
  get windowExhausted (): boolean { return (this.stream as unknown as { sendWindowCapacity?: number }).sendWindowCapacity === 0 }

  private async run (): Promise<void> {
    const chunk = new Uint8Array(CHUNK).fill(0x5a)
    const deadline = Date.now() + 40_000
    while (this.handed < TOTAL) {
      if (Date.now() > deadline) throw new Error(`the writer was still writing after 40 s (${this.handed} bytes)`)
      this.handed += chunk.byteLength
      if (!this.stream.send(chunk)) {
        this.waiting = true
        await new Promise<void>((resolve, reject) => {
          const onClose = (): void => { this.stream.removeEventListener('drain', onDrain); reject(new Error('stream closed while writing')) }
          const onDrain = (): void => { this.stream.removeEventListener('close', onClose); resolve() }
          this.stream.addEventListener('drain', onDrain, { once: true })
          this.stream.addEventListener('close', onClose, { once: true })
        })
        this.waiting = false
      }
    }
    await this.stream.close()
  }
}

/** The receiver's side: counts what it reads, and pauses the stream once it has read `pauseAfter`. */
class Reader {
  read = 0
  readAtPause?: number
  ended = false
  closedWith?: string
  constructor (readonly stream: Stream, pauseAfter: number) {
    stream.addEventListener('message', (evt) => {
      this.read += evt.data.byteLength
      if (this.readAtPause === undefined && this.read >= pauseAfter) {
        this.readAtPause = this.read
        stream.pause()
      }
    })
    stream.addEventListener('remoteCloseWrite', () => { this.ended = true })
    stream.addEventListener('close', (evt) => { this.closedWith = evt.error?.message ?? 'closed' })
  }

  /** Bytes arrived: read, or waiting in the stream's buffer. */
  get arrived (): number { return this.read + this.stream.readBufferLength }
}

/**
 * Sends at full speed to a receiver that pauses, with `config` on both swarms; returns the most
 * the paused stream held and how far past the pause the sender got, then checks that every
 * byte arrives once the receiver resumes.
 */
async function pausedReceiver (config: Partial<SwarmConfig>): Promise<{ held: number, pastPause: number }> {
  const [a, b] = await Promise.all([node(config), node(config)])
  try {
    b.swarm.listenOn('/ip4/127.0.0.1/tcp/0')
    a.swarm.dial(await addressOf(b))
    await a.find(e => e.type === 'ConnectionEstablished')
    a.swarm.behaviour.open(b.swarm.localPeerId)
    await until(() => a.swarm.behaviour.outbound !== undefined && b.swarm.behaviour.inbound !== undefined, 10_000, 'the stream')
    const outbound = a.swarm.behaviour.outbound
    const inbound = b.swarm.behaviour.inbound
    if (outbound === undefined || inbound === undefined) throw new Error('unreachable')
    const reader = new Reader(inbound, READ_BEFORE_PAUSE)
    const writer = new Writer(outbound)
    writer.done.catch(() => {})

    // Paused, and the sender stopped by its window with all it sent arrived (or the stream gone).
    await until(() => reader.closedWith !== undefined || (reader.readAtPause !== undefined && writer.waiting &&
      writer.windowExhausted && reader.arrived === writer.onWire), 20_000, 'the sender stopping at the paused receiver')
    const held = inbound.readBufferLength
    const pastPause = writer.onWire - (reader.readAtPause ?? 0)
    expect(reader.closedWith, `the paused stream was closed while holding ${held} bytes`).to.equal(undefined)
    expect(inbound.readStatus).to.equal('paused')

    inbound.resume()
    await writer.done
    await until(() => reader.ended && reader.stream.readBufferLength === 0, 20_000, 'the rest of the stream')
    expect(reader.read).to.equal(TOTAL)
    return { held, pastPause }
  } finally {
    await Promise.all([a.close(), b.close()])
  }
}

describe('Yamux stream window cap (127.0.0.1)', function () {
  this.timeout(90_000)

  // Without the cap (Yamux's 16 MiB), the paused stream either holds up to 16 MiB or, with
  // js-libp2p's 4 MiB read buffer limit, is aborted (StreamBufferError) once more than 4 MiB
  // has arrived: both fail here.
  const cases = [['the default maxStreamWindow (4 MiB)', {}, 4 * MiB], ['a maxStreamWindow of 1 MiB', { maxStreamWindow: MiB }, MiB],
    // Above js-libp2p's 4 MiB read buffer limit, which is raised to the window: not aborted.
    ['a maxStreamWindow of 8 MiB', { maxStreamWindow: 8 * MiB }, 8 * MiB]] as const
  for (const [name, config, cap] of cases) {
    it(`a paused stream holds at most ${name}, and loses nothing`, async () => {
      const { held, pastPause } = await pausedReceiver(config)
      expect(held, `${held} bytes held`).to.be.at.most(cap)
      expect(pastPause, `the sender got ${pastPause} bytes past the pause`).to.be.at.most(cap)
      // The window had grown past Yamux's initial 256 KiB (else this would show nothing).
      expect(held, `${held} bytes held`).to.be.above(256 * 1024)
    })
  }
})
