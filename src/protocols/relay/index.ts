/**
 * Circuit relay v2 (`/libp2p/circuit/relay/0.2.0/hop` and `…/stop`), as rust-libp2p's
 * `libp2p-relay`: `relay.Behaviour` is the relay (hop) side, `relay.client` the transport and
 * behaviour of peers that reserve a slot on a relay and dial each other through it. Relayed
 * connections are limited (2 min and 128 KiB by default): the swarm marks them with
 * `limited: true` in their `ConnectedPoint`. See docs/nat-traversal.md.
 *
 * ```ts
 * import { SwarmBuilder, relay } from 'peerswarm'
 *
 * // A public relay:
 * const relaySwarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(key => new relay.Behaviour(key))
 *   .build()
 * ```
 *
 * @module
 */
export { Behaviour } from './behaviour.js'
export type { Event } from './behaviour.js'
export { Handler, HopRequest } from './handler.js'
export type { CircuitId, FromBehaviour, ToBehaviour, HandlerInit } from './handler.js'
export { HOP_PROTOCOL, STOP_PROTOCOL, MAX_PENDING_STREAMS, defaultConfig } from './config.js'
export type { Config, DenialBound } from './config.js'
export type { RateLimit } from './rate-limiter.js'
export {
  MAX_MESSAGE_SIZE, Status, MalformedMessageError, InvalidVoucherError, VOUCHER_DOMAIN,
  encodeHopMessage, decodeHopMessage, encodeStopMessage, decodeStopMessage, signVoucher, openVoucher
} from './message.js'
export type { StatusCode, Limit, PeerInfo, Reservation, HopMessage, StopMessage, Voucher } from './message.js'
export { CircuitLimitError, CircuitIOError } from './splice.js'
export type { CircuitLimitKind } from './splice.js'
export * as client from './client/index.js'
