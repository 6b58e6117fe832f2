/**
 * One timer for many delayed actions: a binary heap ordered by due time, then by insertion,
 * and a single timer armed for the earliest (exact on a virtual clock, a `setTimeout`
 * otherwise). Everything due when it fires runs in that
 * one callback, in order. Times are `performance.now()` milliseconds.
 *
 * @module
 */

import { timerAt } from './virtual-time.js'

interface Entry {
  readonly at: number
  readonly seq: number
  readonly run: () => void
}

/** @internal Delayed actions on one timer (see the module). */
export class Scheduler {
  private readonly heap: Entry[] = []
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
    return this.heap.length
  }

  /** Run `run` at `at` (ms, `performance.now()` time), after everything due earlier or at the same time and scheduled before. */
  at (at: number, run: () => void): void {
    if (this.stopped) return
    this.push({ at, seq: this.seq++, run })
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
    this.heap.length = 0
    this.timer?.cancel()
    this.timer = undefined
    this.armedFor = Infinity
  }

  private arm (): void {
    const first = this.heap[0]
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
      for (let first = this.heap[0]; first != null && first.at <= now; first = this.heap[0]) {
        this.pop()
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

  private push (entry: Entry): void {
    const heap = this.heap
    heap.push(entry)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!before(heap[i], heap[parent])) break
      const x = heap[i]
      heap[i] = heap[parent]
      heap[parent] = x
      i = parent
    }
  }

  private pop (): void {
    const heap = this.heap
    const last = heap.pop()
    if (last == null || heap.length === 0) return
    heap[0] = last
    let i = 0
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let smallest = i
      if (left < heap.length && before(heap[left], heap[smallest])) smallest = left
      if (right < heap.length && before(heap[right], heap[smallest])) smallest = right
      if (smallest === i) break
      const x = heap[i]
      heap[i] = heap[smallest]
      heap[smallest] = x
      i = smallest
    }
  }
}

function before (a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq)
}
