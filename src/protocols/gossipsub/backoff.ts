/**
 * PRUNE backoffs (gossipsub v1.1 spec, "Prune Backoff and Peer Exchange"): after a PRUNE, in
 * either direction, neither side grafts the other on that topic until the backoff expires.
 *
 * 1. `update(topic, peer, duration)` records a backoff; it only ever extends an existing one
 *    (as go);
 * 2. `isBackedOff(topic, peer)` is checked before every GRAFT we send, with `slack` added so
 *    that clock skew and heartbeat phase cannot make our GRAFT arrive early;
 * 3. `startedWithin(topic, peer, ms)` tells a GRAFT flood (one that arrives right after the
 *    PRUNE) from a late one;
 * 4. `clearExpired()` (every few heartbeats) forgets what has run out.
 *
 * @module
 */
import type { TopicHash } from '../pubsub/topic.js'

interface Backoff {
  readonly expires: number
  readonly started: number
}

/** Backoffs per topic and peer. */
export class BackoffTable {
  private readonly topics = new Map<TopicHash, Map<string, Backoff>>()

  constructor (
    /** Added to every expiry when deciding whether we may graft, in ms. */
    private readonly slack: number,
    private readonly now: () => number = Date.now
  ) {}

  /** Back off `peer` on `topic` for `duration` ms from now, unless a longer backoff holds. */
  update (topic: TopicHash, peer: string, duration: number): void {
    let peers = this.topics.get(topic)
    if (peers == null) this.topics.set(topic, peers = new Map())
    const now = this.now()
    const expires = now + duration
    const current = peers.get(peer)
    if (current == null || current.expires < expires) peers.set(peer, { expires, started: now })
  }

  /** Whether we must not graft `peer` on `topic` yet (the backoff plus slack has not run out). */
  isBackedOff (topic: TopicHash, peer: string): boolean {
    const backoff = this.topics.get(topic)?.get(peer)
    return backoff != null && backoff.expires + this.slack > this.now()
  }

  /** Whether `peer` is backed off on `topic` by its own expiry, without our slack. */
  isActive (topic: TopicHash, peer: string): boolean {
    const backoff = this.topics.get(topic)?.get(peer)
    return backoff != null && backoff.expires > this.now()
  }

  /** Whether the backoff of `peer` on `topic` began less than `ms` ago. */
  startedWithin (topic: TopicHash, peer: string, ms: number): boolean {
    const backoff = this.topics.get(topic)?.get(peer)
    return backoff != null && this.now() - backoff.started < ms
  }

  /** The time left of the backoff, in ms (0 if none), for tests and diagnostics. */
  remaining (topic: TopicHash, peer: string): number {
    const backoff = this.topics.get(topic)?.get(peer)
    return backoff == null ? 0 : Math.max(0, backoff.expires - this.now())
  }

  /** Forget backoffs that ran out (slack included). */
  clearExpired (): void {
    const now = this.now()
    for (const [topic, peers] of this.topics) {
      for (const [peer, backoff] of peers) {
        if (backoff.expires + this.slack <= now) peers.delete(peer)
      }
      if (peers.size === 0) this.topics.delete(topic)
    }
  }
}
