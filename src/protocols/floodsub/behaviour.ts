/**
 * FloodSub (`/floodsub/1.0.0`): every new valid message goes to every connected peer
 * subscribed to its topic, except the one it came from and its author.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { MessageAuthor, MessageChecker, signaturePolicy } from '../pubsub/authenticity.js'
import { PublishError } from '../pubsub/errors.js'
import { ActionQueue } from '../../behaviour/action-queue.js'
import { encodeFrame } from '../../behaviour/framing.js'
import { authorSeqnoId, contentId, messageIdKey, rawAuthorSeqnoKey, SeqnoGenerator, toMessage } from '../pubsub/message.js'
import { InboundPipeline } from '../pubsub/pipeline.js'
import { encodeRpc } from '../pubsub/rpc.js'
import { SeenCache } from '../pubsub/seen-cache.js'
import { RecentIds, UnwantedIds } from '../pubsub/peer-state.js'
import { StreamHandler } from '../pubsub/stream-handler.js'
import { topicHash } from '../pubsub/topic.js'
import { config as floodsubConfig, PROTOCOL } from './config.js'
import { newTotals } from '../pubsub/totals.js'
import type { MessageTotals } from '../pubsub/totals.js'
import type { Config } from './config.js'
import type { RejectReason } from '../pubsub/authenticity.js'
import type { Message, MessageId, MessageIdFn } from '../pubsub/message.js'
import type { Outcome } from '../pubsub/pipeline.js'
import type { RawMessage, Rpc } from '../pubsub/rpc.js'
import type { FromBehaviour, ToBehaviour } from '../pubsub/stream-handler.js'
import type { Topic, TopicHash } from '../pubsub/topic.js'
import type { Validator } from '../pubsub/validation.js'
import type { Context } from '../../behaviour/context.js'
import type { EstablishedInboundConnection, EstablishedOutboundConnection, FromSwarm, NetworkBehaviour, ToSwarm } from '../../behaviour/network-behaviour.js'
import type { ConnectionId } from '../../core/ids.js'
import type { PeerId } from '@libp2p/interface'

const log = logger('peerswarm:floodsub')

/** What FloodSub reports. */
export type Event =
  | {
    /** A new, valid message on a topic we subscribe to. */
    readonly type: 'Message'
    /** The peer that sent it to us (not necessarily its author). */
    readonly propagationSource: PeerId
    readonly messageId: MessageId
    readonly message: Message
  }
  | { readonly type: 'Subscribed', readonly peerId: PeerId, readonly topic: TopicHash }
  | { readonly type: 'Unsubscribed', readonly peerId: PeerId, readonly topic: TopicHash }
  | {
    /** A peer sent a message that breaks the signature policy or failed validation. */
    readonly type: 'InvalidMessage'
    readonly peerId: PeerId
    readonly reason: RejectReason
    readonly error: Error
  }
  | {
    /** A peer sent an oversized frame or an undecodable RPC; the connection was closed. */
    readonly type: 'InvalidRpc'
    readonly peerId: PeerId
    readonly connectionId: ConnectionId
    readonly error: Error
  }
  | { readonly type: 'SlowPeer', readonly peerId: PeerId, readonly droppedBytes: number }
  | { readonly type: 'NotSupported', readonly peerId: PeerId }

type PeerKey = string

interface PeerState {
  readonly peerId: PeerId
  /** Connections whose handler may carry our frames, oldest first. */
  readonly connections: ConnectionId[]
  readonly topics: Set<TopicHash>
  /** The last messages it sent us: our forwards of them still queued for it are dropped. */
  readonly heard: RecentIds
  /** What its handlers were last told (`KeepAlive`): see `keeps`. */
  keepAlive: boolean
}

/**
 * The FloodSub behaviour.
 *
 * ```ts
 * .withBehaviour(key => combine({
 *   identify: new identify.Behaviour(key.publicKey),
 *   floodsub: new floodsub.Behaviour({ authenticity: floodsub.MessageAuthenticity.signed(key) })
 * }))
 * ```
 *
 * It speaks to every connected peer that supports `/floodsub/1.0.0`, over long-lived streams
 * (one each way, as the spec, go and js do; rust-libp2p's one-shot streams are not used).
 * Peers added with `addNodeToPartialView` are also dialed, and redialed when they disconnect.
 *
 * Its long-lived streams do not keep a connection open: a connection is kept while the peer
 * subscribes to a topic we subscribe to or relay, or is in the partial view, or while frames
 * for it wait; otherwise it closes after the swarm's `idleConnectionTimeout`.
 */
export class Behaviour implements NetworkBehaviour<Event, FromBehaviour, ToBehaviour> {
  /** The complete configuration. */
  readonly config: Config
  private readonly localPeerId?: PeerId
  private readonly author: MessageAuthor
  private readonly messageId: MessageIdFn
  private readonly seen: SeenCache
  private readonly seqno = new SeqnoGenerator()
  private readonly validators = new Map<TopicHash, Validator>()
  private readonly pipeline: InboundPipeline
  private readonly subscribed = new Set<TopicHash>()
  private readonly relayed = new Set<TopicHash>()
  private readonly peers = new Map<PeerKey, PeerState>()
  private readonly targets = new Map<PeerKey, PeerId>()
  /** Each new connection's handler's view of unwanted ids, until the connection is established. */
  private readonly unwanted = new Map<ConnectionId, UnwantedIds>()
  private readonly actions = new ActionQueue<Event, FromBehaviour>()
  private readonly counted: MessageTotals = newTotals()

  constructor (options: Partial<Config> & Pick<Config, 'authenticity'>) {
    this.config = floodsubConfig(options)
    const { authenticity } = this.config
    this.localPeerId = authenticity.type === 'Signed' ? peerIdFromPrivateKey(authenticity.key) : undefined
    this.author = new MessageAuthor(authenticity)
    this.messageId = this.config.messageIdFn ?? (authenticity.type === 'Signed' ? authorSeqnoId : contentId)
    this.seen = new SeenCache(this.config.seenTtl, this.config.seenMaxEntries)
    this.pipeline = new InboundPipeline({
      checker: new MessageChecker(signaturePolicy(authenticity)),
      seen: this.seen,
      messageId: this.messageId,
      fastIdKey: this.messageId === authorSeqnoId ? rawAuthorSeqnoKey : undefined,
      validators: this.validators,
      localPeerId: this.localPeerId,
      maxPending: this.config.maxPendingValidations,
      onDuplicate: (idKey, source) => { this.peers.get(source.toString())?.heard.add(idKey) },
      onOutcome: (outcome) => { this.onOutcome(outcome) }
    })
  }

  /** Subscribe to `topic` and tell every peer; false if already subscribed. */
  subscribe (topic: Topic | TopicHash): boolean {
    const hash = topicHash(topic)
    if (this.subscribed.has(hash)) return false
    this.subscribed.add(hash)
    if (!this.relayed.has(hash)) this.announce(hash, true)
    this.recheckSubscribers(hash)
    return true
  }

  /** Unsubscribe from `topic` and tell every peer; false if not subscribed. */
  unsubscribe (topic: Topic | TopicHash): boolean {
    const hash = topicHash(topic)
    if (!this.subscribed.delete(hash)) return false
    if (!this.relayed.has(hash)) this.announce(hash, false)
    this.recheckSubscribers(hash)
    return true
  }

  /**
   * Receive and forward `topic`'s messages without delivering them (go-libp2p-pubsub's relay):
   * peers see us as subscribed. False if already relaying.
   */
  relay (topic: Topic | TopicHash): boolean {
    const hash = topicHash(topic)
    if (this.relayed.has(hash)) return false
    this.relayed.add(hash)
    if (!this.subscribed.has(hash)) this.announce(hash, true)
    this.recheckSubscribers(hash)
    return true
  }

  /** Stop relaying `topic`. */
  stopRelaying (topic: Topic | TopicHash): boolean {
    const hash = topicHash(topic)
    if (!this.relayed.delete(hash)) return false
    if (!this.subscribed.has(hash)) this.announce(hash, false)
    this.recheckSubscribers(hash)
    return true
  }

  /** The topics we subscribe to. */
  topics (): TopicHash[] {
    return [...this.subscribed]
  }

  /** Peers known to subscribe to `topic`. */
  subscribers (topic: Topic | TopicHash): PeerId[] {
    const hash = topicHash(topic)
    return [...this.peers.values()].filter(p => p.topics.has(hash)).map(p => p.peerId)
  }

  /**
   * Validate every received message of `topic` with `validator` before it is delivered or
   * forwarded; `undefined` removes it.
   */
  setValidator (topic: Topic | TopicHash, validator: Validator | undefined): void {
    const hash = topicHash(topic)
    if (validator == null) this.validators.delete(hash)
    else this.validators.set(hash, validator)
  }

  /**
   * Publish on a topic we subscribe to; returns the message id. Throws `PublishError`:
   * `NotSubscribed`, `MessageTooLarge`, `Duplicate` (same id within the seen TTL), or
   * `NoPeersSubscribedToTopic` when `publishRequiresPeers` is set.
   */
  publish (topic: Topic | TopicHash, data: Uint8Array): MessageId {
    const hash = topicHash(topic)
    if (!this.subscribed.has(hash)) throw new PublishError('NotSubscribed', `not subscribed to ${hash}`)
    return this.publishAny(hash, data)
  }

  /** Publish on any topic, subscribed or not; see `publish`. */
  publishAny (topic: Topic | TopicHash, data: Uint8Array): MessageId {
    const hash = topicHash(topic)
    if (data.byteLength > this.config.maxTransmitSize) {
      throw new PublishError('MessageTooLarge', `${data.byteLength} bytes exceed maxTransmitSize ${this.config.maxTransmitSize}`)
    }
    const recipients = this.recipients(hash, undefined, undefined)
    if (recipients.length === 0 && this.config.publishRequiresPeers) {
      throw new PublishError('NoPeersSubscribedToTopic', `no peer subscribes to ${hash}`)
    }
    const { fields, complete } = this.author.build(hash, data, this.seqno.next())
    const message = toMessage(fields, hash)
    const id = this.messageId(message)
    if (!this.seen.add(messageIdKey(id))) throw new PublishError('Duplicate', 'a message with the same id was published or seen recently')
    this.counted.published++
    const send = (raw: RawMessage): void => {
      const frame = this.frameOf({ publish: [raw] })
      for (const peer of this.recipients(hash, undefined, undefined)) this.sendTo(peer, frame)
    }
    if (complete instanceof Promise) {
      complete.then(send, (err: unknown) => { log.error('signing a message failed: %e', err) })
    } else {
      send(complete)
    }
    if (this.config.subscribeLocalMessages && this.subscribed.has(hash) && this.localPeerId != null) {
      this.queue({ type: 'GenerateEvent', event: { type: 'Message', propagationSource: this.localPeerId, messageId: id, message } })
    }
    return id
  }

  /** Message totals since creation (published, received, forwarded, duplicates, …); always counted. */
  totals (): Readonly<MessageTotals> {
    return { ...this.counted, duplicates: this.pipeline.duplicates }
  }

  /** Dial `peerId` and keep it connected (redialed when it disconnects). */
  addNodeToPartialView (peerId: PeerId): void {
    this.targets.set(peerId.toString(), peerId)
    const peer = this.peers.get(peerId.toString())
    if (peer == null) this.queue({ type: 'Dial', opts: { peerId } })
    else this.recheckKeepAlive(peer)
  }

  /** Stop redialing `peerId` (its connections stay). */
  removeNodeFromPartialView (peerId: PeerId): void {
    this.targets.delete(peerId.toString())
    const peer = this.peers.get(peerId.toString())
    if (peer != null) this.recheckKeepAlive(peer)
  }

  handleEstablishedInboundConnection ({ connectionId }: EstablishedInboundConnection): StreamHandler {
    return this.handler(connectionId)
  }

  handleEstablishedOutboundConnection ({ connectionId }: EstablishedOutboundConnection): StreamHandler {
    return this.handler(connectionId)
  }

  onSwarmEvent (event: FromSwarm): void {
    switch (event.type) {
      case 'ConnectionEstablished': {
        const peer = this.peer(event.peerId)
        peer.connections.push(event.connectionId)
        // Its handler drops queued forwards of messages the peer sent us meanwhile.
        this.unwanted.get(event.connectionId)?.bind({ heard: peer.heard })
        this.unwanted.delete(event.connectionId)
        // The hello: every topic we want messages of, first on the connection's new stream.
        const topics = [...new Set([...this.subscribed, ...this.relayed])]
        if (topics.length > 0) {
          this.notify(event.peerId, event.connectionId, this.frameOf({ subscriptions: topics.map(topicid => ({ subscribe: true, topicid })) }))
        }
        // A further connection of a peer we keep is kept too; a peer of the partial view from the start.
        if (peer.keepAlive) this.tellKeepAlive(peer, event.connectionId)
        else this.recheckKeepAlive(peer)
        break
      }
      case 'ConnectionClosed':
        this.dropConnection(event.peerId, event.connectionId)
        if (event.remainingEstablished === 0 && this.targets.has(event.peerId.toString())) {
          this.queue({ type: 'Dial', opts: { peerId: event.peerId } })
        }
        break
      case 'DialFailure':
      case 'ListenFailure':
        this.unwanted.delete(event.connectionId)
        break
      default:
    }
  }

  onConnectionHandlerEvent (peerId: PeerId, connectionId: ConnectionId, event: ToBehaviour): void {
    switch (event.type) {
      case 'Rpc':
        this.onRpc(peerId, event.rpc)
        break
      case 'Unsupported':
        this.dropConnection(peerId, connectionId)
        this.queue({ type: 'GenerateEvent', event: { type: 'NotSupported', peerId } })
        break
      case 'InvalidFrame':
        this.queue({ type: 'GenerateEvent', event: { type: 'InvalidRpc', peerId, connectionId, error: event.error } })
        this.queue({ type: 'CloseConnection', peerId, connection: connectionId })
        break
      case 'SlowPeer':
        this.counted.droppedBytes += event.droppedBytes
        this.queue({ type: 'GenerateEvent', event: { type: 'SlowPeer', peerId, droppedBytes: event.droppedBytes } })
        break
      case 'Unwanted':
        this.counted.echoes += event.echoes
        break
      case 'Ready':
        break
    }
  }

  /**
   * Unsubscribe from every topic and stop relaying: every peer hears it. The swarm's `close()`
   * calls it and sends these before the connections close.
   *
   * @group Called by the swarm
   */
  shutdown (): void {
    for (const topic of [...this.subscribed]) this.unsubscribe(topic)
    for (const topic of [...this.relayed]) this.stopRelaying(topic)
  }

  poll (cx: Context): ToSwarm<Event, FromBehaviour> | undefined {
    return this.actions.poll(cx)
  }

  private handler (connectionId: ConnectionId): StreamHandler {
    const unwanted = new UnwantedIds()
    this.unwanted.set(connectionId, unwanted)
    return new StreamHandler({
      unwanted,
      protocols: [PROTOCOL],
      maxFrameSize: this.config.maxTransmitSize,
      maxQueuedBytes: this.config.maxQueuedBytes,
      maxReceivedRpcs: 64,
      timeout: 10_000
    })
  }

  private onRpc (peerId: PeerId, rpc: Rpc): void {
    const peer = this.peers.get(peerId.toString())
    if (peer == null) return
    const subscriptions = rpc.subscriptions ?? []
    for (const sub of subscriptions) {
      const topic = sub.topicid
      if (topic == null || topic === '') continue
      if (sub.subscribe === true) {
        if (peer.topics.has(topic)) continue
        if (peer.topics.size >= this.config.maxTopicsPerPeer) {
          log('%p subscribes to too many topics, ignoring %s', peerId, topic)
          continue
        }
        peer.topics.add(topic)
        this.queue({ type: 'GenerateEvent', event: { type: 'Subscribed', peerId, topic } })
      } else if (peer.topics.delete(topic)) {
        this.queue({ type: 'GenerateEvent', event: { type: 'Unsubscribed', peerId, topic } })
      }
    }
    // Its topics may have changed (RPCs of messages only cost nothing here).
    if (subscriptions.length > 0) this.recheckKeepAlive(peer)
    for (const raw of rpc.publish ?? []) this.pipeline.process(raw, peerId)
  }

  /**
   * Whether the connections to `peer` are kept open: it subscribes to a topic we subscribe to
   * or relay, or it is in the partial view (`addNodeToPartialView`). The long-lived streams
   * do not count (`StreamHandler`).
   */
  private keeps (peer: PeerState): boolean {
    if (this.targets.has(peer.peerId.toString())) return true
    for (const topic of peer.topics) if (this.subscribed.has(topic) || this.relayed.has(topic)) return true
    return false
  }

  /** Tell `peer`'s handlers if its keep-alive answer changed. */
  private recheckKeepAlive (peer: PeerState): void {
    const value = this.keeps(peer)
    if (value === peer.keepAlive) return
    peer.keepAlive = value
    for (const connectionId of peer.connections) this.tellKeepAlive(peer, connectionId)
  }

  private tellKeepAlive (peer: PeerState, connectionId: ConnectionId): void {
    this.queue({ type: 'NotifyHandler', peerId: peer.peerId, handler: connectionId, event: { type: 'KeepAlive', value: peer.keepAlive } })
  }

  /** Our interest in `topic` changed: the keep-alive answer of its subscribers may have. */
  private recheckSubscribers (topic: TopicHash): void {
    for (const peer of this.peers.values()) if (peer.topics.has(topic)) this.recheckKeepAlive(peer)
  }

  private onOutcome (outcome: Outcome): void {
    switch (outcome.type) {
      case 'Accepted': {
        const { message, raw, source } = outcome
        const wanted = this.subscribed.has(message.topic)
        // As go-libp2p-pubsub: messages of topics we neither subscribe to nor relay are dropped.
        if (!wanted && !this.relayed.has(message.topic)) return
        if (wanted) {
          this.queue({ type: 'GenerateEvent', event: { type: 'Message', propagationSource: source, messageId: outcome.id, message } })
        }
        this.counted.received++
        const frame = this.frameOf({ publish: [raw] })
        for (const peer of this.recipients(message.topic, source, message.source)) {
          if (peer.heard.has(outcome.idKey)) {
            this.counted.echoes++
            continue
          }
          // Low priority, with its id: dropped if the peer's own copy reaches us before it leaves.
          this.notify(peer.peerId, peer.connections[0], frame, 'low', outcome.idKey)
          this.counted.forwarded++
        }
        break
      }
      case 'Rejected':
        this.counted.invalid++
        log('rejected a message from %p: %s', outcome.source, outcome.reason)
        this.queue({ type: 'GenerateEvent', event: { type: 'InvalidMessage', peerId: outcome.source, reason: outcome.reason, error: outcome.error } })
        break
      case 'Ignored':
        this.counted.ignored++
        break
    }
    this.actions.wake()
  }

  /** Peers subscribed to `topic`, except `source` and `author`. */
  private recipients (topic: TopicHash, source: PeerId | undefined, author: PeerId | undefined): PeerState[] {
    const result: PeerState[] = []
    for (const peer of this.peers.values()) {
      if (!peer.topics.has(topic) || peer.connections.length === 0) continue
      if (source?.equals(peer.peerId) === true || author?.equals(peer.peerId) === true) continue
      result.push(peer)
    }
    return result
  }

  private announce (topic: TopicHash, subscribe: boolean): void {
    const frame = this.frameOf({ subscriptions: [{ subscribe, topicid: topic }] })
    for (const peer of this.peers.values()) {
      for (const connectionId of peer.connections) this.notify(peer.peerId, connectionId, frame)
    }
  }

  /** Frames go over the peer's oldest connection; every connection got the hello. */
  private sendTo (peer: PeerState, frame: Uint8Array): void {
    this.notify(peer.peerId, peer.connections[0], frame)
  }

  private notify (peerId: PeerId, connectionId: ConnectionId, frames: Uint8Array, priority?: 'low', id?: string): void {
    this.queue({ type: 'NotifyHandler', peerId, handler: connectionId, event: { type: 'Send', frames, priority, id } })
  }

  private frameOf (rpc: Rpc): Uint8Array {
    return encodeFrame(encodeRpc(rpc))
  }

  private peer (peerId: PeerId): PeerState {
    const key = peerId.toString()
    let peer = this.peers.get(key)
    if (peer == null) this.peers.set(key, peer = { peerId, connections: [], topics: new Set(), heard: new RecentIds(), keepAlive: false })
    return peer
  }

  private dropConnection (peerId: PeerId, connectionId: ConnectionId): void {
    const key = peerId.toString()
    const peer = this.peers.get(key)
    if (peer == null) return
    const index = peer.connections.indexOf(connectionId)
    if (index >= 0) peer.connections.splice(index, 1)
    if (peer.connections.length === 0) this.peers.delete(key)
  }

  private queue (action: ToSwarm<Event, FromBehaviour>): void {
    this.actions.push(action)
  }
}
