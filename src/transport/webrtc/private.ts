/**
 * `/webrtc`, private to private (spec `webrtc/webrtc.md`): two peers that share a relay meet
 * over a relayed connection, exchange SDP offer, answer and ICE candidates on a
 * `/webrtc-signaling/0.0.1` stream there (`signaling.ts`), then talk over a direct WebRTC
 * connection whose streams are data channels (`stream.ts`, `muxer.ts`). The relayed
 * connection is closed once the direct one is up.
 *
 * **No Noise.** As the spec's FAQ says and js-libp2p does, the DTLS fingerprints travel in the
 * offer and answer over the relayed connection, which Noise already authenticated; the WebRTC
 * stack checks the remote certificate against them. The remote peer is the relayed
 * connection's.
 *
 * **Addresses.** A peer listens on `<relay address>/p2p/<relay>/p2p-circuit/webrtc`: this
 * transport makes the reservation on the relay through the relay client's transport and
 * announces `…/p2p-circuit/webrtc/p2p/<us>`. A dialer of that address opens a circuit with the
 * relay client's transport, upgrades it as usual, signals on it and closes it. Circuits that
 * reach a `/webrtc` listener's reservation serve signaling only: listen on
 * `<relay>/p2p-circuit` as well (another relay) for plain relayed connections.
 *
 * **Where the relayed connection lives.** Never in the swarm: the dialer upgrades the circuit
 * itself (the swarm's upgrader, without handing it over), the listener takes the circuits of
 * its reservation before the swarm does and hands the swarm the WebRTC connection instead,
 * whose own upgrade (`pre-upgraded.ts`: upgrade the circuit, wait for the signaling stream,
 * answer) runs inside the swarm's pending-inbound gate and `connectionTimeout`.
 *
 * The WebRTC stack: the page's `RTCPeerConnection`, or on Node node-datachannel's W3C
 * polyfill (`node-datachannel/polyfill`, loaded at the first dial or listen).
 *
 * @module
 */
import { TypedEventEmitter, transportSymbol } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { select, handle } from '@libp2p/multistream-select'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { PeerswarmError } from '../../core/errors.js'
import { deadline } from '../../core/timers.js'
import { lpStream } from '@libp2p/utils'
import * as varint from 'uint8-varint'
import { Uint8ArrayList } from 'uint8arraylist'
import { BrowserPeerConnection, hasRTCPeerConnection } from './browser-peer.js'
import { WebRTCUnavailableError } from './direct.js'
import { DataChannelMuxer, WEBRTC_MUXER, WebRTCConnection } from './muxer.js'
import { markPreUpgraded } from './pre-upgraded.js'
import {
  MAX_REMOTE_CANDIDATES, MAX_SIGNALING_MESSAGE_SIZE, SIGNALING_PROTOCOL, SignalingType, WebRTCSignalingError,
  decodeSignalingMessage, encodeSignalingMessage, parseCandidate, parseSdpSummary
} from './signaling.js'
import type { DataChannelMuxerOptions } from './muxer.js'
import type { PreUpgradedConnection } from './pre-upgraded.js'
import type { SignalingMessage } from './signaling.js'
import type { Connection, CreateListenerOptions, DialTransportOptions, Listener, ListenerEvents, MultiaddrConnection, PeerId, Stream, Transport, Upgrader, UpgraderOptions } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:webrtc')

/** A connection after the swarm's upgrade (the shape `upgrade/upgrader.ts` hands transports). */
type UpgradedConnection = PreUpgradedConnection

/** What the swarm's upgrader resolves a transport's upgrade with, through `Connection`. */
function dialUpgraded (value: Connection): UpgradedConnection {
  return value as unknown as UpgradedConnection
}

/** Drop a relayed connection at once. */
function abortUpgraded (upgraded: UpgradedConnection, err: Error): void {
  upgraded.muxer.abort(err)
  upgraded.maConn.abort(err)
}

/** A read announced more than {@link MAX_SIGNALING_MESSAGE_SIZE}. */
class FrameTooLargeError extends Error {}

/** Errors of `lpStream` that mean the remote announced or sent more than the limit. */
const TOO_LARGE = new Set(['InvalidDataLengthError', 'InvalidDataLengthLengthError', 'StreamBufferError'])

/** Read one length-prefixed frame of at most `maxSize` bytes; the stream stays usable. */
async function readFrame (stream: Stream, options: { maxSize: number, signal: AbortSignal }): Promise<Uint8Array> {
  const max = options.maxSize
  const lp = lpStream(stream, { maxDataLength: max, maxBufferSize: 2 * (max + varint.encodingLength(max)) })
  try {
    return (await lp.read({ signal: options.signal })).subarray()
  } catch (err) {
    if (err instanceof Error && TOO_LARGE.has(err.name)) throw new FrameTooLargeError(err.message, { cause: err })
    throw err
  } finally {
    try {
      lp.unwrap()
    } catch {}
  }
}

/** Write `bytes` as one length-prefixed frame; waits for `drain` when the stream is full. */
async function writeFrame (stream: Stream, bytes: Uint8Array, options: { maxSize: number, signal: AbortSignal }): Promise<void> {
  if (bytes.byteLength > options.maxSize) throw new WebRTCSignalingError(`signaling message of ${bytes.byteLength} bytes, more than ${options.maxSize}`)
  options.signal.throwIfAborted()
  if (stream.send(new Uint8ArrayList(varint.encode(bytes.byteLength), bytes))) return
  // The `drain` event, not `onDrain()` (which resolves at once after its first use in @libp2p/utils 7.4).
  await new Promise<void>((resolve, reject) => {
    const done = (): void => {
      stream.removeEventListener('drain', onDrain)
      stream.removeEventListener('close', onClose)
      options.signal.removeEventListener('abort', onAbort)
    }
    const onDrain = (): void => { done(); resolve() }
    const onClose = (): void => { done(); reject(new WebRTCSignalingError('the signaling stream closed while writing')) }
    const onAbort = (): void => { done(); reject(options.signal.reason) }
    stream.addEventListener('drain', onDrain)
    stream.addEventListener('close', onClose)
    options.signal.addEventListener('abort', onAbort)
  })
}

/**
 * Options of the `/webrtc` transport.
 *
 * @group Transports
 */
export interface WebRTCOptions extends DataChannelMuxerOptions {
  /**
   * The peer connections' configuration. Default `{ iceServers: [] }`: no STUN server, so
   * only host candidates, enough on one host or LAN; give STUN (and TURN) servers to cross
   * NATs.
   */
  readonly rtcConfiguration?: RTCConfiguration
  /** How long the signaling may take, from the stream's opening to a connected peer connection (default 10 s). */
  readonly signalingTimeout?: number
  /** Listener: signaling exchanges at once (default 16); further circuits are refused. */
  readonly maxPendingSignaling?: number
  /** Listener: streams other than signaling refused on one circuit before it fails (default 8). */
  readonly maxOtherStreams?: number
}

const DEFAULTS = {
  signalingTimeout: 10_000,
  maxPendingSignaling: 16,
  maxOtherStreams: 8,
  /** How long closing the signaling stream and the relayed connection may take. */
  closeTimeout: 5_000
} as const

/** The code of `/p2p-circuit` and of `/webrtc`. */
const P2P_CIRCUIT = 290
const WEBRTC = 281

type RTCClass = typeof globalThis.RTCPeerConnection

let loading: Promise<RTCClass> | undefined

/** The page's `RTCPeerConnection`, or node-datachannel's polyfill (imported once). */
async function loadRTCPeerConnection (): Promise<RTCClass> {
  if (hasRTCPeerConnection()) return globalThis.RTCPeerConnection
  const specifier = `${['node', 'datachannel'].join('-')}/polyfill`
  loading ??= (import(specifier) as Promise<{ RTCPeerConnection?: RTCClass, default?: { RTCPeerConnection?: RTCClass } }>).then(mod => {
    const RTC = mod.RTCPeerConnection ?? mod.default?.RTCPeerConnection
    if (RTC == null) throw new Error('node-datachannel/polyfill has no RTCPeerConnection')
    return RTC
  }).catch((err: unknown) => {
    loading = undefined
    throw new WebRTCUnavailableError(err)
  })
  return loading
}

// ---- addresses ----

/** `…/p2p/<relay>/p2p-circuit/webrtc[/p2p/<peer>]` taken apart, or undefined. */
export function parseWebRTCAddress (address: Multiaddr): { readonly circuit: Multiaddr, readonly peerId?: PeerId } | undefined {
  const c = address.getComponents()
  const circuit = c.findIndex(x => x.code === P2P_CIRCUIT)
  if (circuit < 1 || c[circuit - 1].name !== 'p2p' || c[circuit + 1]?.code !== WEBRTC) return undefined
  const rest = c.slice(circuit + 2)
  if (rest.length > 1 || (rest.length === 1 && (rest[0].name !== 'p2p' || rest[0].value == null))) return undefined
  let peerId: PeerId | undefined
  try {
    peerId = rest[0]?.value != null ? peerIdFromString(rest[0].value) : undefined
  } catch {
    return undefined
  }
  const relayed = multiaddr([...c.slice(0, circuit + 1), ...rest])
  return { circuit: relayed, peerId }
}

/** The last `/p2p/<id>` of `address`. */
function lastPeerId (address: Multiaddr): PeerId | undefined {
  const value = address.getComponents().filter(x => x.name === 'p2p').at(-1)?.value
  try {
    return value != null ? peerIdFromString(value) : undefined
  } catch {
    return undefined
  }
}

// ---- closing what signaling used ----

/** Close `stream` (our FIN), wait at most `ms` for the remote's, then abort what is left. */
async function closeStream (stream: Stream, ms: number): Promise<void> {
  if (stream.status !== 'open') return
  await new Promise<void>(resolve => {
    const timer = setTimeout(done, ms)
    function done (): void {
      clearTimeout(timer)
      stream.removeEventListener('close', done)
      resolve()
    }
    stream.addEventListener('close', done)
    stream.close({ signal: AbortSignal.timeout(ms) }).catch(() => {})
  })
  if ((stream.status as string) !== 'closed') stream.abort(new WebRTCSignalingError('the signaling stream did not close in time'))
}

/** Close a relayed connection that signaling used (gracefully, else abort). */
async function closeRelayed (relayed: UpgradedConnection, ms: number): Promise<void> {
  try {
    const signal = AbortSignal.timeout(ms)
    await relayed.muxer.close({ signal })
    await relayed.secured.close({ signal })
    await relayed.maConn.close({ signal })
  } catch (err) {
    abortUpgraded(relayed, err instanceof Error ? err : new Error(String(err)))
  }
}

// ---- one peer connection and its signaling ----

/** A `/webrtc` peer connection, its libp2p side, and the signaling that sets it up. */
class Session {
  readonly maConn: WebRTCConnection
  private pc?: RTCPeerConnection
  private muxer?: DataChannelMuxer
  private closed = false
  /** Remote ICE candidates received so far. */
  candidates = 0

  constructor (remoteAddr: Multiaddr, direction: 'inbound' | 'outbound', private readonly options: WebRTCOptions) {
    this.maConn = new WebRTCConnection({ remoteAddr, direction, log, closePeer: () => { this.close() } })
  }

  /** Make the peer connection and the muxer (which takes channels the remote opens early). */
  private open (RTC: RTCClass): RTCPeerConnection {
    const pc = new RTC(this.options.rtcConfiguration ?? { iceServers: [] })
    this.pc = pc
    this.muxer = new DataChannelMuxer(this.maConn, new BrowserPeerConnection(pc, 'init'), this.options)
    pc.addEventListener('connectionstatechange', () => {
      const state = pc.connectionState
      log.trace('peer connection %s', state)
      if (state === 'failed' || state === 'closed' || state === 'disconnected') {
        this.maConn.onPeerClosed()
        this.close()
      }
    })
    if (this.closed) pc.close()
    return pc
  }

  /** Dialer: offer, read the answer, trade candidates until connected. */
  async offer (RTC: RTCClass, stream: Stream, signal: AbortSignal): Promise<void> {
    const pc = this.open(RTC)
    // A channel, so that the offer has a data section; the remote ignores it by its label.
    const init = pc.createDataChannel('init')
    this.sendCandidates(pc, stream, signal)
    const offer = await pc.createOffer()
    await this.write(stream, { type: SignalingType.SDP_OFFER, data: offer.sdp ?? '' }, signal)
    await pc.setLocalDescription(offer)
    const answer = await this.read(stream, signal)
    if (answer.type !== SignalingType.SDP_ANSWER) throw new WebRTCSignalingError(`expected an SDP answer, got ${SignalingType[answer.type]}`)
    parseSdpSummary(answer.data)
    await this.describe(pc, { type: 'answer', sdp: answer.data })
    await this.candidatesUntilConnected(pc, stream, signal)
    await closeInit(init, signal)
  }

  /** Listener: read the offer, answer, trade candidates until connected. */
  async answer (RTC: RTCClass, stream: Stream, signal: AbortSignal): Promise<void> {
    const offer = await this.read(stream, signal)
    if (offer.type !== SignalingType.SDP_OFFER) throw new WebRTCSignalingError(`expected an SDP offer, got ${SignalingType[offer.type]}`)
    parseSdpSummary(offer.data)
    const pc = this.open(RTC)
    this.sendCandidates(pc, stream, signal)
    await this.describe(pc, { type: 'offer', sdp: offer.data })
    const answer = await pc.createAnswer()
    await this.write(stream, { type: SignalingType.SDP_ANSWER, data: answer.sdp ?? '' }, signal)
    await pc.setLocalDescription(answer)
    await this.candidatesUntilConnected(pc, stream, signal)
  }

  /** The swarm's shape of the connection. */
  upgraded (remotePeer: PeerId): PreUpgradedConnection {
    if (this.muxer == null) throw new WebRTCSignalingError('no peer connection')
    return { maConn: this.maConn, secured: this.maConn, muxer: this.muxer, remotePeer, encryption: '/dtls', multiplexer: WEBRTC_MUXER }
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    try {
      this.pc?.close()
    } catch (err) {
      log('closing a peer connection failed: %s', err)
    }
    this.maConn.onPeerClosed()
  }

  private async describe (pc: RTCPeerConnection, description: RTCSessionDescriptionInit): Promise<void> {
    try {
      await pc.setRemoteDescription(description)
    } catch (err) {
      throw new WebRTCSignalingError(`the remote ${description.type} was refused: ${(err as Error).message}`, { cause: err })
    }
  }

  private sendCandidates (pc: RTCPeerConnection, stream: Stream, signal: AbortSignal): void {
    pc.onicecandidate = ({ candidate }) => {
      if (pc.connectionState === 'connected' || candidate == null || candidate.candidate === '') return
      this.write(stream, { type: SignalingType.ICE_CANDIDATE, data: JSON.stringify(candidate.toJSON()) }, signal)
        .catch((err: unknown) => { log('sending an ICE candidate failed: %s', err) })
    }
  }

  private async write (stream: Stream, message: SignalingMessage, signal: AbortSignal): Promise<void> {
    await writeFrame(stream, encodeSignalingMessage(message), { maxSize: MAX_SIGNALING_MESSAGE_SIZE, signal })
  }

  private async read (stream: Stream, signal: AbortSignal): Promise<SignalingMessage> {
    let frame: Uint8Array
    try {
      frame = await readFrame(stream, { maxSize: MAX_SIGNALING_MESSAGE_SIZE, signal })
    } catch (err) {
      if (err instanceof FrameTooLargeError) throw new WebRTCSignalingError(`signaling message larger than ${MAX_SIGNALING_MESSAGE_SIZE} bytes`, { cause: err })
      if (signal.aborted) throw new WebRTCSignalingError('signaling did not complete in time', { cause: err })
      throw new WebRTCSignalingError(`reading the signaling stream failed: ${(err as Error).message}`, { cause: err })
    }
    return decodeSignalingMessage(frame)
  }

  /** Add the remote's candidates until the peer connection is connected (or fails). */
  private async candidatesUntilConnected (pc: RTCPeerConnection, stream: Stream, signal: AbortSignal): Promise<void> {
    const stopReading = new AbortController()
    const connected = new Promise<void>((resolve, reject) => {
      const check = (): void => {
        const state = pc.connectionState
        if (state === 'connected') resolve()
        else if (state === 'failed' || state === 'closed') reject(new WebRTCSignalingError(`the peer connection ${state} during signaling`))
      }
      pc.addEventListener('connectionstatechange', check)
      signal.addEventListener('abort', () => { reject(new WebRTCSignalingError(`no peer connection within the signaling time (ICE ${pc.iceConnectionState}, ${this.candidates} remote candidates)`, { cause: signal.reason })) }, { once: true })
      check()
    })
    connected.then(() => { stopReading.abort() }, () => { stopReading.abort() })
    const readSignal = AbortSignal.any([signal, stopReading.signal])
    let remoteDone = false
    while (!stopReading.signal.aborted && !remoteDone) {
      let message: SignalingMessage
      try {
        message = await this.read(stream, readSignal)
      } catch (err) {
        if (stopReading.signal.aborted) break
        // The remote may end its side once it sent all it had; wait for ICE then.
        if (!signal.aborted && !(err instanceof WebRTCSignalingError && err.cause instanceof FrameTooLargeError) && stream.readStatus !== 'readable') {
          remoteDone = true
          break
        }
        throw err
      }
      if (message.type !== SignalingType.ICE_CANDIDATE) throw new WebRTCSignalingError(`expected an ICE candidate, got ${SignalingType[message.type]}`)
      if (++this.candidates > MAX_REMOTE_CANDIDATES) throw new WebRTCSignalingError(`more than ${MAX_REMOTE_CANDIDATES} ICE candidates`)
      const candidate = parseCandidate(message.data)
      if (candidate === undefined) continue
      await pc.addIceCandidate(candidate).catch((err: unknown) => { log('the remote candidate %s was refused: %s', candidate.candidate, err) })
    }
    await connected
    pc.onicecandidate = null
  }
}

/** Close the dialer's `init` channel once open, and wait for it to close (ids are reused). */
async function closeInit (channel: RTCDataChannel, signal: AbortSignal): Promise<void> {
  await new Promise<void>(resolve => {
    const done = (): void => { signal.removeEventListener('abort', done); resolve() }
    signal.addEventListener('abort', done, { once: true })
    channel.addEventListener('close', done, { once: true })
    if (channel.readyState === 'open') channel.close()
    else if (channel.readyState === 'closed') done()
    else channel.addEventListener('open', () => { channel.close() }, { once: true })
  })
}

// ---- the transport ----

/**
 * The `/webrtc` transport (see the module comment). Made by `SwarmBuilder`'s
 * `withRelayClient().withWebRTC()`; it needs the relay client's transport.
 *
 * @group Transports
 */
export class WebRTCTransport implements Transport {
  readonly [transportSymbol] = true as const
  readonly [Symbol.toStringTag] = 'peerswarm/webrtc'

  constructor (private readonly relay: Transport, readonly options: WebRTCOptions = {}) {}

  async dial (address: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    options.signal.throwIfAborted()
    const target = parseWebRTCAddress(address)
    if (target?.peerId == null) throw new PeerswarmError('ERR_INVALID_MULTIADDR', `not a /p2p-circuit/webrtc/p2p/<peer> address: ${address.toString()}`)
    const RTC = await loadRTCPeerConnection()
    const relayed = dialUpgraded(await this.relay.dial(target.circuit, options))
    const session = new Session(address, 'outbound', this.options)
    const timeout = deadline(this.options.signalingTimeout ?? DEFAULTS.signalingTimeout, options.signal)
    const signal = timeout.signal
    let stream: Stream | undefined
    try {
      if (!relayed.remotePeer.equals(target.peerId)) throw new WebRTCSignalingError(`the relayed connection reached ${relayed.remotePeer.toString()}, not ${target.peerId.toString()}`)
      stream = await relayed.muxer.createStream({ signal })
      await select(stream, SIGNALING_PROTOCOL, { signal })
      await session.offer(RTC, stream, signal)
    } catch (err) {
      session.close()
      stream?.abort(err instanceof Error ? err : new Error(String(err)))
      void closeRelayed(relayed, DEFAULTS.closeTimeout)
      throw err
    } finally {
      timeout.clear()
    }
    log('dialed %s directly, %d remote candidates', address, session.candidates)
    const signalingStream = stream
    void closeStream(signalingStream, DEFAULTS.closeTimeout).then(async () => { await closeRelayed(relayed, DEFAULTS.closeTimeout) })
    return session.upgraded(target.peerId) as unknown as Connection
  }

  createListener (options: CreateListenerOptions): Listener {
    return new WebRTCListener(this.relay, options.upgrader, this.options)
  }

  /** `…/p2p/<relay>/p2p-circuit/webrtc`. */
  listenFilter (addresses: Multiaddr[]): Multiaddr[] {
    return addresses.filter(a => { const p = parseWebRTCAddress(a); return p != null && p.peerId == null })
  }

  /** `…/p2p/<relay>/p2p-circuit/webrtc/p2p/<peer>`. */
  dialFilter (addresses: Multiaddr[]): Multiaddr[] {
    return addresses.filter(a => parseWebRTCAddress(a)?.peerId != null)
  }
}

/**
 * A `/webrtc` listener: a reservation on one relay (the relay client's listener) whose
 * circuits carry signaling, and whose connections are the direct ones.
 */
class WebRTCListener extends TypedEventEmitter<ListenerEvents> implements Listener {
  private relayListener?: Listener
  private pending = 0
  /** Circuits refused because `maxPendingSignaling` exchanges were running. */
  refused = 0

  constructor (private readonly relay: Transport, private readonly upgrader: Upgrader, private readonly options: WebRTCOptions) {
    super()
  }

  async listen (address: Multiaddr): Promise<void> {
    const parsed = parseWebRTCAddress(address)
    if (parsed == null || parsed.peerId != null) throw new PeerswarmError('ERR_INVALID_MULTIADDR', `not a /p2p-circuit/webrtc listen address: ${address.toString()}`)
    const intercept: Upgrader = {
      ...this.upgrader,
      upgradeInbound: async (circuit: MultiaddrConnection) => { await this.onCircuit(circuit) }
    }
    const listener = this.relay.createListener({ upgrader: intercept })
    this.relayListener = listener
    listener.addEventListener('listening', () => { this.safeDispatchEvent('listening') })
    listener.addEventListener('close', (evt) => { this.safeDispatchEvent('close', { detail: (evt as CustomEvent<Error | undefined>).detail }) })
    await listener.listen(parsed.circuit)
  }

  /** The relay listener's addresses, with `/webrtc` after `/p2p-circuit`. */
  getAddrs (): Multiaddr[] {
    return (this.relayListener?.getAddrs() ?? []).map(a => {
      const c = a.getComponents()
      const circuit = c.findIndex(x => x.code === P2P_CIRCUIT)
      return circuit < 0 ? a : multiaddr([...c.slice(0, circuit + 1), { code: WEBRTC, name: 'webrtc' }, ...c.slice(circuit + 1)])
    })
  }

  updateAnnounceAddrs (): void {}

  async close (): Promise<void> {
    await this.relayListener?.close()
  }

  /** A circuit through our reservation: hand the swarm the WebRTC connection it leads to. */
  private async onCircuit (circuit: MultiaddrConnection): Promise<void> {
    const source = lastPeerId(circuit.remoteAddr)
    if (source == null) throw new WebRTCSignalingError(`circuit without a source peer: ${circuit.remoteAddr.toString()}`)
    if (this.pending >= (this.options.maxPendingSignaling ?? DEFAULTS.maxPendingSignaling)) {
      this.refused++
      throw new WebRTCSignalingError(`${this.pending} signaling exchanges running: circuit from ${source.toString()} refused`)
    }
    const RTC = await loadRTCPeerConnection()
    const session = new Session(multiaddr(`/webrtc/p2p/${source.toString()}`), 'inbound', this.options)
    const maConn = markPreUpgraded(session.maConn, async (gateSignal) => {
      this.pending++
      const timeout = deadline(this.options.signalingTimeout ?? DEFAULTS.signalingTimeout, gateSignal)
      const signal = timeout.signal
      let relayed: UpgradedConnection | undefined
      let stream: Stream | undefined
      try {
        relayed = dialUpgraded(await this.upgrader.upgradeOutbound(circuit, { signal, initiator: false } as unknown as UpgraderOptions))
        if (!relayed.remotePeer.equals(source)) throw new WebRTCSignalingError(`the circuit's peer ${relayed.remotePeer.toString()} is not its source ${source.toString()}`)
        stream = await this.signalingStream(relayed, signal)
        await session.answer(RTC, stream, signal)
      } catch (err) {
        session.close()
        stream?.abort(err instanceof Error ? err : new Error(String(err)))
        if (relayed != null) abortUpgraded(relayed, err instanceof Error ? err : new Error(String(err)))
        throw err
      } finally {
        timeout.clear()
        this.pending--
      }
      log('accepted %p directly, %d remote candidates', source, session.candidates)
      const done = relayed
      void closeStream(stream, DEFAULTS.closeTimeout).then(async () => { await closeRelayed(done, DEFAULTS.closeTimeout) })
      return session.upgraded(source)
    })
    await this.upgrader.upgradeInbound(maConn, { signal: AbortSignal.any([]) })
  }

  /** The circuit's first `/webrtc-signaling` stream; other protocols are refused, a few at most. */
  private async signalingStream (relayed: UpgradedConnection, signal: AbortSignal): Promise<Stream> {
    const maxOther = this.options.maxOtherStreams ?? DEFAULTS.maxOtherStreams
    return await new Promise<Stream>((resolve, reject) => {
      let others = 0
      let settled = false
      const finish = (err: Error | undefined, stream?: Stream): void => {
        if (settled) return
        settled = true
        signal.removeEventListener('abort', onAbort)
        if (err != null) reject(err)
        else if (stream != null) resolve(stream)
      }
      const onAbort = (): void => { finish(new WebRTCSignalingError('no signaling stream in time', { cause: signal.reason })) }
      signal.addEventListener('abort', onAbort, { once: true })
      relayed.muxer.addEventListener('stream', (evt) => {
        const stream = (evt as CustomEvent<Stream>).detail
        if (settled) {
          stream.abort(new WebRTCSignalingError('signaling only'))
          return
        }
        handle(stream, SIGNALING_PROTOCOL, { signal }).then(() => { finish(undefined, stream) }, (err: unknown) => {
          stream.abort(err instanceof Error ? err : new Error(String(err)))
          if (++others > maxOther) finish(new WebRTCSignalingError(`${others} streams on a signaling circuit, none of them signaling`))
        })
      })
      if (signal.aborted) onAbort()
    })
  }
}

/**
 * A `/webrtc` transport factory over `relay` (the relay client's transport). The builder's
 * `withRelayClient().withWebRTC()` adds it; this is for hand-made set-ups.
 *
 * @group Transports
 */
export function webRTC (relay: Transport, options: WebRTCOptions = {}): () => WebRTCTransport {
  return () => new WebRTCTransport(relay, options)
}
