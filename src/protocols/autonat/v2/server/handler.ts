/**
 * The AutoNAT v2 server's connection handler. On an ordinary connection it reads dial requests:
 * it picks the first requested address it is willing to dial (global under the config's
 * policy), asks for dial data when that address's IP is not the one the client is observed at
 * (the spec's amplification guard), and hands the dial-back to its behaviour; once the behaviour
 * has the result it answers the client. On a dial-back connection (one the behaviour dialed) it
 * opens the dial-back stream and sends the nonce.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { FrameDecoder, readFrame, writeFrame } from '../../../../behaviour/framing.js'
import { describe, toError } from '../../../../core/errors.js'
import { ipOfAddress } from '../../../../core/global-address.js'
import { AutonatError } from '../errors.js'
import { DIAL_BACK_PROTOCOL, DIAL_REQUEST_PROTOCOL } from '../config.js'
import { DIAL_DATA_CHUNK_SIZE, MAX_MESSAGE_SIZE, MalformedMessageError, decodeDialBackResponse, decodeMessage, encodeDialBack, encodeMessage } from '../message.js'
import type { ServerConfig } from '../config.js'
import type { DialStatusCode, ResponseStatusCode } from '../message.js'
import type { Context, Waker } from '../../../../behaviour/context.js'
import type { ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, SubstreamProtocol } from '../../../../behaviour/connection-handler.js'
import type { Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:autonat:v2:server')

/** What the behaviour tells a server handler. */
export type FromBehaviour =
  /** The dial-back for request `requestId` ended with `dialStatus` (or was refused with `status`). */
  | { readonly type: 'DialBackResult', readonly requestId: number, readonly status: ResponseStatusCode, readonly dialStatus: DialStatusCode }

/** What a server handler reports to its behaviour. */
export type ToBehaviour =
  | {
    /** A client asked to be dialed back at `address` (after sending `dataAmount` bytes of dial data). */
    readonly type: 'DialBackRequested'
    readonly requestId: number
    readonly allAddrs: readonly Multiaddr[]
    readonly address: Multiaddr
    readonly nonce: bigint
    readonly dataAmount: number
  }
  | {
    /** A request ended without a dial-back: refused, malformed, or the client went away. */
    readonly type: 'RequestFailed'
    readonly allAddrs: readonly Multiaddr[]
    readonly testedAddr?: Multiaddr
    readonly dataAmount: number
    readonly error: Error
  }
  | { /** The dial-back stream of this (dial-back) connection is done. */ readonly type: 'DialBackSent', readonly error?: Error }

/** How a server handler is made. */
export interface HandlerInit {
  /** The address the client is observed at (for the dial-data guard); none for a dial-back connection. */
  readonly remoteAddr: Multiaddr
  /** The connection is relayed: no requests are served on it (the observed IP is the relay's). */
  readonly relayed: boolean
  /** Set on the connection the behaviour dialed for a dial-back: send this nonce. */
  readonly dialBackNonce?: bigint
}

/** A request waiting for its dial-back. */
interface Pending {
  readonly stream: Stream
  readonly addrIdx: number
  readonly timer: ReturnType<typeof setTimeout>
}

/** The AutoNAT v2 server handler of one connection. */
export class Handler implements ConnectionHandler<FromBehaviour, ToBehaviour, 'dial-back' | undefined> {
  private readonly results: ToBehaviour[] = []
  private readonly active = new Set<Stream>()
  private readonly pending = new Map<number, Pending>()
  private lastRequestId = 0
  private dialBackState: 'none' | 'wanted' | 'requested' | 'done'
  private waker?: Waker
  private closed = false

  constructor (private readonly config: ServerConfig, private readonly init: HandlerInit) {
    this.dialBackState = init.dialBackNonce != null ? 'wanted' : 'none'
  }

  listenProtocol (): SubstreamProtocol<'dial-back' | undefined> {
    return { protocols: this.init.relayed || this.init.dialBackNonce != null ? [] : [DIAL_REQUEST_PROTOCOL] }
  }

  connectionKeepAlive (): boolean {
    return this.active.size > 0 || this.dialBackState === 'wanted' || this.dialBackState === 'requested'
  }

  onBehaviourEvent (event: FromBehaviour): void {
    const pending = this.pending.get(event.requestId)
    if (pending == null) return
    this.pending.delete(event.requestId)
    clearTimeout(pending.timer)
    void this.respond(pending.stream, event.status, pending.addrIdx, event.dialStatus)
  }

  onConnectionEvent (event: ConnectionEvent<'dial-back' | undefined>): void {
    switch (event.type) {
      case 'FullyNegotiatedInbound':
        if (this.init.relayed || this.active.size >= this.config.maxConcurrentRequestsPerPeer) {
          log('refusing a dial request from %a: %s', this.init.remoteAddr, this.init.relayed ? 'relayed connection' : 'too many in progress')
          event.stream.abort(new Error('too many dial requests in progress'))
          return
        }
        void this.serve(event.stream)
        break
      case 'FullyNegotiatedOutbound':
        if (event.info === 'dial-back' && this.init.dialBackNonce != null) void this.sendDialBack(event.stream, this.init.dialBackNonce)
        else event.stream.abort(new Error('unexpected stream'))
        break
      case 'DialUpgradeError':
        if (event.info === 'dial-back') {
          this.dialBackState = 'done'
          this.report({ type: 'DialBackSent', error: event.error })
        }
        break
      default:
    }
  }

  poll (cx: Context): ConnectionHandlerEvent<ToBehaviour, 'dial-back' | undefined> | undefined {
    this.waker = cx.waker
    const result = this.results.shift()
    if (result != null) return { type: 'NotifyBehaviour', event: result }
    if (this.dialBackState === 'wanted' && !this.closed) {
      this.dialBackState = 'requested'
      return { type: 'OutboundSubstreamRequest', protocol: { protocols: [DIAL_BACK_PROTOCOL], info: 'dial-back', timeout: this.config.timeout } }
    }
    return undefined
  }

  close (): void {
    this.closed = true
    const err = new Error('connection closed')
    for (const stream of this.active) stream.abort(err)
    this.active.clear()
    for (const pending of this.pending.values()) clearTimeout(pending.timer)
    this.pending.clear()
  }

  /** Read a dial request, pick its address, take the dial data, hand the dial-back over. */
  private async serve (stream: Stream): Promise<void> {
    this.active.add(stream)
    stream.addEventListener('close', () => { this.active.delete(stream) })
    const controller = new AbortController()
    const timer = setTimeout(() => { controller.abort(new DOMException(`timed out after ${this.config.timeout} ms`, 'TimeoutError')) }, this.config.timeout)
    const options = { maxSize: MAX_MESSAGE_SIZE, signal: controller.signal }
    let allAddrs: Multiaddr[] = []
    let testedAddr: Multiaddr | undefined
    let dataAmount = 0
    try {
      const request = decodeMessage(await readFrame(stream, options))
      if (request.type !== 'DialRequest') throw new MalformedMessageError(`expected a DialRequest, got ${request.type}`)
      allAddrs = request.addrs.filter((a): a is Multiaddr => a != null)
      const addrIdx = request.addrs.findIndex(a => a != null && this.config.isGlobal(a))
      if (addrIdx < 0) {
        await this.respond(stream, 'E_DIAL_REFUSED', 0, 'UNUSED')
        this.report({ type: 'RequestFailed', allAddrs, dataAmount, error: new AutonatError('Refused', 'no requested address is one we dial') })
        return
      }
      const address = request.addrs[addrIdx] as Multiaddr
      testedAddr = address
      const observedIp = ipOfAddress(this.init.remoteAddr)?.ip
      if (observedIp == null || ipOfAddress(address)?.ip !== observedIp) {
        // Amplification guard: make the client pay for a dial to an IP that may not be its own.
        const numBytes = this.config.dialDataMin + Math.floor(Math.random() * (this.config.dialDataMax - this.config.dialDataMin + 1))
        await writeFrame(stream, encodeMessage({ type: 'DialDataRequest', addrIdx, numBytes }), options)
        dataAmount = await readDialData(stream, numBytes, controller.signal)
      }
      if (this.closed) return
      const requestId = ++this.lastRequestId
      // The behaviour answers with DialBackResult, within the request's time.
      clearTimeout(timer)
      const deadline = setTimeout(() => {
        if (this.pending.delete(requestId)) stream.abort(new Error('the dial-back took too long'))
      }, this.config.timeout)
      this.pending.set(requestId, { stream, addrIdx, timer: deadline })
      this.report({ type: 'DialBackRequested', requestId, allAddrs, address, nonce: request.nonce, dataAmount })
      return
    } catch (err) {
      clearTimeout(timer)
      log('dial request from %a failed: %s', this.init.remoteAddr, describe(err))
      if (err instanceof MalformedMessageError) {
        await this.respond(stream, 'E_REQUEST_REJECTED', 0, 'UNUSED').catch(() => {})
      }
      stream.abort(toError(err))
      this.report({ type: 'RequestFailed', allAddrs, testedAddr, dataAmount, error: new AutonatError('Protocol', `the request failed: ${describe(err)}`, err) })
    }
  }

  private async respond (stream: Stream, status: ResponseStatusCode, addrIdx: number, dialStatus: DialStatusCode): Promise<void> {
    const controller = new AbortController()
    const timer = setTimeout(() => { controller.abort(new DOMException('timed out', 'TimeoutError')) }, this.config.timeout)
    try {
      await writeFrame(stream, encodeMessage({ type: 'DialResponse', status, addrIdx, dialStatus }), { maxSize: MAX_MESSAGE_SIZE, signal: controller.signal })
      await stream.close({ signal: controller.signal })
    } catch (err) {
      stream.abort(toError(err))
    } finally {
      clearTimeout(timer)
      this.active.delete(stream)
      this.waker?.wake()
    }
  }

  private async sendDialBack (stream: Stream, nonce: bigint): Promise<void> {
    const controller = new AbortController()
    const timer = setTimeout(() => { controller.abort(new DOMException('timed out', 'TimeoutError')) }, this.config.timeout)
    const options = { maxSize: MAX_MESSAGE_SIZE, signal: controller.signal }
    try {
      await writeFrame(stream, encodeDialBack(nonce), options)
      decodeDialBackResponse(await readFrame(stream, options))
      await stream.close({ signal: controller.signal }).catch(() => {})
      this.dialBackState = 'done'
      this.report({ type: 'DialBackSent' })
    } catch (err) {
      stream.abort(toError(err))
      this.dialBackState = 'done'
      this.report({ type: 'DialBackSent', error: toError(err) })
    } finally {
      clearTimeout(timer)
    }
  }

  private report (event: ToBehaviour): void {
    if (this.closed) return
    this.results.push(event)
    this.waker?.wake()
  }
}

/**
 * Read `DialDataResponse` frames until `numBytes` bytes of dial data are in; resolves with the
 * amount. The client sends them back to back, so they are decoded from the stream's messages
 * (never more than one frame buffered) rather than one `readFrame` at a time.
 */
async function readDialData (stream: Stream, numBytes: number, signal: AbortSignal): Promise<number> {
  const decoder = new FrameDecoder(MAX_MESSAGE_SIZE)
  let received = 0
  return new Promise<number>((resolve, reject) => {
    const done = (): void => {
      stream.removeEventListener('message', onMessage)
      stream.removeEventListener('close', onClose)
      signal.removeEventListener('abort', onAbort)
    }
    const fail = (err: unknown): void => { done(); reject(err) }
    const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
      try {
        for (const frame of decoder.decode(evt.data)) {
          const message = decodeMessage(frame)
          if (message.type !== 'DialDataResponse') throw new MalformedMessageError(`expected DialDataResponse, got ${message.type}`)
          if (message.data.byteLength > DIAL_DATA_CHUNK_SIZE) throw new MalformedMessageError(`dial data chunk of ${message.data.byteLength} bytes`)
          received += message.data.byteLength
          if (received >= numBytes) {
            done()
            resolve(received)
            return
          }
        }
      } catch (err) {
        fail(err)
      }
    }
    const onClose = (): void => { fail(new Error(`the stream closed after ${received} of ${numBytes} bytes of dial data`)) }
    const onAbort = (): void => { fail(signal.reason) }
    if (signal.aborted) {
      reject(signal.reason)
      return
    }
    stream.addEventListener('message', onMessage)
    stream.addEventListener('close', onClose)
    signal.addEventListener('abort', onAbort)
  })
}
