/**
 * The identify message (libp2p identify spec), encoded with protobufjs. Field numbers are
 * normative.
 *
 * @module
 */
import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import protobuf from 'protobufjs'
import { PeerswarmError } from '../../core/errors.js'
import type { PeerId, PublicKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const IdentifyMessage = new protobuf.Type('Identify')
  .add(new protobuf.Field('publicKey', 1, 'bytes'))
  .add(new protobuf.Field('listenAddrs', 2, 'bytes', 'repeated'))
  .add(new protobuf.Field('protocols', 3, 'string', 'repeated'))
  .add(new protobuf.Field('observedAddr', 4, 'bytes'))
  .add(new protobuf.Field('protocolVersion', 5, 'string'))
  .add(new protobuf.Field('agentVersion', 6, 'string'))
  .add(new protobuf.Field('signedPeerRecord', 8, 'bytes'))
new protobuf.Root().add(IdentifyMessage)

interface RawIdentify {
  publicKey?: Uint8Array
  listenAddrs?: Uint8Array[]
  protocols?: string[]
  observedAddr?: Uint8Array
  protocolVersion?: string
  agentVersion?: string
}

/** What a peer says about itself. */
export interface Info {
  /** The peer's public key (its peer id derives from it). */
  readonly publicKey: PublicKey
  /** e.g. `ipfs/0.1.0`. */
  readonly protocolVersion: string
  /** e.g. `peerswarm/0.1.0` or `js-libp2p/3.3.11`. */
  readonly agentVersion: string
  /** The addresses it listens on (unparsable ones are dropped). */
  readonly listenAddrs: readonly Multiaddr[]
  /** The protocols it supports. */
  readonly protocols: readonly string[]
  /** Our address as the peer sees it, if it said. */
  readonly observedAddr?: Multiaddr
}

/**
 * A received identify message was malformed, or did not match the connection's peer.
 *
 * @group Errors
 */
export class InvalidIdentifyError extends PeerswarmError {
  constructor (message: string, cause?: unknown) {
    super('ERR_INVALID_IDENTIFY', message, { cause })
  }
}

/** Encode `info` as an identify message. */
export function encodeInfo (info: Info): Uint8Array {
  const raw: RawIdentify = {
    publicKey: publicKeyToProtobuf(info.publicKey),
    listenAddrs: info.listenAddrs.map(a => a.bytes),
    protocols: [...info.protocols],
    protocolVersion: info.protocolVersion,
    agentVersion: info.agentVersion
  }
  if (info.observedAddr != null) raw.observedAddr = info.observedAddr.bytes
  return IdentifyMessage.encode(IdentifyMessage.fromObject(raw)).finish()
}

/**
 * Decode an identify message from `expected`. Throws `InvalidIdentifyError` if it is malformed,
 * has no public key, or its key is not `expected`'s.
 */
export function decodeInfo (bytes: Uint8Array, expected: PeerId): Info {
  let raw: RawIdentify
  try {
    raw = IdentifyMessage.toObject(IdentifyMessage.decode(bytes), { defaults: false }) as RawIdentify
  } catch (err) {
    throw new InvalidIdentifyError('malformed identify message', err)
  }
  if (raw.publicKey == null) throw new InvalidIdentifyError('identify message without a public key')
  let publicKey: PublicKey
  try {
    publicKey = publicKeyFromProtobuf(raw.publicKey)
  } catch (err) {
    throw new InvalidIdentifyError('identify message with an invalid public key', err)
  }
  if (!peerIdFromPublicKey(publicKey).equals(expected)) {
    throw new InvalidIdentifyError(`identify message is signed by another key than ${expected.toString()}'s`)
  }
  return {
    publicKey,
    protocolVersion: raw.protocolVersion ?? '',
    agentVersion: raw.agentVersion ?? '',
    listenAddrs: (raw.listenAddrs ?? []).flatMap(parseAddress),
    protocols: raw.protocols ?? [],
    observedAddr: raw.observedAddr == null ? undefined : parseAddress(raw.observedAddr)[0]
  }
}

function parseAddress (bytes: Uint8Array): Multiaddr[] {
  try {
    return [multiaddr(bytes)]
  } catch {
    return []
  }
}
