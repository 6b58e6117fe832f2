/**
 * mDNS discovery: `mdns.Behaviour`, `mdns.Event`, `mdns.Config`, and the pieces it is made of
 * (the packet codec and the multicast socket interface), for tests and other runtimes.
 *
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
