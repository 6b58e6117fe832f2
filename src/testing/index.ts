/**
 * Helpers for tests of swarms and behaviours, in the spirit of rust-libp2p's `swarm-test`:
 * ephemeral swarms over the in-memory transport, `listen`, `connect`, `drive` and `waitFor`;
 * and a simulated network with a scenario runner (`SimulatedNetwork`, `runScenario`, see
 * docs/simulation.md).
 *
 * ```ts
 * import { newSwarm, connect, drive } from 'peerswarm/testing'
 * const a = await newSwarm(() => new ping.Behaviour())
 * const b = await newSwarm(() => new ping.Behaviour())
 * await connect(a, b)
 * const [[pingA], [pingB]] = await drive([a, b], { count: 1 })
 * ```
 *
 * @module
 */
import '../node.js'
import { PeerswarmError } from '../core/errors.js'
import { SwarmBuilder } from '../swarm/builder.js'
import type { AnyBehaviour, EventOf } from '../behaviour/network-behaviour.js'
import type { Keypair } from '../core/identity.js'
import type { MulticastSocket, MulticastSocketFactory, MulticastSocketOptions } from '../protocols/mdns/socket.js'
import type { SwarmConfig } from '../swarm/config.js'
import type { SwarmEvent } from '../swarm/events.js'
import type { Swarm } from '../swarm/swarm.js'
import type { Multiaddr } from '@multiformats/multiaddr'

export { SimulatedNetwork, defaultLinkOptions, LinkTimeoutError, LinkUnreachableError } from './network.js'
export type { LinkOptions, SimulatedNetworkOptions, NetworkStats, Partition, PartitionOptions, SimulatedHost } from './network.js'
export { Random, meanOf } from './random.js'
export type { Distribution } from './random.js'
export { VirtualClock, SimulationStalledError, SimulationTimeLimitError } from './virtual-time.js'
export type { VirtualClockOptions } from './virtual-time.js'
export { randomRegular, scaleFree, topologyLinks, degrees, connected } from './topology.js'
export type { Topology, TopologyLink } from './topology.js'
export { runScenario, formatReport, summarise } from './scenario.js'
export type { Scenario, PublishBatch, Fault, ScenarioReport, DeliveryReport, LatencySummary, DegreeSummary } from './scenario.js'

/** Default time limit of every helper, in ms. */
export const DEFAULT_TIMEOUT = 10_000

/** A helper's time limit passed; `seen` lists the event types it saw meanwhile. */
export class TestTimeoutError extends PeerswarmError {
  constructor (what: string, timeout: number, readonly seen: readonly string[]) {
    super('ERR_TEST_TIMEOUT', `${what} did not happen within ${timeout} ms (saw: ${seen.join(', ') || 'nothing'})`)
  }
}

/** Options shared by the helpers. */
export interface WaitOptions {
  /** Give up after this many ms (default: 10 000). */
  readonly timeout?: number
  /** Other swarms to keep driving meanwhile (their events are discarded). */
  readonly drive?: ReadonlyArray<Swarm<AnyBehaviour>>
}

/** A swarm with a fresh identity and the in-memory transport. */
export async function newSwarm<B extends AnyBehaviour> (create: (key: Keypair) => B, config: Partial<SwarmConfig> = {}): Promise<Swarm<B>> {
  return SwarmBuilder.withNewIdentity().withMemoryTransport().withBehaviour(create).withSwarmConfig(config).build()
}

/**
 * Wait until `swarm` yields an event matching `predicate` and return it; earlier events are
 * discarded. Throws `TestTimeoutError` after `options.timeout`.
 */
export async function waitFor<B extends AnyBehaviour, E extends SwarmEvent<EventOf<B>>> (
  swarm: Swarm<B>,
  predicate: ((event: SwarmEvent<EventOf<B>>) => event is E) | ((event: SwarmEvent<EventOf<B>>) => boolean),
  options: WaitOptions = {}
): Promise<E> {
  const timeout = options.timeout ?? DEFAULT_TIMEOUT
  const seen: string[] = []
  return withDeadline(`waitFor(${predicate.name || 'predicate'})`, timeout, seen, options.drive ?? [], async (signal) => {
    for (;;) {
      const event = await swarm.selectNextSome({ signal })
      seen.push(describeEvent(event))
      if (predicate(event)) return event as E
    }
  })
}

/** Listen on a fresh memory address and return it once bound. */
export async function listen (swarm: Swarm<AnyBehaviour>, options: WaitOptions = {}): Promise<Multiaddr> {
  const id = swarm.listenOn('/memory/0')
  const event = await waitFor(swarm, e => e.type === 'NewListenAddr' && e.listenerId === id, options)
  if (event.type !== 'NewListenAddr') throw new Error('unreachable')
  return event.address
}

/**
 * Connect `dialer` to `listener` (which listens on a memory address first if it has none) and
 * drive both until each reports the connection. Returns the connection's id on each side.
 */
export async function connect (dialer: Swarm<AnyBehaviour>, listener: Swarm<AnyBehaviour>, options: WaitOptions = {}): Promise<{ dialer: number, listener: number }> {
  const address = listener.listeners()[0] ?? await listen(listener, options)
  dialer.dial({ peerId: listener.localPeerId, addresses: [address], condition: 'always' })
  const [[onDialer], [onListener]] = await drive([dialer, listener], {
    count: 1,
    filter: (event, i) => event.type === 'ConnectionEstablished' &&
      event.peerId.equals(i === 0 ? listener.localPeerId : dialer.localPeerId),
    timeout: options.timeout
  })
  if (onDialer.type !== 'ConnectionEstablished' || onListener.type !== 'ConnectionEstablished') throw new Error('unreachable')
  return { dialer: onDialer.connectionId, listener: onListener.connectionId }
}

/** Options of {@link drive}. */
export interface DriveOptions<E> {
  /** Events to collect per swarm: one number for all, or one per swarm. */
  readonly count: number | readonly number[]
  /** Which events count (default: `Behaviour` events); `index` is the swarm's position. */
  readonly filter?: (event: SwarmEvent<E>, index: number) => boolean
  readonly timeout?: number
}

/**
 * Drive all `swarms` at once until each has yielded `count` events passing `filter`, and
 * return them per swarm. A swarm that has its count is still driven (its further events are
 * discarded) so that the others make progress.
 */
export async function drive<const S extends ReadonlyArray<Swarm<AnyBehaviour>>> (
  swarms: S,
  options: DriveOptions<EventOf<S[number]['behaviour']>>
): Promise<DriveResult<S>> {
  type E = EventOf<S[number]['behaviour']>
  const timeout = options.timeout ?? DEFAULT_TIMEOUT
  const filter = options.filter ?? ((event: SwarmEvent<E>) => event.type === 'Behaviour')
  const wanted = swarms.map((_, i) => typeof options.count === 'number' ? options.count : options.count[i] ?? 0)
  const collected = swarms.map((): Array<SwarmEvent<E>> => [])
  const seen: string[] = []
  const controller = new AbortController()
  const done = (): boolean => collected.every((events, i) => events.length >= wanted[i])
  return withDeadline('drive', timeout, seen, [], async (signal) => {
    const stop = AbortSignal.any([signal, controller.signal])
    await Promise.all(swarms.map(async (swarm, i) => {
      while (!done()) {
        let event: SwarmEvent<E>
        try {
          event = await swarm.selectNextSome({ signal: stop }) as SwarmEvent<E>
        } catch (err) {
          if (controller.signal.aborted) return
          throw err
        }
        seen.push(`${i}:${describeEvent(event)}`)
        if (collected[i].length < wanted[i] && filter(event, i)) collected[i].push(event)
      }
      controller.abort()
    }))
    return collected as DriveResult<S>
  })
}

/** What {@link drive} returns: the collected events of each swarm, typed per swarm. */
export type DriveResult<S extends ReadonlyArray<Swarm<AnyBehaviour>>> = {
  -readonly [K in keyof S]: Array<SwarmEvent<EventOf<S[K]['behaviour']>>>
}

/**
 * Drive all `swarms` at once, discarding their events, until `condition()` holds (checked
 * after every event, and every 10 ms for state that changes without an event, such as a
 * mesh grafted by a heartbeat). Throws `TestTimeoutError` after `options.timeout`.
 */
export async function driveUntil (swarms: ReadonlyArray<Swarm<AnyBehaviour>>, condition: () => boolean, options: { readonly timeout?: number } = {}): Promise<void> {
  const timeout = options.timeout ?? DEFAULT_TIMEOUT
  const seen: string[] = []
  const controller = new AbortController()
  await withDeadline(`driveUntil(${condition.name || 'condition'})`, timeout, seen, [], async (signal) => {
    const stop = AbortSignal.any([signal, controller.signal])
    const timer = setInterval(() => { if (condition()) controller.abort() }, 10)
    try {
      await Promise.all(swarms.map(async (swarm, i) => {
        while (!condition()) {
          try {
            seen.push(`${i}:${describeEvent(await swarm.selectNextSome({ signal: stop }))}`)
          } catch (err) {
            if (controller.signal.aborted) return
            throw err
          }
        }
        controller.abort()
      }))
    } finally {
      clearInterval(timer)
    }
  })
}

/**
 * A simulated multicast network for mDNS, in memory: pass `socketFactory` to
 * `mdns.Behaviour`'s options and every behaviour sharing this object hears every packet any of
 * them sends (its own included, as with multicast loopback), one microtask later.
 *
 * ```ts
 * const net = new MemoryMulticast()
 * const a = await newSwarm(key => new mdns.Behaviour(peerIdOf(key), { socketFactory: net.socketFactory }))
 * ```
 */
export class MemoryMulticast {
  private readonly sockets = new Set<MulticastSocketOptions>()
  /** Every packet sent so far, oldest first, with the interface it was sent on. */
  readonly sent: Array<{ readonly packet: Uint8Array, readonly from: string }> = []

  /** The socket factory to give to `mdns.Behaviour`. */
  readonly socketFactory: MulticastSocketFactory = async (options): Promise<MulticastSocket> => {
    this.sockets.add(options)
    let open = true
    return {
      send: async (packet) => {
        if (!open) return
        this.sent.push({ packet, from: options.iface.address })
        this.deliver(packet, options.iface.address)
      },
      close: async () => {
        open = false
        this.sockets.delete(options)
      }
    }
  }

  /** Sockets currently open. */
  get openSockets (): number {
    return this.sockets.size
  }

  /** Deliver `packet` to every open socket, as if `from` had multicast it. */
  deliver (packet: Uint8Array, from = '192.0.2.250'): void {
    const receivers = [...this.sockets]
    queueMicrotask(() => {
      for (const socket of receivers) {
        if (this.sockets.has(socket)) socket.onPacket(packet, { address: from, port: 5353 })
      }
    })
  }
}

/** Run `body` with a signal that aborts after `timeout`, driving `others` meanwhile. */
async function withDeadline<T> (what: string, timeout: number, seen: string[], others: ReadonlyArray<Swarm<AnyBehaviour>>,
  body: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController()
  const timer = setTimeout(() => { controller.abort(new TestTimeoutError(what, timeout, seen)) }, timeout)
  const background = others.map(async (swarm) => {
    try {
      for (;;) await swarm.selectNextSome({ signal: controller.signal })
    } catch {
      // Stopped by the abort below, or the swarm closed.
    }
  })
  try {
    return await body(controller.signal)
  } catch (err) {
    throw controller.signal.aborted ? controller.signal.reason : err
  } finally {
    clearTimeout(timer)
    controller.abort()
    await Promise.all(background)
  }
}

function describeEvent (event: SwarmEvent<unknown>): string {
  if (event.type !== 'Behaviour') return event.type
  const inner = event.event as { behaviour?: string, type?: string } | undefined
  return `Behaviour(${[inner?.behaviour, inner?.type].filter(Boolean).join(':')})`
}
