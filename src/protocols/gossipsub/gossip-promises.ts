/**
 * Gossip promises (gossipsub v1.1 spec, "Spam Protection Measures"): a peer that advertised a
 * message by IHAVE and was asked for it by IWANT promised to deliver it.
 *
 * 1. `add(peer, ids, expires)` records one promise per IWANT (as go, one random id of it
 *    stands for the whole request);
 * 2. `deliver(idKey)` fulfils every promise for a message that arrived, from whoever;
 * 3. `brokenPromises()`, at each heartbeat, counts and forgets the promises that expired
 *    unfulfilled, per peer: the scoring's behaviour penalty (P7) takes them from there.
 *
 * @module
 */

/** Outstanding promises by message id key, then by peer. */
export class GossipPromises {
  private readonly promises = new Map<string, Map<string, number>>()

  constructor (
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random
  ) {}

  /** How many messages are promised. */
  get size (): number {
    return this.promises.size
  }

  /** Whether some peer promised `idKey`. */
  has (idKey: string): boolean {
    return this.promises.has(idKey)
  }

  /** `peer` promised one of `idKeys` (a random one is tracked) until `expires`. */
  add (peer: string, idKeys: readonly string[], expires: number): void {
    if (idKeys.length === 0) return
    const idKey = idKeys[Math.floor(this.random() * idKeys.length)]
    let peers = this.promises.get(idKey)
    if (peers == null) this.promises.set(idKey, peers = new Map())
    if (!peers.has(peer)) peers.set(peer, expires)
  }

  /** The message arrived: every promise of it is kept. */
  deliver (idKey: string): void {
    this.promises.delete(idKey)
  }

  /** Count and forget the expired promises, per peer. */
  brokenPromises (): Map<string, number> {
    const now = this.now()
    const broken = new Map<string, number>()
    for (const [idKey, peers] of this.promises) {
      for (const [peer, expires] of peers) {
        if (expires > now) continue
        broken.set(peer, (broken.get(peer) ?? 0) + 1)
        peers.delete(peer)
      }
      if (peers.size === 0) this.promises.delete(idKey)
    }
    return broken
  }
}
