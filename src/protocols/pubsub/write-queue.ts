/**
 * The write queue of the pubsub handler (`stream-handler.ts`), kept apart from it as
 * rust-libp2p's gossipsub keeps `queue.rs` apart from `handler.rs`: the frames the behaviour
 * asked to send, until the handler writes them. Each frame has a priority: `high` (control, our
 * own messages) or `low` (forwarded messages). In order:
 *  1. queueing, bounded in bytes (`maxQueuedBytes`): a `low` frame that does not fit is
 *     dropped; a `high` one pushes `low` ones out of a full queue, oldest first, and is dropped
 *     (its bytes released from the `QueueGauge`) only if it still does not fit;
 *  2. expiry: `low` frames queued more than `lowPriorityDeadline` ms ago are dropped instead of
 *     sent late; `high` ones never expire;
 *  3. coalescing: the frames at the front joined into one chunk of at most `MAX_WRITE` bytes (a
 *     larger frame goes alone): `high` ones while any wait (released from the gauge as they
 *     leave), else `low` ones, so that forwards always go in a write of their own;
 *  4. a `low` frame that carries its message's id key is dropped instead of taken if the remote
 *     does not need that message (`UnwantedIds`: it said IDONTWANT, or sent it to us itself);
 *  5. what was dropped (bytes) and dropped as unwanted (frames, bytes, echoes) is counted until
 *     the handler reports it, and the handler woken at the first of each;
 *  6. discarding: everything goes, the `high` bytes released from the gauge, when the remote
 *     can no longer be written to.
 *
 * @module
 */
import type { QueueGauge, UnwantedIds } from './peer-state.js'

/**
 * Most bytes handed to the stream in one `send` (a larger frame goes alone). Under
 * back-pressure what a `send` was given waits in the stream's buffer, beyond the reach of
 * IDONTWANT and of priorities, so this bounds what can pile up there.
 */
export const MAX_WRITE = 64 * 1024

/** What a {@link WriteQueue} is told by its handler's config (`StreamHandlerConfig`). */
export interface WriteQueueConfig {
  /** Bytes queued before new frames are dropped. */
  readonly maxQueuedBytes: number
  /** Low-priority frames not taken within this many ms are dropped (default: never). */
  readonly lowPriorityDeadline?: number
  /** Released as high-priority bytes leave the queue, are dropped or discarded. */
  readonly gauge?: QueueGauge
  /** Consulted as each `low` frame with an id is about to be taken. */
  readonly unwanted?: UnwantedIds
}

/** A low-priority frame with the time it was queued (and its message's id key). */
interface LowFrame {
  readonly frames: Uint8Array
  readonly at: number
  readonly id?: string
}

/** What {@link WriteQueue.take} hands out: one write, and whether it holds high-priority frames. */
export interface Chunk {
  readonly chunk: Uint8Array
  readonly urgent: boolean
}

/** The frames waiting to be written to one connection's outbound stream. */
export class WriteQueue {
  /** High-priority frames, oldest first. */
  private readonly high: Uint8Array[] = []
  /** Low-priority frames, oldest first. */
  private readonly low: LowFrame[] = []
  /** Bytes queued, of both priorities. */
  private queuedBytes = 0
  /** Bytes dropped and not reported yet. */
  private droppedBytes = 0
  /** Frames dropped as unwanted and not reported yet, their bytes, and how many were echoes. */
  unwantedFrames = 0
  unwantedBytes = 0
  unwantedEchoes = 0

  /** `wake` is called when a drop is first counted since the last report. */
  constructor (private readonly config: WriteQueueConfig, private readonly wake: () => void) {}

  /** Whether no frame waits. */
  get empty (): boolean {
    return this.high.length === 0 && this.low.length === 0
  }

  /** Whether a high-priority frame waits. */
  get urgent (): boolean {
    return this.high.length > 0
  }

  /**
   * Queue high-priority `frames`, pushing low-priority frames out of a full queue; false if
   * they still do not fit and were dropped (their bytes released from the gauge).
   */
  pushHigh (frames: Uint8Array): boolean {
    const size = frames.byteLength
    const max = this.config.maxQueuedBytes
    // Control and our own messages push forwarded messages out of a full queue.
    while (this.queuedBytes + size > max && this.low.length > 0) {
      const evicted = this.low.shift() as LowFrame
      this.queuedBytes -= evicted.frames.byteLength
      this.drop(evicted.frames.byteLength)
    }
    if (this.queuedBytes + size > max) {
      this.config.gauge?.release(size)
      this.drop(size)
      return false
    }
    this.high.push(frames)
    this.queuedBytes += size
    return true
  }

  /**
   * Queue low-priority `frames`, whose message's id key is `id` if they carry one message we
   * pass on; false if they do not fit and were dropped.
   */
  pushLow (frames: Uint8Array, id: string | undefined): boolean {
    const size = frames.byteLength
    if (this.queuedBytes + size > this.config.maxQueuedBytes) {
      this.drop(size)
      return false
    }
    this.low.push({ frames, at: Date.now(), id })
    this.queuedBytes += size
    return true
  }

  /**
   * Frames from the front of the queues joined up to `MAX_WRITE` bytes: high-priority ones
   * (`urgent`) while any wait, else low-priority ones; those past their deadline, or whose
   * message the remote no longer wants, are dropped on the way. Undefined if none is left.
   */
  take (): Chunk | undefined {
    const deadline = this.config.lowPriorityDeadline
    if (deadline != null) {
      const oldest = Date.now() - deadline
      while (this.low.length > 0 && this.low[0].at < oldest) {
        const expired = this.low.shift() as LowFrame
        this.queuedBytes -= expired.frames.byteLength
        this.drop(expired.frames.byteLength)
      }
    }
    const parts: Uint8Array[] = []
    let size = 0
    const room = (next: Uint8Array | undefined): next is Uint8Array => next != null && (parts.length === 0 || size + next.byteLength <= MAX_WRITE)
    while (room(this.high[0])) {
      const next = this.high.shift() as Uint8Array
      parts.push(next)
      size += next.byteLength
    }
    this.config.gauge?.release(size)
    const urgent = parts.length > 0
    // Forwarded frames only once no high-priority frame is waiting, and in a write of their own.
    const unwanted = this.config.unwanted
    while (!urgent && room(this.low[0]?.frames)) {
      const next = this.low.shift() as LowFrame
      if (next.id !== undefined && unwanted?.has(next.id) === true) {
        this.queuedBytes -= next.frames.byteLength
        if (this.unwantedFrames === 0) this.wake()
        this.unwantedFrames++
        this.unwantedBytes += next.frames.byteLength
        if (unwanted.echo(next.id)) this.unwantedEchoes++
        continue
      }
      parts.push(next.frames)
      size += next.frames.byteLength
    }
    if (parts.length === 0) return undefined
    this.queuedBytes -= size
    if (parts.length === 1) return { chunk: parts[0], urgent }
    const chunk = new Uint8Array(size)
    let offset = 0
    for (const part of parts) {
      chunk.set(part, offset)
      offset += part.byteLength
    }
    return { chunk, urgent }
  }

  /** The bytes dropped since the last call. */
  takeDropped (): number {
    const droppedBytes = this.droppedBytes
    this.droppedBytes = 0
    return droppedBytes
  }

  /** The unwanted frames counted so far have been reported. */
  clearUnwanted (): void {
    this.unwantedFrames = 0
    this.unwantedBytes = 0
    this.unwantedEchoes = 0
  }

  /** Drop every frame, releasing the high-priority bytes from the gauge. */
  discard (): void {
    for (const frames of this.high) this.config.gauge?.release(frames.byteLength)
    this.high.length = 0
    this.low.length = 0
    this.queuedBytes = 0
  }

  private drop (bytes: number): void {
    if (this.droppedBytes === 0) this.wake()
    this.droppedBytes += bytes
  }
}
