/**
 * Property tests (fast-check) on every decoder that reads bytes from the network: random bytes
 * and mutations of valid messages (bytes flipped, inserted, deleted, truncated). Each decoder
 * either returns a value or throws its own typed error; nothing else escapes, and nothing
 * decodes to more than its limits allow.
 *
 * `npm test` runs FUZZ_RUNS inputs per property (default 300); `npm run fuzz` runs 100,000.
 */
import { expect } from 'chai'
import fc from 'fast-check'
import { multiaddr } from '@multiformats/multiaddr'
import { ConfigError, generateKeypair, gossipsub, peerIdOf } from '../../src/index.js'
import { encodeFrame, FrameDecoder, FrameTooLargeError } from '../../src/behaviour/framing.js'
import { decodeRpc, encodeRpc, InvalidRpcError } from '../../src/protocols/pubsub/rpc.js'
import { buildQuery, buildResponses, MalformedPacketError, parsePacket } from '../../src/protocols/mdns/packet.js'
import { decodeInfo, encodeInfo, InvalidIdentifyError } from '../../src/protocols/identify/message.js'
import { InvalidPeerRecordError, openExchangedPeer, signPeerRecord } from '../../src/protocols/gossipsub/peer-exchange.js'
import { decodeMessage as decodeKadMessage, encodeMessage as encodeKadMessage, InvalidMessageError as InvalidKadMessageError } from '../../src/protocols/kad/message.js'
import * as relayMessage from '../../src/protocols/relay/message.js'
import * as autonatMessage from '../../src/protocols/autonat/v2/message.js'
import * as webrtcMessage from '../../src/transport/webrtc/message.js'
import * as webrtcSignaling from '../../src/transport/webrtc/signaling.js'
import * as dcutrMessage from '../../src/protocols/dcutr/message.js'
import { Harness } from '../fixtures/gossipsub-harness.js'
import type { Rpc } from '../../src/protocols/pubsub/rpc.js'

const RUNS = Number(process.env.FUZZ_RUNS ?? 300)
const SERVICE = '_p2p._udp.local'

/** Bytes of `seed` changed by a few random edits. */
function mutations (seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  const edit = fc.record({ kind: fc.constantFrom('flip', 'insert', 'delete', 'truncate', 'set'), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) })
  return fc.tuple(fc.constantFrom(...seeds), fc.array(edit, { minLength: 1, maxLength: 8 })).map(([seed, edits]) => {
    let bytes = Array.from(seed)
    for (const { kind, at, byte } of edits) {
      const i = bytes.length === 0 ? 0 : at % bytes.length
      if (kind === 'flip') bytes[i] ^= 1 << (byte % 8)
      else if (kind === 'set') bytes[i] = byte
      else if (kind === 'insert') bytes.splice(i, 0, byte)
      else if (kind === 'delete') bytes.splice(i, 1)
      else bytes = bytes.slice(0, i)
    }
    return Uint8Array.from(bytes)
  })
}

/** Random bytes, and mutations of the valid `seeds`. */
function inputs (seeds: readonly Uint8Array[], maxLength = 1024): fc.Arbitrary<Uint8Array> {
  return fc.oneof(fc.uint8Array({ maxLength }), mutations(seeds))
}

/** `fn()` returns, or throws an instance of `type`; anything else fails the property. */
function returnsOrThrows (type: new (...args: never[]) => Error, fn: () => unknown): void {
  try {
    fn()
  } catch (err) {
    if (!(err instanceof type)) throw new Error(`expected a ${type.name}, got ${String(err)}`, { cause: err })
  }
}

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

describe(`fuzzing the decoders (${RUNS} inputs per property)`, function () {
  this.timeout(RUNS > 1000 ? 0 : 60_000)

  describe('pubsub RPC', () => {
    const seeds: Uint8Array[] = [
      encodeRpc({ subscriptions: [{ subscribe: true, topicid: 'a' }, { subscribe: false, topicid: 'b' }] }),
      encodeRpc({ publish: [{ from: bytes('peer'), data: bytes('hello'), seqno: new Uint8Array(8), topic: 't', signature: new Uint8Array(64), key: new Uint8Array(36) }] }),
      encodeRpc({
        control: {
          ihave: [{ topicID: 't', messageIDs: [bytes('id1'), bytes('id2')] }],
          iwant: [{ messageIDs: [bytes('id3')] }],
          graft: [{ topicID: 't' }],
          prune: [{ topicID: 't', peers: [{ peerID: bytes('p'), signedPeerRecord: bytes('r') }], backoff: 60 }],
          idontwant: [{ messageIDs: [bytes('id4')] }]
        }
      })
    ]

    it('decodes or throws InvalidRpcError', () => {
      fc.assert(fc.property(inputs(seeds), (input) => { returnsOrThrows(InvalidRpcError, () => decodeRpc(input)) }), { numRuns: RUNS })
    })

    it('reads every frame back from any split of a stream of frames, and refuses oversized ones', () => {
      const frames = fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 1, maxLength: 8 })
      fc.assert(fc.property(frames, fc.array(fc.nat(), { maxLength: 6 }), (payloads, cuts) => {
        const stream = Uint8Array.from(payloads.flatMap(p => Array.from(encodeFrame(p))))
        const points = [...new Set(cuts.map(c => c % (stream.byteLength + 1)))].sort((a, b) => a - b)
        const decoder = new FrameDecoder(300)
        const got: number[][] = []
        let from = 0
        for (const to of [...points, stream.byteLength]) {
          for (const frame of decoder.decode(stream.subarray(from, to))) got.push(Array.from(frame))
          from = to
        }
        expect(got).to.deep.equal(payloads.map(p => Array.from(p)))
      }), { numRuns: RUNS })
      fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (input) => {
        returnsOrThrows(FrameTooLargeError, () => {
          for (const frame of new FrameDecoder(16).decode(input)) expect(frame.byteLength).to.be.at.most(16)
        })
      }), { numRuns: RUNS })
    })

    it('a GossipSub behaviour takes any decodable RPC from a peer without throwing, and stays bounded', async () => {
      const h = Harness.create({ maxTopicsPerPeer: 64 })
      try {
        h.behaviour.subscribe('t')
        const [peer] = await h.connectMany(1, { topics: ['t'] })
        const id = fc.uint8Array({ maxLength: 40 })
        const topic = fc.oneof(fc.constant('t'), fc.string({ maxLength: 12 }))
        const rpc: fc.Arbitrary<Rpc> = fc.record({
          subscriptions: fc.array(fc.record({ subscribe: fc.boolean(), topicid: topic }, { requiredKeys: [] }), { maxLength: 4 }),
          publish: fc.array(fc.record({ from: fc.uint8Array({ maxLength: 40 }), data: fc.uint8Array({ maxLength: 64 }), seqno: fc.uint8Array({ maxLength: 10 }), topic, signature: fc.uint8Array({ maxLength: 70 }), key: fc.uint8Array({ maxLength: 40 }) }, { requiredKeys: [] }), { maxLength: 3 }),
          control: fc.record({
            ihave: fc.array(fc.record({ topicID: topic, messageIDs: fc.array(id, { maxLength: 8 }) }, { requiredKeys: [] }), { maxLength: 3 }),
            iwant: fc.array(fc.record({ messageIDs: fc.array(id, { maxLength: 8 }) }, { requiredKeys: [] }), { maxLength: 3 }),
            graft: fc.array(fc.record({ topicID: topic }, { requiredKeys: [] }), { maxLength: 3 }),
            prune: fc.array(fc.record({ topicID: topic, backoff: fc.nat(), peers: fc.array(fc.record({ peerID: id, signedPeerRecord: id }, { requiredKeys: [] }), { maxLength: 2 }) }, { requiredKeys: [] }), { maxLength: 2 }),
            idontwant: fc.array(fc.record({ messageIDs: fc.array(id, { maxLength: 8 }) }, { requiredKeys: [] }), { maxLength: 2 })
          }, { requiredKeys: [] })
        }, { requiredKeys: [] })
        fc.assert(fc.property(rpc, (r) => {
          // Through the codec, as from the wire.
          h.inject(peer, decodeRpc(encodeRpc(r)))
          h.clearSent()
        }), { numRuns: RUNS })
        expect(h.behaviour.allPeers().find(p => p.peerId.equals(peer.peerId))?.topics.length ?? 0).to.be.at.most(64)
      } finally {
        h.close()
      }
    })
  })

  describe('mDNS packets', () => {
    it('parse or throw MalformedPacketError', async () => {
      const key = await generateKeypair()
      const seeds = [
        buildQuery(SERVICE, 7),
        ...buildResponses({ serviceName: SERVICE, peerName: 'abcdef', peerId: peerIdOf(key), addresses: [multiaddr('/ip4/127.0.0.1/tcp/4001'), multiaddr('/ip6/::1/tcp/4001')], ttl: 120, hostAddress: { family: 4, address: '127.0.0.1' } })
      ]
      fc.assert(fc.property(inputs(seeds, 1500), (input) => {
        returnsOrThrows(MalformedPacketError, () => {
          const packet = parsePacket(input, SERVICE, 4)
          if (packet.type === 'Response') for (const peer of packet.peers) expect(peer.addresses.length).to.be.at.most(4)
        })
      }), { numRuns: RUNS })
    })
  })

  describe('identify messages', () => {
    it('decode or throw InvalidIdentifyError', async () => {
      const key = await generateKeypair()
      const seed = encodeInfo({
        publicKey: key.publicKey,
        protocolVersion: 'ipfs/0.1.0',
        agentVersion: 'peerswarm/0.1.0',
        listenAddrs: [multiaddr('/ip4/127.0.0.1/tcp/4001')],
        protocols: ['/ipfs/ping/1.0.0', '/meshsub/1.2.0'],
        observedAddr: multiaddr('/ip4/127.0.0.1/tcp/5555')
      })
      fc.assert(fc.property(inputs([seed]), (input) => { returnsOrThrows(InvalidIdentifyError, () => decodeInfo(input, peerIdOf(key))) }), { numRuns: RUNS })
    })
  })

  describe('PX entries and signed peer records', () => {
    it('open or reject with InvalidPeerRecordError', async () => {
      const key = await generateKeypair()
      const record = await signPeerRecord(key, [multiaddr('/ip4/127.0.0.1/tcp/4001')])
      const peerID = peerIdOf(key).toMultihash().bytes
      await fc.assert(fc.asyncProperty(inputs([record]), inputs([peerID], 64), fc.boolean(), async (signedPeerRecord, id, withRecord) => {
        try {
          await openExchangedPeer({ peerID: id, ...(withRecord ? { signedPeerRecord } : {}) })
        } catch (err) {
          if (!(err instanceof InvalidPeerRecordError)) throw new Error(`expected an InvalidPeerRecordError, got ${String(err)}`, { cause: err })
        }
      }), { numRuns: RUNS })
    })
  })

  describe('Kademlia messages', () => {
    it('decode or throw InvalidMessageError, and stay within their bounds', async () => {
      const key = await generateKeypair()
      const peer = { id: peerIdOf(key), addrs: [multiaddr('/ip4/127.0.0.1/tcp/4001'), multiaddr('/ip6/::1/tcp/4001')], connection: 'CONNECTED' as const }
      const seeds = [
        encodeKadMessage({ type: 'FIND_NODE', key: bytes('key'), closerPeers: [peer, peer], providerPeers: [], clusterLevelRaw: 9 }),
        encodeKadMessage({ type: 'PUT_VALUE', key: bytes('/v/k'), record: { key: bytes('/v/k'), value: bytes('value'), timeReceived: '2026-12-06T07:10:00.123000000Z', publisher: peer.id.toMultihash().bytes, ttl: 60 }, closerPeers: [], providerPeers: [] }),
        encodeKadMessage({ type: 'GET_PROVIDERS', key: bytes('k'), closerPeers: [peer], providerPeers: [peer] })
      ]
      fc.assert(fc.property(inputs(seeds), (input) => {
        returnsOrThrows(InvalidKadMessageError, () => {
          const message = decodeKadMessage(input, { maxPeers: 4, maxAddressesPerPeer: 2 })
          for (const p of [...message.closerPeers, ...message.providerPeers]) expect(p.addrs.length).to.be.at.most(2)
          expect(message.closerPeers.length).to.be.at.most(4)
          expect(message.providerPeers.length).to.be.at.most(4)
        })
      }), { numRuns: RUNS })
    })
  })

  describe('circuit relay v2 messages and vouchers', () => {
    it('hop and stop messages decode or throw MalformedMessageError, within the message size', async () => {
      const peer = peerIdOf(await generateKeypair())
      const addrs = [multiaddr('/ip4/198.51.100.1/tcp/4001'), multiaddr(`/ip4/198.51.100.1/tcp/4001/p2p/${peer.toString()}`)]
      const hopSeeds = [
        relayMessage.encodeHopMessage({ type: 'RESERVE' }),
        relayMessage.encodeHopMessage({ type: 'CONNECT', peer: { id: peer, addrs } }),
        relayMessage.encodeHopMessage({ type: 'STATUS', status: 'OK', reservation: { expire: 1_900_000_000, addrs, voucher: bytes('voucher') }, limit: { duration: 120_000, data: 131_072 } })
      ]
      const stopSeeds = [
        relayMessage.encodeStopMessage({ type: 'CONNECT', peer: { id: peer, addrs: [] }, limit: { duration: 120_000, data: 131_072 } }),
        relayMessage.encodeStopMessage({ type: 'STATUS', status: 'NO_RESERVATION' })
      ]
      fc.assert(fc.property(inputs([...hopSeeds, ...stopSeeds], relayMessage.MAX_MESSAGE_SIZE), (input) => {
        returnsOrThrows(relayMessage.MalformedMessageError, () => {
          const message = relayMessage.decodeHopMessage(input)
          if (message.type === 'STATUS') expect(relayMessage.Status[message.status]).to.be.a('number')
        })
        returnsOrThrows(relayMessage.MalformedMessageError, () => {
          const message = relayMessage.decodeStopMessage(input)
          if (message.type === 'CONNECT') expect(message.peer.id.toMultihash().bytes.byteLength).to.be.at.most(input.byteLength)
        })
      }), { numRuns: RUNS })
    })

    it('reservation vouchers open or reject with InvalidVoucherError', async () => {
      const key = await generateKeypair()
      const voucher = await relayMessage.signVoucher(key, { relay: peerIdOf(key), peer: peerIdOf(await generateKeypair()), expiration: 1_900_000_000 })
      await fc.assert(fc.asyncProperty(inputs([voucher]), async (input) => {
        try {
          const opened = await relayMessage.openVoucher(input)
          expect(opened.relay.equals(peerIdOf(key))).to.equal(true)
        } catch (err) {
          if (!(err instanceof relayMessage.InvalidVoucherError)) throw new Error(`expected an InvalidVoucherError, got ${String(err)}`, { cause: err })
        }
      }), { numRuns: RUNS })
    })
  })

  describe('AutoNAT v2 messages', () => {
    it('dial-request and dial-back messages decode or throw MalformedMessageError', () => {
      const addrs = [multiaddr('/ip4/198.18.0.1/tcp/4001'), multiaddr('/ip6/2001:4860::1/tcp/1')]
      const seeds = [
        autonatMessage.encodeMessage({ type: 'DialRequest', addrs, nonce: 0x1234_5678_9abc_def0n }),
        autonatMessage.encodeMessage({ type: 'DialResponse', status: 'OK', addrIdx: 1, dialStatus: 'E_DIAL_ERROR' }),
        autonatMessage.encodeMessage({ type: 'DialDataRequest', addrIdx: 0, numBytes: 50_000 }),
        autonatMessage.encodeMessage({ type: 'DialDataResponse', data: bytes('dial data') }),
        autonatMessage.encodeDialBack(0xffff_ffff_ffff_ffffn),
        autonatMessage.encodeDialBackResponse()
      ]
      fc.assert(fc.property(inputs(seeds, autonatMessage.MAX_MESSAGE_SIZE), (input) => {
        returnsOrThrows(autonatMessage.MalformedMessageError, () => {
          const message = autonatMessage.decodeMessage(input)
          if (message.type === 'DialResponse') expect(autonatMessage.ResponseStatus[message.status]).to.be.a('number')
          if (message.type === 'DialRequest') expect(message.nonce).to.be.a('bigint')
          if (message.type === 'DialDataRequest') expect(Number.isSafeInteger(message.numBytes)).to.equal(true)
        })
        returnsOrThrows(autonatMessage.MalformedMessageError, () => {
          const nonce = autonatMessage.decodeDialBack(input)
          expect(nonce >= 0n && nonce < 2n ** 64n).to.equal(true)
        })
        returnsOrThrows(autonatMessage.MalformedMessageError, () => autonatMessage.decodeDialBackResponse(input))
      }), { numRuns: RUNS })
    })
  })

  describe('DCUtR messages', () => {
    it('HolePunch decodes or throws MalformedMessageError, every kept address a multiaddr', () => {
      const addrs = [multiaddr('/ip4/198.18.0.1/tcp/4002'), multiaddr('/ip6/2001:4860::1/tcp/1'), multiaddr('/ip4/198.18.0.10/tcp/4001/p2p-circuit')]
      const seeds = [dcutrMessage.encodeHolePunch('CONNECT', addrs), dcutrMessage.encodeHolePunch('SYNC')]
      fc.assert(fc.property(inputs(seeds, dcutrMessage.MAX_MESSAGE_SIZE), (input) => {
        returnsOrThrows(dcutrMessage.MalformedMessageError, () => {
          const message = dcutrMessage.decodeHolePunch(input)
          expect(['CONNECT', 'SYNC']).to.include(message.type)
          for (const address of message.obsAddrs) expect(address.bytes.byteLength).to.be.at.most(input.byteLength)
          expect(message.obsAddrs.length + message.invalidAddrs).to.be.at.most(input.byteLength)
        })
      }), { numRuns: RUNS })
    })
  })

  describe('WebRTC data-channel frames', () => {
    it('decode (whole or cut anywhere) or throw WebRTCMalformedFrameError / WebRTCMessageTooLargeError, holding at most one frame', () => {
      const { Flag, encodeMessage, MessageDecoder, WebRTCMalformedFrameError, WebRTCMessageTooLargeError, MAX_MESSAGE_SIZE, MAX_PAYLOAD_SIZE } = webrtcMessage
      const seeds = [
        encodeMessage({ message: bytes('hello') }),
        encodeMessage({ flag: Flag.FIN }),
        encodeMessage({ flag: Flag.RESET_STREAM, message: bytes('x') }),
        Uint8Array.from([...encodeMessage({ flag: Flag.FIN_ACK }), ...encodeMessage({ message: new Uint8Array(300) })]),
        encodeMessage({ message: new Uint8Array(MAX_PAYLOAD_SIZE) }).subarray(0, 40)
      ]
      fc.assert(fc.property(inputs(seeds, 2 * MAX_MESSAGE_SIZE), fc.nat(), (input, cut) => {
        const decoder = new MessageDecoder()
        try {
          const at = input.byteLength === 0 ? 0 : cut % input.byteLength
          for (const message of [...decoder.push(input.subarray(0, at)), ...decoder.push(input.subarray(at))]) {
            if (message.flag != null) expect(Flag[message.flag]).to.be.a('string')
            expect((message.message?.byteLength ?? 0)).to.be.below(MAX_MESSAGE_SIZE)
          }
          expect(decoder.bufferedBytes).to.be.below(MAX_MESSAGE_SIZE)
        } catch (err) {
          if (!(err instanceof WebRTCMalformedFrameError) && !(err instanceof WebRTCMessageTooLargeError)) throw new Error(`expected a typed frame error, got ${String(err)}`, { cause: err })
        }
      }), { numRuns: RUNS })
    })

    it('/webrtc-signaling messages, their SDPs and candidates: decode or throw WebRTCSignalingError', () => {
      const { SignalingType, encodeSignalingMessage, decodeSignalingMessage, parseSdpSummary, parseCandidate, WebRTCSignalingError } = webrtcSignaling
      const sdp = `v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=fingerprint:sha-256 ${Array.from({ length: 32 }, () => 'AB').join(':')}\r\n`
      const seeds = [
        encodeSignalingMessage({ type: SignalingType.SDP_OFFER, data: sdp }),
        encodeSignalingMessage({ type: SignalingType.ICE_CANDIDATE, data: JSON.stringify({ candidate: 'candidate:1 1 UDP 1 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 }) }),
        encodeSignalingMessage({ type: SignalingType.ICE_CANDIDATE, data: 'null' })
      ]
      fc.assert(fc.property(inputs(seeds, 4096), (input) => {
        returnsOrThrows(WebRTCSignalingError, () => {
          const message = decodeSignalingMessage(input)
          expect(SignalingType[message.type]).to.be.a('string')
          if (message.type === SignalingType.ICE_CANDIDATE) parseCandidate(message.data)
          else parseSdpSummary(message.data)
        })
      }), { numRuns: RUNS })
    })
  })

  it('keeps GossipSub config errors typed for any numbers', () => {
    fc.assert(fc.property(fc.record({ meshN: fc.integer({ min: -2, max: 20 }), meshNLow: fc.integer({ min: -2, max: 20 }), meshNHigh: fc.integer({ min: -2, max: 30 }), heartbeatInterval: fc.integer({ min: -10, max: 5_000 }) }), (options) => {
      returnsOrThrows(ConfigError, () => new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.anonymous(), ...options }).close())
    }), { numRuns: RUNS })
  })
})
