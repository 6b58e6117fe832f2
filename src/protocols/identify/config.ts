/**
 * Identify's options and protocol ids.
 *
 * @module
 */
import { ConfigError } from '../../core/errors.js'

/** The identify protocol id. */
export const PROTOCOL = '/ipfs/id/1.0.0'
/** The identify push protocol id. */
export const PUSH_PROTOCOL = '/ipfs/id/push/1.0.0'

/** Identify's options. */
export interface Config {
  /** Sent as `protocolVersion` (default: `ipfs/0.1.0`, as js-libp2p and go-libp2p). */
  readonly protocolVersion: string
  /** Sent as `agentVersion` (default: `peerswarm/<version>`). */
  readonly agentVersion: string
  /** Push our new info to connected peers when our addresses change (default: false). */
  readonly pushListenAddrUpdates: boolean
  /** Do not tell peers our listen addresses, only confirmed external ones (default: false). */
  readonly hideListenAddrs: boolean
  /** Largest identify message accepted, in bytes (default: 8192, as js-libp2p). */
  readonly maxMessageSize: number
  /** Timeout of one identify exchange, in ms (default: 10 000). */
  readonly timeout: number
}

/** Defaults. */
export const defaultConfig: Config = Object.freeze({
  protocolVersion: 'ipfs/0.1.0',
  agentVersion: 'peerswarm/0.1.0',
  pushListenAddrUpdates: false,
  hideListenAddrs: false,
  maxMessageSize: 8192,
  timeout: 10_000
})

/** Validate `options` over the defaults; throws `ConfigError` naming the bad field. */
export function config (options: Partial<Config> = {}): Config {
  const result = { ...defaultConfig, ...options }
  for (const field of ['maxMessageSize', 'timeout'] as const) {
    const value = result[field]
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new ConfigError(field, `must be a positive number, got ${String(value)}`)
    }
  }
  return Object.freeze(result)
}
