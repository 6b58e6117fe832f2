/**
 * Two pages in headless Chromium, each connected only to a Node relay (WebSockets), meet over
 * `/webrtc`: B listens on `<relay>/p2p-circuit/webrtc`, A dials it; 100 GossipSub messages cross
 * each way, and 100 more after the relay's swarm is closed. Chromium flags (docs/webrtc.md):
 * `--allow-loopback-in-peer-connection`, and a media grant so that pages expose their host
 * candidates. Skipped, with the reason printed, without a Chromium (failing instead with
 * `PEERSWARM_REQUIRE_ALL=1`).
 */
import { expect } from 'chai'
import { chromium } from 'playwright-core'
import { SwarmBuilder, combine, relay } from '../../src/index.js'
import { chromiumPath, requireCapability } from '../fixtures/capabilities.js'
import { servePage } from '../fixtures/page-server.js'
import { EventLog } from '../fixtures/event-log.js'
import type { ServedPage } from '../fixtures/page-server.js'
import type { Browser, Page } from 'playwright-core'

const TOPIC = 'webrtc-pages'
const COUNT = 100

const PAGE = `
import { SwarmBuilder, combine, gossipsub } from './src/browser.ts'
const received = []
const errors = []
const listenAddrs = []
let swarm
window.api = {
  async start (topic) {
    swarm = await SwarmBuilder.withNewIdentity().withWebSockets().withRelayClient().withWebRTC()
      .withBehaviour((key, relayClient) => combine({ relayClient, gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), heartbeatInterval: 200 }) }))
      .withSwarmConfig({ idleConnectionTimeout: 60000 })
      .build()
    swarm.behaviour.children.gossipsub.subscribe(topic)
    void (async () => {
      try {
        for await (const event of swarm) {
          if (event.type === 'OutgoingConnectionError') errors.push('dial: ' + event.error.message + ' ' + (event.error.cause?.message ?? ''))
          if (event.type === 'ListenerError' || event.type === 'ListenerClosed') errors.push('listener: ' + String(event.error?.message ?? event.reason ?? ''))
          if (event.type === 'NewListenAddr') listenAddrs.push(event.address.toString())
          if (event.type === 'Behaviour' && event.event.behaviour === 'gossipsub' && event.event.event.type === 'Message') received.push(new TextDecoder().decode(event.event.event.message.data))
        }
      } catch (err) { errors.push('loop: ' + err.message) }
    })()
    return swarm.localPeerId.toString()
  },
  listen (address) { swarm.listenOn(address) },
  dial (address) { swarm.dial(address) },
  publish (topic, prefix, count) {
    for (let i = 0; i < count; i++) swarm.behaviour.children.gossipsub.publish(topic, new TextEncoder().encode(prefix + ' ' + i))
  },
  state (topic) {
    return {
      connections: swarm.connections().map(c => ({ peer: c.peerId.toString(), transport: c.transport })),
      subscribers: swarm.behaviour.children.gossipsub.subscribers(topic).map(String),
      mesh: swarm.behaviour.children.gossipsub.meshPeers(topic).map(String),
      received, errors, listenAddrs
    }
  },
  async stop () { await swarm?.close() }
}
`

interface PageState { connections: Array<{ peer: string, transport: string }>, subscribers: string[], mesh: string[], received: string[], errors: string[], listenAddrs: string[] }

async function until (what: string, condition: () => boolean | Promise<boolean>, timeout = 20_000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

describe('WebRTC private to private between two pages (headless Chromium) through a Node relay', function () {
  this.timeout(90_000)
  let browser: Browser | undefined
  let server: ServedPage | undefined
  let url = ''

  before(async function () {
    this.timeout(60_000)
    requireCapability(this, 'chromium')
    server = await servePage(PAGE, 'webrtc-pages.js')
    url = server.url
    browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox', '--allow-loopback-in-peer-connection', '--use-fake-ui-for-media-stream'] })
  })

  after(async () => {
    await browser?.close()
    await server?.close()
  })

  it('two pages meet through the relay, connect over /webrtc, and keep exchanging GossipSub messages after the relay stops', async () => {
    const relaySwarm = await SwarmBuilder.withNewIdentity().withWebSockets()
      .withBehaviour(key => combine({ relay: new relay.Behaviour(key) }))
      .withSwarmConfig({ idleConnectionTimeout: 60_000 })
      .build()
    const relayLog = new EventLog(relaySwarm)
    relaySwarm.listenOn('/ip4/127.0.0.1/tcp/0/ws')
    const listening = await relayLog.find(e => e.type === 'NewListenAddr')
    if (listening.type !== 'NewListenAddr') throw new Error('unreachable')
    relaySwarm.addExternalAddress(listening.address)
    const circuit = `${listening.address.toString()}/p2p/${relaySwarm.localPeerId.toString()}/p2p-circuit`
    const context = await (browser as Browser).newContext()
    await context.grantPermissions(['camera', 'microphone'])
    const pages: Page[] = []
    let relayClosed = false
    try {
      for (let i = 0; i < 2; i++) {
        const page = await context.newPage()
        await page.goto(url)
        await page.waitForFunction(() => (window as unknown as { api?: unknown }).api != null)
        pages.push(page)
      }
      const [a, b] = pages
      const state = async (page: Page): Promise<PageState> => {
        const s = await page.evaluate((t) => (window as any).api.state(t), TOPIC) as PageState
        if (s.errors.length > 0) throw new Error(`page errors: ${s.errors.join('; ')}`)
        return s
      }
      const idA = await a.evaluate(async (t) => await (window as any).api.start(t), TOPIC) as string
      const idB = await b.evaluate(async (t) => await (window as any).api.start(t), TOPIC) as string
      await b.evaluate((addr) => { (window as any).api.listen(addr) }, `${circuit}/webrtc`)
      await until('B announcing its /webrtc address', async () => (await state(b)).listenAddrs.length > 0)
      const address = (await state(b)).listenAddrs[0]
      expect(address).to.equal(`${circuit}/webrtc/p2p/${idB}`)
      const started = Date.now()
      await a.evaluate((addr) => { (window as any).api.dial(addr) }, address)
      await until('a WebRTC connection each way and a mesh', async () => {
        const [sa, sb] = [await state(a), await state(b)]
        return sa.connections.some(c => c.peer === idB && c.transport === 'webrtc') && sb.connections.some(c => c.peer === idA && c.transport === 'webrtc') && sa.mesh.length === 1 && sb.mesh.length === 1
      })
      const connectedIn = Date.now() - started
      const exchange = async (round: string): Promise<void> => {
        await a.evaluate(([t, p, n]) => { (window as any).api.publish(t, p, n) }, [TOPIC, `${round} from A`, COUNT] as const)
        await b.evaluate(([t, p, n]) => { (window as any).api.publish(t, p, n) }, [TOPIC, `${round} from B`, COUNT] as const)
        await until(`${round}: ${COUNT} messages each way`, async () =>
          (await state(b)).received.filter(r => r.startsWith(`${round} from A`)).length === COUNT &&
          (await state(a)).received.filter(r => r.startsWith(`${round} from B`)).length === COUNT)
      }
      await exchange('relayed-up')
      await relayLog.close()
      relayClosed = true
      await until('the relay gone from both pages', async () => (await state(a)).connections.every(c => c.peer === idB) && (await state(b)).connections.every(c => c.peer === idA))
      await exchange('relay-down')
      expect((await state(a)).connections).to.deep.equal([{ peer: idB, transport: 'webrtc' }])
      console.log(`      pages connected over /webrtc in ${connectedIn} ms (mesh formed)`)
    } finally {
      for (const page of pages) await page.evaluate(async () => { await (window as any).api?.stop() }).catch(() => {})
      await context.close()
      if (!relayClosed) await relayLog.close()
    }
  })
})
