/**
 * `peerswarm/view` over HTTP: the page, the state as JSON, and the event stream, for a swarm
 * in a two-swarm memory network. (The page itself is driven in Chromium in browser.test.ts.)
 */
import { expect } from 'chai'
import { request } from 'node:http'
import { multiaddr } from '@multiformats/multiaddr'
import { combine, floodsub, gossipsub, newConnectionId, transportOf } from '../../src/index.js'
import { connect, driveUntil, newSwarm } from '../../src/testing/index.js'
import { nodeView, serveNetworkView, serveView } from '../../src/view/index.js'
import { PAGE_SCRIPT } from '../../src/view/page.js'
import type { ExternalViewNode, NodeView, ViewNode, ViewSnapshot } from '../../src/view/index.js'
import type { AnyBehaviour, ConnectedPoint, ConnectionInfo, Keypair, Swarm } from '../../src/index.js'

const create = (key: Keypair) => combine({
  pubsub: new gossipsub.Behaviour({
    authenticity: gossipsub.MessageAuthenticity.signed(key),
    heartbeatInitialDelay: 10,
    heartbeatInterval: 100,
    supportFloodsub: false,
    scoreParams: { topics: { news: gossipsub.defaultTopicScoreParams } }
  }),
  flood: new floodsub.Behaviour({ authenticity: floodsub.MessageAuthenticity.signed(key) })
})

/** Read server-sent events from `url` until `done(event, data)` is true; returns that data. */
async function readEvents (url: string, done: (event: string, data: string) => boolean, timeout = 10_000): Promise<string> {
  const controller = new AbortController()
  const timer = setTimeout(() => { controller.abort() }, timeout)
  try {
    const response = await fetch(url, { signal: controller.signal })
    expect(response.headers.get('content-type')).to.equal('text/event-stream')
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    const decoder = new TextDecoder()
    let buffer = ''
    for (;;) {
      const { value, done: ended } = await reader.read()
      if (ended) throw new Error('event stream ended')
      buffer += decoder.decode(value, { stream: true })
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message'
        const data = block.split('\n').filter(line => line.startsWith('data: ')).map(line => line.slice(6)).join('\n')
        if (data !== '' && done(event, data)) return data
      }
    }
  } finally {
    clearTimeout(timer)
    controller.abort()
  }
}

/** A raw request, so that the Host header can be anything. */
async function raw (url: string, options: { method?: string, host?: string }): Promise<number> {
  return await new Promise((resolve, reject) => {
    const target = new URL(url)
    const req = request({ hostname: target.hostname, port: target.port, path: '/', method: options.method ?? 'GET', headers: options.host == null ? {} : { host: options.host } }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.end()
  })
}

describe('peerswarm/view', function () {
  this.timeout(30_000)

  it('serves a page, the state and an event stream that report the peer, the connection and the mesh', async () => {
    const [a, b] = await Promise.all([newSwarm(create), newSwarm(create)])
    const controller = new AbortController()
    const view = await serveView(a, { interval: 50 })
    try {
      expect(view.url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/$/)
      for (const swarm of [a, b]) {
        swarm.behaviour.pubsub.subscribe('news')
        swarm.behaviour.flood.subscribe('flood-topic')
      }
      await connect(a, b)
      await driveUntil([a, b], () => a.behaviour.pubsub.meshPeers('news').length === 1 && a.behaviour.flood.subscribers('flood-topic').length === 1)
      // Keep both swarms running while the view is read.
      const loops = [a, b].map(async swarm => { try { for (;;) await swarm.selectNextSome({ signal: controller.signal }) } catch {} })

      const page = await fetch(view.url)
      expect(page.status).to.equal(200)
      expect(page.headers.get('content-type')).to.match(/^text\/html/)
      const html = await page.text()
      expect(html).to.include('<title>peerswarm view</title>')
      expect(html).to.include("new EventSource('events')")
      expect(html).not.to.match(/setInterval\([^)]*fetch/)

      const bId = b.localPeerId.toString()
      const reports = (snapshot: ViewSnapshot): boolean => {
        const node = snapshot.nodes[0]
        const gossip = node.pubsub.find(p => p.kind === 'gossipsub')
        return node.connections.some(c => c.peer === bId) && gossip?.topics.find(t => t.topic === 'news')?.mesh.includes(bId) === true
      }
      const data = await readEvents(`${view.url}events`, (event, text) => event === 'snapshot' && reports(JSON.parse(text) as ViewSnapshot))
      const snapshot = JSON.parse(data) as ViewSnapshot
      const [node] = snapshot.nodes
      expect(node.peerId).to.equal(a.localPeerId.toString())
      const [connection] = node.connections
      expect(connection).to.include({ peer: bId, transport: 'memory', direction: 'outbound', encryption: '/noise', multiplexer: '/yamux/1.0.0', limited: false })
      expect(connection.establishedAt).to.be.at.most(Date.now())
      const gossip = node.pubsub.find(p => p.kind === 'gossipsub')
      expect(gossip?.path).to.equal('pubsub')
      expect(gossip?.topics).to.deep.equal([{ topic: 'news', subscribed: true, mesh: [bId], fanout: [], subscribers: [bId] }])
      expect(gossip?.protocols[bId]).to.equal('/meshsub/1.2.0')
      // Scoring is on: b's score and its components.
      const score = gossip?.scores.find(s => s.peer === bId)
      expect(score).to.not.equal(undefined)
      expect(score?.topics.news).to.have.keys(['p1', 'p2', 'p3', 'p3b', 'p4', 'total'])
      const flood = node.pubsub.find(p => p.kind === 'floodsub')
      expect(flood?.path).to.equal('flood')
      expect(flood?.topics).to.deep.equal([{ topic: 'flood-topic', subscribed: true, mesh: [], fanout: [], subscribers: [bId] }])

      // Messages move the totals and the rates: a publishes once the page has its first state.
      let published = false
      const moved = await readEvents(`${view.url}events`, (event, text) => {
        if (!published) {
          published = true
          for (let i = 0; i < 5; i++) a.behaviour.pubsub.publish('news', new TextEncoder().encode(`m${i}`))
        }
        const g = (JSON.parse(text) as ViewSnapshot).nodes[0].pubsub.find(p => p.kind === 'gossipsub')
        return event === 'snapshot' && g != null && g.totals.published === 5 && g.rates.out > 0
      })
      expect((JSON.parse(moved) as ViewSnapshot).nodes[0].pubsub[0].totals.published).to.equal(5)

      // The state as JSON, once.
      const once = await (await fetch(`${view.url}snapshot.json`)).json() as ViewSnapshot
      expect(once.nodes[0].peerId).to.equal(a.localPeerId.toString())
      // Read-only, and only for its own host name (DNS rebinding).
      expect(await raw(view.url, { method: 'POST' })).to.equal(405)
      expect(await raw(view.url, { host: 'evil.example:80' })).to.equal(403)
      expect(await raw(view.url, { host: `localhost:${new URL(view.url).port}` })).to.equal(200)
      expect((await fetch(`${view.url}nothing`)).status).to.equal(404)
      // Nothing secret: no private key material anywhere in what is served.
      const privateKey = Buffer.from(a.behaviour.pubsub.config.authenticity.type === 'Signed' ? a.behaviour.pubsub.config.authenticity.key.raw : new Uint8Array()).toString('base64')
      expect(JSON.stringify(once)).not.to.include(privateKey)
      controller.abort()
      await Promise.all(loops)
    } finally {
      controller.abort()
      await view.close()
      await Promise.all([a.close(), b.close()])
    }
  })

  it('shows nodes of other processes from the views they send (ExternalViewNode), pushed at update(), relayed connections marked limited', async () => {
    const swarm = await newSwarm(create)
    const latest = new Map<string, NodeView>()
    const view = await serveNetworkView([{ name: 'here', swarm }, ...['a', 'b'].map(name => ({ name, latest: () => latest.get(name) }))], { interval: 60_000 })
    try {
      // Before a view arrived, an external node is left out.
      expect((await (await fetch(`${view.url}snapshot.json`)).json() as ViewSnapshot).nodes.map(n => n.name)).to.deep.equal(['here'])
      const connection = { id: 1, peer: '12D3KooWB', transport: 'p2p-circuit', direction: 'outbound' as const, address: '/ip4/198.18.0.10/tcp/4001/p2p/12D3KooWR/p2p-circuit/p2p/12D3KooWB', establishedAt: Date.now(), streams: 2, encryption: '/noise', multiplexer: '/yamux/1.0.0', limited: true }
      const sent: NodeView = { name: 'named by its sender', peerId: '12D3KooWA', listeners: [], connections: [connection], pubsub: [] }
      // The sampling interval is a minute: only update() can bring the new view to the open
      // page, which got the state without it first.
      const firsts: number[] = []
      const arrived = await readEvents(`${view.url}events`, (event, text) => {
        const nodes = (JSON.parse(text) as ViewSnapshot).nodes.length
        if (firsts.length === 0) {
          firsts.push(nodes)
          latest.set('a', sent)
          view.update()
        }
        return event === 'snapshot' && nodes === 2
      })
      expect(firsts).to.deep.equal([1])
      const snapshot = JSON.parse(arrived) as ViewSnapshot
      expect(snapshot.nodes.map(n => n.name)).to.deep.equal(['here', 'a'])
      expect(snapshot.nodes[1]).to.deep.equal({ ...sent, name: 'a' })
      expect(snapshot.nodes[1].connections[0].limited).to.equal(true)
      expect(snapshot.nodes[0].peerId).to.equal(swarm.localPeerId.toString())
    } finally {
      await view.close()
      await swarm.close()
    }
  })

  it('takes a changing set of nodes from a function: nodes come and go, rates are still taken against each node\'s previous view; views say whether they come from a browser', async () => {
    const [a, b] = await Promise.all([newSwarm(create), newSwarm(create)])
    const aNode: ViewNode = { name: 'a', swarm: a }
    const tab: NodeView = { name: 'tab', peerId: '12D3KooWTab', browser: true, listeners: [], connections: [], pubsub: [] }
    const tabNode: ExternalViewNode = { name: 'tab', latest: () => tab }
    let nodes: Array<ViewNode | ExternalViewNode> = [aNode]
    let calls = 0
    // A new array at each call, as a caller building it from a Map does.
    const view = await serveNetworkView(() => { calls++; return [...nodes] }, { interval: 60_000 })
    try {
      const once = async (): Promise<ViewSnapshot> => await (await fetch(`${view.url}snapshot.json`)).json() as ViewSnapshot
      for (const swarm of [a, b]) swarm.behaviour.pubsub.subscribe('news')
      await connect(a, b)
      await driveUntil([a, b], () => a.behaviour.pubsub.meshPeers('news').length === 1)
      const first = await once()
      expect(first.nodes.map(n => [n.name, n.browser])).to.deep.equal([['a', false]])
      nodes = [tabNode, aNode]
      for (let i = 0; i < 5; i++) a.behaviour.pubsub.publish('news', new TextEncoder().encode(`m${i}`))
      await new Promise(resolve => setTimeout(resolve, 20))
      const second = await once()
      expect(second.nodes.map(n => [n.name, n.browser])).to.deep.equal([['tab', true], ['a', false]])
      // a moved from first to second place: its rate is still taken against its first view.
      expect(second.nodes[1].pubsub.find(p => p.kind === 'gossipsub')?.rates.out).to.be.above(0)
      nodes = [aNode]
      expect((await once()).nodes.map(n => n.name)).to.deep.equal(['a'])
      expect(calls).to.equal(3)
    } finally {
      await view.close()
      await Promise.all([a.close(), b.close()])
    }
  })

  it('names WebRTC connections by their transport (webrtc, webrtc-direct), direct, not limited', async () => {
    const swarm = await newSwarm(create)
    try {
      const certhash = `u${Buffer.from([0x12, 0x20, ...new Array<number>(32).fill(7)]).toString('base64url')}`
      const remote = 'p2p/12D3KooWGRUVh7ZPaRYNfDUgqEbbXQpAwpE2mhDwm8y4sZ5CFAyn'
      const info = (endpoint: ConnectedPoint, remoteAddress: string): ConnectionInfo => ({
        id: newConnectionId(), peerId: swarm.localPeerId, endpoint, remoteAddress: multiaddr(remoteAddress), transport: transportOf(endpoint.type === 'Dialer' ? endpoint.address : endpoint.localAddr), encryption: '/noise', multiplexer: '/webrtc', establishedAt: 0, streams: 0
      })
      const direct = `/ip4/127.0.0.1/udp/4001/webrtc-direct/certhash/${certhash}`
      const relayed = `/ip4/127.0.0.1/tcp/4002/ws/p2p/${swarm.localPeerId.toString()}`
      const connections = [
        info({ type: 'Dialer', address: multiaddr(`${direct}/${remote}`) }, `${direct}/${remote}`),
        info({ type: 'Listener', localAddr: multiaddr(direct), sendBackAddr: multiaddr('/ip4/127.0.0.1/udp/5000/webrtc-direct') }, '/ip4/127.0.0.1/udp/5000/webrtc-direct'),
        info({ type: 'Dialer', address: multiaddr(`${relayed}/p2p-circuit/webrtc/${remote}`) }, `${relayed}/p2p-circuit/webrtc/${remote}`),
        info({ type: 'Dialer', address: multiaddr(`${relayed}/p2p-circuit/${remote}`), limited: true }, `${relayed}/p2p-circuit/${remote}`)
      ]
      // The swarm as nodeView sees it, with these connections.
      const stub = new Proxy(swarm, { get: (target, key) => key === 'connections' ? () => connections : Reflect.get(target, key) }) as unknown as Swarm<AnyBehaviour>
      const shown = nodeView({ name: 'x', swarm: stub }).connections.map(c => [c.transport, c.limited])
      expect(shown).to.deep.equal([['webrtc-direct', false], ['webrtc-direct', false], ['webrtc', false], ['p2p-circuit', true]])
    } finally {
      await swarm.close()
    }
  })

  it('the page script parses, and close() ends open event streams', async () => {
    expect(() => new Function(PAGE_SCRIPT)).not.to.throw()
    const swarm = await newSwarm(create)
    const view = await serveView(swarm, { interval: 50 })
    const response = await fetch(`${view.url}events`)
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    await reader.read()
    await view.close()
    // The stream ends instead of hanging.
    for (;;) {
      const { done } = await reader.read()
      if (done) break
    }
    await swarm.close()
  })
})
