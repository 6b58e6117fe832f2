/**
 * mDNS's options.
 *
 * @module
 */
import { ConfigError } from '../../core/errors.js'
import type { MulticastSocketFactory } from './socket.js'

/** The libp2p mDNS service name. */
export const SERVICE_NAME = '_p2p._udp.local'

/** The mDNS port. */
export const MDNS_PORT = 5353

/** mDNS's options; every field has a default. */
export interface Config {
  /**
   * How long others may keep the records we announce, in ms (default: 6 min, as rust-libp2p).
   * Sent as the records' TTL, rounded down to whole seconds.
   */
  readonly ttl: number
  /** Interval between queries once probing is over, in ms (default: 5 min, as rust-libp2p). */
  readonly queryInterval: number
  /** The first probe interval, in ms; it doubles up to `queryInterval` (default: 500 ms). */
  readonly probeInterval: number
  /** Query and answer over IPv4, group 224.0.0.251 (default: true). */
  readonly ipv4: boolean
  /** Query and answer over IPv6, group ff02::fb (default: false). */
  readonly ipv6: boolean
  /**
   * The one network interface to use, by name (`'eth0'`, `'lo'`) or by its IPv4 address
   * (`'127.0.0.1'`). Default: every interface that is up and not loopback, followed as
   * interfaces come and go; loopback only when there is no other.
   */
  readonly interface?: string
  /** The DNS-SD service queried and announced (default: `_p2p._udp.local`). Change it only to isolate tests. */
  readonly serviceName: string
  /** Answer other peers' queries, making this node discoverable (default: true). */
  readonly respondToQueries: boolean
  /** The UDP port (default: 5353). */
  readonly port: number
  /**
   * Our instance name in announcements: 32–63 lowercase letters and digits, never the peer id
   * (default: a random one per behaviour).
   */
  readonly peerName?: string
  /** Peers remembered at once; announcements of further peers are ignored (default: 1 024). */
  readonly maxPeers: number
  /** Addresses remembered per peer; further ones are ignored (default: 32). */
  readonly maxAddressesPerPeer: number
  /** How datagrams are sent and received (default: `node:dgram`). Replace it to run over a simulated network. */
  readonly socketFactory?: MulticastSocketFactory
}

/** Defaults of every option. */
export const defaultConfig = Object.freeze({
  ttl: 6 * 60_000,
  queryInterval: 5 * 60_000,
  probeInterval: 500,
  ipv4: true,
  ipv6: false,
  serviceName: SERVICE_NAME,
  respondToQueries: true,
  port: MDNS_PORT,
  maxPeers: 1024,
  maxAddressesPerPeer: 32
})

const PEER_NAME = /^[a-z0-9]{32,63}$/

/** Validate `options` over the defaults; throws `ConfigError` naming the bad field. */
export function config (options: Partial<Config> = {}): Config {
  const result: Config = { ...defaultConfig, ...options }
  for (const field of ['ttl', 'queryInterval', 'probeInterval', 'maxPeers', 'maxAddressesPerPeer'] as const) {
    const value = result[field]
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new ConfigError(field, `must be a positive number, got ${String(value)}`)
    }
  }
  if (result.ttl < 1000 || result.ttl > 0xffffffff * 1000) throw new ConfigError('ttl', 'must be between 1 s and 2^32 - 1 s')
  if (result.probeInterval > result.queryInterval) throw new ConfigError('probeInterval', 'must not exceed queryInterval')
  if (!result.ipv4 && !result.ipv6) throw new ConfigError('ipv4', 'at least one of ipv4 and ipv6 must be on')
  if (!Number.isInteger(result.port) || result.port <= 0 || result.port > 65535) {
    throw new ConfigError('port', `must be a UDP port, got ${String(result.port)}`)
  }
  if (!/^_[a-z0-9-]+\._udp\.local$/i.test(result.serviceName)) {
    throw new ConfigError('serviceName', `must look like _name._udp.local, got ${result.serviceName}`)
  }
  if (result.peerName !== undefined && !PEER_NAME.test(result.peerName)) {
    throw new ConfigError('peerName', 'must be 32 to 63 lowercase letters and digits')
  }
  return Object.freeze(result)
}

/** A random instance name as the spec recommends: 48 lowercase letters and digits. */
export function randomPeerName (): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'
  const bytes = crypto.getRandomValues(new Uint8Array(48))
  let name = ''
  for (const byte of bytes) name += alphabet[byte % alphabet.length]
  return name
}
