/**
 * The binary heap of the simulation's timers: entries ordered by due time, then by the order
 * they were made in (`seq`), so that equal times run first-come first-served.
 *
 * @module
 */

/** What the heap orders: a due time and a tie-breaking sequence number. */
export interface Timed {
  readonly at: number
  readonly seq: number
}

/** @internal A min-heap of {@link Timed} entries, earliest first. */
export class TimerHeap<E extends Timed> {
  private readonly heap: E[] = []

  /** Entries held. */
  get size (): number {
    return this.heap.length
  }

  /** The earliest entry, left in place. */
  peek (): E | undefined {
    return this.heap[0]
  }

  push (entry: E): void {
    const heap = this.heap
    heap.push(entry)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = heap[parent]
      if (!earlier(entry, p)) break
      heap[i] = p
      i = parent
    }
    heap[i] = entry
  }

  /** Remove and return the earliest entry. */
  pop (): E | undefined {
    const heap = this.heap
    const top = heap[0]
    if (top == null) return undefined
    const last = heap.pop() as E
    if (heap.length > 0) {
      heap[0] = last
      this.siftDown(0)
    }
    return top
  }

  clear (): void {
    this.heap.length = 0
  }

  /** Keep only the entries `keep` accepts, in heap order again (O(n)). */
  retain (keep: (entry: E) => boolean): void {
    const heap = this.heap
    let n = 0
    for (const entry of heap) if (keep(entry)) heap[n++] = entry
    heap.length = n
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i)
  }

  private siftDown (start: number): void {
    const heap = this.heap
    const entry = heap[start]
    let i = start
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let smallest = -1
      let best = entry
      if (left < heap.length && earlier(heap[left], best)) { smallest = left; best = heap[left] }
      if (right < heap.length && earlier(heap[right], best)) { smallest = right; best = heap[right] }
      if (smallest === -1) break
      heap[i] = best
      i = smallest
    }
    heap[i] = entry
  }
}

function earlier (a: Timed, b: Timed): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq)
}
