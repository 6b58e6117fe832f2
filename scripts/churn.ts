/**
 * The full churn scenario of the reliability issue: 30 swarms over TCP on 127.0.0.1, 20% of
 * the non-publishers restarting every 5 s for 2 minutes while 5 stable publishers publish
 * 10 messages per second. Prints one JSON line; exit code 1 if a message missed a swarm that
 * was up for its whole window (3 s to join before it, 3 s to propagate after it).
 *
 * Run: npm run churn (`--seconds n` for another duration)
 */
import '../src/compat.js'
import { runChurn } from '../test/fixtures/churn.js'

const index = process.argv.indexOf('--seconds')
const seconds = index > 0 ? Number(process.argv[index + 1]) : 120
if (!Number.isFinite(seconds) || seconds < 5) throw new Error('--seconds must be a number ≥ 5')
const report = await runChurn({ nodes: 30, restartShare: 0.2, periodMs: 5_000, durationMs: seconds * 1000, publishers: 5, rate: 10, joinMs: 3_000, windowMs: 3_000, seed: 11 })
console.log(JSON.stringify({ churn: 'gossipsub', nodes: 30, seconds, ...report, verdict: report.missing === 0 ? 'pass' : 'fail' }))
process.exit(report.missing === 0 ? 0 : 1)
