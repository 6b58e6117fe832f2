/**
 * `ActionQueue`: the `ToSwarm` actions a behaviour has decided on and the swarm has not yet
 * taken, with the waker that tells the swarm about them. Nearly every behaviour needs one;
 * using this one gets the waker right (the classic bug is queuing an action after `poll`
 * returned `undefined` and never waking the swarm).
 *
 * ```ts
 * import { ActionQueue } from 'peerswarm'
 * import type { Context } from 'peerswarm'
 *
 * // In a behaviour whose events are strings and whose handlers take nothing:
 * const actions = new ActionQueue<string, never>()
 * actions.generate('hello')                        // wakes the swarm if it waits
 * const poll = (cx: Context) => actions.poll(cx)   // the behaviour's poll
 * ```
 *
 * @module
 */
import type { Context, Waker } from './context.js'
import type { ToSwarm } from './network-behaviour.js'

/**
 * A first-in, first-out queue of `ToSwarm` actions. {@link push} wakes the swarm if it is
 * waiting; {@link poll} hands out the oldest action and keeps the context's waker. Unbounded:
 * a behaviour that queues on a remote's behalf bounds it by checking {@link length} first.
 *
 * @group Toolkit for protocols
 */
export class ActionQueue<TEvent, TToHandler> {
  private items: Array<ToSwarm<TEvent, TToHandler> | undefined> = []
  private head = 0
  private waker?: Waker

  /** Actions waiting for the swarm. */
  get length (): number {
    return this.items.length - this.head
  }

  /** Queue `action` and wake the swarm. */
  push (action: ToSwarm<TEvent, TToHandler>): void {
    this.items.push(action)
    this.waker?.wake()
  }

  /** Queue a `GenerateEvent` of `event` (an event for the application) and wake the swarm. */
  generate (event: TEvent): void {
    this.push({ type: 'GenerateEvent', event })
  }

  /** Queue a `NotifyHandler` of `event` for `peerId`'s `handler` and wake the swarm. */
  notifyHandler (peerId: ToSwarmNotify<TToHandler>['peerId'], handler: ToSwarmNotify<TToHandler>['handler'], event: TToHandler): void {
    this.push({ type: 'NotifyHandler', peerId, handler, event })
  }

  /**
   * The oldest action, or `undefined` when there is none; keeps `cx.waker` either way, so
   * the next {@link push} (or {@link wake}) wakes the swarm. Call it from the behaviour's
   * `poll`, after any other work the behaviour does there.
   */
  poll (cx: Context): ToSwarm<TEvent, TToHandler> | undefined {
    this.waker = cx.waker
    if (this.head === this.items.length) return undefined
    const action = this.items[this.head]
    this.items[this.head++] = undefined
    // Compact once the taken half dominates, so that the array does not grow forever.
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return action
  }

  /** Wake the swarm without queuing anything (the behaviour has other work for its `poll`). */
  wake (): void {
    this.waker?.wake()
  }

  /** Drop every queued action (e.g. when the behaviour shuts down). */
  clear (): void {
    this.items = []
    this.head = 0
  }
}

type ToSwarmNotify<TToHandler> = Extract<ToSwarm<never, TToHandler>, { type: 'NotifyHandler' }>
