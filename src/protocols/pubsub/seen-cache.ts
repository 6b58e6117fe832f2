/**
 * A set of recently seen message ids with a time to live and a hard size bound, so that a
 * flood of unique ids cannot grow memory without limit.
 *
 * @module
 */

/** A clock in milliseconds; injectable for tests. */
export type Clock = () => number

/** Recently seen ids. Entries expire `ttl` ms after insertion; beyond `maxEntries` the oldest go. */
export class SeenCache {
  private readonly entries = new Map<string, number>()

  constructor (
    private readonly ttl: number,
    private readonly maxEntries: number,
    private readonly now: Clock = Date.now
  ) {}

  /** How many ids are held. */
  get size (): number {
    return this.entries.size
  }

  /** Whether `id` was seen within the TTL. */
  has (id: string): boolean {
    const expires = this.entries.get(id)
    if (expires == null) return false
    if (expires > this.now()) return true
    this.entries.delete(id)
    return false
  }

  /** Record `id`; returns false if it was already there (and not expired). */
  add (id: string): boolean {
    if (this.has(id)) return false
    this.prune()
    this.entries.set(id, this.now() + this.ttl)
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value
      if (oldest === undefined) break
      this.entries.delete(oldest)
    }
    return true
  }

  /** Forget `id` (e.g. a message that failed validation may be resent by an honest peer). */
  delete (id: string): void {
    this.entries.delete(id)
  }

  /** Drop expired entries from the front (insertion order is expiry order). */
  private prune (): void {
    const now = this.now()
    for (const [id, expires] of this.entries) {
      if (expires > now) break
      this.entries.delete(id)
    }
  }
}
