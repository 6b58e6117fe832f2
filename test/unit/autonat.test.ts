/**
 * AutoNAT v2 without sockets: the messages, the address policy, the configs, the client's and
 * the server's state machines driven directly, both handlers over in-memory stream pairs
 * (the dial-data guard, the nonce check), every timeout of both on a fake clock, and whole
 * probes between swarms over the memory transport (an address confirmed, an unreachable one
 * not).
 */
import FakeTimers from '@sinonjs/fake-timers'
import { streamPair } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'
import {
  ConfigError, autonat, combine, generateKeypair, identify, inIpv4Range, isGlobalAddress, newConnectionId, peerIdOf
} from '../../src/index.js'
import { readFrame, writeFrame } from '../../src/behaviour/framing.js'
import { listen, newSwarm, waitFor } from '../../src/testing/index.js'
import type { ConnectionId, FromSwarm, Multiaddr, PeerId, Swarm, SwarmEvent } from '../../src/index.js'

const cx = { waker: { wake () {} } }
const v2 = autonat.v2
const frame = { maxSize: v2.MAX_MESSAGE_SIZE }

async function newPeerId (): Promise<PeerId> {
  return peerIdOf(await generateKeypair())
}

function drain<A> (behaviour: { poll: (c: typeof cx) => A | undefined }): A[] {
  const actions: A[] = []
  for (let action = behaviour.poll(cx); action !== undefined; action = behaviour.poll(cx)) actions.push(action)
  return actions
}

async function until (condition: () => boolean, ms = 2_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached')
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

const TEST_NET = (a: Multiaddr): boolean => isGlobalAddress(a) || inIpv4Range(a, '198.18.0.0/15')

describe('AutoNAT v2', () => {
  describe('messages', () => {
    it('encode and decode every message, 64-bit nonces intact', () => {
      const addrs = [multiaddr('/ip4/198.18.0.1/tcp/4001'), multiaddr('/ip6/2001:4860::1/tcp/1')]
      const messages: autonat.v2.Message[] = [
        { type: 'DialRequest', addrs, nonce: 0xffff_ffff_ffff_fffen },
        { type: 'DialResponse', status: 'OK', addrIdx: 1, dialStatus: 'E_DIAL_BACK_ERROR' },
        { type: 'DialResponse', status: 'E_INTERNAL_ERROR', addrIdx: 0, dialStatus: 'UNUSED' },
        { type: 'DialDataRequest', addrIdx: 0, numBytes: 75_000 },
        { type: 'DialDataResponse', data: new Uint8Array([1, 2, 3]) }
      ]
      for (const message of messages) {
        const decoded = v2.decodeMessage(v2.encodeMessage(message))
        expect(JSON.stringify(decoded, (_k, v) => typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? [...v] : v))
          .to.equal(JSON.stringify(message, (_k, v) => typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? [...v] : v))
      }
      expect(v2.decodeDialBack(v2.encodeDialBack(2n ** 63n + 5n))).to.equal(2n ** 63n + 5n)
      expect(v2.decodeDialBackResponse(v2.encodeDialBackResponse())).to.equal('OK')
    })

    it('keep the index of an unparsable address and refuse malformed input with a typed error', () => {
      // DialRequest with one garbage address then one good one.
      const good = multiaddr('/ip4/198.18.0.1/tcp/1').bytes
      const inner = [0x0a, 2, 0xff, 0xff, 0x0a, good.length, ...good, 0x11, 1, 0, 0, 0, 0, 0, 0, 0]
      const decoded = v2.decodeMessage(Uint8Array.from([0x0a, inner.length, ...inner]))
      if (decoded.type !== 'DialRequest') throw new Error('wrong type')
      expect(decoded.addrs[0]).to.equal(undefined)
      expect(decoded.addrs[1]?.toString()).to.equal('/ip4/198.18.0.1/tcp/1')
      expect(decoded.nonce).to.equal(1n)
      const bad = [
        new Uint8Array(0), // no body
        Uint8Array.from([0x0a, 5, 1]), // truncated
        Uint8Array.from([0x12, 2, 0x08, 7]), // unknown response status 7
        Uint8Array.from([0x08, 1]), // body field with a varint wire type
        Uint8Array.from([0x0b]) // wire type 3
      ]
      for (const bytes of bad) expect(() => v2.decodeMessage(bytes)).to.throw(v2.MalformedMessageError)
      expect(() => v2.decodeDialBackResponse(Uint8Array.from([0x08, 1]))).to.throw(v2.MalformedMessageError)
    })
  })

  describe('the address policy', () => {
    it('counts private and special ranges as not global, and a test range in by predicate', () => {
      const notGlobal = ['/ip4/10.0.1.2/tcp/1', '/ip4/127.0.0.1/tcp/1', '/ip4/192.168.1.1/tcp/1', '/ip4/100.64.0.1/tcp/1', '/ip4/198.18.0.10/tcp/1',
        '/ip4/169.254.1.1/tcp/1', '/ip6/::1/tcp/1', '/ip6/fe80::1/tcp/1', '/ip6/fd00::1/tcp/1', '/ip6/2001:db8::1/tcp/1', '/ip6/::ffff:10.0.0.1/tcp/1',
        '/dns4/example.com/tcp/1', '/memory/1', '/ip4/8.8.8.8/tcp/1/p2p-circuit']
      for (const a of notGlobal) expect(isGlobalAddress(multiaddr(a)), a).to.equal(false)
      for (const a of ['/ip4/8.8.8.8/tcp/1', '/ip6/2606:4700::1111/tcp/443', '/ip6/::ffff:8.8.8.8/tcp/1']) expect(isGlobalAddress(multiaddr(a)), a).to.equal(true)
      expect(TEST_NET(multiaddr('/ip4/198.18.0.10/tcp/1'))).to.equal(true)
      expect(TEST_NET(multiaddr('/ip4/198.51.100.10/tcp/1'))).to.equal(false)
      expect(TEST_NET(multiaddr('/ip4/10.0.1.2/tcp/1'))).to.equal(false)
    })
  })

  describe('configs', () => {
    it('refuse invalid options naming the field', () => {
      expect(() => new v2.client.Behaviour({ maxCandidates: 0 })).to.throw(ConfigError, 'maxCandidates')
      expect(() => new v2.client.Behaviour({ probeInterval: -1 })).to.throw(ConfigError, 'probeInterval')
      expect(() => new v2.server.Behaviour({ dialDataMin: 10, dialDataMax: 5 })).to.throw(ConfigError, 'dialDataMax')
      expect(() => new v2.server.Behaviour({ isGlobal: 5 as never })).to.throw(ConfigError, 'isGlobal')
      expect(new v2.server.Behaviour().config).to.deep.include({ dialDataMin: 30_000, dialDataMax: 100_000 })
    })
  })

  describe('the client state machine', () => {
    function candidate (address: string): FromSwarm {
      return { type: 'NewExternalAddrCandidate', address: multiaddr(address) }
    }

    async function clientWithServers (n: number, options: Partial<autonat.v2.client.Config> = {}) {
      const client = new v2.client.Behaviour({ isGlobal: TEST_NET, ...options })
      const servers: Array<{ peerId: PeerId, connectionId: ConnectionId }> = []
      for (let i = 0; i < n; i++) {
        const server = { peerId: await newPeerId(), connectionId: newConnectionId() }
        servers.push(server)
        client.onConnectionHandlerEvent(server.peerId, server.connectionId, { type: 'ServerSupport', supported: true })
      }
      return { client, servers }
    }

    function probeOf (actions: Array<ReturnType<autonat.v2.client.Behaviour['poll']>>) {
      const run = actions.find(a => a?.type === 'NotifyHandler')
      if (run?.type !== 'NotifyHandler') throw new Error(`no probe in ${actions.map(a => a?.type).join(', ')}`)
      return { connectionId: run.handler as ConnectionId, peerId: run.peerId, probe: run.event.probe }
    }

    it('sends only global candidates, confirms one whose dial-back arrived with our nonce', async () => {
      const { client, servers } = await clientWithServers(1)
      client.onSwarmEvent(candidate('/ip4/10.0.1.2/tcp/5001'))
      expect(drain(client)).to.deep.equal([])
      client.onSwarmEvent(candidate('/ip4/198.18.0.1/tcp/5001'))
      const { probe, peerId, connectionId } = probeOf(drain(client))
      expect(peerId.equals(servers[0].peerId)).to.equal(true)
      expect(probe.addrs.map(String)).to.deep.equal(['/ip4/198.18.0.1/tcp/5001'])

      // The dial-back arrives on a new connection's handler, with our nonce.
      const handler = client.handleEstablishedInboundConnection({ connectionId: newConnectionId(), peerId, localAddr: multiaddr('/ip4/198.18.0.1/tcp/5001'), remoteAddr: multiaddr('/ip4/198.18.0.5/tcp/40000') })
      const [ours, theirs] = await streamPair()
      handler.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: ours, protocol: v2.DIAL_BACK_PROTOCOL, info: undefined })
      await writeFrame(theirs, v2.encodeDialBack(probe.nonce), frame)
      expect(v2.decodeDialBackResponse(await readFrame(theirs, frame))).to.equal('OK')

      client.onConnectionHandlerEvent(peerId, connectionId, { type: 'ProbeAnswered', probeId: probe.id, status: 'OK', addrIdx: 0, dialStatus: 'OK', bytesSent: 0 })
      const actions = drain(client)
      expect(actions.map(a => a?.type)).to.deep.equal(['ExternalAddrConfirmed', 'GenerateEvent'])
      const event = actions[1]
      if (event?.type !== 'GenerateEvent') throw new Error('unreachable')
      expect(event.event.result).to.deep.equal({ ok: true })
      expect(event.event.testedAddr.toString()).to.equal('/ip4/198.18.0.1/tcp/5001')
      expect(client.pendingCandidates).to.deep.equal([])
      client.close()
    })

    it('refuses a dial-back with a nonce it did not issue, and does not trust OK without one', async () => {
      const { client } = await clientWithServers(1)
      client.onSwarmEvent(candidate('/ip4/198.18.0.1/tcp/5001'))
      const { probe, peerId, connectionId } = probeOf(drain(client))
      const handler = client.handleEstablishedInboundConnection({ connectionId: newConnectionId(), peerId, localAddr: multiaddr('/memory/1'), remoteAddr: multiaddr('/memory/2') })
      const [ours, theirs] = await streamPair()
      handler.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: ours, protocol: v2.DIAL_BACK_PROTOCOL, info: undefined })
      await writeFrame(theirs, v2.encodeDialBack(probe.nonce + 1n), frame)
      let failed = false
      await readFrame(theirs, frame).catch(() => { failed = true })
      expect(failed).to.equal(true)
      client.onConnectionHandlerEvent(peerId, connectionId, { type: 'ProbeAnswered', probeId: probe.id, status: 'OK', addrIdx: 0, dialStatus: 'OK', bytesSent: 0 })
      const actions = drain(client)
      expect(actions.map(a => a?.type)).to.deep.equal(['GenerateEvent'])
      const event = actions[0]
      if (event?.type !== 'GenerateEvent' || event.event.result.ok) throw new Error('expected a failure')
      expect(event.event.result.error.kind).to.equal('NoDialBack')
      expect(event.event.result.error.code).to.equal('ERR_AUTONAT_NO_DIAL_BACK')
      client.close()
    })

    it('reports an unreachable address and tries the next server only after probeInterval', async () => {
      const { client, servers } = await clientWithServers(2, { probeInterval: 50 })
      client.onSwarmEvent(candidate('/ip4/198.18.0.1/tcp/5001'))
      const first = probeOf(drain(client))
      client.onConnectionHandlerEvent(first.peerId, first.connectionId, { type: 'ProbeAnswered', probeId: first.probe.id, status: 'OK', addrIdx: 0, dialStatus: 'E_DIAL_ERROR', bytesSent: 0 })
      const actions = drain(client)
      expect(actions.map(a => a?.type)).to.deep.equal(['GenerateEvent'])
      const event = actions[0]
      if (event?.type !== 'GenerateEvent' || event.event.result.ok) throw new Error('expected a failure')
      expect(event.event.result.error.kind).to.equal('AddressNotReachable')
      const started = Date.now()
      let second: ReturnType<typeof probeOf> | undefined
      await until(() => {
        const next = drain(client)
        if (next.length > 0) second = probeOf(next)
        return second != null
      })
      expect(Date.now() - started).to.be.at.least(40)
      expect(second?.peerId.equals(servers[1].peerId)).to.equal(true)
      expect(second?.peerId.equals(first.peerId)).to.equal(false)
      client.close()
    })

    it('keeps at most maxCandidates, the most recent first', async () => {
      const { client } = await clientWithServers(0, { maxCandidates: 2 })
      for (const port of [1, 2, 3]) client.onSwarmEvent(candidate(`/ip4/198.18.0.1/tcp/${port}`))
      expect(client.pendingCandidates.map(String)).to.deep.equal(['/ip4/198.18.0.1/tcp/2', '/ip4/198.18.0.1/tcp/3'])
      client.close()
    })
  })

  describe('the server state machine', () => {
    it('dials back on a new connection from a new port (portUse new), sends the nonce there, answers and closes it', async () => {
      const server = new v2.server.Behaviour({ isGlobal: TEST_NET })
      const client = await newPeerId()
      const requestConnection = newConnectionId()
      const address = multiaddr('/ip4/198.18.0.1/tcp/5001')
      server.onConnectionHandlerEvent(client, requestConnection, { type: 'DialBackRequested', requestId: 1, allAddrs: [address], address, nonce: 42n, dataAmount: 0 })
      const [dial] = drain(server)
      if (dial?.type !== 'Dial') throw new Error('expected a dial')
      expect(dial.opts.condition).to.equal('always')
      // Never from the dial port (rust-libp2p: PortUse::New): its NAT mapping is DCUtR's.
      expect(dial.opts.portUse).to.equal('new')
      expect(dial.opts.addresses?.map(String)).to.deep.equal([address.toString()])
      const dialConnection = dial.opts.connectionId as ConnectionId
      expect(dialConnection).to.not.equal(requestConnection)
      const handler = server.handleEstablishedOutboundConnection({ connectionId: dialConnection, peerId: client, address, roleOverride: 'Dialer' })
      const request = handler.poll(cx)
      expect(request).to.deep.include({ type: 'OutboundSubstreamRequest' })
      const [ours, theirs] = await streamPair()
      handler.onConnectionEvent({ type: 'FullyNegotiatedOutbound', stream: ours, protocol: v2.DIAL_BACK_PROTOCOL, info: 'dial-back' })
      expect(v2.decodeDialBack(await readFrame(theirs, frame))).to.equal(42n)
      await writeFrame(theirs, v2.encodeDialBackResponse(), frame)
      let sent: ReturnType<typeof handler.poll>
      await until(() => { sent = handler.poll(cx); return sent != null })
      if (sent?.type !== 'NotifyBehaviour') throw new Error('expected a report')
      server.onConnectionHandlerEvent(client, dialConnection, sent.event)
      const actions = drain(server)
      expect(actions.map(a => a?.type)).to.deep.equal(['NotifyHandler', 'CloseConnection', 'GenerateEvent'])
      expect(actions[0]).to.deep.include({ handler: requestConnection, event: { type: 'DialBackResult', requestId: 1, status: 'OK', dialStatus: 'OK' } })
      expect(actions[1]).to.deep.include({ connection: dialConnection })
      expect(server.numDialBacks).to.equal(0)
    })

    it('answers E_DIAL_ERROR when the dial fails, and rejects requests past maxConcurrentRequests', async () => {
      const server = new v2.server.Behaviour({ isGlobal: TEST_NET, maxConcurrentRequests: 1 })
      const client = await newPeerId()
      const requestConnection = newConnectionId()
      const address = multiaddr('/ip4/198.18.0.1/tcp/5001')
      server.onConnectionHandlerEvent(client, requestConnection, { type: 'DialBackRequested', requestId: 1, allAddrs: [address], address, nonce: 1n, dataAmount: 0 })
      const [dial] = drain(server)
      if (dial?.type !== 'Dial') throw new Error('expected a dial')
      server.onConnectionHandlerEvent(client, requestConnection, { type: 'DialBackRequested', requestId: 2, allAddrs: [address], address, nonce: 2n, dataAmount: 0 })
      const rejected = drain(server)
      expect(rejected[0]).to.deep.include({ type: 'NotifyHandler', event: { type: 'DialBackResult', requestId: 2, status: 'E_REQUEST_REJECTED', dialStatus: 'UNUSED' } })
      server.onSwarmEvent({ type: 'DialFailure', peerId: client, connectionId: dial.opts.connectionId as ConnectionId, error: new Error('unreachable') as never })
      const failed = drain(server)
      expect(failed[0]).to.deep.include({ type: 'NotifyHandler', event: { type: 'DialBackResult', requestId: 1, status: 'OK', dialStatus: 'E_DIAL_ERROR' } })
      const event = failed.at(-1)
      if (event?.type !== 'GenerateEvent' || event.event.result.ok) throw new Error('expected a failure event')
      expect(event.event.result.error).to.be.instanceOf(v2.AutonatError)
    })
  })

  describe('the server handler', () => {
    async function request (observed: string, addrs: string[]) {
      const handler = new v2.server.Handler(new v2.server.Behaviour({ isGlobal: TEST_NET }).config, { remoteAddr: multiaddr(observed), relayed: false })
      const [ours, theirs] = await streamPair()
      handler.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: ours, protocol: v2.DIAL_REQUEST_PROTOCOL, info: undefined })
      await writeFrame(theirs, v2.encodeMessage({ type: 'DialRequest', addrs: addrs.map(a => multiaddr(a)), nonce: 7n }), frame)
      return { handler, theirs }
    }

    async function report (handler: autonat.v2.server.Handler) {
      let event: ReturnType<typeof handler.poll>
      await until(() => { event = handler.poll(cx); return event != null })
      if (event?.type !== 'NotifyBehaviour') throw new Error('expected a report')
      return event.event
    }

    it('asks for 30–100 kB of dial data when the IP is not the observed one, then hands the dial-back over', async () => {
      const { handler, theirs } = await request('/ip4/198.18.0.5/tcp/40000', ['/ip4/10.0.0.1/tcp/1', '/ip4/198.18.0.9/tcp/5001'])
      const ask = v2.decodeMessage(await readFrame(theirs, frame))
      if (ask.type !== 'DialDataRequest') throw new Error(`expected DialDataRequest, got ${ask.type}`)
      expect(ask.addrIdx).to.equal(1)
      expect(ask.numBytes).to.be.within(30_000, 100_000)
      for (let sent = 0; sent < ask.numBytes; sent += 4096) {
        await writeFrame(theirs, v2.encodeMessage({ type: 'DialDataResponse', data: new Uint8Array(4096) }), frame)
      }
      const event = await report(handler)
      if (event.type !== 'DialBackRequested') throw new Error(`got ${event.type}`)
      expect(event.address.toString()).to.equal('/ip4/198.18.0.9/tcp/5001')
      expect(event.nonce).to.equal(7n)
      expect(event.dataAmount).to.be.at.least(ask.numBytes)
      handler.onBehaviourEvent({ type: 'DialBackResult', requestId: event.requestId, status: 'OK', dialStatus: 'OK' })
      expect(v2.decodeMessage(await readFrame(theirs, frame))).to.deep.equal({ type: 'DialResponse', status: 'OK', addrIdx: 1, dialStatus: 'OK' })
      handler.close()
    })

    it('asks no dial data for the observed IP, refuses non-global addresses, refuses oversized dial data chunks', async () => {
      const same = await request('/ip4/198.18.0.5/tcp/40000', ['/ip4/198.18.0.5/tcp/5001'])
      const event = await report(same.handler)
      expect(event).to.deep.include({ type: 'DialBackRequested', dataAmount: 0 })
      same.handler.close()

      const refused = await request('/ip4/198.18.0.5/tcp/40000', ['/ip4/10.0.0.1/tcp/1', '/ip4/127.0.0.1/tcp/1'])
      expect(v2.decodeMessage(await readFrame(refused.theirs, frame))).to.deep.include({ type: 'DialResponse', status: 'E_DIAL_REFUSED' })
      expect(await report(refused.handler)).to.deep.include({ type: 'RequestFailed' })

      const greedy = await request('/ip4/198.18.0.5/tcp/40000', ['/ip4/198.18.0.9/tcp/5001'])
      await readFrame(greedy.theirs, frame)
      await writeFrame(greedy.theirs, v2.encodeMessage({ type: 'DialDataResponse', data: new Uint8Array(5000) }), frame)
      const failed = await report(greedy.handler)
      expect(failed).to.deep.include({ type: 'RequestFailed' })
    })

    it('resets dial requests past maxConcurrentRequestsPerPeer on one connection', async () => {
      const handler = new v2.server.Handler(new v2.server.Behaviour({ isGlobal: TEST_NET }).config, { remoteAddr: multiaddr('/ip4/198.18.0.5/tcp/1'), relayed: false })
      const pairs = await Promise.all([0, 1, 2].map(async () => streamPair()))
      for (const [ours] of pairs) handler.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: ours, protocol: v2.DIAL_REQUEST_PROTOCOL, info: undefined })
      expect(pairs.map(([ours]) => ours.status)).to.deep.equal(['open', 'open', 'aborted'])
      handler.close()
    })

    it('serves nothing on relayed connections', () => {
      const handler = new v2.server.Handler(new v2.server.Behaviour().config, { remoteAddr: multiaddr('/memory/1/p2p-circuit'), relayed: true })
      expect(handler.listenProtocol().protocols).to.deep.equal([])
    })
  })

  describe('the client handler', () => {
    it('refuses to send more dial data than maxDialDataBytes', async () => {
      const config = new v2.client.Behaviour({ maxDialDataBytes: 1000 }).config
      const handler = new v2.client.Handler(config, { acceptNonce: () => false })
      const [ours, theirs] = await streamPair()
      const probe = { id: 1, addrs: [multiaddr('/ip4/198.18.0.1/tcp/1')], nonce: 3n }
      handler.onConnectionEvent({ type: 'FullyNegotiatedOutbound', stream: ours, protocol: v2.DIAL_REQUEST_PROTOCOL, info: probe })
      expect(v2.decodeMessage(await readFrame(theirs, frame))).to.deep.include({ type: 'DialRequest' })
      await writeFrame(theirs, v2.encodeMessage({ type: 'DialDataRequest', addrIdx: 0, numBytes: 50_000 }), frame)
      let event: ReturnType<typeof handler.poll>
      await until(() => { event = handler.poll(cx); return event != null })
      if (event?.type !== 'NotifyBehaviour' || event.event.type !== 'ProbeFailed') throw new Error('expected ProbeFailed')
      expect(event.event.error.kind).to.equal('Refused')
      expect(event.event.bytesSent).to.equal(0)
    })
  })

  describe('every timeout (fake clock)', () => {
    const TIMEOUT = 30_000
    let clock: ReturnType<typeof FakeTimers.install>
    beforeEach(() => { clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 1_000_000, shouldClearNativeTimers: true }) })
    afterEach(() => { clock.uninstall() })

    /** Let the streams deliver what was written (their queues run on timers and microtasks). */
    async function settle (): Promise<void> {
      for (let i = 0; i < 5; i++) await clock.tickAsync(0)
    }

    /** What a handler reports by now, if anything. */
    function reported<T> (handler: { poll: (c: typeof cx) => { type: string, event?: T } | undefined }): T | undefined {
      const event = handler.poll(cx)
      return event?.type === 'NotifyBehaviour' ? event.event : undefined
    }

    it('client: a probe whose server never answers fails after timeout (not before), and the next server is asked probeInterval later', async () => {
      const client = new v2.client.Behaviour({ isGlobal: TEST_NET, timeout: TIMEOUT, probeInterval: 5_000 })
      const servers = [await newPeerId(), await newPeerId()].map(peerId => ({ peerId, connectionId: newConnectionId() }))
      for (const server of servers) client.onConnectionHandlerEvent(server.peerId, server.connectionId, { type: 'ServerSupport', supported: true })
      client.onSwarmEvent({ type: 'NewExternalAddrCandidate', address: multiaddr('/ip4/198.18.0.1/tcp/5001') })
      const run = drain(client).find(a => a?.type === 'NotifyHandler')
      if (run?.type !== 'NotifyHandler') throw new Error('expected a probe')
      const handler = client.handleEstablishedOutboundConnection({ connectionId: run.handler as ConnectionId, peerId: run.peerId, address: multiaddr('/ip4/198.18.0.5/tcp/1'), roleOverride: 'Dialer' })
      handler.onBehaviourEvent(run.event)
      const request = handler.poll(cx)
      if (request?.type !== 'OutboundSubstreamRequest') throw new Error('expected a dial-request stream')
      expect(request.protocol.timeout, 'opening the stream is bounded too').to.equal(TIMEOUT)
      const [ours, theirs] = await streamPair()
      handler.onConnectionEvent({ type: 'FullyNegotiatedOutbound', stream: ours, protocol: v2.DIAL_REQUEST_PROTOCOL, info: request.protocol.info })
      const sent = readFrame(theirs, frame)
      await settle()
      expect(v2.decodeMessage(await sent)).to.deep.include({ type: 'DialRequest' })
      // The server says nothing more.
      await clock.tickAsync(TIMEOUT - 1)
      expect(reported(handler), 'not before the timeout').to.equal(undefined)
      expect(ours.status).to.equal('open')
      await clock.tickAsync(1)
      await settle()
      const failed = reported(handler)
      if (failed?.type !== 'ProbeFailed') throw new Error(`expected ProbeFailed, got ${failed?.type}`)
      expect(failed.error.kind).to.equal('Protocol')
      expect(failed.error.message).to.include('timed out')
      expect(ours.status).to.not.equal('open')
      client.onConnectionHandlerEvent(run.peerId, run.handler as ConnectionId, failed)
      expect(drain(client).map(a => a?.type)).to.deep.equal(['GenerateEvent'])
      clock.tick(4_999)
      expect(drain(client), 'the next probe waits probeInterval').to.deep.equal([])
      clock.tick(1)
      const next = drain(client).find(a => a?.type === 'NotifyHandler')
      if (next?.type !== 'NotifyHandler') throw new Error('expected the next probe')
      expect(next.peerId.equals(run.peerId)).to.equal(false)
      client.close()
    })

    it('client: a dial-back stream without a nonce is reset after timeout; a third at once is reset at once', async () => {
      const client = new v2.client.Behaviour({ timeout: TIMEOUT })
      const handler = client.handleEstablishedInboundConnection({ connectionId: newConnectionId(), peerId: await newPeerId(), localAddr: multiaddr('/memory/1'), remoteAddr: multiaddr('/memory/2') })
      const pairs = await Promise.all([0, 1, 2].map(async () => streamPair()))
      for (const [ours] of pairs) handler.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: ours, protocol: v2.DIAL_BACK_PROTOCOL, info: undefined })
      expect(pairs.map(([ours]) => ours.status)).to.deep.equal(['open', 'open', 'aborted'])
      expect(handler.connectionKeepAlive()).to.equal(true)
      await clock.tickAsync(TIMEOUT - 1)
      expect(pairs.map(([ours]) => ours.status).slice(0, 2)).to.deep.equal(['open', 'open'])
      await clock.tickAsync(1)
      await settle()
      expect(pairs.map(([ours]) => ours.status).slice(0, 2)).to.deep.equal(['aborted', 'aborted'])
      expect(handler.connectionKeepAlive()).to.equal(false)
      client.close()
    })

    function serverHandler (observed: string, options: Partial<autonat.v2.server.Config> = {}, dialBackNonce?: bigint) {
      return new v2.server.Handler(new v2.server.Behaviour({ isGlobal: TEST_NET, timeout: TIMEOUT, ...options }).config, { remoteAddr: multiaddr(observed), relayed: false, dialBackNonce })
    }

    it('server: a dial-request stream whose request never comes is reset after timeout', async () => {
      const handler = serverHandler('/ip4/198.18.0.5/tcp/40000')
      const [ours] = await streamPair()
      handler.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: ours, protocol: v2.DIAL_REQUEST_PROTOCOL, info: undefined })
      await clock.tickAsync(TIMEOUT - 1)
      expect(ours.status).to.equal('open')
      expect(reported(handler)).to.equal(undefined)
      await clock.tickAsync(1)
      await settle()
      expect(ours.status).to.equal('aborted')
      expect(reported(handler)).to.deep.include({ type: 'RequestFailed' })
      expect(handler.connectionKeepAlive()).to.equal(false)
      handler.close()
    })

    it('server: dial data that stops coming ends the request at timeout, counted from the request', async () => {
      const handler = serverHandler('/ip4/198.18.0.5/tcp/40000')
      const [ours, theirs] = await streamPair()
      handler.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: ours, protocol: v2.DIAL_REQUEST_PROTOCOL, info: undefined })
      await writeFrame(theirs, v2.encodeMessage({ type: 'DialRequest', addrs: [multiaddr('/ip4/198.18.0.9/tcp/5001')], nonce: 7n }), frame)
      const asked = readFrame(theirs, frame)
      await settle()
      expect(v2.decodeMessage(await asked)).to.deep.include({ type: 'DialDataRequest' })
      // Some dial data, then silence.
      await writeFrame(theirs, v2.encodeMessage({ type: 'DialDataResponse', data: new Uint8Array(4096) }), frame)
      await clock.tickAsync(TIMEOUT - 1)
      expect(ours.status).to.equal('open')
      await clock.tickAsync(1)
      await settle()
      expect(ours.status).to.equal('aborted')
      const failed = reported(handler)
      expect(failed).to.deep.include({ type: 'RequestFailed', dataAmount: 0 })
      handler.close()
    })

    it('server: a request whose dial-back result never comes is reset timeout after it was handed over', async () => {
      const handler = serverHandler('/ip4/198.18.0.5/tcp/40000')
      const [ours, theirs] = await streamPair()
      handler.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: ours, protocol: v2.DIAL_REQUEST_PROTOCOL, info: undefined })
      await clock.tickAsync(10_000)
      // Same IP as observed: no dial data, straight to the behaviour.
      await writeFrame(theirs, v2.encodeMessage({ type: 'DialRequest', addrs: [multiaddr('/ip4/198.18.0.5/tcp/5001')], nonce: 7n }), frame)
      await settle()
      const requested = reported(handler)
      if (requested?.type !== 'DialBackRequested') throw new Error(`expected DialBackRequested, got ${requested?.type}`)
      await clock.tickAsync(TIMEOUT - 1)
      expect(ours.status, 'a fresh timeout from the hand-over').to.equal('open')
      await clock.tickAsync(1)
      await settle()
      expect(ours.status).to.equal('aborted')
      // A late result finds nothing to answer.
      handler.onBehaviourEvent({ type: 'DialBackResult', requestId: requested.requestId, status: 'OK', dialStatus: 'OK' })
      await settle()
      expect(ours.status).to.equal('aborted')
      handler.close()
    })

    it('server: a dial-back whose nonce is never acknowledged fails after timeout', async () => {
      const handler = serverHandler('/ip4/198.18.0.5/tcp/5001', {}, 99n)
      const request = handler.poll(cx)
      if (request?.type !== 'OutboundSubstreamRequest') throw new Error('expected the dial-back stream request')
      expect(request.protocol.timeout, 'opening the stream is bounded too').to.equal(TIMEOUT)
      const [ours, theirs] = await streamPair()
      handler.onConnectionEvent({ type: 'FullyNegotiatedOutbound', stream: ours, protocol: v2.DIAL_BACK_PROTOCOL, info: 'dial-back' })
      const nonce = readFrame(theirs, frame)
      await settle()
      expect(v2.decodeDialBack(await nonce)).to.equal(99n)
      await clock.tickAsync(TIMEOUT - 1)
      expect(reported(handler)).to.equal(undefined)
      await clock.tickAsync(1)
      await settle()
      const sent = reported(handler)
      if (sent?.type !== 'DialBackSent') throw new Error(`expected DialBackSent, got ${sent?.type}`)
      expect(sent.error).to.be.instanceOf(Error)
      expect(ours.status).to.equal('aborted')
      expect(handler.connectionKeepAlive()).to.equal(false)
      handler.close()
    })
  })

  describe('swarms over the memory transport', function () {
    this.timeout(20_000)
    const anyAddress = (): boolean => true
    type Node = Swarm<ReturnType<typeof behaviours>>
    function behaviours (key: Awaited<ReturnType<typeof generateKeypair>>) {
      return combine({
        identify: new identify.Behaviour(key.publicKey),
        client: new v2.client.Behaviour({ isGlobal: anyAddress, probeInterval: 100 }),
        server: new v2.server.Behaviour({ isGlobal: anyAddress })
      })
    }
    let swarms: Node[] = []
    afterEach(async () => {
      await Promise.all(swarms.map(async s => { await s.close() }))
      swarms = []
    })

    function clientEvent (e: SwarmEvent<unknown>): boolean {
      return e.type === 'Behaviour' && (e.event as { behaviour: string }).behaviour === 'client'
    }

    it('confirms a listen address the server can dial back, and not one it cannot', async () => {
      const [a, s] = [await newSwarm(behaviours), await newSwarm(behaviours)]
      swarms.push(a, s)
      const addressA = await listen(a)
      const addressS = await listen(s)
      a.dial(addressS)
      a.behaviour.children.client.probeAddress(multiaddr('/memory/987654'))
      const first = await waitFor(a, e => clientEvent(e) && (e as { event: { event: autonat.v2.client.Event } }).event.event.testedAddr.toString() === '/memory/987654', { drive: [s] })
      const result = (first as { event: { event: autonat.v2.client.Event } }).event.event
      expect(result.testedAddr.toString()).to.equal('/memory/987654')
      if (result.result.ok) throw new Error('an address nobody listens on was confirmed')
      expect(result.result.error.kind).to.equal('AddressNotReachable')
      expect(result.bytesSent).to.be.at.least(30_000)

      a.behaviour.children.client.probeAddress(addressA)
      const confirmed = await waitFor(a, e => e.type === 'ExternalAddrConfirmed', { drive: [s] })
      if (confirmed.type !== 'ExternalAddrConfirmed') throw new Error('unreachable')
      expect(confirmed.address.toString()).to.equal(addressA.toString())
      expect(a.externalAddresses().map(String)).to.include(addressA.toString())
      const served = await waitFor(s, e => e.type === 'Behaviour' && (e.event as { behaviour: string }).behaviour === 'server' &&
        (e.event as { event: autonat.v2.server.Event }).event.result.ok, { drive: [a] })
      expect((served as { event: { event: autonat.v2.server.Event } }).event.event.client.equals(a.localPeerId)).to.equal(true)
    })
  })
})


