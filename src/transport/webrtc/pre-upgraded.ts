/**
 * Connections that arrive already secured and multiplexed. A WebRTC connection runs Noise on
 * a data channel and needs no Yamux, so the swarm's upgrade (multistream-select, Noise, Yamux
 * on the raw connection) does not apply to it. A dial resolves with the finished connection
 * directly; an inbound one is handed to the swarm as a `MultiaddrConnection` that carries its
 * own upgrade ({@link markPreUpgraded}), which the swarm's upgrader (`upgrade/upgrader.ts`,
 * {@link preUpgradeOf}) runs in place of its own, still inside the swarm's pending-inbound gate
 * and `connectionTimeout`.
 *
 * @module
 */
import type { MessageStream, MultiaddrConnection, PeerId, StreamMuxer } from '@libp2p/interface'

/** A connection after its upgrade, in the swarm's shape (`UpgradedConnection`). */
export interface PreUpgradedConnection {
  readonly maConn: MultiaddrConnection
  readonly secured: MessageStream
  readonly muxer: StreamMuxer
  readonly remotePeer: PeerId
  readonly encryption: string
  readonly multiplexer: string
}

/** Finishes an inbound connection's own upgrade. */
type Finish = (signal: AbortSignal) => Promise<PreUpgradedConnection>

const FINISH = Symbol.for('peerswarm.transport.preUpgraded')

/** Mark `maConn` as upgrading itself with `finish`. */
export function markPreUpgraded<T extends MultiaddrConnection> (maConn: T, finish: Finish): T {
  return Object.assign(maConn, { [FINISH]: finish })
}

/** The upgrade a marked connection brings along, if it is one ({@link markPreUpgraded}). */
export function preUpgradeOf (maConn: MultiaddrConnection): Finish | undefined {
  return (maConn as { [FINISH]?: Finish })[FINISH]
}
