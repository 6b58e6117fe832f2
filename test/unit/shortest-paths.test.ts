/**
 * The simulator's shortest paths (the lower bound its reports draw beside the latencies):
 * Dijkstra over a heap against plain relaxation until nothing changes, on random graphs where
 * some peers do not relay.
 */
import { expect } from 'chai'
import { Random } from '../../src/testing/random.js'
import { shortestPaths } from '../../src/testing/scenario.js'

/** Relax every edge out of a relay (or the source) until no distance falls: the reference. */
function relaxed (n: number, neighbours: number[][], latency: (a: number, b: number) => number, source: number, relays: Uint8Array): Float64Array {
  const d = new Float64Array(n).fill(Infinity)
  d[source] = 0
  for (let round = 0; round < n; round++) {
    let changed = false
    for (let u = 0; u < n; u++) {
      if (d[u] === Infinity || (u !== source && relays[u] === 0)) continue
      for (const w of neighbours[u]) {
        if (d[u] + latency(u, w) < d[w]) {
          d[w] = d[u] + latency(u, w)
          changed = true
        }
      }
    }
    if (!changed) break
  }
  return d
}

describe('simulator: shortest paths', () => {
  it('match plain relaxation on random graphs, through relays only', () => {
    for (let trial = 0; trial < 20; trial++) {
      const random = new Random(`paths/${trial}`)
      const n = 5 + Math.floor(random.next() * 200)
      const neighbours: number[][] = Array.from({ length: n }, () => [])
      const weights = new Map<string, number>()
      const edges = Math.floor(n * (1 + random.next() * 3))
      for (let e = 0; e < edges; e++) {
        const a = Math.floor(random.next() * n)
        const b = Math.floor(random.next() * n)
        if (a === b || weights.has(`${Math.min(a, b)}/${Math.max(a, b)}`)) continue
        weights.set(`${Math.min(a, b)}/${Math.max(a, b)}`, 1 + random.next() * 99)
        neighbours[a].push(b)
        neighbours[b].push(a)
      }
      const latency = (a: number, b: number): number => weights.get(`${Math.min(a, b)}/${Math.max(a, b)}`) as number
      const relays = Uint8Array.from({ length: n }, () => random.next() < 0.8 ? 1 : 0)
      const source = Math.floor(random.next() * n)
      expect(Array.from(shortestPaths(n, neighbours, latency, source, relays)), `trial ${trial}`)
        .to.deep.equal(Array.from(relaxed(n, neighbours, latency, source, relays)))
    }
  })

  it('a peer that does not relay is reached but passes nothing on', () => {
    // 0 — 1 — 2, and 0 — 2 ten times slower: with 1 not relaying, 2 is reached directly.
    const neighbours = [[1, 2], [0, 2], [1, 0]]
    const latency = (a: number, b: number): number => (a + b === 2 ? 100 : 10)
    expect(Array.from(shortestPaths(3, neighbours, latency, 0, Uint8Array.from([1, 1, 1])))).to.deep.equal([0, 10, 20])
    expect(Array.from(shortestPaths(3, neighbours, latency, 0, Uint8Array.from([1, 0, 1])))).to.deep.equal([0, 10, 100])
  })
})
