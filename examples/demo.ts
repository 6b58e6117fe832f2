/**
 * `npm run demo`: a small local network that discovers itself and talks, and a page to watch
 * it. Three nodes (or as many as given) start in this process with TCP on 127.0.0.1; mDNS
 * (kept on the loopback interface, under a service name of this run, so that nothing leaves
 * the machine) lets them find each other; each dials the peers it discovers; then every node
 * publishes a greeting over GossipSub and prints what it receives. Meanwhile a whole-network
 * view is served on 127.0.0.1 (its URL is printed): the peers, their connections and meshes,
 * messages drawn as they travel, delivery and latency counters. After the greetings, random
 * nodes keep publishing for `--seconds` (10 by default; 0 without the view) so that there is
 * something to watch.
 *
 * Exits 0 once every node has every greeting and the traffic time is over, 1 after 20 s
 * without the greetings; `--stay` keeps it running (and publishing) until Ctrl-C.
 *
 * Run: npm run demo [-- [nodes] [--no-view] [--stay] [--seconds 10] [--port 0]]
 *      (or: npx tsx examples/demo.ts …)
 */
import { parseArgs } from 'node:util'
import { DemoNetwork } from './demo-network.js'

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'no-view': { type: 'boolean', default: false },
    stay: { type: 'boolean', default: false },
    seconds: { type: 'string' },
    port: { type: 'string', default: '0' }
  }
})
const COUNT = Math.max(2, Number(positionals[0] ?? 3))
const TIMEOUT = 20_000
const view = !args['no-view']
const seconds = Number(args.seconds ?? (view ? 10 : 0))

const network = await DemoNetwork.start({ count: COUNT, view, port: Number(args.port), log: line => { console.log(line) } })
console.log(`${COUNT} nodes, mDNS service ${network.serviceName} on 127.0.0.1, topic 'demo'`)
if (network.view != null) console.log(`view: ${network.view.url}`)

let code = 0
let timer: ReturnType<typeof setTimeout> | undefined
try {
  await Promise.race([
    network.allGreeted(),
    new Promise((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`not done within ${TIMEOUT / 1000} s`)) }, TIMEOUT) })
  ])
  clearTimeout(timer)
  console.log(`done: every node received all ${COUNT - 1} greetings`)
  console.log(`connections: ${network.connections()} for ${COUNT * (COUNT - 1) / 2} pairs`)
  if (args.stay || seconds > 0) {
    console.log(args.stay ? 'publishing now and then until Ctrl-C' : `publishing now and then for ${seconds} s`)
    const stop = new AbortController()
    process.once('SIGINT', () => { stop.abort() })
    const until = args.stay ? Infinity : Date.now() + seconds * 1000
    while (!stop.signal.aborted && Date.now() < until) {
      network.traffic()
      await new Promise(resolve => setTimeout(resolve, 250))
    }
    const { count, latency } = network.delivered
    console.log(`delivered ${count} messages, mean latency ${count === 0 ? 0 : (latency / count).toFixed(1)} ms`)
  }
} catch (err) {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`)
  code = 1
} finally {
  clearTimeout(timer)
  await network.close()
}
process.exit(code)
