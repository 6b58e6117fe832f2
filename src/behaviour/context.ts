/**
 * The waker contract shared by behaviours and handlers.
 *
 * @module
 */

/**
 * Wakes whoever polled: the swarm for behaviours, the connection for handlers.
 *
 * @group Writing a behaviour
 */
export interface Waker {
  /** Ask to be polled again soon. Cheap, idempotent, safe to call from anywhere. */
  wake(): void
}

/**
 * Given to every `poll`. A `poll` that returns `undefined` must arrange for `cx.waker.wake()`
 * to be called when it has work again (a timer, an API call, data on a stream); otherwise it
 * is not polled again until something else happens. Forgetting this is the classic bug.
 *
 * @group Writing a behaviour
 */
export interface Context {
  readonly waker: Waker
}
