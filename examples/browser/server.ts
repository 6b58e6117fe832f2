/**
 * The browser example's server: it bundles `page.ts` for the browser with esbuild (no
 * framework, no shims), serves the page on 127.0.0.1, and runs a Node swarm listening on
 * WebSockets that the page dials. The Node swarm joins the same GossipSub topic, prints what it
 * receives, greets every page that joins, and publishes each line typed on its stdin; it
 * relays between pages, so two tabs talk to each other through it.
 *
 * Run: npx tsx examples/browser/server.ts [--port 8080] [--topic chat]
 *      then open the URL it prints.
 */
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { build } from 'esbuild'
import { SwarmBuilder, combine, gossipsub, identify, ping } from '../../src/index.js'

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    topic: { type: 'string', default: 'chat' }
  }
})
const topic = new gossipsub.IdentTopic(args.topic)
const here = new URL('.', import.meta.url)

// The page: one ES module bundled for the browser, built once at start-up.
const bundled = await build({
  entryPoints: [new URL('page.ts', here).pathname],
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: 'linked',
  outfile: 'page.js', // not written: served from memory
  write: false,
  logLevel: 'warning'
})
const output = (name: string): Uint8Array => (bundled.outputFiles.find(file => file.path.endsWith(`/${name}`)) as { contents: Uint8Array }).contents
const pageJs = output('page.js')
const pageMap = output('page.js.map')
const html = readFileSync(new URL('index.html', here))

const swarm = await SwarmBuilder.withNewIdentity()
  .withWebSockets()
  .withBehaviour(key => combine({
    identify: new identify.Behaviour(key.publicKey, { agentVersion: 'peerswarm-browser-example-server' }),
    ping: new ping.Behaviour(),
    gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key) })
  }))
  // Pages come and go; keep their connections while gossipsub uses them.
  .withSwarmConfig({ idleConnectionTimeout: 30_000 })
  .build()
swarm.behaviour.gossipsub.subscribe(topic)
swarm.listenOn('/ip4/127.0.0.1/tcp/0/ws')

// Wait for the WebSockets address, which the page needs.
let address: string | undefined
while (address == null) {
  const event = await swarm.selectNextSome()
  if (event.type === 'NewListenAddr') address = `${event.address.toString()}/p2p/${swarm.localPeerId.toString()}`
}
const config = JSON.stringify({ address, topic: topic.hash })

const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname
  if (path === '/' || path === '/index.html') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html)
  else if (path === '/page.js') res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(pageJs)
  else if (path === '/page.js.map') res.writeHead(200, { 'content-type': 'application/json' }).end(pageMap)
  else if (path === '/config.json') res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(config)
  else if (path === '/favicon.ico') res.writeHead(204).end()
  else res.writeHead(404).end('not found')
})
await new Promise<void>((resolve) => server.listen(Number(args.port), '127.0.0.1', resolve))
const port = (server.address() as { port: number }).port
console.log(`node swarm ${swarm.localPeerId.toString()} on ${address}`)
console.log(`page (${Math.round(pageJs.byteLength / 1000)} KB of script, minified) at http://127.0.0.1:${port}/`)

const short = (id: { toString: () => string }): string => `…${id.toString().slice(-6)}`
function publish (text: string): void {
  try {
    swarm.behaviour.gossipsub.publish(topic, new TextEncoder().encode(text))
    console.log(`published '${text}'`)
  } catch (err) {
    console.log(`not published: ${(err as Error).message}`)
  }
}

createInterface({ input: process.stdin }).on('line', (line) => { if (line.trim() !== '') publish(line.trim()) })

const shutdown = (): void => {
  server.close()
  void swarm.close().then(() => process.exit(0))
}
process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)

for await (const event of swarm) {
  if (event.type === 'ConnectionEstablished') console.log(`connected: ${event.peerId.toString()}`)
  else if (event.type === 'ConnectionClosed') console.log(`disconnected: ${event.peerId.toString()}`)
  else if (event.type === 'Behaviour' && event.event.behaviour === 'gossipsub') {
    const e = event.event.event
    if (e.type === 'Message') {
      console.log(`received '${new TextDecoder().decode(e.message.data)}' from ${(e.message.source ?? e.propagationSource).toString()}`)
    } else if (e.type === 'Subscribed' && e.topic === topic.hash) {
      publish(`welcome, ${short(e.peerId)}`)
    }
  }
}
