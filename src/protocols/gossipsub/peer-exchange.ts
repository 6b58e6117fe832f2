/**
 * Peer exchange (gossipsub v1.1): a PRUNE may name other peers of the topic, each with its
 * signed peer record (an RFC 0002 envelope of a `libp2p-peer-record`), so that the pruned
 * peer can find another mesh.
 *
 * 1. Records reach us through PX itself and through `PeerRecords.add` (the application, or
 *    identify, hands them over); they are kept per peer, newest sequence number, bounded;
 * 2. `open(info)` checks a received entry: the envelope's signature, its payload type, and
 *    that the record names the peer the entry names (as go's `pxConnect`); entries that fail
 *    are skipped, never trusted.
 *
 * @module
 */
import { peerIdFromMultihash, peerIdFromPrivateKey } from '@libp2p/peer-id'
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import * as Digest from 'multiformats/hashes/digest'
import { PeerswarmError } from '../../core/errors.js'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** A peer named in a PRUNE, with the addresses its signed record proved (if it had one). */
export interface ExchangedPeer {
  readonly peerId: PeerId
  readonly addresses: readonly Multiaddr[]
  /** The envelope, to pass on in our own PX. */
  readonly record?: Uint8Array
}

/** Signed peer records we can pass on, per peer id string; the oldest go beyond `max`. */
export class PeerRecords {
  private readonly records = new Map<string, { readonly seq: bigint, readonly envelope: Uint8Array }>()

  constructor (private readonly max = 1_024) {}

  /** The envelope of `peer`, if known. */
  get (peer: string): Uint8Array | undefined {
    return this.records.get(peer)?.envelope
  }

  /** Keep `envelope` (already verified) as `peer`'s record unless a newer one is held. */
  set (peer: string, seq: bigint, envelope: Uint8Array): void {
    const current = this.records.get(peer)
    if (current != null && current.seq >= seq) return
    this.records.delete(peer)
    // A record from a PRUNE is a view into the RPC's frame (up to `maxTransmitSize`): kept for
    // long, it must not keep the frame.
    this.records.set(peer, { seq, envelope: envelope.byteLength < envelope.buffer.byteLength ? envelope.slice() : envelope })
    while (this.records.size > this.max) this.records.delete(this.records.keys().next().value as string)
  }

  /** Verify `envelope` and keep it; resolves to the peer it is for, or rejects. */
  async add (envelope: Uint8Array): Promise<ExchangedPeer> {
    const opened = await openRecord(envelope)
    this.set(opened.peerId.toString(), opened.seq, envelope)
    return opened
  }
}

/**
 * A PX entry or a signed peer record is malformed, forged, or names another peer.
 *
 * @group Errors
 */
export class InvalidPeerRecordError extends PeerswarmError {
  constructor (message: string, cause?: unknown) {
    super('ERR_INVALID_PEER_RECORD', message, { cause })
  }
}

/** Run `fn`; any failure becomes an `InvalidPeerRecordError` saying `what` failed. */
async function invalidAs<T> (what: string, fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof InvalidPeerRecordError) throw err
    throw new InvalidPeerRecordError(`${what}: ${err instanceof Error ? err.message : String(err)}`, err)
  }
}

/** Verify a signed peer record envelope; rejects with `InvalidPeerRecordError` if it is malformed or forged. */
async function openRecord (envelope: Uint8Array): Promise<ExchangedPeer & { readonly seq: bigint }> {
  const opened = await invalidAs('malformed or forged envelope', async () => RecordEnvelope.openAndCertify(envelope, PeerRecord.DOMAIN))
  if (!equalBytes(opened.payloadType, PeerRecord.CODEC)) throw new InvalidPeerRecordError('the envelope does not hold a peer record')
  const record = await invalidAs('malformed peer record', () => PeerRecord.createFromProtobuf(opened.payload))
  // The record must be signed by the peer it describes.
  const signer = await invalidAs('unusable signing key', () => peerIdFromPublicKeyBytes(opened))
  if (!record.peerId.equals(signer)) throw new InvalidPeerRecordError('the record is signed by another peer')
  return { peerId: record.peerId, addresses: record.multiaddrs, record: envelope, seq: record.seqNumber }
}

/**
 * Check a PX entry: its peer id, and its record if it has one (which must name the same
 * peer). Rejects with `InvalidPeerRecordError` when the entry is unusable.
 */
export async function openExchangedPeer (info: { readonly peerID?: Uint8Array, readonly signedPeerRecord?: Uint8Array }): Promise<ExchangedPeer & { readonly seq?: bigint }> {
  if (info.peerID == null) throw new InvalidPeerRecordError('PX entry without a peer id')
  const peerID = info.peerID
  const peerId = await invalidAs('invalid peer id in a PX entry', () => peerIdFromMultihash(Digest.decode(peerID)))
  if (info.signedPeerRecord == null) return { peerId, addresses: [] }
  const opened = await openRecord(info.signedPeerRecord)
  if (!opened.peerId.equals(peerId)) throw new InvalidPeerRecordError('the PX record is for another peer than its entry')
  return opened
}

/** Our own signed peer record with `addresses`, to give to peers (e.g. through identify). */
export async function signPeerRecord (key: PrivateKey, addresses: Multiaddr[], seqNumber = BigInt(Date.now())): Promise<Uint8Array> {
  const record = new PeerRecord({ peerId: peerIdFromPrivateKey(key), multiaddrs: addresses, seqNumber })
  const envelope = await RecordEnvelope.seal(record, key)
  return envelope.marshal()
}

function peerIdFromPublicKeyBytes (envelope: RecordEnvelope): PeerId {
  return peerIdFromMultihash(envelope.publicKey.toMultihash())
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i])
}
