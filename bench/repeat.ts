/**
 * Repeated, alternated runs for the pubsub benchmarks: `BENCH_REPEAT=n` runs each case n times
 * per implementation, ours and js in turn (so that drift on the machine hits both alike), and
 * reports each figure's median per implementation, with the rate ratio of every pair beside it.
 * On this shared 2-core machine one run of one case can move by ±40%; the median of a few
 * alternated runs is the figure to compare.
 */

/** Runs per implementation and case (`BENCH_REPEAT`, default 1). */
export const REPEAT = Math.max(1, Number(process.env.BENCH_REPEAT ?? 1) || 1)

/** The median of each numeric field over `results` (all of the same shape). */
export function medianOf<T extends object> (results: readonly T[]): T {
  const first = results[0]
  if (first == null) throw new Error('no results')
  const median = (values: number[]): number => {
    const sorted = [...values].sort((a, b) => a - b)
    const mid = sorted.length >> 1
    return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
  }
  return Object.fromEntries(Object.keys(first).map(key => {
    const values = results.map(r => (r as Record<string, unknown>)[key])
    return [key, values.every(v => typeof v === 'number') ? median(values as number[]) : values[0]]
  })) as T
}

/**
 * Run `ours` and `js` alternately `REPEAT` times; each figure's median per implementation, and
 * ours / js messages per second of each pair, in run order.
 */
export async function alternated<T extends { msgsPerSec: number }> (ours: () => Promise<T>, js: () => Promise<T>): Promise<{ ours: T, js: T, rateRatios: number[] }> {
  const oursRuns: T[] = []
  const jsRuns: T[] = []
  for (let i = 0; i < REPEAT; i++) {
    oursRuns.push(await ours())
    jsRuns.push(await js())
  }
  const rateRatios = oursRuns.map((o, i) => Math.round(1000 * o.msgsPerSec / jsRuns[i].msgsPerSec) / 1000)
  return { ours: medianOf(oursRuns), js: medianOf(jsRuns), rateRatios }
}
