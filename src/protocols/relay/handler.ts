/**
 * The relay's connection handler: it reads the hop requests of its connection's remote
 * (reservations and circuits) and answers them as the behaviour decides, opens stop streams to
 * its remote when the remote is the destination of a circuit, and runs the circuits whose
 * source is its remote (their splice with the byte and time limits).
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { readFrame, writeFrame } from '../../behaviour/framing.js'
import { describe, toError } from '../../core/errors.js'
import { deadline } from '../../core/timers.js'
import { HOP_PROTOCOL, MAX_PENDING_STREAMS, STOP_PROTOCOL } from './config.js'
import { MAX_MESSAGE_SIZE, decodeHopMessage, decodeStopMessage, encodeHopMessage, encodeStopMessage, signVoucher } from './message.js'
import { CircuitIOError, splice } from './splice.js'
import type { Config, DenialBound } from './config.js'
import type { HopMessage, Limit, StatusCode } from './message.js'
import type { Splice } from './splice.js'
import type { Context, Waker } from '../../behaviour/context.js'
import type { ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, SubstreamProtocol } from '../../behaviour/connection-handler.js'
import type { ConnectionId } from '../../core/ids.js'
import type { PeerId, PrivateKey, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:relay')

/** Identifies a circuit at the relay. */
export type CircuitId = number & { readonly __brand: 'CircuitId' }

/**
 * A hop request read from a client, waiting for the behaviour's answer: the stream it came
 * on, and for a circuit the destination. Opaque to the behaviour, which hands it back.
 */
export class HopRequest {
  /** @internal */
  constructor (
    /** @internal */ readonly stream: Stream,
    /** The destination, for a CONNECT; undefined for a RESERVE. */
    readonly dstPeerId?: PeerId
  ) {}
}

/** What the behaviour tells a handler. */
export type FromBehaviour =
  | { readonly type: 'AcceptReservationReq', readonly request: HopRequest, readonly addrs: readonly Multiaddr[] }
  | { readonly type: 'DenyReservationReq', readonly request: HopRequest, readonly status: StatusCode, readonly bound?: DenialBound }
  | {
    /** Open a stop stream to this handler's remote, the circuit's destination. */
    readonly type: 'NegotiateOutboundConnect'
    readonly circuitId: CircuitId
    readonly request: HopRequest
    readonly srcPeerId: PeerId
    readonly srcConnectionId: ConnectionId
  }
  | { readonly type: 'DenyCircuitReq', readonly circuitId?: CircuitId, readonly request: HopRequest, readonly status: StatusCode, readonly bound?: DenialBound }
  | {
    /** Answer the source OK and relay between its hop stream and the destination's stop stream. */
    readonly type: 'AcceptAndDriveCircuit'
    readonly circuitId: CircuitId
    readonly dstPeerId: PeerId
    readonly request: HopRequest
    readonly dstStream: Stream
  }

/** What a handler reports to its behaviour. */
export type ToBehaviour =
  | { readonly type: 'ReservationReqReceived', readonly request: HopRequest, readonly renewed: boolean }
  | { readonly type: 'ReservationReqAccepted', readonly renewed: boolean }
  | { readonly type: 'ReservationReqAcceptFailed', readonly renewed: boolean, readonly error: Error }
  | { readonly type: 'ReservationReqDenied', readonly status: StatusCode, readonly bound?: DenialBound }
  | { readonly type: 'ReservationTimedOut' }
  | { readonly type: 'CircuitReqReceived', readonly request: HopRequest, readonly dstPeerId: PeerId }
  | { readonly type: 'CircuitReqDenied', readonly circuitId?: CircuitId, readonly dstPeerId: PeerId, readonly status: StatusCode, readonly bound?: DenialBound }
  | {
    readonly type: 'OutboundConnectNegotiated'
    readonly circuitId: CircuitId
    readonly srcPeerId: PeerId
    readonly srcConnectionId: ConnectionId
    readonly request: HopRequest
    readonly dstStream: Stream
  }
  | {
    readonly type: 'OutboundConnectNegotiationFailed'
    readonly circuitId: CircuitId
    readonly srcPeerId: PeerId
    readonly srcConnectionId: ConnectionId
    readonly request: HopRequest
    readonly status: StatusCode
    readonly error: Error
  }
  | { readonly type: 'CircuitReqAccepted', readonly circuitId: CircuitId, readonly dstPeerId: PeerId }
  | { readonly type: 'CircuitReqAcceptFailed', readonly circuitId: CircuitId, readonly dstPeerId: PeerId, readonly error: Error }
  | { readonly type: 'CircuitClosed', readonly circuitId: CircuitId, readonly dstPeerId: PeerId, readonly error?: Error }

/** The `info` of an outbound stop stream: which circuit it is for. */
interface StopInfo {
  readonly circuitId: CircuitId
  readonly request: HopRequest
  readonly srcPeerId: PeerId
  readonly srcConnectionId: ConnectionId
}

/** What a relay handler needs besides the config. */
export interface HandlerInit {
  /** The connection's remote. */
  readonly remotePeerId: PeerId
  /**
   * The connection is itself relayed: the handler then serves nothing (the spec: no
   * reservations or circuits over relayed connections), as rust-libp2p's dummy handler.
   */
  readonly relayed: boolean
  /** Our key, to sign reservation vouchers; without it reservations carry none. */
  readonly signingKey?: PrivateKey
  readonly localPeerId: PeerId
}

/** The relay handler of one connection. */
export class Handler implements ConnectionHandler<FromBehaviour, ToBehaviour, StopInfo | undefined> {
  private readonly results: ToBehaviour[] = []
  private readonly stopRequests: StopInfo[] = []
  /** Inbound hop streams being read or waiting for an answer, and stop streams being opened. */
  private readonly pending = new Set<Stream>()
  private pendingStops = 0
  private readonly circuits = new Set<Splice>()
  private reservationTimer?: ReturnType<typeof setTimeout>
  private waker?: Waker
  private closed = false

  constructor (private readonly config: Config, private readonly init: HandlerInit) {}

  /** Whether the remote holds a reservation on this connection. */
  get hasReservation (): boolean {
    return this.reservationTimer != null
  }

  listenProtocol (): SubstreamProtocol<StopInfo | undefined> {
    return { protocols: this.init.relayed ? [] : [HOP_PROTOCOL] }
  }

  /** Kept open while the remote holds a reservation or a request is being answered. */
  connectionKeepAlive (): boolean {
    return this.reservationTimer != null || this.pending.size > 0 || this.stopRequests.length > 0 || this.pendingStops > 0
  }

  onBehaviourEvent (event: FromBehaviour): void {
    if (this.closed) {
      if ('request' in event) event.request.stream.abort(new Error('connection closed'))
      if (event.type === 'AcceptAndDriveCircuit') event.dstStream.abort(new Error('connection closed'))
      return
    }
    switch (event.type) {
      case 'AcceptReservationReq':
        void this.acceptReservation(event.request, event.addrs)
        break
      case 'DenyReservationReq':
        void this.answer(event.request, { type: 'STATUS', status: event.status }).then((ok) => {
          if (ok) this.report({ type: 'ReservationReqDenied', status: event.status, ...(event.bound == null ? {} : { bound: event.bound }) })
        })
        break
      case 'NegotiateOutboundConnect':
        this.stopRequests.push({ circuitId: event.circuitId, request: event.request, srcPeerId: event.srcPeerId, srcConnectionId: event.srcConnectionId })
        this.waker?.wake()
        break
      case 'DenyCircuitReq': {
        const { circuitId, request, status, bound } = event
        const dstPeerId = request.dstPeerId
        void this.answer(request, { type: 'STATUS', status }).then(() => {
          if (dstPeerId != null) this.report({ type: 'CircuitReqDenied', circuitId, dstPeerId, status, ...(bound == null ? {} : { bound }) })
        })
        break
      }
      case 'AcceptAndDriveCircuit':
        void this.driveCircuit(event.circuitId, event.dstPeerId, event.request, event.dstStream)
        break
    }
  }

  onConnectionEvent (event: ConnectionEvent<StopInfo | undefined>): void {
    switch (event.type) {
      case 'FullyNegotiatedInbound':
        if (this.init.relayed || this.pending.size >= MAX_PENDING_STREAMS) {
          log('too many hop requests in progress from %p, resetting one', this.init.remotePeerId)
          event.stream.abort(new Error('too many hop requests in progress'))
          return
        }
        void this.readRequest(event.stream)
        break
      case 'FullyNegotiatedOutbound':
        if (event.info != null) void this.connect(event.stream, event.info)
        else event.stream.abort(new Error('unexpected stream'))
        break
      case 'DialUpgradeError': {
        const info = event.info
        if (info == null) return
        this.pendingStops--
        info.request.stream.abort(event.error)
        this.report({ ...stopFailure(info), status: 'CONNECTION_FAILED', error: event.error })
        break
      }
      default:
    }
  }

  poll (cx: Context): ConnectionHandlerEvent<ToBehaviour, StopInfo | undefined> | undefined {
    this.waker = cx.waker
    const result = this.results.shift()
    if (result != null) return { type: 'NotifyBehaviour', event: result }
    const stop = this.stopRequests.shift()
    if (stop != null && !this.closed) {
      this.pendingStops++
      return { type: 'OutboundSubstreamRequest', protocol: { protocols: [STOP_PROTOCOL], info: stop, timeout: this.config.streamTimeout } }
    }
    return undefined
  }

  close (): void {
    this.closed = true
    clearTimeout(this.reservationTimer)
    this.reservationTimer = undefined
    const err = new Error('connection closed')
    for (const stream of this.pending) stream.abort(err)
    this.pending.clear()
    for (const stop of this.stopRequests.splice(0)) stop.request.stream.abort(err)
    for (const circuit of this.circuits) circuit.abort(new CircuitIOError('the connection to the circuit\'s source closed'))
    this.circuits.clear()
  }

  /** Read one hop request and hand it to the behaviour. */
  private async readRequest (stream: Stream): Promise<void> {
    this.pending.add(stream)
    stream.addEventListener('close', () => { this.pending.delete(stream) })
    const timeout = deadline(this.config.streamTimeout)
    let message: HopMessage
    try {
      message = decodeHopMessage(await readFrame(stream, { maxSize: MAX_MESSAGE_SIZE, signal: timeout.signal }))
    } catch (err) {
      log('unreadable hop request from %p: %s', this.init.remotePeerId, describe(err))
      // The spec's answer to a request we cannot read; best effort, the stream goes anyway.
      await writeFrame(stream, encodeHopMessage({ type: 'STATUS', status: 'MALFORMED_MESSAGE' }), { maxSize: MAX_MESSAGE_SIZE, signal: timeout.signal }).catch(() => {})
      this.drop(stream, err)
      return
    } finally {
      timeout.clear()
    }
    if (this.closed) return
    switch (message.type) {
      case 'RESERVE':
        this.report({ type: 'ReservationReqReceived', request: new HopRequest(stream), renewed: this.hasReservation })
        break
      case 'CONNECT':
        this.report({ type: 'CircuitReqReceived', request: new HopRequest(stream, message.peer.id), dstPeerId: message.peer.id })
        break
      case 'STATUS':
        await this.answer(new HopRequest(stream), { type: 'STATUS', status: 'UNEXPECTED_MESSAGE' })
        break
    }
  }

  private async acceptReservation (request: HopRequest, addrs: readonly Multiaddr[]): Promise<void> {
    const renewed = this.hasReservation
    const expire = Math.floor((Date.now() + this.config.reservationDuration) / 1000)
    let voucher: Uint8Array | undefined
    try {
      if (this.init.signingKey != null) {
        voucher = await signVoucher(this.init.signingKey, { relay: this.init.localPeerId, peer: this.init.remotePeerId, expiration: expire })
      }
    } catch (err) {
      log.error('signing a reservation voucher failed: %e', err)
    }
    const limit: Limit = { duration: this.config.maxCircuitDuration, data: this.config.maxCircuitBytes }
    const ok = await this.answer(request, { type: 'STATUS', status: 'OK', reservation: { expire, addrs, voucher }, limit })
    if (this.closed) return
    if (!ok) {
      this.report({ type: 'ReservationReqAcceptFailed', renewed, error: new Error('writing the reservation failed') })
      return
    }
    clearTimeout(this.reservationTimer)
    this.reservationTimer = setTimeout(() => {
      this.reservationTimer = undefined
      this.report({ type: 'ReservationTimedOut' })
    }, this.config.reservationDuration)
    this.report({ type: 'ReservationReqAccepted', renewed })
  }

  /** Open the stop side of a circuit on a negotiated stop stream. */
  private async connect (stream: Stream, info: StopInfo): Promise<void> {
    this.pendingStops--
    this.pending.add(stream)
    const timeout = deadline(this.config.streamTimeout)
    const limit: Limit = { duration: this.config.maxCircuitDuration, data: this.config.maxCircuitBytes }
    try {
      const options = { maxSize: MAX_MESSAGE_SIZE, signal: timeout.signal }
      await writeFrame(stream, encodeStopMessage({ type: 'CONNECT', peer: { id: info.srcPeerId, addrs: [] }, limit }), options)
      const answer = decodeStopMessage(await readFrame(stream, options))
      this.pending.delete(stream)
      if (answer.type !== 'STATUS' || answer.status !== 'OK') {
        const status = answer.type === 'STATUS' ? answer.status : undefined
        stream.abort(new Error('stop request refused'))
        this.report({
          ...stopFailure(info),
          // What the destination said, when it is one of the reasons the spec lets the source know.
          status: status === 'RESOURCE_LIMIT_EXCEEDED' || status === 'PERMISSION_DENIED' ? status : 'CONNECTION_FAILED',
          error: new Error(answer.type === 'STATUS' ? `the destination answered ${answer.status}` : 'the destination answered CONNECT')
        })
        return
      }
      if (this.closed) {
        stream.abort(new Error('connection closed'))
        return
      }
      this.report({ type: 'OutboundConnectNegotiated', ...circuitOf(info), dstStream: stream })
    } catch (err) {
      this.drop(stream, err)
      if (!this.closed) this.report({ ...stopFailure(info), status: 'CONNECTION_FAILED', error: toError(err) })
    } finally {
      timeout.clear()
    }
  }

  /** Answer the source OK, then relay between its hop stream and the destination's stop stream. */
  private async driveCircuit (circuitId: CircuitId, dstPeerId: PeerId, request: HopRequest, dstStream: Stream): Promise<void> {
    const limit: Limit = { duration: this.config.maxCircuitDuration, data: this.config.maxCircuitBytes }
    const ok = await this.answer(request, { type: 'STATUS', status: 'OK', limit }, false)
    if (!ok || this.closed) {
      dstStream.abort(new Error('the circuit\'s source is gone'))
      request.stream.abort(new Error('the circuit was not accepted'))
      if (!this.closed) this.report({ type: 'CircuitReqAcceptFailed', circuitId, dstPeerId, error: new Error('writing the circuit\'s answer failed') })
      return
    }
    const circuit = splice(request.stream, dstStream, { maxDuration: this.config.maxCircuitDuration, maxBytes: this.config.maxCircuitBytes })
    this.circuits.add(circuit)
    this.report({ type: 'CircuitReqAccepted', circuitId, dstPeerId })
    try {
      await circuit.done
      this.report({ type: 'CircuitClosed', circuitId, dstPeerId })
    } catch (err) {
      log('circuit %d from %p to %p ended: %s', circuitId, this.init.remotePeerId, dstPeerId, describe(err))
      this.report({ type: 'CircuitClosed', circuitId, dstPeerId, error: toError(err) })
    } finally {
      this.circuits.delete(circuit)
    }
  }

  /**
   * Write `message` on the request's stream; with `close`, close the stream after it. Resolves
   * false (the stream reset) when that fails.
   */
  private async answer (request: HopRequest, message: HopMessage, close = true): Promise<boolean> {
    const { stream } = request
    this.pending.add(stream)
    const timeout = deadline(this.config.streamTimeout)
    try {
      await writeFrame(stream, encodeHopMessage(message), { maxSize: MAX_MESSAGE_SIZE, signal: timeout.signal })
      if (close) await stream.close({ signal: timeout.signal })
      return true
    } catch (err) {
      this.drop(stream, err)
      return false
    } finally {
      this.pending.delete(stream)
      timeout.clear()
    }
  }

  private drop (stream: Stream, err: unknown): void {
    this.pending.delete(stream)
    stream.abort(toError(err))
  }

  private report (event: ToBehaviour): void {
    if (this.closed) return
    this.results.push(event)
    this.waker?.wake()
  }
}

function circuitOf (info: StopInfo): { circuitId: CircuitId, srcPeerId: PeerId, srcConnectionId: ConnectionId, request: HopRequest } {
  return { circuitId: info.circuitId, srcPeerId: info.srcPeerId, srcConnectionId: info.srcConnectionId, request: info.request }
}

function stopFailure (info: StopInfo): { type: 'OutboundConnectNegotiationFailed', circuitId: CircuitId, srcPeerId: PeerId, srcConnectionId: ConnectionId, request: HopRequest } {
  return { type: 'OutboundConnectNegotiationFailed', ...circuitOf(info) }
}
