/**
 * The AutoNAT v2 client (rust-libp2p's `autonat::v2::client`): tests our candidate addresses
 * with the servers we are connected to and confirms those they can dial back.
 *
 * @module
 */
export { Behaviour } from './behaviour.js'
export type { ClientEvent as Event, ClientResult as Result } from './behaviour.js'
export { Handler } from './handler.js'
export type { FromBehaviour, ToBehaviour, Probe, HandlerInit } from './handler.js'
export { defaultClientConfig as defaultConfig } from '../config.js'
export type { ClientConfig as Config } from '../config.js'
