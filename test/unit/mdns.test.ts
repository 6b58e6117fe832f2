import { expect } from 'chai'
import * as FakeTimers from '@sinonjs/fake-timers'
import { multiaddr } from '@multiformats/multiaddr'
import dnsPacket from 'dns-packet'
import { generateKeypair, mdns, newConnectionId, newListenerId, peerIdOf } from '../../src/index.js'
import { DiscoveredPeers } from '../../src/protocols/mdns/peers.js'
import { MemoryMulticast } from '../../src/testing/index.js'
import type { Context, FromSwarm, ToSwarm } from '../../src/index.js'
import type { PeerId } from '@libp2p/interface'
import type { Answer } from 'dns-packet'

const SERVICE = '_p2p._udp.local'

async function newPeerId (): Promise<PeerId> {
  return peerIdOf(await generateKeypair())
}

function decode (bytes: Uint8Array): dnsPacket.Packet {
  return dnsPacket.decode(Buffer.from(bytes))
}

function encode (packet: dnsPacket.Packet): Uint8Array {
  return new Uint8Array(dnsPacket.encode(packet))
}

function parseResponse (bytes: Uint8Array): Extract<mdns.MdnsPacket, { type: 'Response' }> {
  const packet = mdns.parsePacket(bytes, SERVICE)
  if (packet.type !== 'Response') throw new Error(`expected a response, got ${packet.type}`)
  return packet
}

describe('mdns packets', () => {
  it('builds a PTR query that reads back as a query for the service', () => {
    const bytes = mdns.buildQuery(SERVICE, 4242)
    const raw = decode(bytes)
    expect(raw.type).to.equal('query')
    expect(raw.questions).to.deep.equal([{ name: SERVICE, type: 'PTR', class: 'IN' }])
    expect(mdns.parsePacket(bytes, SERVICE)).to.deep.equal({ type: 'Query', id: 4242, asksService: true, asksMeta: false })
    expect(mdns.parsePacket(bytes, '_other._udp.local')).to.deep.equal({ type: 'Unrelated' })
  })

  it('builds a response with no questions, PTR answer, TXT dnsaddr, SRV and A additionals, and reads it back', async () => {
    const peerId = await newPeerId()
    const addresses = [multiaddr('/ip4/192.168.1.7/tcp/4001'), multiaddr('/ip6/fe80::1/tcp/4001'), multiaddr('/ip4/192.168.1.7/tcp/4002/ws')]
    const packets = mdns.buildResponses({
      serviceName: SERVICE, peerName: 'a'.repeat(40), peerId, addresses, ttl: 360, hostAddress: { family: 4, address: '192.168.1.7' }
    })
    expect(packets).to.have.length(1)
    const raw = decode(packets[0])
    expect(raw.type).to.equal('response')
    expect(raw.flags! & dnsPacket.AUTHORITATIVE_ANSWER).to.not.equal(0)
    expect(raw.questions).to.deep.equal([])
    expect(raw.answers).to.deep.include({ name: SERVICE, type: 'PTR', class: 'IN', ttl: 360, flush: false, data: `${'a'.repeat(40)}.${SERVICE}` })
    const txts = raw.additionals!.filter(r => r.type === 'TXT')
    expect(txts.map(t => (t.data as Buffer[]).map(String))).to.deep.equal(addresses.map(a => [`dnsaddr=${a.toString()}/p2p/${peerId.toString()}`]))
    expect(raw.additionals!.find(r => r.type === 'SRV')).to.deep.include({ name: `${'a'.repeat(40)}.${SERVICE}` })
    expect(raw.additionals!.find(r => r.type === 'A')).to.deep.include({ name: `${'a'.repeat(40)}.local`, data: '192.168.1.7' })

    const parsed = parseResponse(packets[0])
    expect(parsed.invalidAddresses).to.equal(0)
    expect(parsed.peers).to.have.length(1)
    expect(parsed.peers[0].peerId.equals(peerId)).to.equal(true)
    expect(parsed.peers[0].ttl).to.equal(360)
    expect(parsed.peers[0].addresses.map(String)).to.deep.equal(addresses.map(String))
  })

  it('splits many addresses over packets that each fit the size limit and repeat the PTR; skips TXT strings over 255 bytes', async () => {
    const peerId = await newPeerId()
    const addresses = Array.from({ length: 40 }, (_, i) => multiaddr(`/ip4/10.0.0.${i + 1}/tcp/${4000 + i}`))
    const long = multiaddr(`/dns4/${'x'.repeat(60)}.${'y'.repeat(60)}.${'z'.repeat(60)}.example/tcp/1`)
    const packets = mdns.buildResponses({ serviceName: SERVICE, peerName: 'b'.repeat(63), peerId, addresses: [...addresses, long], ttl: 120 })
    expect(packets.length).to.be.greaterThan(1)
    const seen: string[] = []
    for (const packet of packets) {
      expect(packet.byteLength).to.be.at.most(mdns.MAX_SEND_SIZE)
      expect(decode(packet).answers!.filter(r => r.type === 'PTR')).to.have.length(1)
      seen.push(...parseResponse(packet).peers.flatMap(p => p.addresses.map(String)))
    }
    expect(seen).to.deep.equal(addresses.map(String))
    expect(mdns.buildResponses({ serviceName: SERVICE, peerName: 'b'.repeat(63), peerId, addresses: [], ttl: 120 })).to.deep.equal([])
  })

  it("reads js-libp2p's layout (TXT among the answers) and rust-libp2p's (bare-label PTR target, cache-flush TXT)", async () => {
    const peerId = await newPeerId()
    const txt = (name: string, flush = false): Answer => ({ name, type: 'TXT', class: 'IN', flush, ttl: 120, data: `dnsaddr=/ip4/10.1.1.1/tcp/9/p2p/${peerId.toString()}` })
    const js = encode({
      type: 'response',
      flags: dnsPacket.AUTHORITATIVE_ANSWER,
      answers: [{ name: SERVICE, type: 'PTR', class: 'IN', ttl: 120, data: `jsname.${SERVICE}` }, txt(`jsname.${SERVICE}`)]
    })
    const rust = encode({
      type: 'response',
      flags: dnsPacket.AUTHORITATIVE_ANSWER,
      answers: [{ name: SERVICE, type: 'PTR', class: 'IN', ttl: 360, data: 'RustName' }],
      additionals: [txt('rustname', true)]
    })
    for (const bytes of [js, rust]) {
      const [peer] = parseResponse(bytes).peers
      expect(peer.peerId.equals(peerId)).to.equal(true)
      expect(peer.addresses.map(String)).to.deep.equal(['/ip4/10.1.1.1/tcp/9'])
    }
  })

  it("reads go-libp2p's layout (one TXT record holding every dnsaddr) and ignores TXT records of other names", async () => {
    const peerId = await newPeerId()
    const other = await newPeerId()
    const bytes = encode({
      type: 'response',
      flags: dnsPacket.AUTHORITATIVE_ANSWER,
      answers: [{ name: `${SERVICE}.`, type: 'PTR', class: 'IN', ttl: 3200, data: `goname.${SERVICE}` }],
      additionals: [
        { name: `goname.${SERVICE}`, type: 'TXT', ttl: 3200, data: [`dnsaddr=/ip4/10.2.2.2/tcp/1/p2p/${peerId.toString()}`, `dnsaddr=/ip4/10.2.2.2/udp/1/quic-v1/p2p/${peerId.toString()}`, 'other=1'] },
        { name: 'unrelated.local', type: 'TXT', ttl: 3200, data: `dnsaddr=/ip4/10.3.3.3/tcp/1/p2p/${other.toString()}` },
        { name: 'goname.local', type: 'A', ttl: 120, data: '10.2.2.2' }
      ]
    })
    const { peers } = parseResponse(bytes)
    expect(peers).to.have.length(1)
    expect(peers[0].addresses.map(String)).to.deep.equal(['/ip4/10.2.2.2/tcp/1', '/ip4/10.2.2.2/udp/1/quic-v1'])
    expect(peers[0].ttl).to.equal(3200)
  })

  it('counts dnsaddr strings that do not parse or name no peer, and keeps the good ones', async () => {
    const peerId = await newPeerId()
    const bytes = encode({
      type: 'response',
      answers: [{ name: SERVICE, type: 'PTR', ttl: 120, data: `n.${SERVICE}` }],
      additionals: [{
        name: `n.${SERVICE}`,
        type: 'TXT',
        ttl: 120,
        data: ['dnsaddr=/ip4/999.1.1.1/tcp/1/p2p/' + peerId.toString(), 'dnsaddr=/ip4/10.0.0.1/tcp/1', 'dnsaddr=/ip4/10.0.0.1/tcp/1/p2p/notapeerid', 'dnsaddr=garbage',
          `dnsaddr=/ip4/10.0.0.2/tcp/2/p2p/${peerId.toString()}`]
      }]
    })
    const parsed = parseResponse(bytes)
    expect(parsed.invalidAddresses).to.equal(4)
    expect(parsed.peers.map(p => p.addresses.map(String))).to.deep.equal([['/ip4/10.0.0.2/tcp/2']])
  })

  it('rejects garbage, truncated, empty and oversized packets with MalformedPacketError', async () => {
    const good = mdns.buildResponses({ serviceName: SERVICE, peerName: 'c'.repeat(32), peerId: await newPeerId(), addresses: [multiaddr('/ip4/10.0.0.1/tcp/1')], ttl: 120 })[0]
    const bad = [
      new Uint8Array(0),
      new Uint8Array([1, 2, 3]),
      good.subarray(0, good.byteLength - 7),
      new Uint8Array(mdns.MAX_RECEIVE_SIZE + 1),
      crypto.getRandomValues(new Uint8Array(64)).fill(0xff, 4, 12)
    ]
    for (const bytes of bad) expect(() => mdns.parsePacket(bytes, SERVICE)).to.throw(mdns.MalformedPacketError)
  })

  it('reads a packet without questions as a response whatever its QR bit, and answers the DNS-SD meta-query', () => {
    const unflagged = encode({ type: 'query', answers: [{ name: SERVICE, type: 'PTR', ttl: 120, data: `q.${SERVICE}` }] })
    expect(mdns.parsePacket(unflagged, SERVICE).type).to.equal('Response')
    const meta = encode({ type: 'query', questions: [{ name: '_services._dns-sd._udp.local', type: 'PTR' }] })
    expect(mdns.parsePacket(meta, SERVICE)).to.include({ type: 'Query', asksService: false, asksMeta: true })
    const any = encode({ type: 'query', questions: [{ name: SERVICE.toUpperCase(), type: 'ANY' as 'PTR' }] })
    expect(mdns.parsePacket(any, SERVICE)).to.include({ asksService: true })
  })
})

describe('mdns discovered peers table', () => {
  it('expires addresses when their TTL runs out unless refreshed, removes them on a goodbye, and stays bounded', async () => {
    const [a, b, c] = await Promise.all([newPeerId(), newPeerId(), newPeerId()])
    const addr = (n: number) => multiaddr(`/ip4/10.0.0.${n}/tcp/1`)
    const table = new DiscoveredPeers(2, 2)
    expect(table.update({ peerId: a, addresses: [addr(1), addr(2), addr(3)], ttl: 10 }, 0).discovered.map(d => String(d.address)))
      .to.deep.equal([String(addr(1)), String(addr(2))])
    expect(table.update({ peerId: b, addresses: [addr(4)], ttl: 20 }, 0).discovered).to.have.length(1)
    expect(table.update({ peerId: c, addresses: [addr(5)], ttl: 20 }, 0).full).to.equal(true)
    expect(table.update({ peerId: a, addresses: [addr(1)], ttl: 10 }, 5_000).discovered).to.deep.equal([])
    expect(table.nextExpiry()).to.equal(10_000)

    expect(table.expire(9_999)).to.deep.equal([])
    expect(table.expire(10_000).map(d => String(d.address))).to.deep.equal([String(addr(2))])
    expect(table.addresses(a).map(String)).to.deep.equal([String(addr(1))])
    expect(table.expire(15_000).map(d => String(d.address))).to.deep.equal([String(addr(1))])
    expect(table.addresses(a)).to.deep.equal([])

    expect(table.update({ peerId: b, addresses: [addr(4)], ttl: 0 }, 16_000).expired.map(d => String(d.address))).to.deep.equal([String(addr(4))])
    expect(table.nextExpiry()).to.equal(undefined)
    expect(table.update({ peerId: c, addresses: [addr(5)], ttl: 20 }, 16_000).discovered).to.have.length(1)
  })
})

/** Collects what a behaviour asks of the swarm, without a swarm. */
function actions (behaviour: mdns.Behaviour): Array<ToSwarm<mdns.Event, never>> {
  const out: Array<ToSwarm<mdns.Event, never>> = []
  const cx: Context = { waker: { wake: () => {} } }
  for (let i = 0; i < 10_000; i++) {
    const action = behaviour.poll(cx)
    if (action === undefined) return out
    out.push(action)
  }
  throw new Error('behaviour never ran out of actions')
}

function events (list: Array<ToSwarm<mdns.Event, never>>): mdns.Event[] {
  return list.flatMap(a => a.type === 'GenerateEvent' ? [a.event] : [])
}

function listenAddr (address: string): FromSwarm {
  return { type: 'NewListenAddr', listenerId: newListenerId(), address: multiaddr(address) }
}

function queriesIn (net: MemoryMulticast, from = 0): number[] {
  return net.sent.slice(from).flatMap(({ packet }) => { const p = decode(packet); return p.type === 'query' ? [p.id ?? 0] : [] })
}

describe('mdns behaviour (simulated network, fake time)', () => {
  let clock: ReturnType<typeof FakeTimers.install>
  const opened: mdns.Behaviour[] = []
  beforeEach(() => { clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 1_000_000 }) })
  afterEach(async () => {
    await Promise.all(opened.splice(0).map(async b => { await b.close() }))
    clock.uninstall()
  })

  async function behaviour (net: MemoryMulticast, options: Partial<mdns.Config> = {}): Promise<{ b: mdns.Behaviour, peerId: PeerId }> {
    const peerId = await newPeerId()
    const b = new mdns.Behaviour(peerId, { interface: '127.0.0.1', socketFactory: net.socketFactory, ...options })
    opened.push(b)
    return { b, peerId }
  }

  it('discovers a peer once both listen, offers its addresses for dials, and never discovers itself', async () => {
    const net = new MemoryMulticast()
    const a = await behaviour(net)
    const b = await behaviour(net)
    a.b.onSwarmEvent(listenAddr('/memory/1'))
    b.b.onSwarmEvent(listenAddr('/memory/2'))
    await clock.tickAsync(2_000)

    const fromA = actions(a.b)
    expect(events(fromA)).to.have.length(1)
    const [discovered] = events(fromA)
    if (discovered.type !== 'Discovered') throw new Error(`expected Discovered, got ${discovered.type}`)
    expect(discovered.peers.map(p => [p.peerId.toString(), p.address.toString()])).to.deep.equal([[b.peerId.toString(), '/memory/2']])
    expect(fromA.filter(x => x.type === 'NewExternalAddrOfPeer').map(x => x.type === 'NewExternalAddrOfPeer' && x.address.toString())).to.deep.equal(['/memory/2'])
    expect(a.b.handlePendingOutboundConnection({ connectionId: newConnectionId(), peerId: b.peerId, addresses: [], effectiveRole: 'Dialer' }).map(String)).to.deep.equal(['/memory/2'])
    expect(a.b.discoveredNodes().map(n => n.peerId.toString())).to.deep.equal([b.peerId.toString()])
    expect(events(actions(b.b)).map(e => e.type)).to.deep.equal(['Discovered'])

    await clock.tickAsync(20 * 60_000)
    expect(events(actions(a.b))).to.deep.equal([])
    expect(a.b.discoveredNodes()).to.have.length(1)
  })

  it('probes at once, then after 0.5 s doubling up to the query interval; an answer ends the probing', async () => {
    const alone = new MemoryMulticast()
    await behaviour(alone, { queryInterval: 10_000 })
    await clock.tickAsync(0)
    expect(queriesIn(alone)).to.have.length(1)
    const times: number[] = [0]
    const start = Date.now()
    for (let t = 0; t <= 40_000; t += 50) {
      const before = queriesIn(alone).length
      await clock.tickAsync(50)
      if (queriesIn(alone).length > before) times.push(Date.now() - start)
    }
    const gaps = times.slice(1).map((t, i) => t - times[i])
    const expected = [500, 1000, 2000, 4000, 8000, 10_000, 10_000]
    expect(gaps.length).to.be.at.least(expected.length)
    for (const [i, want] of expected.entries()) expect(gaps[i]).to.be.within(want, want + 150)

    // Two peers that hear each other at once stop probing: no query for the next 9 s.
    const pair = new MemoryMulticast()
    const b = await behaviour(pair, { queryInterval: 10_000 })
    const c = await behaviour(pair, { queryInterval: 10_000 })
    b.b.onSwarmEvent(listenAddr('/memory/7'))
    c.b.onSwarmEvent(listenAddr('/memory/8'))
    await clock.tickAsync(100)
    expect(events(actions(b.b)).map(e => e.type)).to.deep.equal(['Discovered'])
    const settled = pair.sent.length
    await clock.tickAsync(9_000)
    expect(queriesIn(pair, settled)).to.deep.equal([])
  })

  it('expires a peer that stops answering after its TTL, and at once when it says goodbye; closes its sockets', async () => {
    const net = new MemoryMulticast()
    const a = await behaviour(net, { queryInterval: 60_000 })
    const unplug: Array<() => Promise<void>> = []
    const b = await behaviour(net, {
      ttl: 10_000,
      queryInterval: 60_000,
      socketFactory: async (options) => {
        const socket = await net.socketFactory(options)
        unplug.push(async () => { await socket.close() })
        return socket
      }
    })
    const c = await behaviour(net, { ttl: 600_000 })
    b.b.onSwarmEvent(listenAddr('/memory/2'))
    c.b.onSwarmEvent(listenAddr('/memory/3'))
    await clock.tickAsync(1_000)
    expect(events(actions(a.b)).flatMap(e => e.type === 'Discovered' ? e.peers.map(p => p.address.toString()) : []).sort())
      .to.deep.equal(['/memory/2', '/memory/3'])

    // b vanishes without a word (its sockets are cut): a forgets it after b's 10 s TTL, not before.
    expect(net.openSockets).to.equal(3)
    await Promise.all(unplug.map(async close => { await close() }))
    expect(net.openSockets).to.equal(2)
    await clock.tickAsync(8_500)
    expect(events(actions(a.b))).to.deep.equal([])
    await clock.tickAsync(2_000)
    const expired = events(actions(a.b))
    expect(expired.map(e => e.type === 'Expired' && e.peers.map(p => p.address.toString()))).to.deep.equal([['/memory/2']])

    // c says goodbye on close: a forgets it at once.
    await c.b.close()
    await clock.tickAsync(10)
    expect(events(actions(a.b)).map(e => e.type === 'Expired' && e.peers.map(p => p.address.toString()))).to.deep.equal([['/memory/3']])
    expect(a.b.discoveredNodes()).to.deep.equal([])
    await a.b.close()
    await b.b.close()
    expect(net.openSockets).to.equal(0)
    expect(clock.countTimers()).to.equal(0)
  })

  it('answers a flood of queries at most once a second per interface, and answers the last of them', async () => {
    const net = new MemoryMulticast()
    const a = await behaviour(net)
    a.b.onSwarmEvent(listenAddr('/memory/1'))
    await clock.tickAsync(5_000)
    const start = net.sent.length
    for (let i = 0; i < 100; i++) {
      net.deliver(mdns.buildQuery(SERVICE, 7))
      await clock.tickAsync(10)
    }
    const responses = () => net.sent.slice(start).filter(s => decode(s.packet).type === 'response').length
    expect(responses()).to.be.within(1, 2)
    await clock.tickAsync(1_000)
    expect(responses()).to.be.within(2, 3)
  })

  it('ignores garbage, oversized packets, bad addresses and records claiming its own peer id, and still discovers honest peers', async () => {
    const net = new MemoryMulticast()
    const a = await behaviour(net)
    const honest = await newPeerId()
    const forged = mdns.buildResponses({ serviceName: SERVICE, peerName: 'e'.repeat(40), peerId: a.peerId, addresses: [multiaddr('/ip4/10.9.9.9/tcp/1')], ttl: 120 })
    for (let i = 0; i < 1_000; i++) {
      net.deliver(crypto.getRandomValues(new Uint8Array(1 + (i % 300))))
    }
    net.deliver(new Uint8Array(20_000))
    net.deliver(forged[0])
    net.deliver(encode({ type: 'response', answers: [{ name: SERVICE, type: 'PTR', ttl: 120, data: `x.${SERVICE}` }, { name: `x.${SERVICE}`, type: 'TXT', ttl: 120, data: 'dnsaddr=/nope' }] }))
    await clock.tickAsync(10)
    expect(actions(a.b)).to.deep.equal([])
    for (const packet of mdns.buildResponses({ serviceName: SERVICE, peerName: 'f'.repeat(40), peerId: honest, addresses: [multiaddr('/ip4/10.0.0.1/tcp/1')], ttl: 120 })) net.deliver(packet)
    await clock.tickAsync(10)
    expect(events(actions(a.b)).map(e => e.type)).to.deep.equal(['Discovered'])
  })

  it('reports a socket that cannot open, or a missing interface, once, and keeps trying', async () => {
    let attempts = 0
    // Fails at once, without a promise: still reported as an event, never thrown from a timer.
    const failing = (({ iface }) => {
      attempts++
      throw new mdns.MulticastSocketError(iface, 'EADDRINUSE')
    }) as mdns.MulticastSocketFactory
    const peerId = await newPeerId()
    const b = new mdns.Behaviour(peerId, { interface: '127.0.0.1', socketFactory: failing, queryInterval: 2_000 })
    opened.push(b)
    await clock.tickAsync(10_000)
    const errors = events(actions(b))
    expect(errors.map(e => e.type === 'Error' && e.error.code)).to.deep.equal(['ERR_MDNS_SOCKET'])
    expect(attempts).to.be.greaterThan(3)

    const missing = new mdns.Behaviour(peerId, { interface: 'no-such-if0', socketFactory: new MemoryMulticast().socketFactory, queryInterval: 2_000 })
    opened.push(missing)
    await clock.tickAsync(10_000)
    expect(events(actions(missing)).map(e => e.type === 'Error' && e.error.code)).to.deep.equal(['ERR_MDNS_INTERFACE'])
  })

  it('stops recording announcements while the application does not take its events, and resumes when it does', async () => {
    const net = new MemoryMulticast()
    const a = await behaviour(net, { maxPeers: 100_000 })
    const announce = async (count: number) => {
      for (let i = 0; i < count; i++) {
        const peerId = await newPeerId()
        for (const packet of mdns.buildResponses({ serviceName: SERVICE, peerName: 'g'.repeat(40), peerId, addresses: [multiaddr('/ip4/10.0.0.1/tcp/1')], ttl: 120 })) net.deliver(packet)
      }
      await clock.tickAsync(0)
    }
    await announce(2_500)
    expect(a.b.discoveredNodes().length).to.be.below(2_500)
    const pending = actions(a.b)
    expect(pending.length).to.be.within(4_096, 4_097)
    await announce(1)
    expect(events(actions(a.b)).map(e => e.type)).to.deep.equal(['Discovered'])
  })

  it('does not spin on a record whose TTL is longer than a timer can wait', async () => {
    const net = new MemoryMulticast()
    const a = await behaviour(net)
    const forever = mdns.buildResponses({ serviceName: SERVICE, peerName: 'h'.repeat(40), peerId: await newPeerId(), addresses: [multiaddr('/ip4/10.0.0.1/tcp/1')], ttl: 0xffffffff })
    net.deliver(forever[0])
    await clock.tickAsync(0)
    expect(a.b.discoveredNodes()).to.have.length(1)
    const end = Date.now() + 1_000
    let fired = 0
    while (fired < 10_000 && clock.next() <= end) fired++
    expect(fired).to.be.below(10)
  })

  it('with respondToQueries off, discovers others but never announces itself', async () => {
    const net = new MemoryMulticast()
    const passive = await behaviour(net, { respondToQueries: false })
    const active = await behaviour(net)
    passive.b.onSwarmEvent(listenAddr('/memory/1'))
    active.b.onSwarmEvent(listenAddr('/memory/2'))
    net.deliver(mdns.buildQuery(SERVICE, 9))
    await clock.tickAsync(5_000)
    expect(events(actions(passive.b)).map(e => e.type)).to.deep.equal(['Discovered'])
    expect(events(actions(active.b))).to.deep.equal([])
    const responders = net.sent.filter(s => decode(s.packet).type === 'response').map(s => parseResponse(s.packet).peers[0].peerId.toString())
    expect(new Set(responders)).to.deep.equal(new Set([active.peerId.toString()]))
  })

  it('rejects invalid options with a ConfigError naming the field', async () => {
    const peerId = await newPeerId()
    const field = (options: Partial<mdns.Config>) => {
      try {
        void new mdns.Behaviour(peerId, { socketFactory: new MemoryMulticast().socketFactory, ...options })
      } catch (err) {
        return (err as { field?: string }).field
      }
      return undefined
    }
    expect(field({ ttl: 0 })).to.equal('ttl')
    expect(field({ ipv4: false, ipv6: false })).to.equal('ipv4')
    expect(field({ peerName: 'UPPER' })).to.equal('peerName')
    expect(field({ serviceName: 'p2p.local' })).to.equal('serviceName')
    expect(field({ port: 70_000 })).to.equal('port')
  })
})
