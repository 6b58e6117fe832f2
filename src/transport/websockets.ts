/**
 * WebSockets, over `@libp2p/websockets` (dials with the global `WebSocket`, which `compat.ts`
 * provides on Node 20).
 *
 * @module
 */
import { webSockets as jsWebSockets } from '@libp2p/websockets'
import type { TransportFactory } from './transport.js'
import type { WebSocketsInit } from '@libp2p/websockets'

/** Options of the WebSockets transport, as `@libp2p/websockets` takes them. */
export type WebSocketsOptions = WebSocketsInit

/** A WebSockets transport factory for `SwarmBuilder.withTransport`. */
export function webSockets (options: WebSocketsOptions = {}): TransportFactory {
  return components => jsWebSockets(options)(components)
}
