/**
 * The AutoNAT v2 client's connection handler: it tells its behaviour whether the remote is a
 * server (speaks the dial-request protocol), runs the probes the behaviour sends it (the dial
 * request, the dial data the server asks for, the answer), and answers dial-backs that arrive
 * on its connection when their nonce is one the behaviour issued.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { readFrame, writeFrame } from '../../../../behaviour/framing.js'
import { describe, toError } from '../../../../core/errors.js'
import { DIAL_BACK_PROTOCOL, DIAL_REQUEST_PROTOCOL } from '../config.js'
import { AutonatError } from '../errors.js'
import { DIAL_DATA_CHUNK_SIZE, MAX_MESSAGE_SIZE, decodeDialBack, decodeMessage, encodeDialBackResponse, encodeMessage } from '../message.js'
import type { ClientConfig } from '../config.js'
import type { DialStatusCode, ResponseStatusCode } from '../message.js'
import type { Context, Waker } from '../../../../behaviour/context.js'
import type { ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, SubstreamProtocol } from '../../../../behaviour/connection-handler.js'
import type { Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:autonat:v2:client')

/** A probe the behaviour asks a handler to run. */
export interface Probe {
  readonly id: number
  readonly addrs: readonly Multiaddr[]
  readonly nonce: bigint
}

/** What the behaviour tells a client handler. */
export type FromBehaviour = { readonly type: 'RunProbe', readonly probe: Probe }

/** What a client handler reports. */
export type ToBehaviour =
  | { /** Whether the remote speaks the dial-request protocol. */ readonly type: 'ServerSupport', readonly supported: boolean }
  | {
    /** The server answered. */
    readonly type: 'ProbeAnswered'
    readonly probeId: number
    readonly status: ResponseStatusCode
    readonly addrIdx: number
    readonly dialStatus: DialStatusCode
    readonly bytesSent: number
  }
  | { /** The probe failed before an answer. */ readonly type: 'ProbeFailed', readonly probeId: number, readonly bytesSent: number, readonly error: AutonatError }

/** How a client handler is made. */
export interface HandlerInit {
  /**
   * Called with the nonce of each dial-back that arrives on this connection, synchronously:
   * true when it is a nonce of ours (then, and only then, it is acknowledged).
   */
  readonly acceptNonce: (nonce: bigint) => boolean
}

/** The AutoNAT v2 client handler of one connection. */
export class Handler implements ConnectionHandler<FromBehaviour, ToBehaviour, Probe | undefined> {
  private readonly results: ToBehaviour[] = []
  private readonly probes: Probe[] = []
  private readonly active = new Set<Stream>()
  private readonly remoteProtocols = new Set<string>()
  private supported = false
  private waker?: Waker
  private closed = false

  constructor (private readonly config: ClientConfig, private readonly init: HandlerInit) {}

  listenProtocol (): SubstreamProtocol<Probe | undefined> {
    return { protocols: [DIAL_BACK_PROTOCOL] }
  }

  connectionKeepAlive (): boolean {
    return this.active.size > 0 || this.probes.length > 0
  }

  onBehaviourEvent (event: FromBehaviour): void {
    if (this.closed) return
    this.probes.push(event.probe)
    this.waker?.wake()
  }

  onConnectionEvent (event: ConnectionEvent<Probe | undefined>): void {
    switch (event.type) {
      case 'FullyNegotiatedInbound':
        // At most two dial-backs at once on one connection; a server sends one per connection.
        if (this.active.size >= 2) {
          event.stream.abort(new Error('too many dial-back streams'))
          return
        }
        void this.answerDialBack(event.stream)
        break
      case 'FullyNegotiatedOutbound':
        if (event.info != null) void this.runProbe(event.stream, event.info)
        else event.stream.abort(new Error('unexpected stream'))
        break
      case 'DialUpgradeError':
        if (event.info != null) {
          this.report({ type: 'ProbeFailed', probeId: event.info.id, bytesSent: 0, error: new AutonatError('Protocol', `opening the dial-request stream failed: ${event.error.message}`, event.error) })
        }
        break
      case 'RemoteProtocolsChange': {
        const { change } = event
        for (const protocol of change.protocols) {
          if (change.type === 'Added') this.remoteProtocols.add(protocol)
          else this.remoteProtocols.delete(protocol)
        }
        const supported = this.remoteProtocols.has(DIAL_REQUEST_PROTOCOL)
        if (supported !== this.supported) {
          this.supported = supported
          this.report({ type: 'ServerSupport', supported })
        }
        break
      }
      default:
    }
  }

  poll (cx: Context): ConnectionHandlerEvent<ToBehaviour, Probe | undefined> | undefined {
    this.waker = cx.waker
    const result = this.results.shift()
    if (result != null) return { type: 'NotifyBehaviour', event: result }
    const probe = this.probes.shift()
    if (probe != null) return { type: 'OutboundSubstreamRequest', protocol: { protocols: [DIAL_REQUEST_PROTOCOL], info: probe, timeout: this.config.timeout } }
    return undefined
  }

  close (): void {
    this.closed = true
    const err = new Error('connection closed')
    for (const stream of this.active) stream.abort(err)
    this.active.clear()
  }

  private async runProbe (stream: Stream, probe: Probe): Promise<void> {
    this.active.add(stream)
    const controller = new AbortController()
    const timer = setTimeout(() => { controller.abort(new DOMException(`timed out after ${this.config.timeout} ms`, 'TimeoutError')) }, this.config.timeout)
    const options = { maxSize: MAX_MESSAGE_SIZE, signal: controller.signal }
    let bytesSent = 0
    try {
      await writeFrame(stream, encodeMessage({ type: 'DialRequest', addrs: probe.addrs, nonce: probe.nonce }), options)
      let message = decodeMessage(await readFrame(stream, options))
      if (message.type === 'DialDataRequest') {
        const { numBytes, addrIdx } = message
        if (addrIdx >= probe.addrs.length) throw new AutonatError('Protocol', `dial data asked for address ${addrIdx} of ${probe.addrs.length}`)
        if (numBytes > this.config.maxDialDataBytes) {
          throw new AutonatError('Refused', `the server asked for ${numBytes} bytes of dial data, more than maxDialDataBytes (${this.config.maxDialDataBytes})`)
        }
        const chunk = new Uint8Array(DIAL_DATA_CHUNK_SIZE)
        while (bytesSent < numBytes) {
          const size = Math.min(DIAL_DATA_CHUNK_SIZE, numBytes - bytesSent)
          await writeFrame(stream, encodeMessage({ type: 'DialDataResponse', data: chunk.subarray(0, size) }), options)
          bytesSent += size
        }
        message = decodeMessage(await readFrame(stream, options))
      }
      if (message.type !== 'DialResponse') throw new AutonatError('Protocol', `expected a DialResponse, got ${message.type}`)
      if (message.status === 'OK' && message.addrIdx >= probe.addrs.length) {
        throw new AutonatError('Protocol', `the server tested address ${message.addrIdx} of ${probe.addrs.length}`)
      }
      await stream.close({ signal: controller.signal }).catch(() => {})
      this.report({ type: 'ProbeAnswered', probeId: probe.id, status: message.status, addrIdx: message.addrIdx, dialStatus: message.dialStatus, bytesSent })
    } catch (err) {
      log('probe %d failed: %s', probe.id, describe(err))
      stream.abort(toError(err))
      const error = err instanceof AutonatError ? err : new AutonatError('Protocol', `the dial request failed: ${describe(err)}`, err)
      this.report({ type: 'ProbeFailed', probeId: probe.id, bytesSent, error })
    } finally {
      clearTimeout(timer)
      this.active.delete(stream)
    }
  }

  private async answerDialBack (stream: Stream): Promise<void> {
    this.active.add(stream)
    const controller = new AbortController()
    const timer = setTimeout(() => { controller.abort(new DOMException(`timed out after ${this.config.timeout} ms`, 'TimeoutError')) }, this.config.timeout)
    const options = { maxSize: MAX_MESSAGE_SIZE, signal: controller.signal }
    try {
      const nonce = decodeDialBack(await readFrame(stream, options))
      if (!this.init.acceptNonce(nonce)) throw new Error('a dial-back with a nonce we did not issue')
      await writeFrame(stream, encodeDialBackResponse(), options)
      await stream.close({ signal: controller.signal }).catch(() => {})
    } catch (err) {
      log('dial-back refused: %s', describe(err))
      stream.abort(toError(err))
    } finally {
      clearTimeout(timer)
      this.active.delete(stream)
    }
  }

  private report (event: ToBehaviour): void {
    if (this.closed) return
    this.results.push(event)
    this.waker?.wake()
  }
}
