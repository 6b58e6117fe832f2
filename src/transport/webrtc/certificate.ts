/**
 * The DTLS certificate of a `/webrtc-direct` listener (or dialer): a self-signed X.509 v3
 * certificate over an ECDSA P-256 key (the curve every browser accepts), made with WebCrypto
 * and a few lines of DER, so no X.509 library is needed. Its SHA-256 is the `certhash` of the
 * listener's multiaddr and the `a=fingerprint` of its SDP.
 *
 * @module
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { base64url } from 'multiformats/bases/base64'
import { PeerswarmError } from '../../core/errors.js'

/**
 * A DTLS certificate and its key, as PEM, and its hash.
 *
 * @group Transports
 */
export interface Certificate {
  /** The certificate, PEM (`-----BEGIN CERTIFICATE-----`). */
  readonly pem: string
  /** Its private key, PKCS #8 PEM (`-----BEGIN PRIVATE KEY-----`). */
  readonly privateKeyPem: string
  /** SHA-256 of the certificate's DER: the SDP fingerprint. */
  readonly fingerprint: Uint8Array
  /** The multiaddr `certhash`: multibase base64url of the sha2-256 multihash (`uEi…`). */
  readonly certhash: string
}

/**
 * A certhash (or SDP fingerprint) that cannot be used: not base64url multibase, not a sha2-256
 * multihash, or of the wrong length.
 *
 * @group Errors
 */
export class InvalidCerthashError extends PeerswarmError {
  constructor (message: string) {
    super('ERR_WEBRTC_INVALID_CERTHASH', message)
  }
}

// ---- DER ----

function derLength (n: number): number[] {
  if (n < 0x80) return [n]
  const out: number[] = []
  while (n > 0) {
    out.unshift(n & 0xff)
    n = Math.floor(n / 256)
  }
  return [0x80 | out.length, ...out]
}

function der (tag: number, ...content: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const length = content.reduce((n, c) => n + c.byteLength, 0)
  const header = [tag, ...derLength(length)]
  const out = new Uint8Array(header.length + length)
  out.set(header, 0)
  let offset = header.length
  for (const c of content) {
    out.set(c, offset)
    offset += c.byteLength
  }
  return out
}

const sequence = (...content: Uint8Array[]): Uint8Array<ArrayBuffer> => der(0x30, ...content)

/** A DER INTEGER from unsigned big-endian bytes. */
function integer (bytes: Uint8Array): Uint8Array {
  let start = 0
  while (start < bytes.byteLength - 1 && bytes[start] === 0) start++
  const trimmed = bytes.subarray(start)
  return (trimmed[0] & 0x80) !== 0 ? der(0x02, Uint8Array.of(0), trimmed) : der(0x02, trimmed)
}

function oid (...arcs: number[]): Uint8Array {
  const out = [40 * arcs[0] + arcs[1]]
  for (const arc of arcs.slice(2)) {
    const bytes = [arc & 0x7f]
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) bytes.unshift((n & 0x7f) | 0x80)
    out.push(...bytes)
  }
  return der(0x06, Uint8Array.from(out))
}

/** UTCTime, YYMMDDHHMMSSZ (dates before 2050). */
function utcTime (date: Date): Uint8Array {
  const two = (n: number): string => String(n).padStart(2, '0')
  const text = two(date.getUTCFullYear() % 100) + two(date.getUTCMonth() + 1) + two(date.getUTCDate()) +
    two(date.getUTCHours()) + two(date.getUTCMinutes()) + two(date.getUTCSeconds()) + 'Z'
  return der(0x17, new TextEncoder().encode(text))
}

function pem (label: string, bytes: Uint8Array): string {
  const base64 = btoa(String.fromCharCode(...bytes))
  return [`-----BEGIN ${label}-----`, ...(base64.match(/.{1,64}/g) ?? []), `-----END ${label}-----`, ''].join('\n')
}

function pemBytes (text: string): Uint8Array {
  const body = text.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '')
  return Uint8Array.from(atob(body), c => c.charCodeAt(0))
}

/** An ECDSA signature as WebCrypto gives it (r ‖ s), in DER. */
function ecdsaDer (raw: Uint8Array): Uint8Array {
  const half = raw.byteLength / 2
  return sequence(integer(raw.subarray(0, half)), integer(raw.subarray(half)))
}

const ECDSA_WITH_SHA256 = sequence(oid(1, 2, 840, 10045, 4, 3, 2))
const DAY_MS = 86_400_000

/**
 * Generate a self-signed ECDSA P-256 certificate valid from a day ago for `days` days.
 * Uses the platform's WebCrypto (`globalThis.crypto.subtle`: Node ≥ 20 and browsers).
 */
export async function generateCertificate (days = 365): Promise<Certificate> {
  const subtle = globalThis.crypto.subtle
  const keys = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])
  const spki = new Uint8Array(await subtle.exportKey('spki', keys.publicKey))
  const pkcs8 = new Uint8Array(await subtle.exportKey('pkcs8', keys.privateKey))
  const serial = globalThis.crypto.getRandomValues(new Uint8Array(16))
  serial[0] &= 0x7f
  const name = sequence(der(0x31, sequence(oid(2, 5, 4, 3), der(0x0c, new TextEncoder().encode('peerswarm webrtc-direct')))))
  const now = Date.now()
  const tbs = sequence(
    der(0xa0, integer(Uint8Array.of(2))), // v3
    integer(serial),
    ECDSA_WITH_SHA256,
    name,
    sequence(utcTime(new Date(now - DAY_MS)), utcTime(new Date(now + days * DAY_MS))),
    name,
    spki
  )
  const signature = new Uint8Array(await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, keys.privateKey, tbs))
  const certificate = sequence(tbs, ECDSA_WITH_SHA256, der(0x03, Uint8Array.of(0), ecdsaDer(signature)))
  return certificateFrom(pem('CERTIFICATE', certificate), pem('PRIVATE KEY', pkcs8))
}

/** A {@link Certificate} from PEM text (e.g. one saved to keep the certhash across restarts). */
export function certificateFrom (certificatePem: string, privateKeyPem: string): Certificate {
  const fingerprint = sha256(pemBytes(certificatePem))
  return { pem: certificatePem, privateKeyPem, fingerprint, certhash: certhashOf(fingerprint) }
}

/** The sha2-256 multihash of a SHA-256 digest. */
export function multihashOf (digest: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + digest.byteLength)
  out[0] = 0x12
  out[1] = 0x20
  out.set(digest, 2)
  return out
}

/** The certhash of a SHA-256 fingerprint. */
function certhashOf (fingerprint: Uint8Array): string {
  return base64url.encode(multihashOf(fingerprint))
}

/** The SHA-256 digest in a certhash. Throws {@link InvalidCerthashError}. */
export function fingerprintOfCerthash (certhash: string): Uint8Array {
  let bytes: Uint8Array
  try {
    bytes = base64url.decode(certhash)
  } catch (err) {
    throw new InvalidCerthashError(`certhash ${certhash} is not multibase base64url: ${(err as Error).message}`)
  }
  if (bytes.byteLength !== 34 || bytes[0] !== 0x12 || bytes[1] !== 0x20) throw new InvalidCerthashError(`certhash ${certhash} is not a sha2-256 multihash`)
  return bytes.subarray(2)
}

/** SDP form of a fingerprint: `AB:CD:…`. */
export function sdpFingerprint (fingerprint: Uint8Array): string {
  return [...fingerprint].map(b => b.toString(16).padStart(2, '0').toUpperCase()).join(':')
}

/** The bytes of an SDP fingerprint `AB:CD:…` (32 bytes for sha-256). Throws {@link InvalidCerthashError}. */
export function fingerprintFromSdp (text: string): Uint8Array {
  const parts = text.trim().split(':')
  if (parts.length !== 32 || parts.some(p => !/^[0-9a-fA-F]{2}$/.test(p))) throw new InvalidCerthashError(`not a sha-256 fingerprint: ${text}`)
  return Uint8Array.from(parts, p => parseInt(p, 16))
}
