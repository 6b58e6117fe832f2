/**
 * One established connection and the handler that serves it.
 *
 * A connection runs by itself, event-driven, like a rust-libp2p connection task: it does not
 * wait for the application. It negotiates inbound and outbound streams, feeds its handler and
 * polls it, and buffers what the handler reports for the behaviour in a bounded buffer. When
 * that buffer is full it stops polling the handler until the swarm takes events out, so a
 * slow application slows the remote down instead of growing memory.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { handle, select } from '@libp2p/multistream-select'
import { toError } from '../core/errors.js'
import { StreamUpgradeError, isIgnoredForKeepAlive } from '../behaviour/connection-handler.js'
import { ConnectionIOError, HandlerClosedError, KeepAliveTimeoutError } from '../core/connection-errors.js'
import { MAX_TIMER_DELAY, deadline, withDeadline } from '../core/timers.js'
import type { SwarmConfig } from './config.js'
import type { ConnectionError } from '../core/connection-errors.js'
import type { ConnectedPoint, ConnectionId } from '../core/ids.js'
import { abortUpgraded } from '../upgrade/upgrader.js'
import type { UpgradedConnection } from '../upgrade/upgrader.js'
import type { Context } from '../behaviour/context.js'
import type { ConnectionEvent, ConnectionHandler, SubstreamProtocol } from '../behaviour/connection-handler.js'
import type { PeerId, Stream } from '@libp2p/interface'

const log = logger('peerswarm:connection')
/** Idle for at least this many ms before the remote closed it: its idle timeout most likely did. */
const REMOTE_IDLE_HINT = 50
/** At most this many events are taken from a handler as its connection closes. */
const MAX_LAST_EVENTS = 1024

/** What the swarm gives a connection. */
export interface ConnectionInit {
  readonly id: ConnectionId
  readonly peerId: PeerId
  readonly endpoint: ConnectedPoint
  readonly upgraded: UpgradedConnection
  readonly config: SwarmConfig
  /** Called when the swarm has something to take: an event, a closure, buffer room. */
  readonly wakeSwarm: () => void
}

/** @internal An established connection, owned by the pool. */
export class Connection {
  readonly id: ConnectionId
  readonly peerId: PeerId
  readonly endpoint: ConnectedPoint
  readonly upgraded: UpgradedConnection
  /** When the connection was established (ms since the epoch). */
  readonly establishedAt = Date.now()
  /** Set once closed; `undefined` when we closed it ourselves. */
  closeCause?: ConnectionError

  /** `draining`: closing gracefully, the handler still runs to send what it has. */
  private state: 'open' | 'draining' | 'closing' | 'closed' = 'open'
  private handler?: ConnectionHandler
  private readonly config: SwarmConfig
  private readonly wakeSwarm: () => void
  /** Behaviour → handler, bounded by `notifyHandlerBufferSize`. */
  private readonly commands: unknown[] = []
  /** Handler → behaviour, bounded by `perConnectionEventBufferSize + 1`. */
  private readonly events: unknown[] = []
  /** Stream outcomes waiting to be told to the handler. */
  private readonly streamEvents: ConnectionEvent[] = []
  /** Inbound streams waiting for a negotiation slot (or for the handler to exist). */
  private readonly waitingInbound: Stream[] = []
  /**
   * The protocols last told to the handler with `LocalProtocolsChange`: the array the handler
   * answered with (the same array again needs no comparison; combined handlers keep theirs
   * while nothing changes).
   */
  private localProtocols: readonly string[] = []
  private negotiatingInbound = 0
  private negotiatingOutbound = 0
  private idleTimer?: ReturnType<typeof setTimeout>
  /** Since when (`performance.now()`) the connection has been idle on our side; undefined while in use. */
  private idleSince?: number
  private scheduled = false
  private readonly cx: Context
  private resolveClosed!: () => void
  /** Resolves once the connection is fully closed. */
  readonly whenClosed = new Promise<void>((resolve) => { this.resolveClosed = resolve })

  constructor (init: ConnectionInit) {
    this.id = init.id
    this.peerId = init.peerId
    this.endpoint = init.endpoint
    this.upgraded = init.upgraded
    this.config = init.config
    this.wakeSwarm = init.wakeSwarm
    this.cx = { waker: { wake: () => { this.wake() } } }
    // Attach at once: the muxer aborts the connection if too many streams arrive unheard.
    init.upgraded.muxer.addEventListener('stream', (evt) => { this.onInboundStream(evt.detail) })
    const { maConn } = init.upgraded
    maConn.addEventListener('close', (evt) => { this.onTransportClosed(evt.error) })
    // The transport may have closed while the swarm was still running the gates.
    if (maConn.status !== 'open') this.onTransportClosed()
  }

  /** Streams open on the connection (negotiated or negotiating). */
  get streamCount (): number {
    return this.upgraded.muxer.streams.length
  }

  /** True once the connection is fully closed and its closure can be reported. */
  get closed (): boolean {
    return this.state === 'closed'
  }

  /** True while the connection accepts work. */
  get open (): boolean {
    return this.state === 'open'
  }

  /** True while the handler runs: open, or draining before a graceful close. */
  private get serving (): boolean {
    return this.state === 'open' || this.state === 'draining'
  }

  /** Start serving with `handler` (the behaviour's established-connection gate returned it). */
  start (handler: ConnectionHandler): void {
    if (this.state !== 'open') {
      handler.close?.()
      return
    }
    this.handler = handler
    this.wake()
  }

  /**
   * Queue an event for the handler. Returns false, queuing nothing, if the buffer is full;
   * the swarm is woken when there is room again. Events for a closing connection are dropped.
   */
  notify (event: unknown): boolean {
    if (this.state !== 'open') return true
    if (this.commands.length >= this.config.notifyHandlerBufferSize) return false
    this.commands.push(event)
    this.wake()
    return true
  }

  /** Whether a handler event is waiting for the behaviour. */
  get hasEvent (): boolean {
    return this.events.length > 0
  }

  /** Take the oldest handler event for the behaviour. */
  takeEvent (): unknown {
    const full = this.events.length >= this.eventCapacity
    const event = this.events.shift()
    if (full) this.wake()
    return event
  }

  /**
   * Close gracefully; `cause` is reported in `ConnectionClosed` (none: closed by us). The
   * handler first gets the behaviour's queued events and up to `drainTimeout` to send what it
   * has (`ConnectionHandler.drain`); then the muxer and the connection close.
   */
  close (cause?: ConnectionError): void {
    if (this.state !== 'open') return
    this.state = 'draining'
    this.closeCause = cause
    clearTimeout(this.idleTimer)
    this.idleTimer = undefined
    const { muxer, secured, maConn } = this.upgraded
    void (async () => {
      await this.drainHandler()
      // Lost or aborted while draining: already closed.
      if (this.state !== 'draining') return
      this.state = 'closing'
      this.stopServing()
      try {
        await withDeadline(this.config.connectionTimeout, async signal => {
          await muxer.close({ signal })
          await secured.close({ signal })
          await maConn.close({ signal })
        })
      } catch (err) {
        log('closing %s failed, aborting: %s', this.id, err)
        abortUpgraded(this.upgraded, toError(err))
      } finally {
        this.markClosed()
      }
    })()
  }

  /** Drop the connection at once, without a graceful close. */
  abort (cause: ConnectionError): void {
    if (this.state === 'closed') return
    if (this.state === 'open') this.closeCause = cause
    this.state = 'closing'
    this.stopServing()
    abortUpgraded(this.upgraded, cause)
    this.markClosed()
  }

  private get eventCapacity (): number {
    return this.config.perConnectionEventBufferSize + 1
  }

  private wake (): void {
    if (this.scheduled || !this.serving || this.handler == null) return
    this.scheduled = true
    queueMicrotask(this.runScheduled)
  }

  /** The scheduled run of the loop (one closure for the connection's life, not one per wake). */
  private readonly runScheduled = (): void => {
    this.scheduled = false
    try {
      this.run()
    } catch (err) {
      log.error('handler of connection %s to %p failed: %e', this.id, this.peerId, err)
      this.close(new HandlerClosedError(toError(err)))
    }
  }

  /**
   * The connection's loop. Local work before remote work, as in rust-libp2p:
   *  1. events from the behaviour, in order;
   *  2. outcomes of stream negotiations (negotiated streams, failures);
   *  3. the handler's own requests (`poll`), while the buffer to the behaviour has room;
   *  4. inbound streams waiting for a negotiation slot;
   *  5. a change of the protocols the handler listens on, told back to it;
   * then the keep-alive decision once nothing moves.
   */
  private run (): void {
    const handler = this.handler
    if (handler == null) return
    let progress = true
    while (progress && this.serving) {
      progress = false
      if (this.deliverCommands(handler)) progress = true
      for (let event = this.streamEvents.shift(); event !== undefined; event = this.streamEvents.shift()) {
        handler.onConnectionEvent(event)
        progress = true
      }
      // While draining, the swarm may be closing and no longer taking events: keep polling the
      // handler (it may need a stream to send its last frames), up to MAX_LAST_EVENTS.
      const capacity = this.state === 'draining' ? MAX_LAST_EVENTS : this.eventCapacity
      while (this.serving && this.events.length < capacity) {
        const request = handler.poll(this.cx)
        if (request === undefined) break
        progress = true
        switch (request.type) {
          case 'NotifyBehaviour':
            this.events.push(request.event)
            this.wakeSwarm()
            break
          case 'OutboundSubstreamRequest':
            this.openOutbound(request.protocol)
            break
          case 'CloseConnection':
            this.close(new HandlerClosedError(request.error))
            return
          case 'ReportRemoteProtocols':
            this.streamEvents.push({ type: 'RemoteProtocolsChange', change: request.change })
            break
        }
      }
      while (this.waitingInbound.length > 0 && this.negotiatingInbound < this.config.maxNegotiatingInboundStreams) {
        const stream = this.waitingInbound.shift()
        if (stream != null) this.negotiateInbound(handler, stream)
      }
      // Once the rest stands still (the handler is asked for its protocols on every check).
      if (!progress && this.state === 'open' && this.checkLocalProtocols(handler)) progress = true
    }
    this.updateKeepAlive(handler)
  }

  /** Tell the handler when the protocols it listens on change (identify advertises them). */
  private checkLocalProtocols (handler: ConnectionHandler): boolean {
    const now = handler.listenProtocol().protocols
    const before = this.localProtocols
    if (now === before) return false
    this.localProtocols = now
    if (now.length === before.length && now.every((p, i) => p === before[i])) return false
    const added = now.filter(p => !before.includes(p))
    const removed = before.filter(p => !now.includes(p))
    if (added.length > 0) this.streamEvents.push({ type: 'LocalProtocolsChange', change: { type: 'Added', protocols: added } })
    if (removed.length > 0) this.streamEvents.push({ type: 'LocalProtocolsChange', change: { type: 'Removed', protocols: removed } })
    return added.length + removed.length > 0
  }

  private onInboundStream (stream: Stream): void {
    if (this.state !== 'open') {
      stream.abort(new Error('connection closing'))
      return
    }
    stream.addEventListener('close', () => { this.wake() })
    if (this.handler != null && this.negotiatingInbound < this.config.maxNegotiatingInboundStreams) {
      this.negotiateInbound(this.handler, stream)
      return
    }
    if (this.negotiatingInbound + this.waitingInbound.length >= this.config.maxNegotiatingInboundStreams) {
      log('connection %s: too many negotiating inbound streams, resetting one', this.id)
      stream.abort(new Error('too many negotiating inbound streams'))
      return
    }
    this.waitingInbound.push(stream)
  }

  private negotiateInbound (handler: ConnectionHandler, stream: Stream): void {
    const listen = handler.listenProtocol()
    this.negotiatingInbound++
    // multistream-select answers "na" to protocols we do not speak, so every remote (js-libp2p's
    // ping and identify included) gets an answer rather than a timeout.
    withDeadline(this.timeoutOf(listen), async signal => await handle(stream, [...listen.protocols], { signal })).then((protocol) => {
      this.negotiatingInbound--
      if (this.state !== 'open') {
        stream.abort(new Error('connection closing'))
        return
      }
      stream.protocol = protocol
      this.streamEvents.push({ type: 'FullyNegotiatedInbound', stream, protocol, info: listen.info })
      this.wake()
    }, (err: unknown) => {
      this.negotiatingInbound--
      // As in rust-libp2p, an inbound stream that fails to negotiate is only logged: the remote
      // sees the reset and we never knew which protocol it wanted.
      log('connection %s: inbound stream failed to negotiate: %s', this.id, err)
      stream.abort(toError(err))
      this.wake()
    })
  }

  private openOutbound (protocol: SubstreamProtocol): void {
    this.negotiatingOutbound++
    const { signal, clear } = deadline(this.timeoutOf(protocol))
    const { muxer } = this.upgraded
    void (async () => {
      let stream: Stream | undefined
      try {
        stream = await muxer.createStream({ signal })
        stream.addEventListener('close', () => { this.wake() })
        const negotiated = await select(stream, [...protocol.protocols], { signal })
        stream.protocol = negotiated
        this.streamEvents.push({ type: 'FullyNegotiatedOutbound', stream, protocol: negotiated, info: protocol.info })
      } catch (err) {
        stream?.abort(toError(err))
        this.streamEvents.push({ type: 'DialUpgradeError', info: protocol.info, error: outboundError(err, signal) })
      } finally {
        clear()
        this.negotiatingOutbound--
        this.wake()
      }
    })()
  }

  private timeoutOf (protocol: SubstreamProtocol): number {
    return protocol.timeout ?? this.config.substreamNegotiationTimeout
  }

  private hasActiveStreams (): boolean {
    return this.upgraded.muxer.streams.some(stream => !isIgnoredForKeepAlive(stream) && stream.status === 'open')
  }

  private updateKeepAlive (handler: ConnectionHandler): void {
    if (this.state !== 'open') return
    const idle = this.negotiatingInbound === 0 &&
      this.negotiatingOutbound === 0 &&
      this.waitingInbound.length === 0 &&
      !this.hasActiveStreams() &&
      !handler.connectionKeepAlive()
    if (!idle) {
      this.idleSince = undefined
      clearTimeout(this.idleTimer)
      this.idleTimer = undefined
      return
    }
    this.idleSince ??= performance.now()
    if (this.idleTimer != null) return
    const timeout = this.config.idleConnectionTimeout
    // Longer idle timeouts than a timer can wait mean "never".
    if (timeout > MAX_TIMER_DELAY) return
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined
      // Re-check: a handler may have changed its mind without waking us.
      if (this.state === 'open' && this.handler?.connectionKeepAlive() === false && !this.hasActiveStreams() &&
        this.negotiatingInbound + this.negotiatingOutbound + this.waitingInbound.length === 0) {
        log('connection %s to %p idle for %d ms, closing', this.id, this.peerId, timeout)
        this.close(new KeepAliveTimeoutError())
      } else {
        this.wake()
      }
    }, timeout)
  }

  private onTransportClosed (error?: Error): void {
    if (this.state === 'open' || this.state === 'draining') {
      if (this.state === 'open') this.closeCause = new ConnectionIOError(error == null ? this.remoteCloseMessage() : `connection lost: ${error.message}`, error)
      this.state = 'closing'
    }
    // Also ends a drain in progress: nothing more can be sent.
    this.stopServing()
    this.markClosed()
  }

  /**
   * Why the remote closed the connection, as far as we can tell: the wire does not say (Yamux's
   * GoAway only says whether the close was normal). If the connection had been idle here too,
   * the remote's idle timeout most likely closed it, and the message says so.
   */
  private remoteCloseMessage (): string {
    const idleFor = this.idleSince == null ? 0 : performance.now() - this.idleSince
    // A remote closing a busy connection drains it first, which leaves it idle here for a few
    // ms before its goodbye arrives: that is not what an idle timeout looks like.
    if (idleFor >= REMOTE_IDLE_HINT) {
      return `connection closed by the remote after being idle here for ${Math.round(idleFor)} ms (most likely the remote's idleConnectionTimeout ran out)`
    }
    const goAway = (this.upgraded.muxer as { readonly remoteGoAway?: unknown }).remoteGoAway
    return goAway === 0
      ? 'connection closed by the remote (a graceful close: its application or swarm closed it, or, if it was idle there, its idleConnectionTimeout)'
      : 'connection closed by the remote'
  }

  /** Hand the handler every event the behaviour queued; false if there was none. */
  private deliverCommands (handler: ConnectionHandler): boolean {
    if (this.commands.length === 0) return false
    const wasFull = this.commands.length >= this.config.notifyHandlerBufferSize
    for (let event = this.commands.shift(); event !== undefined; event = this.commands.shift()) {
      handler.onBehaviourEvent(event)
    }
    if (wasFull) this.wakeSwarm()
    return true
  }

  /** Hand the handler what the behaviour queued, then wait for its `drain`, bounded. */
  private async drainHandler (): Promise<void> {
    const handler = this.handler
    if (handler == null) return
    try {
      // Now rather than in the next run of the loop: `drain` must see them.
      this.deliverCommands(handler)
    } catch (err) {
      log.error('handler of connection %s failed on its last events: %e', this.id, err)
      return
    }
    if (handler.drain == null || this.config.drainTimeout === 0) return
    let timer: ReturnType<typeof setTimeout> | undefined
    const deadline = new Promise<void>(resolve => { timer = setTimeout(resolve, this.config.drainTimeout) })
    try {
      await Promise.race([handler.drain(), deadline])
    } catch (err) {
      log('handler of connection %s failed to drain: %s', this.id, err)
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * What the handler still has for the behaviour (e.g. messages that arrived just before the
   * remote closed) is kept and reported before the closure, as rust-libp2p's `poll_close`
   * does; its other requests are dropped. Bounded by `MAX_LAST_EVENTS`.
   */
  private takeLastEvents (handler: ConnectionHandler): void {
    try {
      for (let i = 0; i < MAX_LAST_EVENTS; i++) {
        const request = handler.poll(this.cx)
        if (request === undefined) return
        if (request.type === 'NotifyBehaviour') this.events.push(request.event)
      }
      log('handler of connection %s still had events after %d; dropped', this.id, MAX_LAST_EVENTS)
    } catch (err) {
      log.error('handler of connection %s failed while closing: %e', this.id, err)
    }
  }

  /** Stop the handler and everything that would wake it; the transport may still be closing. */
  private stopServing (): void {
    clearTimeout(this.idleTimer)
    this.idleTimer = undefined
    for (const stream of this.waitingInbound.splice(0)) stream.abort(new Error('connection closing'))
    this.commands.length = 0
    const handler = this.handler
    this.handler = undefined
    if (handler != null) this.takeLastEvents(handler)
    try {
      handler?.close?.()
    } catch (err) {
      log.error('handler of connection %s failed to close: %e', this.id, err)
    }
  }


  private markClosed (): void {
    if (this.state === 'closed') return
    this.state = 'closed'
    this.resolveClosed()
    this.wakeSwarm()
  }
}

function outboundError (err: unknown, signal: AbortSignal): StreamUpgradeError {
  if (signal.aborted) return new StreamUpgradeError('Timeout', 'outbound stream negotiation timed out', err)
  if (err instanceof Error && err.name === 'UnsupportedProtocolError') {
    return new StreamUpgradeError('NegotiationFailed', 'the remote supports none of the protocols', err)
  }
  return new StreamUpgradeError('Io', `outbound stream failed: ${toError(err).message}`, err)
}
