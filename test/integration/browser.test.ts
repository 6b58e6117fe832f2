/**
 * peerswarm in a real browser: headless Chromium (Debian's `chromium`, found on PATH or
 * through `CHROMIUM_PATH`), driven by playwright-core. Pages run the browser build (bundled
 * here with esbuild from `src/browser.ts`, no shims) and dial Node swarms over WebSockets on
 * 127.0.0.1. Without a Chromium the tests are skipped with the reason printed; with
 * `PEERSWARM_REQUIRE_ALL=1` (CI) they fail instead.
 */
import { expect } from 'chai'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:http'
import { build } from 'esbuild'
import { chromium } from 'playwright-core'
import { SwarmBuilder, combine, gossipsub, identify } from '../../src/index.js'
import { DemoNetwork, TOPIC as DEMO_TOPIC } from '../../examples/demo-network.js'
import { connect, driveUntil, newSwarm } from '../../src/testing/index.js'
import { serveView } from '../../src/view/index.js'
import { chromiumPath, requireCapability } from '../fixtures/capabilities.js'
import type { PageMessage } from '../fixtures/browser-page.js'
import type { Swarm } from '../../src/index.js'
import type { ChildProcess } from 'node:child_process'
import type { Server } from 'node:http'
import type { Browser, Page } from 'playwright-core'

const TOPIC = 'browser-test'
const COUNT = 100

/** Resolve once `condition()` holds (checked every 25 ms), or throw naming `what` after `timeout`. */
async function until (what: string, condition: () => boolean | Promise<boolean>, timeout = 20_000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

type NodeSwarm = Swarm<ReturnType<typeof behaviour>>

function behaviour (key: Parameters<Parameters<ReturnType<typeof SwarmBuilder.withNewIdentity>['withBehaviour']>[0]>[0]) {
  return combine({
    identify: new identify.Behaviour(key.publicKey),
    gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), heartbeatInterval: 200, heartbeatInitialDelay: 50 })
  })
}

/** A Node swarm listening on WebSockets on 127.0.0.1, driven in the background. */
class NodePeer {
  readonly received: PageMessage[] = []
  readonly errors: string[] = []
  address = ''
  private loop: Promise<void> = Promise.resolve()

  private constructor (readonly swarm: NodeSwarm) {}

  static async start (): Promise<NodePeer> {
    const swarm = await SwarmBuilder.withNewIdentity().withWebSockets().withBehaviour(behaviour)
      .withSwarmConfig({ idleConnectionTimeout: 60_000 }).build()
    const peer = new NodePeer(swarm)
    swarm.behaviour.gossipsub.subscribe(TOPIC)
    swarm.listenOn('/ip4/127.0.0.1/tcp/0/ws')
    for (;;) {
      const event = await swarm.selectNextSome()
      if (event.type === 'NewListenAddr') {
        peer.address = `${event.address.toString()}/p2p/${swarm.localPeerId.toString()}`
        break
      }
    }
    peer.loop = peer.drive()
    return peer
  }

  get id (): string {
    return this.swarm.localPeerId.toString()
  }

  mesh (): string[] {
    return this.swarm.behaviour.gossipsub.meshPeers(TOPIC).map(String)
  }

  private async drive (): Promise<void> {
    for await (const event of this.swarm) {
      if (event.type !== 'Behaviour' || event.event.behaviour !== 'gossipsub') continue
      const e = event.event.event
      if (e.type === 'Message') this.received.push({ text: new TextDecoder().decode(e.message.data), author: e.message.source?.toString() ?? '', via: e.propagationSource.toString() })
      else if (e.type === 'InvalidMessage' || e.type === 'InvalidRpc') this.errors.push(`${e.type}: ${e.error.message}`)
    }
  }

  async stop (): Promise<void> {
    await this.swarm.close()
    await this.loop
  }
}

/** Serves a page that loads `script` on 127.0.0.1; resolves with its URL. */
async function servePage (script: Uint8Array): Promise<{ server: Server, url: string }> {
  const server = createServer((req, res) => {
    if (req.url === '/page.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(script)
    else if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><meta charset="utf-8"><title>peerswarm test</title><script type="module" src="/page.js"></script>')
    else res.writeHead(404).end()
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/` }
}

async function openPage (browser: Browser, url: string): Promise<Page> {
  const page = await browser.newPage()
  const problems: string[] = []
  page.on('pageerror', error => { problems.push(error.message); console.log(`      page error: ${error.message}`) })
  await page.goto(url)
  await page.waitForFunction(() => window.peerswarm != null, undefined, { timeout: 20_000 })
  expect(problems).to.deep.equal([])
  return page
}

const texts = (messages: readonly PageMessage[]): string[] => messages.map(m => m.text).sort()
const expected = (prefix: string): string[] => Array.from({ length: COUNT }, (_, i) => `${prefix} ${i}`).sort()

describe('in the browser (headless Chromium)', function () {
  this.timeout(120_000)
  let browser: Browser | undefined

  before(async function () {
    this.timeout(60_000)
    requireCapability(this, 'chromium')
    // WebRTC between pages on a loopback-only host: loopback candidates allowed, and a media
    // grant (with the permissions granted per context) so that pages offer host candidates.
    browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox', '--allow-loopback-in-peer-connection', '--use-fake-ui-for-media-stream'] })
  })

  after(async () => {
    await browser?.close()
  })

  describe('a page swarm and two Node swarms over WebSockets', () => {
    let server: Server | undefined
    let url = ''
    const nodes: NodePeer[] = []

    before(async function () {
      if (browser == null) this.skip()
      const bundle = await build({ entryPoints: ['test/fixtures/browser-page.ts'], bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent' })
      ;({ server, url } = await servePage(bundle.outputFiles[0].contents))
      nodes.push(await NodePeer.start(), await NodePeer.start())
    })

    after(async () => {
      await Promise.all(nodes.map(async node => { await node.stop() }))
      server?.close()
    })

    it('exchange 100 gossipsub messages each way, all delivered once; a second page gets the first page\'s messages through the Node swarms\' mesh', async () => {
      const [a, b] = nodes
      a.swarm.dial(b.address)
      const first = await openPage(browser as Browser, url)
      const second = await openPage(browser as Browser, url)
      try {
        const addresses = [a.address, b.address]
        const p1 = await first.evaluate(async (options) => await window.peerswarm.start(options), { addresses, topic: TOPIC })
        const p2 = await second.evaluate(async (options) => await window.peerswarm.start(options), { addresses, topic: TOPIC })
        const state = async (page: Page): Promise<{ connected: string[], mesh: string[], errors: string[] }> =>
          await page.evaluate(() => ({ connected: window.peerswarm.connected(), mesh: window.peerswarm.mesh(), errors: window.peerswarm.errors }))

        // Every page meshed with both Node swarms, and each Node swarm with the other and both pages.
        await until('the meshes: each page with both Node swarms, each Node swarm with the three others', async () => {
          const [s1, s2] = await Promise.all([state(first), state(second)])
          const meshOk = (mesh: string[], wanted: string[]): boolean => wanted.every(id => mesh.includes(id))
          return meshOk(s1.mesh, [a.id, b.id]) && meshOk(s2.mesh, [a.id, b.id]) && meshOk(a.mesh(), [b.id, p1, p2]) && meshOk(b.mesh(), [a.id, p1, p2])
        })
        // The two pages are never connected to each other: browsers cannot listen.
        expect((await state(first)).connected).to.have.members([a.id, b.id])
        expect((await state(second)).connected).to.have.members([a.id, b.id])

        expect(await first.evaluate((count) => window.peerswarm.publish('from page', count), COUNT)).to.equal(COUNT)
        for (const [i, node] of nodes.entries()) {
          for (let j = 0; j < COUNT; j++) node.swarm.behaviour.gossipsub.publish(TOPIC, new TextEncoder().encode(`from node ${i} ${j}`))
        }

        const received = async (page: Page): Promise<PageMessage[]> => await page.evaluate(() => window.peerswarm.received)
        await until('every message at every node', async () => {
          const [r1, r2] = await Promise.all([received(first), received(second)])
          return r1.length >= 2 * COUNT && r2.length >= 3 * COUNT && a.received.length >= 2 * COUNT && b.received.length >= 2 * COUNT
        }, 30_000)

        const fromPage = expected('from page')
        const fromNode = (i: number): string[] => expected(`from node ${i}`)
        // The Node swarms got the page's messages, and each other's, exactly once.
        expect(texts(a.received)).to.deep.equal([...fromNode(1), ...fromPage].sort())
        expect(texts(b.received)).to.deep.equal([...fromNode(0), ...fromPage].sort())
        // The first page got both Node swarms' messages, exactly once.
        const r1 = await received(first)
        expect(texts(r1)).to.deep.equal([...fromNode(0), ...fromNode(1)].sort())
        // The second page got everything, the first page's messages relayed by a Node swarm.
        const r2 = await received(second)
        expect(texts(r2)).to.deep.equal([...fromNode(0), ...fromNode(1), ...fromPage].sort())
        for (const message of r2.filter(m => m.text.startsWith('from page'))) {
          expect(message.author).to.equal(p1)
          expect([a.id, b.id]).to.include(message.via)
        }
        expect([...(await state(first)).errors, ...(await state(second)).errors, ...a.errors, ...b.errors]).to.deep.equal([])
      } finally {
        await Promise.all([first, second].map(async page => {
          await page.evaluate(async () => { await window.peerswarm.stop() }).catch(() => {})
          await page.close()
        }))
      }
    })
  })

  describe('examples/browser', () => {
    let child: ChildProcess | undefined
    let output = ''
    /** The example's URL, e.g. http://127.0.0.1:45129/ */
    let url = ''

    before(async function () {
      if (browser == null) this.skip()
      this.timeout(90_000)
      const server = spawn(process.execPath, ['--import', 'tsx', 'examples/browser/server.ts'], { stdio: ['pipe', 'pipe', 'inherit'] })
      child = server
      server.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
      await until('the example server to print its URLs', () => /live view at http:\/\/127\.0\.0\.1:\d+\//.test(output), 60_000)
      url = (/at (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(output) as RegExpExecArray)[1]
    })

    after(() => {
      child?.kill('SIGTERM')
    })

    it('the page dials the server\'s Node swarm, is welcomed over GossipSub, and its typed message reaches the server', async () => {
      const page = await (browser as Browser).newPage()
      try {
        const problems: string[] = []
        page.on('pageerror', error => problems.push(error.message))
        await page.goto(url)
        await page.locator('#messages li', { hasText: 'welcome,' }).waitFor({ timeout: 20_000 })
        await page.fill('#text', 'hello from chromium')
        await page.click('#send button')
        await until('the server to print the page\'s message', () => output.includes("received 'hello from chromium'"))
        expect(problems).to.deep.equal([])
      } finally {
        await page.close()
      }
    })

    it('two tabs of webrtc.html meet through the server\'s relay and chat both ways over their direct WebRTC connection, which the live view draws between two browser peers', async () => {
      const context = await (browser as Browser).newContext()
      await context.grantPermissions(['camera', 'microphone'])
      const problems: string[] = []
      const view = await context.newPage()
      try {
        const tabs: Page[] = []
        for (let i = 0; i < 2; i++) {
          const tab = await context.newPage()
          tab.on('pageerror', error => problems.push(error.message))
          await tab.goto(`${url}webrtc.html`)
          tabs.push(tab)
        }
        const [a, b] = tabs
        const started = Date.now()
        // Each tab's own table: the other tab over a direct WebRTC connection, the relay over
        // WebSockets. (The input is enabled once the other tab has joined the chat topic.)
        for (const tab of tabs) {
          await tab.locator('#peers tr', { has: tab.locator('td.kind', { hasText: 'direct (webrtc)' }) }).waitFor({ timeout: 30_000 })
          await tab.locator('#text:not([disabled])').waitFor({ timeout: 20_000 })
        }
        const connectedIn = Date.now() - started
        const rows = async (tab: Page): Promise<string[]> => (await tab.$$eval('#peers tr', trs => trs.map(tr => Array.from(tr.querySelectorAll('td')).map(td => td.textContent).join(' | ')))).sort()
        const idOf = async (tab: Page): Promise<string> => (await tab.evaluate(() => document.title)).replace('WebRTC chat ', '')
        const [idA, idB] = [await idOf(a), await idOf(b)]
        const relayShort = `…${(/node swarm (\S+)/.exec(output) as RegExpExecArray)[1].slice(-6)}`
        expect(await rows(a)).to.deep.equal([`${idB} | other tab | direct (webrtc)`, `${relayShort} | relay | direct (websockets)`].sort())
        expect(await rows(b)).to.deep.equal([`${idA} | other tab | direct (webrtc)`, `${relayShort} | relay | direct (websockets)`].sort())

        // A line each way; each arrives from the other tab itself, over the WebRTC connection.
        for (const [from, to, fromId] of [[a, b, idA], [b, a, idB]] as const) {
          const text = `hello from ${fromId}`
          await from.fill('#text', text)
          await from.click('#send button')
          await from.locator('#messages li.mine', { hasText: text }).waitFor({ timeout: 5_000 })
          const line = to.locator('#messages li.theirs', { hasText: text })
          await line.waitFor({ timeout: 10_000 })
          expect(await line.locator('.from').textContent()).to.equal(`${fromId} via direct (webrtc)`)
        }

        // The live view: the relay, the two tabs drawn as browser peers, a WebRTC line between
        // them and a plain one from each to the relay.
        await view.goto((/live view at (\S+)/.exec(output) as RegExpExecArray)[1])
        const drawn = async (): Promise<{ browsers: string[], webrtc: string[], plain: number }> => await view.evaluate(() => ({
          browsers: Array.from(document.querySelectorAll('g.node.observed.browser')).map(g => g.getAttribute('data-name') ?? '').sort(),
          webrtc: Array.from(document.querySelectorAll('line.conn.webrtc')).map(l => `${l.getAttribute('data-a') ?? ''}|${l.getAttribute('data-b') ?? ''}`),
          plain: document.querySelectorAll('line.conn:not(.webrtc):not(.limited)').length
        }))
        let last: unknown
        await until('the view to draw two browser tabs and their WebRTC link', async () => {
          const shown = last = await drawn()
          return shown.browsers.length === 2 && shown.webrtc.length === 1 && shown.plain === 2
        }).catch((err: Error) => { throw new Error(`${err.message}: ${JSON.stringify(last)}`) })
        const shown = await drawn()
        expect(shown.browsers).to.deep.equal([`tab ${idA}`, `tab ${idB}`].sort())
        const [ends] = shown.webrtc
        const names = await view.evaluate((pair) => pair.split('|').map(id => document.querySelector(`g.node[data-peer="${id}"]`)?.getAttribute('data-name')).sort(), ends)
        expect(names).to.deep.equal([`tab ${idA}`, `tab ${idB}`].sort())
        expect(await view.textContent('#legend')).to.include('WebRTC connection (direct)')
        expect(problems).to.deep.equal([])
        console.log(`      tabs connected over /webrtc ${connectedIn} ms after the second tab was opened`)
      } finally {
        await context.close()
      }
    })

    it('the server takes tab reports for its view only as views, of at most 256 KiB, from at most 16 tabs', async () => {
      const post = async (body: string): Promise<number> => (await fetch(`${url}report`, { method: 'POST', body })).status
      const tab = (i: number): string => JSON.stringify({ name: 'x', peerId: `12D3KooWFake${i}`, listeners: [], connections: [], pubsub: [] })
      expect(await post('{ not json')).to.equal(400)
      expect(await post(JSON.stringify({ peerId: 'p', connections: 'none' }))).to.equal(400)
      expect(await post(JSON.stringify({ name: 'x', peerId: 'p', listeners: [], connections: [{ peer: 1 }], pubsub: [] }))).to.equal(400)
      expect(await post('x'.repeat(300 * 1024))).to.equal(413)
      // The previous test's tabs may still hold their slots (5 s after their last report).
      const statuses: number[] = []
      for (let i = 0; i < 20; i++) statuses.push(await post(tab(i)))
      const accepted = statuses.filter(status => status === 204).length
      expect(accepted).to.be.within(14, 16)
      expect(statuses).to.deep.equal([...new Array<number>(accepted).fill(204), ...new Array<number>(20 - accepted).fill(400)])
      // A tab that holds a slot may still report.
      expect(await post(tab(0))).to.equal(204)
      const view = (/live view at (\S+)/.exec(output) as RegExpExecArray)[1]
      const snapshot = await (await fetch(`${view}snapshot.json`)).json() as { nodes: Array<{ name: string }> }
      expect(snapshot.nodes).to.have.length(1 + 16)
    })
  })

  describe('the network view of npm run demo', () => {
    let network: DemoNetwork | undefined
    let shots: string | undefined

    after(async () => {
      await network?.close()
      if (shots != null) rmSync(shots, { recursive: true, force: true })
    })

    it('shows every node and every mesh edge the swarms report; counters move as messages are delivered; a screenshot is a PNG', async function () {
      if (browser == null) this.skip()
      const net = network = await DemoNetwork.start({ count: 5, view: true, log: () => {} })
      await Promise.race([net.allGreeted(), new Promise((_resolve, reject) => setTimeout(() => { reject(new Error('the demo nodes did not greet each other within 30 s')) }, 30_000).unref())])
      const page = await (browser as Browser).newPage({ viewport: { width: 1400, height: 900 } })
      const problems: string[] = []
      page.on('pageerror', error => problems.push(error.message))
      try {
        await page.goto((net.view as { url: string }).url)
        const ids = net.nodes.map(swarm => swarm.localPeerId.toString())
        const fromSwarms = (): { mesh: string[], connections: string[] } => ({
          mesh: net.nodes.flatMap(swarm => swarm.behaviour.gossipsub.meshPeers(DEMO_TOPIC).map(peer => `${swarm.localPeerId.toString()}>${peer.toString()}`)).sort(),
          connections: [...new Set(net.nodes.flatMap(swarm => swarm.connections().map(c => [swarm.localPeerId.toString(), c.peerId.toString()].sort().join('|'))))].sort()
        })
        const fromPage = async (): Promise<{ nodes: string[], mesh: string[], connections: string[] }> => await page.evaluate((topic) => ({
          nodes: Array.from(document.querySelectorAll('g.node.observed')).map(g => g.getAttribute('data-peer') ?? '').sort(),
          mesh: Array.from(document.querySelectorAll('line.mesh')).filter(l => l.getAttribute('data-topic') === topic).map(l => `${l.getAttribute('data-from') ?? ''}>${l.getAttribute('data-to') ?? ''}`).sort(),
          connections: Array.from(document.querySelectorAll('line.conn')).map(l => `${l.getAttribute('data-a') ?? ''}|${l.getAttribute('data-b') ?? ''}`).sort()
        }), DEMO_TOPIC.hash)
        let last: unknown
        await until('the page to show what the swarms report', async () => {
          const shown = await fromPage()
          const reported = fromSwarms()
          last = { shown, reported }
          return JSON.stringify(shown.nodes) === JSON.stringify([...ids].sort()) && reported.mesh.length > 0 &&
            JSON.stringify(shown.mesh) === JSON.stringify(reported.mesh) && JSON.stringify(shown.connections) === JSON.stringify(reported.connections)
        }).catch((err: Error) => { throw new Error(`${err.message}: ${JSON.stringify(last)}`) })
        // Every node has 4 peers here, and each of them is in its mesh (D = 6).
        expect(fromSwarms().mesh).to.have.length(5 * 4)

        const delivered = async (): Promise<number> => Number(await page.textContent('#delivered'))
        const before = await delivered()
        for (let i = 0; i < 10; i++) expect(net.publish(i % 5, `counted ${i}`)).to.equal(true)
        // Ten messages, each delivered at the four other nodes.
        await until('the delivery counter to count 40 more', async () => await delivered() >= before + 40)
        expect(await page.textContent('#latency')).to.match(/ms mean/)
        // Clicking a node shows its details.
        await page.click(`g.node[data-peer="${ids[2]}"] circle`)
        await until('the details of node 2', async () => await page.textContent('#node-name') === 'node 2')
        expect(await page.locator('#connections tr').count()).to.equal(1 + net.nodes[2].connections().length)

        shots = mkdtempSync(join(tmpdir(), 'peerswarm-view-'))
        const file = join(shots, 'view.png')
        await page.screenshot({ path: file })
        const png = readFileSync(file)
        expect(png.byteLength).to.be.above(5_000)
        expect([...png.subarray(0, 8)]).to.deep.equal([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
        expect(problems).to.deep.equal([])
      } finally {
        await page.close()
      }
    })
  })

  describe('serveView of one swarm', () => {
    it('lists its connections and its mesh in the page', async function () {
      if (browser == null) this.skip()
      const create = (key: Parameters<typeof behaviour>[0]) => combine({ gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), heartbeatInitialDelay: 10, heartbeatInterval: 100 }) })
      const swarms = await Promise.all([0, 1, 2].map(async () => newSwarm(create)))
      const controller = new AbortController()
      const view = await serveView(swarms[0])
      const page = await (browser as Browser).newPage()
      try {
        for (const swarm of swarms) swarm.behaviour.gossipsub.subscribe('t')
        await connect(swarms[0], swarms[1])
        await connect(swarms[2], swarms[0])
        await driveUntil(swarms, () => swarms[0].behaviour.gossipsub.meshPeers('t').length === 2)
        const loops = swarms.map(async swarm => { try { for (;;) await swarm.selectNextSome({ signal: controller.signal }) } catch {} })
        await page.goto(view.url)
        await until('two connections and a mesh of two in the page', async () => await page.evaluate(() =>
          document.querySelectorAll('#connections tr').length === 3 && document.querySelectorAll('line.mesh').length === 2))
        // Columns: peer, transport, kind (direct or relayed), direction, …
        const kinds = await page.$$eval('#connections tr td:nth-child(3)', cells => cells.map(c => c.textContent))
        expect(kinds).to.deep.equal(['direct', 'direct'])
        const directions = await page.$$eval('#connections tr td:nth-child(4)', cells => cells.map(c => c.textContent).sort())
        expect(directions).to.deep.equal(['inbound', 'outbound'])
        expect(await page.textContent('.topics')).to.include('t')
        controller.abort()
        await Promise.all(loops)
      } finally {
        controller.abort()
        await page.close()
        await view.close()
        await Promise.all(swarms.map(async swarm => { await swarm.close() }))
      }
    })
  })
})
