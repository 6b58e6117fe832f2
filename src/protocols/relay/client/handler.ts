/**
 * The relay client's connection handler, on a connection to a relay: it makes and renews the
 * reservation of a listener (hop `RESERVE`), opens circuits for dials (hop `CONNECT`) and takes
 * the circuits peers open to us (stop `CONNECT`), handing each stream to the transport.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { readFrame, writeFrame } from '../../../behaviour/framing.js'
import { describe, toError } from '../../../core/errors.js'
import { MAX_TIMER_DELAY, deadline } from '../../../core/timers.js'
import { HOP_PROTOCOL, MAX_PENDING_STREAMS, STOP_PROTOCOL, defaultConfig } from '../config.js'
import { MAX_MESSAGE_SIZE, decodeHopMessage, decodeStopMessage, encodeHopMessage, encodeStopMessage } from '../message.js'
import { ConnectError, ReserveError, connectErrorOf, reserveErrorOf } from './errors.js'
import type { PendingCircuit, ReservationSink } from './channel.js'
import type { Limit, StopMessage } from '../message.js'
import type { Context, Waker } from '../../../behaviour/context.js'
import type { ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, StreamUpgradeError, SubstreamProtocol } from '../../../behaviour/connection-handler.js'
import type { PeerId, Stream } from '@libp2p/interface'

const log = logger('peerswarm:relay-client')

/** Time for one hop or stop exchange with the relay, in ms (rust-libp2p's stream timeout). */
const STREAM_TIMEOUT = defaultConfig.streamTimeout

/** What the behaviour tells a handler. */
export type FromBehaviour =
  | { /** Make (or take over) the reservation of `sink`'s listener. */ readonly type: 'Reserve', readonly sink: ReservationSink }
  | { /** `sink`'s listener closed: stop renewing its reservation. */ readonly type: 'ResetReservation', readonly sink: ReservationSink }
  | { /** Open a circuit for a dial. */ readonly type: 'Connect', readonly request: PendingCircuit }

/** What a handler reports. */
export type ToBehaviour =
  | { readonly type: 'ReservationReqAccepted', readonly sink: ReservationSink, readonly renewal: boolean, readonly limit?: Limit }
  | { readonly type: 'ReservationFailed', readonly sink: ReservationSink, readonly error: ReserveError }
  | { readonly type: 'OutboundCircuitEstablished', readonly limit?: Limit }
  | { readonly type: 'InboundCircuitEstablished', readonly srcPeerId: PeerId, readonly limit?: Limit }

/** The `info` of the handler's outbound hop streams. */
type Info =
  | { readonly kind: 'reserve', readonly sink: ReservationSink, readonly renewal: boolean }
  | { readonly kind: 'connect', readonly request: PendingCircuit }

interface ReservationState {
  readonly sink: ReservationSink
  /** `requested`: not yet accepted; `accepted`: held, renewal timer set; `renewing`: held, renewal under way. */
  state: 'requested' | 'accepted' | 'renewing'
  timer?: ReturnType<typeof setTimeout>
}

/** The relay client handler of one connection. */
export class Handler implements ConnectionHandler<FromBehaviour, ToBehaviour, Info | undefined> {
  private readonly results: ToBehaviour[] = []
  private readonly requests: Info[] = []
  private readonly outstanding = new Set<PendingCircuit>()
  /** Streams being read or written (hop exchanges, inbound stop requests). */
  private readonly inflight = new Set<Stream>()
  private inboundStops = 0
  private reservation?: ReservationState
  private waker?: Waker
  private closed = false

  /**
   * `relayed`: the connection is itself relayed; the handler then serves nothing (no
   * reservations or circuits over a circuit), as rust-libp2p's dummy handler.
   */
  constructor (private readonly relayPeerId: PeerId, private readonly relayed: boolean) {}

  listenProtocol (): SubstreamProtocol<Info | undefined> {
    return { protocols: this.relayed ? [] : [STOP_PROTOCOL] }
  }

  /** Kept open while we hold (or are making) a reservation or open circuits. */
  connectionKeepAlive (): boolean {
    return this.reservation != null || this.requests.length > 0 || this.outstanding.size > 0 || this.inflight.size > 0
  }

  onBehaviourEvent (event: FromBehaviour): void {
    if (this.closed || this.relayed) {
      const why = this.relayed ? 'not over a relayed connection' : 'the connection to the relay closed'
      // A reservation on a closed connection: the behaviour decides (it learns of the closed
      // connection from the swarm, and may reserve again elsewhere).
      if (event.type === 'Reserve' && this.relayed) event.sink.onFailure(new ReserveError('Protocol', why))
      if (event.type === 'Connect') event.request.reject(new ConnectError(this.relayed ? 'Protocol' : 'ConnectionClosed', why))
      return
    }
    switch (event.type) {
      case 'Reserve': {
        const previous = this.reservation
        if (previous?.sink === event.sink) return
        if (previous != null) {
          clearTimeout(previous.timer)
          previous.sink.onFailure(new ReserveError('Superseded', 'another listener took the reservation on this relay over'))
        }
        this.reservation = { sink: event.sink, state: 'requested' }
        this.requests.push({ kind: 'reserve', sink: event.sink, renewal: false })
        break
      }
      case 'ResetReservation':
        if (this.reservation?.sink === event.sink) {
          clearTimeout(this.reservation.timer)
          this.reservation = undefined
        }
        break
      case 'Connect':
        if (event.request.settled) return
        this.outstanding.add(event.request)
        this.requests.push({ kind: 'connect', request: event.request })
        break
    }
    this.waker?.wake()
  }

  onConnectionEvent (event: ConnectionEvent<Info | undefined>): void {
    switch (event.type) {
      case 'FullyNegotiatedInbound':
        if (this.relayed || this.inboundStops >= MAX_PENDING_STREAMS) {
          event.stream.abort(new Error('too many circuit requests in progress'))
          return
        }
        void this.acceptStop(event.stream)
        break
      case 'FullyNegotiatedOutbound':
        if (event.info?.kind === 'reserve') void this.reserve(event.stream, event.info.sink, event.info.renewal)
        else if (event.info?.kind === 'connect') void this.connect(event.stream, event.info.request)
        else event.stream.abort(new Error('unexpected stream'))
        break
      case 'DialUpgradeError':
        if (event.info?.kind === 'reserve') {
          const kind = event.error.kind === 'NegotiationFailed' ? 'Unsupported' : 'Io'
          this.reservationFailed(event.info.sink, new ReserveError(kind, upgradeMessage(event.error), { cause: event.error }))
        } else if (event.info?.kind === 'connect') {
          this.outstanding.delete(event.info.request)
          const kind = event.error.kind === 'NegotiationFailed' ? 'Unsupported' : 'Io'
          event.info.request.reject(new ConnectError(kind, upgradeMessage(event.error), { cause: event.error }))
        }
        break
      default:
    }
  }

  poll (cx: Context): ConnectionHandlerEvent<ToBehaviour, Info | undefined> | undefined {
    this.waker = cx.waker
    const result = this.results.shift()
    if (result != null) return { type: 'NotifyBehaviour', event: result }
    for (let info = this.requests.shift(); info != null && !this.closed; info = this.requests.shift()) {
      // Requests given up meanwhile (a reset reservation, an aborted dial) need no stream.
      if (info.kind === 'reserve' && this.reservation?.sink !== info.sink) continue
      if (info.kind === 'connect' && info.request.settled) {
        this.outstanding.delete(info.request)
        continue
      }
      return { type: 'OutboundSubstreamRequest', protocol: { protocols: [HOP_PROTOCOL], info, timeout: STREAM_TIMEOUT } }
    }
    return undefined
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    // The behaviour learns of the closed connection from the swarm and tells the listener, or
    // reserves again.
    clearTimeout(this.reservation?.timer)
    this.reservation = undefined
    for (const request of this.outstanding) request.reject(new ConnectError('ConnectionClosed', `the connection to the relay ${this.relayPeerId.toString()} closed`))
    this.outstanding.clear()
    this.requests.length = 0
    for (const stream of this.inflight) stream.abort(new Error('connection closed'))
    this.inflight.clear()
  }

  /** Send RESERVE on `stream` and take the relay's answer. */
  private async reserve (stream: Stream, sink: ReservationSink, renewal: boolean): Promise<void> {
    this.inflight.add(stream)
    const timeout = deadline(STREAM_TIMEOUT)
    const options = { maxSize: MAX_MESSAGE_SIZE, signal: timeout.signal }
    let answer
    try {
      await writeFrame(stream, encodeHopMessage({ type: 'RESERVE' }), options)
      answer = decodeHopMessage(await readFrame(stream, options))
      await stream.close(options).catch(() => {})
    } catch (err) {
      stream.abort(toError(err))
      this.reservationFailed(sink, new ReserveError('Io', `the reservation exchange failed: ${describe(err)}`, { cause: err }))
      return
    } finally {
      this.inflight.delete(stream)
      timeout.clear()
    }
    if (this.closed || this.reservation?.sink !== sink) return
    if (answer.type !== 'STATUS') {
      this.reservationFailed(sink, new ReserveError('Protocol', `the relay answered ${answer.type} to RESERVE`))
      return
    }
    if (answer.status !== 'OK') {
      this.reservationFailed(sink, reserveErrorOf(answer.status))
      return
    }
    const granted = answer.reservation
    const remaining = granted == null ? 0 : granted.expire * 1000 - Date.now()
    if (granted == null || remaining <= 0) {
      this.reservationFailed(sink, new ReserveError('Protocol', granted == null ? 'the relay accepted without a reservation' : 'the reservation has already expired'))
      return
    }
    const reservation = this.reservation
    reservation.state = 'accepted'
    // Renew at three quarters of what is left, as rust-libp2p does.
    reservation.timer = setTimeout(() => {
      if (this.reservation !== reservation) return
      reservation.state = 'renewing'
      this.requests.push({ kind: 'reserve', sink, renewal: true })
      this.waker?.wake()
    }, Math.min(MAX_TIMER_DELAY, Math.floor(remaining * 3 / 4)))
    sink.onReservation(granted.addrs, renewal)
    this.report({ type: 'ReservationReqAccepted', sink, renewal, limit: answer.limit })
  }

  /** Send CONNECT on `stream`; on OK the stream is the circuit. */
  private async connect (stream: Stream, request: PendingCircuit): Promise<void> {
    this.inflight.add(stream)
    const timeout = deadline(STREAM_TIMEOUT, request.signal)
    const signal = timeout.signal
    const options = { maxSize: MAX_MESSAGE_SIZE, signal }
    try {
      await writeFrame(stream, encodeHopMessage({ type: 'CONNECT', peer: { id: request.dstPeerId, addrs: [] } }), options)
      const answer = decodeHopMessage(await readFrame(stream, options))
      if (answer.type !== 'STATUS') throw new ConnectError('Protocol', `the relay answered ${answer.type} to CONNECT`)
      if (answer.status !== 'OK') throw connectErrorOf(answer.status)
      this.inflight.delete(stream)
      this.outstanding.delete(request)
      if (this.closed) throw new ConnectError('ConnectionClosed', 'the connection to the relay closed')
      request.resolve({ stream, limit: answer.limit })
      this.report({ type: 'OutboundCircuitEstablished', limit: answer.limit })
    } catch (err) {
      stream.abort(toError(err))
      this.outstanding.delete(request)
      request.reject(err instanceof ConnectError ? err : new ConnectError('Io', `the circuit exchange failed: ${describe(err)}`, { cause: err }))
    } finally {
      this.inflight.delete(stream)
      timeout.clear()
    }
  }

  /** A peer reaches us through the relay: accept while we hold a reservation. */
  private async acceptStop (stream: Stream): Promise<void> {
    this.inboundStops++
    this.inflight.add(stream)
    const timeout = deadline(STREAM_TIMEOUT)
    const options = { maxSize: MAX_MESSAGE_SIZE, signal: timeout.signal }
    const answer = async (message: StopMessage): Promise<void> => { await writeFrame(stream, encodeStopMessage(message), options) }
    try {
      let request: StopMessage
      try {
        request = decodeStopMessage(await readFrame(stream, options))
      } catch (err) {
        await answer({ type: 'STATUS', status: 'MALFORMED_MESSAGE' }).catch(() => {})
        throw err
      }
      if (request.type !== 'CONNECT') {
        await answer({ type: 'STATUS', status: 'UNEXPECTED_MESSAGE' })
        await stream.close(options)
        return
      }
      const sink = this.reservation?.state === 'requested' ? undefined : this.reservation?.sink
      if (sink == null || sink.closed || this.closed) {
        // As rust-libp2p: no circuits without a reservation (e.g. after its listener closed).
        await answer({ type: 'STATUS', status: 'NO_RESERVATION' })
        await stream.close(options)
        return
      }
      await answer({ type: 'STATUS', status: 'OK' })
      this.inflight.delete(stream)
      if (this.closed || !sink.onIncoming(stream, request.peer.id, request.limit)) {
        stream.abort(new Error('the listener closed'))
        return
      }
      this.report({ type: 'InboundCircuitEstablished', srcPeerId: request.peer.id, limit: request.limit })
    } catch (err) {
      log('circuit request from %p failed: %s', this.relayPeerId, describe(err))
      stream.abort(toError(err))
    } finally {
      this.inboundStops--
      this.inflight.delete(stream)
      timeout.clear()
    }
  }

  private reservationFailed (sink: ReservationSink, error: ReserveError): void {
    if (this.reservation?.sink !== sink) return
    clearTimeout(this.reservation.timer)
    this.reservation = undefined
    log('reservation on %p failed: %s', this.relayPeerId, error.message)
    // The behaviour tells the listener, or tries again when it was making a lost one again.
    this.report({ type: 'ReservationFailed', sink, error })
  }

  private report (event: ToBehaviour): void {
    if (this.closed) return
    this.results.push(event)
    this.waker?.wake()
  }
}

function upgradeMessage (error: StreamUpgradeError): string {
  return error.kind === 'NegotiationFailed' ? 'the relay does not speak the hop protocol' : `opening a hop stream failed: ${error.message}`
}
