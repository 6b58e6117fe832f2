/**
 * Transport benchmark: ours against a pair of js-libp2p nodes, in the same run, over
 * TCP + Noise + Yamux on 127.0.0.1.
 *
 * - set-up: dial → connection established (ours: the `ConnectionEstablished` event; js:
 *   `libp2p.dial()` resolving), median of many fresh connections;
 * - throughput: one stream carrying 64 MiB in 64 KiB writes, sender start → receiver has
 *   every byte, median of a few runs.
 *
 * Prints one JSON line. Ratios are ours / js (set-up: lower is better; throughput: higher).
 *
 * Run: npm run bench:transport
 */
import '../src/compat.js'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { SwarmBuilder } from '../src/index.js'
import { drive } from '../src/testing/index.js'
import type {
  ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, Context, NetworkBehaviour, SubstreamProtocol, ToSwarm, Waker
} from '../src/index.js'
import type { PeerId, Stream } from '@libp2p/interface'

const PROTOCOL = '/peerswarm-bench/1.0.0'
const CHUNK = 64 * 1024
const TOTAL = 64 * 1024 * 1024
const SETUP_WARMUP = 10
const SETUP_RUNS = 60
const THROUGHPUT_RUNS = 5

/** Write `total` bytes in `CHUNK`s, waiting for 'drain' when the stream asks to. */
async function writeAll (stream: Stream, total: number): Promise<void> {
  const chunk = new Uint8Array(CHUNK).fill(7)
  for (let sent = 0; sent < total; sent += CHUNK) {
    if (!stream.send(chunk)) {
      // onDrain() is unreliable after first use in @libp2p/utils 7.4.1; wait for the event.
      await new Promise<void>((resolve, reject) => {
        const onClose = (): void => { reject(new Error('stream closed while writing')) }
        stream.addEventListener('drain', () => { stream.removeEventListener('close', onClose); resolve() }, { once: true })
        stream.addEventListener('close', onClose, { once: true })
      })
    }
  }
  await stream.close()
}

/** Count bytes until the remote closes. */
async function readAll (stream: Stream): Promise<number> {
  let received = 0
  for await (const chunk of stream) received += chunk.byteLength
  return received
}

class BenchHandler implements ConnectionHandler<number, number> {
  private readonly toSend: number[] = []
  private readonly received: number[] = []
  private waker?: Waker
  listenProtocol (): SubstreamProtocol { return { protocols: [PROTOCOL] } }
  connectionKeepAlive (): boolean { return true }
  onBehaviourEvent (bytes: number): void { this.toSend.push(bytes) }
  onConnectionEvent (event: ConnectionEvent): void {
    if (event.type === 'FullyNegotiatedOutbound') void writeAll(event.stream, event.info as number)
    if (event.type === 'FullyNegotiatedInbound') {
      void readAll(event.stream).then((bytes) => { this.received.push(bytes); this.waker?.wake() })
    }
  }

  poll (cx: Context): ConnectionHandlerEvent<number> | undefined {
    this.waker = cx.waker
    const received = this.received.shift()
    if (received !== undefined) return { type: 'NotifyBehaviour', event: received }
    const bytes = this.toSend.shift()
    if (bytes !== undefined) return { type: 'OutboundSubstreamRequest', protocol: { protocols: [PROTOCOL], info: bytes } }
    return undefined
  }
}

/** Sends `bytes` to a peer on request; reports how many bytes arrived on each inbound stream. */
class Bench implements NetworkBehaviour<number, number, number> {
  private readonly actions: Array<ToSwarm<number, number>> = []
  private waker?: Waker
  send (peerId: PeerId, bytes: number): void {
    this.actions.push({ type: 'NotifyHandler', peerId, handler: 'any', event: bytes })
    this.waker?.wake()
  }

  handleEstablishedInboundConnection (): BenchHandler { return new BenchHandler() }
  handleEstablishedOutboundConnection (): BenchHandler { return new BenchHandler() }
  onSwarmEvent (): void {}
  onConnectionHandlerEvent (_peer: PeerId, _id: unknown, bytes: number): void {
    this.actions.push({ type: 'GenerateEvent', event: bytes })
  }

  poll (cx: Context): ToSwarm<number, number> | undefined {
    this.waker = cx.waker
    return this.actions.shift()
  }
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

/** One side of the comparison: a connected pair that can measure one run of each figure. */
interface Contender {
  /** One fresh connection's set-up time, in ms. */
  setup: () => Promise<number>
  /** One 64 MiB transfer on a fresh stream, in MB/s. */
  throughput: () => Promise<number>
  close: () => Promise<void>
}

async function oursSwarm () {
  return SwarmBuilder.withNewIdentity().withTcp().withBehaviour(() => new Bench())
    .withSwarmConfig({ idleConnectionTimeout: Infinity }).build()
}

async function ours (): Promise<Contender> {
  const [a, b] = await Promise.all([oursSwarm(), oursSwarm()])
  b.listenOn('/ip4/127.0.0.1/tcp/0')
  const [[listening]] = await drive([b], { count: 1, filter: e => e.type === 'NewListenAddr' })
  if (listening.type !== 'NewListenAddr') throw new Error('no listen address')
  const address = listening.address
  // A long-lived connection for the transfers; set-up runs open and close others beside it.
  a.dial({ peerId: b.localPeerId, addresses: [address] })
  await drive([a, b], { count: 1, filter: e => e.type === 'ConnectionEstablished' })
  return {
    async setup () {
      const started = performance.now()
      const id = a.dial({ peerId: b.localPeerId, addresses: [address], condition: 'always' })
      await drive([a, b], { count: [1, 0], filter: e => e.type === 'ConnectionEstablished' && e.connectionId === id })
      const elapsed = performance.now() - started
      a.closeConnection(id)
      await drive([a, b], { count: 1, filter: e => e.type === 'ConnectionClosed' })
      return elapsed
    },
    async throughput () {
      const started = performance.now()
      a.behaviour.send(b.localPeerId, TOTAL)
      const [, [received]] = await drive([a, b], { count: [0, 1], timeout: 60_000 })
      if (received.type !== 'Behaviour' || received.event !== TOTAL) throw new Error('short transfer')
      return TOTAL / 1e6 / ((performance.now() - started) / 1000)
    },
    async close () { await Promise.all([a.close(), b.close()]) }
  }
}

async function jsNode () {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] }
  })
}

async function js (): Promise<Contender> {
  const [a, b] = await Promise.all([jsNode(), jsNode()])
  let onReceived: ((bytes: number) => void) | undefined
  await b.handle(PROTOCOL, (stream) => { void readAll(stream).then(bytes => onReceived?.(bytes)) })
  const address = b.getMultiaddrs()[0]
  return {
    async setup () {
      await a.hangUp(b.peerId)
      const started = performance.now()
      await a.dial(address)
      return performance.now() - started
    },
    async throughput () {
      const received = new Promise<number>((resolve) => { onReceived = resolve })
      const started = performance.now()
      const stream = await a.dialProtocol(address, PROTOCOL)
      await writeAll(stream, TOTAL)
      if (await received !== TOTAL) throw new Error('short transfer')
      return TOTAL / 1e6 / ((performance.now() - started) / 1000)
    },
    async close () { await Promise.all([a.stop(), b.stop()]) }
  }
}

/** Runs of both contenders alternate, so that drift on the machine hits both alike. */
async function alternate (contenders: Contender[], run: (c: Contender) => Promise<number>, warmup: number, runs: number): Promise<number[]> {
  const results = contenders.map((): number[] => [])
  for (let i = 0; i < warmup + runs; i++) {
    for (const [index, contender] of contenders.entries()) {
      const value = await run(contender)
      if (i >= warmup) results[index].push(value)
    }
  }
  return results.map(median)
}

const contenders = [await ours(), await js()]
const [oursSetup, jsSetup] = await alternate(contenders, async c => c.setup(), SETUP_WARMUP, SETUP_RUNS)
const [oursRate, jsRate] = await alternate(contenders, async c => c.throughput(), 1, THROUGHPUT_RUNS)
await Promise.all(contenders.map(async c => { await c.close() }))
console.log(JSON.stringify({
  bench: 'transport',
  transport: 'tcp+noise+yamux',
  node: process.version,
  setupRuns: SETUP_RUNS,
  throughputRuns: THROUGHPUT_RUNS,
  throughputBytes: TOTAL,
  ours: { setupMs: round(oursSetup), throughputMBps: round(oursRate) },
  js: { setupMs: round(jsSetup), throughputMBps: round(jsRate) },
  // ours / js: set-up time (lower is better), throughput (higher is better)
  ratio: { setup: round(oursSetup / jsSetup), throughput: round(oursRate / jsRate) }
}))

function round (value: number): number {
  return Math.round(value * 1000) / 1000
}
