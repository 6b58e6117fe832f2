/**
 * Seeded randomness for simulations: a small fast generator (sfc32, seeded through a string
 * hash), independent streams forked by label, and the distributions a network model needs.
 * Never for keys that protect anything.
 *
 * @module
 */

/** A number drawn from a distribution: a constant, uniform over `[min, max]`, normal (clamped at `min`, default 0), or any function of a {@link Random}. */
export type Distribution =
  | number
  | { readonly min: number, readonly max: number }
  | { readonly mean: number, readonly sd: number, readonly min?: number }
  | ((random: Random) => number)

/** 32-bit FNV-1a of `text`, then mixed (murmur3's finaliser). */
function hash32 (text: string, salt: number): number {
  let h = (0x811c9dc5 ^ salt) >>> 0
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b) >>> 0
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35) >>> 0
  h ^= h >>> 16
  return h >>> 0
}

/**
 * A seeded pseudo-random generator (sfc32). Two generators made from the same seed give the
 * same sequence; {@link fork} derives an independent one from a label, so that adding a
 * consumer does not shift the draws of the others.
 */
export class Random {
  private a: number
  private b: number
  private c: number
  private d: number
  /** The seed this generator was made from. */
  readonly seed: string

  constructor (seed: number | string) {
    this.seed = String(seed)
    this.a = hash32(this.seed, 1)
    this.b = hash32(this.seed, 2)
    this.c = hash32(this.seed, 3)
    this.d = 1
    for (let i = 0; i < 15; i++) this.next()
  }

  /** An independent generator for `label` (the same seed and label give the same one). */
  fork (label: string | number): Random {
    return new Random(`${this.seed}/${String(label)}`)
  }

  /** A number in [0, 1). */
  next (): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0
    this.d = (this.d + 1) >>> 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) >>> 0
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0
    this.c = (this.c + t) >>> 0
    return t / 4294967296
  }

  /** An integer in [0, n). */
  int (n: number): number {
    return Math.floor(this.next() * n)
  }

  /** A number uniform in [min, max). */
  uniform (min: number, max: number): number {
    return min + (max - min) * this.next()
  }

  /** A normal deviate (Box–Muller). */
  normal (mean: number, sd: number): number {
    const u = 1 - this.next()
    const v = this.next()
    return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  }

  /** True with probability `p`. */
  chance (p: number): boolean {
    return p > 0 && this.next() < p
  }

  /** `items` shuffled (a new array; Fisher–Yates). */
  shuffle<T> (items: readonly T[]): T[] {
    const out = [...items]
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const x = out[i]
      out[i] = out[j]
      out[j] = x
    }
    return out
  }

  /** `n` random bytes. */
  bytes (n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = this.int(256)
    return out
  }

  /** A draw from `distribution`. */
  draw (distribution: Distribution): number {
    if (typeof distribution === 'number') return distribution
    if (typeof distribution === 'function') return distribution(this)
    if ('max' in distribution) return this.uniform(distribution.min, distribution.max)
    return Math.max(distribution.min ?? 0, this.normal(distribution.mean, distribution.sd))
  }
}

/** The mean of `distribution` (estimated from 10,000 draws of a seeded generator when it is a function). */
export function meanOf (distribution: Distribution): number {
  if (typeof distribution === 'number') return distribution
  if (typeof distribution === 'function') {
    const random = new Random('meanOf')
    let sum = 0
    for (let i = 0; i < 10_000; i++) sum += distribution(random)
    return sum / 10_000
  }
  if ('max' in distribution) return (distribution.min + distribution.max) / 2
  return distribution.mean
}
