/**
 * Errors of publishing, shared by FloodSub and GossipSub.
 *
 * @module
 */
import { PeerswarmError } from '../../core/errors.js'

/** Why a publish failed. */
export type PublishErrorKind =
  | 'NotSubscribed'
  | 'NoPeersSubscribedToTopic'
  | 'MessageTooLarge'
  | 'Duplicate'
  /** The key could not sign the message (GossipSub). */
  | 'SigningError'
  /** The configured data transform threw (GossipSub). */
  | 'TransformFailed'
  /**
   * Every recipient's outbound queue is full (GossipSub): the network does not drain as fast
   * as we publish. Nothing was sent; publish again later.
   */
  | 'AllQueuesFull'

/**
 * A message could not be published; `kind` says why.
 *
 * @group Errors
 */
export class PublishError extends PeerswarmError {
  constructor (readonly kind: PublishErrorKind, message: string) {
    super(`ERR_PUBLISH_${kind.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`, message)
  }
}
