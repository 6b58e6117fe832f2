/**
 * The `/webrtc-signaling/0.0.1` protocol of `/webrtc` (spec `webrtc/webrtc.md`): on a relayed
 * connection, the dialer sends its SDP offer, the listener its answer, then both trickle ICE
 * candidates until the peer connection is up. Every message is a uvarint length and a
 * protobuf `Message { optional Type type = 1; optional string data = 2; }`, with
 * `Type { SDP_OFFER = 0; SDP_ANSWER = 1; ICE_CANDIDATE = 2; }`; a candidate's `data` is the JSON
 * of an `RTCIceCandidateInit`, JSON `null` or `""` meaning "end of candidates" (as js-libp2p).
 *
 * What a remote sends is checked here, before it reaches the WebRTC stack: a message over
 * {@link MAX_SIGNALING_MESSAGE_SIZE}, an unknown type, text that is not UTF-8, an SDP that does
 * not parse as one ({@link parseSdpSummary}) or a candidate that is not the JSON of one all
 * fail with {@link WebRTCSignalingError}.
 *
 * @module
 */
import * as varint from 'uint8-varint'
import { PeerswarmError } from '../../core/errors.js'

/** The protocol id. */
export const SIGNALING_PROTOCOL = '/webrtc-signaling/0.0.1'

/** The largest signaling message read or written (protobuf bytes, length prefix not counted). */
export const MAX_SIGNALING_MESSAGE_SIZE = 32 * 1024

/** ICE candidates accepted from the remote in one signaling exchange; more fail it. */
export const MAX_REMOTE_CANDIDATES = 64

/**
 * A signaling message's type.
 *
 * @group Transports
 */
export enum SignalingType {
  SDP_OFFER = 0,
  SDP_ANSWER = 1,
  ICE_CANDIDATE = 2
}

/**
 * A decoded signaling message.
 *
 * @group Transports
 */
export interface SignalingMessage {
  readonly type: SignalingType
  readonly data: string
}

/**
 * A `/webrtc-signaling` exchange failed: a malformed or unexpected message, an SDP or
 * candidate that does not parse, too many candidates, or no peer connection in time. The
 * message says which.
 *
 * @group Errors
 */
export class WebRTCSignalingError extends PeerswarmError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_WEBRTC_SIGNALING', message, options)
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })
const encoder = new TextEncoder()

/** Encode `message` as protobuf (without the length prefix). */
export function encodeSignalingMessage (message: SignalingMessage): Uint8Array {
  const data = encoder.encode(message.data)
  const out = new Uint8Array(3 + varint.encodingLength(data.byteLength) + data.byteLength)
  out[0] = 0x08 // field 1, varint
  out[1] = message.type
  out[2] = 0x12 // field 2, length-delimited
  varint.encodeUint8Array(data.byteLength, out, 3)
  out.set(data, 3 + varint.encodingLength(data.byteLength))
  return out
}

/**
 * Decode a signaling message's protobuf bytes. Unknown fields are skipped, as protobuf asks;
 * a missing `type` or `data` fails (every message of the protocol needs both). Throws
 * {@link WebRTCSignalingError}, never anything else.
 */
export function decodeSignalingMessage (bytes: Uint8Array): SignalingMessage {
  if (bytes.byteLength > MAX_SIGNALING_MESSAGE_SIZE) throw new WebRTCSignalingError(`signaling message of ${bytes.byteLength} bytes, more than ${MAX_SIGNALING_MESSAGE_SIZE}`)
  let type: number | undefined
  let data: string | undefined
  let offset = 0
  const readVarint = (): number => {
    let value = 0
    for (let shift = 0; shift < 35; shift += 7) {
      if (offset >= bytes.byteLength) throw new WebRTCSignalingError('truncated signaling message')
      const byte = bytes[offset++]
      value += (byte & 0x7f) * 2 ** shift
      if ((byte & 0x80) === 0) return value
    }
    throw new WebRTCSignalingError('varint too long in signaling message')
  }
  while (offset < bytes.byteLength) {
    const key = readVarint()
    const field = Math.floor(key / 8)
    const wire = key & 7
    if (wire === 0) {
      const value = readVarint()
      if (field === 1) type = value
    } else if (wire === 2) {
      const length = readVarint()
      if (offset + length > bytes.byteLength) throw new WebRTCSignalingError('truncated signaling message')
      const chunk = bytes.subarray(offset, offset + length)
      offset += length
      if (field === 2) {
        try {
          data = utf8.decode(chunk)
        } catch (err) {
          throw new WebRTCSignalingError('signaling data is not UTF-8', { cause: err })
        }
      }
    } else if (wire === 1) {
      offset += 8
    } else if (wire === 5) {
      offset += 4
    } else {
      throw new WebRTCSignalingError(`unsupported protobuf wire type ${wire} in signaling message`)
    }
    if (offset > bytes.byteLength) throw new WebRTCSignalingError('truncated signaling message')
  }
  if (type === undefined || !(type in SignalingType)) throw new WebRTCSignalingError(`signaling message of unknown type ${String(type)}`)
  if (data === undefined) throw new WebRTCSignalingError(`signaling message of type ${SignalingType[type]} without data`)
  return { type, data }
}

/** What {@link parseSdpSummary} finds in an SDP. */
export interface SdpSummary {
  /** The `a=fingerprint:sha-256` value, if any. */
  readonly fingerprint?: string
  /** Whether it has an `m=application` section (data channels). */
  readonly application: boolean
}

/**
 * Check that `sdp` reads as a session description that can carry data channels: `v=0` first,
 * only `<letter>=<value>` lines, an `m=application` section and a DTLS fingerprint. Throws
 * {@link WebRTCSignalingError} otherwise (the WebRTC stack would fail less clearly, or, for
 * libdatachannel, throw from native code).
 */
export function parseSdpSummary (sdp: string): SdpSummary {
  const lines = sdp.split(/\r?\n/).filter(line => line.length > 0)
  if (lines[0] !== 'v=0') throw new WebRTCSignalingError('SDP does not start with v=0')
  let fingerprint: string | undefined
  let application = false
  for (const line of lines) {
    if (!/^[a-z]=/.test(line)) throw new WebRTCSignalingError(`SDP line is not <letter>=<value>: ${JSON.stringify(line.slice(0, 40))}`)
    if (line.startsWith('m=application ')) application = true
    const match = /^a=fingerprint:sha-256 ([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){31})$/.exec(line)
    if (match != null) fingerprint ??= match[1]
  }
  if (!application) throw new WebRTCSignalingError('SDP has no m=application section (no data channels)')
  if (fingerprint == null) throw new WebRTCSignalingError('SDP has no sha-256 DTLS fingerprint')
  return { fingerprint, application }
}

/** A remote ICE candidate, as `RTCIceCandidateInit`; `undefined` for "end of candidates". */
export function parseCandidate (data: string): RTCIceCandidateInit | undefined {
  let value: unknown
  try {
    value = JSON.parse(data)
  } catch (err) {
    throw new WebRTCSignalingError('ICE candidate is not JSON', { cause: err })
  }
  if (value === null || value === '') return undefined
  if (typeof value !== 'object' || Array.isArray(value)) throw new WebRTCSignalingError('ICE candidate is not a JSON object')
  const init = value as Record<string, unknown>
  if (typeof init.candidate !== 'string') throw new WebRTCSignalingError('ICE candidate has no candidate string')
  if (init.candidate === '') return undefined
  if (!init.candidate.startsWith('candidate:') && !init.candidate.startsWith('a=candidate:')) throw new WebRTCSignalingError('ICE candidate string does not start with candidate:')
  if (init.sdpMid != null && typeof init.sdpMid !== 'string') throw new WebRTCSignalingError('ICE candidate sdpMid is not a string')
  if (init.sdpMLineIndex != null && (typeof init.sdpMLineIndex !== 'number' || !Number.isInteger(init.sdpMLineIndex) || init.sdpMLineIndex < 0)) throw new WebRTCSignalingError('ICE candidate sdpMLineIndex is not an index')
  return {
    candidate: init.candidate,
    sdpMid: (init.sdpMid as string | null | undefined) ?? null,
    sdpMLineIndex: (init.sdpMLineIndex as number | null | undefined) ?? null,
    ...(typeof init.usernameFragment === 'string' ? { usernameFragment: init.usernameFragment } : {})
  }
}
