/**
 * The identify protocol: `identify.Behaviour`, `identify.Event`, `identify.Info`.
 *
 * @module
 */
export { Behaviour } from './behaviour.js'
export type { Event } from './behaviour.js'
export { Handler } from './handler.js'
export type { FromBehaviour, ToBehaviour, LocalIdentity } from './handler.js'
export { InvalidIdentifyError, encodeInfo, decodeInfo } from './message.js'
export type { Info } from './message.js'
export { PROTOCOL, PUSH_PROTOCOL, defaultConfig } from './config.js'
export type { Config } from './config.js'
