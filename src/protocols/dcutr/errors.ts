/**
 * DCUtR's typed errors.
 *
 * @module
 */
import { PeerswarmError } from '../../core/errors.js'

/**
 * Why a hole punch failed, as rust-libp2p's `dcutr::Error`:
 * - `AttemptsExceeded`: every attempt's direct dial failed (the `cause` is the last dial's
 *   error); the relayed connection stays;
 * - `InboundError`: the exchange the remote started failed (we dialed the relayed connection);
 * - `OutboundError`: the exchange we started failed (we accepted the relayed connection),
 *   e.g. the remote does not speak DCUtR.
 *
 * @group Errors
 */
export type DcutrErrorKind = 'AttemptsExceeded' | 'InboundError' | 'OutboundError'

/**
 * What went wrong in an exchange (`InboundError`, `OutboundError`):
 * - `Unsupported`: the remote does not speak `/libp2p/dcutr`;
 * - `NoAddresses`: the remote sent no address we could dial (none, only relayed ones, or none
 *   global under `isGlobal`);
 * - `UnexpectedMessage`: a SYNC where a CONNECT belonged, or the reverse;
 * - `MalformedMessage`: a message that did not decode, or larger than 4 KiB;
 * - `Timeout`: the exchange took longer than `timeout`;
 * - `Io`: the stream failed (reset, closed early);
 * - `DialFailed`: (`AttemptsExceeded` only) the direct dials failed.
 *
 * @group Errors
 */
export type DcutrFailure = 'Unsupported' | 'NoAddresses' | 'UnexpectedMessage' | 'MalformedMessage' | 'Timeout' | 'Io' | 'DialFailed'

/**
 * A hole punch failed; `kind` and `failure` say where and why, `code` is `ERR_DCUTR_<KIND>`
 * (`ERR_DCUTR_ATTEMPTS_EXCEEDED`, `ERR_DCUTR_INBOUND_ERROR`, `ERR_DCUTR_OUTBOUND_ERROR`).
 *
 * @group Errors
 */
export class DcutrError extends PeerswarmError {
  constructor (readonly kind: DcutrErrorKind, readonly failure: DcutrFailure, message: string, cause?: unknown) {
    super(`ERR_DCUTR_${kind.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`, message, { cause })
  }
}
