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
 * **No helper loses an event.** Every event a helper takes from a swarm and does not return
 * (one its filter or predicate did not match, one past its count, one of a swarm it only kept
 * driving) is recorded for that swarm, and every helper looks at the recorded events, oldest
 * first, before it waits for new ones: `waitFor(a, …)` after `connect(a, b)` finds an event
 * that arrived while `connect` waited for the connection. Each event is returned once. Read
 * them with {@link recordedEvents}, drop them with {@link clearRecordedEvents} (to wait for a
 * new event of a kind seen before); at most {@link MAX_RECORDED_EVENTS} are kept per swarm.
 * Calling `swarm.selectNextSome()` (or `for await`) directly bypasses the record.
 *
 * @module peerswarm/testing
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
export { runScenario, formatReport, summarise, formatProgress } from './scenario.js'
export type { Scenario, PublishBatch, Fault, ScenarioReport, DeliveryReport, LatencySummary, DegreeSummary, ScenarioProgress } from './scenario.js'
export type { DeliveryTimeline, RatioHistogram, PartialRun } from './report.js'
export { runScenarioInShards, runShard } from './shards.js'
export { spawnShard } from './node-shard.js'
export type { ShardOptions, ShardInit, ShardChannel, CoordinatorChannel, ToShard, FromShard, Packed } from './shards.js'
export { runKadScenario, standardKadScenario } from './kad-scenario.js'
export type { KadScenario } from './kad-scenario.js'
export type { KadLookups, KadLookupKind, RangeSummary } from './report.js'
export { renderReportHtml, scenarioCharts } from './report-html.js'
export type { ReportChart, ReportPageOptions } from './report-html.js'
export { standardScenarios } from './standard-scenarios.js'
export { runPeer } from './peer-program.js'
export type { PeerConfig, PeerLine, PeerIo, PeerPublish } from './peer-program.js'
export { peerConfigs, reportFromLines, shadowConfig } from './processes.js'
export type { PeerConfigOptions, ProcessRunTimes, ShadowOptions, ShadowConfig } from './processes.js'

/** Default time limit of every helper, in ms. */
export const DEFAULT_TIMEOUT = 10_000

/**
 * A helper's time limit passed. The message says what the helper waited for and what it saw
 * meanwhile; `seen` lists those events, each as `[i:]Type`: `i` the swarm's index among the
 * helper's swarms (for helpers that drive several), `Type` the `SwarmEvent`'s type, and
 * `Behaviour(key:Type)` for a behaviour event (`key`: the child's name in `combine({ … })`;
 * `Type`: the child event's `type`).
 *
 * @group Errors
 */
export class TestTimeoutError extends PeerswarmError {
  constructor (what: string, timeout: number, readonly seen: readonly string[], expected?: string) {
    super('ERR_TEST_TIMEOUT', timeoutMessage(what, timeout, seen, expected))
  }
}

/** At most this many events are recorded per swarm for later helpers; older ones are dropped. */
export const MAX_RECORDED_EVENTS = 1_000

/** The events helpers took from one swarm and did not return, oldest first. */
class Recorder {
  readonly events: Array<SwarmEvent<unknown>> = []
  /** Events dropped because the record was full. */
  dropped = 0

  keep (event: SwarmEvent<unknown>): void {
    this.events.push(event)
    if (this.events.length > MAX_RECORDED_EVENTS) {
      this.events.shift()
      this.dropped++
    }
  }

  /** Remove and return the oldest recorded event `accept` takes. */
  take (accept: (event: SwarmEvent<unknown>) => boolean): SwarmEvent<unknown> | undefined {
    const index = this.events.findIndex(accept)
    return index < 0 ? undefined : this.events.splice(index, 1)[0]
  }
}

const recorders = new WeakMap<Swarm<AnyBehaviour>, Recorder>()

function recorderOf (swarm: Swarm<AnyBehaviour>): Recorder {
  let recorder = recorders.get(swarm)
  if (recorder == null) recorders.set(swarm, recorder = new Recorder())
  return recorder
}

/**
 * The events the helpers took from `swarm` without returning them, oldest first (what the
 * next helper looks at before waiting for new events). A copy.
 */
export function recordedEvents<B extends AnyBehaviour> (swarm: Swarm<B>): Array<SwarmEvent<EventOf<B>>> {
  return [...recorders.get(swarm)?.events ?? []] as Array<SwarmEvent<EventOf<B>>>
}

/** Forget the events recorded for `swarm`: the next helper waits for new ones. */
export function clearRecordedEvents (swarm: Swarm<AnyBehaviour>): void {
  recorders.delete(swarm)
}

/** Options shared by the helpers. */
export interface WaitOptions {
  /** Give up after this many ms (default: 10 000). */
  readonly timeout?: number
  /** Other swarms to keep driving meanwhile (their events are recorded for later helpers). */
  readonly drive?: ReadonlyArray<Swarm<AnyBehaviour>>
}

/** A swarm with a fresh identity and the in-memory transport. */
export async function newSwarm<B extends AnyBehaviour> (create: (key: Keypair) => B, config: Partial<SwarmConfig> = {}): Promise<Swarm<B>> {
  return SwarmBuilder.withNewIdentity().withMemoryTransport().withBehaviour(create).withSwarmConfig(config).build()
}

/**
 * The oldest event of `swarm` matching `predicate`: a recorded one (see the module
 * documentation), else the next one it yields. Events that do not match are recorded for later
 * helpers. Throws `TestTimeoutError` after `options.timeout`, naming what it saw.
 */
export async function waitFor<B extends AnyBehaviour, E extends SwarmEvent<EventOf<B>>> (
  swarm: Swarm<B>,
  predicate: ((event: SwarmEvent<EventOf<B>>) => event is E) | ((event: SwarmEvent<EventOf<B>>) => boolean),
  options: WaitOptions = {}
): Promise<E> {
  const timeout = options.timeout ?? DEFAULT_TIMEOUT
  const recorder = recorderOf(swarm)
  const accept = predicate as (event: SwarmEvent<unknown>) => boolean
  const recorded = recorder.take(accept)
  if (recorded !== undefined) return recorded as E
  // The recorded events it passed over count as seen: the message shows them first.
  const seen = recorder.events.map(describeEvent)
  const expected = `an event of swarm ${shortId(swarm)} matching ${predicate.name === '' ? 'the predicate' : predicate.name}`
  return withDeadline(`waitFor(${predicate.name || 'predicate'})`, timeout, seen, options.drive ?? [], async (signal) => {
    for (;;) {
      const event = await swarm.selectNextSome({ signal })
      if (accept(event)) return event as E
      seen.push(describeEvent(event))
      recorder.keep(event)
    }
  }, expected)
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
 * The other events of both swarms meanwhile (a listener's address, identify's exchange, …)
 * are recorded for later helpers, not lost.
 */
export async function connect (dialer: Swarm<AnyBehaviour>, listener: Swarm<AnyBehaviour>, options: WaitOptions = {}): Promise<{ dialer: number, listener: number }> {
  const address = listener.listeners()[0] ?? await listen(listener, options)
  dialer.dial({ peerId: listener.localPeerId, addresses: [address], condition: 'always' })
  const [[onDialer], [onListener]] = await driveSwarms([dialer, listener], {
    count: 1,
    filter: (event, i) => event.type === 'ConnectionEstablished' &&
      event.peerId.equals(i === 0 ? listener.localPeerId : dialer.localPeerId),
    timeout: options.timeout
  }, 'connect', `ConnectionEstablished on both sides: swarm 0 (the dialer, ${shortId(dialer)}) with ${shortId(listener)}, swarm 1 (the listener) with ${shortId(dialer)}`)
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
 * return them per swarm; recorded events (see the module documentation) come first. A swarm
 * that has its count is still driven so that the others make progress; its further events,
 * and every event that does not pass `filter`, are recorded for later helpers.
 */
export async function drive<const S extends ReadonlyArray<Swarm<AnyBehaviour>>> (
  swarms: S,
  options: DriveOptions<EventOf<S[number]['behaviour']>>
): Promise<DriveResult<S>> {
  return driveSwarms(swarms, options, 'drive')
}

async function driveSwarms<const S extends ReadonlyArray<Swarm<AnyBehaviour>>> (
  swarms: S,
  options: DriveOptions<EventOf<S[number]['behaviour']>>,
  what: string,
  expectation?: string
): Promise<DriveResult<S>> {
  type E = EventOf<S[number]['behaviour']>
  const timeout = options.timeout ?? DEFAULT_TIMEOUT
  const filter = options.filter ?? ((event: SwarmEvent<E>) => event.type === 'Behaviour')
  const filterName = options.filter == null ? 'Behaviour events (the default filter)' : `events passing ${options.filter.name === '' || options.filter.name === 'filter' ? 'the filter' : options.filter.name}`
  const wanted = swarms.map((_, i) => typeof options.count === 'number' ? options.count : options.count[i] ?? 0)
  const recorders = swarms.map(recorderOf)
  const collected = swarms.map((_, i): Array<SwarmEvent<E>> => {
    const events: Array<SwarmEvent<E>> = []
    while (events.length < wanted[i]) {
      const event = recorders[i].take(e => filter(e as SwarmEvent<E>, i))
      if (event === undefined) break
      events.push(event as SwarmEvent<E>)
    }
    return events
  })
  const seen: string[] = recorders.flatMap((recorder, i) => recorder.events.map(e => `${i}:${describeEvent(e)}`))
  const controller = new AbortController()
  const done = (): boolean => collected.every((events, i) => events.length >= wanted[i])
  const expected = (): string => `${expectation ?? `${wanted.map((n, i) => `${n} from swarm ${i}`).join(', ')} of ${filterName}`}; collected ${collected.map((events, i) => `${events.length} of ${wanted[i]} from swarm ${i} (${shortId(swarms[i])})`).join(', ')}`
  return withDeadline(what, timeout, seen, [], async (signal) => {
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
        if (collected[i].length < wanted[i] && filter(event, i)) {
          collected[i].push(event)
        } else {
          seen.push(`${i}:${describeEvent(event)}`)
          recorders[i].keep(event)
        }
      }
      controller.abort()
    }))
    return collected as DriveResult<S>
  }, expected)
}

/** What {@link drive} returns: the collected events of each swarm, typed per swarm. */
export type DriveResult<S extends ReadonlyArray<Swarm<AnyBehaviour>>> = {
  -readonly [K in keyof S]: Array<SwarmEvent<EventOf<S[K]['behaviour']>>>
}

/**
 * Drive all `swarms` at once until `condition()` holds (checked after every event, and every
 * 10 ms for state that changes without an event, such as a mesh grafted by a heartbeat). Their
 * events are recorded for later helpers. Throws `TestTimeoutError` after `options.timeout`.
 */
export async function driveUntil (swarms: ReadonlyArray<Swarm<AnyBehaviour>>, condition: () => boolean, options: { readonly timeout?: number } = {}): Promise<void> {
  const timeout = options.timeout ?? DEFAULT_TIMEOUT
  const seen: string[] = []
  const controller = new AbortController()
  const recorders = swarms.map(recorderOf)
  const expected = `${condition.name === '' || condition.name === 'condition' ? 'the condition' : condition.name} to hold`
  await withDeadline(`driveUntil(${condition.name || 'condition'})`, timeout, seen, [], async (signal) => {
    const stop = AbortSignal.any([signal, controller.signal])
    const timer = setInterval(() => { if (condition()) controller.abort() }, 10)
    try {
      await Promise.all(swarms.map(async (swarm, i) => {
        while (!condition()) {
          try {
            const event = await swarm.selectNextSome({ signal: stop })
            seen.push(`${i}:${describeEvent(event)}`)
            recorders[i].keep(event)
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
  }, expected)
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

/**
 * Run `body` with a signal that aborts after `timeout`, driving `others` meanwhile (their
 * events recorded). `expected`: what the helper waited for, for the time-out message.
 */
async function withDeadline<T> (what: string, timeout: number, seen: string[], others: ReadonlyArray<Swarm<AnyBehaviour>>,
  body: (signal: AbortSignal) => Promise<T>, expected?: string | (() => string)): Promise<T> {
  const controller = new AbortController()
  const timer = setTimeout(() => {
    controller.abort(new TestTimeoutError(what, timeout, seen, typeof expected === 'function' ? expected() : expected))
  }, timeout)
  const background = others.map(async (swarm) => {
    const recorder = recorderOf(swarm)
    try {
      for (;;) recorder.keep(await swarm.selectNextSome({ signal: controller.signal }))
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

/** How an event appears in `TestTimeoutError.seen`: its type, `Behaviour(key:Type)` for a behaviour event. */
function describeEvent (event: SwarmEvent<unknown>): string {
  if (event.type !== 'Behaviour') return event.type
  const inner = event.event as { behaviour?: unknown, type?: unknown, event?: { type?: unknown } } | undefined
  const key = typeof inner?.behaviour === 'string' ? inner.behaviour : undefined
  const type = key != null ? inner?.event?.type : inner?.type
  return `Behaviour(${[key, typeof type === 'string' ? type : undefined].filter(Boolean).join(':')})`
}

/** A peer id short enough for a message: its last 6 characters. */
function shortId (swarm: Swarm<AnyBehaviour>): string {
  return `…${swarm.localPeerId.toString().slice(-6)}`
}

/** Most distinct runs of events a time-out message lists. */
const MESSAGE_RUNS = 40

function timeoutMessage (what: string, timeout: number, seen: readonly string[], expected: string | undefined): string {
  const head = `${what} timed out after ${timeout} ms${expected != null ? `, waiting for ${expected}` : ''}.`
  if (seen.length === 0) return `${head} It saw no event.`
  // Repeats in a row are counted: "0:Behaviour(gossipsub:Message) ×200".
  const runs: string[] = []
  for (let i = 0; i < seen.length;) {
    let j = i + 1
    while (j < seen.length && seen[j] === seen[i]) j++
    runs.push(j - i > 1 ? `${seen[i]} ×${j - i}` : seen[i])
    i = j
  }
  const shown = runs.length > MESSAGE_RUNS ? [...runs.slice(0, MESSAGE_RUNS / 2), `… ${runs.length - MESSAGE_RUNS} more …`, ...runs.slice(-MESSAGE_RUNS / 2)] : runs
  const indexed = seen.some(entry => /^\d+:/.test(entry))
  const format = indexed ? '"i:Type", i being the swarm\'s index in the helper\'s list and Type' : '"Type", Type being'
  return `${head} It saw ${seen.length} event${seen.length === 1 ? '' : 's'}, oldest first, each as ${format} the SwarmEvent's type ` +
    '("Behaviour(key:Type)" is an event of the child "key" of combine({ … }) with its type; "Behaviour(Type)" one of a behaviour not combined): ' +
    `${shown.join(', ')}. Events not returned are kept for later helpers (recordedEvents).`
}
