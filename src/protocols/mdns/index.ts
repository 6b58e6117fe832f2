/**
 * mDNS discovery (`_p2p._udp.local`, Node only): {@link Behaviour | mdns.Behaviour} finds peers
 * on the local network and offers their addresses to dials, so that `swarm.dial(peerId)` works;
 * its {@link Event}s, {@link Config | options}, and the pieces it is made of (the packet codec and
 * the multicast socket interface), for tests and other runtimes. See
 * [a tour of the API](../../../docs/api-tour.md#mdns).
 *
 * ```ts
 * import { SwarmBuilder, combine, gossipsub, mdns, peerIdOf } from 'peerswarm'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(key => combine({
 *     mdns: new mdns.Behaviour(peerIdOf(key)),
 *     gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key) })
 *   }))
 *   .build()
 * swarm.listenOn('/ip4/0.0.0.0/tcp/0')
 * for await (const event of swarm) {
 *   if (event.type === 'Behaviour' && event.event.behaviour === 'mdns' && event.event.event.type === 'Discovered') {
 *     for (const { peerId } of event.event.event.peers) if (!swarm.isConnected(peerId)) swarm.dial(peerId)
 *   }
 * }
 * ```
 *
 * @group Protocols
 * @module
 */
export { Behaviour } from './behaviour.js'
export type { Event } from './behaviour.js'
export { SERVICE_NAME, MDNS_PORT, defaultConfig } from './config.js'
export type { Config } from './config.js'
export type { DiscoveredPeer } from './peers.js'
export { buildQuery, buildResponses, parsePacket, MalformedPacketError, MAX_SEND_SIZE, MAX_RECEIVE_SIZE } from './packet.js'
export type { AnnouncedPeer, Announcement, MdnsPacket } from './packet.js'
export {
  dgramSocketFactory, selectInterfaces, MulticastSocketError, UnknownInterfaceError, IPV4_GROUP, IPV6_GROUP
} from './socket.js'
export type { MulticastInterface, MulticastSocket, MulticastSocketFactory, MulticastSocketOptions } from './socket.js'
