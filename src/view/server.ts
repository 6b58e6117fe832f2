/**
 * The view's HTTP server (Node only: `node:http`; the browser build does not include it).
 *
 * `GET /` is the page, `GET /events` a stream of server-sent events (`snapshot`: the whole
 * state, sent at once and then whenever it changes, sampled every `interval` while someone
 * watches; `traffic`: deliveries reported with `delivered()`, batched), `GET /snapshot.json`
 * the state once. The state is read from swarms of this process, or for nodes of other
 * processes from the views they sent (`ExternalViewNode`). Nothing else: no write, no key,
 * and by default only on 127.0.0.1.
 *
 * @module
 */
import { createServer } from 'node:http'
import { ConfigError } from '../core/errors.js'
import { pageHtml } from './page.js'
import { nodeView } from './snapshot.js'
import type { DeliveryStats, ExternalViewNode, NodeView, ViewNode, ViewSnapshot } from './snapshot.js'
import type { AnyBehaviour } from '../behaviour/network-behaviour.js'
import type { Swarm } from '../swarm/swarm.js'
import type { PeerId } from '@libp2p/interface'
import type { IncomingMessage, ServerResponse } from 'node:http'

/** Options of {@link serveView} and {@link serveNetworkView}. */
export interface ViewOptions {
  /** TCP port; 0 (the default) picks a free one (read it from `url`). */
  readonly port?: number
  /**
   * Address to bind, `127.0.0.1` by default. Anything else shows your peers, addresses and
   * topics to whoever can reach it (never keys); requests naming another host are refused on
   * loopback, against DNS rebinding.
   */
  readonly host?: string
  /** How often, in ms, the state is sampled while a page is open (default 500). */
  readonly interval?: number
  /** The page's title. */
  readonly title?: string
}

/** A message a node received, reported to the view by the application (see {@link ViewHandle.delivered}). */
export interface Delivery {
  /** The node that received it. */
  readonly to: PeerId
  /** The peer it came from (the event's `propagationSource`). */
  readonly from: PeerId
  readonly topic: string
  /** Milliseconds since it was published, if the application knows. */
  readonly latency?: number
}

/** A running view. */
export interface ViewHandle {
  /** The page's address, e.g. `http://127.0.0.1:41234/`. */
  readonly url: string
  /**
   * Report a message delivery: counted, and drawn as a dot travelling from `from` to `to`.
   * The view cannot see deliveries by itself (they are events of the application's loop).
   */
  delivered: (delivery: Delivery) => void
  /** The current state, as the page gets it. */
  snapshot: () => ViewSnapshot
  /**
   * Send the state to open pages now if it changed, without waiting for the next sample (for
   * {@link ExternalViewNode}s: call it when a new view arrived, so that no state is skipped).
   */
  update: () => void
  /** Stop serving: closes open pages' streams and the server. */
  close: () => Promise<void>
}

/** A swarm of any behaviour. */
type AnySwarm = Swarm<AnyBehaviour>

/**
 * Serve a live view of `swarm`'s neighbourhood: its connections (transport, direction, age),
 * for each FloodSub/GossipSub topic its mesh and fanout peers, peer scores with their
 * components, message rates in and out, duplicates and queue drops. Updates are pushed to the
 * page as server-sent events. Read-only; off unless called; `127.0.0.1` unless `host` says
 * otherwise. Node only (`peerswarm/view`).
 *
 * ```ts
 * import { serveView } from 'peerswarm/view'
 *
 * const view = await serveView(swarm, { port: 8080 })
 * console.log(`view at ${view.url}`)
 * // …
 * await view.close()
 * ```
 */
export async function serveView (swarm: AnySwarm, options: ViewOptions = {}): Promise<ViewHandle> {
  return await serveNetworkView([{ name: `…${swarm.localPeerId.toString().slice(-6)}`, swarm }], { title: 'peerswarm view', ...options })
}

/**
 * Serve a view of several swarms at once (a test network, a simulation, the demo): a graph of
 * every node and peer with connection edges (relayed ones dashed, WebRTC ones green) and mesh
 * edges per topic, swarms that run in a browser (`NodeView.browser`) in their own colour,
 * messages drawn as they travel (reported with `delivered`), delivery and latency counters, and
 * the details of the node selected on the graph.
 *
 * A node is a swarm of this process ({@link ViewNode}) or one whose views come from elsewhere
 * ({@link ExternalViewNode}: e.g. peers in other processes that print their `nodeView` as JSON
 * lines, as the NAT demo's do):
 *
 * ```ts
 * import { serveNetworkView } from 'peerswarm/view'
 * import type { NodeView } from 'peerswarm/view'
 *
 * const latest = new Map<string, NodeView>()
 * const view = await serveNetworkView(['a', 'b'].map(name => ({ name, latest: () => latest.get(name) })))
 * // Call with each view a peer sends (e.g. parsed from the JSON lines it prints).
 * function received (name: string, nodeView: NodeView): void {
 *   latest.set(name, nodeView)
 *   view.update()
 * }
 * ```
 *
 * `nodes` may also be a function, called at each sample, for a set of nodes that changes (the
 * browser example's tabs come and go); return the same objects for the same nodes, since the
 * rates of a {@link ViewNode} are taken against its previous view.
 */
export async function serveNetworkView (nodes: ReadonlyArray<ViewNode | ExternalViewNode> | (() => ReadonlyArray<ViewNode | ExternalViewNode>), options: ViewOptions = {}): Promise<ViewHandle> {
  const interval = options.interval ?? 500
  if (!(interval >= 10)) throw new ConfigError('interval', 'must be at least 10 ms')
  const port = options.port ?? 0
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError('port', 'must be an integer in 0..65535')
  const host = options.host ?? '127.0.0.1'
  const html = pageHtml(options.title ?? 'peerswarm network view')

  const deliveries = { delivered: 0, latencyCount: 0, latencySum: 0, latencyMax: 0, latencyLast: 0 }
  let traffic: Array<{ from: string, to: string, topic: string }> = []
  const current = typeof nodes === 'function' ? nodes : () => nodes
  let previous: { time: number, views: Map<ViewNode | ExternalViewNode, NodeView | undefined> } | undefined
  let lastSent = ''
  const clients = new Set<ServerResponse>()
  let sampler: ReturnType<typeof setInterval> | undefined
  let flusher: ReturnType<typeof setTimeout> | undefined

  const deliveryStats = (): DeliveryStats => ({
    delivered: deliveries.delivered,
    latency: {
      count: deliveries.latencyCount,
      mean: deliveries.latencyCount === 0 ? 0 : deliveries.latencySum / deliveries.latencyCount,
      max: deliveries.latencyMax,
      last: deliveries.latencyLast
    }
  })

  /** Take a snapshot; `advance` makes it the base of the next rates. */
  const take = (advance: boolean): ViewSnapshot => {
    const time = Date.now()
    const seconds = previous == null ? 0 : (time - previous.time) / 1000
    const views = new Map<ViewNode | ExternalViewNode, NodeView | undefined>()
    for (const node of current()) {
      if ('swarm' in node) {
        views.set(node, nodeView(node, previous?.views.get(node), seconds))
      } else {
        const view = node.latest()
        views.set(node, view == null ? undefined : { ...view, name: node.name })
      }
    }
    if (advance || previous == null) previous = { time, views }
    return { time, nodes: [...views.values()].filter(v => v != null), deliveries: deliveryStats() }
  }

  const send = (event: string, data: string): void => {
    for (const client of clients) client.write(`event: ${event}\ndata: ${data}\n\n`)
  }

  const sample = (): void => {
    const snapshot = take(true)
    // Rates and counters change what is sent; a quiet network sends nothing new.
    const json = JSON.stringify(snapshot, (key, value: unknown) => key === 'time' ? undefined : value)
    if (json === lastSent) return
    lastSent = json
    send('snapshot', JSON.stringify(snapshot))
  }

  const flushTraffic = (): void => {
    flusher = undefined
    if (traffic.length === 0 || clients.size === 0) {
      traffic = []
      return
    }
    send('traffic', JSON.stringify(traffic))
    traffic = []
  }

  const allowedHosts = new Set<string>()
  const loopback = host === '127.0.0.1' || host === '::1' || host === 'localhost'

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    res.setHeader('x-content-type-options', 'nosniff')
    res.setHeader('cache-control', 'no-store')
    if (loopback && !allowedHosts.has((req.headers.host ?? '').toLowerCase())) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('forbidden host\n')
      return
    }
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET', 'content-type': 'text/plain' }).end('read-only\n')
      return
    }
    const path = new URL(req.url ?? '/', 'http://view').pathname
    if (path === '/') {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'"
      }).end(html)
    } else if (path === '/snapshot.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(take(false)))
    } else if (path === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', connection: 'keep-alive' })
      res.write('retry: 1000\n\n')
      clients.add(res)
      const snapshot = take(false)
      res.write(`event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`)
      sampler ??= setInterval(sample, interval)
      req.on('close', () => {
        clients.delete(res)
        if (clients.size === 0 && sampler != null) {
          clearInterval(sampler)
          sampler = undefined
          previous = undefined
          lastSent = ''
        }
      })
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
    }
  }

  const server = createServer(onRequest)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const bound = (server.address() as { port: number }).port
  const shown = host.includes(':') ? `[${host}]` : host
  for (const name of [shown, 'localhost', '127.0.0.1', '[::1]']) allowedHosts.add(`${name}:${bound}`.toLowerCase())
  const url = `http://${shown}:${bound}/`

  return {
    url,
    delivered (delivery) {
      deliveries.delivered++
      if (delivery.latency != null && Number.isFinite(delivery.latency)) {
        deliveries.latencyCount++
        deliveries.latencySum += delivery.latency
        deliveries.latencyMax = Math.max(deliveries.latencyMax, delivery.latency)
        deliveries.latencyLast = delivery.latency
      }
      if (clients.size === 0) return
      // Bounded: a page draws at most this many dots per batch anyway.
      if (traffic.length < 1000) traffic.push({ from: delivery.from.toString(), to: delivery.to.toString(), topic: delivery.topic })
      flusher ??= setTimeout(flushTraffic, 50)
    },
    snapshot: () => take(false),
    update () {
      if (clients.size > 0) sample()
    },
    async close () {
      if (sampler != null) clearInterval(sampler)
      if (flusher != null) clearTimeout(flusher)
      sampler = undefined
      flusher = undefined
      for (const client of clients) client.end()
      clients.clear()
      await new Promise<void>(resolve => {
        server.close(() => { resolve() })
        server.closeAllConnections()
      })
    }
  }
}
