/**
 * Running totals of a pubsub behaviour's message traffic: plain counters, always on (one
 * addition per event), read with `totals()` on FloodSub and GossipSub, e.g. by
 * `peerswarm/view` to show rates. Labelled, exportable metrics are GossipSub's `MetricsSink`.
 *
 * @module
 */

/** Message counts since the behaviour was created. */
export interface MessageTotals {
  /** Our own messages published. */
  published: number
  /** First copies of valid messages received (delivered, or relayed without delivery). */
  received: number
  /**
   * Copies of messages we passed on (one per recipient), counted as they are queued: some are
   * still dropped from the queue (`unwanted`, `echoes`, `droppedBytes`).
   */
  forwarded: number
  /** Copies of messages we already had. */
  duplicates: number
  /** Messages rejected (signature policy or validation). */
  invalid: number
  /** Messages the validator ignored. */
  ignored: number
  /** Bytes dropped from outbound queues (slow peers, expired forwards). */
  droppedBytes: number
  /**
   * Copies of messages we did not send because the recipient said it already had them
   * (GossipSub v1.2 IDONTWANT), whether it said so before we forwarded or while the copy was
   * still queued. Always 0 for FloodSub.
   */
  unwanted: number
  /**
   * Copies of messages we did not send to a peer because that peer had sent us the same message
   * (its copy and ours crossed), whether before we forwarded or while our copy was queued.
   */
  echoes: number
}

/** Totals at zero. */
export function newTotals (): MessageTotals {
  return { published: 0, received: 0, forwarded: 0, duplicates: 0, invalid: 0, ignored: 0, droppedBytes: 0, unwanted: 0, echoes: 0 }
}
