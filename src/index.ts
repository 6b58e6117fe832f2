/**
 * peerswarm: rust-libp2p's `Swarm` / `NetworkBehaviour` / `ConnectionHandler` model for
 * Node.js and browsers, over the js-libp2p transports, Noise and Yamux.
 *
 * This is the Node entry point: everything of the browser build (`browser.ts`, chosen by
 * bundlers through the `browser` export condition) plus TCP, mDNS and Node's faster crypto.
 * Start with {@link SwarmBuilder} and [the tutorial](../docs/tutorial.md); the protocols are
 * namespaces ({@link ping}, {@link gossipsub}, …); [a tour of the API](../docs/api-tour.md) goes
 * through all of it, and [Writing your own behaviour](../docs/custom-behaviour.md) through
 * {@link NetworkBehaviour} and {@link ConnectionHandler}.
 *
 * ```ts
 * import { SwarmBuilder, ping } from 'peerswarm'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withMemoryTransport()
 *   .withBehaviour(() => new ping.Behaviour())
 *   .build()
 * swarm.listenOn('/memory/0')
 * for await (const event of swarm) {
 *   if (event.type === 'NewListenAddr') console.log('listening on', event.address.toString())
 *   if (event.type === 'Behaviour') console.log(event.event)
 * }
 * ```
 *
 * @packageDocumentation
 * @module peerswarm
 */
import './node.js'

export * from './browser.js'
export { tcp } from './transport/tcp.js'
export * as mdns from './protocols/mdns/index.js'
