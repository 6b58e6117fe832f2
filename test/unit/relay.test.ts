/**
 * Circuit relay v2 without sockets: the messages and the voucher, the config, the relay's state
 * machine and every one of its limits (driven directly), its rate limiters on a fake clock
 * (floods from one peer and one IP refused, refills), the client's renewal and its reserving
 * again after losing the relay (fake clock), the relay's handler and the splice over in-memory
 * stream pairs, and the whole flow (reserve, dial through, ping, renew, lose the relay and
 * reserve again, give up) between swarms over the memory transport.
 */
import FakeTimers from '@sinonjs/fake-timers'
import { streamPair } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'
import {
  ConfigError, DialTransportError, SwarmBuilder, combine, generateKeypair, isRelayedAddress, newConnectionId, peerIdOf, ping, relay, transportOf
} from '../../src/index.js'
import { readFrame, writeFrame } from '../../src/behaviour/framing.js'
import { TokenBuckets } from '../../src/protocols/relay/rate-limiter.js'
import { splice } from '../../src/protocols/relay/splice.js'
import { listen, newSwarm, waitFor } from '../../src/testing/index.js'
import type { ConnectionId, FromSwarm, PeerId, Stream, Swarm, SwarmEvent } from '../../src/index.js'
import type { Multiaddr } from '@multiformats/multiaddr'

const cx = { waker: { wake () {} } }

async function newPeerId (): Promise<PeerId> {
  return peerIdOf(await generateKeypair())
}

/** A stand-in for a hop stream in the behaviour's state machine: only `abort` is used there. */
function fakeStream (): Stream & { aborted?: Error } {
  const stream = { aborted: undefined as Error | undefined, abort (err: Error) { stream.aborted = err } }
  return stream as unknown as Stream & { aborted?: Error }
}

type Action = ReturnType<relay.Behaviour['poll']>

function drain (behaviour: relay.Behaviour): Array<NonNullable<Action>> {
  const actions: Array<NonNullable<Action>> = []
  for (let action = behaviour.poll(cx); action !== undefined; action = behaviour.poll(cx)) actions.push(action)
  return actions
}

function established (peerId: PeerId, connectionId: ConnectionId, ip: string): FromSwarm {
  return {
    type: 'ConnectionEstablished',
    peerId,
    connectionId,
    endpoint: { type: 'Listener', localAddr: multiaddr('/ip4/198.51.100.1/tcp/4001'), sendBackAddr: multiaddr(`/ip4/${ip}/tcp/5000`) },
    failedAddresses: [],
    otherEstablished: 0
  }
}

function closed (peerId: PeerId, connectionId: ConnectionId): FromSwarm {
  return { type: 'ConnectionClosed', peerId, connectionId, endpoint: { type: 'Listener', localAddr: multiaddr('/ip4/198.51.100.1/tcp/4001'), sendBackAddr: multiaddr('/ip4/10.0.0.1/tcp/5000') }, remainingEstablished: 0 }
}

/** The relay's answer to one reservation request on a fresh connection: the handler command it queued. */
function reserve (behaviour: relay.Behaviour, peerId: PeerId, connectionId: ConnectionId): relay.FromBehaviour {
  behaviour.onConnectionHandlerEvent(peerId, connectionId, { type: 'ReservationReqReceived', request: new relay.HopRequest(fakeStream()), renewed: false })
  const [action] = drain(behaviour)
  if (action?.type !== 'NotifyHandler') throw new Error(`expected a handler command, got ${action?.type}`)
  expect(action.handler).to.equal(connectionId)
  return action.event
}

function statusOf (command: relay.FromBehaviour): string {
  if (command.type === 'AcceptReservationReq') return 'OK'
  if (command.type === 'DenyReservationReq' || command.type === 'DenyCircuitReq') return command.status
  return command.type
}

describe('circuit relay v2', () => {
  describe('messages', () => {
    it('encode and decode every hop and stop message', async () => {
      const peer = await newPeerId()
      const addrs = [multiaddr('/ip4/198.51.100.1/tcp/4001')]
      const hop: relay.HopMessage[] = [
        { type: 'RESERVE' },
        { type: 'CONNECT', peer: { id: peer, addrs } },
        { type: 'STATUS', status: 'OK', reservation: { expire: 1_900_000_000, addrs, voucher: new Uint8Array([1, 2, 3]) }, limit: { duration: 120_000, data: 131_072 } },
        { type: 'STATUS', status: 'NO_RESERVATION' }
      ]
      for (const message of hop) expect(relay.decodeHopMessage(relay.encodeHopMessage(message))).to.deep.equal(message)
      const stop: relay.StopMessage[] = [
        { type: 'CONNECT', peer: { id: peer, addrs: [] }, limit: { duration: 2_000 } },
        { type: 'STATUS', status: 'CONNECTION_FAILED' }
      ]
      for (const message of stop) expect(relay.decodeStopMessage(relay.encodeStopMessage(message))).to.deep.equal(message)
    })

    it('announce limits in whole seconds (never 0, which means none) and read 0 as no limit', () => {
      const encoded = relay.encodeHopMessage({ type: 'STATUS', status: 'OK', limit: { duration: 1_500, data: 10 } })
      expect(relay.decodeHopMessage(encoded)).to.deep.equal({ type: 'STATUS', status: 'OK', limit: { duration: 2_000, data: 10 } })
      const short = relay.encodeHopMessage({ type: 'STATUS', status: 'OK', limit: { duration: 10 } })
      expect(relay.decodeHopMessage(short)).to.deep.equal({ type: 'STATUS', status: 'OK', limit: { duration: 1_000 } })
      // Hand-made: Limit { duration: 0, data: 0 } inside a STATUS OK.
      const zero = Uint8Array.from([0x08, 0x02, 0x22, 0x04, 0x08, 0x00, 0x10, 0x00, 0x28, 0x64])
      expect(relay.decodeHopMessage(zero)).to.deep.equal({ type: 'STATUS', status: 'OK', limit: {} })
    })

    it('refuse what lacks a field its type needs, with MalformedMessageError', () => {
      const bad: Array<[string, Uint8Array]> = [
        ['no type', Uint8Array.from([0x28, 0x64])],
        ['unknown type', Uint8Array.from([0x08, 0x07])],
        ['CONNECT without a peer', Uint8Array.from([0x08, 0x01])],
        ['CONNECT with an invalid peer id', Uint8Array.from([0x08, 0x01, 0x12, 0x03, 0x0a, 0x01, 0x00])],
        ['STATUS without a status', Uint8Array.from([0x08, 0x02])],
        ['STATUS with an unknown status', Uint8Array.from([0x08, 0x02, 0x28, 0x05])],
        ['a reservation without expiry', Uint8Array.from([0x08, 0x02, 0x28, 0x64, 0x1a, 0x00])],
        ['not protobuf', Uint8Array.from([0xff, 0xff, 0xff])]
      ]
      for (const [what, bytes] of bad) expect(() => relay.decodeHopMessage(bytes), what).to.throw(relay.MalformedMessageError)
      expect(() => relay.decodeStopMessage(Uint8Array.from([0x08, 0x00]))).to.throw(relay.MalformedMessageError)
    })

    it('sign a voucher that opens to the relay, the peer and the expiry, and refuse a changed one', async () => {
      const key = await generateKeypair()
      const peer = await newPeerId()
      const bytes = await relay.signVoucher(key, { relay: peerIdOf(key), peer, expiration: 1_900_000_000 })
      const voucher = await relay.openVoucher(bytes)
      expect(voucher.relay.equals(peerIdOf(key))).to.equal(true)
      expect(voucher.peer.equals(peer)).to.equal(true)
      expect(voucher.expiration).to.equal(1_900_000_000)
      const changed = Uint8Array.from(bytes)
      changed[changed.length - 70] ^= 1
      let error: unknown
      try { await relay.openVoucher(changed) } catch (err) { error = err }
      expect(error).to.be.instanceOf(relay.InvalidVoucherError)
    })
  })

  describe('config', () => {
    it('has rust-libp2p\'s defaults', () => {
      expect(relay.defaultConfig).to.deep.include({
        maxReservations: 128,
        maxReservationsPerPeer: 4,
        reservationDuration: 3_600_000,
        maxCircuits: 16,
        maxCircuitsPerPeer: 4,
        maxCircuitDuration: 120_000,
        maxCircuitBytes: 131_072
      })
      expect(relay.defaultConfig.maxReservationsPerIp).to.equal(8)
      // rust-libp2p's relay::Config::default() rate limiters.
      expect(relay.defaultConfig).to.deep.include({
        reservationRatePerPeer: { limit: 30, interval: 120_000 },
        reservationRatePerIp: { limit: 60, interval: 60_000 },
        circuitSrcRatePerPeer: { limit: 30, interval: 120_000 },
        circuitSrcRatePerIp: { limit: 60, interval: 60_000 }
      })
    })

    it('keeps a default rate limiter left out, and turns one given as null off', async () => {
      const behaviour = new relay.Behaviour(await newPeerId(), { reservationRatePerIp: null, circuitSrcRatePerPeer: { limit: 2, interval: 500 } })
      expect(behaviour.config.reservationRatePerIp).to.equal(null)
      expect(behaviour.config.reservationRatePerPeer).to.deep.equal({ limit: 30, interval: 120_000 })
      expect(behaviour.config.circuitSrcRatePerPeer).to.deep.equal({ limit: 2, interval: 500 })
    })

    it('refuses invalid options with a ConfigError naming the field', async () => {
      const peer = await newPeerId()
      const bad: Array<[string, Partial<relay.Config>]> = [
        ['maxReservations', { maxReservations: -1 }],
        ['maxReservationsPerPeer', { maxReservationsPerPeer: 1.5 }],
        ['maxReservationsPerIp', { maxReservationsPerIp: Number.NaN }],
        ['maxCircuits', { maxCircuits: -3 }],
        ['maxCircuitsPerPeer', { maxCircuitsPerPeer: Infinity }],
        ['reservationDuration', { reservationDuration: 0 }],
        ['reservationDuration', { reservationDuration: 999 }],
        ['maxCircuitDuration', { maxCircuitDuration: 2 ** 40 }],
        ['maxCircuitBytes', { maxCircuitBytes: 0 }],
        ['streamTimeout', { streamTimeout: -5 }],
        ['reservationRatePerPeer.limit', { reservationRatePerPeer: { limit: 0, interval: 1_000 } }],
        ['reservationRatePerIp.limit', { reservationRatePerIp: { limit: 2.5, interval: 1_000 } }],
        ['circuitSrcRatePerPeer.interval', { circuitSrcRatePerPeer: { limit: 3, interval: 0 } }],
        ['circuitSrcRatePerIp.interval', { circuitSrcRatePerIp: { limit: 3, interval: 2 ** 40 } }],
        ['circuitSrcRatePerIp', { circuitSrcRatePerIp: 7 as never }]
      ]
      for (const [field, options] of bad) {
        expect(() => new relay.Behaviour(peer, options), field).to.throw(ConfigError).with.property('field', field)
      }
    })
  })

  describe('circuit addresses', () => {
    it('are taken apart, and only well-formed ones are dialed or listened on', async () => {
      const r = await newPeerId()
      const b = await newPeerId()
      const parsed = relay.client.parseCircuitAddress(multiaddr(`/ip4/198.51.100.1/tcp/4001/p2p/${r.toString()}/p2p-circuit/p2p/${b.toString()}`))
      expect(parsed.relayPeerId.equals(r)).to.equal(true)
      expect(parsed.dstPeerId?.equals(b)).to.equal(true)
      expect(parsed.relayAddr?.toString()).to.equal('/ip4/198.51.100.1/tcp/4001')
      expect(relay.client.parseCircuitAddress(multiaddr(`/p2p/${r.toString()}/p2p-circuit`)).relayAddr).to.equal(undefined)
      for (const bad of [
        '/ip4/198.51.100.1/tcp/4001',
        '/ip4/198.51.100.1/tcp/4001/p2p-circuit',
        `/p2p/${r.toString()}/p2p-circuit/p2p/${b.toString()}/p2p-circuit`,
        `/p2p/${r.toString()}/p2p-circuit/ip4/1.2.3.4`,
        `/p2p/${b.toString()}/ip4/1.2.3.4/p2p/${r.toString()}/p2p-circuit`
      ]) expect(() => relay.client.parseCircuitAddress(multiaddr(bad)), bad).to.throw(relay.client.InvalidCircuitAddressError)

      const { transport } = relay.client.create(b)
      const listenable = multiaddr(`/memory/7/p2p/${r.toString()}/p2p-circuit`)
      const dialable = listenable.encapsulate(`/p2p/${b.toString()}`)
      expect(transport.listenFilter([listenable, dialable, multiaddr('/memory/7')])).to.deep.equal([listenable])
      expect(transport.dialFilter([listenable, dialable, multiaddr('/memory/7')])).to.deep.equal([dialable])
      expect(isRelayedAddress(dialable)).to.equal(true)
      expect(isRelayedAddress(multiaddr('/memory/7'))).to.equal(false)
      expect(transportOf(dialable)).to.equal('p2p-circuit')
      // WebRTC: signalled through the relay but direct, and WebRTC Direct (not its udp part).
      expect(transportOf(dialable.encapsulate('/webrtc'))).to.equal('webrtc')
      expect(transportOf(multiaddr('/ip4/127.0.0.1/udp/1/webrtc-direct/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g'))).to.equal('webrtc-direct')
    })
  })

  describe('the relay\'s state machine', () => {
    it('accepts a reservation with our external addresses, each with our peer id', async () => {
      const key = await generateKeypair()
      const behaviour = new relay.Behaviour(key)
      const peer = await newPeerId()
      behaviour.onSwarmEvent({ type: 'ExternalAddrConfirmed', address: multiaddr('/ip4/198.51.100.1/tcp/4001') })
      const connection = newConnectionId()
      behaviour.onSwarmEvent(established(peer, connection, '10.0.0.1'))
      const command = reserve(behaviour, peer, connection)
      if (command.type !== 'AcceptReservationReq') throw new Error(`expected an acceptance, got ${command.type}`)
      expect(command.addrs.map(String)).to.deep.equal([`/ip4/198.51.100.1/tcp/4001/p2p/${peerIdOf(key).toString()}`])
      behaviour.onConnectionHandlerEvent(peer, connection, { type: 'ReservationReqAccepted', renewed: false })
      const [event] = drain(behaviour)
      expect(event).to.deep.equal({ type: 'GenerateEvent', event: { type: 'ReservationReqAccepted', srcPeerId: peer, renewed: false } })
      expect(behaviour.numReservations).to.equal(1)
    })

    it('holds at most maxReservationsPerPeer reservations of one peer; a renewal keeps its slot', async () => {
      const behaviour = new relay.Behaviour(await newPeerId())
      const peer = await newPeerId()
      const connections = Array.from({ length: 6 }, () => newConnectionId())
      connections.forEach((id, i) => { behaviour.onSwarmEvent(established(peer, id, `10.0.0.${i + 1}`)) })
      expect(connections.map(id => statusOf(reserve(behaviour, peer, id)))).to.deep.equal(['OK', 'OK', 'OK', 'OK', 'RESOURCE_LIMIT_EXCEEDED', 'RESOURCE_LIMIT_EXCEEDED'])
      expect(statusOf(reserve(behaviour, peer, connections[0])), 'renewal').to.equal('OK')
      expect(behaviour.numReservations).to.equal(4)
    })

    it('holds at most maxReservationsPerIp reservations from one IP address, of any peers', async () => {
      const behaviour = new relay.Behaviour(await newPeerId())
      const statuses: string[] = []
      for (let i = 0; i < 10; i++) {
        const peer = await newPeerId()
        const id = newConnectionId()
        behaviour.onSwarmEvent(established(peer, id, '10.9.9.9'))
        statuses.push(statusOf(reserve(behaviour, peer, id)))
      }
      expect(statuses).to.deep.equal([...Array(8).fill('OK'), 'RESOURCE_LIMIT_EXCEEDED', 'RESOURCE_LIMIT_EXCEEDED'])
      // Another address still gets one.
      const other = await newPeerId()
      const id = newConnectionId()
      behaviour.onSwarmEvent(established(other, id, '10.9.9.10'))
      expect(statusOf(reserve(behaviour, other, id))).to.equal('OK')
    })

    it('holds at most maxReservations in all, renewals included; a timed-out or closed one frees its slot', async () => {
      const behaviour = new relay.Behaviour(await newPeerId(), { maxReservations: 3 })
      const peers = await Promise.all(Array.from({ length: 5 }, newPeerId))
      const ids = peers.map(() => newConnectionId())
      peers.forEach((peer, i) => { behaviour.onSwarmEvent(established(peer, ids[i], `10.0.1.${i}`)) })
      expect(peers.slice(0, 4).map((peer, i) => statusOf(reserve(behaviour, peer, ids[i])))).to.deep.equal(['OK', 'OK', 'OK', 'RESERVATION_REFUSED'])
      expect(statusOf(reserve(behaviour, peers[1], ids[1])), 'renewal when full').to.equal('OK')

      behaviour.onConnectionHandlerEvent(peers[0], ids[0], { type: 'ReservationTimedOut' })
      expect(drain(behaviour)).to.deep.equal([{ type: 'GenerateEvent', event: { type: 'ReservationTimedOut', srcPeerId: peers[0] } }])
      expect(statusOf(reserve(behaviour, peers[3], ids[3]))).to.equal('OK')

      behaviour.onSwarmEvent(closed(peers[1], ids[1]))
      expect(drain(behaviour)).to.deep.equal([{ type: 'GenerateEvent', event: { type: 'ReservationClosed', srcPeerId: peers[1] } }])
      expect(statusOf(reserve(behaviour, peers[4], ids[4]))).to.equal('OK')
      expect(behaviour.numReservations).to.equal(3)
    })

    it('relays a circuit only to a peer with a reservation, through its connection', async () => {
      const behaviour = new relay.Behaviour(await newPeerId())
      const [src, dst] = await Promise.all([newPeerId(), newPeerId()])
      const [srcConn, dstConn] = [newConnectionId(), newConnectionId()]
      behaviour.onSwarmEvent(established(src, srcConn, '10.0.0.1'))
      behaviour.onSwarmEvent(established(dst, dstConn, '10.0.0.2'))

      const early = new relay.HopRequest(fakeStream(), dst)
      behaviour.onConnectionHandlerEvent(src, srcConn, { type: 'CircuitReqReceived', request: early, dstPeerId: dst })
      expect(drain(behaviour)).to.deep.equal([{ type: 'NotifyHandler', peerId: src, handler: srcConn, event: { type: 'DenyCircuitReq', request: early, status: 'NO_RESERVATION' } }])

      reserve(behaviour, dst, dstConn)
      const request = new relay.HopRequest(fakeStream(), dst)
      behaviour.onConnectionHandlerEvent(src, srcConn, { type: 'CircuitReqReceived', request, dstPeerId: dst })
      const [negotiate] = drain(behaviour)
      if (negotiate?.type !== 'NotifyHandler' || negotiate.event.type !== 'NegotiateOutboundConnect') throw new Error('expected a stop request to the destination')
      expect(negotiate.handler).to.equal(dstConn)
      const { circuitId } = negotiate.event
      expect(behaviour.numCircuits).to.equal(1)

      const dstStream = fakeStream()
      behaviour.onConnectionHandlerEvent(dst, dstConn, { type: 'OutboundConnectNegotiated', circuitId, srcPeerId: src, srcConnectionId: srcConn, request, dstStream })
      expect(drain(behaviour)).to.deep.equal([{ type: 'NotifyHandler', peerId: src, handler: srcConn, event: { type: 'AcceptAndDriveCircuit', circuitId, dstPeerId: dst, request, dstStream } }])
      behaviour.onConnectionHandlerEvent(src, srcConn, { type: 'CircuitReqAccepted', circuitId, dstPeerId: dst })
      behaviour.onConnectionHandlerEvent(src, srcConn, { type: 'CircuitClosed', circuitId, dstPeerId: dst })
      expect(drain(behaviour).map(a => a.type === 'GenerateEvent' ? a.event.type : a.type)).to.deep.equal(['CircuitReqAccepted', 'CircuitClosed'])
      expect(behaviour.numCircuits).to.equal(0)
    })

    it('holds at most maxCircuits circuits, and maxCircuitsPerPeer per source and per destination', async () => {
      const behaviour = new relay.Behaviour(await newPeerId(), { maxCircuits: 3, maxCircuitsPerPeer: 2 })
      const peers = await Promise.all(Array.from({ length: 6 }, newPeerId))
      const ids = peers.map(() => newConnectionId())
      peers.forEach((peer, i) => { behaviour.onSwarmEvent(established(peer, ids[i], `10.0.2.${i}`)) })
      for (let i = 3; i < 6; i++) reserve(behaviour, peers[i], ids[i])
      const ask = (src: number, dst: number): string => {
        behaviour.onConnectionHandlerEvent(peers[src], ids[src], { type: 'CircuitReqReceived', request: new relay.HopRequest(fakeStream(), peers[dst]), dstPeerId: peers[dst] })
        const [action] = drain(behaviour)
        if (action?.type !== 'NotifyHandler') throw new Error('expected a handler command')
        return action.event.type === 'NegotiateOutboundConnect' ? 'relayed' : statusOf(action.event)
      }
      expect(ask(0, 3)).to.equal('relayed')
      expect(ask(0, 4)).to.equal('relayed')
      expect(ask(0, 5), 'third from one source').to.equal('RESOURCE_LIMIT_EXCEEDED')
      expect(ask(1, 3)).to.equal('relayed')
      expect(ask(2, 3), 'third to one destination, and the fourth in all').to.equal('RESOURCE_LIMIT_EXCEEDED')
      expect(ask(2, 5), 'fourth in all').to.equal('RESOURCE_LIMIT_EXCEEDED')
      expect(behaviour.numCircuits).to.equal(3)
    })

    it('tells the source when the destination refuses or cannot be reached, and frees the slot', async () => {
      const behaviour = new relay.Behaviour(await newPeerId())
      const [src, dst] = await Promise.all([newPeerId(), newPeerId()])
      const [srcConn, dstConn] = [newConnectionId(), newConnectionId()]
      behaviour.onSwarmEvent(established(src, srcConn, '10.0.0.1'))
      behaviour.onSwarmEvent(established(dst, dstConn, '10.0.0.2'))
      reserve(behaviour, dst, dstConn)
      const request = new relay.HopRequest(fakeStream(), dst)
      behaviour.onConnectionHandlerEvent(src, srcConn, { type: 'CircuitReqReceived', request, dstPeerId: dst })
      const [negotiate] = drain(behaviour)
      if (negotiate?.type !== 'NotifyHandler' || negotiate.event.type !== 'NegotiateOutboundConnect') throw new Error('expected a stop request')
      const { circuitId } = negotiate.event
      behaviour.onConnectionHandlerEvent(dst, dstConn, { type: 'OutboundConnectNegotiationFailed', circuitId, srcPeerId: src, srcConnectionId: srcConn, request, status: 'CONNECTION_FAILED', error: new Error('refused') })
      expect(drain(behaviour)).to.deep.equal([{ type: 'NotifyHandler', peerId: src, handler: srcConn, event: { type: 'DenyCircuitReq', circuitId, request, status: 'CONNECTION_FAILED' } }])
      behaviour.onConnectionHandlerEvent(src, srcConn, { type: 'CircuitReqDenied', circuitId, dstPeerId: dst, status: 'CONNECTION_FAILED' })
      expect(drain(behaviour)).to.deep.equal([{ type: 'GenerateEvent', event: { type: 'CircuitReqDenied', srcPeerId: src, dstPeerId: dst, status: 'CONNECTION_FAILED' } }])
      expect(behaviour.numCircuits).to.equal(0)
    })

    it('ends the circuits of a closed connection: a pending one\'s stop stream is reset, an accepted one reported closed', async () => {
      const behaviour = new relay.Behaviour(await newPeerId())
      const [src, dst] = await Promise.all([newPeerId(), newPeerId()])
      const [srcConn, dstConn] = [newConnectionId(), newConnectionId()]
      behaviour.onSwarmEvent(established(src, srcConn, '10.0.0.1'))
      behaviour.onSwarmEvent(established(dst, dstConn, '10.0.0.2'))
      reserve(behaviour, dst, dstConn)
      const open = (): relay.CircuitId => {
        behaviour.onConnectionHandlerEvent(src, srcConn, { type: 'CircuitReqReceived', request: new relay.HopRequest(fakeStream(), dst), dstPeerId: dst })
        const [negotiate] = drain(behaviour)
        if (negotiate?.type !== 'NotifyHandler' || negotiate.event.type !== 'NegotiateOutboundConnect') throw new Error('expected a stop request')
        return negotiate.event.circuitId
      }
      const accepted = open()
      behaviour.onConnectionHandlerEvent(src, srcConn, { type: 'CircuitReqAccepted', circuitId: accepted, dstPeerId: dst })
      drain(behaviour)
      const pending = open()
      const stopStream = fakeStream()
      drain(behaviour)
      behaviour.onSwarmEvent(closed(src, srcConn))
      const events = drain(behaviour)
      expect(events).to.have.length(1)
      const [event] = events
      if (event.type !== 'GenerateEvent' || event.event.type !== 'CircuitClosed') throw new Error('expected CircuitClosed')
      expect(event.event.error).to.be.instanceOf(relay.CircuitIOError)
      // The destination's stop stream of the pending circuit arrives after its source left.
      behaviour.onConnectionHandlerEvent(dst, dstConn, { type: 'OutboundConnectNegotiated', circuitId: pending, srcPeerId: src, srcConnectionId: srcConn, request: new relay.HopRequest(fakeStream(), dst), dstStream: stopStream })
      expect(drain(behaviour)).to.deep.equal([])
      expect(stopStream.aborted).to.be.instanceOf(Error)
      expect(behaviour.numCircuits).to.equal(0)
    })

    it('serves nothing on relayed connections', async () => {
      const behaviour = new relay.Behaviour(await newPeerId())
      const handler = behaviour.handleEstablishedOutboundConnection({
        connectionId: newConnectionId(),
        peerId: await newPeerId(),
        address: multiaddr(`/memory/1/p2p/${(await newPeerId()).toString()}/p2p-circuit/p2p/${(await newPeerId()).toString()}`),
        roleOverride: 'Dialer'
      })
      expect(handler.listenProtocol().protocols).to.deep.equal([])
      const direct = behaviour.handleEstablishedOutboundConnection({ connectionId: newConnectionId(), peerId: await newPeerId(), address: multiaddr('/memory/1'), roleOverride: 'Dialer' })
      expect(direct.listenProtocol().protocols).to.deep.equal([relay.HOP_PROTOCOL])
    })
  })

  describe('the relay\'s rate limiters (fake clock)', () => {
    let clock: ReturnType<typeof FakeTimers.install>
    beforeEach(() => { clock = FakeTimers.install({ toFake: ['Date'], now: 1_000_000 }) })
    afterEach(() => { clock.uninstall() })

    it('a token bucket: a burst of limit, then one token per interval, partial intervals kept; full buckets forgotten', () => {
      const buckets = new TokenBuckets({ limit: 3, interval: 1_000 })
      const now = 0
      expect([1, 2, 3, 4].map(() => buckets.take('a', now))).to.deep.equal([true, true, true, false])
      expect(buckets.take('b', now), 'another key has its own bucket').to.equal(true)
      expect(buckets.take('a', now + 999), 'not before a whole interval').to.equal(false)
      expect(buckets.take('a', now + 1_000)).to.equal(true)
      expect(buckets.take('a', now + 1_000)).to.equal(false)
      // Half intervals add up: 1,500 then 2,000 ms give one token, not none.
      expect(buckets.take('a', now + 1_500)).to.equal(false)
      expect(buckets.take('a', now + 2_000)).to.equal(true)
      expect(buckets.has('a', now + 2_000)).to.equal(false)
      // b (2 of 3 left at 0) is full again at 1,000 and forgotten; a is held.
      expect(buckets.size).to.equal(1)
      // Refilled to the limit, a bucket is dropped; a later request starts a full one.
      expect(buckets.take('c', now + 10_000)).to.equal(true)
      expect(buckets.size, 'a full again and forgotten, c held').to.equal(1)
      expect([1, 2, 3, 4].map(() => buckets.take('a', now + 10_000))).to.deep.equal([true, true, true, false])
    })

    it('a reservation flood from one peer on one connection is refused by reservationRatePerPeer (30, then 1 per 2 min)', async () => {
      const behaviour = new relay.Behaviour(await newPeerId())
      const peer = await newPeerId()
      const id = newConnectionId()
      behaviour.onSwarmEvent(established(peer, id, '10.0.0.1'))
      const statuses: string[] = []
      const bounds: Array<string | undefined> = []
      for (let i = 0; i < 100; i++) {
        // The first is new, the others renewals: they pass the counts but still take tokens.
        const command = reserve(behaviour, peer, id)
        statuses.push(statusOf(command))
        bounds.push(command.type === 'DenyReservationReq' ? command.bound : undefined)
      }
      expect(statuses.filter(s => s === 'OK')).to.have.length(30)
      expect(statuses.slice(30)).to.deep.equal(Array(70).fill('RESOURCE_LIMIT_EXCEEDED'))
      expect(new Set(bounds.slice(30))).to.deep.equal(new Set(['reservationRatePerPeer']))
      expect(behaviour.numReservations, 'the one reservation is kept').to.equal(1)

      clock.tick(119_999)
      expect(statusOf(reserve(behaviour, peer, id)), 'not before 2 minutes').to.equal('RESOURCE_LIMIT_EXCEEDED')
      clock.tick(1)
      expect(statusOf(reserve(behaviour, peer, id)), 'one token after 2 minutes').to.equal('OK')
      expect(statusOf(reserve(behaviour, peer, id))).to.equal('RESOURCE_LIMIT_EXCEEDED')
      clock.tick(30 * 120_000)
      const refilled = Array.from({ length: 31 }, () => statusOf(reserve(behaviour, peer, id)))
      expect(refilled.filter(s => s === 'OK'), 'a full bucket after an hour').to.have.length(30)
      expect(refilled[30]).to.equal('RESOURCE_LIMIT_EXCEEDED')
    })

    it('a reservation flood from one IP address, many peers, is refused by reservationRatePerIp (60, then 1 a minute)', async () => {
      // Counts high enough that only the rate limit stands in the way.
      const behaviour = new relay.Behaviour(await newPeerId(), { maxReservations: 1_000, maxReservationsPerIp: 1_000 })
      const peers = await Promise.all(Array.from({ length: 70 }, newPeerId))
      const statuses = peers.map((peer) => {
        const id = newConnectionId()
        behaviour.onSwarmEvent(established(peer, id, '10.7.7.7'))
        const command = reserve(behaviour, peer, id)
        return command.type === 'DenyReservationReq' ? `${command.status} ${command.bound ?? ''}` : statusOf(command)
      })
      expect(statuses.slice(0, 60)).to.deep.equal(Array(60).fill('OK'))
      expect(statuses.slice(60)).to.deep.equal(Array(10).fill('RESOURCE_LIMIT_EXCEEDED reservationRatePerIp'))
      expect(behaviour.numReservations).to.equal(60)
      // Another IP address is not affected.
      const other = await newPeerId()
      const otherId = newConnectionId()
      behaviour.onSwarmEvent(established(other, otherId, '10.7.7.8'))
      expect(statusOf(reserve(behaviour, other, otherId))).to.equal('OK')
      // A refused peer took no token of its own (all or none): it gets in once the IP has one.
      const late = newConnectionId()
      behaviour.onSwarmEvent(established(peers[65], late, '10.7.7.7'))
      clock.tick(59_999)
      expect(statusOf(reserve(behaviour, peers[65], late))).to.equal('RESOURCE_LIMIT_EXCEEDED')
      clock.tick(1)
      expect(statusOf(reserve(behaviour, peers[65], late))).to.equal('OK')
      // The denial reaches the application with the bound that refused it.
      behaviour.onConnectionHandlerEvent(peers[66], late, { type: 'ReservationReqDenied', status: 'RESOURCE_LIMIT_EXCEEDED', bound: 'reservationRatePerIp' })
      expect(drain(behaviour)).to.deep.equal([{ type: 'GenerateEvent', event: { type: 'ReservationReqDenied', srcPeerId: peers[66], status: 'RESOURCE_LIMIT_EXCEEDED', bound: 'reservationRatePerIp' } }])
      // Hours later every bucket is full again and forgotten: the limiters hold nothing.
      clock.tick(3 * 3_600_000)
      reserve(behaviour, other, otherId)
      expect(behaviour.numRateLimitBuckets).to.equal(2)
    })

    it('circuit requests are limited per source peer and per source IP address', async () => {
      const behaviour = new relay.Behaviour(await newPeerId(), { maxCircuits: 1_000, maxCircuitsPerPeer: 1_000, circuitSrcRatePerIp: { limit: 40, interval: 60_000 } })
      const dst = await newPeerId()
      const dstConn = newConnectionId()
      behaviour.onSwarmEvent(established(dst, dstConn, '10.0.0.2'))
      reserve(behaviour, dst, dstConn)
      const ask = (src: PeerId, srcConn: ConnectionId): string => {
        behaviour.onConnectionHandlerEvent(src, srcConn, { type: 'CircuitReqReceived', request: new relay.HopRequest(fakeStream(), dst), dstPeerId: dst })
        const [action] = drain(behaviour)
        if (action?.type !== 'NotifyHandler') throw new Error('expected a handler command')
        if (action.event.type === 'NegotiateOutboundConnect') return 'relayed'
        return action.event.type === 'DenyCircuitReq' ? `${action.event.status} ${action.event.bound ?? ''}` : action.event.type
      }
      const src = await newPeerId()
      const srcConn = newConnectionId()
      behaviour.onSwarmEvent(established(src, srcConn, '10.0.0.3'))
      const fromOne = Array.from({ length: 35 }, () => ask(src, srcConn))
      expect(fromOne.slice(0, 30)).to.deep.equal(Array(30).fill('relayed'))
      expect(fromOne.slice(30)).to.deep.equal(Array(5).fill('RESOURCE_LIMIT_EXCEEDED circuitSrcRatePerPeer'))
      // Ten more peers from the same IP: 10 of the IP's 40 tokens are left.
      const others = await Promise.all(Array.from({ length: 12 }, newPeerId))
      const fromIp = others.map((peer) => {
        const id = newConnectionId()
        behaviour.onSwarmEvent(established(peer, id, '10.0.0.3'))
        return ask(peer, id)
      })
      expect(fromIp).to.deep.equal([...Array(10).fill('relayed'), 'RESOURCE_LIMIT_EXCEEDED circuitSrcRatePerIp', 'RESOURCE_LIMIT_EXCEEDED circuitSrcRatePerIp'])
      clock.tick(120_000)
      expect(ask(src, srcConn), 'refilled after 2 minutes').to.equal('relayed')
    })
  })

  describe('the client handler', () => {
    it('the handler renews at three quarters of the reservation\'s lifetime', async () => {
      // Real timers for the stream exchange, a fake clock from the relay's answer on.
      const relayPeerId = await newPeerId()
      const handler = new relay.client.Handler(relayPeerId, false)
      const { transport } = relay.client.create(await newPeerId())
      const listener = transport.createListener({ upgrader: {} as never })
      void listener.listen(multiaddr(`/memory/9/p2p/${relayPeerId.toString()}/p2p-circuit`)).catch(() => {})
      const [ours, theirs] = await streamPair()
      handler.onBehaviourEvent({ type: 'Reserve', sink: listener as unknown as relay.client.ReservationSink })
      const request = handler.poll(cx)
      if (request?.type !== 'OutboundSubstreamRequest') throw new Error('expected a hop stream request')
      handler.onConnectionEvent({ type: 'FullyNegotiatedOutbound', stream: ours, protocol: relay.HOP_PROTOCOL, info: request.protocol.info })
      expect(relay.decodeHopMessage(await readFrame(theirs, { maxSize: 4096 }))).to.deep.equal({ type: 'RESERVE' })
      const clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 1_000_000, shouldClearNativeTimers: true })
      try {
        await writeFrame(theirs, relay.encodeHopMessage({ type: 'STATUS', status: 'OK', reservation: { expire: 1_000 + 100, addrs: [] } }), { maxSize: 4096 })
        let accepted: ReturnType<typeof handler.poll>
        for (let i = 0; i < 100 && accepted == null; i++) {
          await clock.tickAsync(0)
          await new Promise(resolve => setImmediate(resolve))
          accepted = handler.poll(cx)
        }
        expect(accepted).to.deep.include({ type: 'NotifyBehaviour' })
        clock.tick(74_999)
        expect(handler.poll(cx), 'no renewal before 75 s').to.equal(undefined)
        clock.tick(1)
        const renewal = handler.poll(cx)
        if (renewal?.type !== 'OutboundSubstreamRequest') throw new Error('expected the renewal\'s hop stream')
        expect(renewal.protocol.info).to.deep.include({ kind: 'reserve', renewal: true })
        handler.close()
      } finally {
        clock.uninstall()
      }
    })
  })

  describe('the client: renewing and reserving again (fake clock)', () => {
    let clock: ReturnType<typeof FakeTimers.install>
    beforeEach(() => { clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 1_000_000 }) })
    afterEach(() => { clock.uninstall() })

    type ClientAction = NonNullable<ReturnType<relay.client.Behaviour['poll']>>
    function drainClient (behaviour: relay.client.Behaviour): ClientAction[] {
      const actions: ClientAction[] = []
      for (let action = behaviour.poll(cx); action !== undefined; action = behaviour.poll(cx)) actions.push(action)
      return actions
    }
    const kinds = (actions: ClientAction[]): string[] => actions.map(a => a.type === 'GenerateEvent' ? a.event.type : a.type)

    /** A client behaviour and its transport's listener on a relay, up to the dial of the relay. */
    async function listening (options: Partial<relay.client.Config>) {
      const local = await newPeerId()
      const relayPeerId = await newPeerId()
      const { transport, behaviour } = relay.client.create(local, options)
      const listener = transport.createListener({ upgrader: {} as never })
      const closedWith: unknown[] = []
      let listeningEvents = 0
      listener.addEventListener('close', (evt) => { closedWith.push((evt as CustomEvent).detail) })
      listener.addEventListener('listening', () => { listeningEvents++ })
      const relayAddr = multiaddr(`/memory/9/p2p/${relayPeerId.toString()}`)
      const listen = listener.listen(relayAddr.encapsulate('/p2p-circuit'))
      listen.catch(() => {})
      return { behaviour, listener, relayPeerId, relayAddr, listen, closedWith, listeningEvents: () => listeningEvents }
    }

    /** The relay connection `connectionId` comes up: its handler, and the listener whose reservation it was given. */
    function connect (behaviour: relay.client.Behaviour, relayPeerId: PeerId, relayAddr: Multiaddr, connectionId: ConnectionId) {
      behaviour.onSwarmEvent({ type: 'ConnectionEstablished', peerId: relayPeerId, connectionId, endpoint: { type: 'Dialer', address: relayAddr }, failedAddresses: [], otherEstablished: 0 })
      const handler = behaviour.handleEstablishedOutboundConnection({ connectionId, peerId: relayPeerId, address: relayAddr, roleOverride: 'Dialer' })
      return { handler, sink: sinkOf(handler) }
    }

    function sinkOf (handler: relay.client.Handler): relay.client.ReservationSink {
      const request = handler.poll(cx)
      if (request?.type !== 'OutboundSubstreamRequest') throw new Error(`expected a hop stream request, got ${request?.type}`)
      const info = request.protocol.info as { kind: string, sink: relay.client.ReservationSink }
      expect(info.kind).to.equal('reserve')
      return info.sink
    }

    function dialOf (actions: ClientAction[]): ConnectionId {
      const dial = actions.find(a => a.type === 'Dial')
      if (dial?.type !== 'Dial') throw new Error(`expected a dial of the relay, got ${kinds(actions).join(', ')}`)
      return dial.opts.connectionId as ConnectionId
    }

    /** The relay accepts: what the handler does (tell the listener, report). */
    function accept (behaviour: relay.client.Behaviour, relayPeerId: PeerId, connectionId: ConnectionId, sink: relay.client.ReservationSink, renewal = false): void {
      sink.onReservation([], renewal)
      behaviour.onConnectionHandlerEvent(relayPeerId, connectionId, { type: 'ReservationReqAccepted', sink, renewal })
    }

    function lose (behaviour: relay.client.Behaviour, relayPeerId: PeerId, relayAddr: Multiaddr, connectionId: ConnectionId, handler: relay.client.Handler): void {
      handler.close()
      behaviour.onSwarmEvent({ type: 'ConnectionClosed', peerId: relayPeerId, connectionId, endpoint: { type: 'Dialer', address: relayAddr }, remainingEstablished: 0 })
    }

    it('has bounded defaults and refuses invalid options naming the field', async () => {
      expect(relay.client.defaultConfig).to.deep.equal({ reReserveAttempts: 6, reReserveBackoff: 1_000, reReserveMaxBackoff: 30_000 })
      const peer = await newPeerId()
      for (const [field, options] of [
        ['reReserveAttempts', { reReserveAttempts: -1 }],
        ['reReserveAttempts', { reReserveAttempts: 1.5 }],
        ['reReserveBackoff', { reReserveBackoff: 0 }],
        ['reReserveMaxBackoff', { reReserveMaxBackoff: 2 ** 40 }],
        ['reReserveMaxBackoff', { reReserveBackoff: 5_000, reReserveMaxBackoff: 1_000 }]
      ] as const) expect(() => relay.client.create(peer, options), field).to.throw(ConfigError).with.property('field', field)
    })

    it('a reservation lost with its connection is made again after reReserveBackoff; the addresses come back', async () => {
      const { behaviour, listener, relayPeerId, relayAddr, listen, closedWith } = await listening({})
      const first = dialOf(drainClient(behaviour))
      const { handler, sink } = connect(behaviour, relayPeerId, relayAddr, first)
      accept(behaviour, relayPeerId, first, sink)
      await listen
      expect(kinds(drainClient(behaviour))).to.deep.equal(['ExternalAddrConfirmed', 'ReservationReqAccepted'])
      const addresses = listener.getAddrs().map(String)
      expect(addresses).to.have.length(1)

      lose(behaviour, relayPeerId, relayAddr, first, handler)
      const lost = drainClient(behaviour)
      expect(kinds(lost)).to.deep.equal(['ExternalAddrExpired', 'ReservationLost'])
      expect(listener.getAddrs(), 'no addresses while it is lost').to.deep.equal([])
      expect(closedWith, 'the listener stays open').to.deep.equal([])

      clock.tick(999)
      expect(drainClient(behaviour), 'not before reReserveBackoff').to.deep.equal([])
      clock.tick(1)
      const second = dialOf(drainClient(behaviour))
      expect(second).to.not.equal(first)
      const again = connect(behaviour, relayPeerId, relayAddr, second)
      expect(again.sink).to.equal(sink)
      accept(behaviour, relayPeerId, second, again.sink)
      expect(kinds(drainClient(behaviour))).to.deep.equal(['ExternalAddrConfirmed', 'ReservationReqAccepted'])
      expect(listener.getAddrs().map(String)).to.deep.equal(addresses)
      expect(clock.countTimers(), 'no retry left pending').to.equal(0)
      expect(closedWith).to.deep.equal([])
      again.handler.close()
    })

    it('failed attempts wait twice as long each time (up to reReserveMaxBackoff); after reReserveAttempts the listener closes', async () => {
      const { behaviour, relayPeerId, relayAddr, listen, closedWith } = await listening({ reReserveAttempts: 4, reReserveBackoff: 1_000, reReserveMaxBackoff: 3_000 })
      const first = dialOf(drainClient(behaviour))
      const { handler, sink } = connect(behaviour, relayPeerId, relayAddr, first)
      accept(behaviour, relayPeerId, first, sink)
      await listen
      drainClient(behaviour)
      lose(behaviour, relayPeerId, relayAddr, first, handler)
      drainClient(behaviour)

      // Attempt 1 after 1 s: the relay cannot be dialed.
      clock.tick(1_000)
      const dial1 = dialOf(drainClient(behaviour))
      behaviour.onSwarmEvent({ type: 'DialFailure', peerId: relayPeerId, connectionId: dial1, error: new Error('connection refused') as never })
      expect(drainClient(behaviour)).to.deep.equal([])
      // Attempt 2 after 2 s more: connected, but the relay refuses.
      clock.tick(1_999)
      expect(drainClient(behaviour)).to.deep.equal([])
      clock.tick(1)
      const dial2 = dialOf(drainClient(behaviour))
      const second = connect(behaviour, relayPeerId, relayAddr, dial2)
      behaviour.onConnectionHandlerEvent(relayPeerId, dial2, { type: 'ReservationFailed', sink: second.sink, error: new relay.client.ReserveError('ResourceLimitExceeded', 'refused') })
      // Attempt 3 after 3 s (4 capped at 3), on the connection we now have.
      clock.tick(2_999)
      expect(drainClient(behaviour)).to.deep.equal([])
      clock.tick(1)
      const notify = drainClient(behaviour)
      expect(notify).to.have.length(1)
      expect(notify[0]).to.deep.include({ type: 'NotifyHandler', handler: dial2 })
      behaviour.onConnectionHandlerEvent(relayPeerId, dial2, { type: 'ReservationFailed', sink: second.sink, error: new relay.client.ReserveError('Io', 'stream reset') })
      // Attempt 4 after 3 s: the connection closes before the answer.
      clock.tick(3_000)
      expect(kinds(drainClient(behaviour))).to.deep.equal(['NotifyHandler'])
      lose(behaviour, relayPeerId, relayAddr, dial2, second.handler)
      const gaveUp = drainClient(behaviour)
      expect(kinds(gaveUp)).to.deep.equal(['ReservationGaveUp'])
      const event = gaveUp[0]
      if (event.type !== 'GenerateEvent' || event.event.type !== 'ReservationGaveUp') throw new Error('unreachable')
      expect(event.event.attempts).to.equal(4)
      expect(event.event.error).to.be.instanceOf(relay.client.ReserveError).with.property('kind', 'RetriesExhausted')
      expect(event.event.error.code).to.equal('ERR_RELAY_RESERVE_RETRIES_EXHAUSTED')
      expect((event.event.error.cause as relay.client.ReserveError).kind).to.equal('ConnectionClosed')
      await clock.tickAsync(0)
      expect(closedWith).to.have.length(1)
      expect(closedWith[0]).to.equal(event.event.error)
      expect(clock.countTimers()).to.equal(0)
    })

    it('with reReserveAttempts 0 a lost reservation closes the listener at once (rust-libp2p\'s way)', async () => {
      const { behaviour, relayPeerId, relayAddr, listen, closedWith } = await listening({ reReserveAttempts: 0 })
      const first = dialOf(drainClient(behaviour))
      const { handler, sink } = connect(behaviour, relayPeerId, relayAddr, first)
      accept(behaviour, relayPeerId, first, sink)
      await listen
      drainClient(behaviour)
      lose(behaviour, relayPeerId, relayAddr, first, handler)
      expect(kinds(drainClient(behaviour))).to.deep.equal(['ExternalAddrExpired'])
      await clock.tickAsync(0)
      expect(closedWith).to.have.length(1)
      expect(closedWith[0]).to.be.instanceOf(relay.client.ReserveError).with.property('kind', 'ConnectionClosed')
      expect(clock.countTimers()).to.equal(0)
    })

    it('a refused first reservation is not retried, and a listener closed while waiting stops the retries', async () => {
      const refused = await listening({})
      const dial = dialOf(drainClient(refused.behaviour))
      const { sink } = connect(refused.behaviour, refused.relayPeerId, refused.relayAddr, dial)
      refused.behaviour.onConnectionHandlerEvent(refused.relayPeerId, dial, { type: 'ReservationFailed', sink, error: new relay.client.ReserveError('Refused', 'no') })
      let error: unknown
      try { await refused.listen } catch (err) { error = err }
      expect(error).to.be.instanceOf(relay.client.ReserveError).with.property('kind', 'Refused')
      expect(clock.countTimers()).to.equal(0)

      const waiting = await listening({})
      const first = dialOf(drainClient(waiting.behaviour))
      const connected = connect(waiting.behaviour, waiting.relayPeerId, waiting.relayAddr, first)
      accept(waiting.behaviour, waiting.relayPeerId, first, connected.sink)
      await waiting.listen
      drainClient(waiting.behaviour)
      lose(waiting.behaviour, waiting.relayPeerId, waiting.relayAddr, first, connected.handler)
      drainClient(waiting.behaviour)
      expect(clock.countTimers()).to.equal(1)
      await waiting.listener.close()
      drainClient(waiting.behaviour)
      expect(clock.countTimers(), 'the retry timer is cleared').to.equal(0)
      clock.tick(60_000)
      expect(drainClient(waiting.behaviour)).to.deep.equal([])
    })
  })

  describe('the relay\'s handler', () => {
    /** A handler of `behaviour` for a connection to `remote`, and a way to take what it reports. */
    function handlerOf (behaviour: relay.Behaviour, remote: PeerId): { handler: relay.Handler, next: () => Promise<relay.ToBehaviour> } {
      const handler = behaviour.handleEstablishedInboundConnection({ connectionId: newConnectionId(), peerId: remote, localAddr: multiaddr('/memory/1'), remoteAddr: multiaddr('/memory/2') })
      const next = async (): Promise<relay.ToBehaviour> => {
        for (let i = 0; i < 400; i++) {
          const event = handler.poll(cx)
          if (event?.type === 'NotifyBehaviour') return event.event
          await new Promise(resolve => setTimeout(resolve, 5))
        }
        throw new Error('the handler reported nothing')
      }
      return { handler, next }
    }

    it('answers a reservation with its expiry, limits and a signed voucher, and times it out', async () => {
      const key = await generateKeypair()
      const behaviour = new relay.Behaviour(key, { reservationDuration: 1_000, maxCircuitDuration: 5_000, maxCircuitBytes: 1_000 })
      const client = await generateKeypair()
      const { handler, next } = handlerOf(behaviour, peerIdOf(client))
      const [clientSide, relaySide] = await streamPair()
      handler.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: relaySide, protocol: relay.HOP_PROTOCOL, info: undefined })
      await writeFrame(clientSide, relay.encodeHopMessage({ type: 'RESERVE' }), { maxSize: 4096 })
      const received = await next()
      if (received.type !== 'ReservationReqReceived') throw new Error(`expected the request, got ${received.type}`)
      expect(received.renewed).to.equal(false)
      expect(handler.connectionKeepAlive(), 'while the request waits').to.equal(true)
      handler.onBehaviourEvent({ type: 'AcceptReservationReq', request: received.request, addrs: [multiaddr(`/ip4/198.51.100.1/tcp/1/p2p/${peerIdOf(key).toString()}`)] })
      const answer = relay.decodeHopMessage(await readFrame(clientSide, { maxSize: 4096 }))
      if (answer.type !== 'STATUS' || answer.reservation == null) throw new Error('expected a reservation')
      expect(answer.status).to.equal('OK')
      expect(answer.limit).to.deep.equal({ duration: 5_000, data: 1_000 })
      expect(answer.reservation.expire).to.be.within(Math.floor(Date.now() / 1000), Math.floor(Date.now() / 1000) + 1)
      expect(answer.reservation.addrs.map(String)).to.deep.equal([`/ip4/198.51.100.1/tcp/1/p2p/${peerIdOf(key).toString()}`])
      const voucher = await relay.openVoucher(answer.reservation.voucher ?? new Uint8Array())
      expect(voucher.relay.equals(peerIdOf(key)) && voucher.peer.equals(peerIdOf(client))).to.equal(true)
      expect(await next()).to.deep.equal({ type: 'ReservationReqAccepted', renewed: false })
      expect(handler.hasReservation && handler.connectionKeepAlive()).to.equal(true)
      expect(await next()).to.deep.equal({ type: 'ReservationTimedOut' })
      expect(handler.hasReservation).to.equal(false)
      handler.close()
    })

    it('answers MALFORMED_MESSAGE to what it cannot read, and resets hop streams beyond its limit', async () => {
      const behaviour = new relay.Behaviour(await newPeerId())
      const { handler } = handlerOf(behaviour, await newPeerId())
      const [clientSide, relaySide] = await streamPair()
      handler.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: relaySide, protocol: relay.HOP_PROTOCOL, info: undefined })
      await writeFrame(clientSide, Uint8Array.from([0x08, 0x09]), { maxSize: 4096 })
      const answer = relay.decodeHopMessage(await readFrame(clientSide, { maxSize: 4096 }))
      expect(answer).to.deep.equal({ type: 'STATUS', status: 'MALFORMED_MESSAGE' })

      // A frame over the message size is refused before it is buffered.
      const [bigClient, bigRelay] = await streamPair()
      handler.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: bigRelay, protocol: relay.HOP_PROTOCOL, info: undefined })
      bigClient.send(Uint8Array.from([0x88, 0x27]))
      expect(relay.decodeHopMessage(await readFrame(bigClient, { maxSize: 4096 }))).to.deep.equal({ type: 'STATUS', status: 'MALFORMED_MESSAGE' })

      const pairs = await Promise.all(Array.from({ length: relay.MAX_PENDING_STREAMS + 1 }, async () => streamPair()))
      for (const [, relayEnd] of pairs) handler.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: relayEnd, protocol: relay.HOP_PROTOCOL, info: undefined })
      expect(pairs.map(([, relayEnd]) => relayEnd.status)).to.deep.equal([...Array(relay.MAX_PENDING_STREAMS).fill('open'), 'aborted'])
      handler.close()
      expect(pairs.every(([, relayEnd]) => relayEnd.status === 'aborted'), 'closing resets the waiting ones').to.equal(true)
    })

    it('resets a hop stream whose request does not come within streamTimeout', async () => {
      const behaviour = new relay.Behaviour(await newPeerId(), { streamTimeout: 50 })
      const { handler } = handlerOf(behaviour, await newPeerId())
      const [, relaySide] = await streamPair()
      handler.onConnectionEvent({ type: 'FullyNegotiatedInbound', stream: relaySide, protocol: relay.HOP_PROTOCOL, info: undefined })
      await new Promise(resolve => setTimeout(resolve, 150))
      expect(relaySide.status).to.equal('aborted')
      expect(handler.connectionKeepAlive()).to.equal(false)
      handler.close()
    })
  })

  describe('the splice', () => {
    async function circuit (limits: { maxBytes: number, maxDuration: number }): Promise<{ src: Stream, dst: Stream, done: Promise<void> }> {
      const [src, relaySrc] = await streamPair()
      const [relayDst, dst] = await streamPair()
      return { src, dst, done: splice(relaySrc, relayDst, limits).done }
    }

    async function read (stream: Stream, bytes: number): Promise<number> {
      let got = 0
      await new Promise<void>((resolve, reject) => {
        stream.addEventListener('message', (evt) => { got += evt.data.byteLength; if (got >= bytes) resolve() })
        stream.addEventListener('close', (evt) => { if (evt.error != null) reject(evt.error) })
      })
      return got
    }

    it('relays both ways and ends cleanly when both sides close', async () => {
      const { src, dst, done } = await circuit({ maxBytes: 10_000, maxDuration: 10_000 })
      const atDst = read(dst, 300)
      src.send(new Uint8Array(300))
      expect(await atDst).to.equal(300)
      const atSrc = read(src, 200)
      dst.send(new Uint8Array(200))
      expect(await atSrc).to.equal(200)
      await Promise.all([src.close(), dst.close()])
      await done
    })

    it('resets both streams when the data limit would be passed, both directions counted', async () => {
      const { src, dst, done } = await circuit({ maxBytes: 1_000, maxDuration: 10_000 })
      const atDst = read(dst, 600)
      src.send(new Uint8Array(600))
      await atDst
      dst.send(new Uint8Array(600))
      let error: unknown
      try { await done } catch (err) { error = err }
      expect(error).to.be.instanceOf(relay.CircuitLimitError).with.property('kind', 'Data')
      await new Promise(resolve => setTimeout(resolve, 20))
      expect([src.status, dst.status]).to.deep.equal(['reset', 'reset'])
    })

    it('resets both streams at the duration limit', async () => {
      const { src, dst, done } = await circuit({ maxBytes: 1_000, maxDuration: 50 })
      let error: unknown
      try { await done } catch (err) { error = err }
      expect(error).to.be.instanceOf(relay.CircuitLimitError).with.property('kind', 'Duration')
      await new Promise(resolve => setTimeout(resolve, 20))
      expect([src.status, dst.status]).to.deep.equal(['reset', 'reset'])
    })
  })

  describe('swarms over the memory transport', function () {
    this.timeout(20_000)

    type Client = Awaited<ReturnType<typeof newClient>>
    async function newClient () {
      return SwarmBuilder.withNewIdentity().withMemoryTransport().withRelayClient()
        .withBehaviour((_key, relayClient) => combine({ relayClient, ping: new ping.Behaviour({ interval: 100 }) }))
        .build()
    }
    async function newRelay (options: Partial<relay.Config> = {}) {
      return newSwarm(key => new relay.Behaviour(key, options))
    }

    let swarms: Array<Swarm<any>> = []
    afterEach(async () => {
      await Promise.all(swarms.map(async s => { await s.close() }))
      swarms = []
    })

    /** A relay listening on memory with that address confirmed, and its circuit address. */
    async function relayAt (options: Partial<relay.Config> = {}) {
      const r = await newRelay(options)
      swarms.push(r)
      const address = await listen(r)
      r.addExternalAddress(address)
      return { r, circuit: multiaddr(`${address.toString()}/p2p/${r.localPeerId.toString()}/p2p-circuit`) }
    }

    function clientEvent (type: string) {
      return (e: SwarmEvent<unknown>) => e.type === 'Behaviour' && (e.event as { behaviour: string, event: { type: string } }).behaviour === 'relayClient' &&
        (e.event as { event: { type: string } }).event.type === type
    }

    async function reserved (b: Client, r: Swarm<relay.Behaviour>, circuit: Multiaddr): Promise<Multiaddr> {
      b.listenOn(circuit)
      await waitFor(b, clientEvent('ReservationReqAccepted'), { drive: [r] })
      const event = await waitFor(b, e => e.type === 'NewListenAddr', { drive: [r] })
      if (event.type !== 'NewListenAddr') throw new Error('unreachable')
      return event.address
    }

    it('reserve, dial through the relay, ping: limited connections and every event on each side', async () => {
      const { r, circuit } = await relayAt()
      const [a, b] = [await newClient(), await newClient()]
      swarms.push(a, b)
      const address = await reserved(b, r, circuit)
      expect(address.toString()).to.equal(`${circuit.toString()}/p2p/${b.localPeerId.toString()}`)
      expect(b.externalAddresses().map(String)).to.include(address.toString())
      await waitFor(r, e => e.type === 'Behaviour' && e.event.type === 'ReservationReqAccepted')

      a.dial(address)
      const onA = await waitFor(a, e => e.type === 'ConnectionEstablished' && e.peerId.equals(b.localPeerId), { drive: [r, b] })
      const onB = await waitFor(b, e => e.type === 'ConnectionEstablished' && e.peerId.equals(a.localPeerId), { drive: [r, a] })
      if (onA.type !== 'ConnectionEstablished' || onB.type !== 'ConnectionEstablished') throw new Error('unreachable')
      expect(onA.endpoint).to.deep.include({ type: 'Dialer', limited: true })
      expect(onB.endpoint).to.deep.include({ type: 'Listener', limited: true })
      expect(a.connections().find(c => c.peerId.equals(b.localPeerId))?.transport).to.equal('p2p-circuit')
      await waitFor(a, clientEvent('OutboundCircuitEstablished'), { drive: [r, b] })
      await waitFor(b, clientEvent('InboundCircuitEstablished'), { drive: [r, a] })
      await waitFor(r, e => e.type === 'Behaviour' && e.event.type === 'CircuitReqAccepted' && e.event.srcPeerId.equals(a.localPeerId) && e.event.dstPeerId.equals(b.localPeerId), { drive: [a, b] })
      for (const [from, to, others] of [[a, b, [r, b]], [b, a, [r, a]]] as const) {
        await waitFor(from, e => e.type === 'Behaviour' && (e.event as { behaviour: string }).behaviour === 'ping' &&
          (e.event as { event: ping.Event }).event.type === 'Success' && (e.event as { event: ping.Event }).event.peerId.equals(to.localPeerId), { drive: others })
      }
    })

    it('a dial to a peer without a reservation fails with ConnectError NoReservation', async () => {
      const { r, circuit } = await relayAt()
      const a = await newClient()
      swarms.push(a)
      const nobody = await newPeerId()
      a.dial(circuit.encapsulate(`/p2p/${nobody.toString()}`))
      const failed = await waitFor(a, e => e.type === 'OutgoingConnectionError', { drive: [r] })
      if (failed.type !== 'OutgoingConnectionError' || !(failed.error instanceof DialTransportError)) throw new Error('expected a transport error')
      expect(failed.error.errors[0].error).to.be.instanceOf(relay.client.ConnectError).with.property('kind', 'NoReservation')
      const denied = await waitFor(r, e => e.type === 'Behaviour' && e.event.type === 'CircuitReqDenied', { drive: [a] })
      expect(denied.type === 'Behaviour' && denied.event.type === 'CircuitReqDenied' && denied.event.status).to.equal('NO_RESERVATION')
    })

    it('renews the reservation before it expires', async () => {
      const { r, circuit } = await relayAt({ reservationDuration: 2_000 })
      const b = await newClient()
      swarms.push(b)
      await reserved(b, r, circuit)
      const renewal = await waitFor(b, e => clientEvent('ReservationReqAccepted')(e) && (e as { event: { event: { renewal: boolean } } }).event.event.renewal, { drive: [r], timeout: 5_000 })
      expect(renewal.type).to.equal('Behaviour')
      await waitFor(r, e => e.type === 'Behaviour' && e.event.type === 'ReservationReqAccepted' && e.event.renewed)
      expect(r.behaviour.numReservations).to.equal(1)
    })

    it('a refused reservation closes the listener with a ReserveError', async () => {
      const { r, circuit } = await relayAt({ maxReservations: 0 })
      const b = await newClient()
      swarms.push(b)
      b.listenOn(circuit)
      const closedEvent = await waitFor(b, e => e.type === 'ListenerClosed', { drive: [r] })
      if (closedEvent.type !== 'ListenerClosed') throw new Error('unreachable')
      expect(closedEvent.reason).to.be.instanceOf(relay.client.ReserveError).with.property('kind', 'Refused')
    })

    it('losing the connection to the relay: the address is withdrawn, the client reserves again and is reachable again', async () => {
      const { r, circuit } = await relayAt()
      const [a, b] = [await newClient(), await newClient()]
      swarms.push(a, b)
      const address = await reserved(b, r, circuit)
      b.disconnectPeerId(r.localPeerId)
      await waitFor(b, clientEvent('ReservationLost'), { drive: [r] })
      await waitFor(b, e => e.type === 'ExpiredListenAddr' && e.address.equals(address), { drive: [r] })
      await waitFor(b, e => e.type === 'ExternalAddrExpired' && e.address.equals(address), { drive: [r] })
      // About reReserveBackoff (1 s) later: dialed again, reserved again, same address.
      await waitFor(b, clientEvent('ReservationReqAccepted'), { drive: [r], timeout: 5_000 })
      await waitFor(b, e => e.type === 'NewListenAddr' && e.address.equals(address), { drive: [r] })
      expect(b.externalAddresses().map(String)).to.include(address.toString())
      expect(b.listeners().map(String)).to.deep.equal([address.toString()])
      a.dial(address)
      await waitFor(a, e => e.type === 'ConnectionEstablished' && e.peerId.equals(b.localPeerId), { drive: [r, b] })
    })

    it('a relay gone for good: after reReserveAttempts the listener closes with ReserveError RetriesExhausted', async () => {
      const { r, circuit } = await relayAt()
      const key = await generateKeypair()
      const client = relay.client.create(peerIdOf(key), { reReserveAttempts: 2, reReserveBackoff: 50, reReserveMaxBackoff: 100 })
      const b = await SwarmBuilder.withExistingIdentity(key).withTransport(() => client.transport).withMemoryTransport()
        .withBehaviour(() => combine({ relayClient: client.behaviour })).build()
      swarms.push(b)
      b.listenOn(circuit)
      await waitFor(b, clientEvent('ReservationReqAccepted'), { drive: [r] })
      await r.close()
      await waitFor(b, clientEvent('ReservationLost'))
      const gaveUp = await waitFor(b, clientEvent('ReservationGaveUp'), { timeout: 5_000 })
      expect((gaveUp as { event: { event: { attempts: number } } }).event.event.attempts).to.equal(2)
      const closedEvent = await waitFor(b, e => e.type === 'ListenerClosed')
      if (closedEvent.type !== 'ListenerClosed') throw new Error('unreachable')
      expect(closedEvent.reason).to.be.instanceOf(relay.client.ReserveError).with.property('kind', 'RetriesExhausted')
      expect((closedEvent.reason as relay.client.ReserveError).cause).to.be.instanceOf(relay.client.ReserveError).with.property('kind', 'DialFailure')
    })

    it('closing the listener stops renewing, and the relay lets the connection go', async () => {
      const { r, circuit } = await relayAt({ reservationDuration: 2_000 })
      const b = await newClient()
      swarms.push(b)
      const id = b.listenOn(circuit)
      await waitFor(b, clientEvent('ReservationReqAccepted'), { drive: [r] })
      b.removeListener(id)
      await waitFor(b, e => e.type === 'ListenerClosed', { drive: [r] })
      await waitFor(r, e => e.type === 'Behaviour' && e.event.type === 'ReservationTimedOut', { drive: [b], timeout: 5_000 })
    })
  })
})
