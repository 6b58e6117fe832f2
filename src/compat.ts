/**
 * What the js-libp2p v3 stack needs from Node 20 that Node 22 and browsers have, with as little
 * reach into the process as we could manage.
 *
 * Imported for its side effect by the Node platform (`node.ts`, which the Node entry point and
 * `peerswarm/testing` load). The browser entry point does not load it: browsers have both
 * features (and `ws` is Node-only).
 *
 * - **`Promise.withResolvers`, installed on the global `Promise` where it is missing (Node 20
 *   only; Node 22 has it, and then nothing is touched).** This is the one global peerswarm
 *   still changes, because it cannot be handed to the code that needs it: `@libp2p/utils`
 *   calls `Promise.withResolvers()` itself in every `byteStream` read (multistream-select on
 *   every stream, Noise's handshake) and in `AbstractMessageStream.onDrain`, and
 *   `@chainsafe/libp2p-yamux` in every ping (also `it-queue`, and `mortice` in js-libp2p's peer
 *   store). Without it every upgrade fails, and the dialer sees only a misleading
 *   `ECONNRESET`. The shim is the standard method (ES2024), installed only when absent, so code
 *   that feature-detects it gets what Node 22 would give it.
 * - **No global `WebSocket`.** `@libp2p/websockets` dials with the global `WebSocket` and takes
 *   no option for another class; peerswarm's WebSockets transport (`transport/websockets.ts`)
 *   hands it `ws`'s class, {@link NodeWebSocket}, for the dial alone (see `webSockets`), so
 *   `globalThis.WebSocket` stays undefined on Node 20. Earlier versions installed it for the
 *   whole process; code that relied on that (a js-libp2p node with `@libp2p/websockets`
 *   in the same process, on Node 20) must set it itself: `globalThis.WebSocket ??= WebSocket`
 *   from `ws`.
 *
 * @module
 */
import { WebSocket } from 'ws'

/** `ws`'s WebSocket class: the Node platform gives it to the WebSockets transport (Node 20 has no global one). */
export const NodeWebSocket = WebSocket as unknown as typeof globalThis.WebSocket

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
