/**
 * Noise on a WebRTC connection (spec `webrtc/webrtc-direct.md`, "Connection Security"): XX on
 * data channel 0 (`negotiated: true, id: 0`), with the listener as the Noise initiator and, as
 * prologue, `libp2p-webrtc-noise:` then the dialer's and the listener's DTLS certificate
 * fingerprints as multihashes. A wrong certhash, or a DTLS peer that is not the one Noise
 * talks to, makes the prologues differ and the handshake fail. No muxer is negotiated.
 *
 * The encrypter is the swarm's own Noise (`@chainsafe/libp2p-noise`, with the identity key and
 * the platform's crypto), taken from the upgrader a js-libp2p transport is handed, with this
 * connection's prologue: a Noise instance keeps its prologue in a field, so the per-connection
 * encrypter is an object whose prototype is the swarm's one and whose own `prologue` differs.
 *
 * @module
 */
import { PeerswarmError } from '../../core/errors.js'
import { multihashOf } from './certificate.js'
import type { ConnectionEncrypter, MessageStream, PeerId, Upgrader } from '@libp2p/interface'

const PROLOGUE_PREFIX = new TextEncoder().encode('libp2p-webrtc-noise:')

/**
 * The Noise handshake of a WebRTC connection failed, or cannot run (no Noise encrypter).
 *
 * @group Errors
 */
export class WebRTCHandshakeError extends PeerswarmError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_WEBRTC_HANDSHAKE', message, options)
  }
}

/** The spec's prologue: prefix ‖ multihash(dialer's fingerprint) ‖ multihash(listener's). */
export function noisePrologue (dialerFingerprint: Uint8Array, listenerFingerprint: Uint8Array): Uint8Array {
  const dialer = multihashOf(dialerFingerprint)
  const listener = multihashOf(listenerFingerprint)
  const out = new Uint8Array(PROLOGUE_PREFIX.byteLength + dialer.byteLength + listener.byteLength)
  out.set(PROLOGUE_PREFIX, 0)
  out.set(dialer, PROLOGUE_PREFIX.byteLength)
  out.set(listener, PROLOGUE_PREFIX.byteLength + dialer.byteLength)
  return out
}

/** What a WebRTC handshake needs. */
export interface HandshakeInit {
  /** The upgrader the transport was handed: its `/noise` encrypter is used. */
  readonly upgrader: Upgrader
  /** Listener: Noise initiator; dialer: responder. */
  readonly role: 'listener' | 'dialer'
  readonly prologue: Uint8Array
  /** The stream over data channel 0. */
  readonly stream: MessageStream
  /** The peer expected, if known (a dial to `…/p2p/<id>`). */
  readonly remotePeer?: PeerId
  readonly signal: AbortSignal
}

/** Run the handshake; resolves with the authenticated remote peer. Throws {@link WebRTCHandshakeError}. */
export async function handshake (init: HandshakeInit): Promise<PeerId> {
  const encrypter = withPrologue(init.upgrader, init.prologue)
  const options = { signal: init.signal, remotePeer: init.remotePeer, skipStreamMuxerNegotiation: true }
  try {
    const secured = init.role === 'listener'
      ? await encrypter.secureOutbound(init.stream, options)
      : await encrypter.secureInbound(init.stream, options)
    return secured.remotePeer
  } catch (err) {
    throw new WebRTCHandshakeError(`Noise handshake on data channel 0 failed: ${(err as Error).message}`, { cause: err })
  }
}

/** The upgrader's Noise encrypter, with `prologue`. */
function withPrologue (upgrader: Upgrader, prologue: Uint8Array): ConnectionEncrypter {
  const base = upgrader.getConnectionEncrypters().get('/noise') as (ConnectionEncrypter & { prologue?: unknown }) | undefined
  if (base == null || !(base.prologue instanceof Uint8Array)) {
    throw new WebRTCHandshakeError('WebRTC needs the swarm\'s @chainsafe/libp2p-noise encrypter (with a prologue field); none was handed to the transport')
  }
  return Object.assign(Object.create(base) as ConnectionEncrypter, { prologue })
}
