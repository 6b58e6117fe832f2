/**
 * What `Swarm.dial` and `ToSwarm.Dial` accept.
 *
 * @module
 */
import type { ConnectionId, Endpoint } from './ids.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * When a dial to a known peer goes ahead (as rust-libp2p's `PeerCondition`):
 * - `disconnected`: only if no connection to the peer is established;
 * - `notDialing`: only if no dial to the peer is in progress;
 * - `disconnectedAndNotDialing` (default): both;
 * - `always`: unconditionally.
 *
 * @group The swarm
 */
export type PeerCondition = 'disconnected' | 'notDialing' | 'disconnectedAndNotDialing' | 'always'

/**
 * Which local port a dial leaves from (as rust-libp2p's `PortUse`):
 * - `reuse` (default): the transport's fixed dial port, when it has one (TCP's `dialPort`), so
 *   that the address other peers observe us at is the NAT mapping a hole punch will use; a dial
 *   whose 4-tuple is taken on that port falls back to an ephemeral port. Transports without a
 *   dial port use an ephemeral one.
 * - `new`: always an ephemeral port (AutoNAT dial-backs, anything that must not reuse a mapping).
 *
 * @group The swarm
 */
export type PortUse = 'reuse' | 'new'

/**
 * Options of a dial. Either `peerId` or at least one address must be given.
 *
 * @group The swarm
 */
export interface DialOpts {
  /** The peer to reach. When given, the remote must authenticate as this peer. */
  readonly peerId?: PeerId
  /** Addresses to try. When empty and `peerId` is set, behaviours supply addresses. */
  readonly addresses?: readonly Multiaddr[]
  /** Default `disconnectedAndNotDialing`; only applies when `peerId` is set. */
  readonly condition?: PeerCondition
  /**
   * Also ask behaviours for addresses (`handlePendingOutboundConnection`). Default: true when no
   * `addresses` are given, false otherwise.
   */
  readonly extendAddressesThroughBehaviour?: boolean
  /** How many addresses are dialed at once (default: the swarm's `dialConcurrencyFactor`). */
  readonly dialConcurrencyFactor?: number
  /** Use this pre-allocated id (see `newConnectionId`) instead of a fresh one. */
  readonly connectionId?: ConnectionId
  /**
   * Upgrade the connection in this role whatever the transport did (as rust-libp2p's
   * `override_role()`): `'Listener'` makes a dialed connection run Noise as responder,
   * multistream-select as listener and Yamux as server. DCUtR uses it for the hole-punched
   * connection, which both sides dial at once (TCP simultaneous open). Default `'Dialer'`.
   */
  readonly roleOverride?: Endpoint
  /** Which local port the dial leaves from (default `'reuse'`); see {@link PortUse}. */
  readonly portUse?: PortUse
}

/**
 * Anything `Swarm.dial` accepts: an address (a `Multiaddr` or its string form), a peer id
 * (addresses from behaviours), or options.
 *
 * @group The swarm
 */
export type DialTarget = Multiaddr | string | PeerId | DialOpts
