/**
 * GossipSub's metrics: an optional sink the application provides (no metrics library is a
 * dependency; `examples/metrics-prometheus.ts` adapts `prom-client`). Counters are added to as
 * things happen; histograms are observed at every heartbeat (mesh and fanout sizes, scores).
 *
 * Labels are bounded: `topic` only takes topics we subscribe or publish to, `type` and `reason`
 * fixed sets.
 *
 * @module
 */

/** Counters, with their labels. */
export interface Counters {
  /** Our own messages published. Labels: `topic`. */
  readonly messages_published: 'topic'
  /** First copies of valid messages received (delivered to the application). Labels: `topic`. */
  readonly messages_received: 'topic'
  /**
   * Copies of messages we passed on (one per recipient), counted as they are queued (some are
   * dropped from the queue later: `messages_unwanted`, `messages_echoes`). Labels: `topic`.
   */
  readonly messages_forwarded: 'topic'
  /** Copies of messages we already had. */
  readonly messages_duplicate: never
  /** Messages rejected (signature policy or validation). Labels: `reason`. */
  readonly messages_invalid: 'reason'
  /** Messages the validator ignored. */
  readonly messages_ignored: never
  /** Control entries sent. Labels: `type` (graft, prune, ihave, iwant, idontwant). */
  readonly control_sent: 'type'
  /** Control entries received. Labels: `type`. */
  readonly control_received: 'type'
  /** Message ids asked for by IWANT. */
  readonly iwant_ids_requested: never
  /** Bytes dropped from outbound queues (slow peers, expired forwards). */
  readonly queue_dropped_bytes: never
  /**
   * Copies of messages not sent because the recipient had said IDONTWANT. Labels: `stage`:
   * `send` (it said so before we forwarded the message or answered its IWANT), `queue` (the
   * copy was queued and dropped before being written).
   */
  readonly messages_unwanted: 'stage'
  /**
   * Copies of messages not sent to a peer because it had sent us the same message (its copy and
   * ours crossed), before we forwarded or while ours was queued.
   */
  readonly messages_echoes: never
  /** IWANT promises broken. */
  readonly promises_broken: never
}

/** Histograms, observed at every heartbeat, with their labels. */
export interface Histograms {
  /** Peers in our mesh of a topic. Labels: `topic`. */
  readonly mesh_size: 'topic'
  /** Peers in our fanout of a topic. Labels: `topic`. */
  readonly fanout_size: 'topic'
  /** Every connected peer's score (with scoring on). */
  readonly peer_score: never
}

/** A counter's name. */
export type CounterName = keyof Counters
/** A histogram's name. */
export type HistogramName = keyof Histograms
/** Label values of a metric. */
export type Labels<L extends string> = [L] extends [never] ? undefined : Readonly<Record<L, string>>

/** Where metrics go. Both methods are called synchronously on the hot path: keep them cheap. */
export interface MetricsSink {
  /** Add `value` to counter `name`. */
  increment: <N extends CounterName>(name: N, value: number, labels: Labels<Counters[N]>) => void
  /** Record one observation of histogram `name`. */
  observe: <N extends HistogramName>(name: N, value: number, labels: Labels<Histograms[N]>) => void
}

/** Every counter and histogram with its labels, e.g. to register them in a metrics library. */
export const METRICS: Readonly<{ counters: Readonly<Record<CounterName, readonly string[]>>, histograms: Readonly<Record<HistogramName, readonly string[]>> }> = Object.freeze({
  counters: Object.freeze({
    messages_published: ['topic'],
    messages_received: ['topic'],
    messages_forwarded: ['topic'],
    messages_duplicate: [],
    messages_invalid: ['reason'],
    messages_ignored: [],
    control_sent: ['type'],
    control_received: ['type'],
    iwant_ids_requested: [],
    queue_dropped_bytes: [],
    messages_unwanted: ['stage'],
    messages_echoes: [],
    promises_broken: []
  }),
  histograms: Object.freeze({
    mesh_size: ['topic'],
    fanout_size: ['topic'],
    peer_score: []
  })
})
