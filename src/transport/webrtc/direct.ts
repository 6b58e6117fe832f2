/**
 * `/webrtc-direct` on Node (spec `webrtc/webrtc-direct.md`), over node-datachannel
 * (libdatachannel), loaded with a dynamic `import()` the first time a dial or listen needs it.
 *
 * **Listener.** One UDP port per listener, shared by every connection through libdatachannel's
 * ICE UDP mux: a STUN binding request that no peer connection claims reaches
 * `onUnhandledStunRequest` with the dialer's ufrag and address; we then create a peer
 * connection on that port (ICE-lite answerer, DTLS passive, our self-signed ECDSA P-256
 * certificate), give it the dialer's offer written from the request (`sdp.ts`) and answer
 * with the same ufrag as ICE credentials. Once data channel 0 is open (DTLS and SCTP done),
 * the connection goes to the swarm, whose pending-inbound gate runs first; the Noise handshake
 * (we are its initiator) runs as the connection's upgrade (`pre-upgraded.ts`). At most
 * `maxPendingConnections` peer connections wait for their channel 0 at once (each STUN
 * request with a new ufrag costs one: the spec's denial-of-service warning); further requests
 * are dropped until one settles.
 *
 * **Dialer.** The multiaddr gives address, port and certhash; we choose a ufrag, set it as our
 * own ICE credentials (libdatachannel takes them, no SDP text munging needed), write the
 * listener's answer ourselves, wait for channel 0, and answer the listener's Noise handshake.
 *
 * DTLS fingerprint checks are off on both sides (the listener cannot know the dialer's
 * certificate in advance); Noise's prologue binds both fingerprints instead (`noise.ts`).
 *
 * @module
 */
import { TypedEventEmitter, transportSymbol } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { getThinWaistAddresses } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { PeerswarmError } from '../../core/errors.js'
import { certificateFrom, fingerprintFromSdp, fingerprintOfCerthash, generateCertificate } from './certificate.js'
import { MAX_MESSAGE_SIZE } from './message.js'
import { DataChannelMuxer, WEBRTC_MUXER, WebRTCConnection } from './muxer.js'
import { handshake, noisePrologue } from './noise.js'
import { markPreUpgraded } from './pre-upgraded.js'
import { dialerOffer, isValidUfrag, listenerAnswer, randomUfrag } from './sdp.js'
import { DataChannelStream } from './stream.js'
import { BrowserPeerConnection, hasRTCPeerConnection, mungeUfrag, sha256FingerprintOf } from './browser-peer.js'
import type { BasicPeerConnection } from './browser-peer.js'
import type { Certificate } from './certificate.js'
import type { DataChannelMuxerOptions } from './muxer.js'
import type { PreUpgradedConnection } from './pre-upgraded.js'
import type { UdpAddress } from './sdp.js'
import type { DataChannel } from './stream.js'
import type { TransportFactory } from '../transport.js'
import type { Connection, CreateListenerOptions, DialTransportOptions, Listener, ListenerEvents, PeerId, Transport, Upgrader } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:webrtc-direct')

/**
 * Options of the `/webrtc-direct` transport.
 *
 * @group Transports
 */
export interface WebRTCDirectOptions extends DataChannelMuxerOptions {
  /**
   * The listener's DTLS certificate (ECDSA P-256, PEM), to keep its certhash, and so its
   * addresses, across restarts. Default: a fresh one per transport, valid for a year.
   */
  readonly certificate?: { readonly pem: string, readonly privateKeyPem: string }
  /** How long ICE, DTLS and SCTP may take until data channel 0 opens (default 10 s). */
  readonly handshakeTimeout?: number
  /** Listener: peer connections waiting for their channel 0 at once (default 32). */
  readonly maxPendingConnections?: number
  /** Dialer: the local address to gather candidates on (default: libdatachannel's choice). */
  readonly dialBindAddress?: string
}

/** Defaults of {@link WebRTCDirectOptions}' own fields. */
const DEFAULTS = {
  handshakeTimeout: 10_000,
  maxPendingConnections: 32
} as const

/**
 * WebRTC needs node-datachannel (an optional peer dependency: `npm install node-datachannel`),
 * and it could not be loaded; `cause` says why.
 *
 * @group Errors
 */
export class WebRTCUnavailableError extends PeerswarmError {
  constructor (cause: unknown) {
    super('ERR_WEBRTC_UNAVAILABLE', `WebRTC needs the optional peer dependency node-datachannel (>= 0.33.4), which could not be loaded: ${(cause as Error)?.message ?? String(cause)}`, { cause })
  }
}

/**
 * A `/webrtc-direct` connection could not be set up (address, ICE, DTLS or SCTP): the message
 * says which step.
 *
 * @group Errors
 */
export class WebRTCDialError extends PeerswarmError {
  constructor (message: string, options?: { cause?: unknown }) {
    super('ERR_WEBRTC_DIAL', message, options)
  }
}

// ---- node-datachannel, as far as we use it ----

interface NdcPeerConnection {
  close: () => void
  setLocalDescription: (type: 'offer' | 'answer', init: { iceUfrag: string, icePwd: string }) => void
  setRemoteDescription: (sdp: string, type: 'offer' | 'answer') => void
  remoteFingerprint: () => { value: string }
  createDataChannel: (label: string, config?: { negotiated?: boolean, id?: number }) => DataChannel
  onDataChannel: (cb: (channel: DataChannel) => void) => void
  onStateChange: (cb: (state: string) => void) => void
}

interface NdcMuxListener {
  stop: () => void
  onUnhandledStunRequest: (cb: (request: { ufrag?: string, host: string, port: number }) => void) => void
}

interface NodeDataChannel {
  PeerConnection: new (name: string, config: Record<string, unknown>) => NdcPeerConnection
  IceUdpMuxListener: new (port: number, address?: string) => NdcMuxListener
}

let loading: Promise<NodeDataChannel> | undefined

/** node-datachannel, imported once. The specifier is not a literal, so bundlers leave it out. */
async function loadNodeDataChannel (): Promise<NodeDataChannel> {
  const specifier = ['node', 'datachannel'].join('-')
  loading ??= (import(specifier) as Promise<{ default?: NodeDataChannel } & NodeDataChannel>).then(
    mod => mod.default ?? mod,
    (err: unknown) => {
      loading = undefined
      throw new WebRTCUnavailableError(err)
    })
  return loading
}

// ---- addresses ----

interface DirectAddress {
  readonly udp: UdpAddress
  readonly certhashes: string[]
  readonly peerId?: string
}

/** `/ip4|ip6/<host>/udp/<port>/webrtc-direct[/certhash/<h>…][/p2p/<id>]`, or undefined. */
function parseAddress (address: Multiaddr): DirectAddress | undefined {
  const c = address.getComponents()
  if (c.length < 3 || (c[0].name !== 'ip4' && c[0].name !== 'ip6') || c[1].name !== 'udp' || c[2].name !== 'webrtc-direct') return undefined
  const certhashes: string[] = []
  let peerId: string | undefined
  for (const component of c.slice(3)) {
    if (component.name === 'certhash' && component.value != null) certhashes.push(component.value)
    else if (component.name === 'p2p' && component.value != null && peerId == null) peerId = component.value
    else return undefined
  }
  const port = Number(c[1].value)
  if (c[0].value == null || !Number.isInteger(port) || port < 0 || port > 65535) return undefined
  return { udp: { family: c[0].name === 'ip4' ? 4 : 6, host: c[0].value, port }, certhashes, peerId }
}

// ---- one peer connection ----

/** A peer connection with its libp2p side: the connection, the muxer and channel 0. */
class Peer {
  readonly maConn: WebRTCConnection
  readonly muxer: DataChannelMuxer
  readonly channel0: DataChannel
  readonly handshakeStream: DataChannelStream
  private state = 'new'
  private readonly waiters = new Set<(state: string) => void>()
  private closed = false
  /** Secured and handed to the swarm (a listener's close leaves it to the swarm). */
  handedOver = false

  constructor (readonly pc: BasicPeerConnection, remoteAddr: Multiaddr, direction: 'inbound' | 'outbound', options: WebRTCDirectOptions) {
    this.maConn = new WebRTCConnection({ remoteAddr, direction, log, closePeer: () => { this.close() } })
    // The muxer listens for channels at once: the remote may open some before Noise ends here.
    this.muxer = new DataChannelMuxer(this.maConn, pc, options)
    pc.onStateChange((state) => {
      this.state = state
      for (const waiter of this.waiters) waiter(state)
      if (state === 'closed' || state === 'failed' || state === 'disconnected') {
        this.maConn.onPeerClosed()
        this.close()
      }
    })
    this.channel0 = pc.createDataChannel('', { negotiated: true, id: 0 })
    // Listen on channel 0 before anything can arrive on it.
    this.handshakeStream = new DataChannelStream({ ...options, channel: this.channel0, direction: 'outbound', log })
  }

  /** Resolves when channel 0 is open; rejects on failure, timeout or abort. */
  async channel0Open (timeout: number, signal?: AbortSignal): Promise<void> {
    if (this.channel0.isOpen()) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { finish(new WebRTCDialError(`ICE, DTLS and SCTP did not complete within ${timeout} ms (peer connection ${this.state})`)) }, timeout)
      const onAbort = (): void => { finish(new WebRTCDialError('aborted while connecting', { cause: signal?.reason })) }
      const onState = (state: string): void => {
        if (state === 'failed' || state === 'closed') finish(new WebRTCDialError(`peer connection ${state} before data channel 0 opened`))
      }
      const finish = (err?: Error): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        this.waiters.delete(onState)
        if (err != null) reject(err)
        else resolve()
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.add(onState)
      this.channel0.onOpen(() => { finish() })
      if (signal?.aborted === true) onAbort()
    })
  }

  /** The swarm's shape of this connection, once Noise named the remote. */
  upgraded (remotePeer: PeerId): PreUpgradedConnection {
    return { maConn: this.maConn, secured: this.maConn, muxer: this.muxer, remotePeer, encryption: '/noise', multiplexer: WEBRTC_MUXER }
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    try {
      this.pc.close()
    } catch (err) {
      log('closing a peer connection failed: %s', err)
    }
    this.maConn.onPeerClosed()
    this.onClose?.()
  }

  onClose?: () => void
}

// ---- the transport ----

/**
 * The `/webrtc-direct` transport (see the module comment).
 *
 * @group Transports
 */
export class WebRTCDirectTransport implements Transport {
  readonly [transportSymbol] = true as const
  readonly [Symbol.toStringTag] = 'peerswarm/webrtc-direct'
  private certificate?: Promise<Certificate>

  constructor (private readonly options: WebRTCDirectOptions = {}) {}

  /** Our DTLS certificate (the listener's certhash; dials use it too). */
  async localCertificate (): Promise<Certificate> {
    const given = this.options.certificate
    this.certificate ??= given != null ? Promise.resolve(certificateFrom(given.pem, given.privateKeyPem)) : generateCertificate()
    return this.certificate
  }

  async dial (address: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    options.signal.throwIfAborted()
    const target = parseAddress(address)
    if (target == null || target.certhashes.length === 0) throw new WebRTCDialError(`not a /webrtc-direct address with a certhash: ${address.toString()}`)
    const listenerFingerprint = fingerprintOfCerthash(target.certhashes[0])
    const expected = target.peerId != null ? peerIdFromString(target.peerId) : undefined
    if (hasRTCPeerConnection()) return this.dialFromPage(address, target, listenerFingerprint, expected, options)
    const ndc = await loadNodeDataChannel()
    const certificate = await this.localCertificate()
    const ufrag = randomUfrag()
    const pc = new ndc.PeerConnection('peerswarm-dial', {
      iceServers: [],
      disableFingerprintVerification: true,
      disableAutoNegotiation: true,
      certificatePemFile: certificate.pem,
      keyPemFile: certificate.privateKeyPem,
      maxMessageSize: MAX_MESSAGE_SIZE,
      ...(this.options.dialBindAddress != null ? { bindAddress: this.options.dialBindAddress } : {})
    })
    const remoteAddr = multiaddr(`/ip${target.udp.family}/${target.udp.host}/udp/${target.udp.port}/webrtc-direct`)
    const peer = new Peer(pc, remoteAddr, 'outbound', this.options)
    return await this.upgradeDialed(peer, address, listenerFingerprint, expected, options, () => {
      pc.setLocalDescription('offer', { iceUfrag: ufrag, icePwd: ufrag })
      pc.setRemoteDescription(listenerAnswer(target.udp, listenerFingerprint, ufrag), 'answer')
      return certificate.fingerprint
    })
  }

  /** A dial with the page's `RTCPeerConnection` (browsers). */
  private async dialFromPage (address: Multiaddr, target: DirectAddress, listenerFingerprint: Uint8Array, expected: PeerId | undefined, options: DialTransportOptions): Promise<Connection> {
    const RTC = globalThis.RTCPeerConnection
    const keygen: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' }
    const certificate = await RTC.generateCertificate(keygen)
    const pc = new RTC({ iceServers: [], certificates: [certificate] })
    const remoteAddr = multiaddr(`/ip${target.udp.family}/${target.udp.host}/udp/${target.udp.port}/webrtc-direct`)
    // Channel 0 first: the offer must carry the data-channel section.
    const peer = new Peer(new BrowserPeerConnection(pc), remoteAddr, 'outbound', this.options)
    return await this.upgradeDialed(peer, address, listenerFingerprint, expected, options, async () => {
      const ufrag = randomUfrag()
      const offer = await pc.createOffer()
      await pc.setLocalDescription({ type: 'offer', sdp: mungeUfrag(offer.sdp ?? '', ufrag) })
      await pc.setRemoteDescription({ type: 'answer', sdp: listenerAnswer(target.udp, listenerFingerprint, ufrag) })
      const local = sha256FingerprintOf(pc.localDescription?.sdp ?? '')
      if (local == null) throw new WebRTCDialError('the local description has no sha-256 fingerprint')
      return fingerprintFromSdp(local)
    })
  }

  /**
   * The rest of a dial, from Node or a page: `describe` sets the offer and the listener's
   * answer and returns our certificate's fingerprint; then channel 0 opens, Noise runs on it as
   * the dialer (the prologue binding both fingerprints), and the connection is handed over.
   * The peer connection is closed if any step fails.
   */
  private async upgradeDialed (peer: Peer, address: Multiaddr, listenerFingerprint: Uint8Array, expected: PeerId | undefined, options: DialTransportOptions, describe: () => Uint8Array | Promise<Uint8Array>): Promise<Connection> {
    try {
      const localFingerprint = await describe()
      await peer.channel0Open(this.options.handshakeTimeout ?? DEFAULTS.handshakeTimeout, options.signal)
      const remotePeer = await handshake({
        upgrader: options.upgrader,
        role: 'dialer',
        prologue: noisePrologue(localFingerprint, listenerFingerprint),
        stream: peer.handshakeStream,
        remotePeer: expected,
        signal: options.signal
      })
      log('dialed %s: %p', address, remotePeer)
      // Transports hand the swarm its UpgradedConnection through dial()'s Connection type.
      return peer.upgraded(remotePeer) as unknown as Connection
    } catch (err) {
      peer.close()
      throw err
    }
  }

  createListener (options: CreateListenerOptions): Listener {
    return new WebRTCDirectListener(this, options.upgrader, this.options)
  }

  listenFilter (addresses: Multiaddr[]): Multiaddr[] {
    return addresses.filter(a => parseAddress(a)?.certhashes.length === 0 && parseAddress(a)?.peerId == null)
  }

  dialFilter (addresses: Multiaddr[]): Multiaddr[] {
    return addresses.filter(a => (parseAddress(a)?.certhashes.length ?? 0) > 0)
  }
}

/** The UDP ports our listeners hold in this process (libdatachannel's mux registry is per port). */
const PORT_TRIES = 20

class WebRTCDirectListener extends TypedEventEmitter<ListenerEvents> implements Listener {
  private mux?: NdcMuxListener
  private address?: UdpAddress
  private listenAddr?: Multiaddr
  private certificate?: Certificate
  private pending = 0
  private dropped = 0
  private closed = false
  /** Peer connections waiting for their channel 0, and STUN requests dropped for want of room. */
  get counters (): { readonly pending: number, readonly dropped: number, readonly peers: number } {
    return { pending: this.pending, dropped: this.dropped, peers: this.peers.size }
  }

  private readonly peers = new Map<string, Peer>()

  constructor (private readonly transport: WebRTCDirectTransport, private readonly upgrader: Upgrader, private readonly options: WebRTCDirectOptions) {
    super()
  }

  async listen (address: Multiaddr): Promise<void> {
    const parsed = parseAddress(address)
    if (parsed == null) throw new PeerswarmError('ERR_INVALID_MULTIADDR', `not a /webrtc-direct listen address: ${address.toString()}`)
    if (hasRTCPeerConnection()) throw new PeerswarmError('ERR_WEBRTC_LISTEN_UNSUPPORTED', 'a page cannot listen on /webrtc-direct (browsers accept no unsolicited UDP); dial a Node listener instead')
    const ndc = await loadNodeDataChannel()
    this.certificate = await this.transport.localCertificate()
    const { family, host } = parsed.udp
    // libdatachannel's mux neither binds port 0 nor reports the port it got: try random ones.
    const ports = parsed.udp.port !== 0 ? [parsed.udp.port] : Array.from({ length: PORT_TRIES }, () => 49152 + Math.floor(Math.random() * 16384))
    let lastError: unknown
    for (const port of ports) {
      try {
        this.mux = new ndc.IceUdpMuxListener(port, host)
        this.address = { family, host, port }
        break
      } catch (err) {
        lastError = err
      }
    }
    if (this.mux == null || this.address == null) throw new PeerswarmError('ERR_ADDRESS_IN_USE', `could not listen on UDP ${host}:${parsed.udp.port}: ${String(lastError)}`, { cause: lastError })
    this.listenAddr = multiaddr(`/ip${family}/${host}/udp/${this.address.port}/webrtc-direct`)
    this.mux.onUnhandledStunRequest((request) => { this.onStunRequest(ndc, request) })
    log('listening on %s', this.listenAddr)
    this.safeDispatchEvent('listening')
  }

  getAddrs (): Multiaddr[] {
    if (this.listenAddr == null || this.certificate == null || this.address == null) return []
    const certhash = this.certificate.certhash
    return getThinWaistAddresses(multiaddr(`/ip${this.address.family}/${this.address.host}/udp/${this.address.port}`), this.address.port)
      .map(a => a.encapsulate(`/webrtc-direct/certhash/${certhash}`))
  }

  updateAnnounceAddrs (): void {}

  async close (): Promise<void> {
    if (this.closed) return
    this.closed = true
    // Connections not yet handed to the swarm go; the swarm closes its own. The UDP port stays
    // until the last connection on it is gone.
    for (const peer of this.peers.values()) if (!peer.handedOver) peer.close()
    this.maybeStop()
    this.safeDispatchEvent('close')
  }

  private maybeStop (): void {
    if (!this.closed || this.peers.size > 0 || this.mux == null) return
    this.mux.stop()
    this.mux = undefined
  }

  private onStunRequest (ndc: NodeDataChannel, request: { ufrag?: string, host: string, port: number }): void {
    const { ufrag, host, port } = request
    if (this.closed || this.address == null || this.certificate == null || ufrag == null || !isValidUfrag(ufrag)) return
    const key = `${host}:${port}:${ufrag}`
    if (this.peers.has(key)) return
    if (this.pending >= (this.options.maxPendingConnections ?? DEFAULTS.maxPendingConnections)) {
      this.dropped++
      if ((this.dropped & (this.dropped - 1)) === 0) log('dropped %d STUN requests: %d connections pending', this.dropped, this.pending)
      return
    }
    const remote: UdpAddress = { family: host.includes(':') ? 6 : 4, host, port }
    const certificate = this.certificate
    const pc = new ndc.PeerConnection('peerswarm-listen', {
      iceServers: [],
      enableIceUdpMux: true,
      bindAddress: this.address.host,
      portRangeBegin: this.address.port,
      portRangeEnd: this.address.port,
      disableFingerprintVerification: true,
      disableAutoNegotiation: true,
      certificatePemFile: certificate.pem,
      keyPemFile: certificate.privateKeyPem,
      maxMessageSize: MAX_MESSAGE_SIZE
    })
    const peer = new Peer(pc, multiaddr(`/ip${remote.family}/${host}/udp/${port}/webrtc-direct`), 'inbound', this.options)
    this.peers.set(key, peer)
    peer.onClose = () => {
      this.peers.delete(key)
      this.maybeStop()
    }
    this.pending++
    void this.accept(pc, peer, remote, ufrag, certificate).finally(() => { this.pending-- })
  }

  private async accept (pc: NdcPeerConnection, peer: Peer, remote: UdpAddress, ufrag: string, certificate: Certificate): Promise<void> {
    try {
      pc.setRemoteDescription(dialerOffer(remote, ufrag), 'offer')
      pc.setLocalDescription('answer', { iceUfrag: ufrag, icePwd: ufrag })
      await peer.channel0Open(this.options.handshakeTimeout ?? DEFAULTS.handshakeTimeout)
    } catch (err) {
      log('inbound from %s:%d failed before Noise: %s', remote.host, remote.port, err)
      peer.close()
      return
    }
    // The swarm's gates run first; then Noise, as this connection's upgrade.
    const maConn = markPreUpgraded(peer.maConn, async (signal) => {
      const dialerFingerprint = fingerprintFromSdp(pc.remoteFingerprint().value)
      const remotePeer = await handshake({
        upgrader: this.upgrader,
        role: 'listener',
        prologue: noisePrologue(dialerFingerprint, certificate.fingerprint),
        stream: peer.handshakeStream,
        signal
      })
      peer.handedOver = true
      return peer.upgraded(remotePeer)
    })
    this.upgrader.upgradeInbound(maConn, { signal: AbortSignal.any([]) }).catch((err: unknown) => {
      log('inbound from %s:%d refused or failed: %s', remote.host, remote.port, err)
      peer.close()
    })
  }
}

/**
 * A `/webrtc-direct` transport factory for `SwarmBuilder.withTransport` (Node: needs
 * node-datachannel; the builder's `withWebRTCDirect()` adds it).
 *
 * @group Transports
 */
export function webRTCDirect (options: WebRTCDirectOptions = {}): TransportFactory {
  return () => new WebRTCDirectTransport(options)
}
