/**
 * `SwarmConfig`: the swarm's knobs, with rust-libp2p's defaults.
 *
 * @module
 */
import { ConfigError } from '../core/errors.js'
import { checkDelay } from '../core/timers.js'
import { DEFAULT_MAX_STREAM_WINDOW, MAX_STREAM_WINDOW, MIN_STREAM_WINDOW } from '../upgrade/noise-yamux.js'

/**
 * Options of a swarm. Every field is optional in `SwarmBuilder.withSwarmConfig`.
 *
 * @group The swarm
 */
export interface SwarmConfig {
  /**
   * How long a connection stays open once idle, in ms (default: 10 000). A connection is idle
   * when it has no negotiating streams, no active streams (except those marked with
   * `ignoreForKeepAlive`) and no handler's `connectionKeepAlive()` is true. `0` closes idle
   * connections at once; `Infinity` never closes them.
   */
  readonly idleConnectionTimeout: number
  /** Events buffered from the behaviour to one connection's handler (default: 32). */
  readonly notifyHandlerBufferSize: number
  /**
   * Events buffered from one connection's handler to the behaviour beyond the one guaranteed
   * slot (default: 7). When full, the connection stops polling its handler until the
   * application consumes events: memory stays bounded and nothing is lost.
   */
  readonly perConnectionEventBufferSize: number
  /** Addresses dialed concurrently for one dial (default: 8). */
  readonly dialConcurrencyFactor: number
  /** Inbound streams negotiating at once per connection; extra ones are reset (default: 128). */
  readonly maxNegotiatingInboundStreams: number
  /** Timeout of a substream's protocol negotiation, in ms (default: 10 000). */
  readonly substreamNegotiationTimeout: number
  /** Timeout of a connection's dial or upgrade (security + muxer), in ms (default: 10 000). */
  readonly connectionTimeout: number
  /**
   * How long a graceful close waits for each connection's handlers to send what they have
   * queued (`ConnectionHandler.drain`), in ms (default: 2 000). `swarm.close()` and
   * `closeConnection` wait at most this long per connection before closing the muxer; `0`
   * skips draining.
   */
  readonly drainTimeout: number
  /**
   * The most a stream's Yamux receive window may grow to, in bytes (default: 4 MiB, 4 194 304;
   * from 256 KiB, Yamux's initial window, to 2³² − 1). Yamux grows a busy stream's window from
   * 256 KiB up to this, and grants it as data arrives: when a handler stops reading a stream
   * (`stream.pause()`, as pubsub does when the behaviour falls behind), what the remote may still
   * send, up to this much, waits in the stream's buffer. So it trades throughput per stream
   * (at most this much per round trip: 4 MiB is about 40 MiB/s at 100 ms RTT) against the
   * memory a remote can make each paused stream hold. Yamux's own default (as go-yamux's) is
   * 16 MiB. A stream's read buffer limit (4 MiB) is raised to this when it is larger.
   */
  readonly maxStreamWindow: number
}

/**
 * rust-libp2p's defaults.
 *
 * @group The swarm
 */
export const defaultSwarmConfig: SwarmConfig = Object.freeze({
  idleConnectionTimeout: 10_000,
  notifyHandlerBufferSize: 32,
  perConnectionEventBufferSize: 7,
  dialConcurrencyFactor: 8,
  maxNegotiatingInboundStreams: 128,
  substreamNegotiationTimeout: 10_000,
  connectionTimeout: 10_000,
  drainTimeout: 2_000,
  maxStreamWindow: DEFAULT_MAX_STREAM_WINDOW
})

/**
 * Validates `options` over the defaults into a complete frozen config; throws `ConfigError`.
 *
 * @group The swarm
 */
export function swarmConfig (options: Partial<SwarmConfig> = {}): SwarmConfig {
  const config = { ...defaultSwarmConfig, ...options }
  nonNegative(config, 'idleConnectionTimeout', true)
  positiveInteger(config, 'notifyHandlerBufferSize')
  nonNegative(config, 'perConnectionEventBufferSize', false)
  positiveInteger(config, 'dialConcurrencyFactor')
  positiveInteger(config, 'maxNegotiatingInboundStreams')
  positiveFinite(config, 'substreamNegotiationTimeout')
  positiveFinite(config, 'connectionTimeout')
  nonNegative(config, 'drainTimeout', false)
  checkDelay('drainTimeout', config.drainTimeout)
  if (!Number.isInteger(config.perConnectionEventBufferSize)) throw new ConfigError('perConnectionEventBufferSize', 'must be an integer')
  const window = config.maxStreamWindow
  if (typeof window !== 'number' || !Number.isInteger(window) || window < MIN_STREAM_WINDOW || window > MAX_STREAM_WINDOW) {
    throw new ConfigError('maxStreamWindow', `must be an integer number of bytes from ${MIN_STREAM_WINDOW} (256 KiB) to ${MAX_STREAM_WINDOW} (2^32 - 1), got ${String(window)}`)
  }
  return Object.freeze(config)
}

type NumericField = keyof SwarmConfig

function nonNegative (config: SwarmConfig, field: NumericField, allowInfinity: boolean): void {
  const value = config[field]
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || (!allowInfinity && !Number.isFinite(value))) {
    throw new ConfigError(field, `must be a non-negative number, got ${String(value)}`)
  }
}

function positiveFinite (config: SwarmConfig, field: NumericField): void {
  const value = config[field]
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ConfigError(field, `must be a positive number, got ${String(value)}`)
  }
  checkDelay(field, value)
}

function positiveInteger (config: SwarmConfig, field: NumericField): void {
  const value = config[field]
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new ConfigError(field, `must be a positive integer, got ${String(value)}`)
  }
}
