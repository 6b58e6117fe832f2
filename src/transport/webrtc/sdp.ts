/**
 * The SDP of `/webrtc-direct` (spec `webrtc/webrtc-direct.md`): neither side signals, so each
 * writes the other's description itself. The dialer builds the listener's answer from the
 * multiaddr (address, port, certhash) and an ICE ufrag it chose, which it also uses as its own
 * ufrag and password; the listener builds the dialer's offer from the STUN request that
 * carries that ufrag, with a placeholder fingerprint (it learns the real one in DTLS, and Noise
 * checks it).
 *
 * @module
 */
import { sdpFingerprint } from './certificate.js'

/** The ufrag prefix of the spec's version 1. */
const UFRAG_PREFIX = 'libp2p+webrtc+v1/'

const UFRAG_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'

/** ICE credentials as Chromium and libdatachannel accept them. */
const ICE_CREDENTIAL = /^[a-zA-Z0-9+/]{22,256}$/

/** A fresh ufrag: the prefix and 32 random letters and digits. */
export function randomUfrag (): string {
  const random = globalThis.crypto.getRandomValues(new Uint8Array(32))
  return UFRAG_PREFIX + Array.from(random, b => UFRAG_ALPHABET[b % UFRAG_ALPHABET.length]).join('')
}

/** Whether `ufrag` is a usable ICE credential (22 to 256 of `[a-zA-Z0-9+/]`). */
export function isValidUfrag (ufrag: string): boolean {
  return ICE_CREDENTIAL.test(ufrag)
}

/** Where a `/webrtc-direct` peer is: IP version, address and UDP port. */
export interface UdpAddress {
  readonly family: 4 | 6
  readonly host: string
  readonly port: number
}

/** The listener's answer, as the dialer writes it (ICE-lite, DTLS passive). */
export function listenerAnswer (address: UdpAddress, fingerprint: Uint8Array, ufrag: string): string {
  const ip = `IP${address.family}`
  return [
    'v=0',
    `o=- 0 0 IN ${ip} ${address.host}`,
    's=-',
    't=0 0',
    'a=ice-lite',
    `m=application ${address.port} UDP/DTLS/SCTP webrtc-datachannel`,
    `c=IN ${ip} ${address.host}`,
    'a=mid:0',
    'a=ice-options:ice2',
    `a=ice-ufrag:${ufrag}`,
    `a=ice-pwd:${ufrag}`,
    `a=fingerprint:sha-256 ${sdpFingerprint(fingerprint)}`,
    'a=setup:passive',
    'a=sctp-port:5000',
    'a=max-message-size:16384',
    `a=candidate:1467250027 1 UDP 1467250027 ${address.host} ${address.port} typ host`,
    'a=end-of-candidates',
    ''
  ].join('\r\n')
}

/** The dialer's offer, as the listener writes it from a STUN request (DTLS active). */
export function dialerOffer (address: UdpAddress, ufrag: string): string {
  const ip = `IP${address.family}`
  return [
    'v=0',
    `o=- 0 0 IN ${ip} ${address.host}`,
    's=-',
    `c=IN ${ip} ${address.host}`,
    't=0 0',
    'a=ice-options:ice2,trickle',
    `m=application ${address.port} UDP/DTLS/SCTP webrtc-datachannel`,
    'a=mid:0',
    'a=setup:active',
    `a=ice-ufrag:${ufrag}`,
    `a=ice-pwd:${ufrag}`,
    // Unknown until DTLS: a placeholder (fingerprint checks are off; Noise binds the real one).
    `a=fingerprint:sha-256 ${Array(32).fill('00').join(':')}`,
    'a=sctp-port:5000',
    'a=max-message-size:16384',
    `a=candidate:1467250027 1 UDP 1467250027 ${address.host} ${address.port} typ host`,
    'a=end-of-candidates',
    ''
  ].join('\r\n')
}
