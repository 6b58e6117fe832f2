/**
 * WebSockets, over `@libp2p/websockets`.
 *
 * `@libp2p/websockets` dials with the global `WebSocket` (browsers and Node 22 have one) and
 * takes no option for another class. Where there is none (Node 20), the Node platform gives us
 * `ws`'s class ({@link useWebSocketClass}) and each dial borrows the global name for the one
 * synchronous call that constructs its socket (`_connect` of `@libp2p/websockets` 10.1.21 runs
 * `new WebSocket(url)` before its first `await`), putting back what was there right after: no
 * other code runs in between, so the process never sees a global `WebSocket` of ours.
 *
 * @module
 */
import { webSockets as jsWebSockets } from '@libp2p/websockets'
import type { TransportFactory } from './transport.js'
import type { Transport } from '@libp2p/interface'
import type { WebSocketsInit } from '@libp2p/websockets'

/**
 * Options of the WebSockets transport, as `@libp2p/websockets` takes them.
 *
 * @group Transports
 */
export type WebSocketsOptions = WebSocketsInit

/** The class dials use when the platform has no global `WebSocket`; set by the Node platform. */
let fallbackClass: typeof globalThis.WebSocket | undefined

/** @internal Give dials a WebSocket class for platforms without a global one (Node 20). */
export function useWebSocketClass (webSocketClass: typeof globalThis.WebSocket): void {
  fallbackClass = webSocketClass
}

/**
 * A WebSockets transport factory for `SwarmBuilder.withTransport`.
 *
 * @group Transports
 */
export function webSockets (options: WebSocketsOptions = {}): TransportFactory {
  return components => withWebSocketClass(jsWebSockets(options)(components))
}

/** `@libp2p/websockets`' transport, as far as its dial is concerned. */
interface Dialer {
  _connect?: (this: Transport, ...args: unknown[]) => Promise<unknown>
}

/** `transport`, whose dials construct their socket with the fallback class when there is no global `WebSocket`. */
function withWebSocketClass (transport: Transport): Transport {
  const dialer = transport as Transport & Dialer
  const connect = dialer._connect
  if (typeof connect !== 'function') return transport
  dialer._connect = function (this: Transport, ...args: unknown[]): Promise<unknown> {
    const globals = globalThis as { WebSocket?: unknown }
    const webSocketClass = fallbackClass
    if (typeof globals.WebSocket === 'function' || webSocketClass == null) return connect.apply(this, args)
    const before = Object.getOwnPropertyDescriptor(globalThis, 'WebSocket')
    Object.defineProperty(globalThis, 'WebSocket', { value: webSocketClass, configurable: true, writable: true })
    try {
      return connect.apply(this, args)
    } finally {
      if (before != null) Object.defineProperty(globalThis, 'WebSocket', before)
      else delete globals.WebSocket
    }
  }
  return transport
}
