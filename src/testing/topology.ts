/**
 * Network topologies for simulations: who dials whom. Every function returns connected graphs
 * as lists of links `[dialer, listener]` (host indexes), each link once, drawn from a seeded
 * {@link Random}.
 *
 * @module
 */
import { ConfigError } from '../core/errors.js'
import type { Random } from './random.js'

/** A link of a topology: `[dialer, listener]`. */
export type TopologyLink = readonly [number, number]

/** A topology of a scenario. */
export type Topology =
  /** Every peer has exactly `degree` neighbours (`peers × degree` must be even). */
  | { readonly type: 'random-regular', readonly degree: number }
  /** Barabási–Albert: each new peer links to `links` existing peers, chosen by degree. */
  | { readonly type: 'scale-free', readonly links: number }
  /**
   * Each peer in turn dials `dials` random peers it has no link with, neither end past
   * `maxDegree` links (default: no limit); components left apart are then joined (the first
   * peer of each dials the first of the next).
   */
  | { readonly type: 'random-dials', readonly dials: number, readonly maxDegree?: number }
  /** Given links. */
  | { readonly type: 'links', readonly links: readonly TopologyLink[] }

/** Attempts at drawing a random regular graph before giving up. */
const REGULAR_ATTEMPTS = 100

/**
 * A connected random `degree`-regular graph on `n` vertices (pairing model with rejection,
 * redrawn until simple and connected). Each link's direction (who dials) is random.
 */
export function randomRegular (n: number, degree: number, random: Random): TopologyLink[] {
  if (!Number.isInteger(degree) || degree < 1 || degree >= n) throw new ConfigError('topology.degree', `must be an integer in [1, ${n - 1}], got ${degree}`)
  if ((n * degree) % 2 !== 0) throw new ConfigError('topology.degree', `peers × degree must be even (${n} × ${degree})`)
  for (let attempt = 0; attempt < REGULAR_ATTEMPTS; attempt++) {
    const links = tryRegular(n, degree, random)
    if (links != null && connected(n, links)) return links
  }
  throw new ConfigError('topology', `no connected ${degree}-regular graph on ${n} vertices found in ${REGULAR_ATTEMPTS} attempts`)
}

/** One attempt: pair up the `degree` stubs of every vertex at random, refusing loops and double links. */
function tryRegular (n: number, degree: number, random: Random): TopologyLink[] | undefined {
  const stubs: number[] = []
  for (let v = 0; v < n; v++) for (let i = 0; i < degree; i++) stubs.push(v)
  const seen = new Set<number>()
  const links: TopologyLink[] = []
  // Steger–Wormald: draw two free stubs at random; a bad pair is drawn again (a bounded number of times).
  let failures = 0
  while (stubs.length > 0) {
    const i = random.int(stubs.length)
    const j = random.int(stubs.length)
    const a = stubs[i]
    const b = stubs[j]
    const key = Math.min(a, b) * n + Math.max(a, b)
    if (i === j || a === b || seen.has(key)) {
      if (++failures > 100 * n * degree) return undefined
      continue
    }
    seen.add(key)
    links.push(random.next() < 0.5 ? [a, b] : [b, a])
    // Remove both stubs (swap with the last).
    for (const k of i > j ? [i, j] : [j, i]) {
      stubs[k] = stubs[stubs.length - 1]
      stubs.pop()
    }
  }
  return links
}

/**
 * A Barabási–Albert graph: a clique of `links + 1` vertices, then each new vertex links to
 * `links` distinct existing ones chosen with probability proportional to their degree. The new
 * vertex dials.
 */
export function scaleFree (n: number, links: number, random: Random): TopologyLink[] {
  if (!Number.isInteger(links) || links < 1 || links >= n) throw new ConfigError('topology.links', `must be an integer in [1, ${n - 1}], got ${links}`)
  const out: TopologyLink[] = []
  // Every vertex appears once per link end: drawing from it is drawing by degree.
  const ends: number[] = []
  for (let a = 0; a <= links; a++) {
    for (let b = 0; b < a; b++) {
      out.push([a, b])
      ends.push(a, b)
    }
  }
  for (let v = links + 1; v < n; v++) {
    const targets = new Set<number>()
    while (targets.size < links) targets.add(ends[random.int(ends.length)])
    for (const t of targets) {
      out.push([v, t])
      ends.push(v, t)
    }
  }
  return out
}

/**
 * A sparse connected random graph as peers that each dial a few others make it: vertex
 * `0, 1, …, n−1` in turn links to (dials) `dials` distinct vertices drawn uniformly from those it
 * has no link with yet, as long as both ends have fewer than `maxDegree` links (fewer when none
 * is left). So every vertex has `dials` links or more (unless the cap leaves it no candidate),
 * and none more than `maxDegree` before the last step: components left apart are joined, the
 * first vertex of each dialing the first of the next (which can take a vertex past `maxDegree`).
 *
 * The GossipSub benchmark (ours and js-libp2p on the same graph), the soak and the GossipSub
 * integration test over TCP use it. One `random.int` per dial.
 */
export function randomDials (n: number, dials: number, maxDegree: number, random: Random): TopologyLink[] {
  if (!Number.isInteger(dials) || dials < 1 || dials >= n) throw new ConfigError('topology.dials', `must be an integer in [1, ${n - 1}], got ${dials}`)
  if (!Number.isInteger(maxDegree) || maxDegree < dials) throw new ConfigError('topology.maxDegree', `must be an integer ≥ dials (${dials}), got ${maxDegree}`)
  const neighbours = Array.from({ length: n }, () => new Set<number>())
  const links: TopologyLink[] = []
  const link = (a: number, b: number): void => {
    neighbours[a].add(b)
    neighbours[b].add(a)
    links.push([a, b])
  }
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < dials; k++) {
      const candidates = Array.from({ length: n }, (_, j) => j)
        .filter(j => j !== i && !neighbours[i].has(j) && neighbours[i].size < maxDegree && neighbours[j].size < maxDegree)
      if (candidates.length === 0) break
      link(i, candidates[random.int(candidates.length)])
    }
  }
  // Join the components, if any are apart: the first vertex of each to the first of the next.
  const component = new Array<number>(n).fill(-1)
  const firsts: number[] = []
  for (let i = 0; i < n; i++) {
    if (component[i] !== -1) continue
    firsts.push(i)
    const stack = [i]
    component[i] = i
    while (stack.length > 0) {
      for (const j of neighbours[stack.pop() as number]) {
        if (component[j] === -1) {
          component[j] = i
          stack.push(j)
        }
      }
    }
  }
  for (let c = 1; c < firsts.length; c++) link(firsts[c - 1], firsts[c])
  return links
}

/** The links of `topology` on `n` peers. */
export function topologyLinks (topology: Topology, n: number, random: Random): TopologyLink[] {
  switch (topology.type) {
    case 'random-regular': return randomRegular(n, topology.degree, random)
    case 'scale-free': return scaleFree(n, topology.links, random)
    case 'random-dials': return randomDials(n, topology.dials, topology.maxDegree ?? n - 1, random)
    case 'links': return [...topology.links]
  }
}

/** Each vertex's degree. */
export function degrees (n: number, links: readonly TopologyLink[]): number[] {
  const degree = new Array<number>(n).fill(0)
  for (const [a, b] of links) {
    degree[a]++
    degree[b]++
  }
  return degree
}

/** True if every vertex of `0..n-1` is reachable from vertex 0. */
export function connected (n: number, links: readonly TopologyLink[]): boolean {
  if (n === 0) return true
  const neighbours = Array.from({ length: n }, (): number[] => [])
  for (const [a, b] of links) {
    neighbours[a].push(b)
    neighbours[b].push(a)
  }
  const seen = new Uint8Array(n)
  const stack = [0]
  seen[0] = 1
  let count = 1
  while (stack.length > 0) {
    for (const w of neighbours[stack.pop() as number]) {
      if (seen[w] === 0) {
        seen[w] = 1
        count++
        stack.push(w)
      }
    }
  }
  return count === n
}
