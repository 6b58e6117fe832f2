/**
 * Application validation of received messages.
 *
 * @module
 */
import type { Message } from './message.js'
import type { PeerId } from '@libp2p/interface'

/**
 * What a validator decides: `accept` (deliver and forward), `reject` (drop and count against
 * the peer that sent it), `ignore` (drop without blame).
 */
export type ValidationResult = 'accept' | 'reject' | 'ignore'

/** Validates a message of one topic, synchronously or not. */
export type Validator = (message: Message, propagationSource: PeerId) => ValidationResult | Promise<ValidationResult>
