import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { expect } from 'chai'
import { publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { generateKeypair, peerIdOf, pubsub } from '../../src/index.js'
import type { PeerId } from '@libp2p/interface'

const { decodeRpc, encodeRpc, encodeFrame, FrameDecoder, FrameTooLargeError, InvalidRpcError, MessageAuthor, MessageChecker, MessageAuthenticity, InvalidMessageError, SeenCache, IdentTopic, Sha256Topic, SeqnoGenerator, authorSeqnoId, InboundPipeline, messageIdKey } = pubsub
const text = (s: string) => new TextEncoder().encode(s)

function rejection (fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return err instanceof InvalidMessageError ? err.reason : `other: ${String(err)}`
  }
  return undefined
}

describe('pubsub RPC codec', () => {
  it('round-trips subscriptions, messages and control, keeping field presence', () => {
    const rpc = {
      subscriptions: [{ subscribe: true, topicid: 'a' }, { subscribe: false, topicid: 'b' }],
      publish: [{ data: new Uint8Array(0), topic: 't' }, { from: text('f'), data: text('x'), seqno: new Uint8Array(8), topic: 'u', signature: text('s'), key: text('k') }],
      control: { graft: [{ topicID: 'g' }], prune: [{ topicID: 'p', backoff: 60 }], ihave: [{ topicID: 'h', messageIDs: [text('m1')] }] }
    }
    const decoded = decodeRpc(encodeRpc(rpc))
    expect(decoded.subscriptions).to.deep.equal(rpc.subscriptions)
    expect(decoded.publish?.[0]).to.have.property('data').that.has.length(0)
    expect(decoded.publish?.[0]).to.not.have.property('from')
    expect(Buffer.from(decoded.publish?.[1].signature ?? [])).to.deep.equal(Buffer.from('s'))
    expect(decoded.control?.prune?.[0].backoff).to.equal(60)
    expect(decoded.control?.graft).to.deep.equal([{ topicID: 'g' }])
  })

  it('encodes message fields in ascending field order', () => {
    const bytes = pubsub.encodeMessage({ topic: 't', data: text('d'), from: text('f'), seqno: new Uint8Array([1]) })
    expect(Buffer.from(bytes).toString('hex')).to.equal('0a0166' + '120164' + '1a0101' + '220174')
  })

  it('skips unknown fields (go sends partial-message flags in every subscription)', () => {
    // SubOpts { subscribe: true, topicid: "a", requestsPartial (3): false, supportsSendingPartial (4): false } and RPC field 10.
    const subOpts = [0x08, 0x01, 0x12, 0x01, 0x61, 0x18, 0x00, 0x20, 0x00]
    const bytes = new Uint8Array([0x0a, subOpts.length, ...subOpts, 0x52, 0x00])
    expect(decodeRpc(bytes).subscriptions).to.deep.equal([{ subscribe: true, topicid: 'a' }])
  })

  it('rejects truncated input and wrong wire types with InvalidRpcError', () => {
    expect(() => decodeRpc(new Uint8Array([0x0a, 0x05, 0x08])), 'truncated field').to.throw(InvalidRpcError)
    expect(() => decodeRpc(new Uint8Array([0x0a, 0xff])), 'truncated varint').to.throw(InvalidRpcError)
    // Field 1 (subscriptions, a message) sent as a 64-bit value.
    expect(() => decodeRpc(new Uint8Array([0x09, 1, 2, 3, 4, 5, 6, 7, 8])), '64-bit subscriptions').to.throw(InvalidRpcError)
    // SubOpts.topicid (a string) sent as a varint.
    expect(() => decodeRpc(new Uint8Array([0x0a, 0x02, 0x10, 0x01])), 'varint topic').to.throw(InvalidRpcError)
  })

  it('decodes control messages in a process that has encoded nothing yet', () => {
    // A fresh process: the first RPC a node receives may carry a GRAFT before it has sent any.
    // RPC { control { graft { topicID: "t" } } }
    const script = `import { decodeRpc } from './src/protocols/pubsub/rpc.ts'
      console.log(JSON.stringify(decodeRpc(Uint8Array.from([0x1a, 0x05, 0x1a, 0x03, 0x0a, 0x01, 0x74]))))`
    const output = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' })
    expect(JSON.parse(output)).to.deep.equal({ control: { graft: [{ topicID: 't' }] } })
  })
})

describe('pubsub framing', () => {
  it('prefixes frames with a minimal uvarint length', () => {
    expect(Array.from(encodeFrame(new Uint8Array(3)))).to.deep.equal([3, 0, 0, 0])
    expect(Array.from(encodeFrame(new Uint8Array(300)).subarray(0, 2))).to.deep.equal([0xac, 0x02])
  })

  it('reassembles frames split across chunks and skips empty frames', () => {
    const decoder = new FrameDecoder(1024)
    const bytes = new Uint8Array([...encodeFrame(text('hello')), 0, ...encodeFrame(text('world'))])
    const frames = [...decoder.decode(bytes.subarray(0, 3)), ...decoder.decode(bytes.subarray(3))]
    expect(frames.map(f => new TextDecoder().decode(f))).to.deep.equal(['hello', 'world'])
  })

  it('decodes a chunk of many frames that together exceed the frame limit, split at every byte', () => {
    const frames = Array.from({ length: 5 }, (_, i) => encodeFrame(new Uint8Array(600).fill(i)))
    const bytes = new Uint8Array(frames.flatMap(f => [...f]))
    for (let cut = 0; cut <= bytes.byteLength; cut += 7) {
      const decoder = new FrameDecoder(1024)
      const decoded = [...decoder.decode(bytes.subarray(0, cut)), ...decoder.decode(bytes.subarray(cut))]
      expect(decoded.map(f => f[0])).to.deep.equal([0, 1, 2, 3, 4])
    }
  })

  it('refuses a frame announced over the limit before its bytes arrive', () => {
    const decoder = new FrameDecoder(1024)
    expect(() => [...decoder.decode(new Uint8Array([0x81, 0x08]))]).to.throw(FrameTooLargeError)
  })

  it('refuses an endless length prefix without buffering it', () => {
    const decoder = new FrameDecoder(1024)
    expect(() => { for (let i = 0; i < 200; i++) [...decoder.decode(new Uint8Array(16).fill(0xff))] }).to.throw(FrameTooLargeError)
  })
})

describe('pubsub message signing', () => {
  let key: Awaited<ReturnType<typeof generateKeypair>>
  let other: Awaited<ReturnType<typeof generateKeypair>>
  before(async () => { [key, other] = await Promise.all([generateKeypair(), generateKeypair()]) })

  function signed (data = text('hi')) {
    const built = new MessageAuthor(MessageAuthenticity.signed(key)).build('t', data, 7n)
    if (built.complete instanceof Promise) throw new Error('Ed25519 signs synchronously')
    return built.complete
  }

  it('StrictSign: builds from, 8-byte seqno and signature; verifies; refuses forgeries', () => {
    const message = signed()
    expect(message.seqno).to.have.length(8)
    expect(message.key, 'Ed25519 keys are inlined in the peer id').to.equal(undefined)
    const checker = new MessageChecker('StrictSign')
    const { author } = checker.check(message)
    expect(author?.equals(peerIdOf(key))).to.equal(true)
    expect(checker.verify(message, author as PeerId)).to.equal(true)
    expect(checker.verify({ ...message, data: text('forged') }, author as PeerId)).to.equal(false)
    expect(checker.verify({ ...message, seqno: new Uint8Array(8) }, author as PeerId)).to.equal(false)
  })

  it('StrictSign: messages of every size in turn sign and verify (the signed bytes share one scratch array; nothing of one leaks into the next)', () => {
    const checker = new MessageChecker('StrictSign')
    // Growing, shrinking, past the scratch's 1 MiB cap and back.
    for (const [i, size] of [10, 5_000, 600_000, 100, 2_000_000, 3_000, 1_100_000, 40].entries()) {
      const data = new Uint8Array(size).fill(i + 1)
      const message = signed(data)
      const author = checker.check(message).author as PeerId
      expect(checker.verify(message, author), `size ${size}`).to.equal(true)
      const tampered = data.slice()
      tampered[size - 1] ^= 1
      expect(checker.verify({ ...message, data: tampered }, author), `size ${size}, tampered`).to.equal(false)
      // Shorter than the previous message: the scratch's stale tail must not count.
      expect(checker.verify({ ...message, data: data.subarray(0, size - 1) }, author), `size ${size}, truncated`).to.equal(false)
    }
  })

  it('StrictSign: names what is missing or wrong', () => {
    const checker = new MessageChecker('StrictSign')
    const message = signed()
    expect(rejection(() => checker.check({ ...message, signature: undefined }))).to.equal('MissingSignature')
    expect(rejection(() => checker.check({ ...message, from: undefined }))).to.equal('MissingAuthor')
    expect(rejection(() => checker.check({ ...message, from: text('not a peer id') }))).to.equal('InvalidAuthor')
    expect(rejection(() => checker.check({ ...message, seqno: new Uint8Array(20) }))).to.equal('InvalidSeqno')
    expect(rejection(() => checker.check({ ...message, seqno: new Uint8Array(0) }))).to.equal('InvalidSeqno')
    // js-libp2p floodsub sends 7-byte seqnos when the top byte is zero.
    expect(rejection(() => checker.check({ ...message, seqno: new Uint8Array(7).fill(1) }))).to.equal(undefined)
    expect(rejection(() => checker.check({ ...message, topic: undefined }))).to.equal('MissingTopic')
    const withForeignKey = { ...message, key: publicKeyToProtobuf(other.publicKey) }
    expect(rejection(() => checker.verify(withForeignKey, peerIdOf(key)))).to.equal('KeyMismatch')
  })

  it('StrictNoSign: builds none of the author fields and refuses messages that carry them', () => {
    const built = new MessageAuthor(MessageAuthenticity.anonymous()).build('t', text('hi'), 1n)
    expect(built.complete).to.deep.equal({ data: text('hi'), topic: 't' })
    const checker = new MessageChecker('StrictNoSign')
    expect(rejection(() => checker.check({ data: text('x'), topic: 't' }))).to.equal(undefined)
    expect(rejection(() => checker.check(signed()))).to.equal('UnexpectedSignature')
    expect(rejection(() => checker.check({ data: text('x'), topic: 't', seqno: new Uint8Array(8) }))).to.equal('UnexpectedAuthInfo')
  })
})

describe('pubsub receive pipeline', () => {
  async function setup () {
    const [author, local, relay] = await Promise.all([generateKeypair(), generateKeypair(), generateKeypair()])
    let verifications = 0
    class CountingChecker extends MessageChecker {
      override verify (message: pubsub.RawMessage, author: PeerId): boolean | Promise<boolean> {
        verifications++
        return super.verify(message, author)
      }
    }
    const outcomes: pubsub.Outcome[] = []
    const validators = new Map<string, pubsub.Validator>()
    const pipeline = new InboundPipeline({
      checker: new CountingChecker('StrictSign'),
      seen: new SeenCache(60_000, 1000),
      messageId: authorSeqnoId,
      fastIdKey: pubsub.rawAuthorSeqnoKey,
      validators,
      localPeerId: peerIdOf(local),
      onOutcome: (o) => outcomes.push(o)
    })
    const build = (data: string, key = author, seqno = 1n) => {
      const built = new MessageAuthor(MessageAuthenticity.signed(key)).build('t', text(data), seqno)
      return built.complete as pubsub.RawMessage
    }
    return { pipeline, outcomes, validators, build, relay: peerIdOf(relay), local, verifications: () => verifications }
  }

  it('verifies only the first copy of a message and drops the others as duplicates', async () => {
    const { pipeline, outcomes, build, relay, verifications } = await setup()
    const message = build('once')
    for (let i = 0; i < 5; i++) pipeline.process(message, relay)
    expect(outcomes.map(o => o.type)).to.deep.equal(['Accepted'])
    expect(verifications()).to.equal(1)
    expect(pipeline.duplicates).to.equal(4)
  })

  it('does not let a forged first copy block the honest one', async () => {
    const { pipeline, outcomes, build, relay } = await setup()
    const honest = build('real')
    pipeline.process({ ...honest, data: text('forged') }, relay)
    pipeline.process(honest, relay)
    expect(outcomes.map(o => o.type === 'Rejected' ? `Rejected:${o.reason}` : o.type)).to.deep.equal(['Rejected:InvalidSignature', 'Accepted'])
  })

  it('rejects a message in our own name that comes from a remote', async () => {
    const { pipeline, outcomes, build, relay, local } = await setup()
    pipeline.process(build('me', local), relay)
    expect(outcomes[0]).to.include({ type: 'Rejected', reason: 'SelfOrigin' })
  })

  it('applies sync and async validators: accept, reject, ignore', async () => {
    const { pipeline, outcomes, validators, build, relay } = await setup()
    validators.set('t', async (message) => {
      await Promise.resolve()
      const data = new TextDecoder().decode(message.data)
      return data === 'good' ? 'accept' : data === 'bad' ? 'reject' : 'ignore'
    })
    pipeline.process(build('good', undefined, 1n), relay)
    pipeline.process(build('bad', undefined, 2n), relay)
    pipeline.process(build('meh', undefined, 3n), relay)
    await new Promise(resolve => setTimeout(resolve, 10))
    expect(outcomes.map(o => o.type === 'Rejected' ? `Rejected:${o.reason}` : o.type)).to.deep.equal(['Accepted', 'Rejected:ValidationFailed', 'Ignored'])
  })
})

describe('pubsub seen cache, topics and ids', () => {
  it('forgets ids after the TTL and keeps at most maxEntries', () => {
    let now = 0
    const cache = new SeenCache(1_000, 3, () => now)
    expect(cache.add('a')).to.equal(true)
    expect(cache.add('a')).to.equal(false)
    now = 999
    expect(cache.has('a')).to.equal(true)
    now = 1_000
    expect(cache.has('a')).to.equal(false)
    for (const id of ['b', 'c', 'd', 'e']) cache.add(id)
    expect(cache.size).to.equal(3)
    expect(cache.has('b')).to.equal(false)
    expect(cache.has('e')).to.equal(true)
  })

  it('hashes topics as their name (IdentTopic) or as rust-libp2p does (Sha256Topic)', () => {
    expect(new IdentTopic('chat').hash).to.equal('chat')
    const descriptor = Buffer.from([0x0a, 4, ...Buffer.from('test')])
    expect(new Sha256Topic('test').hash).to.equal(createHash('sha256').update(descriptor).digest('base64'))
  })

  it('numbers our messages with increasing 8-byte seqnos and ids them as from ‖ seqno', async () => {
    const seqnos = new SeqnoGenerator(() => 1_700_000_000_000)
    const first = seqnos.next()
    expect(seqnos.next()).to.equal(first + 1n)
    expect(first).to.equal(1_700_000_000_000n * 1_000_000n + 1n)
    const peer = peerIdOf(await generateKeypair())
    const id = authorSeqnoId({ source: peer, sequenceNumber: 258n, data: new Uint8Array(0), topic: 't' })
    expect(Buffer.from(id)).to.deep.equal(Buffer.concat([peer.toMultihash().bytes, Buffer.from([0, 0, 0, 0, 0, 0, 1, 2])]))
    expect(messageIdKey(id)).to.have.length(id.length)
    // The raw-bytes fast key is the same key, for 8-byte and for shorter (js-libp2p) seqnos.
    const from = peer.toMultihash().bytes
    expect(pubsub.rawAuthorSeqnoKey({ from, seqno: new Uint8Array([0, 0, 0, 0, 0, 0, 1, 2]) })).to.equal(messageIdKey(id))
    expect(pubsub.rawAuthorSeqnoKey({ from, seqno: new Uint8Array([1, 2]) })).to.equal(messageIdKey(id))
    expect(pubsub.rawAuthorSeqnoKey({ from })).to.equal(undefined)
    // Keys are one char per byte, distinct for distinct ids, at any length (a long `from` too).
    const long = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 7) & 0xff)
    const longKey = messageIdKey(long)
    expect(longKey).to.have.length(long.length)
    expect(Array.from(longKey, c => c.charCodeAt(0))).to.deep.equal(Array.from(long))
    const other = long.slice()
    other[9_999] ^= 1
    expect(messageIdKey(other)).to.not.equal(longKey)
    const longFrom = long.subarray(0, 200)
    const longId = Buffer.concat([longFrom, Buffer.from([0, 0, 0, 0, 0, 0, 1, 2])])
    expect(pubsub.rawAuthorSeqnoKey({ from: longFrom, seqno: new Uint8Array([1, 2]) })).to.equal(messageIdKey(longId))
  })
})
