/**
 * peerswarm: rust-libp2p's `Swarm` / `NetworkBehaviour` / `ConnectionHandler` model for
 * Node.js and browsers, over the js-libp2p transports, Noise and Yamux.
 *
 * This is the Node entry point: everything of the browser build (`browser.ts`, chosen by
 * bundlers through the `browser` export condition) plus TCP, mDNS and Node's faster crypto.
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
 */
import './node.js'

export * from './browser.js'
export { tcp } from './transport/tcp.js'
export * as mdns from './protocols/mdns/index.js'
