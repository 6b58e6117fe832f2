/**
 * `peerswarm/view`: a live view of swarms in a web page, served from the process that runs
 * them. Node only (it needs `node:http`); not part of the browser build.
 *
 * ```ts
 * import { serveView } from 'peerswarm/view'
 *
 * const view = await serveView(swarm)   // http://127.0.0.1:<port>/
 * console.log(`watch at ${view.url}`)
 * ```
 *
 * {@link serveView} shows one swarm's neighbourhood; {@link serveNetworkView} several swarms
 * as a graph (the demos use it): swarms of this process, or nodes whose views are sent from
 * other processes ({@link ExternalViewNode}: the NAT demo's peers in network namespaces). Both are read-only, off unless called, bound to
 * 127.0.0.1 by default, and push updates to the page as server-sent events.
 *
 * @packageDocumentation
 * @module peerswarm/view
 */
export { serveView, serveNetworkView } from './server.js'
export type { ViewOptions, ViewHandle, Delivery } from './server.js'
export { nodeView, pubsubBehaviours } from './snapshot.js'
export type { ViewNode, ExternalViewNode, ViewSnapshot, NodeView, ConnectionView, PubsubView, TopicView, ScoreView, RatesView, DeliveryStats } from './snapshot.js'
