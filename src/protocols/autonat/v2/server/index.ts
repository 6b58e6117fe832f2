/**
 * The AutoNAT v2 server (rust-libp2p's `autonat::v2::server`): dials clients back on a new
 * connection to test the addresses they ask about.
 *
 * @module
 */
export { Behaviour } from './behaviour.js'
export type { ServerEvent as Event, ServerResult as Result } from './behaviour.js'
export { Handler } from './handler.js'
export type { FromBehaviour, ToBehaviour, HandlerInit } from './handler.js'
export { defaultServerConfig as defaultConfig } from '../config.js'
export type { ServerConfig as Config } from '../config.js'
