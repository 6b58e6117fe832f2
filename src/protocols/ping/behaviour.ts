/**
 * Ping's behaviour: reports every connection's round-trip times and failures.
 *
 * @module
 */
import { config as pingConfig } from './config.js'
import { Handler } from './handler.js'
import type { Config } from './config.js'
import type { FromBehaviour, PingFailure, ToBehaviour } from './handler.js'
import { ActionQueue } from '../../behaviour/action-queue.js'
import type { Context } from '../../behaviour/context.js'
import type { NetworkBehaviour, ToSwarm } from '../../behaviour/network-behaviour.js'
import type { ConnectionId } from '../../core/ids.js'
import type { PeerId } from '@libp2p/interface'

/** A ping result for one connection. */
export type Event =
  | {
    readonly type: 'Success'
    readonly peerId: PeerId
    readonly connectionId: ConnectionId
    /** Round-trip time in ms. */
    readonly rtt: number
  }
  | {
    readonly type: 'Failure'
    readonly peerId: PeerId
    readonly connectionId: ConnectionId
    readonly error: PingFailure
  }

/**
 * The `/ipfs/ping/1.0.0` protocol, as rust-libp2p's ping: each connection is pinged right
 * away and then every `interval`. Ping does not keep connections alive; set the swarm's
 * `idleConnectionTimeout` (or add a protocol that does) to keep an otherwise idle connection.
 *
 * ```ts
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withMemoryTransport()
 *   .withBehaviour(() => new ping.Behaviour({ interval: 1_000 }))
 *   .build()
 * ```
 */
export class Behaviour implements NetworkBehaviour<Event, FromBehaviour, ToBehaviour> {
  /** The complete configuration. */
  readonly config: Config
  private readonly actions = new ActionQueue<Event, FromBehaviour>()

  constructor (options: Partial<Config> = {}) {
    this.config = pingConfig(options)
  }

  handleEstablishedInboundConnection (): Handler {
    return new Handler(this.config)
  }

  handleEstablishedOutboundConnection (): Handler {
    return new Handler(this.config)
  }

  onSwarmEvent (): void {}

  onConnectionHandlerEvent (peerId: PeerId, connectionId: ConnectionId, event: ToBehaviour): void {
    this.actions.generate(event.type === 'Success'
      ? { type: 'Success', peerId, connectionId, rtt: event.rtt }
      : { type: 'Failure', peerId, connectionId, error: event.error })
  }

  poll (cx: Context): ToSwarm<Event, FromBehaviour> | undefined {
    return this.actions.poll(cx)
  }
}
