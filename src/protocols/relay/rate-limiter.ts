/**
 * Token buckets for the relay's rate limits (rust-libp2p's `relay::rate_limiter`): each key (a
 * peer id, an IP address) starts with `limit` tokens, a request takes one, and one comes back
 * every `interval` ms, up to `limit`. A full bucket is forgotten, so that only keys with
 * recent requests take memory.
 *
 * @module
 */

/** A token-bucket rate: at most `limit` requests at once, one more every `interval` ms. */
export interface RateLimit {
  /** Tokens a bucket holds when full: requests allowed in a burst (a positive integer). */
  readonly limit: number
  /** Time for one token to come back, in ms (positive). */
  readonly interval: number
}

interface Bucket {
  tokens: number
  /** When the last whole token was added (or the bucket made): refills count from here. */
  since: number
}

/**
 * @internal Token buckets by key, all at one rate. Buckets are kept in the order they were
 * last refilled, so that a sweep at each request finds the full ones at the front and drops
 * them: a bucket lives at most `limit × interval` (plus one interval) after its last request.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>()

  constructor (private readonly rate: RateLimit) {}

  /** Buckets held now (those not full). */
  get size (): number {
    return this.buckets.size
  }

  /** Whether `key` has a token now (nothing is taken). */
  has (key: string, now: number): boolean {
    this.sweep(now)
    const bucket = this.buckets.get(key)
    if (bucket == null) return true
    this.refill(bucket, now)
    return bucket.tokens >= 1
  }

  /** Take a token of `key`'s; false (and nothing taken) when it has none. */
  take (key: string, now: number): boolean {
    this.sweep(now)
    const bucket = this.buckets.get(key)
    if (bucket == null) {
      this.buckets.set(key, { tokens: this.rate.limit - 1, since: now })
      return true
    }
    this.refill(bucket, now)
    if (bucket.tokens < 1) return false
    bucket.tokens--
    return true
  }

  /** Add the tokens due since `bucket.since`, keeping the time towards the next one. */
  private refill (bucket: Bucket, now: number): void {
    if (now < bucket.since) {
      // The clock went back: count from now.
      bucket.since = now
      return
    }
    const due = Math.floor((now - bucket.since) / this.rate.interval)
    if (due <= 0) return
    bucket.tokens = Math.min(this.rate.limit, bucket.tokens + due)
    bucket.since += due * this.rate.interval
  }

  /**
   * Refill the buckets at the front that are due a token: drop the full ones, move the others
   * to the back. Stops at the first not yet due (a moved one is never due again in one sweep).
   */
  private sweep (now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (now - bucket.since < this.rate.interval) return
      this.refill(bucket, now)
      this.buckets.delete(key)
      if (bucket.tokens < this.rate.limit) this.buckets.set(key, bucket)
    }
  }
}
