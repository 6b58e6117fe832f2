/**
 * The `/ipfs/ping/1.0.0` protocol: `ping.Behaviour`, `ping.Event`, `ping.Config`.
 *
 * @module
 */
export { Behaviour } from './behaviour.js'
export type { Event } from './behaviour.js'
export { Handler, PingFailure } from './handler.js'
export type { FailureKind, FromBehaviour, ToBehaviour, HandlerEvent } from './handler.js'
export { PROTOCOL, defaultConfig } from './config.js'
export type { Config } from './config.js'
