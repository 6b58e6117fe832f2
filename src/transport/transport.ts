/**
 * What a transport is to the swarm: a factory of js-libp2p `Transport`s, and the components it
 * is built with.
 *
 * @module
 */
import type { ComponentLogger, DialTransportOptions, Libp2pEvents, Transport, TypedEventTarget } from '@libp2p/interface'
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
 * Options of the TCP transport: `@libp2p/tcp`'s, plus the dial port.
 *
 * @group Transports
 */
export interface TcpOptions extends TCPOptions {
  /**
   * A fixed local port that dials leave from (with `portUse: 'reuse'`, the default), so that
   * the address other peers observe us at (identify) is the NAT mapping that a hole punch
   * (DCUtR) dials from too. It must differ from every port the node listens on: Node cannot
   * dial from a listening port (no `SO_REUSEPORT` on client sockets), but any number of
   * outgoing sockets share one port nobody listens on, as long as their remote endpoints
   * differ. A dial whose 4-tuple is taken there (`EADDRNOTAVAIL`), or whose port is held by
   * another socket (`EADDRINUSE`), falls back to an ephemeral port. `0` picks a free port at
   * the first such dial and keeps it. Default: none (every dial from an ephemeral port).
   */
  readonly dialPort?: number
}

/**
 * @internal What the swarm passes to a transport's `dial`: js-libp2p's options plus the port
 * use (TCP reads it; other transports ignore it).
 */
export interface SwarmDialOptions extends DialTransportOptions {
  readonly portUse?: 'reuse' | 'new'
}

const portReused = new WeakSet<object>()

/** @internal A transport marks a connection that left from its fixed dial port. */
export function markPortReused (connection: object): void {
  portReused.add(connection)
}

/** @internal Whether a transport marked `connection` as dialed from its fixed dial port. */
export function wasPortReused (connection: object): boolean {
  return portReused.has(connection)
}
