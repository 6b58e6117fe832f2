/**
 * The `/webrtc-signaling/0.0.1` message codec and the checks on what a remote sends (SDP and
 * ICE candidates), without sockets.
 */
import { expect } from 'chai'
import {
  MAX_SIGNALING_MESSAGE_SIZE, SignalingType, WebRTCSignalingError,
  decodeSignalingMessage, encodeSignalingMessage, parseCandidate, parseSdpSummary
} from '../../src/transport/webrtc/signaling.js'
import { parseWebRTCAddress } from '../../src/transport/webrtc/private.js'
import { isRelayedAddress } from '../../src/core/ids.js'
import { multiaddr } from '@multiformats/multiaddr'

const FINGERPRINT = Array.from({ length: 32 }, (_, i) => i.toString(16).padStart(2, '0').toUpperCase()).join(':')
const SDP = ['v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', `a=fingerprint:sha-256 ${FINGERPRINT}`, ''].join('\r\n')
const RELAY = '12D3KooWGb9r2AYg7zGAAKyKfdxNrPw9jH6GqApoANVh5De1EQLC'
const PEER = '12D3KooWKaLGqwU7hHVY1xVVZZowdbwwsFKqjHMs7kBnGBUT1Fjq'

function code (fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).to.be.instanceOf(WebRTCSignalingError)
    return (err as WebRTCSignalingError).code
  }
  throw new Error('did not throw')
}

describe('WebRTC signaling messages', () => {
  it('round-trips every type, with the spec\'s field numbers', () => {
    for (const type of [SignalingType.SDP_OFFER, SignalingType.SDP_ANSWER, SignalingType.ICE_CANDIDATE]) {
      const bytes = encodeSignalingMessage({ type, data: 'héllo' })
      expect(bytes[0]).to.equal(0x08)
      expect(bytes[1]).to.equal(type)
      expect(bytes[2]).to.equal(0x12)
      expect(decodeSignalingMessage(bytes)).to.deep.equal({ type, data: 'héllo' })
    }
  })

  it('skips unknown fields, as protobuf asks', () => {
    const known = encodeSignalingMessage({ type: SignalingType.SDP_ANSWER, data: 'x' })
    const withExtra = Uint8Array.from([0x18, 0x07, ...known, 0x22, 0x01, 0x41, 0x2d, 1, 2, 3, 4])
    expect(decodeSignalingMessage(withExtra)).to.deep.equal({ type: SignalingType.SDP_ANSWER, data: 'x' })
  })

  it('refuses unknown types, missing fields, truncation, bad UTF-8 and oversized messages with ERR_WEBRTC_SIGNALING', () => {
    expect(code(() => decodeSignalingMessage(Uint8Array.from([0x08, 0x03, 0x12, 0x00])))).to.equal('ERR_WEBRTC_SIGNALING')
    expect(code(() => decodeSignalingMessage(Uint8Array.from([0x12, 0x00])))).to.equal('ERR_WEBRTC_SIGNALING')
    expect(code(() => decodeSignalingMessage(Uint8Array.from([0x08, 0x00])))).to.equal('ERR_WEBRTC_SIGNALING')
    expect(code(() => decodeSignalingMessage(Uint8Array.from([0x08, 0x00, 0x12, 0x05, 0x41])))).to.equal('ERR_WEBRTC_SIGNALING')
    expect(code(() => decodeSignalingMessage(Uint8Array.from([0x08, 0x00, 0x12, 0x01, 0xff])))).to.equal('ERR_WEBRTC_SIGNALING')
    expect(code(() => decodeSignalingMessage(Uint8Array.from([0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])))).to.equal('ERR_WEBRTC_SIGNALING')
    expect(code(() => decodeSignalingMessage(Uint8Array.from([0x0b])))).to.equal('ERR_WEBRTC_SIGNALING')
    expect(code(() => decodeSignalingMessage(new Uint8Array(MAX_SIGNALING_MESSAGE_SIZE + 1)))).to.equal('ERR_WEBRTC_SIGNALING')
  })

  it('accepts an SDP with a data section and a sha-256 fingerprint, and refuses others', () => {
    expect(parseSdpSummary(SDP)).to.deep.equal({ fingerprint: FINGERPRINT, application: true })
    expect(code(() => parseSdpSummary('not an sdp'))).to.equal('ERR_WEBRTC_SIGNALING')
    expect(code(() => parseSdpSummary('v=0\r\nthis is not a line\r\n'))).to.equal('ERR_WEBRTC_SIGNALING')
    expect(code(() => parseSdpSummary(SDP.replace(/m=application[^\r]*/, 'm=audio 9 RTP/AVP 0')))).to.equal('ERR_WEBRTC_SIGNALING')
    expect(code(() => parseSdpSummary(SDP.replace(/a=fingerprint[^\r]*/, 'a=fingerprint:sha-1 AB:CD')))).to.equal('ERR_WEBRTC_SIGNALING')
  })

  it('reads candidates as RTCIceCandidateInit, null and "" as the end of candidates, and refuses others', () => {
    expect(parseCandidate(JSON.stringify({ candidate: 'candidate:1 1 UDP 2122 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 })))
      .to.deep.equal({ candidate: 'candidate:1 1 UDP 2122 127.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 })
    expect(parseCandidate('null')).to.equal(undefined)
    expect(parseCandidate('""')).to.equal(undefined)
    expect(parseCandidate(JSON.stringify({ candidate: '' }))).to.equal(undefined)
    for (const bad of ['{', '[]', '42', '{}', JSON.stringify({ candidate: 'evil' }), JSON.stringify({ candidate: 'candidate:1', sdpMLineIndex: -1 }), JSON.stringify({ candidate: 'candidate:1', sdpMid: 5 })]) {
      expect(code(() => parseCandidate(bad)), bad).to.equal('ERR_WEBRTC_SIGNALING')
    }
  })
})

describe('/webrtc addresses', () => {
  it('takes <relay>/p2p/<R>/p2p-circuit/webrtc[/p2p/<B>] apart into the circuit to dial and the peer', () => {
    const parsed = parseWebRTCAddress(multiaddr(`/ip4/127.0.0.1/tcp/1/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${PEER}`))
    expect(parsed?.circuit.toString()).to.equal(`/ip4/127.0.0.1/tcp/1/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`)
    expect(parsed?.peerId?.toString()).to.equal(PEER)
    expect(parseWebRTCAddress(multiaddr(`/ip4/127.0.0.1/tcp/1/p2p/${RELAY}/p2p-circuit/webrtc`))?.peerId).to.equal(undefined)
    for (const other of [`/ip4/127.0.0.1/tcp/1/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`, `/ip4/127.0.0.1/tcp/1/p2p-circuit/webrtc/p2p/${PEER}`, '/ip4/127.0.0.1/udp/1/webrtc-direct', `/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${PEER}/p2p/${PEER}`]) {
      expect(parseWebRTCAddress(multiaddr(other)), other).to.equal(undefined)
    }
  })

  it('does not count a /webrtc address as relayed (its connections are direct), a plain circuit still is', () => {
    expect(isRelayedAddress(multiaddr(`/ip4/127.0.0.1/tcp/1/p2p/${RELAY}/p2p-circuit/webrtc/p2p/${PEER}`))).to.equal(false)
    expect(isRelayedAddress(multiaddr(`/ip4/127.0.0.1/tcp/1/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`))).to.equal(true)
  })
})
