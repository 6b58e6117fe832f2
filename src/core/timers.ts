/**
 * Timers: the one bound every timer of the library obeys, and deadlines that combine with a
 * caller's signal.
 *
 * @module
 */
import { ConfigError } from './errors.js'

/** setTimeout's longest delay, in ms (2^31 − 1, about 24.8 days); Node fires longer ones after 1 ms. */
export const MAX_TIMER_DELAY = 2 ** 31 - 1

/**
 * @internal Throws a `ConfigError` naming `field` when `ms` is longer than a timer can wait
 * ({@link MAX_TIMER_DELAY}). Other checks (positive, finite) are the caller's.
 */
export function checkDelay (field: string, ms: number): void {
  if (ms > MAX_TIMER_DELAY) throw new ConfigError(field, `must be at most ${MAX_TIMER_DELAY} ms (about 24.8 days)`)
}

/** @internal A signal that aborts at a deadline or with its parent, and the way to let it go. */
export interface Deadline {
  /** Aborts with a `TimeoutError` after the delay, or with the parent's reason. */
  readonly signal: AbortSignal
  /** Stops the timer and leaves the parent: call it once the step is done. */
  readonly clear: () => void
}

/**
 * @internal An abort signal that fires after `ms`, or when `parent` aborts.
 *
 * Built on `setTimeout` and one listener, not on `AbortSignal.timeout` and `AbortSignal.any`:
 * on Node 20 a composite of `AbortSignal.any` does not keep its timeout signal alive, so after
 * a garbage collection it may never fire (nodejs/node#57736); fake and virtual clocks drive
 * `setTimeout`; and `clear` frees the timer and the parent's listener at once, where a timeout
 * signal's timer lives on to its end.
 */
export function deadline (ms: number, parent?: AbortSignal): Deadline {
  const controller = new AbortController()
  if (parent?.aborted === true) {
    controller.abort(parent.reason)
    return { signal: controller.signal, clear: () => {} }
  }
  const onParent = (): void => { finish(); controller.abort(parent?.reason) }
  const timer = setTimeout(() => {
    finish()
    controller.abort(new DOMException(`timed out after ${ms} ms`, 'TimeoutError'))
  }, ms)
  parent?.addEventListener('abort', onParent, { once: true })
  function finish (): void {
    clearTimeout(timer)
    parent?.removeEventListener('abort', onParent)
  }
  return { signal: controller.signal, clear: finish }
}

/**
 * @internal Run `task` with a {@link deadline}'s signal (after `ms`, or when `parent` aborts),
 * and let the deadline go as soon as `task` settles: nothing of it outlives the step.
 */
export async function withDeadline<T> (ms: number, task: (signal: AbortSignal) => Promise<T>, parent?: AbortSignal): Promise<T> {
  const timeout = deadline(ms, parent)
  try {
    return await task(timeout.signal)
  } finally {
    timeout.clear()
  }
}
