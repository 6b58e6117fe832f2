/**
 * Circuit relay v2 without sockets: the messages and the voucher, the config, the relay's state
 * machine and every one of its limits (driven directly), its handler and the splice over
 * in-memory stream pairs, and the whole flow (reserve, dial through, ping, renew, lose the
 * relay) between swarms over the memory transport.
 */
import { streamPair } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'
import {
  ConfigError, DialTransportError, SwarmBuilder, combine, generateKeypair, isRelayedAddress, newConnectionId, peerIdOf, ping, relay, transportOf
} from '../../src/index.js'
import { readFrame, writeFrame } from '../../src/behaviour/framing.js'
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
        ['streamTimeout', { streamTimeout: -5 }]
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

    it('losing the relay closes the listener with ReserveError ConnectionClosed and withdraws the address', async () => {
      const { r, circuit } = await relayAt()
      const b = await newClient()
      swarms.push(b)
      const address = await reserved(b, r, circuit)
      b.disconnectPeerId(r.localPeerId)
      const closedEvent = await waitFor(b, e => e.type === 'ListenerClosed', { drive: [r] })
      if (closedEvent.type !== 'ListenerClosed') throw new Error('unreachable')
      expect(closedEvent.reason).to.be.instanceOf(relay.client.ReserveError).with.property('kind', 'ConnectionClosed')
      expect(closedEvent.addresses.map(String)).to.deep.equal([address.toString()])
      await waitFor(b, e => e.type === 'ExternalAddrExpired' && e.address.equals(address))
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
