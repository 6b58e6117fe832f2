/**
 * The AutoNAT v2 client, as rust-libp2p's `autonat::v2::client::Behaviour`.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { ActionQueue } from '../../../../behaviour/action-queue.js'
import { isRelayedAddress } from '../../../../core/ids.js'
import { clientConfig } from '../config.js'
import { AutonatError } from '../errors.js'
import { randomNonce } from '../message.js'
import { Handler } from './handler.js'
import type { ClientConfig } from '../config.js'
import type { FromBehaviour, Probe, ToBehaviour } from './handler.js'
import type { Context } from '../../../../behaviour/context.js'
import type { EstablishedInboundConnection, EstablishedOutboundConnection, FromSwarm, NetworkBehaviour, ToSwarm } from '../../../../behaviour/network-behaviour.js'
import type { ConnectionId } from '../../../../core/ids.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:autonat:v2:client')

/** How a test ended: `{ ok: true }` when the address was confirmed. */
export type ClientResult = { readonly ok: true } | { readonly ok: false, readonly error: AutonatError }

/** One test of an address (rust-libp2p's `v2::client::Event`). */
export interface ClientEvent {
  /** The address the server tested (the first one sent when it tested none). */
  readonly testedAddr: Multiaddr
  /** Dial data we sent, in bytes. */
  readonly bytesSent: number
  /** The server that tested it. */
  readonly server: PeerId
  readonly result: ClientResult
}

interface Candidate {
  readonly address: Multiaddr
  /** Servers that tested it (or refused to), by peer id. */
  readonly triedBy: Set<string>
}

interface RunningProbe extends Probe {
  readonly server: PeerId
  nonceReceived: boolean
}

/**
 * An AutoNAT v2 client: it tests the addresses other peers observe us at
 * (`NewExternalAddrCandidate`, from identify) and those given to {@link probeAddress}, one
 * probe every `probeInterval`, with the servers it is connected to (peers whose identify lists
 * `/libp2p/autonat/2/dial-request`). A server dials the address back on a new connection with
 * our nonce; when the dial-back arrived and the server reports success the address is confirmed
 * (`ExternalAddrConfirmed`); otherwise it stays a candidate, tried with the next server. Each
 * test is an event (`ClientEvent`). Addresses that are not global (config `isGlobal`) are
 * never sent.
 *
 * ```ts
 * import { SwarmBuilder, autonat, combine, identify } from 'peerswarm'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(key => combine({
 *     identify: new identify.Behaviour(key.publicKey),
 *     autonat: new autonat.v2.client.Behaviour({ probeInterval: 10_000 })
 *   }))
 *   .build()
 * ```
 */
export class Behaviour implements NetworkBehaviour<ClientEvent, FromBehaviour, ToBehaviour> {
  /** The complete configuration. */
  readonly config: ClientConfig
  private readonly actions = new ActionQueue<ClientEvent, FromBehaviour>()
  /** Untested or unconfirmed candidates, least recent first. */
  private readonly candidates = new Map<string, Candidate>()
  private readonly confirmed = new Set<string>()
  /** Connections whose remote is a server, and its peer id. */
  private readonly servers = new Map<ConnectionId, PeerId>()
  private probe?: RunningProbe & { readonly connectionId: ConnectionId }
  private lastProbeId = 0
  private timer?: ReturnType<typeof setTimeout>
  private due = true
  private closed = false

  /** Throws `ConfigError` for an invalid option. */
  constructor (options: Partial<ClientConfig> = {}) {
    this.config = clientConfig(options)
  }

  /**
   * Test `address` too (when it is global): it becomes the most recent candidate. rust-libp2p's
   * v2 client takes candidates only from the swarm; this is for addresses known otherwise (a
   * port mapping, a listen address on a public interface).
   */
  probeAddress (address: Multiaddr): void {
    this.addCandidate(address)
    this.actions.wake()
  }

  /** The addresses waiting to be confirmed. */
  get pendingCandidates (): Multiaddr[] {
    return [...this.candidates.values()].map(c => c.address)
  }

  handleEstablishedInboundConnection (_connection: EstablishedInboundConnection): Handler {
    return this.handler()
  }

  handleEstablishedOutboundConnection (_connection: EstablishedOutboundConnection): Handler {
    return this.handler()
  }

  onSwarmEvent (event: FromSwarm): void {
    switch (event.type) {
      case 'NewExternalAddrCandidate':
        this.addCandidate(event.address)
        break
      case 'ExternalAddrConfirmed':
        this.confirmed.add(event.address.toString())
        this.candidates.delete(event.address.toString())
        break
      case 'ExternalAddrExpired':
        this.confirmed.delete(event.address.toString())
        break
      case 'ConnectionClosed':
        this.servers.delete(event.connectionId)
        if (this.probe?.connectionId === event.connectionId) {
          this.finishProbe(this.probe.addrs[0], 0, { ok: false, error: new AutonatError('Protocol', 'the connection to the server closed') })
        }
        break
      default:
    }
  }

  onConnectionHandlerEvent (peerId: PeerId, connectionId: ConnectionId, event: ToBehaviour): void {
    switch (event.type) {
      case 'ServerSupport':
        if (event.supported) this.servers.set(connectionId, peerId)
        else this.servers.delete(connectionId)
        this.actions.wake()
        break
      case 'ProbeAnswered': {
        const probe = this.probe
        if (probe?.id !== event.probeId) return
        const tested = event.status === 'OK' ? probe.addrs[event.addrIdx] : probe.addrs[0]
        let result: ClientResult
        if (event.status === 'OK') {
          switch (event.dialStatus) {
            case 'OK':
              result = probe.nonceReceived ? { ok: true } : { ok: false, error: new AutonatError('NoDialBack', 'the server reported success but no dial-back with our nonce arrived') }
              break
            case 'E_DIAL_ERROR':
              result = { ok: false, error: new AutonatError('AddressNotReachable', 'the server could not dial the address') }
              break
            case 'E_DIAL_BACK_ERROR':
              result = { ok: false, error: new AutonatError('DialBackFailed', 'the server connected but the dial-back failed') }
              break
            default:
              result = { ok: false, error: new AutonatError('Protocol', 'the server answered OK without a dial status') }
          }
        } else if (event.status === 'E_INTERNAL_ERROR') {
          result = { ok: false, error: new AutonatError('InternalError', 'the server answered E_INTERNAL_ERROR') }
        } else {
          result = { ok: false, error: new AutonatError('Refused', `the server answered ${event.status}`) }
          // It would refuse them all again.
          for (const address of probe.addrs) this.candidates.get(address.toString())?.triedBy.add(peerId.toString())
        }
        this.finishProbe(tested, event.bytesSent, result)
        break
      }
      case 'ProbeFailed': {
        const probe = this.probe
        if (probe?.id !== event.probeId) return
        for (const address of probe.addrs) this.candidates.get(address.toString())?.triedBy.add(peerId.toString())
        this.finishProbe(probe.addrs[0], event.bytesSent, { ok: false, error: event.error })
        break
      }
    }
  }

  poll (cx: Context): ToSwarm<ClientEvent, FromBehaviour> | undefined {
    if (this.due && this.probe == null) this.startProbe()
    return this.actions.poll(cx)
  }

  close (): void {
    this.closed = true
    clearTimeout(this.timer)
  }

  private handler (): Handler {
    return new Handler(this.config, { acceptNonce: nonce => this.acceptNonce(nonce) })
  }

  private acceptNonce (nonce: bigint): boolean {
    if (this.probe == null || this.probe.nonce !== nonce) return false
    this.probe.nonceReceived = true
    return true
  }

  private addCandidate (address: Multiaddr): void {
    const key = address.toString()
    if (isRelayedAddress(address) || !this.config.isGlobal(address) || this.confirmed.has(key)) return
    const existing = this.candidates.get(key)
    this.candidates.delete(key)
    this.candidates.set(key, existing ?? { address, triedBy: new Set() })
    while (this.candidates.size > this.config.maxCandidates) {
      const oldest = this.candidates.keys().next().value
      if (oldest == null) break
      this.candidates.delete(oldest)
    }
  }

  /** Start a probe if a candidate and a server that has not tried it are there. */
  private startProbe (): void {
    // Most recent first.
    const candidates = [...this.candidates.values()].reverse()
    for (const [connectionId, server] of this.servers) {
      const key = server.toString()
      const addrs = candidates.filter(c => !c.triedBy.has(key)).map(c => c.address)
      if (addrs.length === 0) continue
      this.due = false
      const probe = { id: ++this.lastProbeId, addrs, nonce: randomNonce(), server, connectionId, nonceReceived: false }
      this.probe = probe
      log('asking %p to test %s', server, addrs.map(a => a.toString()).join(', '))
      this.actions.notifyHandler(server, connectionId, { type: 'RunProbe', probe: { id: probe.id, addrs, nonce: probe.nonce } })
      return
    }
  }

  private finishProbe (tested: Multiaddr | undefined, bytesSent: number, result: ClientResult): void {
    const probe = this.probe
    if (probe == null) return
    this.probe = undefined
    if (tested != null) {
      this.candidates.get(tested.toString())?.triedBy.add(probe.server.toString())
      if (result.ok) {
        this.candidates.delete(tested.toString())
        this.confirmed.add(tested.toString())
        this.actions.push({ type: 'ExternalAddrConfirmed', address: tested })
      }
      this.actions.generate({ testedAddr: tested, bytesSent, server: probe.server, result })
    }
    this.schedule()
  }

  private schedule (): void {
    if (this.closed) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.due = true
      this.actions.wake()
    }, this.config.probeInterval)
  }
}
