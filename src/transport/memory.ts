/**
 * An in-process transport for tests and simulations: `/memory/<n>` addresses, no sockets.
 * Connections go through the same upgrade (Noise, Yamux) as real transports, so a test over
 * memory exercises the real swarm.
 *
 * @module
 */
import { TypedEventEmitter, transportSymbol } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { multiaddrConnectionPair } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { PeerswarmError } from '../core/errors.js'
import type { Connection, CreateListenerOptions, DialTransportOptions, Listener, ListenerEvents, MultiaddrConnection, Transport, Upgrader } from '@libp2p/interface'
import type { TransportFactory } from './transport.js'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:memory')

/**
 * Nothing listens on the dialed memory address.
 *
 * @group Errors
 */
export class MemoryConnectionRefusedError extends PeerswarmError {
  constructor (address: Multiaddr) {
    super('ERR_CONNECTION_REFUSED', `nothing listens on ${address.toString()}`)
  }
}

/**
 * Where memory listeners are found and how a dial reaches one. The default hub is
 * process-wide and connects at once; a simulated network (`SimulatedNetwork` in
 * `peerswarm/testing`) gives each of its hosts a hub of its own whose connections cross links
 * with latency, bandwidth and loss.
 *
 * @group Transports
 */
export interface MemoryHub {
  /**
   * Bind `accept` to `port` (`'0'`: a fresh port) and return the port bound. `accept` gets the
   * listener's end of every connection dialed to it. Throws `PeerswarmError`
   * `ERR_ADDRESS_IN_USE` when the port is taken.
   */
  bind: (port: string, accept: (connection: MultiaddrConnection) => void) => string
  /** Release a port bound by `bind`. */
  unbind: (port: string) => void
  /**
   * Connect to the listener on `port` and return the dialer's end (the listener's end goes to
   * its `accept`). Throws {@link MemoryConnectionRefusedError} when nothing listens there.
   */
  connect: (port: string, options: { readonly signal: AbortSignal }) => Promise<MultiaddrConnection>
}

/** The process-wide hub: listeners by port; a dial connects at once. */
class ProcessHub implements MemoryHub {
  private readonly listeners = new Map<string, (connection: MultiaddrConnection) => void>()
  private lastEphemeralPort = 0

  bind (port: string, accept: (connection: MultiaddrConnection) => void): string {
    const bound = port === '0' ? this.allocatePort() : port
    if (this.listeners.has(bound)) throw new PeerswarmError('ERR_ADDRESS_IN_USE', `/memory/${bound} is in use`)
    this.listeners.set(bound, accept)
    return bound
  }

  unbind (port: string): void {
    this.listeners.delete(port)
  }

  async connect (port: string): Promise<MultiaddrConnection> {
    const accept = this.listeners.get(port)
    if (accept == null) throw new MemoryConnectionRefusedError(multiaddr(`/memory/${port}`))
    const [outbound, inbound] = multiaddrConnectionPair({
      outbound: { remoteAddr: multiaddr(`/memory/${port}`) },
      inbound: { remoteAddr: multiaddr(`/memory/${++this.lastEphemeralPort}`) }
    })
    accept(inbound)
    return outbound
  }

  private allocatePort (): string {
    for (;;) {
      const port = String(1 + Math.floor(Math.random() * 2 ** 48))
      if (!this.listeners.has(port)) return port
    }
  }
}

const processHub = new ProcessHub()

/** The port of a `/memory/<port>` address, if it is one. */
function memoryPort (address: Multiaddr): string | undefined {
  const components = address.getComponents()
  return components[0]?.name === 'memory' ? components[0].value : undefined
}

function isMemoryAddress (address: Multiaddr): boolean {
  return memoryPort(address) != null
}

class MemoryListener extends TypedEventEmitter<ListenerEvents> implements Listener {
  private port?: string

  constructor (private readonly hub: MemoryHub, private readonly upgrader: Upgrader) {
    super()
  }

  async listen (address: Multiaddr): Promise<void> {
    const requested = memoryPort(address)
    if (requested == null) throw new PeerswarmError('ERR_INVALID_MULTIADDR', `not a memory address: ${address.toString()}`)
    this.port = this.hub.bind(requested, (connection) => { this.accept(connection) })
    this.safeDispatchEvent('listening')
  }

  getAddrs (): Multiaddr[] {
    return this.port == null ? [] : [multiaddr(`/memory/${this.port}`)]
  }

  updateAnnounceAddrs (): void {}

  async close (): Promise<void> {
    if (this.port == null) return
    this.hub.unbind(this.port)
    this.port = undefined
    this.safeDispatchEvent('close')
  }

  /** A dialer reached us: hand its other end to the swarm. */
  private accept (maConn: MultiaddrConnection): void {
    this.upgrader.upgradeInbound(maConn, { signal: AbortSignal.any([]) }).catch((err: unknown) => {
      log('inbound memory connection failed: %s', err)
      maConn.abort(err instanceof Error ? err : new Error(String(err)))
    })
  }
}

/**
 * The in-memory transport. Listen on `/memory/0` for a fresh address. Without a `hub`, every
 * memory transport of the process shares one table of listeners and connects at once.
 *
 * @group Transports
 */
export class MemoryTransport implements Transport {
  readonly [transportSymbol] = true as const
  readonly [Symbol.toStringTag] = 'peerswarm/memory'

  constructor (private readonly hub: MemoryHub = processHub) {}

  async dial (address: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    options.signal.throwIfAborted()
    const port = memoryPort(address)
    if (port == null) throw new MemoryConnectionRefusedError(address)
    const outbound = await this.hub.connect(port, { signal: options.signal })
    try {
      return await options.upgrader.upgradeOutbound(outbound, { signal: options.signal })
    } catch (err) {
      outbound.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }

  createListener (options: CreateListenerOptions): Listener {
    return new MemoryListener(this.hub, options.upgrader)
  }

  listenFilter (addresses: Multiaddr[]): Multiaddr[] {
    return addresses.filter(isMemoryAddress)
  }

  dialFilter (addresses: Multiaddr[]): Multiaddr[] {
    return addresses.filter(isMemoryAddress)
  }
}

/**
 * A transport factory for `SwarmBuilder.withTransport`; `hub` as for {@link MemoryTransport}.
 *
 * @group Transports
 */
export function memory (hub?: MemoryHub): TransportFactory {
  return () => new MemoryTransport(hub)
}
