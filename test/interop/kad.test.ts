/**
 * Kademlia with js-libp2p's `@libp2p/kad-dht`: a mixed network of 8 of ours and 8 js nodes on
 * 127.0.0.1, dialing both ways. Records put by each side are got by the other, providers
 * found both ways, closest peers mix both, a peer's addresses are found; and ours as a client
 * against js servers only.
 *
 * The js nodes use the settings of the reference notes: server mode (`clientMode: false`), the
 * passthrough peer-info mapper (js drops loopback addresses otherwise), a validator and a
 * selector for the test namespace `/t/` (js refuses records of namespaces it cannot validate),
 * identify and ping (js pings every contact before it enters its table). Ours run identify and
 * ping too.
 */
import '../../src/compat.js'
import { setMaxListeners } from 'node:events'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify as jsIdentify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { ping as jsPing } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { expect } from 'chai'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { SwarmBuilder, combine, identify, kad, peerIdOf, ping } from '../../src/index.js'
import type { Multiaddr, PeerId } from '../../src/index.js'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array): string => new TextDecoder().decode(b)

async function jsKadNode () {
  return createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: jsIdentify(),
      ping: jsPing(),
      dht: kadDHT({
        clientMode: false,
        peerInfoMapper: passthroughMapper,
        validators: { t: async () => {} },
        selectors: { t: () => 0 }
      })
    },
    connectionManager: { allow: ['/ip4/127.0.0.0/ipcidr/8'] }
  })
}

type JsKad = Awaited<ReturnType<typeof jsKadNode>>

async function ourNode (mode: kad.Mode = 'server') {
  return SwarmBuilder.withNewIdentity()
    .withTcp()
    .withBehaviour(key => combine({
      kad: new kad.Behaviour(peerIdOf(key), { mode, periodicBootstrapInterval: null }),
      identify: new identify.Behaviour(key.publicKey),
      ping: new ping.Behaviour()
    }))
    .withSwarmConfig({ idleConnectionTimeout: 60_000 })
    .build()
}

type Ours = Awaited<ReturnType<typeof ourNode>>
type Progress = Extract<kad.Event, { type: 'OutboundQueryProgressed' }>

/** Drives our swarms in the background, filing each query's events. */
class Driver {
  readonly progress = new Map<string, Progress[]>()
  readonly listen = new Map<string, Multiaddr>()
  private readonly controller = new AbortController()
  private readonly loops: Array<Promise<void>> = []

  constructor () {
    setMaxListeners(100, this.controller.signal)
  }

  add (swarm: Ours): void {
    this.loops.push((async () => {
      for (;;) {
        let event
        try {
          event = await swarm.selectNextSome({ signal: this.controller.signal })
        } catch {
          return
        }
        if (event.type === 'NewListenAddr') this.listen.set(swarm.localPeerId.toString(), event.address)
        if (event.type !== 'Behaviour' || event.event.behaviour !== 'kad') continue
        const e = event.event.event
        if (e.type !== 'OutboundQueryProgressed') continue
        const key = `${swarm.localPeerId.toString()}/${e.id}`
        this.progress.set(key, [...(this.progress.get(key) ?? []), e])
      }
    })())
  }

  async until (what: string, condition: () => boolean | Promise<boolean>, timeout: number): Promise<void> {
    const deadline = performance.now() + timeout
    while (!(await condition())) {
      if (performance.now() > deadline) throw new Error(`${what}: not within ${timeout} ms`)
      await new Promise(resolve => setTimeout(resolve, 100))
    }
  }

  async outcome (swarm: Ours, id: kad.QueryId, timeout = 60_000): Promise<Progress[]> {
    const key = `${swarm.localPeerId.toString()}/${id}`
    await this.until(`query ${id}`, () => this.progress.get(key)?.some(e => e.step.last) === true, timeout)
    return this.progress.get(key) ?? []
  }

  async stop (): Promise<void> {
    this.controller.abort()
    await Promise.all(this.loops)
  }
}

/** js's `get`: the value found, or undefined. */
async function jsGet (node: JsKad, key: Uint8Array): Promise<string | undefined> {
  try {
    for await (const event of node.services.dht.get(key, { signal: AbortSignal.timeout(30_000) })) {
      if (event.name === 'VALUE') return text(event.value)
    }
  } catch {}
  return undefined
}

async function jsTable (node: JsKad): Promise<string[]> {
  const table = (node.services.dht as unknown as { routingTable: { kb: { toIterable: () => Iterable<{ peerId: PeerId }> } } }).routingTable
  return [...table.kb.toIterable()].map(c => c.peerId.toString())
}

describe('interop with js-libp2p: Kademlia (@libp2p/kad-dht)', function () {
  this.timeout(300_000)
  let driver: Driver
  let ours: Ours[]
  let js: JsKad[]

  before(async () => {
    driver = new Driver()
    ours = await Promise.all(Array.from({ length: 8 }, async () => await ourNode()))
    js = await Promise.all(Array.from({ length: 8 }, jsKadNode))
    for (const node of ours) {
      driver.add(node)
      node.listenOn('/ip4/127.0.0.1/tcp/0')
    }
    await driver.until('listening', () => driver.listen.size === ours.length, 10_000)
    // Both ways: each of ours dials a js node and is dialed by another.
    for (const [i, node] of ours.entries()) {
      const target = js[i]
      node.dial(target.getMultiaddrs()[0])
      await js[(i + 3) % js.length].dial(driver.listen.get(node.localPeerId.toString()) as Multiaddr)
    }
    // And the js nodes among themselves, in a ring.
    for (const [i, node] of js.entries()) await node.dial(js[(i + 1) % js.length].getMultiaddrs()[0])
    await driver.until('our tables', () => ours.every(n => [...n.behaviour.kad.kbuckets()].length > 0), 30_000)
    const runs = ours.map(n => ({ n, id: n.behaviour.kad.bootstrap() }))
    for (const { n, id } of runs) await driver.outcome(n, id)
    await driver.until('js tables', async () => (await Promise.all(js.map(jsTable))).every(t => t.length >= 4), 60_000)
  })

  after(async () => {
    await driver?.stop()
    await Promise.all([...(ours ?? []).map(async n => { await n.close() }), ...(js ?? []).map(async n => { await n.stop() })])
  })

  it('routing tables of both sides hold peers of the other side', async () => {
    const jsIds = new Set(js.map(n => n.peerId.toString()))
    const ourIds = new Set(ours.map(n => n.localPeerId.toString()))
    for (const node of ours) {
      const table = [...node.behaviour.kad.kbuckets()].flatMap(b => b.entries.map(e => e.peerId.toString()))
      expect(table.some(p => jsIds.has(p)), 'one of ours knows no js node').to.equal(true)
    }
    for (const node of js) expect((await jsTable(node)).some(p => ourIds.has(p)), 'a js node knows none of ours').to.equal(true)
  })

  it('records put by ours are got by js, and records put by js are got by ours', async () => {
    const put = ours[0].behaviour.kad.putRecord({ key: bytes('/t/from-ours'), value: bytes('hello from peerswarm') }, 'majority')
    const [putEnd] = (await driver.outcome(ours[0], put)).slice(-1)
    expect(putEnd.result.ok, String(putEnd.result.error)).to.not.equal(undefined)
    for (const node of js) expect(await jsGet(node, bytes('/t/from-ours'))).to.equal('hello from peerswarm')

    for await (const event of js[0].services.dht.put(bytes('/t/from-js'), bytes('hello from js'), { signal: AbortSignal.timeout(30_000) })) void event
    for (const node of ours) {
      const id = node.behaviour.kad.getRecord(bytes('/t/from-js'))
      const found = (await driver.outcome(node, id)).flatMap(e => e.result.type === 'GetRecord' && e.result.ok?.type === 'FoundRecord' ? [e.result.ok.record] : [])
      expect(found.map(r => text(r.record.value))).to.include('hello from js')
      expect(found.some(r => r.peer !== undefined && js.some(j => j.peerId.equals(r.peer)))).to.equal(true)
    }
  })

  it('providers announced by each side are found by the other, with addresses', async () => {
    const ourContent = CID.createV1(0x55, await sha256.digest(bytes('content of ours')))
    const provide = ours[1].behaviour.kad.startProviding(ourContent.multihash.bytes)
    const [provided] = (await driver.outcome(ours[1], provide)).slice(-1)
    expect(provided.result.ok, String(provided.result.error)).to.not.equal(undefined)
    for (const node of js.slice(0, 4)) {
      let found: { id: PeerId, multiaddrs: Multiaddr[] } | undefined
      for await (const event of node.services.dht.findProviders(ourContent, { signal: AbortSignal.timeout(30_000) })) {
        if (event.name === 'PROVIDER') found = event.providers.find(p => p.id.equals(ours[1].localPeerId)) ?? found
        if (found !== undefined) break
      }
      expect(found?.multiaddrs.length ?? 0, 'js found no address of our provider').to.be.at.least(1)
    }

    const jsContent = CID.createV1(0x55, await sha256.digest(bytes('content of js')))
    for await (const event of js[2].services.dht.provide(jsContent, { signal: AbortSignal.timeout(30_000) })) void event
    for (const node of ours.slice(0, 4)) {
      const id = node.behaviour.kad.getProviders(jsContent.multihash.bytes)
      const providers = (await driver.outcome(node, id)).flatMap(e => e.result.type === 'GetProviders' && e.result.ok?.type === 'FoundProviders' ? e.result.ok.providers : [])
      const provider = providers.find(p => p.peerId.equals(js[2].peerId))
      expect(provider?.addresses.length ?? 0, 'ours found no address of the js provider').to.be.at.least(1)
    }
  })

  it('closest peers mix both sides; each side finds the other\'s peers and their addresses', async () => {
    const all = [...ours.map(n => n.localPeerId.toString()), ...js.map(n => n.peerId.toString())]
    const id = ours[2].behaviour.kad.getClosestPeers(bytes('a random key'))
    const [end] = (await driver.outcome(ours[2], id)).slice(-1)
    if (end.result.type !== 'GetClosestPeers' || end.result.ok === undefined) throw new Error(String(end.result.error))
    const found = end.result.ok.peers.map(p => p.peerId.toString())
    expect(found.length).to.equal(all.length - 1)
    expect(found.filter(p => js.some(j => j.peerId.toString() === p))).to.have.length(js.length)

    // Ours finds a js peer's addresses, and js finds ours (without its cache).
    const target = js[5].peerId
    const lookup = ours[3].behaviour.kad.getClosestPeers(target)
    const [done] = (await driver.outcome(ours[3], lookup)).slice(-1)
    const info = done.result.type === 'GetClosestPeers' ? done.result.ok?.peers.find(p => p.peerId.equals(target)) : undefined
    expect(info?.addresses.map(String)).to.include(js[5].getMultiaddrs()[0].decapsulateCode(421).toString())
    let ourAddresses: string[] = []
    for await (const event of js[6].services.dht.findPeer(ours[4].localPeerId, { useCache: false, signal: AbortSignal.timeout(30_000) })) {
      if (event.name === 'FINAL_PEER' && event.peer.id.equals(ours[4].localPeerId)) ourAddresses = event.peer.multiaddrs.map(String)
    }
    expect(ourAddresses).to.include(driver.listen.get(ours[4].localPeerId.toString())?.toString())
  })

  it('ours as a client against js servers: queries work, and no js table takes it', async () => {
    const client = await ourNode('client')
    driver.add(client)
    try {
      client.dial(js[7].getMultiaddrs()[0])
      await driver.until('client table', () => [...client.behaviour.kad.kbuckets()].length > 0, 20_000)
      const id = client.behaviour.kad.getRecord(bytes('/t/from-js'))
      const found = (await driver.outcome(client, id)).flatMap(e => e.result.type === 'GetRecord' && e.result.ok?.type === 'FoundRecord' ? [text(e.result.ok.record.record.value)] : [])
      expect(found).to.include('hello from js')
      const put = client.behaviour.kad.putRecord({ key: bytes('/t/from-client'), value: bytes('client value') }, 'one')
      const [putEnd] = (await driver.outcome(client, put)).slice(-1)
      expect(putEnd.result.ok, String(putEnd.result.error)).to.not.equal(undefined)
      expect(await jsGet(js[0], bytes('/t/from-client'))).to.equal('client value')
      for (const node of js) expect(await jsTable(node)).to.not.include(client.localPeerId.toString())
    } finally {
      await client.close()
    }
  })
})
