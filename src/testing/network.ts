/**
 * A simulated network under the memory transport: hosts, links with latency, jitter,
 * bandwidth and loss, and partitions that open and heal. Swarms use it through
 * `SimulatedNetwork.host().transport`; their connections still run Noise and Yamux, and
 * every byte they write crosses a link.
 *
 * The model (see docs/simulation.md):
 * - each pair of hosts has one link, its one-way latency drawn once (seeded) from
 *   `latency`; all connections between the pair share it and its bandwidth, each direction
 *   its own;
 * - a write is a chunk: it leaves once the link has sent what was written before it
 *   (size / bandwidth each), arrives a latency later plus a jitter in [0, jitter] ms, and never
 *   before the previous chunk of its connection (a TCP stream is delivered in order);
 * - with `uplinkMbps`, each host also has one uplink that every chunk it sends, on any link,
 *   crosses first, first written, first sent (a network interface with a FIFO queue); from
 *   there the chunk crosses its link as above. Back-pressure is then per connection, as a
 *   socket's: a write reports it once that connection's own bytes waiting to leave exceed
 *   `sendBuffer`. What a healed partition releases takes the uplink at TCP's retransmission
 *   time, not before, so it never holds up the host's other connections meanwhile;
 * - loss: each segment (`mss` bytes) of a chunk is lost with probability `loss`, again on each
 *   retransmission; a segment lost k times arrives `rto × (2^k − 1)` later, and the chunk (and,
 *   by in-order delivery, everything behind it) with it. Bytes are never lost: on a reliable
 *   stream transport, loss is delay;
 * - a connection takes one round trip to set up (TCP's handshake) before the upgrade starts;
 * - a partition holds everything sent across it (connections stall) and refuses dials across
 *   it after a round trip (as an ICMP unreachable would); when it heals, what was held leaves at the next retransmission TCP would make (from `rto`,
 *   doubling, at most 120 s apart), in order. With `resetAfter`, connections still across it
 *   that long after it opened are reset at both ends, as a keep-alive or TCP user timeout
 *   would.
 *
 * @module
 */
import '../compat.js'
import { logger } from '@libp2p/logger'
import { AbstractMultiaddrConnection } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { ConfigError, PeerswarmError } from '../core/errors.js'
import { componentLogger } from '../core/logging.js'
import { MemoryConnectionRefusedError, memory } from '../transport/memory.js'
import { Random } from './random.js'
import { Scheduler } from './scheduler.js'
import type { Distribution } from './random.js'
import type { MemoryHub } from '../transport/memory.js'
import type { TransportFactory } from '../transport/transport.js'
import type { MultiaddrConnection } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { SendResult } from '@libp2p/utils'
import type { Uint8ArrayList } from 'uint8arraylist'

const log = logger('peerswarm:sim')
/** The connections' logger: their muxers and streams make scopes of it, quiet unless `DEBUG` names them. */
const connectionLog = componentLogger().forComponent('peerswarm:sim:connection')

/** Parameters of a link between two hosts. */
export interface LinkOptions {
  /** One-way latency in ms, drawn once per pair of hosts (default: 0). */
  readonly latency: Distribution
  /** Each chunk is delayed a further uniform [0, jitter] ms; a connection's chunks stay in order (default: 0). */
  readonly jitter: number
  /** Bandwidth of each direction, in Mbit/s (default: Infinity). */
  readonly bandwidthMbps: number
  /** Probability that a segment is lost (and retransmitted), in [0, 1) (default: 0). */
  readonly loss: number
  /** Segment size for loss, in bytes (default: 1,460, an Ethernet MSS). */
  readonly mss: number
  /** Retransmission timeout in ms, given the link's round-trip time (default: max(200, 2 × RTT)). */
  readonly rto: (rtt: number) => number
  /**
   * Bytes a direction (with host uplinks: a connection) may have waiting to leave before writes
   * report back-pressure (default: 4 MiB, a TCP send buffer).
   */
  readonly sendBuffer: number
}

/** Defaults of {@link LinkOptions}: an instant, lossless link. */
export const defaultLinkOptions: LinkOptions = Object.freeze({
  latency: 0,
  jitter: 0,
  bandwidthMbps: Infinity,
  loss: 0,
  mss: 1460,
  rto: (rtt: number) => Math.max(200, 2 * rtt),
  sendBuffer: 4 * 1024 * 1024
})

/** Options of a {@link SimulatedNetwork}. */
export interface SimulatedNetworkOptions {
  /** Seed of every random draw of the network (default: 0). */
  readonly seed?: number | string
  /** Every link's parameters (defaults: {@link defaultLinkOptions}). */
  readonly link?: Partial<LinkOptions>
  /** Per pair of hosts (`a < b`, host ids), parameters that override `link`. */
  readonly links?: (a: number, b: number) => Partial<LinkOptions> | undefined
  /**
   * Bandwidth in Mbit/s of each host's uplink, shared by everything the host sends, first
   * written, first sent, before each chunk crosses its link (default: none; each link
   * direction is then the only bottleneck). With uplinks, `sendBuffer` applies to each
   * connection's own bytes waiting to leave, as a socket's send buffer does. A finite number > 0.
   */
  readonly uplinkMbps?: number
  /**
   * @internal Run only some of the hosts here, the others in other threads (see
   * `testing/shards.ts`): connections between a host here and one elsewhere cross through
   * `shard.post`. Hosts are then made with the ids given to {@link SimulatedNetwork.host}, and a
   * host's first `/memory/0` listener gets port `id + 1`, so every shard knows every address.
   */
  readonly shard?: NetworkShard
}

/** @internal The hosts a network runs, and the way to the shards that run the others. */
export interface NetworkShard {
  /** Whether host `id` runs here. */
  readonly local: (host: number) => boolean
  /**
   * Hand `message` to the shard that runs host `message.to`, where {@link SimulatedNetwork.deliver}
   * schedules it at `message.at`, at least the smallest link latency from now.
   */
  readonly post: (message: CrossMessage) => void
}

/**
 * @internal What crosses from a host here to a host in another shard: the dialer's SYN (one
 * latency after the dial), the listener's answer (one more), and each connection's
 * transmissions, whose arrival the sender computes as for a connection within one network.
 */
export type CrossMessage =
  | { readonly type: 'syn', readonly to: number, readonly at: number, readonly pair: string, readonly dialer: number, readonly port: string, readonly from: string }
  | { readonly type: 'synack', readonly to: number, readonly at: number, readonly pair: string, readonly refused?: 'refused' | 'unreachable' }
  | { readonly type: 'transmission', readonly to: number, readonly at: number, readonly pair: string, readonly side: 0 | 1, readonly kind: Transmission['kind'], readonly bytes?: Uint8Array }

/** What crossed the network, counted since it was made (or since {@link SimulatedNetwork.resetStats}). */
export interface NetworkStats {
  /** Bytes written onto links (every protocol's: Noise, Yamux, multistream-select, payloads). */
  bytes: number
  /** Writes (chunks). */
  chunks: number
  /** Segments (`mss` bytes or less) the chunks made. */
  segments: number
  /** Segment losses (a segment lost twice counts twice). */
  lostSegments: number
  /** Chunks delayed by at least one loss. */
  delayedChunks: number
  /** Chunks held by a partition. */
  heldChunks: number
  /** Connections opened. */
  connections: number
  /** Connections reset by a partition's `resetAfter`. */
  resets: number
  /** Dials refused because a partition separated the hosts. */
  unreachableDials: number
}

/** A partition opened by {@link SimulatedNetwork.partition}. */
export interface Partition {
  /** True until healed. */
  readonly isOpen: boolean
  /** Heal: links across it carry bytes again (held ones first, at TCP's next retransmission). */
  heal: () => void
}

/** Options of {@link SimulatedNetwork.partition}. */
export interface PartitionOptions {
  /**
   * Reset connections across the partition that are still open this many ms after it opened
   * (default: never; they stall until it heals).
   */
  readonly resetAfter?: number
}

/** A simulated host: its id and the transport its swarm uses. */
export interface SimulatedHost {
  /** 0, 1, 2, … in order of creation. */
  readonly id: number
  /** The host's transport, for `SwarmBuilder.withTransport` (listen on `/memory/0`). */
  readonly transport: TransportFactory
  /** The host's hub: raw connections over the network, without a swarm (for tests of the links themselves). */
  readonly hub: MemoryHub
}

/**
 * A connection reset by a partition (as a keep-alive or TCP user timeout would).
 *
 * @group Errors
 */
export class LinkTimeoutError extends PeerswarmError {
  constructor () {
    super('ERR_LINK_TIMEOUT', 'connection reset: the link was partitioned for too long')
  }
}

/**
 * A dial across an open partition: the host is unreachable (as an ICMP unreachable ends a TCP connect).
 *
 * @group Errors
 */
export class LinkUnreachableError extends PeerswarmError {
  constructor (address: Multiaddr) {
    super('ERR_UNREACHABLE', `${address.toString()} is unreachable: a partition separates the hosts`)
  }
}

/** What a chunk, a close or a reset is, while it crosses or waits. */
export interface Transmission {
  readonly kind: 'data' | 'close' | 'reset'
  readonly bytes?: Uint8Array
  readonly sentAt: number
}

/** One direction of a link: shared by the connections of a pair of hosts. */
interface Direction {
  busyUntil: number
  readonly random: Random
}

/** A link between two hosts (a ≤ b). */
interface Link {
  readonly a: number
  readonly b: number
  readonly options: LinkOptions
  /** One-way latency, ms. */
  readonly latency: number
  /** Retransmission timeout, ms. */
  readonly rto: number
  /** Bytes per ms (Infinity: no serialisation delay). */
  readonly bytesPerMs: number
  readonly directions: readonly [Direction, Direction]
}

/** One end of a simulated connection. */
class SimulatedConnection extends AbstractMultiaddrConnection {
  /** When the previous chunk of this direction arrives (in-order delivery). */
  lastArrival = 0
  /** Transmissions held by a partition, oldest first. */
  held: Transmission[] = []
  heldBytes = 0
  /** Waiting for 'drain' to be dispatched. */
  drainScheduled = false
  /** With host uplinks: this end's chunks not yet sent, as [when their last byte leaves, bytes], oldest first. */
  readonly unsent: Array<[number, number]> = []
  /** The bytes of `unsent`. */
  unsentBytes = 0
  /** With host uplinks: a healed partition's held chunks are to be released at TCP's next retransmission. */
  releaseScheduled = false

  constructor (private readonly pair: ConnectionPair, readonly side: 0 | 1, init: { remoteAddr: Multiaddr, direction: 'inbound' | 'outbound' }) {
    super({ ...init, log: connectionLog })
  }

  sendData (data: Uint8ArrayList): SendResult {
    const bytes = data.subarray()
    const canSendMore = this.pair.network.transmit(this.pair, this.side, { kind: 'data', bytes, sentAt: 0 })
    return { sentBytes: bytes.byteLength, canSendMore }
  }

  sendReset (): void {
    this.pair.network.transmit(this.pair, this.side, { kind: 'reset', sentAt: 0 })
  }

  async sendClose (): Promise<void> {
    this.pair.network.transmit(this.pair, this.side, { kind: 'close', sentAt: 0 })
  }

  sendPause (): void {}

  sendResume (): void {}

  /** What the other end sent arrives here. */
  receive (transmission: Transmission): void {
    if (transmission.kind === 'data') {
      if (this.status === 'open' && transmission.bytes != null) this.onData(transmission.bytes)
    } else if (transmission.kind === 'close') {
      this.onTransportClosed()
    } else if (this.status === 'open' || this.status === 'closing') {
      this.onRemoteReset()
    }
  }
}

/**
 * The two ends of a connection and the link it crosses. With shards, a connection between a
 * host here and one elsewhere has only the end of the host here; `id` names it in both shards.
 */
class ConnectionPair {
  readonly ends: [SimulatedConnection | undefined, SimulatedConnection | undefined]
  /** Host id of each end. */
  readonly hosts: readonly [number, number]
  dead = false

  constructor (readonly network: SimulatedNetwork, readonly link: Link, dialer: number, listener: number, addresses: readonly [string, string], here: readonly [boolean, boolean] = [true, true], readonly id?: string) {
    this.hosts = [dialer, listener]
    this.ends = [
      here[0] ? new SimulatedConnection(this, 0, { remoteAddr: multiaddr(addresses[0]), direction: 'outbound' }) : undefined,
      here[1] ? new SimulatedConnection(this, 1, { remoteAddr: multiaddr(addresses[1]), direction: 'inbound' }) : undefined
    ]
    for (const end of this.ends) end?.addEventListener('close', () => { if (this.closed) network.forget(this) })
  }

  /** The end at `side`, which the caller knows is here. */
  end (side: 0 | 1): SimulatedConnection {
    return this.ends[side] as SimulatedConnection
  }

  /** The link direction from end `side` to the other. */
  direction (side: 0 | 1): Direction {
    return this.link.directions[this.hosts[side] === this.link.a ? 0 : 1]
  }

  get closed (): boolean {
    return this.ends.every(end => end == null || (end.status !== 'open' && end.status !== 'closing'))
  }
}

interface OpenPartition {
  readonly groupOf: ReadonlyMap<number, number>
  timer?: ReturnType<typeof setTimeout>
}

/**
 * A simulated network: make a host per swarm, give its transport to the swarm's builder, and
 * its connections cross links with the configured latency, jitter, bandwidth and loss.
 *
 * ```ts
 * const net = new SimulatedNetwork({ seed: 1, link: { latency: { min: 20, max: 80 }, loss: 0.01 } })
 * const host = net.host()
 * const swarm = await SwarmBuilder.withNewIdentity().withTransport(host.transport)
 *   .withBehaviour(() => new ping.Behaviour()).build()
 * swarm.listenOn('/memory/0')
 * ```
 */
export class SimulatedNetwork {
  /** The network's seeded randomness; `fork` it for draws of your own. */
  readonly random: Random
  private readonly scheduler = new Scheduler()
  private readonly linkOptions: LinkOptions
  private readonly linkOverrides?: (a: number, b: number) => Partial<LinkOptions> | undefined
  private readonly links = new Map<string, Link>()
  private readonly listeners = new Map<string, { readonly host: number, readonly accept: (connection: MultiaddrConnection) => void }>()
  /** The first port each host bound: the address its outbound connections come from. */
  private readonly hostPorts = new Map<number, string>()
  private readonly pairs = new Set<ConnectionPair>()
  private readonly partitions = new Set<OpenPartition>()
  private hosts = 0
  private lastPort = 0
  private counters: NetworkStats = emptyStats()
  /** Bytes per ms of each host's uplink; undefined without uplinks. */
  private readonly uplinkBytesPerMs?: number
  /** Each host's uplink (made on first use), with `uplinkMbps`. */
  private readonly uplinks = new Map<number, { busyUntil: number }>()
  private readonly shard?: NetworkShard
  /** With shards: connections with an end elsewhere, by id. */
  private readonly crossing = new Map<string, ConnectionPair>()
  /** With shards: dials to hosts elsewhere waiting for their answer, by connection id. */
  private readonly answers = new Map<string, (answer: CrossMessage & { type: 'synack' }) => void>()
  private lastPair = 0

  constructor (options: SimulatedNetworkOptions = {}) {
    this.random = new Random(options.seed ?? 0)
    this.linkOptions = { ...defaultLinkOptions, ...options.link }
    this.linkOverrides = options.links
    this.shard = options.shard
    validateLink(this.linkOptions)
    if (options.uplinkMbps != null) {
      if (!(options.uplinkMbps > 0) || !Number.isFinite(options.uplinkMbps)) throw new ConfigError('uplinkMbps', 'must be a finite number > 0')
      this.uplinkBytesPerMs = options.uplinkMbps * 1000 / 8
    }
  }

  /**
   * A new host. Its transport listens on `/memory/<n>` addresses of this network only. With
   * shards, `id` (required) is the host's id across them.
   */
  host (id?: number): SimulatedHost {
    if ((id == null) !== (this.shard == null)) throw new ConfigError('host', this.shard == null ? 'takes no id without shards' : 'needs its id with shards')
    if (id != null && !(this.shard?.local(id) ?? false)) throw new ConfigError('host', `host ${id} runs in another shard`)
    const host = id ?? this.hosts
    this.hosts++
    const hub = this.hub(host)
    return { id: host, transport: memory(hub), hub }
  }

  /** Hosts made so far (here, with shards). */
  get size (): number {
    return this.hosts
  }

  /** The current time of the network's clock (`performance.now()`), in ms. */
  now (): number {
    return this.scheduler.now()
  }

  /** The link between hosts `a` and `b` (made on first use): its one-way latency and options. */
  link (a: number, b: number): { readonly latency: number, readonly rto: number, readonly options: LinkOptions } {
    return this.linkOf(a, b)
  }

  /** Counters since the network was made or {@link resetStats}. */
  stats (): NetworkStats {
    return { ...this.counters }
  }

  /** Start the counters again from zero. */
  resetStats (): void {
    this.counters = emptyStats()
  }

  /** Connections open now (both ends not yet closed). */
  get openConnections (): number {
    let n = 0
    // With shards, a connection is counted where it was dialed.
    for (const pair of this.pairs) if (!pair.closed && pair.ends[0] != null) n++
    return n
  }

  /**
   * Open a partition between `groups` of host ids; hosts in no group form one more group.
   * Bytes sent between groups are held until {@link Partition.heal}.
   */
  partition (groups: ReadonlyArray<readonly number[]>, options: PartitionOptions = {}): Partition {
    const groupOf = new Map<number, number>()
    groups.forEach((group, i) => { for (const host of group) groupOf.set(host, i) })
    const partition: OpenPartition = { groupOf }
    this.partitions.add(partition)
    if (options.resetAfter != null) {
      partition.timer = setTimeout(() => { this.resetAcross(partition) }, options.resetAfter)
    }
    const heal = (): void => {
      if (!this.partitions.delete(partition)) return
      if (partition.timer != null) clearTimeout(partition.timer)
      this.released()
    }
    const partitions = this.partitions
    return {
      get isOpen () { return partitions.has(partition) },
      heal
    }
  }

  /** True while an open partition separates hosts `a` and `b`. */
  blocked (a: number, b: number): boolean {
    for (const partition of this.partitions) {
      if ((partition.groupOf.get(a) ?? -1) !== (partition.groupOf.get(b) ?? -1)) return true
    }
    return false
  }

  /** Stop: drop everything in flight and every timer. Connections are left as they are. */
  stop (): void {
    this.scheduler.stop()
    for (const partition of this.partitions) if (partition.timer != null) clearTimeout(partition.timer)
    this.partitions.clear()
  }

  /** @internal Send `transmission` from end `side` of `pair`; returns false when the sender should wait for 'drain'. */
  transmit (pair: ConnectionPair, side: 0 | 1, transmission: Transmission): boolean {
    if (pair.dead) return true
    const now = this.scheduler.now()
    const sent: Transmission = { ...transmission, sentAt: now }
    const from = pair.end(side)
    const size = sent.bytes?.byteLength ?? 0
    if (sent.kind === 'data') {
      this.counters.bytes += size
      this.counters.chunks++
    }
    if (from.held.length > 0 || this.blocked(pair.hosts[0], pair.hosts[1])) {
      from.held.push(sent)
      from.heldBytes += size
      this.counters.heldChunks++
      if (from.heldBytes > pair.link.options.sendBuffer) {
        from.drainScheduled = true
        return false
      }
      return true
    }
    const departed = this.send(pair, side, sent, now)
    const backlog = this.uplinkBytesPerMs == null ? (departed - now) * pair.link.bytesPerMs : waiting(from, now)
    if (backlog > pair.link.options.sendBuffer && !from.drainScheduled) {
      from.drainScheduled = true
      this.scheduler.at(departed, () => {
        from.drainScheduled = false
        if (from.status === 'open') from.safeDispatchEvent('drain')
      })
      return false
    }
    return !from.drainScheduled
  }

  /** @internal A pair whose ends are both closed. */
  forget (pair: ConnectionPair): void {
    this.pairs.delete(pair)
    if (pair.id != null) this.crossing.delete(pair.id)
  }

  /**
   * @internal With shards: what another shard sent a host here, scheduled at its arrival.
   * Called between two windows of the virtual clock, so `message.at` is still to come.
   */
  deliver (message: CrossMessage): void {
    this.scheduler.at(message.at, () => {
      if (message.type === 'syn') {
        this.accepted(message)
      } else if (message.type === 'synack') {
        this.answers.get(message.pair)?.(message)
      } else {
        const pair = this.crossing.get(message.pair)
        if (pair != null && !pair.dead) pair.ends[message.side]?.receive({ kind: message.kind, bytes: message.bytes, sentAt: 0 })
      }
    })
  }

  /** Put `transmission` on the link at `start` (ms); returns when its last byte has left. */
  private send (pair: ConnectionPair, side: 0 | 1, transmission: Transmission, start: number): number {
    const { link } = pair
    const direction = pair.direction(side)
    const from = pair.end(side)
    const size = transmission.bytes?.byteLength ?? 0
    const serialised = Number.isFinite(link.bytesPerMs) ? size / link.bytesPerMs : 0
    let departed: number
    if (this.uplinkBytesPerMs == null) {
      departed = Math.max(start, direction.busyUntil) + serialised
    } else {
      // Through the host's uplink first, then the link (store and forward).
      const uplink = this.uplinkOf(pair.hosts[side])
      uplink.busyUntil = Math.max(start, uplink.busyUntil) + size / this.uplinkBytesPerMs
      departed = Math.max(uplink.busyUntil, direction.busyUntil) + serialised
      from.unsent.push([departed, size])
      from.unsentBytes += size
    }
    direction.busyUntil = departed
    let delay = link.latency
    if (link.options.jitter > 0) delay += direction.random.next() * link.options.jitter
    if (link.options.loss > 0 && transmission.kind === 'data') {
      const segments = Math.max(1, Math.ceil(size / link.options.mss))
      this.counters.segments += segments
      let worst = 0
      for (let s = 0; s < segments; s++) {
        let losses = 0
        while (direction.random.next() < link.options.loss) losses++
        if (losses > 0) {
          this.counters.lostSegments += losses
          worst = Math.max(worst, losses)
        }
      }
      if (worst > 0) {
        this.counters.delayedChunks++
        delay += link.rto * (2 ** worst - 1)
      }
    } else if (transmission.kind === 'data') {
      this.counters.segments += Math.max(1, Math.ceil(size / link.options.mss))
    }
    const other = side === 0 ? 1 : 0
    const to = pair.ends[other]
    const arrival = Math.max(departed + delay, from.lastArrival)
    from.lastArrival = arrival
    if (to == null) {
      this.shard?.post({ type: 'transmission', to: pair.hosts[other], at: arrival, pair: pair.id as string, side: other, kind: transmission.kind, bytes: transmission.bytes })
    } else {
      this.scheduler.at(arrival, () => {
        if (!pair.dead) to.receive(transmission)
      })
    }
    return departed
  }

  /** Partitions changed: release what no partition holds any more. */
  private released (): void {
    const now = this.scheduler.now()
    for (const pair of this.pairs) {
      if (pair.dead || this.blocked(pair.hosts[0], pair.hosts[1])) continue
      for (const side of [0, 1] as const) {
        const from = pair.ends[side]
        if (from == null || from.held.length === 0) continue
        const resume = nextRetransmission(from.held[0].sentAt, now, pair.link.rto)
        if (this.uplinkBytesPerMs != null && resume > now) {
          // Held until TCP would send them again: taking the uplink now, for a time to come,
          // would hold up every other connection of the host until then.
          if (!from.releaseScheduled) {
            from.releaseScheduled = true
            this.scheduler.at(resume, () => {
              from.releaseScheduled = false
              this.released()
            })
          }
          continue
        }
        const held = from.held
        from.held = []
        from.heldBytes = 0
        for (const transmission of held) this.send(pair, side, transmission, resume)
        if (from.drainScheduled) {
          this.scheduler.at(pair.direction(side).busyUntil, () => {
            from.drainScheduled = false
            if (from.status === 'open') from.safeDispatchEvent('drain')
          })
        }
      }
    }
  }

  private resetAcross (partition: OpenPartition): void {
    partition.timer = undefined
    if (!this.partitions.has(partition)) return
    for (const pair of [...this.pairs]) {
      const [a, b] = pair.hosts
      if (pair.dead || (partition.groupOf.get(a) ?? -1) === (partition.groupOf.get(b) ?? -1)) continue
      pair.dead = true
      this.forget(pair)
      this.counters.resets++
      for (const end of pair.ends) end?.abort(new LinkTimeoutError())
    }
  }

  private uplinkOf (host: number): { busyUntil: number } {
    let uplink = this.uplinks.get(host)
    if (uplink == null) this.uplinks.set(host, uplink = { busyUntil: 0 })
    return uplink
  }

  private linkOf (x: number, y: number): Link {
    const a = Math.min(x, y)
    const b = Math.max(x, y)
    const key = `${a}-${b}`
    let link = this.links.get(key)
    if (link == null) {
      const overrides = this.linkOverrides?.(a, b)
      const options = overrides == null ? this.linkOptions : { ...this.linkOptions, ...overrides }
      if (overrides != null) validateLink(options)
      const latency = Math.max(0, this.random.fork(`latency/${key}`).draw(options.latency))
      link = {
        a,
        b,
        options,
        latency,
        rto: options.rto(2 * latency),
        bytesPerMs: options.bandwidthMbps * 1000 / 8,
        directions: [
          { busyUntil: 0, random: this.random.fork(`link/${a}>${b}`) },
          { busyUntil: 0, random: this.random.fork(`link/${b}>${a}`) }
        ]
      }
      this.links.set(key, link)
    }
    return link
  }

  private hub (host: number): MemoryHub {
    return {
      bind: (port, accept) => {
        const bound = port !== '0' ? port : this.shard == null ? String(++this.lastPort) : String(host + 1)
        if (this.listeners.has(bound)) throw new PeerswarmError('ERR_ADDRESS_IN_USE', `/memory/${bound} is in use`)
        this.listeners.set(bound, { host, accept })
        if (!this.hostPorts.has(host)) this.hostPorts.set(host, bound)
        return bound
      },
      unbind: (port) => {
        if (this.listeners.get(port)?.host === host) this.listeners.delete(port)
        if (this.hostPorts.get(host) === port) this.hostPorts.delete(host)
      },
      connect: async (port, { signal }) => this.connect(host, port, signal)
    }
  }

  private async connect (dialer: number, port: string, signal: AbortSignal): Promise<MultiaddrConnection> {
    const elsewhere = this.shard == null ? undefined : Number(port) - 1
    if (elsewhere != null && Number.isInteger(elsewhere) && elsewhere >= 0 && !(this.shard?.local(elsewhere) ?? true)) return await this.connectAcross(dialer, elsewhere, port, signal)
    const target = this.listeners.get(port)
    if (target == null) throw new MemoryConnectionRefusedError(multiaddr(`/memory/${port}`))
    const link = this.linkOf(dialer, target.host)
    await this.scheduler.sleepUntil(this.scheduler.now() + 2 * link.latency, signal)
    if (this.blocked(dialer, target.host)) {
      this.counters.unreachableDials++
      throw new LinkUnreachableError(multiaddr(`/memory/${port}`))
    }
    const listener = this.listeners.get(port)
    if (listener == null) throw new MemoryConnectionRefusedError(multiaddr(`/memory/${port}`))
    const pair = new ConnectionPair(this, link, dialer, target.host, [`/memory/${port}`, `/memory/${this.hostPorts.get(dialer) ?? '0'}`])
    this.pairs.add(pair)
    this.counters.connections++
    listener.accept(pair.end(1))
    return pair.end(0)
  }

  /**
   * A dial to a host in another shard: the SYN reaches it one latency later, where it is
   * accepted (or refused, or found unreachable), and the answer comes back one more later, as
   * TCP's handshake takes a round trip. A dial given up meanwhile resets what the listener
   * accepted.
   */
  private async connectAcross (dialer: number, listener: number, port: string, signal: AbortSignal): Promise<MultiaddrConnection> {
    const shard = this.shard as NetworkShard
    const link = this.linkOf(dialer, listener)
    const id = `${dialer}/${++this.lastPair}`
    const address = `/memory/${port}`
    const from = `/memory/${this.hostPorts.get(dialer) ?? '0'}`
    shard.post({ type: 'syn', to: listener, at: this.scheduler.now() + link.latency, pair: id, dialer, port, from })
    const answer = await answerTo(this.answers, id, signal, (late) => {
      if (late.refused == null) shard.post({ type: 'transmission', to: listener, at: this.scheduler.now() + link.latency, pair: id, side: 1, kind: 'reset' })
    })
    if (answer.refused === 'unreachable') {
      this.counters.unreachableDials++
      throw new LinkUnreachableError(multiaddr(address))
    }
    if (answer.refused === 'refused') throw new MemoryConnectionRefusedError(multiaddr(address))
    const pair = new ConnectionPair(this, link, dialer, listener, [address, from], [true, false], id)
    this.pairs.add(pair)
    this.crossing.set(id, pair)
    this.counters.connections++
    return pair.end(0)
  }

  /** A SYN from a host in another shard has arrived: accept it (or not), and answer. */
  private accepted (syn: CrossMessage & { type: 'syn' }): void {
    const listener = this.listeners.get(syn.port)
    const link = this.linkOf(syn.dialer, syn.to)
    const answer = (refused?: 'refused' | 'unreachable'): void => {
      this.shard?.post({ type: 'synack', to: syn.dialer, at: this.scheduler.now() + link.latency, pair: syn.pair, refused })
    }
    if (this.blocked(syn.dialer, syn.to)) return answer('unreachable')
    if (listener == null || listener.host !== syn.to) return answer('refused')
    const pair = new ConnectionPair(this, link, syn.dialer, syn.to, [`/memory/${syn.port}`, syn.from], [false, true], syn.pair)
    this.pairs.add(pair)
    this.crossing.set(syn.pair, pair)
    listener.accept(pair.end(1))
    answer()
  }
}

/** Resolve with what `answers` gets for `id`, or reject with the signal's reason if it aborts first (then `abandoned` gets the answer). */
async function answerTo (answers: Map<string, (answer: CrossMessage & { type: 'synack' }) => void>, id: string, signal: AbortSignal, abandoned: (answer: CrossMessage & { type: 'synack' }) => void): Promise<CrossMessage & { type: 'synack' }> {
  signal.throwIfAborted()
  return await new Promise((resolve, reject) => {
    const onAbort = (): void => {
      answers.set(id, answer => {
        answers.delete(id)
        abandoned(answer)
      })
      reject(signal.reason)
    }
    signal.addEventListener('abort', onAbort, { once: true })
    answers.set(id, answer => {
      answers.delete(id)
      signal.removeEventListener('abort', onAbort)
      resolve(answer)
    })
  })
}

/** The bytes of connection end `end` still waiting to leave at `now` (with host uplinks); forgets those that have left. */
function waiting (end: SimulatedConnection, now: number): number {
  const { unsent } = end
  let gone = 0
  while (gone < unsent.length && unsent[gone][0] <= now) end.unsentBytes -= unsent[gone++][1]
  if (gone > 0) unsent.splice(0, gone)
  return end.unsentBytes
}

/** TCP's first retransmission at or after `now` of something first sent at `sentAt`: `rto`, then doubling, at most 120 s apart. */
function nextRetransmission (sentAt: number, now: number, rto: number): number {
  let at = sentAt + rto
  let step = rto
  while (at < now) {
    step = Math.min(2 * step, 120_000)
    at += step
  }
  return at
}

function validateLink (options: LinkOptions): void {
  const check = (field: keyof LinkOptions, ok: boolean, what: string): void => {
    if (!ok) throw new ConfigError(`link.${field}`, what)
  }
  check('jitter', options.jitter >= 0, 'must be ≥ 0')
  check('bandwidthMbps', options.bandwidthMbps > 0, 'must be > 0')
  check('loss', options.loss >= 0 && options.loss < 1, 'must be within [0, 1)')
  check('mss', Number.isInteger(options.mss) && options.mss > 0, 'must be a positive integer')
  check('sendBuffer', options.sendBuffer > 0, 'must be > 0')
  check('rto', typeof options.rto === 'function', 'must be a function of the RTT')
}

function emptyStats (): NetworkStats {
  return { bytes: 0, chunks: 0, segments: 0, lostSegments: 0, delayedChunks: 0, heldChunks: 0, connections: 0, resets: 0, unreachableDials: 0 }
}
