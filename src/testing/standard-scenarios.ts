/**
 * The standard scenarios of `npm run sim` (and, without its faults, `npm run net` and
 * `npm run sim -- --shadow`): a random 8-regular topology, one-way link latency uniform in
 * [20, 80] ms, GossipSub with its defaults and scoring on, 256-byte messages from 10
 * publishers. See docs/simulation.md, "The standard scenarios".
 *
 * @module
 */
import type { Scenario } from './scenario.js'

/** One-way latency of every link of the standard scenarios, uniform in [20, 80] ms. */
const LATENCY = { min: 20, max: 80 } as const

/**
 * The standard scenarios for `peers` peers and a seed, by name:
 * - `baseline`: 100 messages, one every 50 ms;
 * - `loss`: the same with 1% of the segments lost on every link;
 * - `partition`: 30% of the peers cut off 5 s after the warm-up, connections across reset 10 s
 *   later, healed 30 s after it opened; messages before, during, in the 10 s after the heal
 *   (`recovery`) and later (`after`).
 */
export function standardScenarios (peers: number, seed: number | string): Record<'baseline' | 'loss' | 'partition', Scenario> {
  const base = {
    peers,
    seed,
    topology: { type: 'random-regular', degree: 8 },
    link: { latency: LATENCY },
    gossipsub: { scoreParams: {} },
    settle: 20_000
  } as const
  const publish = { messages: 100, publishers: 10, size: 256, interval: 50 }
  return {
    baseline: { ...base, name: 'baseline', publish },
    loss: { ...base, name: 'loss', link: { latency: LATENCY, loss: 0.01 }, publish },
    partition: {
      ...base,
      name: 'partition',
      publish: [
        { label: 'before', at: 0, messages: 20, publishers: 10, interval: 200 },
        { label: 'during', at: 7_000, messages: 20, publishers: 10, interval: 1_300 },
        { label: 'recovery', at: 35_000, messages: 20, publishers: 10, interval: 500 },
        { label: 'after', at: 45_000, messages: 40, publishers: 10, interval: 250 }
      ],
      faults: [{ type: 'partition', at: 5_000, fraction: 0.3, resetAfter: 10_000, healAfter: 30_000 }]
    }
  }
}
