/**
 * The standard simulation scenarios (`npm run sim`): GossipSub peers on a simulated network
 * (`peerswarm/testing`), every one a real swarm with Noise, Yamux and GossipSub, in one process
 * and in virtual time. See docs/simulation.md for the model and how to read the report.
 *
 * Scenarios (src/testing/standard-scenarios.ts; each in a fresh child process, so that RSS is
 * its own):
 * - `baseline`: 1,000 peers, random 8-regular topology, one-way link latency uniform in
 *   [20, 80] ms, 100 messages of 256 B from 10 publishers, one every 50 ms;
 * - `loss`: the same with 1% of the segments lost on every link (each loss delays its chunk by
 *   a retransmission timeout);
 * - `partition`: the baseline network; 30% of the peers are cut off from the rest 5 s after the
 *   warm-up, connections across the cut are reset 10 s later (a keep-alive timeout), and it
 *   heals 30 s after it opened. Messages before, during, in the 10 s after the heal
 *   (`recovery`), and later (`after`);
 * - `kad`: 1,000 Kademlia peers (src/testing/kad-scenario.ts), the same link latencies and 1%
 *   loss, each joining from 3 peers that joined before it; 200 `getClosestPeers` of random keys,
 *   200 records put and got from random peers, then 20% of the peers leave and every record is
 *   got again.
 *
 * Checks: 100% delivery (baseline), ≥ 99.9% (loss), p99 latency ≤ 1.5 × the p99 of the same
 * deliveries' shortest paths (what an ideal router would take on these links; in virtual time
 * computing takes no time, so there is no processing term to add), mesh degrees after the
 * warm-up and at the end within [D_lo, D_hi] (baseline, loss), 100% of the later messages
 * after the partition heals; for `kad`, every lookup of each kind succeeds
 * (records found again after the leave included) and the mean hops stay within log₂ N. RSS per
 * peer is reported (aim: < 2 MB for GossipSub).
 *
 * Output: progress (at most a line every 5 s of real time) and each scenario's report on
 * stderr; one JSON line per scenario on stdout, then a summary line. Exit code 1 if a check
 * fails. Ctrl-C stops the run: the scenario under way reports what it measured so far
 * (`"partial"` in its JSON line), later ones do not run, and the exit code is 130.
 *
 * Run: npm run sim                        all four, 1,000 peers (see docs/simulation.md for the times)
 *      npm run sim -- baseline partition  some of them
 *      npm run sim -- --report sim.html   also a page of charts (self-contained HTML)
 *      npm run sim -- --shadow <dir>      write the scenarios as Shadow simulations, run nothing
 *      npm run sim -- --peers 200         fewer peers (or SIM_PEERS=200);  --seed n (SIM_SEED): another seed
 *      npm run sim -- baseline --peers 10000   ten thousand (over the cores' threads; the heap limit raised to fit)
 *      npm run sim -- baseline --threads 2     over two worker threads (docs/simulation.md, "Over threads")
 *      npm run sim -- kad --timeout 120   stop after two hours as Ctrl-C would, with a partial report
 *      npm run sim -- --help              this usage
 */
import '../src/compat.js'
import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { getHeapStatistics } from 'node:v8'
import { gossipsub } from '../src/index.js'
import { availableParallelism } from 'node:os'
import { formatReport, runKadScenario, runScenario, runScenarioInShards, spawnShard, standardKadScenario } from '../src/testing/index.js'
import { formatProgress } from '../src/testing/scenario.js'
import { renderReportHtml } from '../src/testing/report-html.js'
import { shadowConfig } from '../src/testing/processes.js'
import { standardScenarios } from '../src/testing/standard-scenarios.js'
import { bundlePeerProgram } from '../scripts/peer-bundle.js'
import type { Scenario, ScenarioReport } from '../src/testing/index.js'

/** After `--timeout` and a Ctrl-C to the child (so that it reports), how long it has to report before it is killed. */
const REPORT_GRACE_MS = 5 * 60_000
/** Heap a child may need per peer, in MB: what the largest runs took, with room (docs/simulation.md). */
const HEAP_MB_PER_PEER: Readonly<Record<string, number>> = { kad: 10, default: 1 }
/** The young generation's semi-space of a scenario's child, MB (see `heapFlags`). */
const SEMI_SPACE_MB = 64
/** From this many peers, a GossipSub scenario runs over several threads by default (see `defaultThreads`). */
const THREADS_FROM = 5_000
/** The most threads a scenario takes by default. */
const MAX_THREADS = 4
/** A second Ctrl-C within this long of the first is the same keypress reaching parent and child: ignored. */
const SIGNAL_ECHO_MS = 1_000

/**
 * The p99 check: a scenario's p99 latency at most this many times the p99 of its deliveries'
 * shortest paths over the links. The bound grows with the network's paths, as a fixed number
 * of mean link latencies did not; GossipSub's mesh is a random subgraph of the links, so its
 * paths are longer than the shortest (docs/simulation.md has the ratios measured).
 */
const PATH_P99_FACTOR = 1.5

/** A figure with its target; `ok` undefined: reported, not checked. */
interface Check { readonly what: string, readonly value: number, readonly target: string, readonly ok?: boolean }

/** What a child prints on its last stdout line. */
interface ChildLine { readonly scenario: string, readonly ok: boolean, readonly partial?: boolean, readonly checks: Check[], readonly report: ScenarioReport }

function checks (name: string, report: ScenarioReport): Check[] {
  const out: Check[] = []
  const check = (what: string, value: number, target: string, ok?: boolean): void => { out.push({ what, value, target, ok }) }
  const p99Check = (what: string, batch: ScenarioReport['total']): void => {
    const bound = PATH_P99_FACTOR * batch.pathLatency.p99
    check(what, batch.latency.p99, `≤ ${PATH_P99_FACTOR} × shortest paths' p99 = ${bound.toFixed(0)}`, batch.latency.p99 <= bound)
  }
  // The standard scenarios keep GossipSub's D_lo and D_hi (on 8 links a mesh stays below D_hi).
  const { meshNLow, meshNHigh } = gossipsub.defaultConfig
  const meshCheck = (ok: boolean): void => {
    for (const [when, degrees] of [['after the warm-up', report.meshDegree.start], ['at the end', report.meshDegree.end]] as const) {
      check(`mesh degree ${when}, min–max`, degrees.min, `${degrees.min}–${degrees.max} within [D_lo, D_hi] = [${meshNLow}, ${meshNHigh}]`,
        ok ? degrees.min >= meshNLow && degrees.max <= meshNHigh : undefined)
    }
  }
  const batch = (label: string): ScenarioReport['total'] => {
    const found = report.batches.find(b => b.label === label)
    if (found == null) throw new Error(`no batch ${label}`)
    return found
  }
  if (name === 'baseline') {
    check('delivery ratio', report.total.deliveryRatio, '= 1', report.total.deliveryRatio === 1)
    p99Check('p99 latency (ms)', report.total)
    meshCheck(true)
  } else if (name === 'loss') {
    check('delivery ratio', report.total.deliveryRatio, '≥ 0.999', report.total.deliveryRatio >= 0.999)
    p99Check('p99 latency (ms)', report.total)
    const transmissions = report.network.segments + report.network.lostSegments
    check('segments lost', report.network.lostSegments / transmissions, '≈ 0.01', Math.abs(report.network.lostSegments / transmissions - 0.01) < 0.001)
    meshCheck(true)
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
    p99Check('p99 latency after (ms)', after)
    meshCheck(false)
  }
  if (name === 'kad' && report.kad != null) {
    const kad = report.kad
    for (const kind of kad.kinds ?? []) {
      check(`${kind.label}: success`, kind.succeeded / kind.lookups, '= 1', kind.succeeded === kind.lookups)
      check(`${kind.label}: mean hops`, kind.hopStats.mean, `≤ log2 N = ${(kad.log2Peers ?? NaN).toFixed(1)}`, kind.hopStats.mean <= (kad.log2Peers ?? 0))
      check(`${kind.label}: p99 hops`, kind.hopStats.p99, 'reported')
      check(`${kind.label}: mean requests`, kind.messages.mean, 'reported')
      check(`${kind.label}: p99 latency (ms)`, kind.latency.p99, 'reported')
    }
    if (kad.precision != null) check('getClosestPeers precision (mean)', kad.precision.mean, 'reported')
    if (kad.replicas != null) check('replicas per record after the leave (min)', kad.replicas.afterLeave.min, '≥ 1', kad.replicas.afterLeave.min >= 1)
    if (report.memory != null) check('RSS per peer after the join (MB)', report.memory.rssPerPeerIdleMB, 'reported')
    return out
  }
  if (report.memory != null) check('RSS per peer after warm-up (MB)', report.memory.rssPerPeerIdleMB, '< 2 (aim)', report.memory.rssPerPeerIdleMB < 2)
  return out
}

/**
 * In a child: run one scenario, print progress and its report to stderr and a JSON line to
 * stdout. Ctrl-C (SIGINT) stops it and it reports what it measured; a second one (after the
 * echo of the first) exits at once.
 */
async function child (name: string, peers: number, seed: number, threads: number): Promise<void> {
  const scenario = (standardScenarios(peers, seed) as Record<string, Scenario>)[name]
  if (scenario == null && name !== 'kad') throw new Error(`unknown scenario ${name}`)
  const stop = new AbortController()
  let firstSignal: number | undefined
  process.on('SIGINT', () => {
    const now = Date.now()
    if (firstSignal == null) {
      firstSignal = now
      process.stderr.write(`  [${name}] interrupted: stopping and reporting what was measured (Ctrl-C again to quit at once)\n`)
      stop.abort(new Error('interrupted (SIGINT)'))
    } else if (now - firstSignal > SIGNAL_ECHO_MS) {
      process.exit(130)
    }
  })
  // Tell the parent that a Ctrl-C now stops the run with a report (its --timeout starts here),
  // and close the channel, which would otherwise keep this process alive.
  process.send?.('ready', () => { process.disconnect?.() })
  const gc = (globalThis as { gc?: () => void }).gc
  const report = name === 'kad'
    ? await runKadScenario({
      ...standardKadScenario(peers, seed),
      memoryUsage: () => process.memoryUsage(),
      gc: gc == null ? undefined : () => { gc(); gc() },
      log: line => { process.stderr.write(`  [${name}] ${line}\n`) },
      progressInterval: Number(process.env.SIM_PROGRESS_MS ?? 5_000),
      signal: stop.signal
    })
    : await runGossipSub({
      ...scenario,
      memoryUsage: () => process.memoryUsage(),
      gc: gc == null ? undefined : () => { gc(); gc() },
      log: line => { process.stderr.write(`  [${name}] ${line}\n`) },
      progress: p => { process.stderr.write(`  [${name}] ${formatProgress(p)}\n`) },
      progressInterval: Number(process.env.SIM_PROGRESS_MS ?? 5_000),
      signal: stop.signal
    }, threads)
  process.stderr.write(`${formatReport(report)}\n`)
  // A partial report cannot pass the scenario's checks: they are not made, and it is not ok.
  const results = report.partial == null ? checks(name, report) : []
  if (report.partial != null) process.stderr.write('  checks not made: the run was stopped (partial report)\n')
  for (const c of results) process.stderr.write(`  ${c.ok == null ? '    ' : c.ok ? 'ok  ' : 'FAIL'} ${c.what}: ${Number.isInteger(c.value) ? c.value : c.value.toFixed(4)} (${c.target})\n`)
  const line: ChildLine = { scenario: name, ok: report.partial == null && results.every(c => c.ok !== false), ...(report.partial == null ? {} : { partial: true }), checks: results, report }
  process.stdout.write(`${JSON.stringify(line)}\n`)
}

/** A GossipSub scenario, in this thread or (`threads` > 1) over that many worker threads. */
async function runGossipSub (scenario: Scenario, threads: number): Promise<ScenarioReport> {
  if (threads <= 1) return await runScenario(scenario)
  scenario.log?.(`over ${threads} threads (each runs every ${threads === 2 ? 'other' : `${threads}th`} peer on its own virtual clock)`)
  return await runScenarioInShards(scenario, { threads, spawn: spawnShard })
}

/**
 * Threads a GossipSub scenario runs on by default: one below {@link THREADS_FROM} peers (the
 * figures of docs/simulation.md), else the machine's cores, at most {@link MAX_THREADS}.
 * Kademlia runs on one.
 */
function defaultThreads (name: string, peers: number): number {
  return name === 'kad' || peers < THREADS_FROM ? 1 : Math.max(1, Math.min(MAX_THREADS, availableParallelism()))
}

/** Run one scenario in a child; undefined if it printed no report (killed). */
async function runChild (name: string, peers: number, seed: number, threads: number, timeoutMs: number | undefined, track: (proc: ReturnType<typeof spawn>) => void): Promise<{ line: string, parsed: ChildLine } | undefined> {
  const file = fileURLToPath(import.meta.url)
  const proc = spawn(process.execPath, [...process.execArgv, ...heapFlags(name, peers, threads), '--expose-gc', file], {
    env: { ...process.env, SIM_CHILD: JSON.stringify({ name, peers, seed, threads }) },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc']
  })
  track(proc)
  let out = ''
  proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
  // At the timeout the child is stopped as by Ctrl-C, so that it still reports what it measured;
  // the time counts from when it can (it says 'ready' once its handler is in place).
  let kill: ReturnType<typeof setTimeout> | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  proc.on('message', (message) => {
    if (message !== 'ready' || timeoutMs == null || timer != null) return
    timer = setTimeout(() => {
      process.stderr.write(`scenario ${name}: --timeout reached, stopping it (partial report)\n`)
      proc.kill('SIGINT')
      kill = setTimeout(() => { proc.kill('SIGKILL') }, REPORT_GRACE_MS)
    }, timeoutMs)
  })
  const code = await new Promise<number | null>(resolve => proc.on('exit', resolve))
  clearTimeout(timer)
  clearTimeout(kill)
  const line = out.trim().split('\n').pop() ?? ''
  if (!line.startsWith('{')) {
    if (code === 130 || code == null) return undefined
    throw new Error(`scenario ${name}: the child exited with ${String(code)}`)
  }
  return { line, parsed: JSON.parse(line) as ChildLine }
}

/**
 * V8 flags for a scenario's child. `--max-old-space-size` when its peers need more heap than
 * V8's default limit gives (about 4 GB on a 64-bit machine with 16 GB or more), up to three
 * quarters of the machine's memory. `--max-semi-space-size=64` (MB; Node's default is 16 or
 * 32): in virtual time an object that lives a few simulated seconds outlives many young-generation
 * GCs and dies in the old generation; a larger young generation lets more of them die young
 * (docs/simulation.md has the figures). A flag the user gave (in `NODE_OPTIONS` or node's own
 * flags) is left alone.
 */
function heapFlags (name: string, peers: number, threads: number): string[] {
  const given = (flag: string): boolean => [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some(a => a.includes(flag))
  const flags = given('--max-semi-space-size') ? [] : [`--max-semi-space-size=${SEMI_SPACE_MB}`]
  if (given('--max-old-space-size')) return flags
  // The limit is each thread's: with threads, each holds its share of the peers.
  const neededMb = Math.ceil(peers / threads) * (HEAP_MB_PER_PEER[name] ?? HEAP_MB_PER_PEER.default)
  const defaultMb = getHeapStatistics().heap_size_limit / 2 ** 20
  if (neededMb <= defaultMb) return flags
  const limitMb = Math.floor(Math.min(neededMb, 0.75 * totalmem() / 2 ** 20))
  return limitMb > defaultMb ? [...flags, `--max-old-space-size=${limitMb}`] : flags
}

/** The options of the command line, each with a value (`--help` aside). */
const OPTIONS = ['--report', '--shadow', '--from', '--peers', '--seed', '--timeout', '--threads'] as const

/** `--name value` options and the rest. */
function parseArgs (argv: readonly string[]): { options: Map<string, string | true>, names: string[] } {
  const withValue = new Set<string>(OPTIONS)
  const options = new Map<string, string | true>()
  const names: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (!arg.startsWith('-')) {
      names.push(arg)
    } else if (withValue.has(arg)) {
      const value = argv[++i]
      if (value == null || value.startsWith('-')) throw new Error(`${arg} needs a value (npm run sim -- --help)`)
      options.set(arg, value)
    } else {
      options.set(arg, true)
    }
  }
  return { options, names }
}

const USAGE = 'npm run sim [-- [options] [scenario…]]: GossipSub and Kademlia scenarios in virtual time (bench/sim.ts)\n' +
  '  scenarios: %s (default: all)\n' +
  '  --report <file.html>  also write the reports as a page of charts (self-contained HTML)\n' +
  '  --from <file>         with --report: draw the JSON lines of an earlier run (its stdout) instead of running\n' +
  '  --shadow <dir>        write the scenarios as Shadow simulations (<dir>/<scenario>/shadow.yaml, …); run nothing\n' +
  '  --peers n             peers per scenario (default 1000, or SIM_PEERS; 50 runs in seconds)\n' +
  '  --seed n              seed (default 1, or SIM_SEED)\n' +
  '  --timeout <minutes>   stop each scenario after this long as Ctrl-C would (it reports what it measured); default: none\n' +
  `  --threads n           run a GossipSub scenario over n worker threads (default: 1 below ${THREADS_FROM.toLocaleString('en')} peers, else the cores, at most ${MAX_THREADS})\n` +
  '  A scenario runs in a child node whose heap limit is raised to what its peers need (up to 3/4 of the memory),\n' +
  '  with --max-semi-space-size=64, unless --max-old-space-size or --max-semi-space-size is given (NODE_OPTIONS).\n' +
  '  SIM_PROGRESS_MS=n  real ms between progress lines (default 5000)\n' +
  '  Output: progress and each report on stderr; one JSON line per scenario, then a summary line, on stdout.\n' +
  '  Ctrl-C: the scenario under way reports what it measured (partial), the others do not run; exit code 130.\n'

/**
 * Write `names` as Shadow simulations under `dir`, one directory each. Each host runs the peer
 * program compiled into one module (scripts/peer-bundle.ts) with this Node.
 */
async function writeShadow (dir: string, names: readonly string[], all: Record<string, Scenario>): Promise<void> {
  const root = resolve(dir)
  const program = await bundlePeerProgram()
  for (const name of names) {
    const scenario = all[name]
    if (scenario == null) {
      process.stderr.write(`${name}: not written: only the GossipSub scenarios are written for Shadow\n`)
      continue
    }
    const out = join(root, name)
    let config
    try {
      config = shadowConfig(scenario, {
        dir: out,
        // libuv on epoll: whether Shadow handles io_uring is not known.
        command: file => ({ path: process.execPath, args: ['--expose-gc', program, file], environment: { UV_USE_IO_URING: '0' } }),
        collect: `\`npm run net -- --from-logs shadow.data/hosts --peers ${scenario.peers} --seed ${String(scenario.seed)}\` (in the repository; the baseline's and loss's schedule)`
      })
    } catch (err) {
      process.stderr.write(`${name}: not written: ${(err as Error).message}\n`)
      continue
    }
    for (const file of config.files) {
      mkdirSync(dirname(join(out, file.path)), { recursive: true })
      writeFileSync(join(out, file.path), file.text)
    }
    process.stderr.write(`${name}: ${join(out, 'shadow.yaml')} (${scenario.peers} hosts)${config.notes.map(n => `\n  note: ${n}`).join('')}\n`)
    process.stdout.write(`${JSON.stringify({ scenario: name, shadow: join(out, 'shadow.yaml'), hosts: scenario.peers, shorterPaths: config.shorterPaths })}\n`)
  }
}

async function main (): Promise<void> {
  const { options, names: wanted } = parseArgs(process.argv.slice(2))
  const count = (option: string, fallback: string | undefined, dflt: number, min: number): number => {
    const given = options.get(option) ?? fallback
    if (given == null) return dflt
    const value = Number(given)
    if (!Number.isInteger(value) || value < min) throw new Error(`${option} must be an integer of at least ${min}, got ${String(given)} (npm run sim -- --help)`)
    return value
  }
  const peers = count('--peers', process.env.SIM_PEERS, 1_000, 4)
  const seed = count('--seed', process.env.SIM_SEED, 1, 0)
  const threadsGiven = options.has('--threads') ? count('--threads', undefined, 1, 1) : undefined
  const timeout = options.get('--timeout')
  const timeoutMin = typeof timeout === 'string' ? Number(timeout) : undefined
  if (timeoutMin != null && !(timeoutMin > 0)) throw new Error(`--timeout must be a positive number of minutes, got ${String(timeout)} (npm run sim -- --help)`)
  const all: Record<string, Scenario> = standardScenarios(peers, seed)
  const known = [...Object.keys(all), 'kad']
  if (options.has('--help') || options.has('-h')) {
    process.stdout.write(USAGE.replace('%s', known.join(', ')))
    return
  }
  const unknownOptions = [...options.keys()].filter(o => !(OPTIONS as readonly string[]).includes(o))
  if (unknownOptions.length > 0) throw new Error(`unknown options: ${unknownOptions.join(' ')} (npm run sim -- --help)`)
  const unknown = wanted.filter(w => !known.includes(w))
  if (unknown.length > 0) throw new Error(`unknown scenarios: ${unknown.join(', ')} (known: ${known.join(', ')})`)
  const names = wanted.length > 0 ? wanted : known
  const reportFile = options.get('--report') as string | undefined
  const writeReport = (reports: readonly ScenarioReport[], subtitle: string): void => {
    if (reportFile == null) return
    writeFileSync(reportFile, renderReportHtml(reports, { title: 'peerswarm simulation', subtitle }))
    process.stderr.write(`report: ${resolve(reportFile)}\n`)
  }

  const shadowDir = options.get('--shadow')
  if (typeof shadowDir === 'string') {
    await writeShadow(shadowDir, names, all)
    return
  }
  const from = options.get('--from')
  if (typeof from === 'string') {
    if (reportFile == null) throw new Error('--from draws an earlier run: give --report <file.html> too')
    const lines = readFileSync(from, 'utf8').split('\n').filter(l => l.startsWith('{"scenario"')).map(l => JSON.parse(l) as ChildLine)
    writeReport(lines.filter(l => wanted.length === 0 || wanted.includes(l.scenario)).map(l => l.report), `drawn from ${from}`)
    return
  }

  let failed = 0
  let interrupted = false
  let current: ReturnType<typeof spawn> | undefined
  let firstSignal: number | undefined
  process.on('SIGINT', () => {
    const now = Date.now()
    if (firstSignal == null) {
      firstSignal = now
      interrupted = true
      current?.kill('SIGINT')
    } else if (now - firstSignal > SIGNAL_ECHO_MS) {
      current?.kill('SIGKILL')
      process.exit(130)
    }
  })
  const started = Date.now()
  const reports: ScenarioReport[] = []
  for (const name of names) {
    if (interrupted) break
    // The Kademlia runner has steps over the whole network: it runs on one thread.
    if (name === 'kad' && (threadsGiven ?? 1) > 1) process.stderr.write('kad: runs on one thread (--threads is for the GossipSub scenarios)\n')
    const threads = name === 'kad' ? 1 : threadsGiven ?? defaultThreads(name, peers)
    process.stderr.write(`\n== ${name}: ${peers} peers, seed ${seed}${threads > 1 ? `, ${threads} threads` : ''}\n`)
    const result = await runChild(name, peers, seed, threads, timeoutMin == null ? undefined : timeoutMin * 60_000, proc => { current = proc })
    current = undefined
    if (result == null) break
    process.stdout.write(`${result.line}\n`)
    reports.push(result.parsed.report)
    if (!result.parsed.ok) failed++
  }
  const wallSeconds = Math.round((Date.now() - started) / 1000)
  writeReport(reports, `npm run sim: ${peers} peers, seed ${seed}, ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${wallSeconds} s of real time${interrupted ? '; interrupted (Ctrl-C): partial' : ''}`)
  process.stdout.write(`${JSON.stringify({ scenarios: reports.length, failed, peers, seed, wallSeconds, ...(interrupted ? { interrupted: true } : {}) })}\n`)
  process.exitCode = interrupted ? 130 : failed === 0 ? 0 : 1
}

const childSpec = process.env.SIM_CHILD
if (childSpec != null) {
  const { name, peers, seed, threads } = JSON.parse(childSpec) as { name: string, peers: number, seed: number, threads?: number }
  await child(name, peers, seed, threads ?? 1)
} else {
  await main()
}
