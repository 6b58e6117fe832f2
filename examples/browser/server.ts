/**
 * The browser example's server: it bundles `page.ts` and `webrtc.ts` for the browser with
 * esbuild (no framework, no shims), serves the pages on 127.0.0.1, and runs a Node swarm
 * listening on WebSockets that the pages dial.
 *
 * - `/` (page.ts): the Node swarm joins the page's GossipSub topic, prints what it receives,
 *   greets every page that joins, and publishes each line typed on its stdin; it forwards
 *   between pages, so two tabs talk to each other through it.
 * - `/webrtc.html` (webrtc.ts): the Node swarm is only a circuit relay v2 and a meeting point.
 *   Each tab reserves a slot on it, announces its `/p2p-circuit/webrtc` address on a lobby
 *   topic, and tabs dial each other over WebRTC: their chat goes directly from tab to tab.
 *   The tabs report their state here, and the live view (`peerswarm/view`) draws the relay,
 *   the tabs and their WebRTC links.
 *
 * Run: npx tsx examples/browser/server.ts [--port 8080] [--topic chat]
 *      then open the URLs it prints.
 */
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { build } from 'esbuild'
import { SwarmBuilder, combine, gossipsub, identify, ping, relay } from '../../src/index.js'
import { serveNetworkView } from '../../src/view/index.js'
import type { ExternalViewNode, NodeView } from '../../src/view/index.js'
import type { IncomingMessage } from 'node:http'

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    topic: { type: 'string', default: 'chat' }
  }
})
const topic = new gossipsub.IdentTopic(args.topic)
const short = (id: { toString: () => string }): string => `…${id.toString().slice(-6)}`
const here = new URL('.', import.meta.url)

// The pages: ES modules bundled for the browser, built once at start-up.
const bundled = await build({
  entryPoints: [new URL('page.ts', here).pathname, new URL('webrtc.ts', here).pathname],
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: 'linked',
  outdir: '.', // not written: served from memory
  write: false,
  logLevel: 'warning'
})
const output = (name: string): Uint8Array => (bundled.outputFiles.find(file => file.path.endsWith(`/${name}`)) as { contents: Uint8Array }).contents
const files: Record<string, { type: string, body: Uint8Array }> = {
  '/': { type: 'text/html; charset=utf-8', body: readFileSync(new URL('index.html', here)) },
  '/webrtc.html': { type: 'text/html; charset=utf-8', body: readFileSync(new URL('webrtc.html', here)) }
}
for (const name of ['page.js', 'webrtc.js']) {
  files[`/${name}`] = { type: 'text/javascript; charset=utf-8', body: output(name) }
  files[`/${name}.map`] = { type: 'application/json', body: output(`${name}.map`) }
}

const swarm = await SwarmBuilder.withNewIdentity()
  .withWebSockets()
  .withBehaviour(key => combine({
    identify: new identify.Behaviour(key.publicKey, { agentVersion: 'peerswarm-browser-example-server' }),
    ping: new ping.Behaviour(),
    gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key) }),
    // A circuit relay v2 server: the WebRTC tabs reserve a slot on it and signal through it.
    relay: new relay.Behaviour(key)
  }))
  // Pages come and go; keep their connections while gossipsub uses them.
  .withSwarmConfig({ idleConnectionTimeout: 30_000 })
  .build()
swarm.behaviour.gossipsub.subscribe(topic)
// The WebRTC tabs announce their addresses on the lobby; their chat topic is not ours.
const lobby = new gossipsub.IdentTopic(`${args.topic}/lobby`)
swarm.behaviour.gossipsub.subscribe(lobby)
swarm.listenOn('/ip4/127.0.0.1/tcp/0/ws')

// Wait for the WebSockets address, which the page needs.
let address: string | undefined
while (address == null) {
  const event = await swarm.selectNextSome()
  if (event.type === 'NewListenAddr') {
    address = `${event.address.toString()}/p2p/${swarm.localPeerId.toString()}`
    // The relay tells the peers that reserve a slot where it is reachable.
    swarm.addExternalAddress(event.address)
  }
}

// The live view: this swarm, and every WebRTC tab from the state it reports (POST /report).
const MAX_TABS = 16
const tabs = new Map<string, { node: ExternalViewNode, view: NodeView, at: number }>()
const relayNode = { name: 'relay (server.ts)', swarm }
/** Forget the tabs that sent nothing for 5 s (closed). */
const prune = (): void => { for (const [id, tab] of tabs) if (Date.now() - tab.at > 5_000) tabs.delete(id) }
const view = await serveNetworkView(() => {
  prune()
  return [relayNode, ...[...tabs.values()].map(tab => tab.node)]
}, { title: 'peerswarm browser example' })

/** Take a tab's report; false if it is not one, or there are too many tabs. */
function report (body: string): boolean {
  let sent: unknown
  try { sent = JSON.parse(body) } catch { return false }
  if (!isNodeView(sent)) return false
  prune()
  const tab = tabs.get(sent.peerId)
  if (tab != null) Object.assign(tab, { view: sent, at: Date.now() })
  else if (tabs.size >= MAX_TABS) return false
  else {
    const entry = { view: sent, at: Date.now(), node: { name: `tab ${short(sent.peerId)}`, latest: () => entry.view } }
    tabs.set(sent.peerId, entry)
  }
  view.update()
  return true
}

const config = JSON.stringify({ address, topic: topic.hash, view: view.url })

const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname
  const file = files[path === '/index.html' ? '/' : path]
  if (req.method === 'POST' && path === '/report') {
    readBody(req, 256 * 1024).then(body => {
      res.writeHead(report(body) ? 204 : 400).end()
    }, () => {
      req.resume() // the rest is read and dropped
      res.writeHead(413).end()
    })
  } else if (file != null) res.writeHead(200, { 'content-type': file.type }).end(file.body)
  else if (path === '/config.json') res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(config)
  else if (path === '/favicon.ico') res.writeHead(204).end()
  else res.writeHead(404).end('not found')
})
await new Promise<void>((resolve) => server.listen(Number(args.port), '127.0.0.1', resolve))
const port = (server.address() as { port: number }).port
console.log(`node swarm ${swarm.localPeerId.toString()} on ${address}`)
console.log(`page (${Math.round(files['/page.js'].body.byteLength / 1000)} KB of script, minified) at http://127.0.0.1:${port}/`)
console.log(`browser-to-browser chat over WebRTC (open it in two tabs) at http://127.0.0.1:${port}/webrtc.html`)
console.log(`live view at ${view.url}`)
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
  void view.close()
  void swarm.close().then(() => process.exit(0))
}
process.on('SIGINT', shutdown)
process.on('SIGTERM', shutdown)

for await (const event of swarm) {
  if (event.type === 'ConnectionEstablished') console.log(`connected: ${event.peerId.toString()}`)
  else if (event.type === 'ConnectionClosed') console.log(`disconnected: ${event.peerId.toString()}`)
  else if (event.type === 'Behaviour' && event.event.behaviour === 'gossipsub') {
    const e = event.event.event
    if (e.type === 'Message' && e.message.topic === topic.hash) {
      console.log(`received '${new TextDecoder().decode(e.message.data)}' from ${(e.message.source ?? e.propagationSource).toString()}`)
    } else if (e.type === 'Subscribed' && e.topic === topic.hash) {
      publish(`welcome, ${short(e.peerId)}`)
    }
  }
}

/** A request's body as text, at most `limit` bytes. */
async function readBody (req: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = []
  let length = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    length += chunk.byteLength
    if (length > limit) throw new Error('too large')
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString()
}

/** Whether a tab's report has the shape of a `NodeView` (what the view page reads of it). */
function isNodeView (value: any): value is NodeView {
  const strings = (list: unknown): boolean => Array.isArray(list) && list.every(item => typeof item === 'string')
  return typeof value?.peerId === 'string' && typeof value.name === 'string' && strings(value.listeners) &&
    Array.isArray(value.connections) && value.connections.every((c: any) =>
      ['peer', 'transport', 'direction', 'address', 'encryption', 'multiplexer'].every(key => typeof c?.[key] === 'string') &&
      ['id', 'establishedAt', 'streams'].every(key => typeof c[key] === 'number') && typeof c.limited === 'boolean') &&
    Array.isArray(value.pubsub) && value.pubsub.every((p: any) =>
      typeof p?.kind === 'string' && typeof p.totals === 'object' && typeof p.rates === 'object' && typeof p.protocols === 'object' && Array.isArray(p.scores) &&
      Array.isArray(p.topics) && p.topics.every((t: any) => typeof t?.topic === 'string' && strings(t.mesh) && strings(t.fanout) && strings(t.subscribers)))
}
