/**
 * A scenario as separate processes (`npm run net`): 8 peer programs on 127.0.0.1, real TCP,
 * real time, the simulator's identities and schedule; the report has the simulator's shape.
 * And the same scenario as a Shadow simulation (`npm run sim -- --shadow`): its files checked
 * against Shadow's documented format (shadow_config_spec.md, network_graph_spec.md), and two of
 * its hosts' commands run here.
 */
import { expect } from 'chai'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import { createInterface } from 'node:readline'
import { peerIdOf } from '../../src/core/identity.js'
import { peerConfigs, reportFromLines, shadowConfig } from '../../src/testing/processes.js'
import { peerKey, peerPayload } from '../../src/testing/peer-program.js'
import { scenarioPlan } from '../../src/testing/scenario.js'
import { bundlePeerProgram } from '../../scripts/peer-bundle.js'
import type { ScenarioReport } from '../../src/testing/index.js'
import type { PeerConfig, PeerLine } from '../../src/testing/peer-program.js'
import type { ChildProcess } from 'node:child_process'
import type { Server } from 'node:net'

/** `count` free TCP ports on 127.0.0.1 (held together, then released). */
async function freePorts (count: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: count }, async () => await new Promise<Server>((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { resolve(server) })
  })))
  const ports = servers.map(s => (s.address() as { port: number }).port)
  await Promise.all(servers.map(async s => { await new Promise(resolve => s.close(resolve)) }))
  return ports
}

/** Run a script with tsx; its exit code, stdout and stderr. */
async function run (args: readonly string[], timeout: number): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const timer = setTimeout(() => { proc.kill('SIGKILL') }, timeout)
  const code = await new Promise<number | null>(resolve => proc.on('exit', resolve))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

describe('separate processes: npm run net', function () {
  this.timeout(180_000)

  it('8 peer processes on 127.0.0.1: every message delivered, and the simulator\'s report (latency, duplicates, bytes, RSS per process)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'peerswarm-net-'))
    try {
      const html = join(dir, 'net.html')
      const { code, stdout, stderr } = await run(['scripts/net.ts', '--peers', '8', '--messages', '20', '--interval', '100', '--settle', '10000', '--report', html], 150_000)
      expect(code, stderr).to.equal(0)
      const line = stdout.trim().split('\n').pop() ?? ''
      const { report } = JSON.parse(line) as { report: ScenarioReport }
      expect(report.runner).to.equal('processes')
      expect(report.peers).to.equal(8)
      expect(report.partial, stderr).to.equal(undefined)
      expect(report.total.messages).to.equal(20)
      expect(report.total.deliveryRatio, 'every subscriber got every message').to.equal(1)
      expect(report.total.latency.count).to.equal(report.total.delivered)
      expect(report.total.latency.p50).to.be.greaterThan(0)
      expect(report.total.latency.p99).to.be.at.least(report.total.latency.p50)
      expect(report.duplicatesPerDelivery).to.be.greaterThan(0)
      expect(report.bytesPerDelivery, 'a 256-byte payload and its framing, duplicates and control').to.be.greaterThan(256)
      expect(report.processes?.processes).to.equal(8)
      expect(report.processes?.rssEndMB.count).to.equal(8)
      expect(report.processes?.rssEndMB.p50).to.be.within(20, 1_000)
      expect(report.meshDegree.end.min).to.be.at.least(1)
      expect(report.timeline?.delivered.reduce((a, b) => a + b, 0)).to.equal(report.total.delivered)
      expect(stderr).to.include('8 processes: RSS per process')
      expect(readFileSync(html, 'utf8')).to.include('<svg')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("configs carry the simulator's peers: identities, topology links dialed once, publishers and payloads from the seed", async () => {
    const scenario = { peers: 10, seed: 7, topology: { type: 'random-regular', degree: 4 }, publish: { messages: 12, publishers: 3, interval: 50 } } as const
    const plan = scenarioPlan(scenario)
    const configs = peerConfigs(scenario, { address: i => `/ip4/127.0.0.1/tcp/${5000 + i}`, start: 'stdin' })
    expect(configs).to.have.length(10)
    // Every topology link dialed by exactly one side, each side knowing the other as a neighbour.
    const dialed = configs.flatMap(c => c.dial.map(d => [c.index, d.index].sort((a, b) => a - b).join('-'))).sort()
    expect(dialed).to.deep.equal(plan.links.map(([a, b]) => [a, b].sort((x, y) => x - y).join('-')).sort())
    for (const c of configs) for (const d of c.dial) expect(configs[d.index].neighbours).to.include(c.index)
    // 12 messages from 3 publishers, in the simulator's order.
    const publishes = configs.flatMap(c => c.publish.map(p => ({ ...p, publisher: c.index }))).sort((a, b) => a.id - b.id)
    expect(publishes.map(p => p.id)).to.deep.equal([...Array(12).keys()])
    expect(new Set(publishes.map(p => p.publisher)).size).to.equal(3)
    expect(publishes.map(p => p.at)).to.deep.equal(publishes.map((_, i) => i * 50))
    // The same identity as the simulator's peer 3 (key/3 drawn from the seed), and payloads that carry their index.
    expect(peerIdOf(await peerKey('7', 3)).toString()).to.equal(peerIdOf(await peerKey(plan.seed, 3)).toString())
    const payload = peerPayload(plan.seed, 5, 0, 256)
    expect(new DataView(payload.buffer).getUint32(0)).to.equal(5)
    expect(payload).to.have.length(256)
    expect(() => peerConfigs({ ...scenario, faults: [{ type: 'partition', at: 0, fraction: 0.5 }] }, { address: () => '', start: 'stdin' })).to.throw(/partitions/)
    // A report from lines where one peer never reported: partial.
    const report = reportFromLines(scenario, [{ t: 'start', index: 0, at: 1_000, ready: true }], { setupMs: 1, totalMs: 2 })
    expect(report.partial?.reason).to.match(/10 of 10 peers reported no counters/)
  })
})

/** The subset of YAML that shadow.yaml is written in: block mappings by indentation, comments, plain scalars, and flow values in JSON. */
function parseShadowYaml (text: string): Record<string, unknown> {
  const root: Record<string, unknown> = {}
  const stack: Array<{ indent: number, node: Record<string, unknown> }> = [{ indent: -1, node: root }]
  for (const raw of text.split('\n')) {
    if (raw.trim() === '' || raw.trimStart().startsWith('#')) continue
    const indent = raw.length - raw.trimStart().length
    const match = /^([A-Za-z0-9_.-]+):(?:\s+(.*))?$/.exec(raw.trim())
    if (match == null) throw new Error(`not a mapping entry: ${raw}`)
    while (stack[stack.length - 1].indent >= indent) stack.pop()
    const parent = stack[stack.length - 1].node
    const [, key, value] = match
    if (key in parent) throw new Error(`duplicate key ${key}`)
    if (value == null || value === '') {
      const child: Record<string, unknown> = {}
      parent[key] = child
      stack.push({ indent, node: child })
    } else if (/^[[{"]/.test(value)) {
      parent[key] = JSON.parse(value)
    } else {
      parent[key] = /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value === 'true' ? true : value === 'false' ? false : value
    }
  }
  return root
}

/** GML as Shadow reads it: `key value` pairs and `key [ … ]` lists; repeated keys (node, edge) collected in arrays. */
function parseGml (text: string): Record<string, unknown[]> {
  const tokens = text.match(/"[^"]*"|\[|\]|[^\s[\]]+/g) ?? []
  let i = 0
  const list = (): Record<string, unknown[]> => {
    const out: Record<string, unknown[]> = {}
    while (i < tokens.length && tokens[i] !== ']') {
      const key = tokens[i++]
      const token = tokens[i++]
      let value: unknown
      if (token === '[') {
        value = list()
        if (tokens[i++] !== ']') throw new Error('unclosed [')
      } else {
        value = token.startsWith('"') ? token.slice(1, -1) : Number(token)
        if (typeof value === 'number' && Number.isNaN(value)) throw new Error(`not a number: ${token}`)
      }
      ;(out[key] ??= []).push(value)
    }
    return out
  }
  const parsed = list()
  if (i !== tokens.length) throw new Error('unbalanced ]')
  return parsed
}

/** A Shadow quantity: an integer magnitude and a unit (Shadow's parser takes integers). */
const TIME = /^\d+ ?(ns|us|μs|ms|s|sec|secs|second|seconds|m|min|mins|minute|minutes|h|hr|hrs|hour|hours)$/
const BANDWIDTH = /^\d+ ?(K|Ki|M|Mi|G|Gi|T|Ti)?bit$/

/** Check `config` (shadow.yaml) and `graph` (its GML) against Shadow's documented format; return the hosts. */
function checkShadow (config: Record<string, unknown>, graph: Record<string, unknown[]>): Record<string, { network_node_id: number, ip_addr: string, processes: Array<{ path: string, args: string[], start_time: string, expected_final_state: unknown }> }> {
  // shadow_config_spec.md: general (required, stop_time required), network.graph (required), hosts (required); nothing else at the top but experimental and host_option_defaults.
  for (const key of Object.keys(config)) expect(['general', 'network', 'experimental', 'host_option_defaults', 'hosts']).to.include(key)
  const general = config.general as Record<string, unknown>
  for (const key of Object.keys(general)) expect(['bootstrap_end_time', 'data_directory', 'heartbeat_interval', 'log_level', 'model_unblocked_syscall_latency', 'parallelism', 'progress', 'seed', 'stop_time', 'template_directory']).to.include(key)
  expect(general.stop_time).to.match(TIME)
  expect(general.seed).to.be.a('number')
  expect(general.parallelism).to.be.a('number')
  const network = config.network as { graph: { type: string, file?: { path: string }, inline?: string } }
  expect(network.graph.type).to.equal('gml')
  expect(network.graph.file?.path, 'the graph as a file (network.graph.<file|inline>)').to.be.a('string')
  const hosts = config.hosts as ReturnType<typeof checkShadow>
  const addresses = new Set<string>()
  // network_graph_spec.md: nodes with id and host_bandwidth_up/down (required), edges with source, target, latency (not 0) and packet_loss (required).
  const g = graph.graph[0] as Record<string, unknown[]>
  expect(g.directed).to.deep.equal([0])
  const nodes = g.node as Array<Record<string, unknown[]>>
  const ids = new Set(nodes.map(node => node.id[0] as number))
  expect(ids.size).to.equal(nodes.length)
  for (const node of nodes) {
    for (const key of Object.keys(node)) expect(['id', 'label', 'host_bandwidth_up', 'host_bandwidth_down']).to.include(key)
    expect(node.host_bandwidth_up[0]).to.match(BANDWIDTH)
    expect(node.host_bandwidth_down[0]).to.match(BANDWIDTH)
  }
  for (const edge of g.edge as Array<Record<string, unknown[]>>) {
    for (const key of Object.keys(edge)) expect(['source', 'target', 'label', 'latency', 'jitter', 'packet_loss', 'edge_bandwidth_up', 'edge_bandwidth_down']).to.include(key)
    expect(ids.has(edge.source[0] as number) && ids.has(edge.target[0] as number)).to.equal(true)
    expect(edge.latency[0]).to.match(TIME).and.not.match(/^0 /)
    expect(edge.packet_loss[0]).to.be.within(0, 1)
  }
  for (const [name, host] of Object.entries(hosts)) {
    expect(name, 'a hostname(7)').to.match(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/)
    for (const key of Object.keys(host)) expect(['bandwidth_down', 'bandwidth_up', 'ip_addr', 'network_node_id', 'host_options', 'processes']).to.include(key)
    expect(ids.has(host.network_node_id), `${name}'s node is in the graph`).to.equal(true)
    expect(host.ip_addr).to.match(/^\d+\.\d+\.\d+\.\d+$/)
    expect(addresses.has(host.ip_addr), 'addresses unique').to.equal(false)
    addresses.add(host.ip_addr)
    expect(host.processes).to.have.length.at.least(1)
    for (const p of host.processes) {
      for (const key of Object.keys(p)) expect(['args', 'environment', 'expected_final_state', 'path', 'shutdown_signal', 'shutdown_time', 'start_time']).to.include(key)
      expect(p.path).to.be.a('string')
      expect(p.args.every(a => typeof a === 'string')).to.equal(true)
      expect(p.start_time).to.match(TIME)
      expect(p.expected_final_state).to.deep.equal({ exited: 0 })
    }
  }
  return hosts
}

describe('separate processes: a scenario as a Shadow simulation', function () {
  this.timeout(180_000)

  it('npm run sim -- --shadow writes shadow.yaml, its GML graph and the peers\' configs in Shadow\'s documented format', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'peerswarm-shadow-'))
    try {
      const proc = spawn(process.execPath, ['--import', 'tsx', 'bench/sim.ts', '--shadow', dir, 'baseline', 'partition'], { env: { ...process.env, SIM_PEERS: '30' }, stdio: ['ignore', 'pipe', 'pipe'] })
      let stdout = ''
      let stderr = ''
      proc.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
      proc.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
      expect(await new Promise(resolve => proc.on('exit', resolve)), stderr).to.equal(0)
      expect(stderr, 'the partition cannot be written yet, and says so').to.match(/partition: not written: .*partitions/)
      const written = JSON.parse(stdout.trim().split('\n')[0]) as { shadow: string, hosts: number, shorterPaths: number }
      expect(written.hosts).to.equal(30)
      const config = parseShadowYaml(readFileSync(written.shadow, 'utf8'))
      const graphPath = (config.network as { graph: { file: { path: string } } }).graph.file.path
      const graph = parseGml(readFileSync(graphPath, 'utf8'))
      const hosts = checkShadow(config, graph)
      expect(Object.keys(hosts)).to.have.length(30)
      // The graph carries the scenario: one node per host, an edge per topology link with its latency (20–80 ms).
      const g = graph.graph[0] as { node: unknown[], edge: Array<{ latency: string[] }> }
      expect(g.node).to.have.length(30)
      expect(g.edge).to.have.length(30 * 8 / 2)
      for (const edge of g.edge) expect(Number(edge.latency[0].split(' ')[0]) / 1000).to.be.within(20, 80)
      // Each host runs the peer program with its config, which listens on the host's address.
      const host = hosts['peer-3']
      const configFile = host.processes[0].args[host.processes[0].args.length - 1]
      const peer = JSON.parse(readFileSync(configFile, 'utf8')) as { index: number, listen: string, start: unknown }
      expect(peer.index).to.equal(3)
      expect(peer.listen).to.equal(`/ip4/${host.ip_addr}/tcp/4000`)
      expect(peer.start).to.deep.equal({ after: 20_000 })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it("runs two hosts' commands locally (on 127.0.0.1 instead of their Shadow addresses): they exchange the schedule's messages and exit 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'peerswarm-shadow-'))
    const procs: ChildProcess[] = []
    try {
      const ring: Array<[number, number]> = [[0, 1], [1, 2], [2, 3], [3, 0]]
      const scenario = { name: 'two', peers: 4, seed: 3, topology: { type: 'links', links: ring }, publish: { messages: 4, publishers: [0], interval: 100 }, settle: 1_500 } as const
      const program = await bundlePeerProgram()
      const { files } = shadowConfig(scenario, { dir, warmup: 3_000, command: file => ({ path: process.execPath, args: ['--expose-gc', program, file] }) })
      const config = parseShadowYaml(files.find(f => f.path === 'shadow.yaml')?.text ?? '')
      const hosts = checkShadow(config, parseGml(files.find(f => f.path === 'network.gml')?.text ?? ''))
      // Hosts 0 and 1 (0 dials 1), their configs with 127.0.0.1 ports for the Shadow addresses.
      const ports = await freePorts(2)
      const lines: PeerLine[][] = [[], []]
      const exits = [0, 1].map(async i => {
        const { path, args } = hosts[`peer-${i}`].processes[0]
        const original = JSON.parse(files.find(f => f.path === `peers/peer-${i}.json`)?.text ?? '') as PeerConfig
        const local = { ...original, listen: `/ip4/127.0.0.1/tcp/${ports[i]}`, dial: original.dial.filter(d => d.index < 2).map(d => ({ ...d, address: `/ip4/127.0.0.1/tcp/${ports[d.index]}` })) }
        const file = join(dir, `local-${i}.json`)
        writeFileSync(file, JSON.stringify(local))
        const proc = spawn(path, [...args.slice(0, -1), file], { stdio: ['ignore', 'pipe', 'pipe'] })
        procs.push(proc)
        let stderr = ''
        proc.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
        createInterface({ input: proc.stdout }).on('line', text => { lines[i].push(JSON.parse(text) as PeerLine) })
        const code = await new Promise<number | null>(resolve => proc.on('exit', resolve))
        return { code, stderr }
      })
      const results = await Promise.all(exits)
      for (const r of results) expect(r.code, r.stderr).to.equal(0)
      const kinds = (i: number): string[] => lines[i].map(l => l.t)
      for (const i of [0, 1]) expect(kinds(i)).to.include.members(['listening', 'start', 'stats'])
      expect(lines[0].filter(l => l.t === 'published')).to.have.length(4)
      expect(lines[1].filter(l => l.t === 'delivery').map(l => (l as { id: number }).id).sort()).to.deep.equal([0, 1, 2, 3])
    } finally {
      for (const proc of procs) proc.kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
