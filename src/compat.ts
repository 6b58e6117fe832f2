/**
 * Node 20 shims for what the js-libp2p v3 stack expects from the platform.
 *
 * Imported for its side effects by the Node platform (`node.ts`, loaded by the Node entry point
 * and `peerswarm/testing`); every shim is a no-op where Node already provides the feature
 * (Node >= 22). The browser entry point does not load it: browsers have both, and `ws` is
 * Node-only.
 *
 * - `Promise.withResolvers`: used by `@libp2p/utils` on every multistream-select round and by
 *   Yamux. Without it every upgrade fails and the dialer only sees a misleading `ECONNRESET`.
 * - `globalThis.WebSocket`: `@libp2p/websockets` dials with `new WebSocket(url)`.
 *
 * @module
 */
import { WebSocket as WsWebSocket } from 'ws'

interface PromiseWithResolversShim {
  withResolvers?: <T>() => PromiseWithResolvers<T>
}

const promiseCtor = Promise as unknown as PromiseWithResolversShim
if (typeof promiseCtor.withResolvers !== 'function') {
  promiseCtor.withResolvers = function withResolvers<T> (): PromiseWithResolvers<T> {
    let resolve!: (value: T | PromiseLike<T>) => void
    let reject!: (reason?: unknown) => void
    const promise = new Promise<T>((res, rej) => {
      resolve = res
      reject = rej
    })
    return { promise, resolve, reject }
  }
}

const globals = globalThis as { WebSocket?: unknown }
if (typeof globals.WebSocket !== 'function') {
  globals.WebSocket = WsWebSocket
}
