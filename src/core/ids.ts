/**
 * Identifiers of connections and listeners, and the addresses of a connection's two ends.
 *
 * @module
 */
import type { Multiaddr } from '@multiformats/multiaddr'

/** Identifies one connection (pending or established) for the lifetime of the process. */
export type ConnectionId = number & { readonly __brand: 'ConnectionId' }

/** Identifies one listener of a swarm. */
export type ListenerId = number & { readonly __brand: 'ListenerId' }

let lastConnectionId = 0
let lastListenerId = 0

/**
 * Allocates a fresh {@link ConnectionId}. A behaviour that emits a `Dial` may allocate the id
 * itself (see `DialOpts.connectionId`) to recognise the resulting connection.
 */
export function newConnectionId (): ConnectionId {
  return ++lastConnectionId as ConnectionId
}

/** Allocates a fresh {@link ListenerId}. */
export function newListenerId (): ListenerId {
  return ++lastListenerId as ListenerId
}

/** Which side of a connection we are. */
export type Endpoint = 'Dialer' | 'Listener'

/** How a connection came to be: we dialed `address`, or a listener accepted it. */
export type ConnectedPoint =
  | {
    readonly type: 'Dialer'
    /** The address we dialed (with `/p2p/<peer id>` when known). */
    readonly address: Multiaddr
  }
  | {
    readonly type: 'Listener'
    /** Our listen address that accepted the connection. */
    readonly localAddr: Multiaddr
    /** The remote's address as seen by us. */
    readonly sendBackAddr: Multiaddr
  }
