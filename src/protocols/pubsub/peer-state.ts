/**
 * What a pubsub behaviour (FloodSub, GossipSub) keeps about a peer and shares with the
 * handlers of its connections, so that a handler can decide about a queued frame without a
 * round trip to the behaviour:
 *  1. `RecentIds`: the ids (keys) of the last messages the peer sent us (at most
 *     `RECENT_IDS`), so that our copy of one of them that crossed theirs is not sent back;
 *  2. `UnwantedIds`: bound to a connection once its peer is known, the union of the ids the peer
 *     said it no longer wants (GossipSub v1.2 IDONTWANT) and of its `RecentIds`, which the
 *     handler consults as each forwarded frame is about to be written (`IdKeys` is the little
 *     it asks of each set);
 *  3. `QueueGauge`: the high-priority bytes on their way to a connection's handler or waiting
 *     in its queue, reserved by the behaviour and released by the handler, so that the
 *     behaviour can tell at once whether a peer's queue has room.
 *
 * @module
 */

/** A set of message id keys, as far as {@link UnwantedIds} asks. */
export interface IdKeys {
  has: (key: string) => boolean
}

/**
 * Ids of messages a remote does not need from us, as the behaviour keeps them, shared with the
 * connection's handler: those it said it no longer wants (GossipSub v1.2 IDONTWANT), and those
 * it sent us itself ({@link RecentIds}: its copy and ours crossed). The handler is made before
 * the behaviour knows the connection's peer, so the behaviour binds the peer's sets once the
 * connection is established; until then nothing is unwanted.
 */
export class UnwantedIds {
  private dontWant?: IdKeys
  private heard?: IdKeys

  /** From now on, `dontWant` (IDONTWANT) and `heard` (sent to us) say which id keys are unwanted. */
  bind (sets: { readonly dontWant?: IdKeys, readonly heard?: IdKeys }): void {
    this.dontWant = sets.dontWant
    this.heard = sets.heard
  }

  /** Whether the remote does not need the message whose id key is `key`. */
  has (key: string): boolean {
    return this.dontWant?.has(key) === true || this.heard?.has(key) === true
  }

  /** Whether the remote sent us the message whose id key is `key`, and did not say IDONTWANT for it. */
  echo (key: string): boolean {
    return this.heard?.has(key) === true && this.dontWant?.has(key) !== true
  }
}

/** How many message ids a remote sent us are remembered per peer ({@link RecentIds}). */
export const RECENT_IDS = 128

/**
 * The keys of the last messages (at most `capacity`) a remote sent us, oldest forgotten first:
 * a forward of one of them still waiting in that remote's queue is dropped, since the remote
 * has the message already (a copy of it that crossed ours in the same turn).
 */
export class RecentIds {
  private readonly keys = new Set<string>()

  constructor (readonly capacity: number = RECENT_IDS) {}

  /** Remember that the remote sent us the message whose id key is `key`. */
  add (key: string): void {
    const keys = this.keys
    if (keys.has(key)) return
    if (keys.size >= this.capacity) keys.delete(keys.values().next().value as string)
    keys.add(key)
  }

  /** Whether the remote sent us the message whose id key is `key`, lately. */
  has (key: string): boolean {
    return this.keys.has(key)
  }
}

/**
 * The high-priority bytes on their way to one handler or waiting in its queue. The behaviour
 * adds what it sends (`reserve`) and the handler releases what leaves, is dropped or discarded,
 * so that the behaviour can tell at once, without a round trip to the connection, whether a
 * peer's queue has room (e.g. to refuse a publish when every recipient's queue is full).
 */
export class QueueGauge {
  /** High-priority bytes reserved and not yet released. */
  bytes = 0

  constructor (readonly limit: number) {}

  /** Whether `size` more high-priority bytes fit. */
  hasRoom (size: number): boolean {
    return this.bytes + size <= this.limit
  }

  /** Count `size` bytes sent towards the handler. */
  reserve (size: number): void {
    this.bytes += size
  }

  /** The handler is done with `size` bytes. */
  release (size: number): void {
    this.bytes = Math.max(0, this.bytes - size)
  }
}
