/**
 * Identify's connection handler. On a new connection it asks the remote for its info once
 * (`/ipfs/id/1.0.0`, outbound); it answers the remote's requests with ours (inbound), sends
 * pushes when the behaviour asks, and reads the remote's pushes (`/ipfs/id/push/1.0.0`).
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { withDeadline } from '../../core/timers.js'
import { readFrame, writeFrame } from '../../behaviour/framing.js'
import { describe, toError } from '../../core/errors.js'
import { PROTOCOL, PUSH_PROTOCOL } from './config.js'
import { decodeInfo, encodeInfo } from './message.js'
import type { Config } from './config.js'
import type { Info } from './message.js'
import type { Context, Waker } from '../../behaviour/context.js'
import type { ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, SubstreamProtocol } from '../../behaviour/connection-handler.js'
import type { PeerId, PublicKey, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:identify')

/** What the behaviour tells a handler. */
export type FromBehaviour = { readonly type: 'Push' }

/** What a handler reports. */
export type ToBehaviour =
  | { readonly type: 'Received', readonly info: Info }
  | { readonly type: 'Sent' }
  | { readonly type: 'Pushed', readonly info: Info }
  | { readonly type: 'Error', readonly error: Error }

/** What the handler needs to describe us. */
export interface LocalIdentity {
  readonly publicKey: PublicKey
  /** Our addresses to advertise, read when a message is built. */
  readonly addresses: () => readonly Multiaddr[]
}

type OutboundInfo = 'identify' | 'push'

/** The identify handler of one connection. */
export class Handler implements ConnectionHandler<FromBehaviour, ToBehaviour> {
  private readonly results: ToBehaviour[] = []
  private readonly localProtocols = new Set<string>()
  private remoteProtocols = new Set<string>()
  private readonly protocolReports: Array<ConnectionHandlerEvent<ToBehaviour>> = []
  private identifyWanted = true
  private pushesWanted = 0
  private waker?: Waker
  private closed = false
  private readonly streams = new Set<Stream>()

  /** What `listenProtocol` answers, made once (the connection asks on every turn of its loop). */
  private listen?: SubstreamProtocol

  constructor (
    private readonly config: Config,
    private readonly remotePeer: PeerId,
    private readonly observedAddr: Multiaddr,
    private readonly local: LocalIdentity
  ) {}

  listenProtocol (): SubstreamProtocol {
    this.listen ??= { protocols: [PROTOCOL, PUSH_PROTOCOL], timeout: this.config.timeout }
    return this.listen
  }

  connectionKeepAlive (): boolean {
    return false
  }

  onBehaviourEvent (event: FromBehaviour): void {
    if (event.type === 'Push') this.pushesWanted++
  }

  onConnectionEvent (event: ConnectionEvent): void {
    switch (event.type) {
      case 'LocalProtocolsChange':
        for (const protocol of event.change.protocols) {
          if (event.change.type === 'Added') this.localProtocols.add(protocol)
          else this.localProtocols.delete(protocol)
        }
        break
      case 'FullyNegotiatedInbound':
        this.track(event.stream)
        if (event.protocol === PROTOCOL) void this.send(event.stream, 'Sent')
        else void this.receive(event.stream)
        break
      case 'FullyNegotiatedOutbound':
        this.track(event.stream)
        if (event.info as OutboundInfo === 'identify') void this.receive(event.stream)
        else void this.send(event.stream, 'Pushed')
        break
      case 'DialUpgradeError':
        this.report({ type: 'Error', error: event.error })
        break
      default:
    }
  }

  poll (cx: Context): ConnectionHandlerEvent<ToBehaviour> | undefined {
    this.waker = cx.waker
    const report = this.protocolReports.shift()
    if (report != null) return report
    const result = this.results.shift()
    if (result != null) return { type: 'NotifyBehaviour', event: result }
    if (this.identifyWanted) {
      this.identifyWanted = false
      return this.request([PROTOCOL], 'identify')
    }
    if (this.pushesWanted > 0) {
      this.pushesWanted--
      return this.request([PUSH_PROTOCOL], 'push')
    }
    return undefined
  }

  close (): void {
    this.closed = true
    for (const stream of this.streams) stream.abort(new Error('connection closed'))
    this.streams.clear()
  }

  /** Our info as this connection's remote should see it. */
  private localInfo (): Info {
    return {
      publicKey: this.local.publicKey,
      protocolVersion: this.config.protocolVersion,
      agentVersion: this.config.agentVersion,
      listenAddrs: this.local.addresses(),
      protocols: [...this.localProtocols],
      observedAddr: this.observedAddr
    }
  }

  private request (protocols: string[], info: OutboundInfo): ConnectionHandlerEvent<ToBehaviour> {
    return { type: 'OutboundSubstreamRequest', protocol: { protocols, info, timeout: this.config.timeout } }
  }

  private async send (stream: Stream, done: 'Sent' | 'Pushed'): Promise<void> {
    const info = this.localInfo()
    try {
      await withDeadline(this.config.timeout, async signal => {
        await writeFrame(stream, encodeInfo(info), { maxSize: this.config.maxMessageSize, signal })
        await stream.close({ signal })
      })
      this.report(done === 'Sent' ? { type: 'Sent' } : { type: 'Pushed', info })
    } catch (err) {
      this.fail(stream, err)
    }
  }

  private async receive (stream: Stream): Promise<void> {
    try {
      const info = await withDeadline(this.config.timeout, async signal => {
        const received = decodeInfo(await readFrame(stream, { maxSize: this.config.maxMessageSize, signal }), this.remotePeer)
        await stream.close({ signal }).catch(() => {})
        return received
      })
      this.updateRemoteProtocols(info.protocols)
      this.report({ type: 'Received', info })
    } catch (err) {
      this.fail(stream, err)
    }
  }

  /** Tell the other handlers of this connection what the remote supports now. */
  private updateRemoteProtocols (protocols: readonly string[]): void {
    const now = new Set(protocols)
    const added = [...now].filter(p => !this.remoteProtocols.has(p))
    const removed = [...this.remoteProtocols].filter(p => !now.has(p))
    this.remoteProtocols = now
    if (added.length > 0) this.protocolReports.push({ type: 'ReportRemoteProtocols', change: { type: 'Added', protocols: added } })
    if (removed.length > 0) this.protocolReports.push({ type: 'ReportRemoteProtocols', change: { type: 'Removed', protocols: removed } })
  }

  private fail (stream: Stream, err: unknown): void {
    stream.abort(toError(err))
    if (this.closed) return
    log('identify with %p failed: %s', this.remotePeer, describe(err))
    this.report({ type: 'Error', error: toError(err) })
  }

  private track (stream: Stream): void {
    this.streams.add(stream)
    stream.addEventListener('close', () => { this.streams.delete(stream) })
  }

  private report (event: ToBehaviour): void {
    if (this.closed) return
    this.results.push(event)
    this.waker?.wake()
  }
}
