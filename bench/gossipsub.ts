/**
 * GossipSub benchmark: ours against js-libp2p's `@libp2p/gossipsub` 17.1.1, in the same run.
 *
 * Cases: 10 and 30 nodes × payloads of 256 B and 16 KiB × one publisher and five publishers.
 * Each case runs ours, then js, every network in a fresh child process (so that one network's
 * heap does not inflate the next one's RSS), all of its nodes in that one process over TCP on
 * 127.0.0.1 (Noise, Yamux).
 *
 * Topology (same for both, seeded; `random-dials` in src/testing/topology.ts): node i dials 3
 * random other nodes it has no link with yet (at most D_hi links per node), then components
 * left apart are linked. All nodes subscribe to one topic. Both implementations: D = 6,
 * D_lo = 4, D_hi = 12, D_score = 4, D_out = 2, D_lazy = 6, heartbeat 1 s, StrictSign, flood
 * publish on, message id = author's peer id (multihash bytes) ‖ seqno (8 bytes, big-endian) —
 * ours by default, js through `msgIdFn` (js's optional `fastMsgIdFn` stays unset, its
 * default). Peer scoring on for both with the same parameters: js always scores, with its
 * defaults; ours is given the same defaults (no topic parameters; P5, P6, P7 weights;
 * thresholds −10/−50/−80/10/20). In both, 127.0.0.1 and ::1 are whitelisted for P6 (IP
 * colocation), or meshes collapse past 10 local peers. js's connection manager allow-lists
 * 127.0.0.0/8. IDONTWANT: js sends it from 512 B, ours from 1,000 B: neither for 256 B, both
 * for 16 KiB.
 *
 * Once every node knows its neighbours' subscriptions and every mesh has min(D_lo, peers)
 * members, the publishers publish `messages` messages in turn (message i from publisher
 * i mod P, the five publishers picked at random, seeded), as fast as the publish call allows,
 * yielding to the event loop between two. Each payload carries its send time and index.
 * 10 nodes: 1,000 messages; 30 nodes: 500 messages (reduced: at ~6–7 messages/s, a 30-node
 * 16 KiB js run of 1,000 would take over two minutes; rates are per second, so they compare).
 * Absolute figures move by up to ±40% between runs on a shared 2-core machine; compare the
 * implementations within one run.
 *
 * Reported per implementation and case:
 * - deliveryRatio: distinct (node, message) deliveries / (messages × (nodes − 1)); `duplicates`
 *   counts deliveries of a message a node already had (should be 0);
 * - p50Ms, p99Ms: latency publish → delivery over every delivery;
 * - msgsPerSec: messages / (first publish → last delivery);
 * - wireBytesPerDelivery: bytes handed to TCP sockets (`net.Socket.prototype.write` is wrapped,
 *   which counts every protocol, Noise and Yamux byte, control and heartbeat traffic included)
 *   from the first publish to the last delivery, / distinct deliveries; `xPayload` is that over
 *   the payload size;
 * - rssIdleMBPerNode: (RSS after warm-up − RSS before the nodes were made) / nodes, after a GC;
 *   rssMBPerNode: the same after the run (message caches and seen caches full);
 *   heapMBPerNode: (JS heap used + external buffers after the run − before the nodes were made)
 *   / nodes, after a GC: what is still live, where RSS also keeps the peak's pages;
 * - overheadBytesPerDelivery: wireBytesPerDelivery − payload size: duplicates, control, framing;
 * - cryptoCeiling: our sign and verify of a message of the case's size, measured in the same run
 *   (bench/crypto-ceiling.ts), the ceiling 1 / (sign + (nodes − 1) × verify) they put on a
 *   network in one process (each node verifies the first copy only), and each side's share.
 *
 * One JSON line per case (both implementations), then one JSON line of ratios ours / js per
 * case (latency, bytes, RSS: lower is better; rate: higher is better).
 *
 * `npm run bench:gossipsub -- idontwant` runs instead the IDONTWANT comparison: 16 KiB, five
 * publishers, each implementation with IDONTWANT on and off (threshold set above any message),
 * over emulated links of 5–40 ms one-way latency (drawn per socket, seeded) with a Node socket's
 * back-pressure (see `emulateLinks`). By default each node has one uplink, shared by its
 * connections, first written first sent: 10 nodes at 10 Mbit/s and 5 messages/s, 10 nodes at
 * 20 Mbit/s and 10 messages/s, 30 nodes at 10 Mbit/s and 5 messages/s (`IDONTWANT_HOST`).
 * `BENCH_UPLINK=socket` gives every socket its own link instead, at 20 and 5 Mbit/s, publishing
 * as fast as possible. Reported per configuration, besides the above: duplicatesPerDelivery
 * (copies a node already had, as each implementation counts them: ours `totals().duplicates`,
 * js its score's `duplicateMessage`) and duplicateBytesPerDelivery (× the frame of one copy),
 * the links' mean and busiest use, and for ours the copies IDONTWANT kept from being sent (at
 * the send decision, from a queue) and the bytes dropped from queues; then the share of
 * duplicate bytes and of overhead bytes IDONTWANT cuts in each implementation, per pair of runs
 * and their median (`BENCH_REPEAT`). Knobs: `BENCH_NODES=10`, `BENCH_MBPS=20`, `BENCH_RATE=n`
 * (messages per second; comma-separated lists: the default configurations that match them, or
 * if none does, their cross product), `BENCH_ONLY=ours|js`.
 * `npm run bench:gossipsub -- idontwant-sim` asks the same of ours in virtual time (no CPU
 * limit): 10 and 30 peers, uplinks of 10 Mbit/s, 2.5 to 20 messages per second (with
 * `BENCH_UPLINK=socket`: 20 Mbit/s links, 50 to 400 messages per second); `BENCH_NODES`,
 * `BENCH_MBPS` and `BENCH_RATE` replace those lists.
 * `BENCH_MESSAGES=n` overrides the message count of every case (for a quick try);
 * `BENCH_PACE=n` paces the publishers of every case at n messages per second in all (both
 * implementations at the same rate, e.g. to compare memory that follows the rate);
 * `BENCH_CASES=10n-256B-1pub,…` runs only the cases named.
 *
 * Run: npm run bench:gossipsub (about 15 minutes on a 2-core machine)
 */
import '../src/compat.js'
import { spawn } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { SwarmBuilder, combine, gossipsub, identify } from '../src/index.js'
import { ed25519Implementation } from '../src/node.js'
import { Random, degrees, runScenario, topologyLinks } from '../src/testing/index.js'
import { encodeFrame } from '../src/behaviour/framing.js'
import { encodeRpc } from '../src/protocols/pubsub/rpc.js'
import { authorSeqnoId, jsGossipsubNode } from '../test/interop/js-node.js'
import { cryptoCeiling } from './crypto-ceiling.js'
import { REPEAT, alternated, medianOf } from './repeat.js'
import { countSocketWrites, resetWireBytes, wireBytes } from './wire.js'
import type { TopologyLink } from '../src/testing/index.js'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { TCPOptions, TCPSocketOptions } from '@libp2p/tcp'

const TOPIC = 'bench'
const SEED = 7
const LINKS_PER_NODE = 3
const D = { meshN: 6, meshNLow: 4, meshNHigh: 12, meshNScore: 4, meshOutboundMin: 2, gossipLazy: 6 }
const HEARTBEAT_MS = 1_000
/** Give up when no delivery happened for this long. */
const STALL_MS = 10_000
const WARMUP_TIMEOUT_MS = 60_000
/** A child that runs longer than this is killed. */
const CHILD_TIMEOUT_MS = 15 * 60_000

interface Case {
  readonly nodes: number
  readonly size: number
  readonly publishers: number
  readonly messages: number
  /** IDONTWANT off (both implementations: threshold above any message) in the `idontwant` mode. */
  readonly noIdontwant?: boolean
  /** Publish at this many messages per second (default: as fast as the publish call allows). */
  readonly rate?: number
  /**
   * Emulated links (see `emulateLinks`): one-way latency range in ms, and bandwidth, per socket
   * or (`perHost`) per host, shared by all its connections.
   */
  readonly links?: { readonly latencyMs: readonly [number, number], readonly mbps: number, readonly perHost?: boolean }
}

/** The emulated links of the `idontwant` mode: one-way latency range (ms). */
const LINK_LATENCY_MS = [5, 40] as const
/** One configuration of the `idontwant` mode: network size, link bandwidth (Mbit/s), publish rate. */
interface IdontwantConfig {
  readonly nodes: number
  readonly mbps: number
  /** Messages per second from all publishers together; absent: as fast as they can. */
  readonly rate?: number
  readonly messages: number
}

/**
 * The `idontwant` mode's configurations with one uplink per host (the default): a home-grade
 * uplink of 10 Mbit/s and one of 20 Mbit/s at the same load (one copy of a message takes 13 and
 * 6.6 ms to leave), 10 nodes; 30 nodes at 10 Mbit/s. Paced, so that no run is over capacity
 * and both runs of a pair deliver everything: then the cut measures IDONTWANT, not lost messages.
 */
const IDONTWANT_HOST: readonly IdontwantConfig[] = [
  { nodes: 10, mbps: 10, rate: 5, messages: 300 },
  { nodes: 10, mbps: 20, rate: 10, messages: 300 },
  { nodes: 30, mbps: 10, rate: 5, messages: 300 }
]

/**
 * With `BENCH_UPLINK=socket` (each socket its own link): 20 Mbit/s, where this in-process
 * network is CPU-bound and its links mostly idle, and 5 Mbit/s, where the 10-node network is
 * bandwidth-bound on a 2-core machine; 10 and 30 nodes, publishing as fast as they can.
 */
const IDONTWANT_SOCKET: readonly IdontwantConfig[] = [20, 5].flatMap(mbps => [
  { nodes: 10, mbps, messages: 500 },
  { nodes: 30, mbps, messages: 300 }
])

/** `name`'s comma-separated numbers, each finite and > 0; undefined when it is not set. */
function envNumbers (name: string): number[] | undefined {
  const values = process.env[name]?.split(',').map(Number)
  if (values?.some(v => !Number.isFinite(v) || v <= 0) === true) throw new Error(`${name}=${process.env[name] ?? ''}: numbers > 0, separated by commas`)
  return values
}

/** `BENCH_UPLINK`: one uplink per node (`host`, the default) or one link per socket (`socket`). */
function uplinkModel (): 'host' | 'socket' {
  const uplink = process.env.BENCH_UPLINK ?? 'host'
  if (uplink !== 'host' && uplink !== 'socket') throw new Error(`BENCH_UPLINK=${uplink}: host or socket`)
  return uplink
}

/** `BENCH_MESSAGES`: the message count of every case or run, for a quick try; undefined when not set. */
function messagesOverride (): number | undefined {
  return envNumbers('BENCH_MESSAGES')?.[0]
}

/**
 * The configurations to run: the uplink model's defaults, those of them that match
 * `BENCH_NODES`, `BENCH_MBPS` and `BENCH_RATE` where any is set, or, when none matches, the
 * cross product of the values given (the others taken from the defaults).
 */
function idontwantConfigs (uplink: 'host' | 'socket'): IdontwantConfig[] {
  const defaults = uplink === 'host' ? IDONTWANT_HOST : IDONTWANT_SOCKET
  const nodes = envNumbers('BENCH_NODES')
  const mbps = envNumbers('BENCH_MBPS')
  const rates = envNumbers('BENCH_RATE')
  const matching = defaults.filter(c => (nodes?.includes(c.nodes) ?? true) && (mbps?.includes(c.mbps) ?? true) &&
    (rates == null || (c.rate != null && rates.includes(c.rate))))
  if (matching.length > 0) return matching
  const unique = (values: Array<number | undefined>): Array<number | undefined> => [...new Set(values)]
  return unique(nodes ?? defaults.map(c => c.nodes)).flatMap(n => unique(mbps ?? defaults.map(c => c.mbps)).flatMap(m =>
    unique(rates ?? defaults.map(c => c.rate)).map(rate => ({ nodes: n as number, mbps: m as number, rate, messages: rate == null && n === 10 ? 500 : 300 }))))
}

/** A threshold no message reaches: IDONTWANT off. */
const NEVER = Number.MAX_SAFE_INTEGER

type Impl = 'ours' | 'js'

interface Result {
  deliveryRatio: number
  duplicates: number
  p50Ms: number
  p99Ms: number
  msgsPerSec: number
  wireBytesPerDelivery: number
  xPayload: number
  overheadBytesPerDelivery: number
  duplicatesPerDelivery: number
  duplicateBytesPerDelivery: number
  /** Emulated links: share of their bandwidth the sockets used from the first publish to the last delivery, mean and busiest. */
  linkUseMean?: number
  linkUseMax?: number
  /** Ours only: bytes dropped from outbound queues (SlowPeer: full queues, forwards past their deadline) per delivery. */
  queueDroppedBytesPerDelivery?: number
  /** Ours only: copies not sent because of IDONTWANT, per delivery, at the send decision / from a queue. */
  unwantedAtSendPerDelivery?: number
  unwantedFromQueuePerDelivery?: number
  rssIdleMBPerNode: number
  rssMBPerNode: number
  heapMBPerNode: number
}

interface Network {
  /** Publish one payload from node `from`. */
  publish: (from: number, payload: Uint8Array) => Promise<void>
  /** Called with (node index, payload) on every delivery. */
  onDelivery: (listener: (node: number, payload: Uint8Array) => void) => void
  /** Copies of messages received by all nodes that their receiver already had, so far. */
  duplicates: () => number
  /**
   * Ours only: copies all nodes did not send because of an IDONTWANT, so far: at the send
   * decision, and dropped from a queue (`messages_unwanted`).
   */
  unwanted?: () => { send: number, queue: number }
  /** Ours only: bytes all nodes dropped from their outbound queues (slow peers, expired forwards), so far. */
  droppedBytes?: () => number
  close: () => Promise<void>
}

/** The publishers of a case: node 0 alone, or `count` distinct random nodes. */
function publishers (nodes: number, count: number): number[] {
  if (count === 1) return [0]
  return new Random(SEED + nodes).shuffle(Array.from({ length: nodes }, (_, i) => i)).slice(0, count)
}

async function waitFor (what: string, condition: () => boolean, timeout = WARMUP_TIMEOUT_MS, describe: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeout
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what} ${describe()}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/** Warm-up: every node knows its neighbours' subscriptions and has a mesh of min(D_lo, peers). */
async function warmUp (degree: number[], subscribers: (i: number) => number, mesh: (i: number) => number): Promise<void> {
  const state = (): string => JSON.stringify(degree.map((d, i) => [d, subscribers(i), mesh(i)]))
  await waitFor('subscriptions', () => degree.every((d, i) => subscribers(i) === d), WARMUP_TIMEOUT_MS, state)
  await waitFor('meshes', () => degree.every((d, i) => mesh(i) >= Math.min(D.meshNLow, d)), WARMUP_TIMEOUT_MS, state)
}

/**
 * The address node `i` listens on and dials from: 127.0.0.1 for all, or with per-host uplinks
 * one 127.0.0.x each (x = i + 2), so that every socket's local address names its node.
 */
function hostAddress (i: number, perHost: boolean): string {
  return perHost ? `127.0.0.${i + 2}` : '127.0.0.1'
}

/** TCP options of node `i`: with per-host uplinks, outbound sockets bind to its address. */
function tcpOptions (i: number, perHost: boolean): TCPOptions {
  // `localAddress` is not in `TCPSocketOptions`' type, but @libp2p/tcp passes dialOpts to net.connect.
  return perHost ? { dialOpts: { localAddress: hostAddress(i, perHost) } as TCPSocketOptions } : {}
}

async function oursNetwork (nodes: number, links: readonly TopologyLink[], degree: number[], noIdontwant = false, perHost = false): Promise<Network> {
  const unwanted = { send: 0, queue: 0 }
  const metrics: gossipsub.MetricsSink = {
    increment: (name, value, labels) => {
      if (name === 'messages_unwanted') unwanted[(labels as { stage: 'send' | 'queue' }).stage] += value
    },
    observe: () => {}
  }
  const swarms = await Promise.all(Array.from({ length: nodes }, async (_, i) => SwarmBuilder.withNewIdentity().withTcp(tcpOptions(i, perHost))
    .withBehaviour(key => combine({
      identify: new identify.Behaviour(key.publicKey),
      gossipsub: new gossipsub.Behaviour({
        authenticity: gossipsub.MessageAuthenticity.signed(key),
        ...D,
        heartbeatInterval: HEARTBEAT_MS,
        floodPublish: true,
        ...(noIdontwant ? { idontwantMessageThreshold: NEVER } : {}),
        scoreParams: { ipColocationFactorWhitelist: ['127.0.0.1', '::1'] },
        metrics
      })
    }))
    .build()))
  let listener: (node: number, payload: Uint8Array) => void = () => {}
  const addresses: Array<Multiaddr | undefined> = []
  const loops = swarms.map(async (swarm, i) => {
    for await (const event of swarm) {
      if (event.type === 'NewListenAddr' && addresses[i] == null) addresses[i] = event.address
      if (event.type === 'Behaviour' && event.event.behaviour === 'gossipsub' && event.event.event.type === 'Message') listener(i, event.event.event.message.data)
    }
  })
  swarms.forEach((swarm, i) => {
    swarm.behaviour.gossipsub.subscribe(TOPIC)
    swarm.listenOn(`/ip4/${hostAddress(i, perHost)}/tcp/0`)
  })
  await waitFor('listening', () => addresses.filter(a => a != null).length === nodes)
  for (const [from, to] of links) swarms[from].dial(addresses[to] as Multiaddr)
  await warmUp(degree, i => swarms[i].behaviour.gossipsub.subscribers(TOPIC).length, i => swarms[i].behaviour.gossipsub.meshPeers(TOPIC).length)
  return {
    publish: async (from, payload) => { swarms[from].behaviour.gossipsub.publish(TOPIC, payload) },
    onDelivery: (l) => { listener = l },
    duplicates: () => swarms.reduce((sum, s) => sum + s.behaviour.gossipsub.totals().duplicates, 0),
    unwanted: () => ({ ...unwanted }),
    droppedBytes: () => swarms.reduce((sum, s) => sum + s.behaviour.gossipsub.totals().droppedBytes, 0),
    close: async () => {
      await Promise.all(swarms.map(async s => { await s.close() }))
      await Promise.all(loops)
    }
  }
}

/** The implementation class has `getMeshPeers`; the `GossipSub` interface the service is typed with does not. */
function meshPeersOf (pubsub: unknown): string[] {
  return (pubsub as { getMeshPeers: (topic: string) => string[] }).getMeshPeers(TOPIC)
}

async function jsNetwork (nodes: number, links: readonly TopologyLink[], degree: number[], noIdontwant = false, perHost = false): Promise<Network> {
  const libp2ps = await Promise.all(Array.from({ length: nodes }, async (_, i) => jsGossipsubNode({
    D: D.meshN,
    Dlo: D.meshNLow,
    Dhi: D.meshNHigh,
    Dscore: D.meshNScore,
    Dout: D.meshOutboundMin,
    Dlazy: D.gossipLazy,
    heartbeatInterval: HEARTBEAT_MS,
    floodPublish: true,
    globalSignaturePolicy: 'StrictSign',
    msgIdFn: authorSeqnoId,
    ...(noIdontwant ? { idontwantMinDataSize: NEVER } : {}),
    scoreParams: { IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1']) }
  }, { listen: hostAddress(i, perHost), tcp: tcpOptions(i, perHost) })))
  let listener: (node: number, payload: Uint8Array) => void = () => {}
  let duplicates = 0
  libp2ps.forEach((node, i) => {
    node.services.pubsub.subscribe(TOPIC)
    node.services.pubsub.addEventListener('message', (evt) => { listener(i, evt.detail.data) })
    // js tells its score of every duplicate it receives (`handleReceivedMessage`); count there.
    const score = (node.services.pubsub as unknown as { score: { duplicateMessage: (...args: unknown[]) => void } }).score
    const duplicateMessage = score.duplicateMessage.bind(score)
    score.duplicateMessage = (...args: unknown[]) => {
      duplicates++
      duplicateMessage(...args)
    }
  })
  for (const [from, to] of links) await libp2ps[from].dial(libp2ps[to].getMultiaddrs()[0])
  await warmUp(degree, i => libp2ps[i].services.pubsub.getSubscribers(TOPIC).length, i => meshPeersOf(libp2ps[i].services.pubsub).length)
  return {
    publish: async (from, payload) => { await libp2ps[from].services.pubsub.publish(TOPIC, payload) },
    onDelivery: (l) => { listener = l },
    duplicates: () => duplicates,
    close: async () => { await Promise.all(libp2ps.map(async n => { await n.stop() })) }
  }
}

/**
 * Emulated links: every TCP socket gets a one-way latency drawn (seeded) from
 * `latencyMs` = [min, max]; its writes are serialised onto an uplink of `mbps` (size /
 * bandwidth each, after what the uplink took before) and reach the kernel a latency later, in
 * order. The uplink is the socket's own, or with `perHost` the one of the host the socket
 * belongs to (its local address: each node has its own 127.0.0.x, see `hostAddress`), shared
 * by all of that node's connections first come, first served, as a real host's network
 * interface is: a node forwarding one message to six mesh peers sends the six copies one after
 * another.
 *
 * Back-pressure is a Node socket's: the bytes written to a socket but not yet serialised onto
 * the uplink are its buffer; `write()` returns false when, with the new chunk, it holds at
 * least the socket's `writableHighWaterMark` (16 KiB on Node 20), and `'drain'` is emitted once
 * it is empty again. So a writer that honours `write()` keeps at most about one high-water mark
 * (plus its last write) waiting in each socket; one that ignores it piles bytes up there, as
 * on a real link. (A kernel send buffer, which a real socket also has, is not modelled: its
 * size is what `TCP_NOTSENT_LOWAT` bounds on a real host.)
 *
 * On bare loopback every link is instant, and IDONTWANT cannot win: a peer forwards a message
 * as it gets it, and a mesh peer's IDONTWANT travels with that peer's own copy.
 */
function emulateLinks (latencyMs: readonly [number, number], mbps: number, perHost = false): LinkUse {
  const random = new Random(SEED)
  const bytesPerMs = mbps * 1e6 / 8 / 1000
  interface Uplink {
    /** When the uplink has serialised everything written to it so far. */
    busyUntil: number
    /** Bytes written since the last `reset`. */
    bytes: number
  }
  interface Link {
    readonly latency: number
    readonly uplink: Uplink
    /** When this socket's last write is serialised (its buffer is empty from then on). */
    lastEnd: number
    /** This socket's writes not yet serialised: [end, bytes], oldest first. */
    readonly unsent: Array<[number, number]>
    readonly queue: Array<{ at: number, run: () => void }>
    timer?: ReturnType<typeof setTimeout>
    /** A write returned false: emit 'drain' when the buffer is empty. */
    drainTimer?: ReturnType<typeof setTimeout>
  }
  const links = new WeakMap<net.Socket, Link>()
  const uplinks = new Map<string | net.Socket, Uplink>()
  const proto = net.Socket.prototype as unknown as {
    write: (chunk: unknown, ...rest: unknown[]) => boolean
    end: (...args: unknown[]) => net.Socket
  }
  const { write, end } = proto
  const linkOf = (socket: net.Socket): Link => {
    let link = links.get(socket)
    if (link == null) {
      const owner = perHost ? socket.localAddress ?? '?' : socket
      let uplink = uplinks.get(owner)
      if (uplink == null) uplinks.set(owner, uplink = { busyUntil: 0, bytes: 0 })
      link = { latency: random.uniform(latencyMs[0], latencyMs[1]), uplink, lastEnd: 0, unsent: [], queue: [] }
      links.set(socket, link)
    }
    return link
  }
  const pump = (link: Link): void => {
    link.timer = undefined
    const now = performance.now()
    while (link.queue.length > 0 && link.queue[0].at <= now) (link.queue.shift() as { run: () => void }).run()
    if (link.queue.length > 0) link.timer = setTimeout(() => { pump(link) }, link.queue[0].at - now)
  }
  const later = (socket: net.Socket, bytes: number, run: () => void): Link => {
    const link = linkOf(socket)
    const now = performance.now()
    link.uplink.busyUntil = Math.max(now, link.uplink.busyUntil) + bytes / bytesPerMs
    link.uplink.bytes += bytes
    link.lastEnd = link.uplink.busyUntil
    link.unsent.push([link.lastEnd, bytes])
    link.queue.push({ at: link.lastEnd + link.latency, run })
    if (link.timer == null) link.timer = setTimeout(() => { pump(link) }, link.queue[0].at - now)
    return link
  }
  /** Bytes written to the socket and not yet serialised onto its uplink. */
  const buffered = (link: Link): number => {
    const now = performance.now()
    while (link.unsent.length > 0 && link.unsent[0][0] <= now) link.unsent.shift()
    let total = 0
    for (const [, bytes] of link.unsent) total += bytes
    return total
  }
  proto.write = function (this: net.Socket, chunk: unknown, ...rest: unknown[]): boolean {
    // Pipes (stdout) are sockets too; only TCP links have a remote port.
    if (this.remotePort == null) return write.call(this, chunk, ...rest)
    const bytes = typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Uint8Array).byteLength
    const link = later(this, bytes, () => { if (!this.destroyed && !this.writableEnded) write.call(this, chunk, ...rest) })
    if (buffered(link) < this.writableHighWaterMark) return true
    if (link.drainTimer == null) {
      const onEmpty = (): void => {
        const left = link.lastEnd - performance.now()
        if (left > 0) {
          link.drainTimer = setTimeout(onEmpty, left)
          return
        }
        link.drainTimer = undefined
        if (!this.destroyed) this.emit('drain')
      }
      link.drainTimer = setTimeout(onEmpty, link.lastEnd - performance.now())
    }
    return false
  }
  proto.end = function (this: net.Socket, ...args: unknown[]): net.Socket {
    if (this.remotePort == null) return end.apply(this, args)
    later(this, 0, () => { if (!this.destroyed) end.apply(this, args) })
    return this
  }
  return {
    reset: () => { for (const uplink of uplinks.values()) uplink.bytes = 0 },
    utilisation: (ms) => {
      const shares = [...uplinks.values()].filter(u => u.bytes > 0).map(u => u.bytes / (ms * bytesPerMs))
      return { mean: shares.reduce((a, b) => a + b, 0) / Math.max(1, shares.length), max: Math.max(0, ...shares) }
    }
  }
}

/** How much of their bandwidth the emulated links used. */
interface LinkUse {
  /** Count from now. */
  reset: () => void
  /** Bytes written per uplink since `reset` over what `ms` of its bandwidth could carry: mean and max over the uplinks that carried some. */
  utilisation: (ms: number) => { mean: number, max: number }
}

/**
 * The bytes of one copy of a bench message as both implementations frame it (StrictSign,
 * Ed25519 author: `from` is the 38-byte peer id, the key is not sent, 8-byte seqno, 64-byte
 * signature), one message per RPC: what each duplicate costs above Yamux and Noise.
 */
function messageFrameBytes (size: number): number {
  return encodeFrame(encodeRpc({ publish: [{ from: new Uint8Array(38), data: new Uint8Array(size), seqno: new Uint8Array(8), topic: TOPIC, signature: new Uint8Array(64) }] })).byteLength
}

/** RSS, and the JS heap plus buffers in use, after a full GC. */
function memoryAfterGc (): { rss: number, heap: number } {
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  gc?.()
  const usage = process.memoryUsage()
  return { rss: usage.rss, heap: usage.heapUsed + usage.external }
}

/** One implementation on one case, in this process. */
async function runCase (impl: Impl, c: Case): Promise<Result> {
  countSocketWrites()
  const linkUse = c.links != null ? emulateLinks(c.links.latencyMs, c.links.mbps, c.links.perHost) : undefined
  const links = topologyLinks({ type: 'random-dials', dials: LINKS_PER_NODE, maxDegree: D.meshNHigh }, c.nodes, new Random(SEED))
  const degree = degrees(c.nodes, links)
  const from = publishers(c.nodes, c.publishers)
  const before = memoryAfterGc()
  const perHost = c.links?.perHost ?? false
  const network = impl === 'ours' ? await oursNetwork(c.nodes, links, degree, c.noIdontwant, perHost) : await jsNetwork(c.nodes, links, degree, c.noIdontwant, perHost)
  try {
    const idle = memoryAfterGc()
    const latencies: number[] = []
    const seen = new Set<number>()
    let duplicateDeliveries = 0
    let lastDelivery = performance.now()
    network.onDelivery((node, payload) => {
      const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
      const key = node * c.messages + view.getUint32(8)
      if (seen.has(key)) {
        duplicateDeliveries++
        return
      }
      seen.add(key)
      lastDelivery = performance.now()
      latencies.push(lastDelivery - view.getFloat64(0))
    })
    const expected = c.messages * (c.nodes - 1)
    resetWireBytes()
    linkUse?.reset()
    const duplicatesBefore = network.duplicates()
    const unwantedBefore = network.unwanted?.()
    const droppedBefore = network.droppedBytes?.()
    const started = performance.now()
    for (let i = 0; i < c.messages; i++) {
      // Paced: message i is due at i / rate s after the first (never before).
      const due = c.rate == null ? 0 : started + i * 1000 / c.rate - performance.now()
      if (due > 0) await new Promise(resolve => setTimeout(resolve, due))
      const payload = new Uint8Array(c.size)
      const view = new DataView(payload.buffer)
      view.setFloat64(0, performance.now())
      view.setUint32(8, i)
      await network.publish(from[i % from.length], payload)
      await new Promise(resolve => setImmediate(resolve))
    }
    while (seen.size < expected && performance.now() - lastDelivery < STALL_MS) {
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    const bytes = wireBytes()
    const duplicates = network.duplicates() - duplicatesBefore
    const unwantedAfter = network.unwanted?.()
    const droppedAfter = network.droppedBytes?.()
    const use = linkUse?.utilisation(lastDelivery - started)
    const after = memoryAfterGc()
    latencies.sort((a, b) => a - b)
    const percentile = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN
    const perDelivery = bytes / seen.size
    const mb = (bytes: number): number => bytes / (1024 * 1024) / c.nodes
    return {
      deliveryRatio: seen.size / expected,
      duplicates: duplicateDeliveries,
      p50Ms: percentile(0.5),
      p99Ms: percentile(0.99),
      msgsPerSec: c.messages / ((lastDelivery - started) / 1000),
      wireBytesPerDelivery: perDelivery,
      xPayload: perDelivery / c.size,
      overheadBytesPerDelivery: perDelivery - c.size,
      duplicatesPerDelivery: duplicates / seen.size,
      duplicateBytesPerDelivery: duplicates * messageFrameBytes(c.size) / seen.size,
      ...(use != null ? { linkUseMean: use.mean, linkUseMax: use.max } : {}),
      ...(droppedBefore != null && droppedAfter != null ? { queueDroppedBytesPerDelivery: (droppedAfter - droppedBefore) / seen.size } : {}),
      ...(unwantedBefore != null && unwantedAfter != null
        ? {
            unwantedAtSendPerDelivery: (unwantedAfter.send - unwantedBefore.send) / seen.size,
            unwantedFromQueuePerDelivery: (unwantedAfter.queue - unwantedBefore.queue) / seen.size
          }
        : {}),
      rssIdleMBPerNode: mb(idle.rss - before.rss),
      rssMBPerNode: mb(after.rss - before.rss),
      heapMBPerNode: mb(after.heap - before.heap)
    }
  } finally {
    await network.close()
  }
}

/** Run one implementation on one case in a fresh child process; its last stdout line is the result. */
async function inChild (impl: Impl, c: Case): Promise<Result> {
  const file = fileURLToPath(import.meta.url)
  const child = spawn(process.execPath, [...process.execArgv, '--expose-gc', file], {
    env: { ...process.env, GOSSIPSUB_BENCH_CHILD: JSON.stringify({ impl, case: c }) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let out = ''
  child.stdout.setEncoding('utf8')
  child.stdout.on('data', (chunk: string) => { out += chunk })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, CHILD_TIMEOUT_MS)
  const code = await new Promise<number | null>(resolve => child.on('exit', resolve))
  clearTimeout(timer)
  const last = out.trim().split('\n').at(-1) ?? ''
  if (code !== 0 || !last.startsWith('{')) throw new Error(`${impl} ${JSON.stringify(c)}: child exited with ${String(code)}: ${out}`)
  return JSON.parse(last) as Result
}

function round (value: number): number {
  return Math.round(value * 1000) / 1000
}

function rounded<T extends object> (result: T): T {
  return Object.fromEntries(Object.entries(result).map(([k, v]) => [k, round(v as number)])) as T
}

const child = process.env.GOSSIPSUB_BENCH_CHILD
if (child != null) {
  const { impl, case: c } = JSON.parse(child) as { impl: Impl, case: Case }
  const result = await runCase(impl, c)
  console.log(JSON.stringify(result))
  // js-libp2p may leave timers behind after stop(); the result is out.
  process.exit(0)
} else if (process.argv.includes('idontwant-sim')) {
  // The same question without the CPU: ours in virtual time (peerswarm/testing), where
  // computing takes no time, so the offered load, not the machine, decides whether the links
  // are the bottleneck. 16 KiB, five publishers, links of 5–40 ms, a 16 KiB send buffer per
  // connection (the emulated socket's high-water mark), random 6-regular topology, IDONTWANT on
  // and off. By default one uplink per peer of 10 Mbit/s (BENCH_MBPS), shared by its
  // connections, at 2.5 to 20 messages per second; with BENCH_UPLINK=socket each link direction
  // its own 20 Mbit/s, at 50 to 400 messages per second. BENCH_RATE=n,… sets the rates.
  const perHost = uplinkModel() === 'host'
  const sizes = envNumbers('BENCH_NODES') ?? [10, 30]
  const bandwidths = envNumbers('BENCH_MBPS') ?? [perHost ? 10 : 20]
  const rates = envNumbers('BENCH_RATE') ?? (perHost ? [2.5, 5, 10, 20] : [50, 100, 200, 400])
  const messages = messagesOverride() ?? (perHost ? 300 : 400)
  const size = 16 * 1024
  const results: Record<string, unknown> = {}
  for (const mbps of bandwidths) for (const peers of sizes) {
    for (const rate of rates) {
      const row: Record<string, Record<string, number>> = {}
      for (const on of [true, false]) {
        const report = await runScenario({
          name: `idontwant-${on ? 'on' : 'off'}`,
          peers,
          seed: SEED,
          topology: { type: 'random-regular', degree: 6 },
          link: { latency: { min: LINK_LATENCY_MS[0], max: LINK_LATENCY_MS[1] }, sendBuffer: 16 * 1024, ...(perHost ? {} : { bandwidthMbps: mbps }) },
          ...(perHost ? { uplinkMbps: mbps } : {}),
          gossipsub: {
            ...D,
            heartbeatInterval: HEARTBEAT_MS,
            scoreParams: { ipColocationFactorWhitelist: ['127.0.0.1', '::1'] },
            ...(on ? {} : { idontwantMessageThreshold: NEVER })
          },
          publish: { messages, publishers: 5, size, interval: 1000 / rate },
          settle: 5_000
        })
        const delivered = report.total.delivered
        const g = report.gossip
        row[on ? 'on' : 'off'] = {
          deliveryRatio: report.total.deliveryRatio,
          p50Ms: report.total.latency.p50,
          duplicatesPerDelivery: report.duplicatesPerDelivery,
          duplicateBytesPerDelivery: report.duplicatesPerDelivery * messageFrameBytes(size),
          unwantedAtSendPerDelivery: (g.messages_unwanted_send ?? 0) / delivered,
          unwantedFromQueuePerDelivery: (g.messages_unwanted_queue ?? 0) / delivered,
          echoesPerDelivery: (g.messages_echoes ?? 0) / delivered,
          queueDroppedBytesPerDelivery: (g.queue_dropped_bytes ?? 0) / delivered
        }
      }
      const name = `${peers}n-16384B-5pub-${mbps}Mbps-${perHost ? 'host' : 'socket'}-${rate}msgs`
      results[name] = { cutByIdontwant: round(1 - row.on.duplicateBytesPerDelivery / row.off.duplicateBytesPerDelivery) }
      console.log(JSON.stringify({ bench: 'gossipsub-idontwant-sim', case: name, peers, rate, on: rounded(row.on), off: rounded(row.off) }))
    }
  }
  console.log(JSON.stringify({ bench: 'gossipsub-idontwant-sim', node: process.version, results }))
} else if (process.argv.includes('idontwant')) {
  // IDONTWANT on and off, 16 KiB, five publishers, for both implementations: duplicate bytes
  // received per delivery (what IDONTWANT is for), and every byte on the wire beyond the one
  // useful copy per delivery (duplicates, control, framing). BENCH_REPEAT=n runs every
  // configuration n times, on and off in turn for each implementation; the cut reported is the
  // median of the n pairs' cuts, the other figures medians of the runs.
  const override = messagesOverride()
  const impls = (['ours', 'js'] as const).filter(impl => process.env.BENCH_ONLY == null || process.env.BENCH_ONLY === impl)
  const uplink = uplinkModel()
  const results: Record<string, unknown> = {}
  for (const config of idontwantConfigs(uplink)) {
    const { nodes, mbps, rate } = config
    const base: Case = {
      nodes,
      size: 16 * 1024,
      publishers: 5,
      messages: override ?? config.messages,
      links: { latencyMs: LINK_LATENCY_MS, mbps, perHost: uplink === 'host' },
      ...(rate == null ? {} : { rate })
    }
    const runs: Record<string, Result[]> = {}
    for (let i = 0; i < REPEAT; i++) {
      for (const impl of impls) {
        (runs[`${impl}On`] ??= []).push(rounded(await inChild(impl, base)))
        ;(runs[`${impl}Off`] ??= []).push(rounded(await inChild(impl, { ...base, noIdontwant: true })))
      }
    }
    const row = Object.fromEntries(Object.entries(runs).map(([k, r]) => [k, medianOf(r)]))
    const pick = (field: keyof Result, digits = 0): Record<string, number> =>
      Object.fromEntries(Object.entries(row).filter(([, r]) => r[field] != null).map(([k, r]) => [k, Number((r[field] as number).toFixed(digits))]))
    // Each pair's cut (run i on against run i off), and their median.
    const cuts = (field: 'duplicateBytesPerDelivery' | 'overheadBytesPerDelivery'): Record<string, { median: number, pairs: number[] }> =>
      Object.fromEntries(impls.map(impl => {
        const pairs = runs[`${impl}On`].map((on, i) => round(1 - on[field] / runs[`${impl}Off`][i][field]))
        return [impl, { median: round(medianOf(pairs.map(cut => ({ cut }))).cut), pairs }]
      }))
    const name = `${nodes}n-16384B-5pub-${mbps}Mbps-${uplink}${rate == null ? '' : `-${rate}msgs`}`
    results[name] = {
      duplicateBytesPerDelivery: pick('duplicateBytesPerDelivery'),
      overheadBytesPerDelivery: pick('overheadBytesPerDelivery'),
      duplicatesPerDelivery: pick('duplicatesPerDelivery', 3),
      unwantedAtSendPerDelivery: pick('unwantedAtSendPerDelivery', 3),
      unwantedFromQueuePerDelivery: pick('unwantedFromQueuePerDelivery', 3),
      queueDroppedBytesPerDelivery: pick('queueDroppedBytesPerDelivery'),
      deliveryRatio: pick('deliveryRatio', 4),
      msgsPerSec: pick('msgsPerSec', 1),
      p50Ms: pick('p50Ms'),
      p99Ms: pick('p99Ms'),
      linkUseMean: pick('linkUseMean', 3),
      linkUseMax: pick('linkUseMax', 3),
      cutByIdontwant: { duplicateBytes: cuts('duplicateBytesPerDelivery'), overheadBytes: cuts('overheadBytesPerDelivery') }
    }
    console.log(JSON.stringify({ bench: 'gossipsub-idontwant', case: name, ...base, runs }))
  }
  console.log(JSON.stringify({ bench: 'gossipsub-idontwant', node: process.version, repeat: REPEAT, results }))
} else {
  const override = messagesOverride()
  // BENCH_PACE=n: both implementations publish n messages per second instead of as fast as
  // they can, so that what they hold (the message cache: five heartbeats of the stream) is
  // compared at the same rate.
  const pace = envNumbers('BENCH_PACE')?.[0]
  const cases: Case[] = []
  for (const nodes of [10, 30]) {
    for (const size of [256, 16 * 1024]) {
      for (const publishers of [1, 5]) cases.push({ nodes, size, publishers, messages: override ?? (nodes === 10 ? 1_000 : 500), rate: pace })
    }
  }
  // BENCH_CASES=10n-256B-1pub,30n-16384B-5pub runs only those.
  const only = process.env.BENCH_CASES?.split(',')
  if (only != null) cases.splice(0, cases.length, ...cases.filter(c => only.includes(`${c.nodes}n-${c.size}B-${c.publishers}pub`)))
  const ratios: Record<string, unknown> = {}
  for (const c of cases) {
    const name = `${c.nodes}n-${c.size}B-${c.publishers}pub`
    const runs = await alternated(async () => inChild('ours', c), async () => inChild('js', c))
    const ours = rounded(runs.ours)
    const js = rounded(runs.js)
    const ceiling = await cryptoCeiling(c.nodes, c.size)
    const crypto = rounded({ ...ceiling, oursShare: ours.msgsPerSec / ceiling.msgsPerSec, jsShare: js.msgsPerSec / ceiling.msgsPerSec })
    const repeated = REPEAT > 1 ? { runs: REPEAT, rateRatios: runs.rateRatios } : {}
    console.log(JSON.stringify({ bench: 'gossipsub', case: name, ...c, ...repeated, ours, js, cryptoCeiling: crypto }))
    ratios[name] = {
      deliveryRatio: round(ours.deliveryRatio / js.deliveryRatio),
      p50: round(ours.p50Ms / js.p50Ms),
      p99: round(ours.p99Ms / js.p99Ms),
      msgsPerSec: round(ours.msgsPerSec / js.msgsPerSec),
      wireBytesPerDelivery: round(ours.wireBytesPerDelivery / js.wireBytesPerDelivery),
      rssIdlePerNode: round(ours.rssIdleMBPerNode / js.rssIdleMBPerNode),
      rssPerNode: round(ours.rssMBPerNode / js.rssMBPerNode),
      heapPerNode: round(ours.heapMBPerNode / js.heapMBPerNode)
    }
  }
  console.log(JSON.stringify({ bench: 'gossipsub', ratios: 'ours/js', degree: `${LINKS_PER_NODE} dials per node`, runs: REPEAT, node: process.version, oursEd25519: ed25519Implementation(), results: ratios }))
}
