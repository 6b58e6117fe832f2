/**
 * A standard scenario as separate processes on 127.0.0.1 (`npm run net -- --peers 50`): one
 * peer program (scripts/peer.ts) per peer, on real TCP in real time, with the simulator's
 * identities, topology, subscribers, publishers and payloads for the same seed. Once every peer
 * is ready (connected to its neighbours, its mesh formed) they all start the schedule; the
 * report has the simulator's shape (delivery, latency percentiles, duplicates, bytes per
 * delivery) with RSS per process. Loopback has no link latency, so latencies here are
 * processing and queueing: compare them with each other, not with the simulator's.
 *
 * Run: npm run net -- --peers 50                   the baseline's traffic on 50 processes
 *      npm run net -- --peers 8 --messages 20      a shorter schedule (--interval ms between messages)
 *      npm run net -- --report net.html            also the page of charts
 *      npm run net -- --from-logs <dir> --peers N  the report of a Shadow run (its hosts' *.stdout)
 *
 * Output: progress on stderr, the report on stderr, one JSON line (`{ scenario, report }`) on
 * stdout. The processes start a few at a time (about a second of CPU each). Bounded in time:
 * set-up at most 60 s + 3 s per peer (with fewer than 90% of the peers ready by then it stops,
 * with a partial report), then the schedule and its settle time; whatever still runs 20 s
 * later is killed. Ctrl-C stops the peers and reports what they
 * measured (partial).
 */
import '../src/compat.js'
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { availableParallelism } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { formatReport } from '../src/testing/index.js'
import { peerConfigs, reportFromLines } from '../src/testing/processes.js'
import { renderReportHtml } from '../src/testing/report-html.js'
import { scenarioPlan } from '../src/testing/scenario.js'
import { standardScenarios } from '../src/testing/standard-scenarios.js'
import { bundlePeerProgram } from './peer-bundle.js'
import type { PeerConfig, PeerLine } from '../src/testing/peer-program.js'
import type { Scenario } from '../src/testing/index.js'
import type { ChildProcess } from 'node:child_process'

interface Options {
  readonly peers: number
  readonly seed: number
  readonly messages?: number
  readonly interval?: number
  readonly settle?: number
  readonly report?: string
  readonly fromLogs?: string
}

function parse (argv: readonly string[]): Options {
  const values = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--help' || arg === '-h') {
      process.stdout.write('npm run net -- [--peers n (50)] [--seed n (1)] [--messages n (100)] [--interval ms (50)] [--settle ms (10000)] [--report file.html] [--from-logs dir]\n' +
        '  The baseline scenario\'s traffic as separate processes on 127.0.0.1 (scripts/net.ts); see docs/simulation.md.\n')
      process.exit(0)
    }
    const value = argv[i + 1]
    if (!['--peers', '--seed', '--messages', '--interval', '--settle', '--report', '--from-logs'].includes(arg) || value == null) throw new Error(`unknown option or missing value: ${arg} (npm run net -- --help)`)
    values.set(arg, value)
    i++
  }
  const number = (name: string): number | undefined => values.has(name) ? Number(values.get(name)) : undefined
  return { peers: number('--peers') ?? 50, seed: number('--seed') ?? 1, messages: number('--messages'), interval: number('--interval'), settle: number('--settle'), report: values.get('--report'), fromLogs: values.get('--from-logs') }
}

/** The baseline scenario for these options (its traffic; no link model on loopback). */
function scenarioOf (options: Options): Scenario {
  const baseline = standardScenarios(options.peers, options.seed).baseline
  const publish = baseline.publish as { messages: number, publishers: number, size: number, interval: number }
  // Degree 8 as in the simulator; fewer where the peers are too few (n × degree must be even).
  let degree = Math.min(8, options.peers - 1)
  if ((degree * options.peers) % 2 === 1) degree--
  return {
    ...baseline,
    name: 'baseline (processes)',
    topology: { type: 'random-regular', degree },
    publish: { ...publish, messages: options.messages ?? publish.messages, interval: options.interval ?? publish.interval, publishers: Math.min(publish.publishers, options.peers) },
    settle: options.settle ?? 10_000,
    link: undefined
  }
}

/** `count` free TCP ports on 127.0.0.1 (held open together, then released). */
async function freePorts (count: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, async () => await new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { resolve(server) })
  })))
  const ports = servers.map(s => (s.address() as { port: number }).port)
  await Promise.all(servers.map(async s => { await new Promise(resolve => s.close(resolve)) }))
  return ports
}

/** Every `*.stdout` file under `dir` (a Shadow run's hosts), parsed. */
function linesFromLogs (dir: string): PeerLine[] {
  const lines: PeerLine[] = []
  const walk = (path: string): void => {
    for (const name of readdirSync(path)) {
      const full = join(path, name)
      if (statSync(full).isDirectory()) walk(full)
      else if (name.endsWith('.stdout')) {
        for (const line of readFileSync(full, 'utf8').split('\n')) if (line.startsWith('{')) lines.push(JSON.parse(line) as PeerLine)
      }
    }
  }
  walk(dir)
  return lines
}

function output (scenario: Scenario, lines: readonly PeerLine[], times: { setupMs: number, totalMs: number }, options: Options): void {
  const report = reportFromLines(scenario, lines, times)
  process.stderr.write(`${formatReport(report)}\n`)
  process.stdout.write(`${JSON.stringify({ scenario: report.name, report })}\n`)
  if (options.report != null) {
    writeFileSync(options.report, renderReportHtml([report], { title: 'peerswarm: separate processes', subtitle: `npm run net: ${options.peers} processes on 127.0.0.1, seed ${options.seed}, ${new Date().toISOString().slice(0, 10)}, Node ${process.version}` }))
    process.stderr.write(`report: ${resolve(options.report)}\n`)
  }
  if (report.partial != null) process.exitCode = process.exitCode ?? 1
}

/** The peers' processes: started a few at a time, their lines collected and counted. */
class Peers {
  readonly lines: PeerLine[] = []
  readonly listening = new Set<number>()
  readonly ready = new Set<number>()
  readonly exited = new Map<number, number | null>()
  published = 0
  expected = 0
  delivered = 0
  /** Called when every published message reached every subscriber, once all are published. */
  onAllDelivered: (() => void) | undefined
  private readonly procs = new Map<number, ChildProcess>()
  private readonly stderrTail = new Map<number, string>()
  private next = 0

  constructor (private readonly program: string, private readonly configs: readonly PeerConfig[], private readonly plan: ReturnType<typeof scenarioPlan>, private readonly concurrency: number) {}

  /** Start processes until `concurrency` are starting (not yet listening). */
  launch (): void {
    const starting = (): number => [...this.procs.keys()].filter(i => !this.listening.has(i) && !this.exited.has(i)).length
    while (this.next < this.configs.length && starting() < this.concurrency) this.spawn(this.configs[this.next++])
  }

  get started (): number {
    return this.procs.size
  }

  private spawn (config: PeerConfig): void {
    const index = config.index
    const proc = spawn(process.execPath, ['--expose-gc', this.program, '--json', JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'pipe'] })
    this.procs.set(index, proc)
    proc.stderr?.setEncoding('utf8')
    proc.stderr?.on('data', (chunk: string) => { this.stderrTail.set(index, ((this.stderrTail.get(index) ?? '') + chunk).slice(-2_000)) })
    proc.stdin?.on('error', () => {})
    proc.on('exit', code => {
      this.exited.set(index, code)
      this.launch()
    })
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', text => {
      if (!text.startsWith('{')) return
      const line = JSON.parse(text) as PeerLine
      this.lines.push(line)
      if (line.t === 'listening') {
        this.listening.add(line.index)
        this.launch()
      } else if (line.t === 'ready') this.ready.add(line.index)
      else if (line.t === 'published') {
        this.published++
        this.expected += this.plan.subscriberCount - this.plan.subscribed[line.index]
      } else if (line.t === 'delivery') {
        this.delivered++
        if (this.published === this.plan.totalMessages && this.delivered >= this.expected) this.onAllDelivered?.()
      } else if (line.t === 'error') process.stderr.write(`net: peer ${line.index}: ${line.error}\n`)
    })
  }

  /** A line to every running peer. */
  send (message: object): void {
    for (const proc of this.procs.values()) if (proc.exitCode == null && proc.signalCode == null) proc.stdin?.write(`${JSON.stringify(message)}\n`)
  }

  /** What a peer that failed wrote on stderr. */
  failures (): string[] {
    return [...this.exited].filter(([, code]) => code !== 0).map(([i, code]) => `peer ${i} exited with ${String(code)}:\n${this.stderrTail.get(i) ?? ''}`)
  }

  /** Wait until every started process exited, at most `ms`; kill the rest. */
  async end (ms: number): Promise<void> {
    const deadline = Date.now() + ms
    while (this.exited.size < this.procs.size && Date.now() < deadline) await sleep(100)
    this.kill()
  }

  kill (): void {
    this.next = this.configs.length
    for (const proc of this.procs.values()) if (proc.exitCode == null && proc.signalCode == null) proc.kill('SIGKILL')
  }
}

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

async function main (): Promise<void> {
  const options = parse(process.argv.slice(2))
  const scenario = scenarioOf(options)
  if (options.fromLogs != null) {
    output(scenario, linesFromLogs(options.fromLogs), { setupMs: 0, totalMs: 0 }, options)
    return
  }
  const n = options.peers
  const plan = scenarioPlan(scenario)
  const started = Date.now()
  const program = await bundlePeerProgram()
  const ports = await freePorts(n)
  const configs = peerConfigs(scenario, { address: i => `/ip4/127.0.0.1/tcp/${ports[i]}`, start: 'stdin' })
  // A process takes about a second of CPU to start: a few at a time, not all at once.
  const peers = new Peers(program, configs, plan, 2 * availableParallelism())
  const setupLimit = 60_000 + 3_000 * n
  const scheduleMs = configs.reduce((t, c) => Math.max(t, c.stopAfter), 0)
  process.stderr.write(`net: ${n} processes on 127.0.0.1, ${plan.links.length} links, seed ${plan.seed}\n`)

  let interrupted = false
  process.on('SIGINT', () => {
    if (interrupted) {
      peers.kill()
      process.exit(130)
    }
    interrupted = true
    process.exitCode = 130
    process.stderr.write('net: interrupted: stopping the peers and reporting what they measured (Ctrl-C again to quit at once)\n')
    peers.send({ t: 'stop' })
  })
  let lastProgress = Date.now()
  const progress = (phase: string): void => {
    if (Date.now() - lastProgress < 5_000) return
    lastProgress = Date.now()
    process.stderr.write(`net: ${phase}: ${peers.started}/${n} started, ${peers.listening.size} listening, ${peers.ready.size} ready, ${peers.published}/${plan.totalMessages} published, ${peers.delivered} deliveries; real ${((Date.now() - started) / 1000).toFixed(0)} s\n`)
  }

  // Set-up: every peer ready, within the limit.
  peers.launch()
  while (peers.ready.size < n && Date.now() - started < setupLimit && !interrupted && peers.failures().length === 0) {
    progress('set-up')
    await sleep(100)
  }
  const setupMs = Date.now() - started
  for (const failure of peers.failures()) process.stderr.write(`net: ${failure}\n`)
  const enough = peers.ready.size >= Math.ceil(0.9 * n) && peers.failures().length === 0
  if (!interrupted && peers.ready.size < n) {
    const late = configs.map(c => c.index).filter(i => !peers.ready.has(i))
    process.stderr.write(`net: ${late.length} peers not ready after ${(setupMs / 1000).toFixed(0)} s (e.g. ${late.slice(0, 5).join(', ')}); ${enough ? 'starting anyway' : 'stopping (fewer than 90% ready: the machine may be too busy; the report is partial)'}\n`)
  }
  if (!interrupted && enough) {
    process.stderr.write(`net: set up in ${(setupMs / 1000).toFixed(1)} s; the schedule starts\n`)
    peers.send({ t: 'start', at: Date.now() + 500 })
    // The schedule, then the settle time: until every expected delivery arrived.
    const end = Date.now() + 500 + scheduleMs
    const done = new Promise<boolean>(resolve => { peers.onAllDelivered = () => { resolve(true) } })
    while (Date.now() < end && !interrupted) {
      progress('measuring')
      if (await Promise.race([done, sleep(200).then(() => false)])) break
    }
  }
  // Every peer reports its counters and exits; what has not after 20 s is killed.
  peers.send({ t: 'stop' })
  await peers.end(20_000)
  output(scenario, peers.lines, { setupMs, totalMs: Date.now() - started }, options)
}

await main()
