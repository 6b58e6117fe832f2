/**
 * What a transport is to the swarm: a factory of js-libp2p `Transport`s, and the components it
 * is built with.
 *
 * @module
 */
import type { ComponentLogger, Libp2pEvents, Transport, TypedEventTarget } from '@libp2p/interface'
import type { TCPOptions } from '@libp2p/tcp'

/**
 * What a transport factory receives (what js-libp2p transports expect as components).
 *
 * @group Transports
 */
export interface TransportComponents {
  readonly logger: ComponentLogger
  readonly events: TypedEventTarget<Libp2pEvents>
}

/**
 * Creates a transport, e.g. `tcp()` from `@libp2p/tcp`.
 *
 * @group Transports
 */
export type TransportFactory = (components: TransportComponents) => Transport

/**
 * Options of the TCP transport, as `@libp2p/tcp` takes them.
 *
 * @group Transports
 */
export type TcpOptions = TCPOptions
