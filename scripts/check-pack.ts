/**
 * The package as users get it: `npm pack` the repository, install the tarball into a fresh
 * project in a temporary directory (outside the repository, so nothing resolves to our
 * sources), type-check a consumer file against the shipped `.d.ts` with the consumer's own
 * strict `NodeNext` settings, then run it: two swarms over the memory transport (from
 * `peerswarm/testing`) ping each other, a GossipSub message crosses between them, and
 * `peerswarm/view` serves its page. Then a browser consumer is bundled with esbuild for the
 * browser from the installed package: it must get `dist/browser.js` and nothing Node-only.
 *
 * Run: npm run check:pack (CI runs it; it needs the npm registry or a warm npm cache).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = resolve(fileURLToPath(import.meta.url), '../..')
const tsc = join(root, 'node_modules/typescript/bin/tsc')
const dir = mkdtempSync(join(tmpdir(), 'peerswarm-pack-'))

function run (command: string, args: string[], cwd: string): string {
  return execFileSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
}

const consumer = `import { SwarmBuilder, combine, gossipsub, ping, type SwarmEvent } from 'peerswarm'
import { connect, drive } from 'peerswarm/testing'
import { serveView } from 'peerswarm/view'

async function node () {
  return SwarmBuilder.withNewIdentity().withMemoryTransport()
    .withBehaviour(key => combine({
      ping: new ping.Behaviour(),
      pubsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), heartbeatInitialDelay: 10 })
    }))
    .build()
}

const [a, b] = await Promise.all([node(), node()])
a.behaviour.pubsub.subscribe('t')
b.behaviour.pubsub.subscribe('t')
await connect(a, b)
const subscribed = (e: SwarmEvent<unknown>) => e.type === 'Behaviour' && (e.event as { event: { type: string } }).event.type === 'Subscribed'
await drive([a, b], { count: 1, filter: subscribed })
a.behaviour.pubsub.publish('t', new TextEncoder().encode('hello'))
// Both swarms must be driven: a's publish leaves when a is polled.
const [, [got]] = await drive([a, b], { count: [0, 1], filter: e => e.type === 'Behaviour' && e.event.behaviour === 'pubsub' && e.event.event.type === 'Message' })
if (got.type === 'Behaviour' && got.event.behaviour === 'pubsub' && got.event.event.type === 'Message') {
  console.log('received:', new TextDecoder().decode(got.event.event.message.data))
}
const view = await serveView(a)
const page = await fetch(view.url)
console.log('view:', page.status, (await page.text()).includes('<title>peerswarm view</title>'))
await view.close()
await Promise.all([a.close(), b.close()])
`

const browserConsumer = `import { SwarmBuilder, combine, gossipsub, identify } from 'peerswarm'

const swarm = await SwarmBuilder.withNewIdentity().withWebSockets()
  .withBehaviour(key => combine({
    identify: new identify.Behaviour(key.publicKey),
    gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key) })
  }))
  .build()
swarm.behaviour.gossipsub.subscribe('chat')
console.log(swarm.localPeerId.toString())
`

try {
  const tarball = run('npm', ['pack', '--silent', '--pack-destination', dir], root).trim().split('\n').at(-1) as string
  console.log(`packed ${tarball}`)
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  // A Node project: the package and Node's types, at the version we build with.
  const nodeTypes = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies['@types/node']
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(dir, tarball), `@types/node@${nodeTypes}`], dir)
  writeFileSync(join(dir, 'consumer.ts'), consumer)
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: false, outDir: 'out', skipLibCheck: false, types: ['node'], lib: ['ES2024', 'DOM'] },
    files: ['consumer.ts']
  }))
  run(process.execPath, [tsc, '-p', dir], dir)
  console.log('consumer type-checks against the shipped .d.ts')
  const output = run(process.execPath, [join(dir, 'out/consumer.js')], dir)
  if (!output.includes('received: hello')) throw new Error(`the consumer did not get its message; it printed:\n${output}`)
  if (!output.includes('view: 200 true')) throw new Error(`peerswarm/view did not serve its page; the consumer printed:\n${output}`)
  console.log('consumer runs: a GossipSub message crossed between two swarms of the installed package; the view served')
  writeFileSync(join(dir, 'browser.ts'), browserConsumer)
  const bundle = await build({ absWorkingDir: dir, entryPoints: ['browser.ts'], bundle: true, platform: 'browser', format: 'esm', minify: true, write: false, metafile: true, logLevel: 'silent' })
  const inputs = Object.keys(bundle.metafile.inputs)
  if (!inputs.includes('node_modules/peerswarm/dist/browser.js')) throw new Error(`the browser bundle did not use dist/browser.js: ${inputs.filter(i => i.includes('peerswarm/')).join(', ')}`)
  const nodeOnly = inputs.filter(i => /peerswarm\/dist\/(index|node|compat)\.js$|\/(ws|@libp2p\/tcp|dns-packet)\//.test(i))
  if (nodeOnly.length > 0) throw new Error(`the browser bundle holds Node-only modules: ${nodeOnly.join(', ')}`)
  console.log(`a browser consumer bundles from the installed package (exports' browser condition): ${Math.round(bundle.outputFiles[0].contents.byteLength / 1000)} KB minified`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
