/**
 * Transport benchmark: ours against a pair of js-libp2p nodes, in the same run, on 127.0.0.1,
 * over two transports:
 *
 * - `tcp`: TCP + Noise + Yamux; throughput over 64 MiB;
 * - `webrtc-direct`: WebRTC Direct between two Node peers (ours: `withWebRTCDirect()`; js:
 *   `@libp2p/webrtc`'s `webRTCDirect()`; both over node-datachannel), one data channel per
 *   stream; throughput over 16 MiB (SCTP over loopback is far slower than TCP).
 *
 * For each:
 * - set-up: dial → connection established (ours: the `ConnectionEstablished` event; js:
 *   `libp2p.dial()` resolving), median of many fresh connections;
 * - throughput: one stream carrying the total in 64 KiB writes, sender start → receiver has
 *   every byte, median of a few runs.
 *
 * Runs of ours and js alternate. Prints one JSON line per transport. Ratios are ours / js
 * (set-up: lower is better; throughput: higher).
 *
 * Run: npm run bench:transport [-- tcp|webrtc-direct …] (default: both)
 */
import '../src/compat.js'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { webRTCDirect } from '@libp2p/webrtc'
import { createLibp2p } from 'libp2p'
import { SwarmBuilder } from '../src/index.js'
import { drive } from '../src/testing/index.js'
import type {
  ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, Context, NetworkBehaviour, SubstreamProtocol, ToSwarm, Waker
} from '../src/index.js'
import type { PeerId, Stream } from '@libp2p/interface'

const PROTOCOL = '/peerswarm-bench/1.0.0'
const CHUNK = 64 * 1024
const MiB = 1024 * 1024

/** What differs between the transports measured. */
interface Kind {
  readonly name: 'tcp' | 'webrtc-direct'
  /** What each side listens on. */
  readonly listen: string
  /** Bytes per throughput run. */
  readonly total: number
  readonly setupWarmup: number
  readonly setupRuns: number
  /** Throughput runs measured (after one warm-up run each). */
  readonly throughputRuns: number
}

const KINDS: Kind[] = [
  { name: 'tcp', listen: '/ip4/127.0.0.1/tcp/0', total: 64 * MiB, setupWarmup: 10, setupRuns: 60, throughputRuns: 5 },
  // SCTP on loopback runs at tens of MB/s, and each set-up is ICE + DTLS + SCTP + Noise.
  { name: 'webrtc-direct', listen: '/ip4/127.0.0.1/udp/0/webrtc-direct', total: 16 * MiB, setupWarmup: 5, setupRuns: 40, throughputRuns: 9 }
]

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
  /** One transfer of the kind's total on a fresh stream, in MB/s. */
  throughput: () => Promise<number>
  close: () => Promise<void>
}

async function oursSwarm (kind: Kind) {
  const builder = SwarmBuilder.withNewIdentity()
  const withTransport = kind.name === 'tcp' ? builder.withTcp() : builder.withWebRTCDirect({ dialBindAddress: '127.0.0.1' })
  return withTransport.withBehaviour(() => new Bench())
    .withSwarmConfig({ idleConnectionTimeout: Infinity }).build()
}

async function ours (kind: Kind): Promise<Contender> {
  const TOTAL = kind.total
  const [a, b] = await Promise.all([oursSwarm(kind), oursSwarm(kind)])
  b.listenOn(kind.listen)
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

async function jsNode (kind: Kind) {
  return createLibp2p({
    addresses: { listen: [kind.listen] },
    // No STUN servers: host candidates only, as ours.
    transports: [kind.name === 'tcp' ? tcp() : webRTCDirect({ rtcConfiguration: { iceServers: [] } })],
    // WebRTC brings its own Noise and muxer; libp2p wants these listed all the same.
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] }
  })
}

async function js (kind: Kind): Promise<Contender> {
  const TOTAL = kind.total
  const [a, b] = await Promise.all([jsNode(kind), jsNode(kind)])
  let onReceived: ((bytes: number) => void) | undefined
  await b.handle(PROTOCOL, (stream) => { void readAll(stream).then(bytes => onReceived?.(bytes)) })
  const address = b.getMultiaddrs().find(a => a.toString().includes(kind.name === 'tcp' ? '/tcp/' : '/webrtc-direct/certhash/'))
  if (address == null) throw new Error(`js has no ${kind.name} address: ${b.getMultiaddrs().join(' ')}`)
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

/**
 * Runs of both contenders alternate, so that drift on the machine hits both alike. Returns, per
 * contender, the median value and the median CPU time of the process during one run (ms: every
 * thread, native ones included; the other contender is idle meanwhile).
 */
async function alternate (contenders: Contender[], run: (c: Contender) => Promise<number>, warmup: number, runs: number): Promise<Array<{ value: number, cpuMs: number }>> {
  const values = contenders.map((): number[] => [])
  const cpu = contenders.map((): number[] => [])
  for (let i = 0; i < warmup + runs; i++) {
    for (const [index, contender] of contenders.entries()) {
      const before = process.cpuUsage()
      const value = await run(contender)
      const used = process.cpuUsage(before)
      if (i >= warmup) {
        values[index].push(value)
        cpu[index].push((used.user + used.system) / 1000)
      }
    }
  }
  return values.map((v, index) => ({ value: median(v), cpuMs: median(cpu[index]) }))
}

const wanted = process.argv.slice(2)
// BENCH_ONLY=ours|js: one side only; BENCH_PHASE=setup|throughput: one figure only (for a CPU
// profile of one side's one figure). What is not measured is null in the output.
const only = process.env.BENCH_ONLY
const phase = process.env.BENCH_PHASE
for (const kind of KINDS.filter(k => wanted.length === 0 || wanted.includes(k.name))) {
  const contenders = [...(only !== 'js' ? [await ours(kind)] : []), ...(only !== 'ours' ? [await js(kind)] : [])]
  const none = { value: NaN, cpuMs: NaN }
  const pad = (results: Array<{ value: number, cpuMs: number }>): Array<{ value: number, cpuMs: number }> => only === 'ours' ? [results[0], none] : only === 'js' ? [none, results[0]] : results
  const [oursSetup, jsSetup] = phase === 'throughput' ? [none, none] : pad(await alternate(contenders, async c => c.setup(), kind.setupWarmup, kind.setupRuns))
  const [oursRate, jsRate] = phase === 'setup' ? [none, none] : pad(await alternate(contenders, async c => c.throughput(), 1, kind.throughputRuns))
  await Promise.all(contenders.map(async c => { await c.close() }))
  const figures = (setup: { value: number, cpuMs: number }, rate: { value: number, cpuMs: number }) => ({
    setupMs: round(setup.value),
    throughputMBps: round(rate.value),
    // CPU time of the process per MB carried (both ends, all threads)
    throughputCpuMsPerMB: round(rate.cpuMs / (kind.total / 1e6))
  })
  console.log(JSON.stringify({
    bench: 'transport',
    transport: kind.name === 'tcp' ? 'tcp+noise+yamux' : 'webrtc-direct',
    node: process.version,
    setupRuns: kind.setupRuns,
    throughputRuns: kind.throughputRuns,
    throughputBytes: kind.total,
    ours: figures(oursSetup, oursRate),
    js: figures(jsSetup, jsRate),
    // ours / js: set-up time (lower is better), throughput (higher is better), CPU per MB (lower)
    ratio: { setup: round(oursSetup.value / jsSetup.value), throughput: round(oursRate.value / jsRate.value), throughputCpu: round(oursRate.cpuMs / jsRate.cpuMs) }
  }))
}

function round (value: number): number {
  return Math.round(value * 1000) / 1000
}
