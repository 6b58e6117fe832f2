/**
 * GossipSub (`/meshsub/1.2.0`, `/meshsub/1.1.0`, `/meshsub/1.0.0`, and `/floodsub/1.0.0` for
 * peers without gossipsub): the public API and the swarm's entry points. What happens where:
 *
 * 1. a connection gets the shared pubsub `StreamHandler`, offering our protocols in order of
 *    preference; the protocol agreed on our outbound stream decides what the peer gets
 *    (meshes and gossip from 1.0, backoff and PX from 1.1, IDONTWANT from 1.2; floodsub peers
 *    only get the messages of their topics);
 * 2. a received RPC: subscriptions, then messages (through the shared receive pipeline:
 *    dedupe before verify), then control (`control.ts`);
 * 3. an accepted message is delivered, put in the message cache, announced by IDONTWANT to
 *    v1.2 mesh peers if large, and forwarded (framed once) to the topic's mesh, floodsub and
 *    explicit peers, except its source, its author and peers that said IDONTWANT (a copy still
 *    queued when its peer says IDONTWANT is dropped by the handler before it is written);
 * 4. `publish` goes to every peer of the topic (flood publish) or to the mesh / fanout;
 * 5. the heartbeat (`heartbeat.ts`) keeps meshes and fanouts in shape and emits gossip.
 *
 * @module
 */
import { logger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe } from '../../core/errors.js'
import { MessageAuthor, MessageChecker, signaturePolicy } from '../pubsub/authenticity.js'
import { PublishError } from '../pubsub/errors.js'
import { encodeFrame } from '../../behaviour/framing.js'
import { authorSeqnoId, contentId, messageIdKey, rawAuthorSeqnoKey, SeqnoGenerator, toMessage } from '../pubsub/message.js'
import { InboundPipeline } from '../pubsub/pipeline.js'
import { encodeRpc } from '../pubsub/rpc.js'
import { SeenCache } from '../pubsub/seen-cache.js'
import { QueueGauge, RecentIds, UnwantedIds } from '../pubsub/peer-state.js'
import { StreamHandler } from '../pubsub/stream-handler.js'
import { topicHash } from '../pubsub/topic.js'
import { config as gossipsubConfig, FLOODSUB_PROTOCOL, PROTOCOL_V1_0, PROTOCOL_V1_1, PROTOCOL_V1_2 } from './config.js'
import { handleControl } from './control.js'
import { gossipToSubscriber, heartbeat } from './heartbeat.js'
import { graftable, join, leave } from './mesh.js'
import { features, Router, shuffle } from './router.js'
import type { MessageTotals } from '../pubsub/totals.js'
import type { Config, Options } from './config.js'
import type { ScoreBreakdown } from './score/compute.js'
import type { PeerState } from './router.js'
import type { RejectReason } from '../pubsub/authenticity.js'
import type { Message, MessageId, MessageIdFn } from '../pubsub/message.js'
import type { Outcome } from '../pubsub/pipeline.js'
import type { RawMessage, Rpc } from '../pubsub/rpc.js'
import type { FromBehaviour, ToBehaviour } from '../pubsub/stream-handler.js'
import type { Topic, TopicHash } from '../pubsub/topic.js'
import type { ValidationResult, Validator } from '../pubsub/validation.js'
import type { Context } from '../../behaviour/context.js'
import type { EstablishedInboundConnection, EstablishedOutboundConnection, FromSwarm, NetworkBehaviour, ToSwarm } from '../../behaviour/network-behaviour.js'
import type { ConnectionId } from '../../core/ids.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const log = logger('peerswarm:gossipsub')

/** What GossipSub reports. */
export type Event =
  | {
    /**
     * A new, valid message on a topic we subscribe to. With `validateMessagesManually`, it
     * is forwarded only once the application calls `reportMessageValidationResult`.
     */
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
  /** A peer does not read fast enough: `droppedBytes` of our frames to it were dropped. */
  | { readonly type: 'SlowPeer', readonly peerId: PeerId, readonly droppedBytes: number }
  /** A connected peer speaks neither gossipsub nor (when supported) floodsub. */
  | { readonly type: 'NotSupported', readonly peerId: PeerId }

/**
 * @deprecated GossipSub now emits `NotSupported`, as FloodSub does; this names that event's
 * type. A discriminant string cannot be aliased, so code that compares an event's `type` with
 * the old string `'GossipsubNotSupported'` no longer compiles (instead of silently never
 * matching): compare with `'NotSupported'`.
 */
export type GossipsubNotSupported = Extract<Event, { type: 'NotSupported' }>

/** A peer as `allPeers` lists it. */
export interface PeerInfo {
  readonly peerId: PeerId
  /** The topics it subscribes to. */
  readonly topics: readonly TopicHash[]
}

/** A received message held for `reportMessageValidationResult`. */
interface HeldMessage {
  readonly raw: RawMessage
  readonly topic: TopicHash
  readonly id: MessageId
  readonly source: PeerId
  readonly author?: PeerId
}

/**
 * The GossipSub behaviour.
 *
 * ```ts
 * .withBehaviour(key => combine({
 *   identify: new identify.Behaviour(key.publicKey),
 *   gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key) })
 * }))
 * ```
 *
 * Its API has rust-libp2p's shape (`subscribe`, `publish`, `meshPeers`, …) and FloodSub's
 * names, so that code moves from one to the other by changing a word.
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
  private readonly router: Router<Event>
  /** Manually validated messages waiting for the application's verdict, oldest first. */
  private readonly held = new Map<string, HeldMessage>()
  /** Connections we dialed for PX entries. */
  private readonly pxDials = new Set<ConnectionId>()
  /** What handlers made for connections not yet established share with us. */
  private readonly shared = new Map<ConnectionId, { readonly gauge: QueueGauge, readonly unwanted: UnwantedIds }>()
  /** Peers already reported as `NotSupported`. */
  private readonly unsupported = new Set<string>()
  private readonly protocols: readonly string[]
  private heartbeatTimer?: ReturnType<typeof setTimeout>
  private closed = false

  constructor (options: Options) {
    this.config = gossipsubConfig(options)
    const { authenticity } = this.config
    this.localPeerId = authenticity.type === 'Signed' ? peerIdFromPrivateKey(authenticity.key) : undefined
    this.author = new MessageAuthor(authenticity)
    this.messageId = this.config.messageIdFn ?? (authenticity.type === 'Signed' ? authorSeqnoId : contentId)
    this.seen = new SeenCache(this.config.seenTtl, this.config.seenMaxEntries)
    this.router = new Router(this.config, this.seen, () => Date.now(), Math.random)
    this.router.localPeer = this.localPeerId?.toString()
    this.protocols = this.config.supportFloodsub
      ? [PROTOCOL_V1_2, PROTOCOL_V1_1, PROTOCOL_V1_0, FLOODSUB_PROTOCOL]
      : [PROTOCOL_V1_2, PROTOCOL_V1_1, PROTOCOL_V1_0]
    for (const peerId of this.config.explicitPeers) this.router.explicit.set(peerId.toString(), peerId)
    this.pipeline = new InboundPipeline({
      checker: new MessageChecker(signaturePolicy(authenticity)),
      seen: this.seen,
      messageId: this.messageId,
      fastIdKey: this.messageId === authorSeqnoId ? rawAuthorSeqnoKey : undefined,
      validators: this.validators,
      localPeerId: this.localPeerId,
      maxPending: this.config.maxPendingValidations,
      onFirstCopy: (first) => {
        this.router.scoring?.validate(first.idKey, first.topic)
        this.announceDontWant(first.id, first.raw, first.topic, first.source)
      },
      onDuplicate: (idKey, source) => {
        const key = source.toString()
        this.router.peers.get(key)?.heard.add(idKey)
        this.router.scoring?.duplicate(idKey, key)
        this.router.count('messages_duplicate', 1, undefined)
      },
      onOutcome: (outcome) => {
        this.onOutcome(outcome)
        this.router.flush()
      }
    })
  }

  /** Subscribe to `topic`: announce it and build its mesh. False if already subscribed. */
  subscribe (topic: Topic | TopicHash): boolean {
    const hash = topicHash(topic)
    if (this.router.mesh.has(hash)) return false
    this.announce(hash, true)
    join(this.router, hash)
    this.recheckSubscribers(hash)
    this.router.flush()
    return true
  }

  /** Unsubscribe from `topic`: PRUNE its mesh (with the unsubscribe backoff) and announce it. */
  unsubscribe (topic: Topic | TopicHash): boolean {
    const hash = topicHash(topic)
    if (!this.router.mesh.has(hash)) return false
    leave(this.router, hash)
    this.announce(hash, false)
    this.recheckSubscribers(hash)
    this.router.flush()
    return true
  }

  /** The topics we subscribe to. */
  topics (): TopicHash[] {
    return [...this.router.mesh.keys()]
  }

  /** Peers known to subscribe to `topic`. */
  subscribers (topic: Topic | TopicHash): PeerId[] {
    const hash = topicHash(topic)
    return [...this.router.peers.values()].filter(p => p.topics.has(hash)).map(p => p.peerId)
  }

  /** Every connected pubsub peer and the topics it subscribes to. */
  allPeers (): PeerInfo[] {
    return [...this.router.peers.values()].map(p => ({ peerId: p.peerId, topics: [...p.topics] }))
  }

  /** Our mesh peers on `topic` (empty when not subscribed). */
  meshPeers (topic: Topic | TopicHash): PeerId[] {
    return this.peerIds(this.router.mesh.get(topicHash(topic)) ?? [])
  }

  /** Every peer in any of our meshes, once each. */
  allMeshPeers (): PeerId[] {
    const keys = new Set<string>()
    for (const members of this.router.mesh.values()) for (const key of members) keys.add(key)
    return this.peerIds(keys)
  }

  /** Our fanout peers on `topic` (a topic we publish to without subscribing). */
  fanoutPeers (topic: Topic | TopicHash): PeerId[] {
    return this.peerIds(this.router.fanout.get(topicHash(topic)) ?? [])
  }

  /** Topics we hold a fanout for: published to recently without subscribing. */
  fanoutTopics (): TopicHash[] {
    return [...this.router.fanout.keys()]
  }

  /** Message totals since creation (published, received, forwarded, duplicates, …); always counted. */
  totals (): Readonly<MessageTotals> {
    return { ...this.router.totals }
  }

  /**
   * The protocol our stream to `peerId` speaks (`/meshsub/1.2.0`, …, `/floodsub/1.0.0`), or
   * undefined if not connected or not negotiated yet.
   */
  peerProtocol (peerId: PeerId): string | undefined {
    const peer = this.router.peers.get(peerId.toString())
    return peer == null ? undefined : this.router.protocolOf(peer)
  }

  /**
   * Control messages sent and received so far (GRAFT, PRUNE, IHAVE, IWANT, IDONTWANT), for
   * diagnostics and tests.
   */
  controlCounters (): Readonly<Router<Event>['counters']> {
    return { ...this.router.counters }
  }

  /**
   * How long, in ms, we will not graft `peerId` on `topic` (0 when not backed off).
   */
  backoffRemaining (topic: Topic | TopicHash, peerId: PeerId): number {
    return this.router.backoff.remaining(topicHash(topic), peerId.toString())
  }

  /**
   * Set the application-specific score (P5) of a connected peer; false if scoring is off or
   * the peer is unknown.
   */
  setApplicationScore (peerId: PeerId, score: number): boolean {
    return this.router.scoring?.setApplicationScore(peerId.toString(), score) ?? false
  }

  /** The peer's score, or undefined when scoring is off or the peer is unknown. */
  peerScore (peerId: PeerId): number | undefined {
    const scoring = this.router.scoring
    const key = peerId.toString()
    return scoring?.has(key) === true ? scoring.score(key) : undefined
  }

  /** The peer's score and each of its components (P1–P7), for debugging. */
  peerScoreBreakdown (peerId: PeerId): ScoreBreakdown | undefined {
    return this.router.scoring?.breakdown(peerId.toString())
  }

  /**
   * Make `peerId` an explicit peer: every message of its topics goes to it, it is never in a
   * mesh, its RPCs are always accepted, and it is dialed now and again every
   * `directConnectTicks` heartbeats while disconnected.
   */
  addExplicitPeer (peerId: PeerId): void {
    const key = peerId.toString()
    if (this.router.explicit.has(key)) return
    this.router.explicit.set(key, peerId)
    for (const topic of this.router.mesh.keys()) this.router.removeFromMesh(topic, key)
    for (const members of this.router.fanout.values()) members.delete(key)
    if (!this.router.peers.has(key)) this.router.queue({ type: 'Dial', opts: { peerId } })
    // Kept connected: its connections no longer idle out.
    this.router.recheckKeepAlive(key)
    this.router.flush()
  }

  /** `peerId` is an ordinary peer again (its connections stay). */
  removeExplicitPeer (peerId: PeerId): void {
    const key = peerId.toString()
    if (!this.router.explicit.delete(key)) return
    this.router.recheckKeepAlive(key)
    this.router.flush()
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
   * Give a signed peer record (an RFC 0002 envelope, e.g. from identify) that PX may pass on
   * to other peers. Rejects if the record does not verify.
   */
  async addPeerRecord (envelope: Uint8Array): Promise<void> {
    await this.router.records.add(envelope)
  }

  /**
   * The application's verdict on a message received while `validateMessagesManually` is set:
   * `accept` forwards it, `reject` and `ignore` drop it. False if the message is unknown
   * (already reported, or dropped because too many were waiting).
   */
  reportMessageValidationResult (messageId: MessageId, propagationSource: PeerId, result: ValidationResult): boolean {
    const key = messageIdKey(messageId)
    const held = this.held.get(key)
    if (held == null || !held.source.equals(propagationSource)) return false
    this.held.delete(key)
    const source = propagationSource.toString()
    if (result === 'accept') {
      this.router.scoring?.deliver(key, held.topic, source)
      this.router.count('messages_received', 1, { topic: held.topic })
      this.forward(key, held)
    } else if (result === 'reject') {
      log('the application rejected a message from %p', propagationSource)
      this.router.scoring?.reject(key, held.topic, source)
      this.router.holdIfGraylisted(source)
    } else {
      this.router.scoring?.ignore(key)
    }
    this.router.flush()
    return true
  }

  /**
   * Publish `data` on `topic`; returns the message id. We need not subscribe to the topic
   * (the message then goes to its fanout). Throws `PublishError`: `MessageTooLarge`,
   * `TransformFailed`, `SigningError`, `Duplicate` (same id within the seen TTL),
   * `NoPeersSubscribedToTopic` (unless `publishRequiresPeers` is off), or `AllQueuesFull`
   * (no recipient's outbound queue, bounded by `maxQueuedBytes`, has room: back off and retry).
   */
  publish (topic: Topic | TopicHash, data: Uint8Array): MessageId {
    const hash = topicHash(topic)
    let wire = data
    if (this.config.dataTransform != null) {
      try {
        wire = this.config.dataTransform.outbound(hash, data)
      } catch (err) {
        throw new PublishError('TransformFailed', `the outbound transform failed: ${describe(err)}`)
      }
    }
    if (wire.byteLength > this.config.maxTransmitSize) {
      throw new PublishError('MessageTooLarge', `${wire.byteLength} bytes exceed maxTransmitSize ${this.config.maxTransmitSize}`)
    }
    const recipients = this.publishRecipients(hash)
    if (recipients.length === 0 && this.config.publishRequiresPeers) {
      throw new PublishError('NoPeersSubscribedToTopic', `no peer subscribes to ${hash}`)
    }
    // The frame is at least the data long: if no recipient's queue has room for that, none
    // would take the message (a publish faster than the network drains).
    if (recipients.length > 0 && !recipients.some(peer => this.router.hasRoom(peer, wire.byteLength))) {
      throw new PublishError('AllQueuesFull', `the outbound queues of all ${recipients.length} recipients are full`)
    }
    let built
    try {
      built = this.author.build(hash, wire, this.seqno.next())
    } catch (err) {
      throw new PublishError('SigningError', `signing failed: ${describe(err)}`)
    }
    const message = toMessage(built.fields, hash)
    const id = this.messageId(message)
    const idKey = messageIdKey(id)
    if (this.seen.has(idKey)) throw new PublishError('Duplicate', 'a message with the same id was published or seen recently')
    const send = (raw: RawMessage): void => {
      const frame = encodeFrame(encodeRpc({ publish: [raw] }))
      this.router.mcache.put(idKey, { id, topic: hash, frame })
      for (const peer of recipients) this.router.sendFrame(peer, frame)
    }
    if (built.complete instanceof Promise) {
      built.complete.then(send, (err: unknown) => { log.error('signing a message failed: %s', describe(err)) })
    } else {
      const frame = encodeFrame(encodeRpc({ publish: [built.complete] }))
      if (frame.byteLength > this.config.maxTransmitSize) {
        throw new PublishError('MessageTooLarge', `the message's frame (${frame.byteLength} bytes) exceeds maxTransmitSize ${this.config.maxTransmitSize}`)
      }
      send(built.complete)
    }
    this.seen.add(idKey)
    this.router.count('messages_published', 1, { topic: hash })
    if (!this.router.mesh.has(hash)) this.router.fanoutLastPublished.set(hash, Date.now())
    if (this.config.subscribeLocalMessages && this.router.mesh.has(hash) && this.localPeerId != null) {
      this.router.emit({ type: 'Message', propagationSource: this.localPeerId, messageId: id, message: { ...message, data } })
    }
    this.router.flush()
    return id
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
        if (this.pxDials.delete(event.connectionId)) this.router.pendingPxDials--
        const peer = this.peer(event.peerId)
        const address = event.endpoint.type === 'Dialer' ? event.endpoint.address : event.endpoint.sendBackAddr
        const shared = this.shared.get(event.connectionId)
        this.shared.delete(event.connectionId)
        // The handler drops queued copies of messages the peer says IDONTWANT for, or sent us.
        shared?.unwanted.bind({ dontWant: peer.dontSend, heard: peer.heard })
        const connection = { id: event.connectionId, outbound: event.endpoint.type === 'Dialer', ips: ipsOf(address), gauge: shared?.gauge, unwanted: shared?.unwanted }
        peer.connections.push(connection)
        const ips = [...new Set(peer.connections.flatMap(c => c.ips))]
        if (peer.connections.length === 1) this.router.scoring?.addPeer(peer.key, ips)
        else this.router.scoring?.updateIps(peer.key, ips)
        // The hello: our topics, first on the connection's new stream.
        const topics = this.topics()
        if (topics.length > 0) {
          const frame = encodeFrame(encodeRpc({ subscriptions: topics.map(topicid => ({ subscribe: true, topicid })) }))
          this.router.sendOn(peer, connection, frame)
        }
        // A further connection of a peer we keep is kept too; an explicit peer from the start.
        if (peer.held) this.router.sendHold(peer, connection)
        if (peer.keepAlive) this.router.sendKeepAlive(peer, connection)
        else if (this.router.explicit.has(peer.key)) this.router.recheckKeepAlive(peer.key)
        this.router.updateKeepAlive()
        break
      }
      case 'ConnectionClosed':
        this.dropConnection(event.peerId, event.connectionId)
        break
      case 'DialFailure':
        if (this.pxDials.delete(event.connectionId)) this.router.pendingPxDials--
        this.shared.delete(event.connectionId)
        break
      case 'ListenFailure':
        this.shared.delete(event.connectionId)
        break
      default:
    }
  }

  onConnectionHandlerEvent (peerId: PeerId, connectionId: ConnectionId, event: ToBehaviour): void {
    const peer = this.router.peers.get(peerId.toString())
    if (peer == null) return
    switch (event.type) {
      case 'Rpc':
        this.onRpc(peer, event.rpc)
        break
      case 'Ready': {
        const connection = peer.connections.find(c => c.id === connectionId)
        if (connection != null) connection.protocol = event.protocol
        log.trace('%p speaks %s', peerId, event.protocol)
        this.onReady(peer)
        break
      }
      case 'Unsupported':
        this.dropConnection(peerId, connectionId)
        if (!this.unsupported.has(peer.key)) {
          this.unsupported.add(peer.key)
          if (this.unsupported.size > 4096) this.unsupported.delete(this.unsupported.values().next().value as string)
          this.router.emit({ type: 'NotSupported', peerId })
        }
        break
      case 'InvalidFrame':
        this.router.emit({ type: 'InvalidRpc', peerId, connectionId, error: event.error })
        this.router.queue({ type: 'CloseConnection', peerId, connection: connectionId })
        break
      case 'SlowPeer':
        this.router.count('queue_dropped_bytes', event.droppedBytes, undefined)
        this.router.emit({ type: 'SlowPeer', peerId, droppedBytes: event.droppedBytes })
        break
      case 'Unwanted':
        if (event.frames > event.echoes) this.router.count('messages_unwanted', event.frames - event.echoes, { stage: 'queue' })
        if (event.echoes > 0) this.router.count('messages_echoes', event.echoes, undefined)
        break
    }
    this.router.flush()
  }

  poll (cx: Context): ToSwarm<Event, FromBehaviour> | undefined {
    if (this.heartbeatTimer == null && !this.closed) this.startHeartbeat()
    return this.router.actions.poll(cx)
  }

  /**
   * Leave every topic, as `unsubscribe` does: PRUNE to each mesh peer (with the unsubscribe
   * backoff, and PX when `doPX`) and an unsubscription to every peer. The swarm's `close()`
   * calls it and sends these before the connections close.
   *
   * @group Called by the swarm
   */
  shutdown (): void {
    for (const topic of this.topics()) this.unsubscribe(topic)
  }

  close (): void {
    this.closed = true
    if (this.heartbeatTimer != null) clearTimeout(this.heartbeatTimer)
  }

  private startHeartbeat (): void {
    const tick = (): void => {
      if (this.closed) return
      this.heartbeatTimer = setTimeout(tick, this.config.heartbeatInterval)
      try {
        heartbeat(this.router)
        this.router.releaseInbound()
        // The heartbeat may have changed fanouts (expired, topped up): once a heartbeat, every
        // peer's keep-alive answer is checked (handlers hear only of changes).
        this.router.recheckAllKeepAlive()
        this.router.updateKeepAlive()
      } catch (err) {
        log.error('heartbeat failed: %s', describe(err))
      }
    }
    this.heartbeatTimer = setTimeout(tick, this.config.heartbeatInitialDelay)
  }

  private handler (connectionId: ConnectionId): StreamHandler {
    const gauge = new QueueGauge(this.config.maxQueuedBytes)
    const unwanted = new UnwantedIds()
    this.shared.set(connectionId, { gauge, unwanted })
    return new StreamHandler({
      gauge,
      unwanted,
      protocols: this.protocols,
      maxFrameSize: this.config.maxTransmitSize,
      maxQueuedBytes: this.config.maxQueuedBytes,
      maxReceivedRpcs: 64,
      timeout: 10_000,
      lowPriorityDeadline: this.config.forwardDeadline
    })
  }

  /**
   * A peer's outbound stream is open. As rust-libp2p, a mesh peer of a topic whose mesh is
   * short is grafted at once rather than at the next heartbeat; and topics it subscribed to
   * before we knew its protocol get their `gossipOnSubscribe` offer now.
   */
  private onReady (peer: PeerState): void {
    for (const topic of peer.topics) {
      this.graftIfShort(peer, topic)
      gossipToSubscriber(this.router, peer, topic)
    }
  }

  private graftIfShort (peer: PeerState, topic: TopicHash): void {
    const members = this.router.mesh.get(topic)
    if (members == null || members.size >= this.config.meshNLow || members.has(peer.key)) return
    if (!graftable(this.router, topic, members).includes(peer.key)) return
    this.router.addToMesh(topic, peer.key, true)
  }

  private onRpc (peer: PeerState, rpc: Rpc): void {
    // Its topics may change: its keep-alive answer is checked at the flush that ends this entry
    // point. RPCs of messages only cost nothing here.
    if (rpc.subscriptions != null && rpc.subscriptions.length > 0) this.router.recheckKeepAlive(peer.key)
    for (const sub of rpc.subscriptions ?? []) {
      const topic = sub.topicid
      if (topic == null || topic === '') continue
      if (sub.subscribe === true) {
        if (peer.topics.has(topic)) continue
        if (peer.topics.size >= this.config.maxTopicsPerPeer) {
          log('%p subscribes to too many topics, ignoring %s', peer.peerId, topic)
          continue
        }
        peer.topics.add(topic)
        this.router.emit({ type: 'Subscribed', peerId: peer.peerId, topic })
        this.graftIfShort(peer, topic)
        gossipToSubscriber(this.router, peer, topic)
      } else if (peer.topics.delete(topic)) {
        this.router.removeFromMesh(topic, peer.key)
        this.router.fanout.get(topic)?.delete(peer.key)
        this.router.emit({ type: 'Unsubscribed', peerId: peer.peerId, topic })
      }
    }
    // Below the graylist threshold the rest of the RPC is ignored (explicit peers excepted).
    if (this.router.graylisted(peer.key)) {
      this.router.holdInbound(peer)
      return
    }
    for (const raw of rpc.publish ?? []) {
      // As go-libp2p-pubsub: messages of topics we do not subscribe to are dropped unread.
      if (raw.topic == null || !this.router.mesh.has(raw.topic)) continue
      this.pipeline.process(raw, peer.peerId)
    }
    if (rpc.control != null) handleControl(this.router, peer, rpc.control, this.pxDials)
  }

  private onOutcome (outcome: Outcome): void {
    switch (outcome.type) {
      case 'Accepted': {
        const { message, raw, source, idKey, id } = outcome
        this.router.promises.deliver(idKey)
        if (!this.router.mesh.has(message.topic)) return
        let data = message.data
        if (this.config.dataTransform != null) {
          try {
            data = this.config.dataTransform.inbound(message.topic, message.data)
          } catch (err) {
            log('the inbound transform failed on a message from %p: %s', source, describe(err))
            return
          }
        }
        const held: HeldMessage = { raw, topic: message.topic, id, source, author: message.source }
        this.router.emit({ type: 'Message', propagationSource: source, messageId: id, message: data === message.data ? message : { ...message, data } })
        if (this.config.validateMessagesManually) {
          this.hold(idKey, held)
        } else {
          this.router.scoring?.deliver(idKey, message.topic, source.toString())
          this.router.count('messages_received', 1, { topic: message.topic })
          this.forward(idKey, held)
        }
        break
      }
      case 'Rejected': {
        log('rejected a message from %p: %s', outcome.source, outcome.reason)
        const topic = outcome.raw.topic
        if (outcome.idKey != null && topic != null) this.router.scoring?.reject(outcome.idKey, topic, outcome.source.toString())
        else this.router.scoring?.rejectUnrecorded(topic, outcome.source.toString())
        this.router.holdIfGraylisted(outcome.source.toString())
        this.router.count('messages_invalid', 1, { reason: outcome.reason })
        this.router.emit({ type: 'InvalidMessage', peerId: outcome.source, reason: outcome.reason, error: outcome.error })
        break
      }
      case 'Ignored':
        this.router.promises.deliver(messageIdKey(outcome.id))
        if (outcome.idKey != null) this.router.scoring?.ignore(outcome.idKey)
        this.router.count('messages_ignored', 1, undefined)
        break
    }
  }

  private hold (idKey: string, message: HeldMessage): void {
    this.held.set(idKey, message)
    while (this.held.size > this.config.maxPendingValidations) {
      const oldest = this.held.keys().next().value as string
      this.held.delete(oldest)
      log('too many messages wait for the application\'s validation; dropping the oldest')
    }
  }

  /**
   * A first copy of a message of one of our topics whose payload is at least
   * `idontwantMessageThreshold`: tell our v1.2 mesh peers (except its source) not to send it,
   * before it is validated (gossipsub v1.2).
   */
  private announceDontWant (id: MessageId, raw: RawMessage, topic: TopicHash, source: PeerId): void {
    if ((raw.data?.byteLength ?? 0) < this.config.idontwantMessageThreshold) return
    const members = this.router.mesh.get(topic)
    if (members == null) return
    const sourceKey = source.toString()
    for (const key of members) {
      const peer = this.router.peers.get(key)
      if (key !== sourceKey && peer != null && features.idontwant(this.router.protocolOf(peer))) this.router.idontwant(key, id)
    }
    this.router.flush()
  }

  /**
   * Cache a valid message and send it, framed once, to the mesh, floodsub and explicit peers
   * of its topic, except its source, its author and peers that asked not to get it.
   */
  private forward (idKey: string, message: HeldMessage): void {
    const { raw, topic, id, source, author } = message
    const router = this.router
    const frame = encodeFrame(encodeRpc({ publish: [raw] }))
    router.mcache.put(idKey, { id, topic, frame })
    const members = router.mesh.get(topic)
    if (members == null) return
    const sourceKey = source.toString()
    const authorKey = author?.toString()
    let forwarded = 0
    let unwanted = 0
    let echoes = 0
    for (const peer of router.peers.values()) {
      if (peer.key === sourceKey || peer.key === authorKey || !peer.topics.has(topic)) continue
      const protocol = router.protocolOf(peer)
      const wanted = members.has(peer.key) ||
        ((features.floodsub(protocol) || router.explicit.has(peer.key)) && router.score(peer.key) >= router.thresholds.publish)
      if (!wanted) continue
      if (peer.dontSend.has(idKey)) {
        unwanted++
        continue
      }
      if (peer.heard.has(idKey)) {
        echoes++
        continue
      }
      // With its id: dropped from the queue if the peer says IDONTWANT, or its own copy
      // arrives, before it is written.
      router.sendFrame(peer, frame, 'low', idKey)
      forwarded++
    }
    if (forwarded > 0) router.count('messages_forwarded', forwarded, { topic })
    if (unwanted > 0) router.count('messages_unwanted', unwanted, { stage: 'send' })
    if (echoes > 0) router.count('messages_echoes', echoes, undefined)
  }

  /**
   * Who gets our own message on `topic`: with flood publishing, every peer of the topic at or
   * above the publish threshold; otherwise the mesh (or the fanout, made on demand), plus
   * floodsub and explicit peers of the topic.
   */
  private publishRecipients (topic: TopicHash): PeerState[] {
    const router = this.router
    const inTopic = [...router.peers.values()].filter(p => p.topics.has(topic) && p.connections.length > 0)
    if (this.config.floodPublish) return inTopic.filter(p => router.explicit.has(p.key) || router.score(p.key) >= router.thresholds.publish)
    let members = router.mesh.get(topic)
    if (members == null) {
      members = router.fanout.get(topic)
      if (members == null) {
        const candidates = router.meshCandidates(topic).filter(p => router.score(p.key) >= router.thresholds.publish)
        members = new Set(shuffle(candidates, router.random).slice(0, this.config.meshN).map(p => p.key))
        router.fanout.set(topic, members)
        for (const key of members) router.recheckKeepAlive(key)
      }
    }
    const chosen = members
    return inTopic.filter(p => chosen.has(p.key) || router.explicit.has(p.key) ||
      (features.floodsub(router.protocolOf(p)) && router.score(p.key) >= router.thresholds.publish))
  }

  /** Our subscription to `topic` changed: the keep-alive answer of its subscribers may have. */
  private recheckSubscribers (topic: TopicHash): void {
    for (const peer of this.router.peers.values()) if (peer.topics.has(topic)) this.router.recheckKeepAlive(peer.key)
  }

  private announce (topic: TopicHash, subscribe: boolean): void {
    const frame = encodeFrame(encodeRpc({ subscriptions: [{ subscribe, topicid: topic }] }))
    for (const peer of this.router.peers.values()) {
      for (const connection of peer.connections) {
        this.router.sendOn(peer, connection, frame)
      }
    }
  }

  private peer (peerId: PeerId): PeerState {
    const key = peerId.toString()
    let peer = this.router.peers.get(key)
    if (peer == null) {
      peer = { peerId, key, connections: [], topics: new Set(), controlRpcs: 0, iasked: 0, iaskedBytes: 0, idontwantIds: 0, idontwantBytes: 0, subscribeOffers: 0, dontSend: new Map(), heard: new RecentIds(), keepAlive: false, held: false }
      this.router.peers.set(key, peer)
    }
    return peer
  }

  private dropConnection (peerId: PeerId, connectionId: ConnectionId): void {
    const key = peerId.toString()
    const peer = this.router.peers.get(key)
    if (peer == null) return
    const index = peer.connections.findIndex(c => c.id === connectionId)
    if (index >= 0) peer.connections.splice(index, 1)
    if (peer.connections.length > 0) return
    this.router.peers.delete(key)
    this.router.dropPending(key)
    for (const topic of this.router.mesh.keys()) this.router.removeFromMesh(topic, key)
    for (const members of this.router.fanout.values()) members.delete(key)
    this.router.scoring?.removePeer(key)
  }

  private peerIds (keys: Iterable<string>): PeerId[] {
    const result: PeerId[] = []
    for (const key of keys) {
      const peer = this.router.peers.get(key)
      if (peer != null) result.push(peer.peerId)
    }
    return result
  }
}

/** The IP of `address`, if it has one. */
function ipsOf (address: Multiaddr): string[] {
  for (const component of address.getComponents()) {
    if ((component.name === 'ip4' || component.name === 'ip6') && component.value != null) return [component.value]
  }
  return []
}
