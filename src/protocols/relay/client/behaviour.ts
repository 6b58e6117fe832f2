/**
 * The relay client's behaviour, as rust-libp2p's `relay::client::Behaviour`: it takes the
 * transport's dial and listen requests to the handler of a connection to the relay (dialing
 * the relay first when there is none), and reports reservations and circuits.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { ActionQueue } from '../../../behaviour/action-queue.js'
import { isRelayedAddress, newConnectionId } from '../../../core/ids.js'
import { TransportChannel } from './channel.js'
import { backoff, config as clientConfig } from './config.js'
import { ConnectError, ReserveError } from './errors.js'
import { Handler } from './handler.js'
import { Transport } from './transport.js'
import type { PendingCircuit, ReservationSink, TransportRequest } from './channel.js'
import type { Config } from './config.js'
import type { FromBehaviour, ToBehaviour } from './handler.js'
import type { Limit } from '../message.js'
import type { Context } from '../../../behaviour/context.js'
import type { EstablishedInboundConnection, EstablishedOutboundConnection, FromSwarm, NetworkBehaviour, ToSwarm } from '../../../behaviour/network-behaviour.js'
import type { ConnectionId } from '../../../core/ids.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:relay-client')

/** What the relay client reports. */
export type Event =
  | {
    /** A relay accepted our reservation (`renewal`: it renewed one we held). */
    readonly type: 'ReservationReqAccepted'
    readonly relayPeerId: PeerId
    readonly renewal: boolean
    /** The limits the relay applies to the circuits it relays to us. */
    readonly limit?: Limit
  }
  | {
    /** A circuit we asked for through `relayPeerId` is open (its connection's upgrade follows). */
    readonly type: 'OutboundCircuitEstablished'
    readonly relayPeerId: PeerId
    readonly limit?: Limit
  }
  | {
    /** `srcPeerId` opened a circuit to us through a relay (its connection's upgrade follows). */
    readonly type: 'InboundCircuitEstablished'
    readonly srcPeerId: PeerId
    readonly limit?: Limit
  }
  | {
    /**
     * The connection our reservation on `relayPeerId` was held on closed: its addresses are
     * withdrawn and the client reserves again (dialing the relay), up to `reReserveAttempts`
     * times with a growing wait; `ReservationReqAccepted` follows when it succeeds.
     */
    readonly type: 'ReservationLost'
    readonly relayPeerId: PeerId
    readonly error: ReserveError
  }
  | {
    /**
     * Every attempt to reserve again on `relayPeerId` failed: the listener closes with `error`
     * (a `ReserveError` `RetriesExhausted` whose cause is the last attempt's error).
     */
    readonly type: 'ReservationGaveUp'
    readonly relayPeerId: PeerId
    readonly attempts: number
    readonly error: ReserveError
  }

/** A listener's reservation: on which connection, and the external addresses it confirmed. */
interface SinkState {
  connectionId: ConnectionId
  confirmed: Multiaddr[]
  /** The relay accepted a reservation of it at least once. */
  accepted: boolean
  /** Reserving again after its connection closed: attempts made, the next one's timer. */
  retry?: { attempts: number, timer?: ReturnType<typeof setTimeout>, lastError: Error }
}

/**
 * The relay client's behaviour. It works only with the transport it is made with: build both
 * with `SwarmBuilder.withRelayClient()` (the behaviour is handed to `withBehaviour` as its
 * second argument) or with {@link create}.
 *
 * On the first accepted reservation of a listener it confirms the listener's circuit addresses
 * as external addresses (`ExternalAddrConfirmed`), and withdraws them when the reservation ends,
 * as rust-libp2p's client does. The handler renews a reservation at three quarters of its
 * lifetime. A reservation lost with its connection to the relay is made again
 * (`ReservationLost`, then `ReservationReqAccepted`), up to `reReserveAttempts` times with a
 * doubling wait, before the listener closes (`ReservationGaveUp`); rust-libp2p's and
 * js-libp2p's clients do not do this.
 */
export class Behaviour implements NetworkBehaviour<Event, FromBehaviour, ToBehaviour> {
  private readonly actions = new ActionQueue<Event, FromBehaviour>()
  /** Our direct (not relayed) connections, by peer. */
  private readonly direct = new Map<string, ConnectionId[]>()
  /** Our dials to relays under way, by relay; requests wait for them in `pendingCommands`. */
  private readonly dialing = new Map<string, ConnectionId>()
  private readonly pendingCommands = new Map<ConnectionId, FromBehaviour[]>()
  /** Dials handed to a connection's handler that it has not settled yet, by connection. */
  private readonly outstanding = new Map<ConnectionId, Set<PendingCircuit>>()
  private readonly sinks = new Map<ReservationSink, SinkState>()

  /** The complete configuration. */
  readonly config: Config
  private closed = false

  /** @internal Use {@link create} or `SwarmBuilder.withRelayClient()`. Throws `ConfigError` for an invalid option. */
  constructor (readonly localPeerId: PeerId, private readonly channel: TransportChannel, options: Partial<Config> = {}) {
    this.config = clientConfig(options)
  }

  handleEstablishedInboundConnection (connection: EstablishedInboundConnection): Handler {
    return this.handler(connection.connectionId, connection.peerId, isRelayedAddress(connection.localAddr) || isRelayedAddress(connection.remoteAddr))
  }

  handleEstablishedOutboundConnection (connection: EstablishedOutboundConnection): Handler {
    return this.handler(connection.connectionId, connection.peerId, isRelayedAddress(connection.address))
  }

  onSwarmEvent (event: FromSwarm): void {
    switch (event.type) {
      case 'ConnectionEstablished': {
        if (event.endpoint.limited === true) return
        const key = event.peerId.toString()
        const connections = this.direct.get(key) ?? []
        connections.push(event.connectionId)
        this.direct.set(key, connections)
        if (this.dialing.get(key) === event.connectionId) this.dialing.delete(key)
        break
      }
      case 'ConnectionClosed': {
        if (event.endpoint.limited === true) return
        const key = event.peerId.toString()
        const connections = (this.direct.get(key) ?? []).filter(id => id !== event.connectionId)
        if (connections.length > 0) this.direct.set(key, connections)
        else this.direct.delete(key)
        // Dials the swarm could no longer hand to the handler, or that it had not settled.
        for (const request of this.outstanding.get(event.connectionId) ?? []) {
          request.reject(new ConnectError('ConnectionClosed', `the connection to the relay ${key} closed`))
        }
        this.outstanding.delete(event.connectionId)
        for (const [sink, state] of this.sinks) {
          if (state.connectionId !== event.connectionId) continue
          this.reservationFailed(sink, state, new ReserveError('ConnectionClosed', `the connection to the relay ${key} closed`))
        }
        break
      }
      case 'DialFailure': {
        const commands = this.pendingCommands.get(event.connectionId)
        if (commands == null) return
        this.pendingCommands.delete(event.connectionId)
        for (const [key, id] of this.dialing) if (id === event.connectionId) this.dialing.delete(key)
        for (const command of commands) {
          if (command.type === 'Reserve') {
            const state = this.sinks.get(command.sink)
            const error = new ReserveError('DialFailure', `dialing the relay failed: ${event.error.message}`, { cause: event.error })
            if (state == null) command.sink.onFailure(error)
            else this.reservationFailed(command.sink, state, error)
          } else if (command.type === 'Connect') {
            command.request.reject(new ConnectError('DialFailure', `dialing the relay failed: ${event.error.message}`, { cause: event.error }))
          }
        }
        break
      }
      default:
    }
  }

  onConnectionHandlerEvent (peerId: PeerId, connectionId: ConnectionId, event: ToBehaviour): void {
    switch (event.type) {
      case 'ReservationReqAccepted': {
        const state = this.sinks.get(event.sink)
        if (state != null) {
          state.accepted = true
          if (state.retry != null) {
            log('reservation on %p made again after %d attempt(s)', peerId, state.retry.attempts)
            clearTimeout(state.retry.timer)
            state.retry = undefined
          }
        }
        if (state != null && !event.renewal) {
          for (const address of event.sink.getAddrs()) {
            if (state.confirmed.some(a => a.equals(address))) continue
            state.confirmed.push(address)
            this.actions.push({ type: 'ExternalAddrConfirmed', address })
          }
        }
        this.actions.generate({ type: 'ReservationReqAccepted', relayPeerId: peerId, renewal: event.renewal, limit: event.limit })
        break
      }
      case 'ReservationFailed': {
        const state = this.sinks.get(event.sink)
        if (state == null) event.sink.onFailure(event.error)
        else this.reservationFailed(event.sink, state, event.error)
        break
      }
      case 'OutboundCircuitEstablished':
        this.actions.generate({ type: 'OutboundCircuitEstablished', relayPeerId: peerId, limit: event.limit })
        break
      case 'InboundCircuitEstablished':
        this.actions.generate({ type: 'InboundCircuitEstablished', srcPeerId: event.srcPeerId, limit: event.limit })
        break
    }
  }

  poll (cx: Context): ToSwarm<Event, FromBehaviour> | undefined {
    for (let request = this.channel.take(cx); request != null; request = this.channel.take(cx)) this.onTransportRequest(request)
    return this.actions.poll(cx)
  }

  /** Stop the timers of reservations being made again. */
  close (): void {
    this.closed = true
    for (const state of this.sinks.values()) clearTimeout(state.retry?.timer)
  }

  private handler (connectionId: ConnectionId, peerId: PeerId, relayed: boolean): Handler {
    const handler = new Handler(peerId, relayed)
    const commands = this.pendingCommands.get(connectionId)
    if (commands != null) {
      this.pendingCommands.delete(connectionId)
      for (const command of commands) {
        if (command.type === 'Connect') this.track(connectionId, command.request)
        handler.onBehaviourEvent(command)
      }
    }
    return handler
  }

  private onTransportRequest (request: TransportRequest): void {
    switch (request.type) {
      case 'Listen': {
        const { sink } = request
        if (sink.closed) return
        const connectionId = this.send(sink.relayPeerId, sink.relayAddr, { type: 'Reserve', sink })
        this.sinks.set(sink, { connectionId, confirmed: [], accepted: false })
        break
      }
      case 'StopListening': {
        const state = this.sinks.get(request.sink)
        if (state == null) return
        this.forget(request.sink)
        const pending = this.pendingCommands.get(state.connectionId)
        if (pending != null) {
          this.pendingCommands.set(state.connectionId, pending.filter(c => !(c.type === 'Reserve' && c.sink === request.sink)))
        } else {
          this.actions.notifyHandler(request.sink.relayPeerId, state.connectionId, { type: 'ResetReservation', sink: request.sink })
        }
        break
      }
      case 'Dial': {
        const circuit = request.request
        if (circuit.settled) return
        const connectionId = this.send(circuit.relayPeerId, circuit.relayAddr, { type: 'Connect', request: circuit })
        if (!this.pendingCommands.has(connectionId)) this.track(connectionId, circuit)
        break
      }
    }
  }

  /**
   * Hand `command` to the handler of a direct connection to the relay, or to the one our dial
   * to it will have; returns that connection's id.
   */
  private send (relayPeerId: PeerId, relayAddr: Multiaddr | undefined, command: FromBehaviour): ConnectionId {
    const key = relayPeerId.toString()
    const connected = this.direct.get(key)?.[0]
    if (connected != null) {
      this.actions.notifyHandler(relayPeerId, connected, command)
      return connected
    }
    const dialing = this.dialing.get(key)
    if (dialing != null) {
      this.pendingCommands.get(dialing)?.push(command)
      return dialing
    }
    const connectionId = newConnectionId()
    this.dialing.set(key, connectionId)
    this.pendingCommands.set(connectionId, [command])
    const addresses = relayAddr == null ? [] : [relayAddr.encapsulate(`/p2p/${key}`)]
    this.actions.push({ type: 'Dial', opts: { peerId: relayPeerId, addresses, condition: 'always', connectionId, extendAddressesThroughBehaviour: true } })
    return connectionId
  }

  private track (connectionId: ConnectionId, request: PendingCircuit): void {
    let set = this.outstanding.get(connectionId)
    if (set == null) this.outstanding.set(connectionId, set = new Set())
    // Settled requests need no tracking any more.
    for (const known of set) if (known.settled) set.delete(known)
    set.add(request)
  }

  /**
   * A listener's reservation failed or ended with `error`. One the relay had accepted and that
   * was lost with its connection is made again, after a wait, up to `reReserveAttempts`
   * times; a failed attempt waits longer for the next. Otherwise the listener closes.
   */
  private reservationFailed (sink: ReservationSink, state: SinkState, error: ReserveError): void {
    if (sink.closed || this.closed) {
      this.forget(sink)
      return
    }
    if (state.retry != null) {
      // An attempt failed.
      clearTimeout(state.retry.timer)
      state.retry.lastError = error
      this.scheduleRetry(sink, state, state.retry)
      return
    }
    if (!state.accepted || error.kind !== 'ConnectionClosed' || this.config.reReserveAttempts === 0) {
      this.forget(sink)
      sink.onFailure(error)
      return
    }
    log('reservation on %p lost (%s): reserving again', sink.relayPeerId, error.message)
    this.withdraw(state)
    sink.onSuspended()
    this.actions.generate({ type: 'ReservationLost', relayPeerId: sink.relayPeerId, error })
    state.retry = { attempts: 0, lastError: error }
    this.scheduleRetry(sink, state, state.retry)
  }

  /** Wait, then reserve again (dialing the relay if needed); give up after the last attempt. */
  private scheduleRetry (sink: ReservationSink, state: SinkState, retry: NonNullable<SinkState['retry']>): void {
    if (retry.attempts >= this.config.reReserveAttempts) {
      const last = retry.lastError
      const error = new ReserveError('RetriesExhausted',
        `gave up reserving again on ${sink.relayPeerId.toString()} after ${retry.attempts} attempt(s): ${last.message}`, { cause: last })
      log('%s', error.message)
      this.forget(sink)
      this.actions.generate({ type: 'ReservationGaveUp', relayPeerId: sink.relayPeerId, attempts: retry.attempts, error })
      sink.onFailure(error)
      return
    }
    const wait = backoff(this.config, retry.attempts + 1)
    retry.timer = setTimeout(() => {
      retry.timer = undefined
      if (this.sinks.get(sink) !== state || state.retry !== retry || sink.closed || this.closed) return
      retry.attempts++
      log('reserving again on %p, attempt %d of %d', sink.relayPeerId, retry.attempts, this.config.reReserveAttempts)
      state.connectionId = this.send(sink.relayPeerId, sink.relayAddr, { type: 'Reserve', sink })
    }, wait)
  }

  /** Withdraw the external addresses a listener's reservation confirmed. */
  private withdraw (state: SinkState): void {
    for (const address of state.confirmed) this.actions.push({ type: 'ExternalAddrExpired', address })
    state.confirmed = []
  }

  /** Forget a listener's reservation and withdraw the external addresses it confirmed. */
  private forget (sink: ReservationSink): void {
    const state = this.sinks.get(sink)
    if (state == null) return
    this.sinks.delete(sink)
    clearTimeout(state.retry?.timer)
    this.withdraw(state)
  }
}

/**
 * The relay client: its transport and its behaviour, made together (rust-libp2p's
 * `relay::client::new`). Add the transport to the swarm before the others (circuit addresses
 * also start like other transports' addresses) and the behaviour to the swarm's behaviour;
 * `SwarmBuilder.withRelayClient()` does both.
 */
export function create (localPeerId: PeerId, options: Partial<Config> = {}): { readonly transport: Transport, readonly behaviour: Behaviour } {
  const channel = new TransportChannel()
  return { transport: new Transport(localPeerId, channel), behaviour: new Behaviour(localPeerId, channel, options) }
}
