/**
 * The relay's side of a circuit: the source's hop stream and the destination's stop stream
 * joined, with the circuit's byte and time limits.
 *
 * @module
 */
import { PeerswarmError, toError } from '../../core/errors.js'
import type { Stream, StreamMessageEvent } from '@libp2p/interface'

/** Which limit a circuit ran into. */
export type CircuitLimitKind = 'Duration' | 'Data'

/** A circuit went over its time or byte limit; the relay reset both of its streams. */
export class CircuitLimitError extends PeerswarmError {
  constructor (readonly kind: CircuitLimitKind, message: string) {
    super(`ERR_RELAY_CIRCUIT_${kind.toUpperCase()}_LIMIT`, message)
  }
}

/** A circuit's streams failed (one was reset, or writing to one failed). */
export class CircuitIOError extends PeerswarmError {
  constructor (message: string, cause?: unknown) {
    super('ERR_RELAY_CIRCUIT_IO', message, { cause })
  }
}

/** The limits of one circuit. */
export interface SpliceLimits {
  /** ms. */
  readonly maxDuration: number
  /** Bytes, both directions together. */
  readonly maxBytes: number
}

/** A running circuit. */
export interface Splice {
  /** Resolves when both sides have closed; rejects with the error that ended it. */
  readonly done: Promise<void>
  /** Bytes relayed so far, both directions together. */
  readonly bytes: () => number
  /** End the circuit now, resetting both streams. */
  readonly abort: (err: Error) => void
}

/**
 * Relay between `a` and `b` until both have closed their side, either is reset, or a limit
 * is reached (both are then reset). At most `maxBytes` bytes cross: a chunk that would go over
 * is not forwarded. A full side pauses the other (its remote then sees the muxer's back-pressure).
 */
export function splice (a: Stream, b: Stream, limits: SpliceLimits): Splice {
  let bytes = 0
  let finished = false
  let ended = 0
  let settle!: (err?: Error) => void
  const done = new Promise<void>((resolve, reject) => {
    settle = (err) => { if (err == null) resolve(); else reject(err) }
  })
  const cleanups: Array<() => void> = []
  const timer = setTimeout(() => {
    fail(new CircuitLimitError('Duration', `the circuit reached its duration limit of ${limits.maxDuration} ms`))
  }, limits.maxDuration)

  const finish = (err?: Error): void => {
    if (finished) return
    finished = true
    clearTimeout(timer)
    for (const cleanup of cleanups) cleanup()
    settle(err)
  }
  const fail = (err: Error): void => {
    if (finished) return
    // Settle first: aborting a stream emits its 'close' at once.
    finish(err)
    a.abort(err)
    b.abort(err)
  }

  const pipe = (from: Stream, to: Stream): void => {
    const onMessage = (evt: StreamMessageEvent): void => {
      if (finished) return
      const size = evt.data.byteLength
      if (bytes + size > limits.maxBytes) {
        fail(new CircuitLimitError('Data', `the circuit reached its data limit of ${limits.maxBytes} bytes`))
        return
      }
      bytes += size
      let more: boolean
      try {
        more = to.send(evt.data)
      } catch (err) {
        fail(new CircuitIOError('writing to a circuit stream failed', err))
        return
      }
      if (!more && from.readStatus === 'readable') {
        from.pause()
        const onDrain = (): void => {
          to.removeEventListener('drain', onDrain)
          if (!finished && from.readStatus === 'paused') from.resume()
        }
        to.addEventListener('drain', onDrain)
      }
    }
    const onEnd = (): void => {
      // The sender is done and all it sent has been forwarded: pass its end on, and finish
      // once both directions are done.
      if (finished) return
      to.close().then(() => {
        if (++ended === 2) finish()
      }, (err: unknown) => { fail(new CircuitIOError('closing a circuit stream failed', err)) })
    }
    const onClose = (evt: Event): void => {
      const error = (evt as Event & { error?: Error }).error
      if (error != null) fail(new CircuitIOError(`a circuit stream was reset: ${error.message}`, error))
    }
    from.addEventListener('message', onMessage)
    from.addEventListener('end', onEnd)
    from.addEventListener('close', onClose)
    cleanups.push(() => {
      from.removeEventListener('message', onMessage)
      from.removeEventListener('end', onEnd)
      from.removeEventListener('close', onClose)
    })
    // The remote may have closed its side before we started: 'end' was emitted already, and
    // what it sent is still buffered, delivered on a microtask now that we listen.
    if (from.readableEnded) queueMicrotask(onEnd)
  }

  pipe(a, b)
  pipe(b, a)
  return { done, bytes: () => bytes, abort: (err) => { fail(toError(err)) } }
}
