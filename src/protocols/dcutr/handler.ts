/**
 * DCUtR's connection handler, for relayed connections only (other connections get a dummy).
 *
 * - On a relayed connection we *accepted* (we are "B", the listener), the handler starts each
 *   attempt when its behaviour says `Connect`: it opens `/libp2p/dcutr`, sends CONNECT with our
 *   candidate addresses (read at that moment, not when the connection opened: identify may have
 *   reported them since, rust-libp2p PR 5583), reads the remote's CONNECT and measures the round
 *   trip, sends SYNC, waits half the round trip and reports the remote's addresses to dial.
 * - On a relayed connection we *dialed* ("A"), it answers the remote's exchange: reads CONNECT,
 *   answers CONNECT with our candidates, reads SYNC and reports the remote's addresses to dial
 *   at once.
 *
 * Received addresses are kept only if they are not relayed and pass the `isGlobal` policy.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { FrameTooLargeError, readFrame, writeFrame } from '../../behaviour/framing.js'
import { describe, toError } from '../../core/errors.js'
import { isRelayedAddress } from '../../core/ids.js'
import { PROTOCOL } from './config.js'
import { DcutrError } from './errors.js'
import { MAX_MESSAGE_SIZE, MalformedMessageError, decodeHolePunch, encodeHolePunch } from './message.js'
import type { Config } from './config.js'
import type { DcutrFailure } from './errors.js'
import type { HolePunch, HolePunchTypeName } from './message.js'
import type { Context, Waker } from '../../behaviour/context.js'
import type { ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, SubstreamProtocol } from '../../behaviour/connection-handler.js'
import type { Endpoint } from '../../core/ids.js'
import type { PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:dcutr')

/**
 * What the behaviour tells a handler: `Connect` starts an attempt (listener side only);
 * `Finished` says the hole punch is over (succeeded or given up), so the handler no longer
 * keeps the relayed connection open for it.
 */
export type FromBehaviour = { readonly type: 'Connect' } | { readonly type: 'Finished' }

/** What a handler reports. */
export type ToBehaviour =
  | { /** We answered the remote's exchange: dial these now, as the dialer. */ readonly type: 'InboundConnectNegotiated', readonly remoteAddrs: readonly Multiaddr[] }
  | { /** Our exchange is done and half its round trip has passed: dial these now, upgraded as the listener. */ readonly type: 'OutboundConnectNegotiated', readonly remoteAddrs: readonly Multiaddr[], readonly rtt: number }
  | { readonly type: 'InboundConnectFailed', readonly error: DcutrError }
  | { readonly type: 'OutboundConnectFailed', readonly error: DcutrError }

/** How a handler is made. */
export interface HandlerInit {
  /** Which side of the relayed connection we are: `Listener` starts the exchanges. */
  readonly role: Endpoint
  readonly remotePeer: PeerId
  /** Our candidate addresses at this moment (read when a CONNECT is sent). */
  readonly candidates: () => readonly Multiaddr[]
}

/** A failure of one exchange, before it is labelled inbound or outbound. */
class ExchangeFailure extends Error {
  constructor (readonly failure: DcutrFailure, message: string, readonly original?: unknown) {
    super(message)
  }
}

/** The DCUtR handler of one relayed connection. */
export class Handler implements ConnectionHandler<FromBehaviour, ToBehaviour> {
  private readonly results: ToBehaviour[] = []
  private readonly streams = new Set<Stream>()
  private readonly timers = new Set<ReturnType<typeof setTimeout>>()
  private connectsWanted = 0
  /** An attempt of ours is under way (stream, wait or the behaviour's dial) until `Finished` or the next `Connect`. */
  private awaitingOutcome = false
  private waker?: Waker
  private closed = false

  constructor (private readonly config: Config, private readonly init: HandlerInit) {}

  listenProtocol (): SubstreamProtocol {
    // The listener of the relayed connection starts the exchanges; it never accepts one.
    return { protocols: this.init.role === 'Dialer' ? [PROTOCOL] : [] }
  }

  connectionKeepAlive (): boolean {
    return this.streams.size > 0 || this.connectsWanted > 0 || this.results.length > 0 || this.awaitingOutcome
  }

  onBehaviourEvent (event: FromBehaviour): void {
    if (this.closed) return
    if (event.type === 'Finished') {
      this.awaitingOutcome = false
      return
    }
    if (this.init.role !== 'Listener') return
    this.connectsWanted++
    this.awaitingOutcome = true
    this.waker?.wake()
  }

  onConnectionEvent (event: ConnectionEvent): void {
    switch (event.type) {
      case 'FullyNegotiatedInbound':
        if (this.init.role !== 'Dialer') {
          event.stream.abort(new Error('the listener of a relayed connection accepts no DCUtR stream'))
          return
        }
        // A new exchange replaces one still running (the remote gave up on it), as rust-libp2p.
        for (const stream of this.streams) stream.abort(new Error('replaced by a new DCUtR exchange'))
        void this.answer(event.stream)
        break
      case 'FullyNegotiatedOutbound':
        void this.initiate(event.stream)
        break
      case 'DialUpgradeError': {
        const failure: DcutrFailure = event.error.kind === 'NegotiationFailed' ? 'Unsupported' : event.error.kind === 'Timeout' ? 'Timeout' : 'Io'
        this.report({ type: 'OutboundConnectFailed', error: new DcutrError('OutboundError', failure, `opening ${PROTOCOL} failed: ${event.error.message}`, event.error) })
        break
      }
      default:
    }
  }

  poll (cx: Context): ConnectionHandlerEvent<ToBehaviour> | undefined {
    this.waker = cx.waker
    const result = this.results.shift()
    if (result != null) return { type: 'NotifyBehaviour', event: result }
    if (this.connectsWanted > 0) {
      this.connectsWanted--
      return { type: 'OutboundSubstreamRequest', protocol: { protocols: [PROTOCOL], timeout: this.config.timeout } }
    }
    return undefined
  }

  close (): void {
    this.closed = true
    for (const stream of this.streams) stream.abort(new Error('connection closed'))
    this.streams.clear()
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
  }

  /** Our side of an exchange we start (we are B): CONNECT, CONNECT back, SYNC, wait RTT/2. */
  private async initiate (stream: Stream): Promise<void> {
    this.streams.add(stream)
    const deadline = this.deadline()
    try {
      await this.send(stream, 'CONNECT', deadline.signal, this.ourAddresses())
      const sentAt = performance.now()
      const answer = await this.receive(stream, 'CONNECT', deadline.signal)
      const rtt = performance.now() - sentAt
      const remoteAddrs = this.usable(answer)
      await this.send(stream, 'SYNC', deadline.signal)
      await stream.close({ signal: deadline.signal }).catch(() => {})
      deadline.clear()
      this.streams.delete(stream)
      log('exchange with %p done (rtt %d ms): dialing %s in %d ms', this.init.remotePeer, Math.round(rtt), remoteAddrs.map(String).join(', '), Math.round(rtt / 2))
      await this.sleep(rtt / 2)
      this.report({ type: 'OutboundConnectNegotiated', remoteAddrs, rtt })
    } catch (err) {
      deadline.clear()
      this.fail(stream, err, 'OutboundError')
    }
  }

  /** Our side of an exchange the remote starts (we are A): CONNECT, our CONNECT, SYNC. */
  private async answer (stream: Stream): Promise<void> {
    this.streams.add(stream)
    const deadline = this.deadline()
    try {
      const connect = await this.receive(stream, 'CONNECT', deadline.signal)
      const remoteAddrs = this.usable(connect)
      await this.send(stream, 'CONNECT', deadline.signal, this.ourAddresses())
      await this.receive(stream, 'SYNC', deadline.signal)
      await stream.close({ signal: deadline.signal }).catch(() => {})
      deadline.clear()
      this.streams.delete(stream)
      log('exchange from %p done: dialing %s', this.init.remotePeer, remoteAddrs.map(String).join(', '))
      this.report({ type: 'InboundConnectNegotiated', remoteAddrs })
    } catch (err) {
      deadline.clear()
      this.fail(stream, err, 'InboundError')
    }
  }

  /** Our candidates as sent: at most what fits in one message. */
  private ourAddresses (): Multiaddr[] {
    const result: Multiaddr[] = []
    let size = 8
    for (const address of this.init.candidates()) {
      size += address.bytes.byteLength + 4
      if (size > MAX_MESSAGE_SIZE) break
      result.push(address)
    }
    return result
  }

  /** The remote's addresses worth dialing; throws when there are none. */
  private usable (message: HolePunch): Multiaddr[] {
    const addrs = message.obsAddrs.filter(address => !isRelayedAddress(address) && this.config.isGlobal(address))
    if (addrs.length === 0) {
      throw new ExchangeFailure('NoAddresses', `the remote sent no address to dial (${message.obsAddrs.length} sent, ${message.invalidAddrs} unparsable; relayed and non-global ones are dropped)`)
    }
    return addrs
  }

  private async send (stream: Stream, type: HolePunchTypeName, signal: AbortSignal, addrs: readonly Multiaddr[] = []): Promise<void> {
    try {
      await writeFrame(stream, encodeHolePunch(type, addrs), { maxSize: MAX_MESSAGE_SIZE, signal })
    } catch (err) {
      throw this.ioFailure(err, signal, `sending ${type}`)
    }
  }

  private async receive (stream: Stream, expected: HolePunchTypeName, signal: AbortSignal): Promise<HolePunch> {
    let bytes: Uint8Array
    try {
      bytes = await readFrame(stream, { maxSize: MAX_MESSAGE_SIZE, signal })
    } catch (err) {
      if (err instanceof FrameTooLargeError) throw new ExchangeFailure('MalformedMessage', `a message larger than ${MAX_MESSAGE_SIZE} bytes`, err)
      throw this.ioFailure(err, signal, `reading ${expected}`)
    }
    let message: HolePunch
    try {
      message = decodeHolePunch(bytes)
    } catch (err) {
      throw new ExchangeFailure('MalformedMessage', (err as Error).message, err instanceof MalformedMessageError ? err : toError(err))
    }
    if (message.type !== expected) throw new ExchangeFailure('UnexpectedMessage', `expected ${expected}, got ${message.type}`)
    return message
  }

  private ioFailure (err: unknown, signal: AbortSignal, what: string): ExchangeFailure {
    if (signal.aborted) return new ExchangeFailure('Timeout', `${what}: no answer within ${this.config.timeout} ms`, err)
    return new ExchangeFailure('Io', `${what}: ${describe(err)}`, err)
  }

  private fail (stream: Stream, err: unknown, kind: 'InboundError' | 'OutboundError'): void {
    this.streams.delete(stream)
    stream.abort(toError(err))
    if (this.closed) return
    const failure = err instanceof ExchangeFailure ? err : new ExchangeFailure('Io', describe(err), err)
    log('DCUtR exchange with %p failed (%s): %s', this.init.remotePeer, failure.failure, failure.message)
    const error = new DcutrError(kind, failure.failure, failure.message, failure.original)
    this.report(kind === 'InboundError' ? { type: 'InboundConnectFailed', error } : { type: 'OutboundConnectFailed', error })
  }

  /** A signal that aborts after `timeout` (a plain timer, so fake timers drive it in tests). */
  private deadline (): { readonly signal: AbortSignal, clear: () => void } {
    const controller = new AbortController()
    const kind = this.init.role === 'Listener' ? 'OutboundError' : 'InboundError'
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      controller.abort(new DcutrError(kind, 'Timeout', `DCUtR exchange timed out after ${this.config.timeout} ms`))
    }, this.config.timeout)
    this.timers.add(timer)
    return {
      signal: controller.signal,
      clear: () => {
        clearTimeout(timer)
        this.timers.delete(timer)
      }
    }
  }

  private async sleep (ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer)
        resolve()
      }, ms)
      this.timers.add(timer)
    })
  }

  private report (event: ToBehaviour): void {
    if (this.closed) return
    if (event.type === 'OutboundConnectFailed') this.awaitingOutcome = false
    this.results.push(event)
    this.waker?.wake()
  }
}
