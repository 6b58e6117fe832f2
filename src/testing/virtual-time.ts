/**
 * Virtual time for simulations, as a discrete-event simulator runs: while a body runs, the
 * process's clock (`Date.now`, `performance.now`), its timers (`setTimeout`, `setInterval`,
 * `setImmediate`, `AbortSignal.timeout`) and `Math.random` (seeded) are the simulation's. The
 * clock stands still while code runs and jumps to the next timer when nothing else is left to
 * do, so computing takes no simulated time and a minute of simulated silence takes none of
 * the machine's.
 *
 * Everything between two timers runs as usual: promises, `queueMicrotask`,
 * `process.nextTick`. The driver runs each callback in a real `setImmediate` of its own, so
 * the microtasks of one settle before the next runs, as in Node; the real event loop turns
 * (and real I/O, a thread-pool job, settles) every 32 callbacks and whenever nothing virtual
 * is left before the clock would stand idle. Like Node, a `setTimeout` of less than 1 ms
 * waits 1 ms.
 *
 * Only one virtual clock can be installed at a time, and nothing else should run in the
 * process meanwhile: it takes over the globals.
 *
 * @module
 */
import { PeerswarmError } from '../core/errors.js'
import { TimerHeap } from './heap.js'
import { Random } from './random.js'

/**
 * The simulation cannot progress: no timer is due and the body has not settled.
 *
 * @group Errors
 */
export class SimulationStalledError extends PeerswarmError {
  constructor (waitedMs: number) {
    super('ERR_SIMULATION_STALLED', `nothing was scheduled for ${waitedMs} ms of real time and the simulation has not finished (a deadlock, or waiting on something outside the simulation)`)
  }
}

/**
 * The virtual clock passed its `timeLimit` before the body settled.
 *
 * @group Errors
 */
export class SimulationTimeLimitError extends PeerswarmError {
  constructor (limitMs: number) {
    super('ERR_SIMULATION_TIME_LIMIT', `the simulation ran ${limitMs} ms of virtual time without finishing`)
  }
}

const noop = (): void => {}
/** Callbacks run per turn of the real event loop (see `runBatch`). */
const CALLBACKS_PER_TURN = 32
/** Why the driver stopped running callbacks: see `advance` and `runBatch`. */
type Halt = 'ran' | 'batch' | 'settled' | 'idle' | 'limit' | 'horizon' | 'failed'
/** Dead timer entries below which the heap is never compacted (see `entryDied`). */
const COMPACT_MIN = 1_024
/** Where a signal of `AbortSignal.timeout` keeps its controller. */
const CONTROLLER = Symbol('controller')

/** A virtual timer, shaped like Node's `Timeout` (`ref`, `unref`, `refresh`, numeric id). */
class VirtualTimer {
  at = 0
  seq = 0
  cancelled = false
  /** It has a live entry in the clock's heap (scheduled, not yet fired nor cancelled). */
  queued = false

  constructor (
    private readonly clock: VirtualClock,
    readonly id: number,
    public callback: (...args: unknown[]) => void,
    public args: unknown[],
    readonly delay: number,
    readonly repeat: boolean
  ) {}

  ref (): this { return this }
  unref (): this { return this }
  hasRef (): boolean { return true }
  refresh (): this {
    this.clock.reschedule(this)
    return this
  }

  close (): this {
    this.cancel()
    return this
  }

  /**
   * Cancelled: its heap entry stays until it is due, but what it would have called is let go
   * at once (as Node's `clearTimeout` unlinks a timer), so that its closure can be collected.
   */
  cancel (): void {
    this.cancelled = true
    this.callback = noop
    this.args = []
    if (this.queued) {
      this.queued = false
      this.clock.entryDied()
    }
  }

  [Symbol.toPrimitive] (): number {
    return this.id
  }
}

interface Saved {
  setTimeout: typeof globalThis.setTimeout
  clearTimeout: typeof globalThis.clearTimeout
  setInterval: typeof globalThis.setInterval
  clearInterval: typeof globalThis.clearInterval
  setImmediate: typeof globalThis.setImmediate
  clearImmediate: typeof globalThis.clearImmediate
  dateNow: typeof Date.now
  performanceNow: PropertyDescriptor | undefined
  abortTimeout: typeof AbortSignal.timeout
  random: typeof Math.random
}

let installed: VirtualClock | undefined

/** Options of a {@link VirtualClock}. */
export interface VirtualClockOptions {
  /** Seed of `Math.random` while installed (default: 0). */
  readonly seed?: number | string
  /** Give up when nothing was scheduled for this long in real time, in ms (default: 30 000). */
  readonly stallTimeout?: number
  /** Give up when the body has not settled after this much virtual time, in ms (default: one hour). */
  readonly timeLimit?: number
  /**
   * @internal Run in step with other clocks (one simulation split over threads, see
   * `testing/shards.ts`): the clock never reaches `horizon` (virtual ms) by itself. Once
   * nothing is left before it, the clock calls `barrier` with the horizon and the time of its
   * next timer (`Infinity`: none), and goes on up to the horizon `barrier` returns, after
   * scheduling (with exact timers) what the other clocks sent meanwhile.
   */
  readonly window?: { readonly horizon: number, readonly barrier: (horizon: number, next: number) => Promise<number> }
}

/**
 * A virtual clock. {@link run} installs it, runs a body to completion in virtual time and
 * restores the globals.
 *
 * ```ts
 * const clock = new VirtualClock({ seed: 1 })
 * await clock.run(async () => {
 *   await new Promise(resolve => setTimeout(resolve, 60_000)) // returns at once, one virtual minute later
 * })
 * ```
 */
export class VirtualClock {
  private current: number
  private readonly start: number
  private readonly timers = new TimerHeap<Entry>()
  /** Entries of the heap that will never fire (their timer cancelled or rescheduled). */
  private deadEntries = 0
  private readonly byId = new Map<number, VirtualTimer>()
  private immediates: VirtualTimer[] = []
  private nextId = 1
  private seq = 0
  private saved?: Saved
  private readonly random: Random
  private readonly stallTimeout: number
  private readonly timeLimit: number
  /** With `window`: the clock stays below this until `barrier` moves it. */
  private horizon: number
  private readonly barrier?: (horizon: number, next: number) => Promise<number>
  /** Timer and immediate callbacks run so far. */
  callbacks = 0
  /** The immediates of the pass under way (queued before it began), and the next of them to run. */
  private passImmediates?: VirtualTimer[]
  private passNext = 0

  constructor (options: VirtualClockOptions = {}) {
    this.start = Date.now()
    this.current = 0
    this.random = new Random(options.seed ?? 0).fork('Math.random')
    this.stallTimeout = options.stallTimeout ?? 30_000
    this.timeLimit = options.timeLimit ?? 3_600_000
    this.horizon = options.window?.horizon ?? Infinity
    this.barrier = options.window?.barrier
  }

  /** Virtual ms since the clock was made (what `performance.now()` returns while installed). */
  now (): number {
    return this.current
  }

  /** @internal A timer at exactly `at` (virtual ms), without Node's 1 ms minimum. */
  exactTimer (at: number, callback: () => void): { cancel: () => void } {
    const timer = new VirtualTimer(this, this.nextId++, callback, [], 0, false)
    this.byId.set(timer.id, timer)
    timer.at = Math.max(at, this.current)
    timer.seq = this.seq++
    timer.queued = true
    this.timers.push({ at: timer.at, seq: timer.seq, timer })
    return { cancel: () => { this.clear(timer) } }
  }

  /** Real ms (the real `Date.now()`), also while installed. */
  realNow (): number {
    return (this.saved?.dateNow ?? Date.now).call(Date)
  }

  /** Run `body` in virtual time; the globals are the clock's until it settles. */
  async run<T> (body: () => Promise<T>): Promise<T> {
    this.install()
    const saved = this.saved as Saved
    let outcome: { ok: true, value: T } | { ok: false, error: unknown } | undefined
    try {
      body().then(value => { outcome = { ok: true, value } }, (error: unknown) => { outcome = { ok: false, error } })
      // Node's loop, in virtual time: the timers that are due, then the immediates queued so
      // far (see `advance`); microtasks settle between two callbacks, real I/O between batches
      // of them (see `runBatch`). The clock moves to the next timer only when no immediate waits.
      const realTurn: (resolve: () => void) => void = typeof saved.setImmediate === 'function'
        ? (resolve) => { saved.setImmediate(resolve) }
        : (resolve) => { saved.setTimeout(resolve, 0) }
      const turn = async (): Promise<void> => { await new Promise<void>(resolve => { realTurn(resolve) }) }
      const settled = (): boolean => outcome != null
      const batch = async (): Promise<Halt> => await new Promise<Halt>((resolve, reject) => {
        this.runBatch(saved.setImmediate, settled, (halt, error) => { if (halt === 'failed') reject(error); else resolve(halt) })
      })
      let idleSince: number | undefined
      while (outcome == null) {
        // Browsers have no setImmediate: one callback per zero timeout there.
        const halt = typeof saved.setImmediate === 'function' ? await batch() : this.advance(settled)
        if (halt === 'ran') {
          if (typeof saved.setImmediate !== 'function') await turn()
          idleSince = undefined
          continue
        }
        if (halt === 'settled') break
        if (halt === 'limit') throw new SimulationTimeLimitError(this.timeLimit)
        if (halt === 'horizon' && this.barrier != null) {
          // The other clocks decide how long a wait with nothing scheduled may last.
          this.horizon = await this.barrier(this.horizon, this.peek()?.at ?? Infinity)
          idleSince = undefined
          continue
        }
        if (halt === 'batch') {
          idleSince = undefined
          continue
        }
        // Nothing scheduled: something real (a thread-pool job) may still be under way.
        const realNow = saved.dateNow.call(Date)
        idleSince ??= realNow
        if (realNow - idleSince > this.stallTimeout) throw new SimulationStalledError(realNow - idleSince)
        await new Promise<void>(resolve => { saved.setTimeout(resolve, 1) })
      }
    } finally {
      this.uninstall()
    }
    const result = outcome as { ok: true, value: T } | { ok: false, error: unknown }
    if (!result.ok) throw result.error
    return result.value
  }

  /**
   * Run the next callback in Node's order, moving the clock when nothing is left at this
   * instant: the timers due now, one popped at a time (so that a callback's `clearTimeout` or
   * `refresh()` of a later one counts), then the immediates queued before them; the clock moves
   * to the next timer only when no immediate waits. `'ran'` after one callback; otherwise why
   * nothing ran: the body `settled`, nothing is scheduled (`'idle'`), the next timer is past
   * the time limit, or (with `window`) nothing is left before the horizon.
   */
  private advance (settled: () => boolean): Exclude<Halt, 'batch' | 'failed'> {
    const horizon = this.horizon
    for (;;) {
      if (this.passImmediates == null) {
        const timer = this.peek()
        if (timer != null && timer.at <= this.current) {
          this.timers.pop()
          timer.queued = false
          if (timer.repeat) {
            this.schedule(timer, timer.delay)
          } else {
            this.byId.delete(timer.id)
          }
          this.call(timer)
          return 'ran'
        }
        this.passImmediates = this.immediates
        this.passNext = 0
        this.immediates = []
      }
      const immediates = this.passImmediates
      while (this.passNext < immediates.length) {
        const immediate = immediates[this.passNext++]
        if (immediate.cancelled) continue
        this.call(immediate)
        return 'ran'
      }
      // The pass is over: the next begins with the timers, at the next instant if no immediate waits.
      this.passImmediates = undefined
      if (settled()) return 'settled'
      if (this.immediates.length === 0) {
        const next = this.peek()
        if (horizon !== Infinity && (next == null || next.at >= horizon)) return 'horizon'
        if (next == null) return 'idle'
        if (next.at > this.timeLimit) return 'limit'
        if (next.at > this.current) this.current = next.at
      }
    }
  }

  /**
   * Up to `CALLBACKS_PER_TURN` callbacks (`advance`), each in a real immediate of its own, all queued
   * at once: Node runs the microtasks and `process.nextTick`s between two immediates, as
   * between two timers, so each callback sees everything before it settled; the real event loop
   * (timers, I/O polling) turns once a batch instead of once a callback (~10 µs each). `done`
   * gets `'batch'` when the batch ran in full, or why it stopped early.
   */
  private runBatch (setImmediate: typeof globalThis.setImmediate, settled: () => boolean, done: (halt: Halt, error?: unknown) => void): void {
    let halt: Halt = 'batch'
    let error: unknown
    const one = (): void => {
      if (halt !== 'batch') return
      try {
        const result = this.advance(settled)
        if (result !== 'ran') halt = result
      } catch (err) {
        // The driver's own failure (a callback's is reported by `call`): the run rejects with it.
        halt = 'failed'
        error = err
      }
    }
    for (let i = 0; i < CALLBACKS_PER_TURN; i++) setImmediate(one)
    setImmediate(() => { done(halt, error) })
  }

  /** The next live timer (stale and cancelled entries are dropped on the way). */
  private peek (): VirtualTimer | undefined {
    for (;;) {
      const entry = this.timers.peek()
      if (entry == null) return undefined
      if (!entry.timer.cancelled && entry.seq === entry.timer.seq) return entry.timer
      this.timers.pop()
      this.deadEntries--
    }
  }

  /**
   * @internal An entry of the heap will never fire. Dead entries are dropped as they come to
   * the top, or all at once when they are more than half of the heap (and over
   * `COMPACT_MIN`): a simulation's connections cancel most of their timers long before they are
   * due (idle and request timeouts), and each dead entry keeps its timer object.
   */
  entryDied (): void {
    this.deadEntries++
    if (this.deadEntries > COMPACT_MIN && this.deadEntries * 2 > this.timers.size) {
      this.timers.retain(entry => !entry.timer.cancelled && entry.seq === entry.timer.seq)
      this.deadEntries = 0
    }
  }

  /** @internal Entries in the timer heap, live and dead (for tests of its bound). */
  get heapEntries (): number {
    return this.timers.size
  }

  private call (timer: VirtualTimer): void {
    this.callbacks++
    try {
      timer.callback(...timer.args)
    } catch (err) {
      // As an uncaught exception in a real timer would be: reported, not swallowed.
      queueMicrotask(() => { throw err })
    }
  }

  /** @internal `refresh()` of a timer: due `delay` from now again (its older heap entry goes stale). */
  reschedule (timer: VirtualTimer): void {
    if (timer.cancelled) return
    this.schedule(timer, timer.delay)
  }

  private schedule (timer: VirtualTimer, delay: number): void {
    timer.at = this.current + delay
    timer.seq = this.seq++
    this.timers.push({ at: timer.at, seq: timer.seq, timer })
    // A rescheduled timer's older entry goes stale (counted once the new one is in).
    if (timer.queued) this.entryDied()
    timer.queued = true
  }

  private add (callback: (...args: unknown[]) => void, delay: unknown, args: unknown[], repeat: boolean): VirtualTimer {
    let ms = Number(delay)
    if (!(ms >= 1 && ms <= 2 ** 31 - 1)) ms = 1
    const timer = new VirtualTimer(this, this.nextId++, callback, args, ms, repeat)
    this.byId.set(timer.id, timer)
    this.schedule(timer, ms)
    return timer
  }

  private clear (handle: unknown): void {
    if (handle == null) return
    const timer = handle instanceof VirtualTimer ? handle : this.byId.get(Number(handle))
    if (timer == null) return
    timer.cancel()
    this.byId.delete(timer.id)
  }

  private install (): void {
    if (installed != null) throw new PeerswarmError('ERR_CLOCK_INSTALLED', 'a virtual clock is already installed')
    installed = this
    const g = globalThis as unknown as Record<string, unknown>
    this.saved = {
      setTimeout: globalThis.setTimeout,
      clearTimeout: globalThis.clearTimeout,
      setInterval: globalThis.setInterval,
      clearInterval: globalThis.clearInterval,
      setImmediate: globalThis.setImmediate,
      clearImmediate: globalThis.clearImmediate,
      dateNow: Date.now,
      performanceNow: Object.getOwnPropertyDescriptor(performance, 'now'),
      abortTimeout: AbortSignal.timeout,
      random: Math.random
    }
    g.setTimeout = (callback: (...args: unknown[]) => void, delay?: number, ...args: unknown[]) => this.add(callback, delay, args, false)
    g.setInterval = (callback: (...args: unknown[]) => void, delay?: number, ...args: unknown[]) => this.add(callback, delay, args, true)
    g.clearTimeout = (handle: unknown) => { this.clear(handle) }
    g.clearInterval = (handle: unknown) => { this.clear(handle) }
    g.setImmediate = (callback: (...args: unknown[]) => void, ...args: unknown[]) => {
      const timer = new VirtualTimer(this, this.nextId++, callback, args, 0, false)
      this.immediates.push(timer)
      return timer
    }
    g.clearImmediate = (handle: unknown) => {
      if (handle instanceof VirtualTimer) handle.cancel()
    }
    Date.now = () => this.start + Math.floor(this.current)
    Object.defineProperty(performance, 'now', { value: () => this.current, configurable: true, writable: true })
    AbortSignal.timeout = (ms: number): AbortSignal => {
      // As Node's: the timer holds the signal weakly (a signal nobody listens to any more is
      // collected with its listeners before it is due); the signal holds its controller.
      const controller = new AbortController()
      const signal = controller.signal as AbortSignal & { [CONTROLLER]?: AbortController }
      signal[CONTROLLER] = controller
      const ref = new WeakRef(signal)
      this.add(() => {
        const held = ref.deref()
        held?.[CONTROLLER]?.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))
      }, ms, [], false)
      return signal
    }
    Math.random = () => this.random.next()
  }

  private uninstall (): void {
    const saved = this.saved
    if (saved == null) return
    const g = globalThis as unknown as Record<string, unknown>
    g.setTimeout = saved.setTimeout
    g.clearTimeout = saved.clearTimeout
    g.setInterval = saved.setInterval
    g.clearInterval = saved.clearInterval
    g.setImmediate = saved.setImmediate
    g.clearImmediate = saved.clearImmediate
    Date.now = saved.dateNow
    if (saved.performanceNow == null) {
      delete (performance as unknown as Record<string, unknown>).now
    } else {
      Object.defineProperty(performance, 'now', saved.performanceNow)
    }
    AbortSignal.timeout = saved.abortTimeout
    Math.random = saved.random
    this.saved = undefined
    this.timers.clear()
    this.deadEntries = 0
    this.immediates = []
    this.byId.clear()
    installed = undefined
  }
}

/** A timer's place in the heap; stale when the timer's `seq` has moved on. */
interface Entry {
  readonly at: number
  readonly seq: number
  readonly timer: VirtualTimer
}

/**
 * @internal A timer at `at` (`performance.now()` ms): exact on an installed virtual clock,
 * a `setTimeout` otherwise.
 */
export function timerAt (at: number, callback: () => void): { cancel: () => void } {
  if (installed != null) return installed.exactTimer(at, callback)
  const timer = setTimeout(callback, Math.max(0, at - performance.now()))
  return { cancel: () => { clearTimeout(timer) } }
}

