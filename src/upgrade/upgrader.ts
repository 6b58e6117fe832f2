/**
 * Turns a raw transport connection into an authenticated, multiplexed one: multistream-select
 * the security protocol (Noise), handshake, then multistream-select the muxer (Yamux) on the
 * encrypted stream. Used the same way by every transport, the in-memory one included.
 *
 * js-libp2p transports call an `Upgrader` themselves: `dial()` returns what `upgradeOutbound`
 * returns, and listeners call `upgradeInbound` and discard the result. `transportUpgrader`
 * adapts to that: outbound upgrades run here, inbound connections go to a callback.
 *
 * @module
 */
import { handle, select } from '@libp2p/multistream-select'
import { LocalPeerIdError, UpgradeError } from '../core/connection-errors.js'
import { HandshakeStream, SecureChannel, noiseCipherOf } from './secure-channel.js'
import { preUpgradeOf } from '../transport/webrtc/pre-upgraded.js'
import type { UpgradePhase } from '../core/connection-errors.js'
import type { Connection, ConnectionEncrypter, MessageStream, MultiaddrConnection, PeerId, StreamMuxer, StreamMuxerFactory, Upgrader, UpgraderOptions } from '@libp2p/interface'

/** Yamux's protocol id. */
const YAMUX_PROTOCOL = '/yamux/1.0.0'

/** A connection after its upgrade: authenticated remote and a stream muxer. */
export interface UpgradedConnection {
  /** The transport's connection. */
  readonly maConn: MultiaddrConnection
  /**
   * The encrypted stream the muxer runs on (our `SecureChannel`, or the encrypter's own):
   * closed gracefully before `maConn`, so that its last writes leave.
   */
  readonly secured: MessageStream
  readonly muxer: StreamMuxer
  readonly remotePeer: PeerId
  /** Negotiated security protocol id, e.g. `/noise`. */
  readonly encryption: string
  /** Negotiated muxer protocol id, e.g. `/yamux/1.0.0`. */
  readonly multiplexer: string
}

/** What an upgrader needs to know about the local node. */
export interface UpgraderInit {
  readonly localPeer: PeerId
  /**
   * Offer our muxers inside the Noise handshake (default: true). Off, the upgrade always
   * negotiates the muxer with multistream-select, as rust-libp2p does.
   */
  readonly inlineMuxerNegotiation?: boolean
  /**
   * Frame Noise transport messages ourselves, with writes coalesced per event-loop turn
   * (default: true). Off, `@chainsafe/libp2p-noise`'s own stream carries the connection.
   */
  readonly ownNoiseFraming?: boolean
}

/** The security + muxer upgrade shared by all transports of a swarm. */
export class SwarmUpgrader {
  private readonly encrypters = new Map<string, ConnectionEncrypter>()
  private readonly muxers = new Map<string, StreamMuxerFactory>()

  constructor (private readonly init: UpgraderInit) {}

  /** Offer a security protocol; the first added is preferred. */
  addEncrypter (encrypter: ConnectionEncrypter): void {
    this.encrypters.set(encrypter.protocol, encrypter)
  }

  /** Offer a stream muxer; the first added is preferred. */
  addMuxer (muxer: StreamMuxerFactory): void {
    this.muxers.set(muxer.protocol, muxer)
  }

  /** The muxers on offer (Noise reads them for its optional in-handshake negotiation). */
  streamMuxers (): Map<string, StreamMuxerFactory> {
    return this.muxers
  }

  /** The security protocols on offer. */
  connectionEncrypters (): Map<string, ConnectionEncrypter> {
    return this.encrypters
  }

  /**
   * Upgrade `maConn`. Aborted by `signal`; the caller owns timeouts and closing `maConn` on
   * failure. Throws `LocalPeerIdError` when the remote is ourselves.
   */
  async upgrade (maConn: MultiaddrConnection, direction: 'inbound' | 'outbound', signal: AbortSignal): Promise<UpgradedConnection> {
    // An inbound WebRTC connection is secured and multiplexed by its transport (Noise on a data
    // channel, data channels as streams): its own upgrade runs instead of ours.
    const own = preUpgradeOf(maConn)
    if (own !== undefined) return await own(signal)
    const initiator = direction === 'outbound'
    const negotiate = initiator ? select : handle
    const encryption = await step('security-negotiation', async () => negotiate(maConn, [...this.encrypters.keys()], { signal }))
    const encrypter = this.encrypters.get(encryption)
    if (encrypter == null) throw new UpgradeError('security-negotiation', `negotiated unknown protocol ${encryption}`)
    // Both sides list their muxers inside the Noise handshake (the "inlined muxer negotiation"
    // extension that go-libp2p and js-libp2p speak), which saves a round trip; when the remote
    // lists none (rust-libp2p), we fall back to multistream-select on the encrypted stream.
    const options = { signal, skipStreamMuxerNegotiation: this.init.inlineMuxerNegotiation === false }
    // Noise handshakes over a stand-in for the socket; once it is done, our SecureChannel takes
    // the socket over with Noise's cipher states (own framing, coalesced writes) and Noise's
    // own encrypted stream stays unattached. Other encrypters keep their own stream.
    const ownFraming = encryption === '/noise' && this.init.ownNoiseFraming !== false
    const below = ownFraming ? new HandshakeStream(maConn) : maConn
    const secured = await step('handshake', async () => initiator ? encrypter.secureOutbound(below, options) : encrypter.secureInbound(below, options))
    let connection = secured.connection
    if (below instanceof HandshakeStream) {
      const cipher = noiseCipherOf(secured.connection)
      // Without readable cipher states (another Noise version), the stand-in stays in place.
      if (cipher != null) connection = new SecureChannel(maConn, cipher, below.detach())
    }
    if (secured.remotePeer.equals(this.init.localPeer)) throw new LocalPeerIdError(maConn.remoteAddr)
    // The muxer takes its role from the secured stream's direction (Yamux: client = outbound,
    // odd stream ids), which the streams copy from the socket. A connection upgraded in the
    // other role than the socket's (DCUtR's punched connection, dialed by both sides) must give
    // the muxer the role of the upgrade, or both sides would be Yamux clients.
    const role = initiator ? 'outbound' : 'inbound'
    if (connection.direction !== role) (connection as { direction: 'inbound' | 'outbound' }).direction = role
    let factory = secured.streamMuxer
    if (factory == null) {
      const negotiated = await step('muxer-negotiation', async () => negotiate(connection, [...this.muxers.keys()], { signal }))
      factory = this.muxers.get(negotiated)
      if (factory == null) throw new UpgradeError('muxer-negotiation', `negotiated unknown muxer ${negotiated}`)
    }
    const multiplexer = factory.protocol
    // Yamux runs on our channel from here on: its window updates can wait for other data.
    if (connection instanceof SecureChannel && multiplexer === YAMUX_PROTOCOL) connection.holdWindowUpdates()
    const muxer = factory.createStreamMuxer(connection)
    return { maConn, secured: connection, muxer, remotePeer: secured.remotePeer, encryption, multiplexer }
  }

  /**
   * The `Upgrader` handed to a js-libp2p transport. Outbound upgrades resolve `transport.dial()`
   * with an {@link UpgradedConnection}; inbound connections are passed to `onInbound`, whose
   * rejection makes the transport drop the socket. With `outboundRole` `'Listener'` (a dial
   * with `roleOverride: 'Listener'`), or a transport's `initiator: false`, an outbound
   * connection is upgraded as the listener: multistream-select listener, Noise responder and
   * Yamux server.
   */
  transportUpgrader (onInbound: (maConn: MultiaddrConnection) => Promise<void>, outboundRole: 'Dialer' | 'Listener' = 'Dialer'): Upgrader {
    const upgrade = this.upgrade.bind(this)
    const streamMuxers = this.streamMuxers.bind(this)
    const connectionEncrypters = this.connectionEncrypters.bind(this)
    return {
      async upgradeOutbound (maConn: MultiaddrConnection, opts: UpgraderOptions): Promise<Connection> {
        const listener = outboundRole === 'Listener' || opts.initiator === false
        const upgraded = await upgrade(maConn, listener ? 'inbound' : 'outbound', opts.signal)
        // Transports pass this value through `dial()` untouched; the swarm reads it back as
        // an UpgradedConnection (see `dialUpgraded`).
        return upgraded as unknown as Connection
      },
      async upgradeInbound (maConn: MultiaddrConnection): Promise<void> {
        await onInbound(maConn)
      },
      createInboundAbortSignal (signal: AbortSignal) {
        return Object.assign(AbortSignal.any([signal]), { clear () {} })
      },
      getStreamMuxers: streamMuxers,
      getConnectionEncrypters: connectionEncrypters
    }
  }
}

/** Run one upgrade step, labelling its failure with the step. */
async function step<T> (phase: UpgradePhase, run: () => Promise<T>): Promise<T> {
  try {
    return await run()
  } catch (err) {
    throw new UpgradeError(phase, err)
  }
}

/** @internal The value a transport's `dial()` resolves to, through `transportUpgrader`. */
export function dialUpgraded (value: Connection): UpgradedConnection {
  return value as unknown as UpgradedConnection
}

/** @internal Drop an upgraded connection that will not be used (denied, superseded). */
export function abortUpgraded (upgraded: UpgradedConnection, err: Error): void {
  upgraded.muxer.abort(err)
  upgraded.maConn.abort(err)
  // @libp2p/websockets 10.1.21 closes the socket with code 1006 on abort, which WebSocket
  // implementations refuse, so the peer would never see the close: close it ourselves.
  const socket = (upgraded.maConn as { websocket?: { readyState: number, close: (code: number, reason: string) => void } }).websocket
  if (socket != null && socket.readyState < 2) socket.close(4000, 'aborted')
}
