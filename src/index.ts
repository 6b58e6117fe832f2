/**
 * peerswarm: rust-libp2p's `Swarm` / `NetworkBehaviour` / `ConnectionHandler` model for
 * Node.js, over the js-libp2p transports, Noise and Yamux.
 *
 * ```ts
 * import { SwarmBuilder, ping } from 'peerswarm'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withMemoryTransport()
 *   .withBehaviour(() => new ping.Behaviour())
 *   .build()
 * swarm.listenOn('/memory/0')
 * for await (const event of swarm) {
 *   if (event.type === 'NewListenAddr') console.log('listening on', event.address.toString())
 *   if (event.type === 'Behaviour') console.log(event.event)
 * }
 * ```
 *
 * @packageDocumentation
 */
import './compat.js'

export { Swarm, UnsupportedAddressError } from './swarm/swarm.js'
export type { NetworkInfo, SelectOptions } from './swarm/swarm.js'
export { SwarmBuilder, BehaviourSwarmBuilder } from './swarm/builder.js'
export type { TransportComponents, TransportFactory } from './swarm/builder.js'
export { swarmConfig, defaultSwarmConfig } from './swarm/config.js'
export type { SwarmConfig } from './swarm/config.js'
export type { SwarmEvent } from './swarm/events.js'
export type { ConnectionCounters } from './swarm/pool.js'
export { newConnectionId, newListenerId } from './swarm/ids.js'
export type { ConnectionId, ListenerId, ConnectedPoint, Endpoint } from './swarm/ids.js'
export type { DialOpts, DialTarget, PeerCondition } from './swarm/dial-opts.js'
export { ignoreForKeepAlive } from './swarm/connection.js'
export {
  LocalPeerIdError, InvalidDialTargetError, InvalidListenAddressError, NoAddressesError, DialPeerConditionFalseError, DialAbortedError, WrongPeerIdError, DialDeniedError,
  DialTransportError, UpgradeError, ListenAbortedError, ListenDeniedError, ListenLocalPeerIdError, ListenTransportError,
  KeepAliveTimeoutError, ConnectionIOError, HandlerClosedError
} from './swarm/errors.js'
export type { DialError, ListenError, ConnectionError, FailedAddress, UpgradePhase } from './swarm/errors.js'
export { PeerswarmError, ConfigError, ConnectionDenied, SwarmClosedError, AbortError } from './errors.js'

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
export { combine, CombinedBehaviour, CombinedHandler } from './behaviour/combine.js'
export type { Combined, CombinedEvent, Children, Tagged } from './behaviour/combine.js'
export { toggle, Toggle } from './behaviour/toggle.js'
export { dummy, DummyBehaviour, DummyHandler } from './behaviour/dummy.js'

export { MemoryTransport, MemoryConnectionRefusedError, memory } from './transport/memory.js'
export type { MemoryHub } from './transport/memory.js'
export { tcp } from './transport/tcp.js'
export type { TcpOptions } from './transport/tcp.js'
export { webSockets } from './transport/websockets.js'
export type { WebSocketsOptions } from './transport/websockets.js'
export { generateKeypair, peerIdOf, keypairToProtobuf, keypairFromProtobuf, parsePeerId } from './identity.js'
export type { Keypair } from './identity.js'

export * as ping from './protocols/ping/index.js'
export * as identify from './protocols/identify/index.js'
export * as connectionLimits from './protocols/connection-limits/index.js'
export * as pubsub from './protocols/pubsub/index.js'
export * as floodsub from './protocols/floodsub/index.js'
export * as gossipsub from './protocols/gossipsub/index.js'
export * as mdns from './protocols/mdns/index.js'
