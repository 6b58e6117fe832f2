/**
 * A page in headless Chromium dials a Node peerswarm swarm over `/webrtc-direct` (the page's
 * own `RTCPeerConnection`, the browser build bundled here with esbuild) and they exchange
 * GossipSub messages both ways. Chromium gathers no loopback candidate without
 * `--allow-loopback-in-peer-connection`. Skipped, with the reason printed, without a Chromium
 * (failing instead with `PEERSWARM_REQUIRE_ALL=1`).
 */
import { expect } from 'chai'
import { chromium } from 'playwright-core'
import { SwarmBuilder, combine, gossipsub } from '../../src/index.js'
import { chromiumPath, requireCapability } from '../fixtures/capabilities.js'
import { servePage } from '../fixtures/page-server.js'
import type { ServedPage } from '../fixtures/page-server.js'
import type { Browser, Page } from 'playwright-core'

const TOPIC = 'webrtc-browser'
const COUNT = 20

/** The page's program: a browser-build swarm with WebRTC Direct and GossipSub. */
const PAGE = `
import { SwarmBuilder, combine, gossipsub } from './src/browser.ts'
const received = []
const errors = []
let swarm
window.api = {
  async start (address, topic) {
    swarm = await SwarmBuilder.withNewIdentity().withWebRTCDirect()
      .withBehaviour(key => combine({ gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), heartbeatInterval: 200 }) }))
      .withSwarmConfig({ idleConnectionTimeout: 60000 })
      .build()
    swarm.behaviour.gossipsub.subscribe(topic)
    swarm.dial(address)
    void (async () => {
      try {
        for await (const event of swarm) {
          if (event.type === 'OutgoingConnectionError') errors.push('dial: ' + event.error.message + ' ' + (event.error.cause?.message ?? ''))
          if (event.type === 'ConnectionEstablished') received.push('connected ' + event.endpoint.address)
          if (event.type === 'Behaviour' && event.event.event.type === 'Message') received.push(new TextDecoder().decode(event.event.event.message.data))
        }
      } catch (err) { errors.push('loop: ' + err.message) }
    })()
    return swarm.localPeerId.toString()
  },
  publish (topic, prefix, count) {
    for (let i = 0; i < count; i++) swarm.behaviour.gossipsub.publish(topic, new TextEncoder().encode(prefix + ' ' + i))
  },
  state (topic) {
    return { connected: swarm.connectedPeers().map(String), subscribers: swarm.behaviour.gossipsub.subscribers(topic).map(String), received, errors }
  },
  async stop () { await swarm?.close() }
}
`

async function until (what: string, condition: () => boolean | Promise<boolean>, timeout = 20_000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

interface PageState { connected: string[], subscribers: string[], received: string[], errors: string[] }

describe('WebRTC Direct from a page (headless Chromium) to a Node swarm', function () {
  this.timeout(60_000)
  let browser: Browser | undefined
  let server: ServedPage | undefined
  let url = ''

  before(async function () {
    this.timeout(60_000)
    requireCapability(this, 'chromium')
    server = await servePage(PAGE, 'webrtc-page.js')
    url = server.url
    browser = await chromium.launch({ executablePath: chromiumPath(), args: ['--no-sandbox', '--allow-loopback-in-peer-connection'] })
  })

  after(async () => {
    await browser?.close()
    await server?.close()
  })

  it('connects, and GossipSub messages cross both ways', async () => {
    const node = await SwarmBuilder.withNewIdentity().withWebRTCDirect()
      .withBehaviour(key => combine({ gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), heartbeatInterval: 200 }) }))
      .withSwarmConfig({ idleConnectionTimeout: 60_000 })
      .build()
    const fromPage: string[] = []
    const stop = new AbortController()
    node.behaviour.gossipsub.subscribe(new gossipsub.IdentTopic(TOPIC))
    node.listenOn('/ip4/127.0.0.1/udp/0/webrtc-direct')
    let address = ''
    const loop = (async () => {
      for (;;) {
        let event
        try {
          event = await node.selectNextSome({ signal: stop.signal })
        } catch {
          return
        }
        if (event.type === 'NewListenAddr') address = `${event.address.toString()}/p2p/${node.localPeerId.toString()}`
        if (event.type === 'Behaviour' && event.event.behaviour === 'gossipsub' && event.event.event.type === 'Message') fromPage.push(new TextDecoder().decode(event.event.event.message.data))
      }
    })()
    let page: Page | undefined
    try {
      await until('listen address', () => address !== '')
      page = await (browser as Browser).newPage()
      await page.goto(url)
      await page.waitForFunction(() => (window as unknown as { api?: unknown }).api != null)
      const started = Date.now()
      const pageId = await page.evaluate(async ([a, t]) => await (window as any).api.start(a, t), [address, TOPIC])
      const state = async (): Promise<PageState> => await (page as Page).evaluate((t) => (window as any).api.state(t), TOPIC)
      await until('the page connected and both sides know the other subscribes', async () => {
        const s = await state()
        if (s.errors.length > 0) throw new Error(`page errors: ${s.errors.join('; ')}`)
        return s.subscribers.length === 1 && node.behaviour.gossipsub.subscribers(new gossipsub.IdentTopic(TOPIC)).length === 1
      })
      const connectedIn = Date.now() - started
      expect((await state()).connected).to.deep.equal([node.localPeerId.toString()])
      expect(node.connectedPeers().map(String)).to.deep.equal([pageId])
      await page.evaluate(([t, n]) => { (window as any).api.publish(t, 'from page', n) }, [TOPIC, COUNT] as const)
      for (let i = 0; i < COUNT; i++) node.behaviour.gossipsub.publish(new gossipsub.IdentTopic(TOPIC), new TextEncoder().encode(`from node ${i}`))
      await until('messages both ways', async () => fromPage.length === COUNT && (await state()).received.filter(r => r.startsWith('from node')).length === COUNT)
      // GossipSub promises no order (the first of a new author's messages may wait for its key).
      expect([...fromPage].sort()).to.deep.equal(Array.from({ length: COUNT }, (_, i) => `from page ${i}`).sort())
      expect((await state()).received.filter(r => r.startsWith('from node')).sort()).to.deep.equal(Array.from({ length: COUNT }, (_, i) => `from node ${i}`).sort())
      console.log(`      page connected over /webrtc-direct in ${connectedIn} ms (subscriptions exchanged)`)
    } finally {
      await page?.evaluate(async () => { await (window as any).api?.stop() }).catch(() => {})
      await page?.close()
      stop.abort()
      await loop
      await node.close()
    }
  })
})
