/**
 * The standard simulation scenarios (`npm run sim`): GossipSub peers on a simulated network
 * (`peerswarm/testing`), every one a real swarm with Noise, Yamux and GossipSub, in one process
 * and in virtual time. See docs/simulation.md for the model and how to read the report.
 *
 * Scenarios (each in a fresh child process, so that RSS is its own):
 * - `baseline`: 1,000 peers, random 8-regular topology, one-way link latency uniform in
 *   [20, 80] ms, 100 messages of 256 B from 10 publishers, one every 50 ms;
 * - `loss`: the same with 1% of the segments lost on every link (each loss delays its chunk by
 *   a retransmission timeout);
 * - `partition`: the baseline network; 30% of the peers are cut off from the rest 5 s after the
 *   warm-up, connections across the cut are reset 10 s later (a keep-alive timeout), and it
 *   heals 30 s after it opened. Messages before, during, in the 10 s after the heal
 *   (`recovery`), and later (`after`).
 *
 * Checks: 100% delivery (baseline), ≥ 99.9% (loss), p99 latency ≤ 6 × the mean link latency
 * (in virtual time computing takes no time, so there is no processing term to add), 100% of the
 * later messages after the partition heals. RSS per peer is reported (aim: < 2 MB).
 *
 * Output: each scenario's report (stderr) and one JSON line per scenario (stdout), then a
 * summary line. Exit code 1 if a check fails.
 *
 * Run: npm run sim                        all three, 1,000 peers (about 15 minutes on 2 cores)
 *      npm run sim -- baseline partition  some of them
 *      SIM_PEERS=200 npm run sim          fewer peers;  SIM_SEED=n: another seed
 *      npm run sim -- --help              this usage
 */
import '../src/compat.js'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { formatReport, runScenario } from '../src/testing/index.js'
import type { Scenario, ScenarioReport } from '../src/testing/index.js'

const LATENCY = { min: 20, max: 80 } as const
const CHILD_TIMEOUT_MS = 60 * 60_000

/** A figure with its target; `ok` undefined: reported, not checked. */
interface Check { readonly what: string, readonly value: number, readonly target: string, readonly ok?: boolean }

/** The scenarios, by name, for `peers` peers and a seed. */
function scenarios (peers: number, seed: number): Record<string, Scenario> {
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

function checks (name: string, report: ScenarioReport): Check[] {
  const out: Check[] = []
  const check = (what: string, value: number, target: string, ok?: boolean): void => { out.push({ what, value, target, ok }) }
  const p99Bound = 6 * report.meanLinkLatency
  const batch = (label: string): ScenarioReport['total'] => {
    const found = report.batches.find(b => b.label === label)
    if (found == null) throw new Error(`no batch ${label}`)
    return found
  }
  if (name === 'baseline') {
    check('delivery ratio', report.total.deliveryRatio, '= 1', report.total.deliveryRatio === 1)
    check('p99 latency (ms)', report.total.latency.p99, `≤ 6 × mean link latency = ${p99Bound.toFixed(0)}`, report.total.latency.p99 <= p99Bound)
  } else if (name === 'loss') {
    check('delivery ratio', report.total.deliveryRatio, '≥ 0.999', report.total.deliveryRatio >= 0.999)
    check('p99 latency (ms)', report.total.latency.p99, `≤ 6 × mean link latency = ${p99Bound.toFixed(0)}`, report.total.latency.p99 <= p99Bound)
    const transmissions = report.network.segments + report.network.lostSegments
    check('segments lost', report.network.lostSegments / transmissions, '≈ 0.01', Math.abs(report.network.lostSegments / transmissions - 0.01) < 0.001)
  } else if (name === 'partition') {
    const before = batch('before')
    const during = batch('during')
    const recovery = batch('recovery')
    const after = batch('after')
    check('delivery before', before.deliveryRatio, '= 1', before.deliveryRatio === 1)
    check('deliveries across the partition', during.delivered - during.deliveredReachable, '= 0', during.delivered === during.deliveredReachable && during.reachable < during.expected)
    check('delivery during, to reachable peers', during.deliveredReachable / during.reachable, 'reported')
    check('delivery in the 10 s after the heal', recovery.deliveryRatio, 'reported')
    check('p99 latency in the 10 s after the heal (ms)', recovery.latency.p99, 'reported')
    check('delivery after (from 10 s after the heal)', after.deliveryRatio, '= 1', after.deliveryRatio === 1)
    check('p99 latency after (ms)', after.latency.p99, `≤ 6 × mean link latency = ${p99Bound.toFixed(0)}`, after.latency.p99 <= p99Bound)
  }
  if (report.memory != null) check('RSS per peer after warm-up (MB)', report.memory.rssPerPeerIdleMB, '< 2 (aim)', report.memory.rssPerPeerIdleMB < 2)
  return out
}

/** In a child: run one scenario, print its report to stderr and a JSON line to stdout. */
async function child (name: string, peers: number, seed: number): Promise<void> {
  const scenario = scenarios(peers, seed)[name]
  if (scenario == null) throw new Error(`unknown scenario ${name}`)
  const gc = (globalThis as { gc?: () => void }).gc
  const report = await runScenario({
    ...scenario,
    memoryUsage: () => process.memoryUsage(),
    gc: gc == null ? undefined : () => { gc(); gc() },
    log: line => { process.stderr.write(`  [${name}] ${line}\n`) }
  })
  process.stderr.write(`${formatReport(report)}\n`)
  const results = checks(name, report)
  for (const c of results) process.stderr.write(`  ${c.ok == null ? '    ' : c.ok ? 'ok  ' : 'FAIL'} ${c.what}: ${Number.isInteger(c.value) ? c.value : c.value.toFixed(4)} (${c.target})\n`)
  process.stdout.write(`${JSON.stringify({ scenario: name, ok: results.every(c => c.ok !== false), checks: results, report })}\n`)
}

async function runChild (name: string, peers: number, seed: number): Promise<{ ok: boolean, line: string }> {
  const file = fileURLToPath(import.meta.url)
  const proc = spawn(process.execPath, [...process.execArgv, '--expose-gc', file], {
    env: { ...process.env, SIM_CHILD: JSON.stringify({ name, peers, seed }) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  let out = ''
  proc.stdout.setEncoding('utf8')
  proc.stdout.on('data', (chunk: string) => { out += chunk })
  const timer = setTimeout(() => { proc.kill('SIGKILL') }, CHILD_TIMEOUT_MS)
  const code = await new Promise<number | null>(resolve => proc.on('exit', resolve))
  clearTimeout(timer)
  const line = out.trim().split('\n').pop() ?? ''
  if (code !== 0 || !line.startsWith('{')) throw new Error(`scenario ${name}: the child exited with ${String(code)}`)
  return { ok: (JSON.parse(line) as { ok: boolean }).ok, line }
}

const childSpec = process.env.SIM_CHILD
if (childSpec != null) {
  const { name, peers, seed } = JSON.parse(childSpec) as { name: string, peers: number, seed: number }
  await child(name, peers, seed)
} else {
  const peers = Number(process.env.SIM_PEERS ?? 1_000)
  const seed = Number(process.env.SIM_SEED ?? 1)
  const all = Object.keys(scenarios(peers, seed))
  const options = process.argv.slice(2).filter(a => a.startsWith('-'))
  if (options.includes('--help') || options.includes('-h')) {
    process.stdout.write(`npm run sim [-- scenario…]: GossipSub scenarios in virtual time (bench/sim.ts)\n` +
      `  scenarios: ${all.join(', ')} (default: all)\n` +
      '  SIM_PEERS=n  peers per scenario (default 1000; 50 runs in seconds)\n' +
      '  SIM_SEED=n   seed (default 1)\n' +
      '  Output: each report on stderr; one JSON line per scenario, then a summary line, on stdout.\n')
    process.exit(0)
  }
  if (options.length > 0) throw new Error(`unknown options: ${options.join(' ')} (npm run sim -- --help)`)
  const wanted = process.argv.slice(2).filter(a => !a.startsWith('-'))
  const unknown = wanted.filter(w => !all.includes(w))
  if (unknown.length > 0) throw new Error(`unknown scenarios: ${unknown.join(', ')} (known: ${all.join(', ')})`)
  const names = wanted.length > 0 ? wanted : all
  let failed = 0
  const started = Date.now()
  for (const name of names) {
    process.stderr.write(`\n== ${name}: ${peers} peers, seed ${seed}\n`)
    const { ok, line } = await runChild(name, peers, seed)
    process.stdout.write(`${line}\n`)
    if (!ok) failed++
  }
  process.stdout.write(`${JSON.stringify({ scenarios: names.length, failed, peers, seed, wallSeconds: Math.round((Date.now() - started) / 1000) })}\n`)
  process.exitCode = failed === 0 ? 0 : 1
}
