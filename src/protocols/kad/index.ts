/**
 * The Kademlia DHT, as rust-libp2p's `kad`, over the wire protocol of `@libp2p/kad-dht`:
 * `kad.Behaviour`, its events and query results, the record store (`kad.MemoryStore`), the
 * routing table's types, the wire codec and the options. Guide: docs/kademlia.md.
 *
 * @module
 */
export { Behaviour } from './behaviour.js'
export { evalQuorum } from './queries.js'
export type {
  Event, QueryResult, Quorum, ProgressStep, PeerRecord, BootstrapOk, GetClosestPeersOk, GetRecordOk, PutRecordOk, AddProviderOk,
  GetProvidersOk, InboundRequest, KBucketRef, QueryRef
} from './events.js'
export { Handler, InboundChannel, RequestError } from './handler.js'
export type { FromBehaviour, ToBehaviour, HandlerInit, RequestTag, RequestErrorKind } from './handler.js'
export {
  NoKnownPeersError, BootstrapError, GetClosestPeersError, GetRecordError, PutRecordError, AddProviderError, GetProvidersError
} from './errors.js'
export type { PeerInfo } from './errors.js'
export { MemoryStore, StoreError, defaultMemoryStoreConfig } from './store.js'
export type { Record, ProviderRecord, RecordStore, MemoryStoreConfig, StoreErrorKind } from './store.js'
export { distance, distanceValue, bucketIndex, bucketRange, keyOf, keyOfPeer, MAX_ENTRY_ADDRESSES } from './kbucket.js'
export type { Key, PeerKey, NodeStatus, RoutingUpdate, EntryView } from './kbucket.js'
export { encodeMessage, decodeMessage, InvalidMessageError, MAX_PEERS_PER_LIST, MAX_ADDRESSES_PER_PEER } from './message.js'
export type { Message, MessageType, WirePeer, WireRecord, ConnectionType, DecodeLimits } from './message.js'
export type { QueryId, QueryStats } from './query.js'
export { PROTOCOL, defaultConfig } from './config.js'
export type { Config, Mode, BucketInserts, FilterRequest } from './config.js'
