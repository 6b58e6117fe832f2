/**
 * The message cache (gossipsub v1.0 spec, "Message Cache"): the messages of the last
 * `historyLength` heartbeats, in windows.
 *
 * 1. `put` adds a forwarded or published message to the newest window, with its frame
 *    already encoded, so answering IWANT costs no encoding;
 * 2. `getGossipIds(topic)` lists the ids of the newest `historyGossip` windows (what IHAVE
 *    advertises);
 * 3. `getForPeer(id, peer)` answers an IWANT and counts how often each peer asked, so a peer
 *    cannot make us send one message more than `gossipRetransmission` times;
 * 4. `shift()`, at the end of every heartbeat, drops the oldest window;
 * 5. past `maxBytes` of frames (64 MiB by default), the oldest messages go early.
 *
 * @module
 */
import type { MessageId } from '../pubsub/message.js'
import type { TopicHash } from '../pubsub/topic.js'

/** One cached message. */
export interface CachedMessage {
  readonly id: MessageId
  readonly topic: TopicHash
  /** The message's RPC frame, ready to send. */
  readonly frame: Uint8Array
}

interface Entry extends CachedMessage {
  /** IWANT requests per peer (made at the first request: most messages are never asked for). */
  asked?: Map<string, number>
}

/** The windows of recent messages, keyed by the message id's map key. */
export class MessageCache {
  private readonly entries = new Map<string, Entry>()
  /** Newest first; each holds the id keys put during one heartbeat. */
  private readonly windows: string[][] = [[]]
  /** The frames' bytes held. */
  private bytes = 0

  /**
   * `maxBytes`: the frames held at most, in bytes (default {@link MCACHE_MAX_BYTES}); past it
   * the oldest messages are dropped before their window ends, so that a flood of large valid
   * messages cannot make the cache hold `historyLength` heartbeats of it.
   */
  constructor (
    private readonly historyLength: number,
    private readonly historyGossip: number,
    private readonly maxBytes = MCACHE_MAX_BYTES
  ) {}

  /** How many messages are held. */
  get size (): number {
    return this.entries.size
  }

  /** The bytes of the frames held. */
  get byteLength (): number {
    return this.bytes
  }

  /** Add a message; false if it is already there. */
  put (idKey: string, message: CachedMessage): boolean {
    if (this.entries.has(idKey)) return false
    this.entries.set(idKey, { id: message.id, topic: message.topic, frame: message.frame })
    this.windows[0].push(idKey)
    this.bytes += message.frame.byteLength
    // Over the byte bound: the oldest entries go (insertion order is age order).
    if (this.bytes > this.maxBytes) {
      for (const [key, entry] of this.entries) {
        if (this.bytes <= this.maxBytes || key === idKey) break
        this.remove(key, entry)
      }
    }
    return true
  }

  /** Whether the message is held. */
  has (idKey: string): boolean {
    return this.entries.has(idKey)
  }

  /** The message, if held. */
  get (idKey: string): CachedMessage | undefined {
    return this.entries.get(idKey)
  }

  /**
   * The message for `peer`'s IWANT, and how many times that peer has now asked for it
   * (including this time); undefined if not held.
   */
  getForPeer (idKey: string, peer: string): { readonly message: CachedMessage, readonly count: number } | undefined {
    const entry = this.entries.get(idKey)
    if (entry == null) return undefined
    entry.asked ??= new Map()
    const count = (entry.asked.get(peer) ?? 0) + 1
    entry.asked.set(peer, count)
    return { message: entry, count }
  }

  /** The ids of `topic` in the newest `historyGossip` windows, newest first. */
  getGossipIds (topic: TopicHash): MessageId[] {
    const ids: MessageId[] = []
    for (const window of this.windows.slice(0, this.historyGossip)) {
      for (const key of window) {
        const entry = this.entries.get(key)
        if (entry?.topic === topic) ids.push(entry.id)
      }
    }
    return ids
  }

  /** The topics with messages in the gossip windows. */
  gossipTopics (): Set<TopicHash> {
    const topics = new Set<TopicHash>()
    for (const window of this.windows.slice(0, this.historyGossip)) {
      for (const key of window) {
        const entry = this.entries.get(key)
        if (entry != null) topics.add(entry.topic)
      }
    }
    return topics
  }

  /** Start a new window; drop the messages of the oldest once there are `historyLength`. */
  shift (): void {
    this.windows.unshift([])
    while (this.windows.length > this.historyLength) {
      for (const key of this.windows.pop() ?? []) {
        const entry = this.entries.get(key)
        if (entry != null) this.remove(key, entry)
      }
    }
  }

  private remove (key: string, entry: Entry): void {
    this.entries.delete(key)
    this.bytes -= entry.frame.byteLength
  }
}

/**
 * The message cache's default bound in bytes: 64 MiB, five heartbeats of 100 messages of
 * 128 KiB per second. go and js bound it by heartbeats only.
 */
const MCACHE_MAX_BYTES = 64 * 1024 * 1024
