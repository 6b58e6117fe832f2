/**
 * One peer of a scenario as a program of its own: a swarm on real TCP with GossipSub (and
 * identify), the scenario's identity, topology links, subscriptions and publish schedule, from
 * a small JSON config ({@link PeerConfig}); it reports what happens as JSON lines
 * ({@link PeerLine}). `scripts/peer.ts` runs it as a process; `npm run net` runs many of them
 * on 127.0.0.1, and `npm run sim -- --shadow <dir>` writes them as the hosts of a Shadow
 * simulation. `processes.ts` makes the configs from a {@link Scenario} and the report from
 * the lines.
 *
 * Identities and payloads are drawn from the seed exactly as the simulator draws them, so a
 * peer here is the same peer as in `runScenario`. Times are the process's clock
 * (`performance.timeOrigin + performance.now()`, ms since the epoch): comparable between
 * processes on one machine, and under Shadow (whose clock is the simulation's).
 *
 * @module
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { multiaddr } from '@multiformats/multiaddr'
import { SwarmBuilder } from '../swarm/builder.js'
import { combine } from '../behaviour/combine.js'
import { toggle } from '../behaviour/toggle.js'
import * as gossipsub from '../protocols/gossipsub/index.js'
import * as identify from '../protocols/identify/index.js'
import { ConfigError } from '../core/errors.js'
import { peerIdOf } from '../core/identity.js'
import { platform } from '../platform.js'
import { Random } from './random.js'
import type { Keypair } from '../core/identity.js'
import type { TransportFactory } from '../transport/transport.js'
import type { MultiaddrConnection, PeerId, Transport, Upgrader } from '@libp2p/interface'

/** One message a peer publishes: its index in the scenario, batch, time and size. */
export interface PeerPublish {
  readonly id: number
  readonly batch: number
  /** Ms after the schedule's start. */
  readonly at: number
  /** Payload bytes (at least 8: the message's index and batch). */
  readonly size: number
}

/** The config of one peer (JSON). */
export interface PeerConfig {
  /** Index of the peer in the scenario: its identity is the simulator's peer of that index. */
  readonly index: number
  /** The scenario's seed (identities and payloads). */
  readonly seed: string
  /** Listen address, e.g. `/ip4/127.0.0.1/tcp/4001`. */
  readonly listen: string
  /** Peers this one dials (the topology links it is the dialer of): index and address, without `/p2p/`. */
  readonly dial: ReadonlyArray<{ readonly index: number, readonly address: string }>
  /** Every topology neighbour (dialed or dialing): it is ready when connected to all of them. */
  readonly neighbours: readonly number[]
  /** The topic, whether this peer subscribes to it, and how many of its neighbours do. */
  readonly topic: string
  readonly subscribe: boolean
  readonly subscribedNeighbours: number
  /** Ready also needs a mesh of at least this many peers (min(D_lo, subscribed neighbours) for a subscriber). */
  readonly meshAtLeast: number
  /** What it publishes, in time order. */
  readonly publish: readonly PeerPublish[]
  /**
   * When the schedule starts: `{ after }` ms after the program started (Shadow: every host
   * starts at once), or `'stdin'`: when a `{"t":"start","at":<epoch ms>}` line arrives on its
   * input (`npm run net`, once every peer is ready).
   */
  readonly start: { readonly after: number } | 'stdin'
  /** It reports its counters and exits this many ms after the schedule started (every publish and the settle time). */
  readonly stopAfter: number
  /** GossipSub options (JSON; authenticity is always StrictSign with the peer's key). */
  readonly gossipsub?: Partial<Omit<gossipsub.Options, 'authenticity' | 'metrics'>>
  /** Run identify next to GossipSub (default: false). */
  readonly identify?: boolean
  /** A topology link that failed or closed is dialed again after this many ms, doubling up to 8 times that (default: 500). */
  readonly redialDelay?: number
}

/** What a peer reports, one JSON object per line. `at`: ms since the epoch, on the process's clock. */
export type PeerLine =
  | { readonly t: 'listening', readonly index: number, readonly at: number, readonly address: string, readonly peerId: string }
  | { readonly t: 'ready', readonly index: number, readonly at: number, readonly mesh: number, readonly rss?: number, readonly heapUsed?: number }
  | { readonly t: 'start', readonly index: number, readonly at: number, readonly ready: boolean }
  | { readonly t: 'published', readonly index: number, readonly id: number, readonly at: number }
  | { readonly t: 'publish-error', readonly index: number, readonly id: number, readonly error: string }
  | { readonly t: 'delivery', readonly index: number, readonly id: number, readonly at: number }
  | {
    readonly t: 'stats'
    readonly index: number
    readonly at: number
    /** GossipSub's counters since the schedule started. */
    readonly gossip: Readonly<Record<string, number>>
    /** Bytes this peer sent on its connections since the schedule started (above TCP: Noise, Yamux, multistream-select). */
    readonly bytesSent: number
    readonly mesh: number
    readonly connected: number
    readonly rss?: number
    readonly heapUsed?: number
  }
  | { readonly t: 'error', readonly index: number, readonly error: string }

/** What {@link runPeer} needs from its process. */
export interface PeerIo {
  /** Where its lines go (`scripts/peer.ts`: stdout, one JSON line each). */
  readonly emit: (line: PeerLine) => void
  /** With `start: 'stdin'`: resolves with the schedule's start (epoch ms) when the start line arrives. */
  readonly started?: Promise<number>
  /** Stop now: report and close (SIGTERM, a stop line). */
  readonly stop?: AbortSignal
  /** The process's memory (`process.memoryUsage`), for the ready and stats lines. */
  readonly memoryUsage?: () => { readonly rss: number, readonly heapUsed: number }
  /** Collect garbage before memory is measured. */
  readonly gc?: () => void
}

/** The peer's identity: the simulator's `key/<index>` draw from the seed. */
export async function peerKey (seed: string, index: number): Promise<Keypair> {
  return await generateKeyPairFromSeed('Ed25519', new Random(seed).fork(`key/${index}`).bytes(32))
}

/** The payload of message `id`: the simulator's `payload/<id>` draw, with the index and batch in its first 8 bytes. */
export function peerPayload (seed: string, id: number, batch: number, size: number): Uint8Array {
  const payload = new Random(seed).fork(`payload/${id}`).bytes(size)
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  view.setUint32(0, id)
  view.setUint32(4, batch)
  return payload
}

/** `factory`, counting the bytes sent on its connections into `counter.sent`. */
function countingTransport (factory: TransportFactory, counter: { sent: number }): TransportFactory {
  const count = (maConn: MultiaddrConnection): void => {
    const send = maConn.send.bind(maConn)
    maConn.send = (data) => {
      counter.sent += data.byteLength
      return send(data)
    }
  }
  const wrap = (upgrader: Upgrader): Upgrader => ({
    ...upgrader,
    upgradeOutbound: async (maConn, options) => {
      count(maConn)
      return await upgrader.upgradeOutbound(maConn, options)
    },
    upgradeInbound: async (maConn, options) => {
      count(maConn)
      await upgrader.upgradeInbound(maConn, options)
    }
  })
  return components => {
    const transport = factory(components)
    const counted: Transport = Object.create(transport)
    counted.dial = async (address, options) => await transport.dial(address, { ...options, upgrader: wrap(options.upgrader) })
    counted.createListener = options => transport.createListener({ ...options, upgrader: wrap(options.upgrader) })
    return counted
  }
}

function now (): number {
  return performance.timeOrigin + performance.now()
}

async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  await new Promise<void>(resolve => {
    const done = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, Math.max(0, ms))
    signal?.addEventListener('abort', done)
    if (signal?.aborted === true) done()
  })
}

/**
 * Run the peer of `config`: listen, dial its links (again while they fail), report `ready`
 * when connected to its neighbours with its mesh formed, publish on its schedule from the
 * start, report every delivery, and after `stopAfter` (or `io.stop`) report its counters and
 * close.
 */
export async function runPeer (config: PeerConfig, io: PeerIo): Promise<void> {
  const { index, topic } = config
  if (config.start === 'stdin' && io.started == null) throw new ConfigError('start', "'stdin' needs io.started")
  const began = now()
  const key = await peerKey(config.seed, index)
  const counters = new Map<string, number>()
  const bytes = { sent: 0 }
  const tcp = platform().tcp
  if (tcp == null) throw new ConfigError('transport', `TCP is not available on this platform (${platform().name})`)
  const metrics: gossipsub.MetricsSink = {
    increment: (name, value, labels) => {
      const key = name === 'control_sent' || name === 'control_received' ? `${name}_${(labels as { type: string }).type}` : name
      counters.set(key, (counters.get(key) ?? 0) + value)
    },
    observe: () => {}
  }
  const swarm = await SwarmBuilder.withExistingIdentity(key)
    .withTransport(countingTransport(tcp({}), bytes))
    .withBehaviour(k => combine({
      gossipsub: new gossipsub.Behaviour({ ...config.gossipsub, authenticity: gossipsub.MessageAuthenticity.signed(k), metrics }),
      identify: toggle(config.identify === true ? new identify.Behaviour(k.publicKey) : undefined)
    }))
    .withSwarmConfig({ connectionTimeout: 30_000 })
    .build()
  // The neighbours' identities, drawn as theirs are.
  const peerIds = new Map<number, PeerId>()
  for (const j of config.neighbours) peerIds.set(j, peerIdOf(await peerKey(config.seed, j)))
  const neighbourIds = new Map<string, number>([...peerIds].map(([j, id]) => [id.toString(), j]))
  const dials = new Map(config.dial.map(d => [d.index, d]))

  let stopping = false
  const redialDelay = config.redialDelay ?? 500
  const backoff = new Map<number, number>()
  const redials = new Set<ReturnType<typeof setTimeout>>()
  const dial = (j: number): void => {
    const target = dials.get(j)
    const peerId = peerIds.get(j)
    if (target == null || peerId == null || stopping || swarm.isConnected(peerId)) return
    try {
      swarm.dial({ peerId, addresses: [multiaddr(`${target.address}/p2p/${peerId.toString()}`)], condition: 'disconnected' })
    } catch {
      redial(j)
    }
  }
  const redial = (j: number): void => {
    if (stopping || !dials.has(j)) return
    const delay = backoff.get(j) ?? redialDelay
    backoff.set(j, Math.min(delay * 2, redialDelay * 8))
    const timer = setTimeout(() => {
      redials.delete(timer)
      dial(j)
    }, delay)
    redials.add(timer)
  }

  const loop = (async () => {
    let listening = false
    for await (const event of swarm) {
      if (event.type === 'NewListenAddr' && !listening) {
        listening = true
        io.emit({ t: 'listening', index, at: now(), address: event.address.toString(), peerId: swarm.localPeerId.toString() })
      } else if (event.type === 'ConnectionEstablished') {
        const j = neighbourIds.get(event.peerId.toString())
        if (j != null) backoff.delete(j)
      } else if (event.type === 'OutgoingConnectionError' || event.type === 'ConnectionClosed') {
        const j = event.peerId == null ? undefined : neighbourIds.get(event.peerId.toString())
        if (j != null && (event.type === 'OutgoingConnectionError' || event.numEstablished === 0)) redial(j)
      } else if (event.type === 'Behaviour' && event.event.behaviour === 'gossipsub' && event.event.event.type === 'Message') {
        const data = event.event.event.message.data
        if (data.byteLength < 8) continue
        const id = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0)
        io.emit({ t: 'delivery', index, id, at: now() })
      }
    }
  })()

  const memory = (): { rss?: number, heapUsed?: number } => {
    if (io.memoryUsage == null) return {}
    io.gc?.()
    const { rss, heapUsed } = io.memoryUsage()
    return { rss, heapUsed }
  }
  try {
    if (config.subscribe) swarm.behaviour.gossipsub.subscribe(topic)
    swarm.listenOn(config.listen)
    for (const j of dials.keys()) dial(j)

    // Ready: connected to every neighbour, their subscriptions known, the mesh formed.
    const ready = (): boolean => config.neighbours.every(j => swarm.isConnected(peerIds.get(j) as PeerId)) &&
      swarm.behaviour.gossipsub.subscribers(topic).length >= config.subscribedNeighbours &&
      swarm.behaviour.gossipsub.meshPeers(topic).length >= config.meshAtLeast
    const startAt = config.start === 'stdin' ? undefined : began + config.start.after
    let startedAt: number | undefined
    void io.started?.then(at => { startedAt = at })
    let wasReady = false
    while (io.stop?.aborted !== true) {
      if (!wasReady && ready()) {
        wasReady = true
        io.emit({ t: 'ready', index, at: now(), mesh: swarm.behaviour.gossipsub.meshPeers(topic).length, ...memory() })
      }
      const due = startAt ?? startedAt
      if (due != null && now() >= due) break
      await sleep(20, io.stop)
    }
    if (io.stop?.aborted === true) return

    // The schedule: publishes at their times, then the settle time.
    const t0 = startAt ?? startedAt ?? now()
    counters.clear()
    bytes.sent = 0
    io.emit({ t: 'start', index, at: now(), ready: wasReady })
    const timers = config.publish.map(p => setTimeout(() => {
      const payload = peerPayload(config.seed, p.id, p.batch, p.size)
      const at = now()
      try {
        swarm.behaviour.gossipsub.publish(topic, payload)
        io.emit({ t: 'published', index, id: p.id, at })
      } catch (err) {
        io.emit({ t: 'publish-error', index, id: p.id, error: (err as Error).message })
      }
    }, Math.max(0, t0 + p.at - now())))
    await sleep(t0 + config.stopAfter - now(), io.stop)
    for (const timer of timers) clearTimeout(timer)
    io.emit({
      t: 'stats',
      index,
      at: now(),
      gossip: Object.fromEntries([...counters].sort(([a], [b]) => a.localeCompare(b))),
      bytesSent: bytes.sent,
      mesh: swarm.behaviour.gossipsub.meshPeers(topic).length,
      connected: swarm.connectedPeers().length,
      ...memory()
    })
  } catch (err) {
    io.emit({ t: 'error', index, error: (err as Error).message })
    throw err
  } finally {
    stopping = true
    for (const timer of redials) clearTimeout(timer)
    await swarm.close()
    await loop.catch(() => {})
  }
}
