/**
 * AutoNAT v2 (`/libp2p/autonat/2/dial-request` and `/libp2p/autonat/2/dial-back`), as
 * rust-libp2p's `autonat::v2`: `client.Behaviour` tests our candidate addresses one at a time,
 * `server.Behaviour` tests other peers' by dialing them back with their nonce.
 *
 * @module
 */
export * as client from './client/index.js'
export * as server from './server/index.js'
export { DIAL_REQUEST_PROTOCOL, DIAL_BACK_PROTOCOL, DIAL_DATA_MIN, DIAL_DATA_MAX } from './config.js'
export { AutonatError } from './errors.js'
export type { AutonatErrorKind } from './errors.js'
export {
  MAX_MESSAGE_SIZE, DIAL_DATA_CHUNK_SIZE, ResponseStatus, DialStatus, MalformedMessageError,
  encodeMessage, decodeMessage, encodeDialBack, decodeDialBack, encodeDialBackResponse, decodeDialBackResponse
} from './message.js'
export type { Message, ResponseStatusCode, DialStatusCode } from './message.js'
