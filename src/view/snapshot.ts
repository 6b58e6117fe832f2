/**
 * What the view shows, as plain JSON: for each observed swarm its connections and, for every
 * FloodSub and GossipSub behaviour in it (found through `combine` and `toggle`), its topics
 * with mesh, fanout and subscribers, peer scores with their components, message totals and
 * rates. Portable (no Node module): it only reads the swarms' public introspection API.
 *
 * Read-only and without secrets: peer ids, addresses, topics and counters; never keys.
 *
 * @module
 */
import { CombinedBehaviour } from '../behaviour/combine.js'
import { Toggle } from '../behaviour/toggle.js'
import { Behaviour as FloodsubBehaviour } from '../protocols/floodsub/behaviour.js'
import { Behaviour as GossipsubBehaviour } from '../protocols/gossipsub/behaviour.js'
import type { AnyBehaviour } from '../behaviour/network-behaviour.js'
import type { MessageTotals } from '../protocols/pubsub/totals.js'
import type { Swarm } from '../swarm/swarm.js'
import type { PeerId } from '@libp2p/interface'

/** A swarm to show, with the name the page gives it. */
export interface ViewNode {
  readonly name: string
  readonly swarm: Swarm<AnyBehaviour>
}

/**
 * A node whose state is taken elsewhere, e.g. in another process that sends its
 * {@link nodeView} as JSON (the NAT demo's peers run in network namespaces): `latest()` returns
 * its newest {@link NodeView}, or undefined while there is none (the node is then left out).
 * The page shows it under `name`; its rates are the ones it was sent with.
 */
export interface ExternalViewNode {
  /** What the page calls the node. */
  readonly name: string
  /** The node's latest view, or `undefined` until it has sent one (the page leaves it out until then). */
  readonly latest: () => NodeView | undefined
}

/** One connection of an observed swarm. */
export interface ConnectionView {
  readonly id: number
  readonly peer: string
  /**
   * `tcp`, `websockets`, `memory`, `p2p-circuit` (relayed), `webrtc` (a direct WebRTC
   * connection set up through a relay), `webrtc-direct`, … The page draws WebRTC ones apart.
   */
  readonly transport: string
  readonly direction: 'outbound' | 'inbound'
  /** The remote's address. */
  readonly address: string
  /** Milliseconds since the epoch; the page shows the age. */
  readonly establishedAt: number
  readonly streams: number
  readonly encryption: string
  readonly multiplexer: string
  /**
   * A limited connection: relayed through a circuit relay (`ConnectedPoint.limited`), as
   * opposed to a direct one. The page draws it dashed.
   */
  readonly limited: boolean
}

/** One topic of a pubsub behaviour. */
export interface TopicView {
  readonly topic: string
  /** Whether we subscribe (otherwise we only hold a fanout for it). */
  readonly subscribed: boolean
  /** GossipSub: our mesh peers on the topic (FloodSub has no mesh: empty). */
  readonly mesh: readonly string[]
  /** GossipSub: our fanout peers, for a topic we publish to without subscribing. */
  readonly fanout: readonly string[]
  /** Peers known to subscribe. */
  readonly subscribers: readonly string[]
}

/** A peer's score and its components (GossipSub with scoring on). */
export interface ScoreView {
  readonly peer: string
  readonly score: number
  /** P1–P4 per topic (before the topic weight), the capped topic sum, P5, P6, P7. */
  readonly topics: Readonly<Record<string, { readonly p1: number, readonly p2: number, readonly p3: number, readonly p3b: number, readonly p4: number, readonly total: number }>>
  readonly topicsTotal: number
  readonly p5: number
  readonly p6: number
  readonly p7: number
}

/** Per-second rates over the last sampling interval. */
export interface RatesView {
  /** Copies of messages received (first copies, duplicates, rejected, ignored). */
  readonly in: number
  /** Messages sent: our own published, plus the copies we forwarded (one per recipient). */
  readonly out: number
  readonly duplicates: number
  /** Bytes dropped from outbound queues. */
  readonly droppedBytes: number
}

/** A FloodSub or GossipSub behaviour of an observed swarm. */
export interface PubsubView {
  readonly kind: 'gossipsub' | 'floodsub'
  /** Where it sits in the behaviour: its `combine` key(s), e.g. `gossipsub`; `''` at the root. */
  readonly path: string
  readonly topics: readonly TopicView[]
  /** Empty when scoring is off. */
  readonly scores: readonly ScoreView[]
  readonly totals: Readonly<MessageTotals>
  readonly rates: RatesView
  /** GossipSub: the protocol of our stream to each peer (`/meshsub/1.2.0`, …). */
  readonly protocols: Readonly<Record<string, string>>
}

/** One observed swarm. */
export interface NodeView {
  readonly name: string
  readonly peerId: string
  /**
   * True when the swarm runs in a web page or a worker (`nodeView` was called there); the page
   * draws browser peers apart. Absent in views from senders that predate it.
   */
  readonly browser?: boolean
  readonly listeners: readonly string[]
  readonly connections: readonly ConnectionView[]
  readonly pubsub: readonly PubsubView[]
}

/** Deliveries the application reported (`ViewHandle.delivered`). */
export interface DeliveryStats {
  readonly delivered: number
  /** Over deliveries reported with a latency, in ms. */
  readonly latency: { readonly count: number, readonly mean: number, readonly max: number, readonly last: number }
}

/** Everything the page gets in one update. */
export interface ViewSnapshot {
  /** Milliseconds since the epoch. */
  readonly time: number
  readonly nodes: readonly NodeView[]
  readonly deliveries: DeliveryStats
}

type Pubsub = GossipsubBehaviour | FloodsubBehaviour

/** The FloodSub and GossipSub behaviours in `behaviour`, with their paths. */
export function pubsubBehaviours (behaviour: AnyBehaviour, path = ''): Array<{ readonly path: string, readonly behaviour: Pubsub }> {
  if (behaviour instanceof GossipsubBehaviour || behaviour instanceof FloodsubBehaviour) return [{ path, behaviour }]
  if (behaviour instanceof Toggle) return behaviour.inner == null ? [] : pubsubBehaviours(behaviour.inner, path)
  if (behaviour instanceof CombinedBehaviour) {
    return Object.entries(behaviour.children as Record<string, AnyBehaviour>).flatMap(([key, child]) => pubsubBehaviours(child, path === '' ? key : `${path}.${key}`))
  }
  return []
}

const ids = (peers: readonly PeerId[]): string[] => peers.map(String).sort()

function pubsubView (path: string, behaviour: Pubsub, previous: PubsubView | undefined, seconds: number): PubsubView {
  const totals = behaviour.totals()
  const delta = (pick: (t: Readonly<MessageTotals>) => number): number =>
    previous == null || seconds <= 0 ? 0 : Math.max(0, (pick(totals) - pick(previous.totals)) / seconds)
  const rates: RatesView = {
    in: delta(t => t.received + t.duplicates + t.invalid + t.ignored),
    out: delta(t => t.published + t.forwarded),
    duplicates: delta(t => t.duplicates),
    droppedBytes: delta(t => t.droppedBytes)
  }
  if (behaviour instanceof FloodsubBehaviour) {
    const topics = behaviour.topics().sort().map(topic => ({ topic, subscribed: true, mesh: [], fanout: [], subscribers: ids(behaviour.subscribers(topic)) }))
    return { kind: 'floodsub', path, topics, scores: [], totals, rates, protocols: {} }
  }
  const subscribed = new Set(behaviour.topics())
  const topics = [...new Set([...subscribed, ...behaviour.fanoutTopics()])].sort().map(topic => ({
    topic,
    subscribed: subscribed.has(topic),
    mesh: ids(behaviour.meshPeers(topic)),
    fanout: ids(behaviour.fanoutPeers(topic)),
    subscribers: ids(behaviour.subscribers(topic))
  }))
  const scores: ScoreView[] = []
  const protocols: Record<string, string> = {}
  for (const { peerId } of behaviour.allPeers()) {
    const protocol = behaviour.peerProtocol(peerId)
    if (protocol != null) protocols[peerId.toString()] = protocol
    const breakdown = behaviour.peerScoreBreakdown(peerId)
    if (breakdown != null) scores.push({ peer: peerId.toString(), ...breakdown })
  }
  scores.sort((a, b) => a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0)
  return { kind: 'gossipsub', path, topics, scores, totals, rates, protocols }
}

/** Whether this code runs in a web page or a worker (not Node, whose global `navigator` says nothing). */
function inBrowser (): boolean {
  return 'document' in globalThis || 'WorkerGlobalScope' in globalThis
}

/**
 * The view of `node` now. `previous` (the same node's last view, taken `seconds` ago) gives
 * the rates; without it they are 0.
 */
export function nodeView (node: ViewNode, previous?: NodeView, seconds = 0): NodeView {
  const { swarm } = node
  const connections = swarm.connections().map((c): ConnectionView => ({
    id: c.id,
    peer: c.peerId.toString(),
    transport: c.transport,
    direction: c.endpoint.type === 'Dialer' ? 'outbound' : 'inbound',
    address: c.remoteAddress.toString(),
    establishedAt: c.establishedAt,
    streams: c.streams,
    encryption: c.encryption,
    multiplexer: c.multiplexer,
    limited: c.endpoint.limited === true
  }))
  const pubsub = pubsubBehaviours(swarm.behaviour).map(({ path, behaviour }) =>
    pubsubView(path, behaviour, previous?.pubsub.find(p => p.path === path), seconds))
  return {
    name: node.name,
    peerId: swarm.localPeerId.toString(),
    browser: inBrowser(),
    listeners: swarm.listeners().map(String),
    connections,
    pubsub
  }
}
