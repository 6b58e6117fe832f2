/**
 * DCUtR without sockets: the message codec, the config, the handler's exchange over in-memory
 * stream pairs (both sides, RTT/2 with fake timers, malformed and unexpected messages, a remote
 * without addresses), the behaviour's state machine driven directly (candidates, dials with
 * their roles, three attempts, events), the upgrader's role override on a simultaneous open
 * (Noise and Yamux), and the whole flow between swarms over a memory hub that simulates a TCP
 * simultaneous open: relay, identify's observed address as candidate, CONNECT/SYNC, both sides
 * dialing, one direct connection with ping over it; and a hub where punching fails.
 */
import FakeTimers from '@sinonjs/fake-timers'
import { multiaddrConnectionPair, streamPair } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'
import {
  ConfigError, MemoryConnectionRefusedError, SwarmBuilder, combine, dcutr, generateKeypair, identify, isGlobalAddress, inIpv4Range, memory,
  newConnectionId, peerIdOf, ping, relay
} from '../../src/index.js'
import { readFrame, writeFrame } from '../../src/behaviour/framing.js'
import { noiseYamuxUpgrader } from '../../src/upgrade/noise-yamux.js'
import { dialUpgraded } from '../../src/upgrade/upgrader.js'
import { listen, newSwarm, waitFor } from '../../src/testing/index.js'
import type { ConnectionId, MemoryHub, Multiaddr, PeerId, Swarm, SwarmEvent } from '../../src/index.js'
import type { MultiaddrConnection, Stream } from '@libp2p/interface'

const cx = { waker: { wake () {} } }
const frame = { maxSize: dcutr.MAX_MESSAGE_SIZE }
const TEST_NET = (a: Multiaddr): boolean => isGlobalAddress(a) || inIpv4Range(a, '198.18.0.0/15')

async function newPeerId (): Promise<PeerId> {
  return peerIdOf(await generateKeypair())
}

function drain<A> (source: { poll: (c: typeof cx) => A | undefined }): A[] {
  const actions: A[] = []
  for (let action = source.poll(cx); action !== undefined; action = source.poll(cx)) actions.push(action)
  return actions
}

async function until (condition: () => boolean, clock?: ReturnType<typeof FakeTimers.install>, ms = 2_000): Promise<void> {
  for (let waited = 0; !condition(); waited += 1) {
    if (waited > ms) throw new Error('condition not reached')
    if (clock != null) await clock.tickAsync(0)
    await new Promise(resolve => setImmediate(resolve))
  }
}

describe('DCUtR', () => {
  describe('messages', () => {
    it('encode and decode CONNECT with addresses and SYNC without', () => {
      const addrs = [multiaddr('/ip4/198.18.0.1/tcp/4002'), multiaddr('/ip6/2001:4860::1/tcp/1/p2p/12D3KooWGC6TvWhfapngNjVhGtX5rG3ZrZ94y8URU9nvmsMuWLSK')]
      const connect = dcutr.decodeHolePunch(dcutr.encodeHolePunch('CONNECT', addrs))
      expect(connect.type).to.equal('CONNECT')
      expect(connect.obsAddrs.map(String)).to.deep.equal(addrs.map(String))
      expect(dcutr.decodeHolePunch(dcutr.encodeHolePunch('SYNC'))).to.deep.equal({ type: 'SYNC', obsAddrs: [], invalidAddrs: 0 })
      // The wire bytes of SYNC: field 1 varint 300.
      expect([...dcutr.encodeHolePunch('SYNC')]).to.deep.equal([0x08, 0xac, 0x02])
    })

    it('drops unparsable addresses, skips unknown fields, and refuses malformed input with a typed error', () => {
      const good = multiaddr('/ip4/198.18.0.2/tcp/1').bytes
      const decoded = dcutr.decodeHolePunch(Uint8Array.from([0x08, 0x64, 0x12, 2, 0xff, 0xff, 0x12, good.length, ...good, 0x18, 5]))
      expect(decoded.type).to.equal('CONNECT')
      expect(decoded.obsAddrs.map(String)).to.deep.equal(['/ip4/198.18.0.2/tcp/1'])
      expect(decoded.invalidAddrs).to.equal(1)
      const bad = [
        new Uint8Array(0), // no type (required)
        Uint8Array.from([0x08, 0x07]), // unknown type 7
        Uint8Array.from([0x12, 4, 1]), // truncated
        Uint8Array.from([0x0a, 1, 0]), // type with a length wire type
        Uint8Array.from([0x08, 0x64, 0x10, 1]), // ObsAddrs with a varint wire type
        Uint8Array.from([0x0b]), // wire type 3
        Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]) // varint over 10 bytes
      ]
      for (const bytes of bad) expect(() => dcutr.decodeHolePunch(bytes)).to.throw(dcutr.MalformedMessageError).with.property('code', 'ERR_DCUTR_MALFORMED_MESSAGE')
    })
  })

  describe('config', () => {
    it('defaults as rust-libp2p and refuses bad options naming the field', () => {
      const behaviour = new dcutr.Behaviour(peerIdOf(generateKeypairSync()))
      expect(behaviour.config.maxAttempts).to.equal(3)
      expect(behaviour.config.timeout).to.equal(10_000)
      expect(behaviour.config.isGlobal).to.equal(isGlobalAddress)
      for (const [field, value] of [['timeout', 0], ['timeout', 2 ** 31], ['maxAttempts', 0], ['maxAttempts', 1.5], ['isGlobal', 'yes']] as const) {
        expect(() => new dcutr.Behaviour(peerIdOf(generateKeypairSync()), { [field]: value } as never)).to.throw(ConfigError).with.property('field', field)
      }
    })
  })

  describe('the handler exchange over a stream pair', () => {
    let clock: ReturnType<typeof FakeTimers.install>
    beforeEach(() => { clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'performance'], shouldClearNativeTimers: true }) })
    afterEach(() => { clock.uninstall() })

    const config = (options: Partial<dcutr.Config> = {}): dcutr.Config => new dcutr.Behaviour(peerIdOf(generateKeypairSync()), { isGlobal: TEST_NET, ...options }).config
    const aAddrs = [multiaddr('/ip4/198.18.0.1/tcp/4002')]
    const bAddrs = [multiaddr('/ip4/198.18.0.2/tcp/4002'), multiaddr('/ip4/10.0.2.2/tcp/4002')]

    function handlers (options: Partial<dcutr.Config> = {}, candidates = { a: () => aAddrs, b: () => bAddrs }) {
      const peer = peerIdOf(generateKeypairSync())
      const b = new dcutr.Handler(config(options), { role: 'Listener', remotePeer: peer, candidates: candidates.b })
      const a = new dcutr.Handler(config(options), { role: 'Dialer', remotePeer: peer, candidates: candidates.a })
      return { a, b }
    }

    it('B opens the stream, sends CONNECT, SYNC after the answer and reports only after half the round trip; A reports at SYNC', async () => {
      const { a, b } = handlers()
      expect(a.listenProtocol().protocols).to.deep.equal([dcutr.PROTOCOL])
      expect(b.listenProtocol().protocols).to.deep.equal([])
      b.onBehaviourEvent({ type: 'Connect' })
      expect(b.connectionKeepAlive()).to.equal(true)
      const [request] = drain(b)
      expect(request).to.deep.include({ type: 'OutboundSubstreamRequest' })
      const [bStream, aStream] = await streamPair()
      b.onConnectionEvent({ type: 'FullyNegotiatedOutbound', stream: bStream, protocol: dcutr.PROTOCOL, info: undefined })
      // A is slow to answer: 40 ms of round trip.
      const connect = dcutr.decodeHolePunch(await readFrame(aStream, frame))
      expect(connect.type).to.equal('CONNECT')
      expect(connect.obsAddrs.map(String)).to.deep.equal(bAddrs.map(String))
      await clock.tickAsync(40)
      await writeFrame(aStream, dcutr.encodeHolePunch('CONNECT', aAddrs), frame)
      const sync = dcutr.decodeHolePunch(await readFrame(aStream, frame))
      expect(sync.type).to.equal('SYNC')
      await clock.tickAsync(19)
      expect(drain(b)).to.deep.equal([])
      await clock.tickAsync(2)
      const [reported] = drain(b)
      if (reported?.type !== 'NotifyBehaviour' || reported.event.type !== 'OutboundConnectNegotiated') throw new Error(`expected OutboundConnectNegotiated, got ${JSON.stringify(reported)}`)
      expect(reported.event.remoteAddrs.map(String)).to.deep.equal(aAddrs.map(String))
      expect(reported.event.rtt).to.be.within(40, 41)
      // The handler keeps the connection for the dial's outcome, then lets it go.
      expect(b.connectionKeepAlive()).to.equal(true)
      b.onBehaviourEvent({ type: 'Finished' })
      expect(b.connectionKeepAlive()).to.equal(false)

      // A's side of the same exchange, against a scripted B.
      const [bSide, aSide] = await streamPair()
      a.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: aSide, protocol: dcutr.PROTOCOL, info: undefined })
      await writeFrame(bSide, dcutr.encodeHolePunch('CONNECT', bAddrs), frame)
      const answer = dcutr.decodeHolePunch(await readFrame(bSide, frame))
      // Candidates are read when CONNECT is sent.
      expect(answer.obsAddrs.map(String)).to.deep.equal(aAddrs.map(String))
      expect(drain(a)).to.deep.equal([])
      await writeFrame(bSide, dcutr.encodeHolePunch('SYNC'), frame)
      await until(() => (a as unknown as { results: unknown[] }).results.length > 0, clock)
      const [done] = drain(a)
      if (done?.type !== 'NotifyBehaviour' || done.event.type !== 'InboundConnectNegotiated') throw new Error('expected InboundConnectNegotiated')
      // B's private address is not worth dialing: dropped by the policy.
      expect(done.event.remoteAddrs.map(String)).to.deep.equal(['/ip4/198.18.0.2/tcp/4002'])
      a.close()
      b.close()
    })

    async function aFails (script: (b: Stream) => Promise<void>, options: Partial<dcutr.Config> = {}): Promise<dcutr.DcutrError> {
      const { a } = handlers(options)
      const [bSide, aSide] = await streamPair()
      a.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: aSide, protocol: dcutr.PROTOCOL, info: undefined })
      await script(bSide)
      await until(() => (a as unknown as { results: unknown[] }).results.length > 0, clock)
      const [event] = drain(a)
      if (event?.type !== 'NotifyBehaviour' || event.event.type !== 'InboundConnectFailed') throw new Error(`expected InboundConnectFailed, got ${JSON.stringify(event)}`)
      expect(aSide.status).to.not.equal('open')
      a.close()
      return event.event.error
    }

    it('A: typed errors for a SYNC first, a malformed or oversized message, no usable address, and a silent remote', async () => {
      const unexpected = await aFails(async b => { await writeFrame(b, dcutr.encodeHolePunch('SYNC'), frame) })
      expect(unexpected).to.include({ kind: 'InboundError', failure: 'UnexpectedMessage', code: 'ERR_DCUTR_INBOUND_ERROR' })
      const malformed = await aFails(async b => { await writeFrame(b, Uint8Array.from([0x08, 0x07]), frame) })
      expect(malformed).to.include({ failure: 'MalformedMessage' })
      expect(malformed.cause).to.be.instanceOf(dcutr.MalformedMessageError)
      const oversized = await aFails(async b => { await writeFrame(b, new Uint8Array(5_000), { maxSize: 10_000 }) })
      expect(oversized).to.include({ failure: 'MalformedMessage' })
      const relayedOnly = await aFails(async b => {
        await writeFrame(b, dcutr.encodeHolePunch('CONNECT', [multiaddr('/ip4/198.18.0.10/tcp/4001/p2p/12D3KooWGC6TvWhfapngNjVhGtX5rG3ZrZ94y8URU9nvmsMuWLSK/p2p-circuit'), multiaddr('/ip4/10.0.2.2/tcp/1')]), frame)
      })
      expect(relayedOnly).to.include({ failure: 'NoAddresses' })
      const silent = await aFails(async () => { await clock.tickAsync(10_001) }, { timeout: 10_000 })
      expect(silent).to.include({ failure: 'Timeout' })
    })

    it('B: a remote that does not speak DCUtR, and a CONNECT answered with SYNC', async () => {
      const { b } = handlers()
      b.onBehaviourEvent({ type: 'Connect' })
      drain(b)
      const { StreamUpgradeError } = await import('../../src/behaviour/connection-handler.js')
      b.onConnectionEvent({ type: 'DialUpgradeError', info: undefined, error: new StreamUpgradeError('NegotiationFailed', 'no') })
      const [unsupported] = drain(b)
      expect(unsupported?.type === 'NotifyBehaviour' && unsupported.event.type === 'OutboundConnectFailed' && unsupported.event.error).to.include({ kind: 'OutboundError', failure: 'Unsupported' })
      expect(b.connectionKeepAlive()).to.equal(false)

      b.onBehaviourEvent({ type: 'Connect' })
      drain(b)
      const [bStream, aStream] = await streamPair()
      b.onConnectionEvent({ type: 'FullyNegotiatedOutbound', stream: bStream, protocol: dcutr.PROTOCOL, info: undefined })
      await readFrame(aStream, frame)
      await writeFrame(aStream, dcutr.encodeHolePunch('SYNC'), frame)
      await until(() => (b as unknown as { results: unknown[] }).results.length > 0, clock)
      const [event] = drain(b)
      expect(event?.type === 'NotifyBehaviour' && event.event.type === 'OutboundConnectFailed' && event.event.error).to.include({ failure: 'UnexpectedMessage' })
      b.close()
    })

    it('bounds: our CONNECT fits in 4 KiB whatever the candidates; one exchange at a time per connection (a new one replaces it)', async () => {
      const many = Array.from({ length: 200 }, (_, i) => multiaddr(`/ip6/2001:db8::${i.toString(16)}/tcp/4002/p2p/12D3KooWGC6TvWhfapngNjVhGtX5rG3ZrZ94y8URU9nvmsMuWLSK`))
      const { a } = handlers({}, { a: () => many, b: () => bAddrs })
      const [first, firstA] = await streamPair()
      a.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: firstA, protocol: dcutr.PROTOCOL, info: undefined })
      const [bSide, aSide] = await streamPair()
      a.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: aSide, protocol: dcutr.PROTOCOL, info: undefined })
      expect(firstA.status).to.not.equal('open')
      await writeFrame(bSide, dcutr.encodeHolePunch('CONNECT', bAddrs), frame)
      const answer = await readFrame(bSide, frame)
      expect(answer.byteLength).to.be.at.most(dcutr.MAX_MESSAGE_SIZE)
      const sent = dcutr.decodeHolePunch(answer).obsAddrs
      expect(sent.length).to.be.within(40, 199)
      expect(sent.map(String)).to.deep.equal(many.slice(0, sent.length).map(String))
      first.abort(new Error('done'))
      a.close()
    })

    it('the listener of a relayed connection refuses inbound DCUtR streams', async () => {
      const { b } = handlers()
      const [, theirs] = await streamPair()
      b.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: theirs, protocol: dcutr.PROTOCOL, info: undefined })
      expect(theirs.status).to.not.equal('open')
      expect(drain(b)).to.deep.equal([])
    })
  })

  describe('the behaviour, driven directly', () => {
    const relayedAddr = multiaddr('/ip4/198.18.0.10/tcp/4001/p2p/12D3KooWGC6TvWhfapngNjVhGtX5rG3ZrZ94y8URU9nvmsMuWLSK/p2p-circuit')

    it('keeps the most recent 20 candidates, global and not relayed, with our /p2p, plus confirmed addresses', async () => {
      const me = await newPeerId()
      const behaviour = new dcutr.Behaviour(me, { isGlobal: TEST_NET })
      for (let i = 0; i < 25; i++) behaviour.onSwarmEvent({ type: 'NewExternalAddrCandidate', address: multiaddr(`/ip4/198.18.1.${i}/tcp/4002`) })
      behaviour.onSwarmEvent({ type: 'NewExternalAddrCandidate', address: multiaddr('/ip4/10.0.1.2/tcp/4002') })
      behaviour.onSwarmEvent({ type: 'NewExternalAddrCandidate', address: relayedAddr })
      behaviour.onSwarmEvent({ type: 'NewExternalAddrCandidate', address: multiaddr('/ip4/198.18.1.10/tcp/4002') })
      behaviour.onSwarmEvent({ type: 'ExternalAddrConfirmed', address: multiaddr('/ip4/198.18.9.9/tcp/4001') })
      const candidates = behaviour.candidateAddresses().map(String)
      expect(candidates[0]).to.equal(`/ip4/198.18.1.10/tcp/4002/p2p/${me.toString()}`)
      expect(candidates).to.have.length(20)
      expect(candidates.at(-1)).to.equal(`/ip4/198.18.9.9/tcp/4001/p2p/${me.toString()}`)
      expect(candidates.some(c => c.includes('10.0.1.2') || c.includes('p2p-circuit'))).to.equal(false)
    })

    it('listener side: Connect on a relayed inbound connection, dial with roleOverride Listener, retry, give up after 3 attempts', async () => {
      const behaviour = new dcutr.Behaviour(await newPeerId(), { isGlobal: TEST_NET })
      const peer = await newPeerId()
      const relayed = newConnectionId()
      const handler = behaviour.handleEstablishedInboundConnection({ connectionId: relayed, peerId: peer, localAddr: relayedAddr, remoteAddr: relayedAddr.encapsulate(`/p2p/${peer.toString()}`) })
      expect(handler).to.be.instanceOf(dcutr.Handler)
      expect(drain(handler as dcutr.Handler)[0]).to.deep.include({ type: 'OutboundSubstreamRequest' })
      const remoteAddrs = [multiaddr('/ip4/198.18.0.1/tcp/4002')]
      const dials: ConnectionId[] = []
      for (let attempt = 1; attempt <= 3; attempt++) {
        behaviour.onConnectionHandlerEvent(peer, relayed, { type: 'OutboundConnectNegotiated', remoteAddrs, rtt: 1 })
        const [dial] = drain(behaviour)
        if (dial?.type !== 'Dial') throw new Error('expected a dial')
        expect(dial.opts).to.deep.include({ peerId: peer, condition: 'always', roleOverride: 'Listener', portUse: 'reuse' })
        expect(dial.opts.addresses?.map(String)).to.deep.equal(remoteAddrs.map(String))
        dials.push(dial.opts.connectionId as ConnectionId)
        behaviour.onSwarmEvent({ type: 'DialFailure', peerId: peer, connectionId: dials.at(-1) as ConnectionId, error: new MemoryConnectionRefusedError(remoteAddrs[0]) as never })
        const actions = drain(behaviour)
        if (attempt < 3) {
          expect(actions).to.deep.equal([{ type: 'NotifyHandler', peerId: peer, handler: relayed, event: { type: 'Connect' } }])
        } else {
          expect(actions.map(a => a.type)).to.deep.equal(['NotifyHandler', 'GenerateEvent'])
          expect(actions[0]).to.deep.include({ event: { type: 'Finished' } })
          const event = actions[1]?.type === 'GenerateEvent' ? actions[1].event : undefined
          expect(event?.remotePeerId.equals(peer)).to.equal(true)
          if (event?.result.ok !== false) throw new Error('expected a failure')
          expect(event.result.error).to.include({ kind: 'AttemptsExceeded', failure: 'DialFailed', code: 'ERR_DCUTR_ATTEMPTS_EXCEEDED' })
          expect(event.result.error.cause).to.be.instanceOf(MemoryConnectionRefusedError)
        }
      }
      expect(new Set(dials).size).to.equal(3)
    })

    it('listener side: the direct connection established is the result; the handler is told to finish', async () => {
      const behaviour = new dcutr.Behaviour(await newPeerId(), { isGlobal: TEST_NET })
      const peer = await newPeerId()
      const relayed = newConnectionId()
      behaviour.handleEstablishedInboundConnection({ connectionId: relayed, peerId: peer, localAddr: relayedAddr, remoteAddr: relayedAddr })
      behaviour.onConnectionHandlerEvent(peer, relayed, { type: 'OutboundConnectNegotiated', remoteAddrs: [multiaddr('/ip4/198.18.0.1/tcp/4002')], rtt: 1 })
      const [dial] = drain(behaviour)
      if (dial?.type !== 'Dial') throw new Error('expected a dial')
      const direct = dial.opts.connectionId as ConnectionId
      behaviour.handleEstablishedOutboundConnection({ connectionId: direct, peerId: peer, address: multiaddr('/ip4/198.18.0.1/tcp/4002'), roleOverride: 'Listener', portUse: 'reuse' })
      const actions = drain(behaviour)
      expect(actions[0]).to.deep.equal({ type: 'NotifyHandler', peerId: peer, handler: relayed, event: { type: 'Finished' } })
      expect(actions[1]).to.deep.equal({ type: 'GenerateEvent', event: { remotePeerId: peer, result: { ok: true, connectionId: direct } } })
      // An unrelated direct connection is none of DCUtR's business.
      behaviour.handleEstablishedOutboundConnection({ connectionId: newConnectionId(), peerId: peer, address: multiaddr('/ip4/198.18.0.1/tcp/4002'), roleOverride: 'Dialer' })
      expect(drain(behaviour)).to.deep.equal([])
    })

    it('dialer side: answers, dials as the dialer, reports success, stays silent on a failed dial and reports exchange errors', async () => {
      const behaviour = new dcutr.Behaviour(await newPeerId(), { isGlobal: TEST_NET })
      const peer = await newPeerId()
      const relayed = newConnectionId()
      const handler = behaviour.handleEstablishedOutboundConnection({ connectionId: relayed, peerId: peer, address: relayedAddr.encapsulate(`/p2p/${peer.toString()}`), roleOverride: 'Dialer' })
      expect(handler).to.be.instanceOf(dcutr.Handler)
      expect(drain(handler as dcutr.Handler)).to.deep.equal([])
      const direct = behaviour.handleEstablishedInboundConnection({ connectionId: newConnectionId(), peerId: peer, localAddr: multiaddr('/ip4/198.18.0.1/tcp/4001'), remoteAddr: multiaddr('/ip4/198.18.0.2/tcp/4002') })
      expect(direct).to.not.be.instanceOf(dcutr.Handler)
      for (const outcome of ['fail', 'succeed'] as const) {
        behaviour.onConnectionHandlerEvent(peer, relayed, { type: 'InboundConnectNegotiated', remoteAddrs: [multiaddr('/ip4/198.18.0.2/tcp/4002')] })
        const [dial] = drain(behaviour)
        if (dial?.type !== 'Dial') throw new Error('expected a dial')
        expect(dial.opts).to.deep.include({ peerId: peer, condition: 'always', roleOverride: 'Dialer' })
        const id = dial.opts.connectionId as ConnectionId
        if (outcome === 'fail') {
          behaviour.onSwarmEvent({ type: 'DialFailure', peerId: peer, connectionId: id, error: new MemoryConnectionRefusedError(multiaddr('/memory/1')) as never })
          expect(drain(behaviour)).to.deep.equal([])
        } else {
          behaviour.handleEstablishedOutboundConnection({ connectionId: id, peerId: peer, address: multiaddr('/ip4/198.18.0.2/tcp/4002'), roleOverride: 'Dialer' })
          expect(drain(behaviour)).to.deep.equal([{ type: 'GenerateEvent', event: { remotePeerId: peer, result: { ok: true, connectionId: id } } }])
        }
      }
      const error = new dcutr.DcutrError('InboundError', 'NoAddresses', 'none')
      behaviour.onConnectionHandlerEvent(peer, relayed, { type: 'InboundConnectFailed', error })
      expect(drain(behaviour)).to.deep.equal([{ type: 'GenerateEvent', event: { remotePeerId: peer, result: { ok: false, error } } }])
    })
  })

  describe('the upgrader on a simultaneous open', () => {
    /** Two dialed ends of one connection, as a TCP simultaneous open gives them. */
    function simultaneousOpen (): [MultiaddrConnection, MultiaddrConnection] {
      const [one, two] = multiaddrConnectionPair({ outbound: { remoteAddr: multiaddr('/ip4/198.18.0.2/tcp/4002') }, inbound: { remoteAddr: multiaddr('/ip4/198.18.0.1/tcp/4002') } })
      ;(two as { direction: string }).direction = 'outbound'
      return [one, two]
    }

    for (const inline of [true, false]) {
      it(`roleOverride Listener upgrades a dialed connection as Noise responder and Yamux server, muxer negotiated ${inline ? 'inside Noise' : 'by multistream-select (as with rust-libp2p)'}: streams work both ways`, async () => {
        const [keyA, keyB] = [await generateKeypair(), await generateKeypair()]
        const [connA, connB] = simultaneousOpen()
        const upgraderA = noiseYamuxUpgrader(keyA, undefined, inline).transportUpgrader(async () => {})
        const upgraderB = noiseYamuxUpgrader(keyB, undefined, inline).transportUpgrader(async () => {}, 'Listener')
        const signal = AbortSignal.timeout(5_000)
        const [a, b] = (await Promise.all([upgraderA.upgradeOutbound(connA, { signal }), upgraderB.upgradeOutbound(connB, { signal })])).map(dialUpgraded)
        expect(a.remotePeer.equals(peerIdOf(keyB))).to.equal(true)
        expect(b.remotePeer.equals(peerIdOf(keyA))).to.equal(true)
        expect(a.secured.direction).to.equal('outbound')
        expect(b.secured.direction).to.equal('inbound')
        // A stream each way: Yamux client ids are odd, server ids even; both clients would fail here.
        for (const [from, to] of [[a, b], [b, a]] as const) {
          const incoming = new Promise<Stream>(resolve => { to.muxer.addEventListener('stream', evt => { resolve(evt.detail) }, { once: true }) })
          const stream = await from.muxer.createStream()
          stream.send(Uint8Array.from([1, 2, 3]))
          const received = await incoming
          const data = await new Promise<Uint8Array>(resolve => { received.addEventListener('message', evt => { resolve(evt.data.subarray()) }, { once: true }) })
          expect([...data]).to.deep.equal([1, 2, 3])
        }
        expect(a.multiplexer).to.equal('/yamux/1.0.0')
        for (const side of [a, b]) { side.muxer.abort(new Error('done')); side.maConn.abort(new Error('done')) }
      })
    }

    it('without the override both sides are initiators and the upgrade fails', async () => {
      const [connA, connB] = simultaneousOpen()
      const signal = AbortSignal.timeout(2_000)
      const upgrades = [noiseYamuxUpgrader(await generateKeypair()).transportUpgrader(async () => {}).upgradeOutbound(connA, { signal }),
        noiseYamuxUpgrader(await generateKeypair()).transportUpgrader(async () => {}).upgradeOutbound(connB, { signal })]
      const results = await Promise.allSettled(upgrades)
      expect(results.every(r => r.status === 'rejected')).to.equal(true)
      connA.abort(new Error('done'))
      connB.abort(new Error('done'))
    })
  })

  describe('swarms over a memory hub that simulates TCP simultaneous open', function () {
    this.timeout(30_000)

    /**
     * A hub shared by the swarms of one test. Every connection a swarm dials arrives from
     * `/memory/punch-<name>` (its "NAT mapping", which identify then reports to it), and a dial
     * to `/memory/punch-<name>` succeeds only as a simultaneous open: when `<name>` dials the
     * dialer's own punch address at about the same time. Both then get a dialed end of one
     * connection. Unpunchable: such dials time out (a symmetric NAT).
     */
    class PunchHub {
      private readonly listeners = new Map<string, (connection: MultiaddrConnection) => void>()
      private readonly waiting = new Map<string, (connection: MultiaddrConnection) => void>()
      private next = 0
      punches = 0

      constructor (private readonly punchable: boolean) {}

      for (name: string): MemoryHub {
        return {
          bind: (port, accept) => {
            const bound = port === '0' ? `${name}-${++this.next}` : port
            this.listeners.set(bound, accept)
            return bound
          },
          unbind: (port) => { this.listeners.delete(port) },
          connect: async (port, { signal }) => {
            if (port.startsWith('punch-')) return this.punch(name, port.slice('punch-'.length), signal)
            const accept = this.listeners.get(port)
            if (accept == null) throw new MemoryConnectionRefusedError(multiaddr(`/memory/${port}`))
            const [outbound, inbound] = multiaddrConnectionPair({ outbound: { remoteAddr: multiaddr(`/memory/${port}`) }, inbound: { remoteAddr: multiaddr(`/memory/punch-${name}`) } })
            accept(inbound)
            return outbound
          }
        }
      }

      private async punch (from: string, to: string, signal: AbortSignal): Promise<MultiaddrConnection> {
        const other = this.waiting.get(`${to}->${from}`)
        if (other != null && this.punchable) {
          this.waiting.delete(`${to}->${from}`)
          this.punches++
          const [mine, theirs] = multiaddrConnectionPair({ outbound: { remoteAddr: multiaddr(`/memory/punch-${to}`) }, inbound: { remoteAddr: multiaddr(`/memory/punch-${from}`) } })
          ;(theirs as { direction: string }).direction = 'outbound'
          other(theirs)
          return mine
        }
        return new Promise((resolve, reject) => {
          const key = `${from}->${to}`
          this.waiting.set(key, resolve)
          signal.addEventListener('abort', () => {
            this.waiting.delete(key)
            reject(signal.reason)
          }, { once: true })
        })
      }
    }

    let swarms: Array<Swarm<any>> = []
    afterEach(async () => {
      await Promise.all(swarms.map(async s => { await s.close() }))
      swarms = []
    })

    async function client (hub: PunchHub, name: string) {
      const s = await SwarmBuilder.withNewIdentity().withTransport(memory(hub.for(name))).withRelayClient()
        .withBehaviour((key, relayClient) => combine({
          relayClient,
          identify: new identify.Behaviour(key.publicKey),
          ping: new ping.Behaviour({ interval: 100 }),
          dcutr: new dcutr.Behaviour(peerIdOf(key), { isGlobal: () => true })
        }))
        .withSwarmConfig({ connectionTimeout: 500 })
        .build()
      swarms.push(s)
      return s
    }

    function dcutrEvent (e: SwarmEvent<unknown>): boolean {
      return e.type === 'Behaviour' && (e.event as { behaviour: string }).behaviour === 'dcutr'
    }

    async function setup (punchable: boolean) {
      const hub = new PunchHub(punchable)
      const r = await SwarmBuilder.withNewIdentity().withTransport(memory(hub.for('relay')))
        .withBehaviour(key => combine({ relay: new relay.Behaviour(key), identify: new identify.Behaviour(key.publicKey) }))
        .build()
      swarms.push(r)
      const relayAddress = await listen(r)
      r.addExternalAddress(relayAddress)
      const circuit = multiaddr(`${relayAddress.toString()}/p2p/${r.localPeerId.toString()}/p2p-circuit`)
      const [a, b] = [await client(hub, 'a'), await client(hub, 'b')]
      b.listenOn(circuit)
      await waitFor(b, e => e.type === 'NewListenAddr' && e.address.toString().includes('p2p-circuit'), { drive: [r] })
      // a reaches the relay too, so that identify tells it its "mapping".
      a.dial(relayAddress)
      await waitFor(a, e => e.type === 'NewExternalAddrCandidate', { drive: [r, b] })
      a.dial(circuit.encapsulate(`/p2p/${b.localPeerId.toString()}`))
      return { hub, r, a, b }
    }

    it('the relayed connection becomes direct: one punched connection, A its dialer and B its listener, ping over it', async () => {
      const { hub, r, a, b } = await setup(true)
      const onB = await waitFor(b, dcutrEvent, { drive: [r, a] })
      const onA = await waitFor(a, dcutrEvent, { drive: [r, b] })
      const resultB = (onB as { event: { event: dcutr.Event } }).event.event
      const resultA = (onA as { event: { event: dcutr.Event } }).event.event
      if (!resultA.result.ok || !resultB.result.ok) throw new Error(`hole punch failed: ${JSON.stringify([resultA.result, resultB.result])}`)
      expect(resultA.remotePeerId.equals(b.localPeerId)).to.equal(true)
      expect(resultB.remotePeerId.equals(a.localPeerId)).to.equal(true)
      expect(hub.punches).to.equal(1)
      const directA = a.connections().find(c => c.id === (resultA.result as { connectionId: ConnectionId }).connectionId)
      const directB = b.connections().find(c => c.id === (resultB.result as { connectionId: ConnectionId }).connectionId)
      expect(directA?.endpoint).to.deep.include({ type: 'Dialer' }).and.not.have.property('roleOverride')
      expect(directB?.endpoint).to.deep.include({ type: 'Dialer', roleOverride: 'Listener' })
      expect(directA?.endpoint.limited).to.equal(undefined)
      expect(directA?.remoteAddress.toString()).to.equal('/memory/punch-b')
      expect(directB?.remoteAddress.toString()).to.equal('/memory/punch-a')
      // Ping over the direct connection, both ways.
      for (const [from, to, others, id] of [[a, b, [r, b], directA?.id], [b, a, [r, a], directB?.id]] as const) {
        await waitFor(from, e => e.type === 'Behaviour' && (e.event as { behaviour: string }).behaviour === 'ping' &&
          (e.event as { event: ping.Event }).event.type === 'Success' && (e.event as { event: { connectionId: ConnectionId } }).event.connectionId === id &&
          (e.event as { event: { peerId: PeerId } }).event.peerId.equals(to.localPeerId), { drive: others })
      }
    })

    it('an unpunchable NAT: B gives up after 3 attempts with AttemptsExceeded and the relayed connection stays', async () => {
      const { r, a, b } = await setup(false)
      const onB = await waitFor(b, dcutrEvent, { drive: [r, a], timeout: 10_000 })
      const result = (onB as { event: { event: dcutr.Event } }).event.event.result
      if (result.ok) throw new Error('punched through an unpunchable hub')
      expect(result.error).to.include({ kind: 'AttemptsExceeded', code: 'ERR_DCUTR_ATTEMPTS_EXCEEDED' })
      const relayed = b.connections().filter(c => c.peerId.equals(a.localPeerId))
      expect(relayed.map(c => c.endpoint.limited)).to.deep.equal([true])
      await waitFor(b, e => e.type === 'Behaviour' && (e.event as { behaviour: string }).behaviour === 'ping' &&
        (e.event as { event: ping.Event }).event.type === 'Success' && (e.event as { event: { connectionId: ConnectionId } }).event.connectionId === relayed[0].id, { drive: [r, a] })
    })
  })
})

/** A keypair made synchronously (the ids in the state-machine tests need no real identity). */
function generateKeypairSync () {
  return keyPool[keyIndex++ % keyPool.length]
}
const keyPool = await Promise.all(Array.from({ length: 8 }, async () => generateKeypair()))
let keyIndex = 0
