/**
 * One scenario peer as a process (src/testing/peer-program.ts): reads its config (a JSON file,
 * or the JSON itself with --json), runs the peer on real TCP and prints what happens as JSON
 * lines on stdout (listening, ready, start, published, delivery, stats). `npm run net` runs many
 * of them; `npm run sim -- --shadow <dir>` writes them as the hosts of a Shadow simulation.
 *
 * Run: node --expose-gc --import tsx scripts/peer.ts <config.json>
 *      node --import tsx scripts/peer.ts --json '{"index":0,…}'
 *
 * With `"start": "stdin"` it starts its schedule when `{"t":"start","at":<epoch ms>}` arrives on
 * stdin; `{"t":"stop"}` (or SIGTERM, SIGINT) makes it report its counters and exit at once.
 * Exit code 0 after its stats line; 1 on an error (an `error` line says which).
 */
import '../src/compat.js'
import '../src/node.js'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { runPeer } from '../src/testing/peer-program.js'
import type { PeerConfig, PeerLine } from '../src/testing/peer-program.js'

const args = process.argv.slice(2)
const text = args[0] === '--json' ? args[1] : args[0] != null ? readFileSync(args[0], 'utf8') : undefined
if (text == null) {
  process.stderr.write('usage: scripts/peer.ts <config.json> | --json <config>\n')
  process.exit(2)
}
const config = JSON.parse(text) as PeerConfig
const stop = new AbortController()
let started: Promise<number> | undefined
if (config.start === 'stdin') {
  started = new Promise<number>(resolve => {
    const lines = createInterface({ input: process.stdin })
    lines.on('line', line => {
      let message: { t?: string, at?: number }
      try {
        message = JSON.parse(line) as { t?: string, at?: number }
      } catch {
        return
      }
      if (message.t === 'start' && typeof message.at === 'number') resolve(message.at)
      if (message.t === 'stop') stop.abort()
    })
  })
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => { stop.abort() })
const gc = (globalThis as { gc?: () => void }).gc
const emit = (line: PeerLine): void => { process.stdout.write(`${JSON.stringify(line)}\n`) }
try {
  await runPeer(config, { emit, started, stop: stop.signal, memoryUsage: () => process.memoryUsage(), gc })
  process.exit(0)
} catch {
  process.exit(1)
}
