/**
 * The AutoNAT v2 server, as rust-libp2p's `autonat::v2::server::Behaviour`.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { ActionQueue } from '../../../../behaviour/action-queue.js'
import { isRelayedAddress, newConnectionId } from '../../../../core/ids.js'
import { serverConfig } from '../config.js'
import { Handler } from './handler.js'
import { AutonatError } from '../errors.js'
import type { ServerConfig } from '../config.js'
import type { DialStatusCode } from '../message.js'
import type { FromBehaviour, ToBehaviour } from './handler.js'
import type { Context } from '../../../../behaviour/context.js'
import type { EstablishedInboundConnection, EstablishedOutboundConnection, FromSwarm, NetworkBehaviour, ToSwarm } from '../../../../behaviour/network-behaviour.js'
import type { ConnectionId } from '../../../../core/ids.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:autonat:v2:server')

/** How a request ended: `{ ok: true }` when the dial-back reached the client and it knew the nonce. */
export type ServerResult = { readonly ok: true } | { readonly ok: false, readonly error: Error }

/** One request served (rust-libp2p's `v2::server::Event`). */
export interface ServerEvent {
  /** Every address the client asked us to test. */
  readonly allAddrs: readonly Multiaddr[]
  /** The address we tested (dialed), when we picked one. */
  readonly testedAddr?: Multiaddr
  readonly client: PeerId
  /** Dial data the client sent before the dial-back, in bytes. */
  readonly dataAmount: number
  readonly result: ServerResult
}

interface DialBack {
  readonly client: PeerId
  readonly requestConnection: ConnectionId
  readonly requestId: number
  readonly allAddrs: readonly Multiaddr[]
  readonly address: Multiaddr
  readonly nonce: bigint
  readonly dataAmount: number
  established: boolean
}

/**
 * An AutoNAT v2 server: it tests addresses for the clients connected to it by dialing them
 * back on a new connection (from an ephemeral port, never the one the request came on) and
 * sending the client's nonce, and asks for 30–100 kB of dial data first when the address's IP
 * is not the one the client is observed at. Requests over relayed connections are refused;
 * addresses that are not global (config `isGlobal`) are not dialed.
 *
 * ```ts
 * import { SwarmBuilder, autonat, combine, identify } from 'peerswarm'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(key => combine({
 *     identify: new identify.Behaviour(key.publicKey),
 *     autonat: new autonat.v2.server.Behaviour()
 *   }))
 *   .build()
 * ```
 */
export class Behaviour implements NetworkBehaviour<ServerEvent, FromBehaviour, ToBehaviour> {
  /** The complete configuration. */
  readonly config: ServerConfig
  private readonly actions = new ActionQueue<ServerEvent, FromBehaviour>()
  private readonly dialBacks = new Map<ConnectionId, DialBack>()

  /** Throws `ConfigError` for an invalid option. */
  constructor (options: Partial<ServerConfig> = {}) {
    this.config = serverConfig(options)
  }

  /** Dial-backs in progress. */
  get numDialBacks (): number {
    return this.dialBacks.size
  }

  handleEstablishedInboundConnection (connection: EstablishedInboundConnection): Handler {
    return new Handler(this.config, {
      remoteAddr: connection.remoteAddr,
      relayed: isRelayedAddress(connection.localAddr) || isRelayedAddress(connection.remoteAddr)
    })
  }

  handleEstablishedOutboundConnection (connection: EstablishedOutboundConnection): Handler {
    const dialBack = this.dialBacks.get(connection.connectionId)
    if (dialBack != null) dialBack.established = true
    return new Handler(this.config, { remoteAddr: connection.address, relayed: isRelayedAddress(connection.address), dialBackNonce: dialBack?.nonce })
  }

  onSwarmEvent (event: FromSwarm): void {
    if (event.type === 'DialFailure') {
      const dialBack = this.dialBacks.get(event.connectionId)
      if (dialBack != null) {
        log('dial-back to %a failed: %s', dialBack.address, event.error.message)
        this.finish(event.connectionId, dialBack, 'E_DIAL_ERROR', new AutonatError('AddressNotReachable', `dialing ${dialBack.address.toString()} failed`, event.error))
      }
    } else if (event.type === 'ConnectionClosed') {
      const dialBack = this.dialBacks.get(event.connectionId)
      if (dialBack != null) this.finish(event.connectionId, dialBack, 'E_DIAL_BACK_ERROR', new AutonatError('DialBackFailed', 'the dial-back connection closed before the nonce was acknowledged'))
    }
  }

  onConnectionHandlerEvent (peerId: PeerId, connectionId: ConnectionId, event: ToBehaviour): void {
    switch (event.type) {
      case 'DialBackRequested': {
        if (this.dialBacks.size >= this.config.maxConcurrentRequests) {
          this.actions.notifyHandler(peerId, connectionId, { type: 'DialBackResult', requestId: event.requestId, status: 'E_REQUEST_REJECTED', dialStatus: 'UNUSED' })
          this.actions.generate({ allAddrs: event.allAddrs, testedAddr: event.address, client: peerId, dataAmount: event.dataAmount, result: { ok: false, error: new AutonatError('Refused', 'too many dial-backs in progress') } })
          return
        }
        const dialConnection = newConnectionId()
        this.dialBacks.set(dialConnection, {
          client: peerId,
          requestConnection: connectionId,
          requestId: event.requestId,
          allAddrs: event.allAddrs,
          address: event.address,
          nonce: event.nonce,
          dataAmount: event.dataAmount,
          established: false
        })
        // A new connection whatever we have to the client, authenticated as the client, from
        // an ephemeral port (`portUse: 'new'`, as rust-libp2p's server): never from the TCP
        // transport's dial port, whose NAT mapping a hole punch may be about to use.
        this.actions.push({
          type: 'Dial',
          opts: { peerId, addresses: [event.address], condition: 'always', extendAddressesThroughBehaviour: false, connectionId: dialConnection, portUse: 'new' }
        })
        break
      }
      case 'RequestFailed':
        this.actions.generate({ allAddrs: event.allAddrs, testedAddr: event.testedAddr, client: peerId, dataAmount: event.dataAmount, result: { ok: false, error: event.error } })
        break
      case 'DialBackSent': {
        const dialBack = this.dialBacks.get(connectionId)
        if (dialBack == null) return
        this.finish(connectionId, dialBack, event.error == null ? 'OK' : 'E_DIAL_BACK_ERROR', event.error == null ? undefined : new AutonatError('DialBackFailed', 'the dial-back stream failed', event.error))
        break
      }
    }
  }

  poll (cx: Context): ToSwarm<ServerEvent, FromBehaviour> | undefined {
    return this.actions.poll(cx)
  }

  private finish (dialConnection: ConnectionId, dialBack: DialBack, dialStatus: DialStatusCode, error?: Error): void {
    this.dialBacks.delete(dialConnection)
    this.actions.notifyHandler(dialBack.client, dialBack.requestConnection, { type: 'DialBackResult', requestId: dialBack.requestId, status: 'OK', dialStatus })
    if (dialBack.established) this.actions.push({ type: 'CloseConnection', peerId: dialBack.client, connection: dialConnection })
    this.actions.generate({
      allAddrs: dialBack.allAddrs,
      testedAddr: dialBack.address,
      client: dialBack.client,
      dataAmount: dialBack.dataAmount,
      result: dialStatus === 'OK' ? { ok: true } : { ok: false, error: error ?? new AutonatError('DialBackFailed', dialStatus) }
    })
  }
}
