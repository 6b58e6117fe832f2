/**
 * peerswarm for browsers: the same API as the Node entry point without what browsers cannot
 * run. Bundlers pick it through the `browser` condition of the package's `exports`.
 *
 * Here: the memory, WebSockets, WebRTC Direct and WebRTC transports (dialing `/ws`, `/wss` and
 * `/webrtc-direct` addresses, and `/webrtc` ones through a relay, where a page also listens), Noise, Yamux, identify, ping, connection limits, FloodSub, GossipSub and
 * circuit relay v2 (relay and client), AutoNAT v2 (client and server), Kademlia, DCUtR (the
 * protocol; a page has no TCP to punch a hole with).
 * Not here: TCP (`SwarmBuilder.withTcp()` throws a `ConfigError`) and mDNS (no UDP sockets).
 * Nothing reachable from this module imports a `node:` module or uses a Node global.
 *
 * ```ts
 * import { SwarmBuilder, gossipsub } from 'peerswarm'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withWebSockets()
 *   .withBehaviour(key => new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key) }))
 *   .build()
 * swarm.dial('/ip4/127.0.0.1/tcp/4001/ws/p2p/12D3KooW…')
 * ```
 *
 * @packageDocumentation
 */
export { Swarm, UnsupportedAddressError, transportOf } from './swarm/swarm.js'
export type { ConnectionInfo, NetworkInfo, SelectOptions } from './swarm/swarm.js'
export { SwarmBuilder, BehaviourSwarmBuilder, RelayClientSwarmBuilder } from './swarm/builder.js'
export type { TransportComponents, TransportFactory } from './transport/transport.js'
export { webRTCDirect, WebRTCDirectTransport, WebRTCDialError, WebRTCUnavailableError } from './transport/webrtc/direct.js'
export type { WebRTCDirectOptions } from './transport/webrtc/direct.js'
export { WebRTCMalformedFrameError, WebRTCMessageTooLargeError } from './transport/webrtc/message.js'
export { DataChannelOpenError } from './transport/webrtc/muxer.js'
export { WebRTCHandshakeError } from './transport/webrtc/noise.js'
export { InvalidCerthashError } from './transport/webrtc/certificate.js'
export { WebRTCTransport, webRTC, parseWebRTCAddress } from './transport/webrtc/private.js'
export type { WebRTCOptions } from './transport/webrtc/private.js'
export { WebRTCSignalingError, SIGNALING_PROTOCOL, SignalingType } from './transport/webrtc/signaling.js'
export { swarmConfig, defaultSwarmConfig } from './swarm/config.js'
export type { SwarmConfig } from './swarm/config.js'
export type { SwarmEvent } from './swarm/events.js'
export type { ConnectionCounters } from './swarm/pool.js'
export { newConnectionId, newListenerId, isRelayedAddress } from './core/ids.js'
export { isGlobalAddress, inIpv4Range, ipOfAddress } from './core/global-address.js'
export type { AddressPolicy } from './core/global-address.js'
export type { ConnectionId, ListenerId, ConnectedPoint, Endpoint } from './core/ids.js'
export type { DialOpts, DialTarget, PeerCondition, PortUse } from './core/dial-opts.js'
export { ignoreForKeepAlive } from './behaviour/connection-handler.js'
// The js-libp2p types every custom behaviour uses, so that it needs no import of (and no second
// copy of) @libp2p/interface or @multiformats/multiaddr.
export type { PeerId, Stream } from '@libp2p/interface'
export type { Multiaddr } from '@multiformats/multiaddr'
export {
  LocalPeerIdError, InvalidDialTargetError, InvalidListenAddressError, NoAddressesError, DialPeerConditionFalseError, DialAbortedError, WrongPeerIdError, DialDeniedError,
  DialTransportError, UpgradeError, ListenAbortedError, ListenDeniedError, ListenLocalPeerIdError, ListenTransportError,
  KeepAliveTimeoutError, ConnectionIOError, HandlerClosedError
} from './core/connection-errors.js'
export type { DialError, ListenError, ConnectionError, FailedAddress, UpgradePhase } from './core/connection-errors.js'
export { PeerswarmError, ConfigError, ConnectionDenied, SwarmClosedError, AbortError } from './core/errors.js'

export type { Context, Waker } from './behaviour/context.js'
export type {
  NetworkBehaviour, ToSwarm, FromSwarm, EventOf, AnyBehaviour, PendingInboundConnection, EstablishedInboundConnection,
  PendingOutboundConnection, EstablishedOutboundConnection
} from './behaviour/network-behaviour.js'
export { StreamUpgradeError } from './behaviour/connection-handler.js'
export type {
  ConnectionHandler, ConnectionHandlerEvent, ConnectionEvent, SubstreamProtocol, ProtocolsChange, StreamUpgradeErrorKind,
  ToBehaviourOf, FromBehaviourOf
} from './behaviour/connection-handler.js'
export { combine, childEvent, CombinedBehaviour, CombinedHandler } from './behaviour/combine.js'
export type { Combined, CombinedEvent, Children, Tagged, ChildEventOf } from './behaviour/combine.js'
export { toggle, Toggle } from './behaviour/toggle.js'
export { encodeFrame, FrameDecoder, FrameTooLargeError, readFrame, writeFrame } from './behaviour/framing.js'
export type { FrameOptions } from './behaviour/framing.js'
export { ActionQueue } from './behaviour/action-queue.js'
export { ListenAddresses, ExternalAddresses, PeerAddresses, MAX_EXTERNAL_ADDRESSES } from './behaviour/addresses.js'
export type { PeerAddressesOptions } from './behaviour/addresses.js'
export { dummy, DummyBehaviour, DummyHandler } from './behaviour/dummy.js'

export { MemoryTransport, MemoryConnectionRefusedError, memory } from './transport/memory.js'
export type { MemoryHub } from './transport/memory.js'
export type { TcpOptions } from './transport/transport.js'
export { webSockets } from './transport/websockets.js'
export type { WebSocketsOptions } from './transport/websockets.js'
export { generateKeypair, peerIdOf, keypairToProtobuf, keypairFromProtobuf, parsePeerId } from './core/identity.js'
export type { Keypair } from './core/identity.js'

export * as ping from './protocols/ping/index.js'
export * as identify from './protocols/identify/index.js'
export * as connectionLimits from './protocols/connection-limits/index.js'
export * as pubsub from './protocols/pubsub/index.js'
export * as floodsub from './protocols/floodsub/index.js'
export * as gossipsub from './protocols/gossipsub/index.js'
export * as requestResponse from './protocols/request-response/index.js'
export * as kad from './protocols/kad/index.js'
export * as relay from './protocols/relay/index.js'
export * as autonat from './protocols/autonat/index.js'
export * as dcutr from './protocols/dcutr/index.js'

// A page's own view of its swarm, for a live view served by a Node process ('peerswarm/view'
// as a whole is Node only: it has the view's server).
export { nodeView } from './view/snapshot.js'
export type { ViewNode, NodeView, ConnectionView, PubsubView, TopicView, ScoreView, RatesView } from './view/snapshot.js'
