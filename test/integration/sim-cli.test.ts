/**
 * `npm run sim`'s command line (bench/sim.ts): `--peers` and `--seed` choose the network,
 * `--timeout` stops a scenario as Ctrl-C would (it still reports what it measured), `--threads`
 * runs a GossipSub scenario over worker threads, and bad values are refused before anything runs.
 */
import { spawn } from 'node:child_process'
import { expect } from 'chai'

/** Run bench/sim.ts with `args`; its exit code, stdout and stderr. */
async function sim (args: readonly string[]): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const env = { ...process.env }
  delete env.SIM_PEERS
  delete env.SIM_SEED
  const proc = spawn(process.execPath, ['--import', 'tsx', 'bench/sim.ts', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const code = await new Promise<number | null>(resolve => proc.on('exit', resolve))
  return { code, stdout, stderr }
}

describe('npm run sim: the command line', function () {
  this.timeout(180_000)

  it('--peers and --seed choose the network; --timeout stops the scenario with a partial report', async () => {
    // 100 Kademlia peers take minutes to join: 3 s in, the run is stopped during the join.
    const { code, stdout, stderr } = await sim(['kad', '--peers', '100', '--seed', '7', '--timeout', '0.05'])
    expect(stderr).to.include('scenario kad: --timeout reached, stopping it (partial report)')
    const lines = stdout.trim().split('\n').map(l => JSON.parse(l) as Record<string, unknown>)
    expect(lines, stdout).to.have.length(2)
    const [scenario, summary] = lines as [{ scenario: string, ok: boolean, partial?: boolean, report: { peers: number, seed: string, partial?: { phase: string } } }, Record<string, unknown>]
    expect(scenario).to.include({ scenario: 'kad', ok: false, partial: true })
    expect(scenario.report.peers).to.equal(100)
    expect(scenario.report.seed).to.equal('7')
    expect(scenario.report.partial?.phase).to.equal('set-up')
    expect(summary).to.include({ scenarios: 1, failed: 1, peers: 100, seed: 7 })
    expect(code, 'checks not made count as a failure').to.equal(1)
  })

  it('--threads runs a GossipSub scenario over worker threads, with its checks; Kademlia stays on one', async () => {
    const { code, stdout, stderr } = await sim(['baseline', '--peers', '30', '--threads', '2'])
    expect(stderr).to.include('== baseline: 30 peers, seed 1, 2 threads')
    const [scenario, summary] = stdout.trim().split('\n').map(l => JSON.parse(l) as Record<string, unknown>) as [{ ok: boolean, checks: Array<{ what: string, ok?: boolean }>, report: { total: { deliveryRatio: number } } }, Record<string, unknown>]
    expect(scenario.ok, stderr).to.equal(true)
    expect(scenario.report.total.deliveryRatio).to.equal(1)
    expect(scenario.checks.filter(c => c.ok === false)).to.deep.equal([])
    expect(summary).to.include({ scenarios: 1, failed: 0, peers: 30 })
    expect(code).to.equal(0)

    const kad = await sim(['kad', '--peers', '20', '--threads', '2', '--timeout', '0.02'])
    expect(kad.stderr).to.include('kad: runs on one thread')
    expect(kad.stderr).to.include('== kad: 20 peers, seed 1\n')
  })

  it('refuses a bad --peers, --seed or --timeout before running anything', async () => {
    for (const [args, message] of [
      [['--peers', 'many'], '--peers must be an integer of at least 4, got many'],
      [['--peers', '2'], '--peers must be an integer of at least 4, got 2'],
      [['--seed', '-1'], '--seed needs a value'],
      [['--timeout', '0'], '--timeout must be a positive number of minutes, got 0']
    ] as const) {
      const { code, stdout, stderr } = await sim(['baseline', ...args])
      expect(code, args.join(' ')).to.not.equal(0)
      expect(stderr, args.join(' ')).to.include(message)
      expect(stdout, 'nothing ran').to.equal('')
    }
  })
})
