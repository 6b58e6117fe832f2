/**
 * TCP, over `@libp2p/tcp`. Node only: the one transport module that needs `node:net`.
 *
 * @module
 */
import { tcp as jsTcp } from '@libp2p/tcp'
import type { TcpOptions, TransportFactory } from './transport.js'

/**
 * A TCP transport factory for `SwarmBuilder.withTransport`.
 *
 * @group Transports
 */
export function tcp (options: TcpOptions = {}): TransportFactory {
  return components => jsTcp(options)(components)
}
