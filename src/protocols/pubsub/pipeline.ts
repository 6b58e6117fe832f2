/**
 * What happens to a received message, in the order that keeps the hot path cheap and the
 * seen-cache honest (as go-libp2p-pubsub):
 *  1. structural checks against the signature policy (no crypto);
 *  2. the message id, from cheap fields, and a duplicate check: known ids stop here, so only
 *     the first copy of a message is ever verified (with `fastIdKey`, this comes first of all,
 *     before anything is parsed);
 *  3. a message in our own name from a remote is rejected;
 *  4. signature verification; a forged copy is rejected and *not* recorded as seen, so it
 *     cannot block the honest copy;
 *  5. recorded as seen, and `onFirstCopy` told (GossipSub sends IDONTWANT there);
 *  6. the topic's validator, if any. A message turned away unjudged because too many
 *     asynchronous validations are pending is forgotten again, so that a flood of messages
 *     to validate cannot make an honest peer's later copy count as a duplicate.
 * Outcomes are reported through `onOutcome`, at once or when an asynchronous step settles.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { describe, toError } from '../../core/errors.js'
import { InvalidMessageError } from './authenticity.js'
import { messageIdKey, toMessage } from './message.js'
import type { MessageChecker, RejectReason } from './authenticity.js'
import type { Message, MessageId, MessageIdFn } from './message.js'
import type { RawMessage } from './rpc.js'
import type { SeenCache } from './seen-cache.js'
import type { TopicHash } from './topic.js'
import type { ValidationResult, Validator } from './validation.js'
import type { PeerId } from '@libp2p/interface'

const log = logger('peerswarm:pubsub')

/** What became of a received message. */
export type Outcome =
  | {
    readonly type: 'Accepted'
    readonly id: MessageId
    readonly idKey: string
    readonly raw: RawMessage
    readonly message: Message
    readonly source: PeerId
  }
  | {
    readonly type: 'Rejected'
    readonly reason: RejectReason
    readonly error: Error
    readonly raw: RawMessage
    readonly source: PeerId
    /** Set when the message was recorded as seen before it was rejected (by its validator). */
    readonly idKey?: string
  }
  | {
    readonly type: 'Ignored'
    readonly id: MessageId
    readonly source: PeerId
    /** Set when the validator ignored it (rather than a bound being hit before validation). */
    readonly idKey?: string
  }

/** What the pipeline needs. */
export interface PipelineInit {
  readonly checker: MessageChecker
  readonly seen: SeenCache
  readonly messageId: MessageIdFn
  readonly validators: ReadonlyMap<TopicHash, Validator>
  /**
   * The id's map key straight from the wire bytes, if cheaper than `messageId` (it must give
   * the same key): lets duplicates be dropped before anything is parsed.
   */
  readonly fastIdKey?: (raw: RawMessage) => string | undefined
  /** Our peer id, to reject messages in our name (signed topics). */
  readonly localPeerId?: PeerId
  /** Messages waiting for an asynchronous step at once; more are ignored (default 1024). */
  readonly maxPending?: number
  /**
   * Told of each first copy with a valid signature, before the validator runs (GossipSub v1.2
   * announces large messages by IDONTWANT there, as js-libp2p does).
   */
  readonly onFirstCopy?: (first: { readonly id: MessageId, readonly idKey: string, readonly raw: RawMessage, readonly topic: TopicHash, readonly source: PeerId }) => void
  /** Told of each duplicate dropped, with the key of its id and who sent it. */
  readonly onDuplicate?: (idKey: string, source: PeerId) => void
  /** Told what became of each message that was not a duplicate. */
  readonly onOutcome: (outcome: Outcome) => void
}

/** The shared receive path of FloodSub and GossipSub. */
export class InboundPipeline {
  /** Messages waiting for an asynchronous signature check or validator. */
  private pending = 0
  /** Duplicates dropped so far (for metrics and tests). */
  duplicates = 0

  constructor (private readonly init: PipelineInit) {}

  /** Run `raw`, received from `source`, through the pipeline. */
  process (raw: RawMessage, source: PeerId): void {
    const { checker, seen, onOutcome } = this.init
    const fastKey = this.init.fastIdKey?.(raw)
    if (fastKey !== undefined && seen.has(fastKey)) {
      this.duplicate(fastKey, source)
      return
    }
    let checked
    try {
      checked = checker.check(raw)
    } catch (err) {
      this.reject(raw, source, err)
      return
    }
    const message = toMessage(raw, checked.topic)
    const id = this.init.messageId(message)
    const idKey = messageIdKey(id)
    if (seen.has(idKey)) {
      this.duplicate(idKey, source)
      return
    }
    if (this.init.localPeerId != null && checked.author?.equals(this.init.localPeerId) === true) {
      this.reject(raw, source, new InvalidMessageError('SelfOrigin', 'a message in our name from a remote'))
      return
    }
    const afterSignature = (valid: boolean): void => {
      if (!valid) {
        this.reject(raw, source, new InvalidMessageError('InvalidSignature', 'invalid signature'))
        return
      }
      // A copy verified meanwhile wins; this one is a duplicate.
      if (!seen.add(idKey)) {
        this.duplicate(idKey, source)
        return
      }
      this.init.onFirstCopy?.({ id, idKey, raw, topic: message.topic, source })
      this.validate(message, source, (result) => {
        if (result === 'accept') onOutcome({ type: 'Accepted', id, idKey, raw, message, source })
        else if (result === 'ignore') onOutcome({ type: 'Ignored', id, source, idKey })
        else this.reject(raw, source, new InvalidMessageError('ValidationFailed', 'rejected by the topic validator'), idKey)
      }, () => {
        // Turned away unjudged: forget it, so that another copy (an honest peer's) is judged.
        seen.delete(idKey)
        onOutcome({ type: 'Ignored', id, source })
      })
    }
    if (checked.author == null) {
      afterSignature(true)
      return
    }
    let verified: boolean | Promise<boolean>
    try {
      verified = checker.verify(raw, checked.author)
    } catch (err) {
      this.reject(raw, source, err)
      return
    }
    const ignore = (): void => { onOutcome({ type: 'Ignored', id, source }) }
    this.settle(verified, afterSignature, ignore, ignore)
  }

  /** Run the topic's validator; `overLimit` if it is asynchronous and too many are pending. */
  private validate (message: Message, source: PeerId, done: (result: ValidationResult) => void, overLimit: () => void): void {
    const validator = this.init.validators.get(message.topic)
    if (validator == null) {
      done('accept')
      return
    }
    let result: ValidationResult | Promise<ValidationResult>
    try {
      result = validator(message, source)
    } catch (err) {
      log('validator of %s threw, ignoring the message: %s', message.topic, describe(err))
      done('ignore')
      return
    }
    this.settle(result, done, overLimit, () => { done('ignore') })
  }

  /**
   * Continue with `value` now, or when it settles; over the pending bound, give up at once
   * (`overLimit`); `failed` if the promise rejects.
   */
  private settle<T> (value: T | Promise<T>, next: (value: T) => void, overLimit: () => void, failed: () => void): void {
    if (!(value instanceof Promise)) {
      next(value)
      return
    }
    if (this.pending >= (this.init.maxPending ?? 1024)) {
      log('too many messages waiting for asynchronous checks, ignoring one')
      value.catch(() => {})
      overLimit()
      return
    }
    this.pending++
    value.then((settled) => {
      this.pending--
      next(settled)
    }, (err: unknown) => {
      this.pending--
      log('asynchronous check failed, ignoring the message: %s', describe(err))
      failed()
    })
  }

  private duplicate (idKey: string, source: PeerId): void {
    this.duplicates++
    this.init.onDuplicate?.(idKey, source)
  }

  private reject (raw: RawMessage, source: PeerId, err: unknown, idKey?: string): void {
    const error = toError(err)
    const reason = err instanceof InvalidMessageError ? err.reason : 'ValidationFailed'
    this.init.onOutcome({ type: 'Rejected', reason, error, raw, source, idKey })
  }
}
