/**
 * One timer for many delayed actions: a binary heap ordered by due time, then by insertion,
 * and a single timer armed for the earliest (exact on a virtual clock, a `setTimeout`
 * otherwise). Everything due when it fires runs in that
 * one callback, in order. Times are `performance.now()` milliseconds.
 *
 * @module
 */

import { TimerHeap } from './heap.js'
import { timerAt } from './virtual-time.js'

interface Entry {
  readonly at: number
  readonly seq: number
  readonly run: () => void
}

/** @internal Delayed actions on one timer (see the module). */
export class Scheduler {
  private readonly heap = new TimerHeap<Entry>()
  private seq = 0
  private timer?: { cancel: () => void }
  private armedFor = Infinity
  private stopped = false
  private firing = false

  /** The current time, in ms. */
  now (): number {
    return performance.now()
  }

  /** Actions waiting. */
  get size (): number {
    return this.heap.size
  }

  /** Run `run` at `at` (ms, `performance.now()` time), after everything due earlier or at the same time and scheduled before. */
  at (at: number, run: () => void): void {
    if (this.stopped) return
    this.heap.push({ at, seq: this.seq++, run })
    if (!this.firing && at < this.armedFor) this.arm()
  }

  /** Resolve at `at`, or reject with the signal's reason if it aborts first. */
  async sleepUntil (at: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      let done = false
      const onAbort = (): void => {
        if (done) return
        done = true
        reject(signal?.reason)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.at(at, () => {
        if (done) return
        done = true
        signal?.removeEventListener('abort', onAbort)
        resolve()
      })
    })
  }

  /** Drop every waiting action and the timer; later `at` calls are ignored. */
  stop (): void {
    this.stopped = true
    this.heap.clear()
    this.timer?.cancel()
    this.timer = undefined
    this.armedFor = Infinity
  }

  private arm (): void {
    const first = this.heap.peek()
    if (first == null) return
    this.timer?.cancel()
    this.armedFor = first.at
    this.timer = timerAt(first.at, this.fire)
  }

  private readonly fire = (): void => {
    this.timer = undefined
    this.armedFor = Infinity
    const now = this.now()
    this.firing = true
    // Run what is due; actions scheduled meanwhile for now or earlier run in this pass too.
    try {
      for (let first = this.heap.peek(); first != null && first.at <= now; first = this.heap.peek()) {
        this.heap.pop()
        try {
          first.run()
        } catch (err) {
          queueMicrotask(() => { throw err })
        }
      }
    } finally {
      this.firing = false
    }
    this.arm()
  }
}
