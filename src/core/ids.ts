/**
 * Identifiers of connections and listeners, and the addresses of a connection's two ends.
 *
 * @module
 */
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * Identifies one connection (pending or established) for the lifetime of the process.
 *
 * @group The swarm
 */
export type ConnectionId = number & { readonly __brand: 'ConnectionId' }

/**
 * Identifies one listener of a swarm.
 *
 * @group The swarm
 */
export type ListenerId = number & { readonly __brand: 'ListenerId' }

let lastConnectionId = 0
let lastListenerId = 0

/**
 * Allocates a fresh {@link ConnectionId}. A behaviour that emits a `Dial` may allocate the id
 * itself (see `DialOpts.connectionId`) to recognise the resulting connection.
 *
 * @group The swarm
 */
export function newConnectionId (): ConnectionId {
  return ++lastConnectionId as ConnectionId
}

/**
 * Allocates a fresh {@link ListenerId}.
 *
 * @group The swarm
 */
export function newListenerId (): ListenerId {
  return ++lastListenerId as ListenerId
}

/**
 * Which side of a connection we are.
 *
 * @group The swarm
 */
export type Endpoint = 'Dialer' | 'Listener'

/**
 * How a connection came to be: we dialed `address`, or a listener accepted it.
 *
 * @group The swarm
 */
export type ConnectedPoint =
  | {
    readonly type: 'Dialer'
    /** The address we dialed (with `/p2p/<peer id>` when known). */
    readonly address: Multiaddr
    /** Set when the connection runs over a relay circuit; see {@link isRelayedAddress}. */
    readonly limited?: true
    /**
     * Set when the dial asked to be upgraded as the listener (`DialOpts.roleOverride`, as
     * rust-libp2p's `role_override`): DCUtR's punched connection on the relayed connection's
     * listener side.
     */
    readonly roleOverride?: 'Listener'
  }
  | {
    readonly type: 'Listener'
    /** Our listen address that accepted the connection. */
    readonly localAddr: Multiaddr
    /** The remote's address as seen by us. */
    readonly sendBackAddr: Multiaddr
    /** Set when the connection runs over a relay circuit; see {@link isRelayedAddress}. */
    readonly limited?: true
  }

/** The multiaddr code of `/p2p-circuit`. */
const P2P_CIRCUIT = 290
/** The multiaddr code of `/webrtc` (private to private). */
const WEBRTC = 281

/**
 * Whether `address` goes through a relay (has a `/p2p-circuit` part), as rust-libp2p's
 * `is_relayed`. Connections over such addresses are *limited*: the relay ends them after its
 * duration or data limit (2 min and 128 KiB by default), so they suit identify, ping and
 * hole punching, not bulk traffic. The swarm marks them with `limited: true` in their
 * {@link ConnectedPoint}.
 *
 * @group The swarm
 */
export function isRelayedAddress (address: Multiaddr): boolean {
  const components = address.getComponents()
  const circuit = components.findIndex(component => component.code === P2P_CIRCUIT)
  // `…/p2p-circuit/webrtc/…` (spec `webrtc/webrtc.md`) is a direct WebRTC connection that
  // only used the relay for its signalling: not limited.
  return circuit >= 0 && !components.slice(circuit + 1).some(component => component.code === WEBRTC)
}
