/**
 * Bytes handed to TCP sockets in this process: `net.Socket.prototype.write` wrapped once, so
 * every protocol, Noise and Yamux byte counts, control and heartbeat traffic included.
 *
 * @module
 */
import net from 'node:net'

let total = 0
let installed = false

/** Start counting (idempotent). */
export function countSocketWrites (): void {
  if (installed) return
  installed = true
  const proto = net.Socket.prototype as unknown as { write: (chunk: unknown, ...rest: unknown[]) => boolean }
  const write = proto.write
  proto.write = function (this: net.Socket, chunk: unknown, ...rest: unknown[]): boolean {
    total += typeof chunk === 'string' ? Buffer.byteLength(chunk) : (chunk as Uint8Array).byteLength
    return write.call(this, chunk, ...rest)
  }
}

/** Bytes written since the last `resetWireBytes()`. */
export function wireBytes (): number {
  return total
}

/** Count from zero again. */
export function resetWireBytes (): void {
  total = 0
}
