/**
 * `nextTurn`: the end-of-turn queue that the secure channel and the pubsub handlers share. A
 * scheduler, not a platform part: it looks up the host's `setImmediate` at each call (so that a
 * fake or virtual clock stands in) and falls back to `MessageChannel` tasks in browsers.
 *
 * @internal
 * @module
 */
type Immediate = (callback: () => void) => void

/**
 * How many times {@link nextTurn}'s queue is drained in one turn: what a drain's callbacks
 * (and the promise continuations they release) ask of `nextTurn` in turn runs in the next
 * drain of the same turn, up to this depth; deeper, in the next turn.
 */
const DRAINS_PER_TURN = 3

/** The host's way to run a task after pending I/O: `setImmediate`, looked up at each call. */
function immediateOf (): Immediate {
  const g = globalThis as { setImmediate?: Immediate }
  if (typeof g.setImmediate === 'function') return g.setImmediate
  return postTask
}

/** Tasks waiting for {@link postTask}'s channel, made on first use (an open port keeps Node alive). */
let taskChannel: { readonly port: MessagePort, readonly tasks: Array<() => void> } | undefined

/** A `MessageChannel` message (a task, without `setTimeout`'s clamping), else `setTimeout`. */
function postTask (callback: () => void): void {
  if (typeof MessageChannel !== 'function') {
    setTimeout(callback, 0)
    return
  }
  if (taskChannel == null) {
    const channel = new MessageChannel()
    const tasks: Array<() => void> = []
    channel.port1.onmessage = () => { tasks.shift()?.() }
    taskChannel = { port: channel.port2, tasks }
  }
  taskChannel.tasks.push(callback)
  taskChannel.port.postMessage(null)
}

/**
 * The drains scheduled for one turn with one host function, and the callbacks waiting for
 * them, in the order they were asked for. A clock faked or restored in between starts another
 * batch, so each batch's callbacks run under the clock they were asked under.
 */
interface TurnBatch {
  /** Drains scheduled and not yet started. */
  left: number
  readonly host: Immediate
  queue: Array<() => void>
}

let currentBatch: TurnBatch | undefined

function drainBatch (batch: TurnBatch): void {
  batch.left--
  const callbacks = batch.queue
  batch.queue = []
  for (const callback of callbacks) {
    try {
      callback()
    } catch (err) {
      // Thrown as `setImmediate` would (uncaught), without losing the callbacks behind it.
      queueMicrotask(() => { throw err })
    }
  }
}

/**
 * Run `callback` at the end of this event-loop turn, after pending I/O (`setImmediate` where it
 * exists, looked up at each call so that a fake or virtual clock's stands in; else a
 * `MessageChannel` task). Every caller shares one queue (one per clock), drained in order; a
 * turn drains it up to {@link DRAINS_PER_TURN} times, promise continuations running between two
 * drains: so what a callback releases and asks of `nextTurn` in turn still runs in this turn.
 * The pubsub handler relies on it: it hands forwards to a stream once the `SecureChannel`s have
 * flushed this turn's control (one drain), and their flush (the next drain) leaves in the same
 * turn, without waiting for another pass over the sockets.
 */
export const nextTurn: Immediate = (callback) => {
  const host = immediateOf()
  let batch = currentBatch
  if (batch == null || batch.left === 0 || batch.host !== host) {
    const fresh: TurnBatch = { left: DRAINS_PER_TURN, host, queue: [] }
    for (let i = 0; i < DRAINS_PER_TURN; i++) host(() => { drainBatch(fresh) })
    currentBatch = batch = fresh
  }
  batch.queue.push(callback)
}
