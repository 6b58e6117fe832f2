/**
 * FloodSub's options.
 *
 * @module
 */
import { ConfigError } from '../../core/errors.js'
import type { MessageAuthenticity } from '../pubsub/authenticity.js'
import type { MessageIdFn } from '../pubsub/message.js'

/** The FloodSub protocol id. */
export const PROTOCOL = '/floodsub/1.0.0'

/** FloodSub's options; only `authenticity` is required. */
export interface Config {
  /** StrictSign with the node's key (`MessageAuthenticity.signed(key)`) or StrictNoSign. */
  readonly authenticity: MessageAuthenticity
  /** Message ids (default: `from ‖ seqno` when signed, sha256(data) when not). */
  readonly messageIdFn?: MessageIdFn
  /** Largest frame sent or accepted, in bytes (default: 1 MiB). */
  readonly maxTransmitSize: number
  /** How long a message id is remembered, in ms (default: 120 000, as go-libp2p-pubsub). */
  readonly seenTtl: number
  /** Most message ids remembered (default: 100 000); the oldest go first. */
  readonly seenMaxEntries: number
  /** Deliver our own published messages to ourselves as `Message` events (default: false). */
  readonly subscribeLocalMessages: boolean
  /** `publish` throws `PublishError` `NoPeersSubscribedToTopic` when nobody would get it (default: false). */
  readonly publishRequiresPeers: boolean
  /** Bytes queued per connection before frames are dropped with a `SlowPeer` event (default: 16 MiB). */
  readonly maxQueuedBytes: number
  /** Topics remembered per peer; further subscriptions are ignored (default: 1 024). */
  readonly maxTopicsPerPeer: number
  /** Messages waiting for asynchronous validation at once (default: 1 024). */
  readonly maxPendingValidations: number
}

/** Defaults of everything but `authenticity`. */
export const defaultConfig = Object.freeze({
  maxTransmitSize: 1024 * 1024,
  seenTtl: 120_000,
  seenMaxEntries: 100_000,
  subscribeLocalMessages: false,
  publishRequiresPeers: false,
  maxQueuedBytes: 16 * 1024 * 1024,
  maxTopicsPerPeer: 1024,
  maxPendingValidations: 1024
})

/** Validate `options` over the defaults; throws `ConfigError` naming the bad field. */
export function config (options: Partial<Config> & Pick<Config, 'authenticity'>): Config {
  const result: Config = { ...defaultConfig, ...options }
  if (result.authenticity?.type !== 'Signed' && result.authenticity?.type !== 'Anonymous') {
    throw new ConfigError('authenticity', 'use MessageAuthenticity.signed(key) or MessageAuthenticity.anonymous()')
  }
  for (const field of ['maxTransmitSize', 'seenTtl', 'seenMaxEntries', 'maxQueuedBytes', 'maxTopicsPerPeer', 'maxPendingValidations'] as const) {
    const value = result[field]
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new ConfigError(field, `must be a positive number, got ${String(value)}`)
    }
  }
  return Object.freeze(result)
}
