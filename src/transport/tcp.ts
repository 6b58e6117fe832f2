/**
 * TCP, over `@libp2p/tcp`. Node only: the one transport module that needs `node:net`.
 *
 * @module
 */
import { tcp as jsTcp } from '@libp2p/tcp'
import type { TransportFactory } from '../swarm/builder.js'
import type { TCPOptions } from '@libp2p/tcp'

/** Options of the TCP transport, as `@libp2p/tcp` takes them. */
export type TcpOptions = TCPOptions

/** A TCP transport factory for `SwarmBuilder.withTransport`. */
export function tcp (options: TcpOptions = {}): TransportFactory {
  return components => jsTcp(options)(components)
}
