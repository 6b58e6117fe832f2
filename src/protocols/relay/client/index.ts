/**
 * The circuit relay v2 client, as rust-libp2p's `relay::client`: a transport and a behaviour
 * made together. With `SwarmBuilder.withRelayClient()`, `swarm.listenOn('<relay>/p2p-circuit')`
 * reserves a slot on a relay and `swarm.dial('<relay>/p2p-circuit/p2p/<peer>')` dials a peer
 * through it.
 *
 * ```ts
 * import { SwarmBuilder, combine, ping } from 'peerswarm'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withRelayClient()
 *   .withBehaviour((key, relayClient) => combine({ relayClient, ping: new ping.Behaviour() }))
 *   .build()
 * swarm.listenOn('/ip4/198.51.100.7/tcp/4001/p2p/12D3KooW…/p2p-circuit')
 * ```
 *
 * @module
 */
export { Behaviour, create } from './behaviour.js'
export type { Event } from './behaviour.js'
export { defaultConfig } from './config.js'
export type { Config } from './config.js'
export { Handler } from './handler.js'
export type { FromBehaviour, ToBehaviour } from './handler.js'
export { Transport, parseCircuitAddress } from './transport.js'
export type { CircuitAddress } from './transport.js'
export { CircuitConnection } from './connection.js'
export type { CircuitConnectionInit } from './connection.js'
export { PendingCircuit } from './channel.js'
export type { Circuit, ReservationSink } from './channel.js'
export { ReserveError, ConnectError, InvalidCircuitAddressError } from './errors.js'
export type { ReserveErrorKind, ConnectErrorKind } from './errors.js'
