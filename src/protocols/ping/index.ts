/**
 * The `/ipfs/ping/1.0.0` protocol. {@link Behaviour | ping.Behaviour} pings every connection
 * every `interval` and reports each round-trip time (`Success`) or a {@link PingFailure} (a timeout, a
 * remote without ping, a broken stream); options in {@link Config | ping.Config}. Ping does not
 * keep connections alive. [The tutorial](../../../docs/tutorial.md) starts with it.
 *
 * ```ts
 * import { SwarmBuilder, ping } from 'peerswarm'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(() => new ping.Behaviour({ interval: 5_000 }))
 *   .build()
 * swarm.listenOn('/ip4/127.0.0.1/tcp/0')
 * for await (const event of swarm) {
 *   if (event.type === 'Behaviour' && event.event.type === 'Success') {
 *     console.log(`${event.event.peerId.toString()}: ${event.event.rtt.toFixed(1)} ms`)
 *   }
 * }
 * ```
 *
 * @group Protocols
 * @module
 */
export { Behaviour } from './behaviour.js'
export type { Event } from './behaviour.js'
export { Handler, PingFailure } from './handler.js'
export type { FailureKind, FromBehaviour, ToBehaviour, HandlerEvent } from './handler.js'
export { PROTOCOL, defaultConfig } from './config.js'
export type { Config } from './config.js'
