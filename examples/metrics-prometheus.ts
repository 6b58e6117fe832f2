/**
 * GossipSub metrics in Prometheus: an adapter from `gossipsub.MetricsSink` to `prom-client`
 * (which peerswarm does not depend on: install it in your application), and a small run that
 * shows it. Three nodes in this process exchange a few messages over the memory transport;
 * the metrics are served at http://127.0.0.1:<port>/metrics while it runs, and printed at the
 * end.
 *
 * Run: npx tsx examples/metrics-prometheus.ts [--serve-seconds 0]
 */
import { createServer } from 'node:http'
import { parseArgs } from 'node:util'
import { Counter, Histogram, Registry } from 'prom-client'
import { combine, gossipsub } from 'peerswarm'
import { connect, drive, driveUntil, newSwarm } from 'peerswarm/testing'

/**
 * One `prom-client` counter or histogram per GossipSub metric, named `gossipsub_<name>`, with
 * a `node` label to tell the nodes of one process apart.
 */
export class PrometheusSink implements gossipsub.MetricsSink {
  private readonly counters = new Map<string, Counter>()
  private readonly histograms = new Map<string, Histogram>()

  constructor (registry: Registry, private readonly node: string) {
    for (const [name, labels] of Object.entries(gossipsub.METRICS.counters)) {
      const metric = registry.getSingleMetric(`gossipsub_${name}_total`) as Counter | undefined
      this.counters.set(name, metric ?? new Counter({ name: `gossipsub_${name}_total`, help: `gossipsub ${name.replace(/_/g, ' ')}`, labelNames: ['node', ...labels], registers: [registry] }))
    }
    for (const [name, labels] of Object.entries(gossipsub.METRICS.histograms)) {
      const metric = registry.getSingleMetric(`gossipsub_${name}`) as Histogram | undefined
      const buckets = name === 'peer_score' ? [-100, -10, -1, 0, 1, 10, 100] : [0, 1, 2, 4, 6, 8, 12, 16]
      this.histograms.set(name, metric ?? new Histogram({ name: `gossipsub_${name}`, help: `gossipsub ${name.replace(/_/g, ' ')}`, labelNames: ['node', ...labels], buckets, registers: [registry] }))
    }
  }

  increment: gossipsub.MetricsSink['increment'] = (name, value, labels) => {
    this.counters.get(name)?.inc({ node: this.node, ...labels }, value)
  }

  observe: gossipsub.MetricsSink['observe'] = (name, value, labels) => {
    this.histograms.get(name)?.observe({ node: this.node, ...labels }, value)
  }
}

const { values: args } = parseArgs({ options: { 'serve-seconds': { type: 'string', default: '0' } } })
const registry = new Registry()
const topic = new gossipsub.IdentTopic('metrics-demo')
const nodes = await Promise.all([0, 1, 2].map(async i => newSwarm(key => combine({
  gossipsub: new gossipsub.Behaviour({
    authenticity: gossipsub.MessageAuthenticity.signed(key),
    heartbeatInterval: 200,
    metrics: new PrometheusSink(registry, `node${i}`)
  })
}))))
const server = createServer((_req, res) => {
  void registry.metrics().then((text) => { res.setHeader('content-type', registry.contentType).end(text) })
})
await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
const address = server.address()
console.log(`metrics at http://127.0.0.1:${typeof address === 'object' && address != null ? address.port : 0}/metrics`)
try {
  for (const node of nodes) node.behaviour.gossipsub.subscribe(topic)
  await connect(nodes[0], nodes[1])
  await connect(nodes[1], nodes[2])
  await driveUntil(nodes, () => nodes[1].behaviour.gossipsub.meshPeers(topic).length === 2)
  for (let i = 0; i < 5; i++) nodes[0].behaviour.gossipsub.publish(topic, new TextEncoder().encode(`message ${i}`))
  // Run until every message crossed the line, then let heartbeats observe the meshes.
  await drive(nodes, { count: [0, 5, 5], filter: e => e.type === 'Behaviour' && e.event.event.type === 'Message' })
  await new Promise(resolve => setTimeout(resolve, 500 + Number(args['serve-seconds']) * 1_000))
  const text = await registry.metrics()
  console.log(text.split('\n').filter(line => line.startsWith('gossipsub_messages') || line.startsWith('gossipsub_mesh_size_count')).join('\n'))
} finally {
  server.close()
  await Promise.all(nodes.map(async node => { await node.close() }))
}
