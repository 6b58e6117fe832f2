/**
 * The identify protocol (`/ipfs/id/1.0.0`, `/ipfs/id/push/1.0.0`). {@link Behaviour | identify.Behaviour}
 * asks each new connection's remote for its {@link Info} (public key, agent, listen addresses,
 * protocols), answers the same question, and pushes updates; it reports the address a peer sees
 * us at as a `NewExternalAddrCandidate` and the peer's listen addresses as
 * `NewExternalAddrOfPeer`. Options in {@link Config | identify.Config}. js-libp2p peers open
 * protocol streams only to peers they have identified: include it when talking to them
 * ([a tour of the API](../../../docs/api-tour.md#identify)).
 *
 * ```ts
 * import { SwarmBuilder, combine, identify, ping } from 'peerswarm'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(key => combine({
 *     identify: new identify.Behaviour(key.publicKey, { agentVersion: 'my-app/1.0.0' }),
 *     ping: new ping.Behaviour()
 *   }))
 *   .build()
 * for await (const event of swarm) {
 *   if (event.type === 'Behaviour' && event.event.behaviour === 'identify' && event.event.event.type === 'Received') {
 *     const { info } = event.event.event
 *     console.log(`${info.agentVersion} speaks ${info.protocols.join(', ')}`)
 *   }
 * }
 * ```
 *
 * @group Protocols
 * @module
 */
export { Behaviour } from './behaviour.js'
export type { Event } from './behaviour.js'
export { Handler } from './handler.js'
export type { FromBehaviour, ToBehaviour, LocalIdentity } from './handler.js'
export { InvalidIdentifyError, encodeInfo, decodeInfo } from './message.js'
export type { Info } from './message.js'
export { PROTOCOL, PUSH_PROTOCOL, defaultConfig } from './config.js'
export type { Config } from './config.js'
