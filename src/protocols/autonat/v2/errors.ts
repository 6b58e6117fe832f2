/**
 * AutoNAT v2's typed errors.
 *
 * @module
 */
import { PeerswarmError } from '../../../core/errors.js'

/**
 * Why a test of an address did not confirm it:
 * - `AddressNotReachable`: the server dialed it and failed (`E_DIAL_ERROR`): the address is
 *   not reachable from outside;
 * - `DialBackFailed`: the server connected but the dial-back stream failed (`E_DIAL_BACK_ERROR`);
 * - `Refused`: the server would not dial the address (`E_DIAL_REFUSED`) or rejected the request
 *   (`E_REQUEST_REJECTED`, e.g. too busy), or our side refused (too much dial data asked);
 * - `NoDialBack`: the server claimed success but no dial-back with our nonce arrived (rust-libp2p
 *   ignores such a server too);
 * - `InternalError`: the server answered `E_INTERNAL_ERROR`;
 * - `Protocol`: a malformed answer, a stream that failed or timed out, an unsupported protocol.
 *
 * @group Errors
 */
export type AutonatErrorKind = 'AddressNotReachable' | 'DialBackFailed' | 'Refused' | 'NoDialBack' | 'InternalError' | 'Protocol'

/**
 * A test of an address failed (client) or a request could not be served (server); `kind` says
 * why, `code` is `ERR_AUTONAT_<KIND>`.
 *
 * @group Errors
 */
export class AutonatError extends PeerswarmError {
  constructor (readonly kind: AutonatErrorKind, message: string, cause?: unknown) {
    super(`ERR_AUTONAT_${kind.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`, message, { cause })
  }
}
