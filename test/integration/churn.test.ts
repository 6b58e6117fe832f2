/**
 * Churn over TCP on 127.0.0.1: 30 swarms, 20% of the non-publishers restarting every 5 s while
 * 5 stable publishers publish. Every message reaches every incarnation that was up for its
 * whole propagation window, and once every swarm is closed the process holds no more sockets,
 * servers or timers than before. `npm test` runs 20 s of it (`CHURN_SECONDS` changes that);
 * `npm run churn` runs the full two minutes.
 */
import { expect } from 'chai'
import { runChurn } from '../fixtures/churn.js'

function handles (): Record<string, number> {
  const counts: Record<string, number> = { TCPSocketWrap: 0, TCPServerWrap: 0, Timeout: 0 }
  for (const kind of process.getActiveResourcesInfo()) if (kind in counts) counts[kind]++
  return counts
}

/** Counts read in the check phase, so that a timer that just fired is not counted. */
async function settled (): Promise<Record<string, number>> {
  return await new Promise(resolve => setImmediate(() => { resolve(handles()) }))
}

describe('churn (127.0.0.1)', function () {
  const seconds = Number(process.env.CHURN_SECONDS ?? 20)
  this.timeout((seconds + 90) * 1000)

  it(`30 swarms, 20% restarting every 5 s for ${seconds} s: every message reaches every swarm up for its window; nothing left after close()`, async () => {
    const before = await settled()
    const report = await runChurn({ nodes: 30, restartShare: 0.2, periodMs: 5_000, durationMs: seconds * 1000, publishers: 5, rate: 10, joinMs: 3_000, windowMs: 3_000, seed: 11 })
    console.log(`      ${JSON.stringify(report)}`)
    expect(report.restarts).to.be.at.least(6 * (Math.floor(seconds / 5) - 1))
    expect(report.required).to.be.greaterThan(report.published * 10)
    expect(report.missing).to.equal(0)
    expect(report.duplicates).to.equal(0)
    const deadline = Date.now() + 5_000
    let after = await settled()
    while (Date.now() < deadline && (after.TCPSocketWrap > before.TCPSocketWrap || after.TCPServerWrap > before.TCPServerWrap || after.Timeout > before.Timeout)) {
      await new Promise(resolve => setTimeout(resolve, 50))
      after = await settled()
    }
    expect(after).to.deep.equal(before)
  })
})
