/**
 * AutoNAT: which of our addresses can others dial? `autonat.v2` is AutoNAT v2, as
 * rust-libp2p's `autonat::v2` (v1 is not built: js-libp2p's v1 servers answer without dialing
 * back). Addresses count as global by `isGlobalAddress` unless a config's `isGlobal` says
 * otherwise. See docs/nat-traversal.md.
 *
 * ```ts
 * import { SwarmBuilder, autonat, combine, identify } from 'peerswarm'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(key => combine({
 *     identify: new identify.Behaviour(key.publicKey),
 *     autonatClient: new autonat.v2.client.Behaviour(),
 *     autonatServer: new autonat.v2.server.Behaviour()
 *   }))
 *   .build()
 * ```
 *
 * @module
 */
export * as v2 from './v2/index.js'
