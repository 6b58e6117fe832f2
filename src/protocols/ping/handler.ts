/**
 * Ping's connection handler: pings the remote every `interval` on one long-lived outbound
 * stream and echoes the remote's pings on its inbound stream. Ping streams do not keep the
 * connection alive.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { withDeadline } from '../../core/timers.js'
import { byteStream } from '@libp2p/utils'
import { PeerswarmError, describe, toError } from '../../core/errors.js'
import { ignoreForKeepAlive } from '../../behaviour/connection-handler.js'
import { PING_SIZE, PROTOCOL } from './config.js'
import type { Config } from './config.js'
import type { Context, Waker } from '../../behaviour/context.js'
import type { ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, SubstreamProtocol } from '../../behaviour/connection-handler.js'
import type { Stream } from '@libp2p/interface'

const log = logger('peerswarm:ping')

/** What the handler listens on: the connection asks on every turn of its loop. */
const LISTEN: SubstreamProtocol = { protocols: [PROTOCOL] }

/** Why a ping failed. */
export type FailureKind = 'Timeout' | 'Unsupported' | 'Other'

/**
 * A ping failed: no echo in time, the remote does not speak ping, or the stream broke.
 *
 * @group Errors
 */
export class PingFailure extends PeerswarmError {
  constructor (readonly kind: FailureKind, message: string, cause?: unknown) {
    super(`ERR_PING_${kind.toUpperCase()}`, message, { cause })
  }
}

/**
 * What the behaviour sends the handler: nothing, ping's handler takes no orders. A handler
 * that takes no orders from its behaviour uses `never` as its input type, so that the
 * behaviour cannot send it anything (`ToSwarm.NotifyHandler` does not type-check).
 */
export type FromBehaviour = never

/** What the handler reports to its behaviour: a round-trip time in ms, or a failure. */
export type ToBehaviour =
  | { readonly type: 'Success', readonly rtt: number }
  | { readonly type: 'Failure', readonly error: PingFailure }

/** @deprecated Use ToBehaviour. */
export type HandlerEvent = ToBehaviour

/** The ping handler of one connection. */
export class Handler implements ConnectionHandler<FromBehaviour, ToBehaviour> {
  private readonly results: ToBehaviour[] = []
  private waker?: Waker
  /**
   * The outbound side: 'wanted' asks for a stream at the next poll, 'requested' waits for it,
   * 'active' pings on it, 'waiting' retries after a failure, 'unsupported' has given up.
   */
  private outbound: 'wanted' | 'requested' | 'active' | 'waiting' | 'unsupported' = 'wanted'
  /** Cancels pending sleeps when the handler closes. */
  private readonly sleepers = new Set<() => void>()
  private readonly streams = new Set<Stream>()
  private closed = false

  constructor (private readonly config: Config) {}

  listenProtocol (): SubstreamProtocol {
    return LISTEN
  }

  /**
   * Ping never keeps a connection alive by itself.
   *
   * @group Called by the connection
   */
  connectionKeepAlive (): boolean {
    return false
  }

  onBehaviourEvent (): void {}

  onConnectionEvent (event: ConnectionEvent): void {
    switch (event.type) {
      case 'FullyNegotiatedInbound':
        this.track(event.stream)
        void this.echo(event.stream)
        break
      case 'FullyNegotiatedOutbound':
        this.track(event.stream)
        this.outbound = 'active'
        void this.ping(event.stream)
        break
      case 'DialUpgradeError':
        if (event.error.kind === 'NegotiationFailed') {
          // As rust-libp2p: a peer without ping is reported once and never asked again.
          this.outbound = 'unsupported'
          this.report({ type: 'Failure', error: new PingFailure('Unsupported', 'the remote does not support ping') })
        } else {
          this.report({ type: 'Failure', error: new PingFailure(event.error.kind === 'Timeout' ? 'Timeout' : 'Other', event.error.message, event.error) })
          this.retryLater()
        }
        break
      default:
    }
  }

  poll (cx: Context): ConnectionHandlerEvent<ToBehaviour> | undefined {
    this.waker = cx.waker
    const result = this.results.shift()
    if (result != null) return { type: 'NotifyBehaviour', event: result }
    if (this.outbound === 'wanted' && !this.closed) {
      this.outbound = 'requested'
      return { type: 'OutboundSubstreamRequest', protocol: { protocols: [PROTOCOL], timeout: this.config.timeout } }
    }
    return undefined
  }

  close (): void {
    this.closed = true
    for (const stop of this.sleepers) stop()
    this.sleepers.clear()
    for (const stream of this.streams) stream.abort(new Error('connection closed'))
    this.streams.clear()
  }

  private track (stream: Stream): void {
    ignoreForKeepAlive(stream)
    this.streams.add(stream)
    stream.addEventListener('close', () => { this.streams.delete(stream) })
  }

  /** Ping on `stream` every interval until it fails or the handler closes. */
  private async ping (stream: Stream): Promise<void> {
    const bytes = byteStream(stream, { maxBufferSize: PING_SIZE * 4 })
    try {
      while (!this.closed) {
        const payload = crypto.getRandomValues(new Uint8Array(PING_SIZE))
        const started = performance.now()
        const echo = await withDeadline(this.config.timeout, async signal => {
          await bytes.write(payload, { signal })
          return await bytes.read({ bytes: PING_SIZE, signal })
        })
        if (!equal(echo.subarray(), payload)) throw new PingFailure('Other', 'the echo does not match the ping')
        this.report({ type: 'Success', rtt: performance.now() - started })
        if (!await this.sleep(this.config.interval)) return
      }
    } catch (err) {
      if (this.closed) return
      stream.abort(toError(err))
      const error = err instanceof PingFailure
        ? err
        : (err instanceof Error && err.name === 'TimeoutError' ? new PingFailure('Timeout', 'no echo in time', err) : new PingFailure('Other', describe(err), err))
      log('ping failed: %s', error.message)
      this.report({ type: 'Failure', error })
      this.retryLater()
    }
  }

  /** Echo the remote's pings until it closes the stream. */
  private async echo (stream: Stream): Promise<void> {
    const bytes = byteStream(stream, { maxBufferSize: PING_SIZE * 4 })
    try {
      for (;;) {
        const data = await bytes.read({ bytes: PING_SIZE })
        await bytes.write(data)
      }
    } catch (err) {
      // End of stream is the normal end of an echo loop.
      if (stream.status === 'open') await stream.close().catch(() => {})
      log('inbound ping stream ended: %s', describe(err))
    }
  }

  private report (event: ToBehaviour): void {
    this.results.push(event)
    this.waker?.wake()
  }

  private retryLater (): void {
    this.outbound = 'waiting'
    void this.sleep(this.config.interval).then((awake) => {
      if (!awake || this.outbound !== 'waiting') return
      this.outbound = 'wanted'
      this.waker?.wake()
    })
  }

  /** Resolves true after `ms`, or false as soon as the handler closes. */
  private async sleep (ms: number): Promise<boolean> {
    if (this.closed) return false
    return new Promise<boolean>((resolve) => {
      const stop = (): void => {
        clearTimeout(timer)
        this.sleepers.delete(stop)
        resolve(false)
      }
      const timer = setTimeout(() => {
        this.sleepers.delete(stop)
        resolve(!this.closed)
      }, ms)
      this.sleepers.add(stop)
    })
  }
}

function equal (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i])
}
