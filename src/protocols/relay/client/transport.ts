/**
 * The relay client's transport, as rust-libp2p's `relay::client::Transport`: dialing
 * `<relay address>/p2p/<relay>/p2p-circuit/p2p/<peer>` opens a circuit through the relay,
 * listening on `<relay address>/p2p/<relay>/p2p-circuit` makes (and renews) a reservation there.
 * The circuit's stream becomes a `MultiaddrConnection` that the swarm's upgrader secures and
 * multiplexes like any socket. It works only together with the client behaviour made with it
 * (`create`), which does the protocol on the connection to the relay.
 *
 * @module
 */
import { TypedEventEmitter, transportSymbol } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { isRelayedAddress } from '../../../core/ids.js'
import { PendingCircuit } from './channel.js'
import { CircuitConnection } from './connection.js'
import { InvalidCircuitAddressError } from './errors.js'
import type { ReservationSink, TransportChannel } from './channel.js'
import type { Limit } from '../message.js'
import type { Connection, CreateListenerOptions, DialTransportOptions, Listener, ListenerEvents, PeerId, Stream, Transport as JsTransport, Upgrader } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:relay-client')

/** A circuit address taken apart. */
export interface CircuitAddress {
  readonly relayPeerId: PeerId
  /** What comes before `/p2p/<relay>`, if anything (without it the relay is dialed by peer id). */
  readonly relayAddr?: Multiaddr
  /** The peer after `/p2p-circuit`, if any. */
  readonly dstPeerId?: PeerId
}

/**
 * Take `address` apart: `[<relay address>]/p2p/<relay>/p2p-circuit[/p2p/<peer>]`. Throws
 * {@link InvalidCircuitAddressError} for anything else (no relay peer id, several circuits,
 * something other than `/p2p/<peer>` after the circuit).
 */
export function parseCircuitAddress (address: Multiaddr): CircuitAddress {
  const components = address.getComponents()
  const circuit = components.findIndex(c => c.name === 'p2p-circuit')
  if (circuit < 0) throw new InvalidCircuitAddressError(address, 'not a circuit address (no /p2p-circuit)')
  const before = components.slice(0, circuit)
  const after = components.slice(circuit + 1)
  const relay = before.at(-1)
  if (relay?.name !== 'p2p' || relay.value == null) throw new InvalidCircuitAddressError(address, 'no /p2p/<relay> right before /p2p-circuit')
  if (before.slice(0, -1).some(c => c.name === 'p2p')) throw new InvalidCircuitAddressError(address, 'more than one peer id before /p2p-circuit')
  if (after.length > 1 || (after.length === 1 && after[0].name !== 'p2p')) {
    throw new InvalidCircuitAddressError(address, 'only /p2p/<peer> may follow /p2p-circuit')
  }
  let relayPeerId: PeerId
  let dstPeerId: PeerId | undefined
  try {
    relayPeerId = peerIdFromString(relay.value)
    dstPeerId = after[0]?.value == null ? undefined : peerIdFromString(after[0].value)
  } catch {
    throw new InvalidCircuitAddressError(address, 'invalid peer id')
  }
  const relayAddr = before.length > 1 ? multiaddr(before.slice(0, -1)) : undefined
  return { relayPeerId, relayAddr, dstPeerId }
}

function tryParse (address: Multiaddr): CircuitAddress | undefined {
  try {
    return parseCircuitAddress(address)
  } catch {
    return undefined
  }
}

/**
 * The relay client's transport. Made together with its behaviour by `relay.client.create`,
 * or by `SwarmBuilder.withRelayClient()`.
 */
export class Transport implements JsTransport {
  readonly [transportSymbol] = true as const
  readonly [Symbol.toStringTag] = 'peerswarm/relay-client'

  /** @internal */
  constructor (private readonly localPeerId: PeerId, private readonly channel: TransportChannel) {}

  /**
   * Open a circuit to the peer through the relay (dialing the relay first if we have no
   * direct connection to it), then upgrade it like any connection.
   */
  async dial (address: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    options.signal.throwIfAborted()
    const target = parseCircuitAddress(address)
    if (target.dstPeerId == null) throw new InvalidCircuitAddressError(address, 'no /p2p/<peer> after /p2p-circuit to dial')
    const request = new PendingCircuit(target.relayPeerId, target.relayAddr, target.dstPeerId, options.signal)
    this.channel.push({ type: 'Dial', request })
    const circuit = await request.promise
    const maConn = new CircuitConnection(circuit.stream, { remoteAddr: address, direction: 'outbound' })
    try {
      return await options.upgrader.upgradeOutbound(maConn, { signal: options.signal })
    } catch (err) {
      maConn.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }

  createListener (options: CreateListenerOptions): Listener {
    return new RelayListener(this.localPeerId, this.channel, options.upgrader)
  }

  /** Circuit addresses of a relay, without a destination: `…/p2p/<relay>/p2p-circuit`. */
  listenFilter (addresses: Multiaddr[]): Multiaddr[] {
    return addresses.filter(address => {
      const parsed = tryParse(address)
      return parsed != null && parsed.dstPeerId == null
    })
  }

  /** Circuit addresses with a destination: `…/p2p/<relay>/p2p-circuit/p2p/<peer>`. */
  dialFilter (addresses: Multiaddr[]): Multiaddr[] {
    return addresses.filter(address => tryParse(address)?.dstPeerId != null)
  }
}

/**
 * A reservation on one relay, as a listener: its addresses are our circuit addresses on the
 * relay, its connections the circuits peers open to us there. `listen` resolves with the first
 * accepted reservation (and rejects with a `ReserveError`); the handler renews it before it
 * expires. When the reservation ends (the relay connection closed, a renewal refused) the
 * listener closes with that error, as rust-libp2p's; listen again to make a new one. A
 * reservation lost with its connection is made again by the behaviour (`reReserveAttempts`):
 * meanwhile the listener has no addresses, and it closes only when every attempt failed.
 */
class RelayListener extends TypedEventEmitter<ListenerEvents> implements Listener, ReservationSink {
  relayPeerId!: PeerId
  relayAddr?: Multiaddr
  private state: 'new' | 'reserving' | 'listening' | 'closed' = 'new'
  private addrs: Multiaddr[] = []
  private listening?: { resolve: () => void, reject: (err: Error) => void }

  constructor (private readonly localPeerId: PeerId, private readonly channel: TransportChannel, private readonly upgrader: Upgrader) {
    super()
  }

  get closed (): boolean {
    return this.state === 'closed'
  }

  async listen (address: Multiaddr): Promise<void> {
    if (this.state !== 'new') throw new Error('the listener is already listening')
    const target = parseCircuitAddress(address)
    this.relayPeerId = target.relayPeerId
    this.relayAddr = target.relayAddr
    this.state = 'reserving'
    await new Promise<void>((resolve, reject) => {
      this.listening = { resolve, reject }
      this.channel.push({ type: 'Listen', sink: this })
    })
  }

  getAddrs (): Multiaddr[] {
    return [...this.addrs]
  }

  updateAnnounceAddrs (): void {}

  async close (): Promise<void> {
    if (this.state === 'closed') return
    const wasReserving = this.state === 'reserving'
    this.state = 'closed'
    this.addrs = []
    this.channel.push({ type: 'StopListening', sink: this })
    if (wasReserving) this.listening?.reject(new Error('the listener was closed'))
    queueMicrotask(() => { this.safeDispatchEvent('close') })
  }

  onReservation (relayAddrs: readonly Multiaddr[], renewal: boolean): void {
    if (this.state === 'closed') return
    const before = this.addrs.map(a => a.toString()).join(' ')
    this.addrs = this.circuitAddresses(relayAddrs)
    log('reservation on %p %s: %s', this.relayPeerId, renewal ? 'renewed' : 'accepted', this.addrs.map(a => a.toString()).join(', '))
    if (this.state === 'reserving') {
      this.state = 'listening'
      this.listening?.resolve()
    }
    if (before !== this.addrs.map(a => a.toString()).join(' ')) this.safeDispatchEvent('listening')
  }

  onFailure (error: Error): void {
    if (this.state === 'closed') return
    const wasReserving = this.state === 'reserving'
    this.state = 'closed'
    this.addrs = []
    this.channel.push({ type: 'StopListening', sink: this })
    // A failed `listen` is reported by the swarm from its rejection; a lost reservation closes
    // the listener with the error as its reason.
    if (wasReserving) this.listening?.reject(error)
    else queueMicrotask(() => { this.safeDispatchEvent('close', { detail: error }) })
  }

  onSuspended (): void {
    if (this.state !== 'listening' || this.addrs.length === 0) return
    log('reservation on %p lost, making it again', this.relayPeerId)
    this.addrs = []
    // The swarm compares the addresses: they expire until the next reservation.
    this.safeDispatchEvent('listening')
  }

  onIncoming (stream: Stream, srcPeerId: PeerId, limit?: Limit): boolean {
    if (this.state !== 'listening') return false
    const remoteAddr = this.relayBase().encapsulate(`/p2p-circuit/p2p/${srcPeerId.toString()}`)
    const maConn = new CircuitConnection(stream, { remoteAddr, direction: 'inbound' })
    log('circuit from %p through %p (limit %o)', srcPeerId, this.relayPeerId, limit ?? 'none')
    this.upgrader.upgradeInbound(maConn, { signal: AbortSignal.any([]) }).catch((err: unknown) => {
      log('inbound circuit from %p failed: %s', srcPeerId, err)
      maConn.abort(err instanceof Error ? err : new Error(String(err)))
    })
    return true
  }

  /** `…/p2p/<relay>`: the listen address's relay part, else the first address of the reservation. */
  private relayBase (): Multiaddr {
    const relay = `/p2p/${this.relayPeerId.toString()}`
    if (this.relayAddr != null) return this.relayAddr.encapsulate(relay)
    const first = this.addrs[0]
    return first == null ? multiaddr(relay) : first.decapsulateCode(290)
  }

  /**
   * Our circuit addresses: the relay address we listened with and the relay's own addresses
   * from the reservation, each as `…/p2p/<relay>/p2p-circuit/p2p/<us>` (with our peer id, as
   * rust-libp2p's, so that a peer learning it can dial it as it is).
   */
  private circuitAddresses (relayAddrs: readonly Multiaddr[]): Multiaddr[] {
    const relay = this.relayPeerId.toString()
    const suffix = `/p2p-circuit/p2p/${this.localPeerId.toString()}`
    const seen = new Set<string>()
    const result: Multiaddr[] = []
    const candidates = this.relayAddr == null ? [...relayAddrs] : [this.relayAddr, ...relayAddrs]
    for (const candidate of candidates) {
      if (isRelayedAddress(candidate)) continue
      const p2p = candidate.getComponents().filter(c => c.name === 'p2p')
      if (p2p.some(c => c.value !== relay)) continue
      const base = p2p.length === 0 ? candidate.encapsulate(`/p2p/${relay}`) : candidate
      const address = base.encapsulate(suffix)
      const key = address.toString()
      if (seen.has(key)) continue
      seen.add(key)
      result.push(address)
    }
    return result
  }
}
