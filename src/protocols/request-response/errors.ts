/**
 * Why a request or a response failed, and the codecs' errors.
 *
 * @module
 */
import { PeerswarmError } from '../../core/errors.js'

/**
 * A message is larger than the codec allows; nothing of it was sent, or it was not read.
 *
 * @group Errors
 */
export class MessageTooLargeError extends PeerswarmError {
  constructor (
    /** The limit, in bytes. */
    readonly limit: number,
    /** The message's size in bytes, when known. */
    readonly size?: number,
    cause?: unknown
  ) {
    super('ERR_MESSAGE_TOO_LARGE', `message ${size == null ? '' : `of ${size} bytes `}larger than the limit of ${limit} bytes`, { cause })
  }
}

/**
 * A received message could not be decoded (e.g. not JSON), or a message could not be encoded.
 *
 * @group Errors
 */
export class InvalidMessageError extends PeerswarmError {
  constructor (message: string, cause?: unknown) {
    super('ERR_INVALID_MESSAGE', message, { cause })
  }
}

/**
 * Why an outbound request failed:
 * - `DialFailure`: the peer was not connected and dialing it failed (`cause` is the `DialError`);
 * - `Timeout`: no response within the request's timeout;
 * - `ConnectionClosed`: the connection closed before the response arrived;
 * - `UnsupportedProtocols`: the remote speaks none of our outbound protocols (or we have none);
 * - `Io`: the stream failed: reset, closed early, a message too large or undecodable (`cause`).
 */
export type OutboundFailureKind = 'DialFailure' | 'Timeout' | 'ConnectionClosed' | 'UnsupportedProtocols' | 'Io'

/**
 * An outbound request failed; `kind` says why and `cause` holds the underlying error.
 *
 * @group Errors
 */
export class OutboundFailure extends PeerswarmError {
  constructor (readonly kind: OutboundFailureKind, message: string, cause?: unknown) {
    super(`ERR_OUTBOUND_${snake(kind)}`, message, { cause })
  }
}

/**
 * Why an inbound request failed:
 * - `Timeout`: the request was not read, or not answered, within the timeout;
 * - `ConnectionClosed`: the connection closed before our response was sent;
 * - `UnsupportedProtocols`: reserved, as rust-libp2p: a remote that asks for a protocol we do
 *   not answer gets `na` in the negotiation, and nothing is reported here;
 * - `ResponseOmission`: the application dropped the request (`dropResponse`);
 * - `Io`: the stream failed: reset, closed early, a message too large or undecodable (`cause`).
 */
export type InboundFailureKind = 'Timeout' | 'ConnectionClosed' | 'UnsupportedProtocols' | 'ResponseOmission' | 'Io'

/**
 * An inbound request failed; `kind` says why and `cause` holds the underlying error.
 *
 * @group Errors
 */
export class InboundFailure extends PeerswarmError {
  constructor (readonly kind: InboundFailureKind, message: string, cause?: unknown) {
    super(`ERR_INBOUND_${snake(kind)}`, message, { cause })
  }
}

function snake (kind: string): string {
  return kind.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()
}
