/**
 * The socket-free parts of `/webrtc-direct`: the spec's Noise prologue test vector, the
 * self-signed certificate and certhash, the SDP written for the other side, address filters.
 */
import { createHash, X509Certificate } from 'node:crypto'
import { expect } from 'chai'
import { multiaddr } from '@multiformats/multiaddr'
import { InvalidCerthashError, certificateFrom, fingerprintFromSdp, fingerprintOfCerthash, generateCertificate, sdpFingerprint } from '../../src/transport/webrtc/certificate.js'
import { WebRTCDirectTransport } from '../../src/transport/webrtc/direct.js'
import { noisePrologue } from '../../src/transport/webrtc/noise.js'
import { dialerOffer, isValidUfrag, listenerAnswer, randomUfrag } from '../../src/transport/webrtc/sdp.js'

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'))

describe('WebRTC Direct without sockets', () => {
  it('builds the Noise prologue of the spec\'s test vector (client A, then server B)', () => {
    const client = hex('3e79af40d6059617a0d83b83a52ce73b0c1f37a72c6043ad2969e2351bdca870')
    const server = hex('30fc9f469c207419dfdd0aab5f27a86c973c94e40548db9375cca2e915973b99')
    expect(Buffer.from(noisePrologue(client, server)).toString('hex')).to.equal(
      '6c69627032702d7765627274632d6e6f6973653a12203e79af40d6059617a0d83b83a52ce73b0c1f37a72c6043ad2969e2351bdca870122030fc9f469c207419dfdd0aab5f27a86c973c94e40548db9375cca2e915973b99')
  })

  it('makes a self-signed ECDSA P-256 certificate whose certhash is the SHA-256 of its DER', async () => {
    const certificate = await generateCertificate()
    const x509 = new X509Certificate(certificate.pem)
    expect(x509.publicKey.asymmetricKeyDetails?.namedCurve).to.equal('prime256v1')
    expect(x509.checkIssued(x509)).to.equal(true)
    expect(x509.verify(x509.publicKey)).to.equal(true)
    expect(new Date(x509.validTo).getTime()).to.be.greaterThan(Date.now() + 300 * 86_400_000)
    const digest = createHash('sha256').update(x509.raw).digest()
    expect(Buffer.from(certificate.fingerprint).equals(digest)).to.equal(true)
    expect(x509.fingerprint256).to.equal(sdpFingerprint(certificate.fingerprint))
    expect(certificate.certhash).to.match(/^uEi[A-Za-z0-9_-]{44}$/)
    expect(Buffer.from(fingerprintOfCerthash(certificate.certhash)).equals(digest)).to.equal(true)
    // A saved certificate gives the same certhash back.
    expect(certificateFrom(certificate.pem, certificate.privateKeyPem).certhash).to.equal(certificate.certhash)
  })

  it('refuses certhashes that are not base64url sha2-256 multihashes, and bad SDP fingerprints', () => {
    for (const bad of ['', 'zQm', 'uEi', 'mEiA', `u${Buffer.from([0x13, 0x20, ...new Uint8Array(32)]).toString('base64url')}`]) {
      expect(() => fingerprintOfCerthash(bad), bad).to.throw(InvalidCerthashError)
    }
    expect(() => fingerprintFromSdp('AB:CD')).to.throw(InvalidCerthashError)
    expect(fingerprintFromSdp(sdpFingerprint(new Uint8Array(32).fill(0xab)))).to.deep.equal(new Uint8Array(32).fill(0xab))
  })

  it('writes the other side\'s SDP with the ufrag as ICE credentials and a 16 KiB message size', () => {
    const ufrag = randomUfrag()
    expect(ufrag).to.match(/^libp2p\+webrtc\+v1\/[A-Za-z0-9]{32}$/)
    expect(isValidUfrag(ufrag)).to.equal(true)
    expect(isValidUfrag('short')).to.equal(false)
    expect(isValidUfrag(`${'a'.repeat(30)}\r\na=x`)).to.equal(false)
    const answer = listenerAnswer({ family: 4, host: '127.0.0.1', port: 4001 }, new Uint8Array(32).fill(1), ufrag)
    expect(answer).to.include(`a=ice-ufrag:${ufrag}\r\n`).and.include(`a=ice-pwd:${ufrag}\r\n`)
    expect(answer).to.include('a=ice-lite').and.include('a=setup:passive').and.include('a=max-message-size:16384')
    expect(answer).to.include(`a=fingerprint:sha-256 ${sdpFingerprint(new Uint8Array(32).fill(1))}`)
    expect(answer).to.include('a=candidate:1467250027 1 UDP 1467250027 127.0.0.1 4001 typ host')
    const offer = dialerOffer({ family: 6, host: '::1', port: 5000 }, ufrag)
    expect(offer).to.include('c=IN IP6 ::1').and.include('a=setup:active').and.include(`a=ice-pwd:${ufrag}`)
  })

  it('dials only addresses with a certhash and listens only on bare ones', () => {
    const transport = new WebRTCDirectTransport()
    const certhash = `u${Buffer.from([0x12, 0x20, ...new Uint8Array(32)]).toString('base64url')}`
    const dialable = multiaddr(`/ip4/127.0.0.1/udp/4001/webrtc-direct/certhash/${certhash}/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5`)
    const bare = multiaddr('/ip4/127.0.0.1/udp/0/webrtc-direct')
    const others = [multiaddr('/ip4/127.0.0.1/tcp/4001'), multiaddr('/ip4/127.0.0.1/udp/4001/quic-v1'), multiaddr(`/ip4/127.0.0.1/udp/1/webrtc-direct/certhash/${certhash}/webrtc`)]
    expect(transport.dialFilter([dialable, bare, ...others])).to.deep.equal([dialable])
    expect(transport.listenFilter([dialable, bare, ...others])).to.deep.equal([bare])
  })
})
