/**
 * DCUtR, Direct Connection Upgrade through Relay (`/libp2p/dcutr`), as rust-libp2p's
 * `libp2p-dcutr`: two peers connected through a relay coordinate over the relayed connection
 * and dial each other at the same moment, so that a TCP simultaneous open goes through both
 * NATs; the punched connection is upgraded as client on the relayed connection's dialer and as
 * server on its listener (`roleOverride`). See docs/nat-traversal.md.
 *
 * @module
 */
export { Behaviour } from './behaviour.js'
export type { Event } from './behaviour.js'
export { Handler } from './handler.js'
export type { FromBehaviour, ToBehaviour, HandlerInit } from './handler.js'
export { PROTOCOL, MAX_ATTEMPTS, MAX_CANDIDATES, defaultConfig } from './config.js'
export type { Config } from './config.js'
export { DcutrError } from './errors.js'
export type { DcutrErrorKind, DcutrFailure } from './errors.js'
export { MAX_MESSAGE_SIZE, HolePunchType, MalformedMessageError, encodeHolePunch, decodeHolePunch } from './message.js'
export type { HolePunch, HolePunchTypeName } from './message.js'
