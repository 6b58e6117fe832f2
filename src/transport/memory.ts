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
import { PeerswarmError } from '../errors.js'
import type { Connection, CreateListenerOptions, DialTransportOptions, Listener, ListenerEvents, Transport, Upgrader } from '@libp2p/interface'
import type { TransportFactory } from '../swarm/builder.js'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:memory')

/** Nothing listens on the dialed memory address. */
export class MemoryConnectionRefusedError extends PeerswarmError {
  constructor (address: Multiaddr) {
    super('ERR_CONNECTION_REFUSED', `nothing listens on ${address.toString()}`)
  }
}

/** The process-wide table of memory listeners, by port. */
const listeners = new Map<string, MemoryListener>()
let lastEphemeralPort = 0

function memoryPort (address: Multiaddr): string | undefined {
  const components = address.getComponents()
  return components[0]?.name === 'memory' ? components[0].value : undefined
}

function isMemoryAddress (address: Multiaddr): boolean {
  return memoryPort(address) != null
}

function allocatePort (): string {
  for (;;) {
    const port = String(1 + Math.floor(Math.random() * 2 ** 48))
    if (!listeners.has(port)) return port
  }
}

class MemoryListener extends TypedEventEmitter<ListenerEvents> implements Listener {
  private port?: string

  constructor (private readonly upgrader: Upgrader) {
    super()
  }

  async listen (address: Multiaddr): Promise<void> {
    const requested = memoryPort(address)
    if (requested == null) throw new PeerswarmError('ERR_INVALID_MULTIADDR', `not a memory address: ${address.toString()}`)
    const port = requested === '0' ? allocatePort() : requested
    if (listeners.has(port)) throw new PeerswarmError('ERR_ADDRESS_IN_USE', `/memory/${port} is in use`)
    listeners.set(port, this)
    this.port = port
    this.safeDispatchEvent('listening')
  }

  getAddrs (): Multiaddr[] {
    return this.port == null ? [] : [multiaddr(`/memory/${this.port}`)]
  }

  updateAnnounceAddrs (): void {}

  async close (): Promise<void> {
    if (this.port == null) return
    listeners.delete(this.port)
    this.port = undefined
    this.safeDispatchEvent('close')
  }

  /** A dialer reached us: hand its other end to the swarm. */
  accept (maConn: Parameters<Upgrader['upgradeInbound']>[0]): void {
    this.upgrader.upgradeInbound(maConn, { signal: AbortSignal.any([]) }).catch((err: unknown) => {
      log('inbound memory connection failed: %s', err)
      maConn.abort(err instanceof Error ? err : new Error(String(err)))
    })
  }
}

/** The in-memory transport. Listen on `/memory/0` for a fresh address. */
export class MemoryTransport implements Transport {
  readonly [transportSymbol] = true as const
  readonly [Symbol.toStringTag] = 'peerswarm/memory'

  async dial (address: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    options.signal.throwIfAborted()
    const port = memoryPort(address)
    const listener = port == null ? undefined : listeners.get(port)
    if (listener == null) throw new MemoryConnectionRefusedError(address)
    const [outbound, inbound] = multiaddrConnectionPair({
      outbound: { remoteAddr: address },
      inbound: { remoteAddr: multiaddr(`/memory/${++lastEphemeralPort}`) }
    })
    listener.accept(inbound)
    try {
      return await options.upgrader.upgradeOutbound(outbound, { signal: options.signal })
    } catch (err) {
      outbound.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }

  createListener (options: CreateListenerOptions): Listener {
    return new MemoryListener(options.upgrader)
  }

  listenFilter (addresses: Multiaddr[]): Multiaddr[] {
    return addresses.filter(isMemoryAddress)
  }

  dialFilter (addresses: Multiaddr[]): Multiaddr[] {
    return addresses.filter(isMemoryAddress)
  }
}

/** A transport factory for `SwarmBuilder.withTransport`. */
export function memory (): TransportFactory {
  return () => new MemoryTransport()
}
