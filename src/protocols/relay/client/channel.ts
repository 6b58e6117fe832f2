/**
 * How the relay client's transport and behaviour talk (rust-libp2p's channels between
 * `client::Transport` and `client::Behaviour`): the transport queues dial and listen requests,
 * the behaviour takes them in its `poll` and hands them to the handler of a connection to the
 * relay, which answers the transport directly.
 *
 * @module
 */
import { AbortError } from '../../../core/errors.js'
import type { Limit } from '../message.js'
import type { Context, Waker } from '../../../behaviour/context.js'
import type { PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * What a listener of the relay transport offers the handler holding its reservation: the
 * listener's side of rust-libp2p's `to_listener` channel.
 */
export interface ReservationSink {
  /** The relay. */
  readonly relayPeerId: PeerId
  /** The relay's transport address from the listen address (before `/p2p/<relay>`), if given. */
  readonly relayAddr?: Multiaddr
  /** The listener is closed: nothing more is taken. */
  readonly closed: boolean
  /** The circuit addresses the reservation gives us (`…/p2p/<relay>/p2p-circuit/p2p/<us>`). */
  getAddrs: () => Multiaddr[]
  /** The relay accepted (or renewed) the reservation, with these relay addresses. */
  onReservation: (addrs: readonly Multiaddr[], renewal: boolean) => void
  /** The reservation failed or ended: the listener closes with `error`. */
  onFailure: (error: Error) => void
  /**
   * The reservation was lost with its connection and the client is making it again: the
   * listener keeps listening without addresses (they come back with the next reservation).
   */
  onSuspended: () => void
  /** A peer reached us through the relay; false when the listener is closed (the stream is then the caller's). */
  onIncoming: (stream: Stream, srcPeerId: PeerId, limit?: Limit) => boolean
}

/** An open circuit: the stream to the destination through the relay, and the relay's limits. */
export interface Circuit {
  readonly stream: Stream
  readonly limit?: Limit
}

/** A dial through a relay, waiting for its circuit. Settles once; a late circuit is reset. */
export class PendingCircuit {
  readonly promise: Promise<Circuit>
  private settledFlag = false
  private resolvePromise!: (circuit: Circuit) => void
  private rejectPromise!: (err: Error) => void

  constructor (
    readonly relayPeerId: PeerId,
    readonly relayAddr: Multiaddr | undefined,
    readonly dstPeerId: PeerId,
    readonly signal: AbortSignal
  ) {
    this.promise = new Promise<Circuit>((resolve, reject) => {
      this.resolvePromise = resolve
      this.rejectPromise = reject
    })
    // Nobody may be waiting any more when it fails late (the dial was aborted).
    this.promise.catch(() => {})
    if (signal.aborted) this.reject(new AbortError('the dial was aborted'))
    else signal.addEventListener('abort', () => { this.reject(new AbortError('the dial was aborted')) }, { once: true })
  }

  /** Whether it has settled (a later circuit is reset, a later error ignored). */
  get settled (): boolean {
    return this.settledFlag
  }

  /** Hand the dial its circuit; once settled, the circuit's stream is reset instead. */
  resolve (circuit: Circuit): void {
    if (this.settledFlag) {
      circuit.stream.abort(new AbortError('the dial was given up'))
      return
    }
    this.settledFlag = true
    this.resolvePromise(circuit)
  }

  /** Fail the dial with `err`; ignored once settled. */
  reject (err: Error): void {
    if (this.settledFlag) return
    this.settledFlag = true
    this.rejectPromise(err)
  }
}

/** What the transport asks of the behaviour. */
export type TransportRequest =
  | { readonly type: 'Listen', readonly sink: ReservationSink }
  | { readonly type: 'StopListening', readonly sink: ReservationSink }
  | { readonly type: 'Dial', readonly request: PendingCircuit }

/** @internal The queue from the transport to the behaviour, with the behaviour's waker. */
export class TransportChannel {
  private readonly queue: TransportRequest[] = []
  private waker?: Waker

  /** Queue `request` and wake the swarm, which polls the behaviour. */
  push (request: TransportRequest): void {
    this.queue.push(request)
    this.waker?.wake()
  }

  /** The oldest request, keeping `cx.waker` for the next `push`. */
  take (cx: Context): TransportRequest | undefined {
    this.waker = cx.waker
    return this.queue.shift()
  }
}
