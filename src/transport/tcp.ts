/**
 * TCP, over `@libp2p/tcp`. Node only: the one transport module that needs `node:net`.
 *
 * With a `dialPort` (see {@link TcpOptions.dialPort}) dials leave from that fixed local port
 * unless they ask for a new one (`portUse: 'new'`), and fall back to an ephemeral port when the
 * 4-tuple is taken there: what TCP hole punching (DCUtR) needs from Node, which cannot dial from
 * a listening port. Connections that really left from the dial port are marked
 * (`markPortReused`) for the swarm, which tells behaviours (`portUse` of
 * `handleEstablishedOutboundConnection`): identify reports their observed address as it is.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { tcp as jsTcp } from '@libp2p/tcp'
import { ConfigError } from '../core/errors.js'
import { markPortReused } from './transport.js'
import type { SwarmDialOptions, TcpOptions, TransportFactory } from './transport.js'
import type { Connection, MultiaddrConnection, Transport, Upgrader, UpgraderOptions } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:tcp')

/** Errors of a bind or connect from the dial port that a dial from an ephemeral port avoids. */
const PORT_TAKEN = new Set(['EADDRNOTAVAIL', 'EADDRINUSE'])

/**
 * A TCP transport factory for `SwarmBuilder.withTransport`.
 *
 * @group Transports
 */
export function tcp (options: TcpOptions = {}): TransportFactory {
  const { dialPort, ...jsOptions } = options
  if (dialPort !== undefined && (!Number.isSafeInteger(dialPort) || dialPort < 0 || dialPort > 65_535)) {
    throw new ConfigError('dialPort', `must be a port number (0-65535), got ${String(dialPort)}`)
  }
  return components => {
    const transport = jsTcp(jsOptions)(components)
    return dialPort === undefined ? transport : withDialPort(transport, dialPort)
  }
}

/** The IP family of a `/ip4|ip6/…/tcp/…` address, or undefined for others (DNS, unix). */
function ipFamily (address: Multiaddr): 4 | 6 | undefined {
  const first = address.getComponents()[0]?.name
  return first === 'ip4' ? 4 : first === 'ip6' ? 6 : undefined
}

/** The local port of a `@libp2p/tcp` connection (its `socket`), if it can be read. */
function localPortOf (maConn: MultiaddrConnection): number | undefined {
  return (maConn as MultiaddrConnection & { socket?: { localPort?: number } }).socket?.localPort
}

/** `transport`, whose `reuse` dials leave from `port` (0: the first such dial picks one). */
function withDialPort (transport: Transport, port: number): Transport {
  const dial = transport.dial.bind(transport)
  let chosen = port === 0 ? undefined : port
  const dialFrom = async (address: Multiaddr, options: SwarmDialOptions, localPort: number | undefined, family: 4 | 6): Promise<Connection> => {
    const upgrader: Upgrader = {
      ...options.upgrader,
      upgradeOutbound: async (maConn: MultiaddrConnection, opts: UpgraderOptions): Promise<Connection> => {
        const used = localPortOf(maConn)
        if (localPort === undefined && chosen === undefined && used !== undefined) {
          chosen = used
          log('dial port %d chosen', used)
        }
        if (used !== undefined && used === chosen) markPortReused(maConn)
        return options.upgrader.upgradeOutbound(maConn, opts)
      }
    }
    // `@libp2p/tcp` hands its dial options to `net.connect`: a local address and port bind the
    // socket there first (libuv sets SO_REUSEADDR on it).
    const local = { localAddress: family === 4 ? '0.0.0.0' : '::', localPort: localPort ?? 0 }
    return dial(address, { ...options, upgrader, ...local } as SwarmDialOptions)
  }
  transport.dial = async (address: Multiaddr, options: SwarmDialOptions): Promise<Connection> => {
    const family = ipFamily(address)
    if (options.portUse === 'new' || family === undefined) return dial(address, options)
    try {
      return await dialFrom(address, options, chosen, family)
    } catch (err) {
      const code = (err as { code?: unknown }).code
      if (typeof code !== 'string' || !PORT_TAKEN.has(code) || options.signal.aborted) throw err
      log('dial port %d taken for %a (%s): dialing from an ephemeral port', chosen, address, code)
      return dial(address, options)
    }
  }
  return transport
}
