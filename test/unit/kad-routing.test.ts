/**
 * Kademlia's building blocks without a network: XOR distance and bucket placement, bucket
 * replacement with pending entries, the record store's limits and expiry, and the wire codec.
 */
import FakeTimers from '@sinonjs/fake-timers'
import { expect } from 'chai'
import { multiaddr } from '@multiformats/multiaddr'
import { ConfigError, kad } from '../../src/index.js'
import { bucketIndex, compareDistance, distance, KBucketsTable, keyOf, keyOfPeer } from '../../src/protocols/kad/kbucket.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { randomPeerId } from '../fixtures/kad-harness.js'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('kad: XOR distance and buckets', () => {
  it('keys are SHA-256 of their bytes (of the multihash for a peer id), distance is their XOR', () => {
    const peer = randomPeerId()
    expect(keyOfPeer(peer).hash).to.deep.equal(sha256(peer.toMultihash().bytes))
    const a = keyOf(bytes('a'))
    const b = keyOf(bytes('b'))
    const d = distance(a.hash, b.hash)
    expect(kad.distanceValue(a.hash, b.hash)).to.equal(BigInt('0x' + Buffer.from(d).toString('hex')))
    expect(kad.distanceValue(a.hash, a.hash)).to.equal(0n)
    // Symmetric, and the triangle equality of XOR: d(a,b) xor d(b,c) = d(a,c).
    const c = keyOf(bytes('c'))
    expect(kad.distanceValue(a.hash, b.hash)).to.equal(kad.distanceValue(b.hash, a.hash))
    expect(kad.distanceValue(a.hash, b.hash) ^ kad.distanceValue(b.hash, c.hash)).to.equal(kad.distanceValue(a.hash, c.hash))
    expect(compareDistance(a.hash, a.hash, b.hash)).to.be.below(0)
  })

  it('places a key in the bucket of the highest bit of the distance, within its range', () => {
    const local = new Uint8Array(32)
    for (let bit = 0; bit < 256; bit++) {
      const other = new Uint8Array(32)
      other[31 - Math.floor(bit / 8)] = 1 << (bit % 8)
      expect(bucketIndex(local, other)).to.equal(bit)
      const [low, high] = kad.bucketRange(bit)
      const d = kad.distanceValue(local, other)
      expect(d >= low && d <= high).to.equal(true)
    }
    expect(bucketIndex(local, local)).to.equal(-1)
    for (let i = 0; i < 200; i++) {
      const a = keyOfPeer(randomPeerId())
      const b = keyOfPeer(randomPeerId())
      const index = bucketIndex(a.hash, b.hash)
      const [low, high] = kad.bucketRange(index)
      const d = kad.distanceValue(a.hash, b.hash)
      expect(d >= low && d <= high, `bucket ${index}`).to.equal(true)
    }
  })

  it('holds at most k peers per bucket; closest() sorts the table by distance', () => {
    const local = randomPeerId()
    const table = new KBucketsTable(local, { bucketSize: 4, pendingTimeout: 1000, now: () => 0 })
    const peers = Array.from({ length: 200 }, randomPeerId)
    const byBucket = new Map<number, number>()
    for (const peer of peers) {
      const key = keyOfPeer(peer)
      const result = table.insert(key, [multiaddr('/ip4/10.0.0.1/tcp/1')], 'disconnected')
      const index = table.bucketOf(key)
      const held = byBucket.get(index) ?? 0
      expect(result.type).to.equal(held < 4 ? 'Inserted' : 'Full')
      if (held < 4) byBucket.set(index, held + 1)
    }
    expect(table.size).to.equal([...byBucket.values()].reduce((a, b) => a + b, 0))
    const target = keyOf(bytes('target')).hash
    const closest = table.closest(target)
    for (let i = 1; i < closest.length; i++) expect(compareDistance(target, closest[i - 1].key.hash, closest[i].key.hash)).to.be.below(0)
    expect(table.closest(target, 3)).to.have.length(3)
  })

  describe('a full bucket and its pending entry (rust KBucketsTable)', () => {
    let now = 0
    let table: KBucketsTable
    let full: kad.PeerKey[]
    let newcomer: kad.PeerKey
    const address = [multiaddr('/ip4/10.0.0.1/tcp/1')]

    beforeEach(() => {
      now = 0
      const local = randomPeerId()
      table = new KBucketsTable(local, { bucketSize: 3, pendingTimeout: 60_000, now: () => now })
      // Peers of the farthest bucket (255): about half of all keys.
      const local255: kad.PeerKey[] = []
      while (local255.length < 4) {
        const key = keyOfPeer(randomPeerId())
        if (table.bucketOf(key) === 255) local255.push(key)
      }
      full = local255.slice(0, 3)
      newcomer = local255[3]
      for (const key of full) expect(table.insert(key, address, 'disconnected').type).to.equal('Inserted')
    })

    it('refuses a disconnected newcomer; a connected one waits as pending for the first entry', () => {
      expect(table.insert(newcomer, address, 'disconnected').type).to.equal('Full')
      const result = table.insert(newcomer, address, 'connected')
      expect(result).to.deep.include({ type: 'Pending' })
      expect(result.type === 'Pending' && result.disconnected.id).to.equal(full[0].id)
      expect(table.getPending(newcomer)).to.not.equal(undefined)
      // Only one pending entry per bucket.
      const another = keyOfPeer(randomPeerId())
      if (table.bucketOf(another) === 255) expect(table.insert(another, address, 'connected').type).to.equal('Full')
    })

    it('replaces the least recently seen disconnected entry once the pending timeout passed', () => {
      table.insert(newcomer, address, 'connected')
      now = 59_999
      table.applyDue()
      expect(table.takeApplied()).to.equal(undefined)
      now = 60_000
      table.applyDue()
      const applied = table.takeApplied()
      expect(applied?.inserted.key.id).to.equal(newcomer.id)
      expect(applied?.evicted?.key.id).to.equal(full[0].id)
      expect(table.get(full[0])).to.equal(undefined)
      expect(table.get(newcomer)?.status).to.equal('connected')
      expect(table.size).to.equal(3)
    })

    it('keeps the first entry (and drops the pending one) when it reconnects in time', () => {
      table.insert(newcomer, address, 'connected')
      table.update(full[0], 'connected')
      now = 120_000
      table.applyDue()
      expect(table.takeApplied()).to.equal(undefined)
      expect(table.get(full[0])?.status).to.equal('connected')
      expect(table.get(newcomer)).to.equal(undefined)
    })

    it('orders entries disconnected first, least recently seen first; a bucket of connected peers takes no pending entry', () => {
      for (const key of full) table.update(key, 'connected')
      expect(table.insert(newcomer, address, 'connected').type).to.equal('Full')
      table.update(full[1], 'disconnected')
      const [bucket] = [...table.nonEmpty()]
      expect(bucket.entries.map(e => e.key.id)).to.deep.equal([full[1].id, full[0].id, full[2].id])
      expect(table.insert(newcomer, address, 'connected').type === 'Pending').to.equal(true)
    })
  })
})

describe('kad: MemoryStore (rust limits)', () => {
  let clock: ReturnType<typeof FakeTimers.install>
  beforeEach(() => { clock = FakeTimers.install({ toFake: ['Date'], now: 1_000_000 }) })
  afterEach(() => { clock.uninstall() })

  it('has rust-libp2p\'s default limits and validates them', () => {
    expect(kad.defaultMemoryStoreConfig).to.deep.equal({ maxRecords: 1024, maxValueBytes: 65 * 1024, maxProvidersPerKey: 20, maxProvidedKeys: 1024 })
    expect(() => new kad.MemoryStore(randomPeerId(), { maxRecords: 0 })).to.throw(ConfigError).with.property('field', 'maxRecords')
  })

  it('refuses records beyond maxRecords and values beyond maxValueBytes, with typed errors', () => {
    const store = new kad.MemoryStore(randomPeerId(), { maxRecords: 3, maxValueBytes: 10 })
    for (let i = 0; i < 3; i++) store.put({ key: bytes(`k${i}`), value: bytes('v') })
    expect(() => { store.put({ key: bytes('k3'), value: bytes('v') }) }).to.throw(kad.StoreError).with.property('kind', 'MaxRecords')
    // Replacing an existing key is fine when full.
    store.put({ key: bytes('k0'), value: bytes('w') })
    expect(store.get(bytes('k0'))?.value).to.deep.equal(bytes('w'))
    expect(() => { store.put({ key: bytes('k0'), value: new Uint8Array(11) }) }).to.throw(kad.StoreError).with.property('code', 'ERR_KAD_STORE_VALUE_TOO_LARGE')
    store.put({ key: bytes('k0'), value: new Uint8Array(10) })
  })

  it('expires records and provider records, and expired ones make room', () => {
    const local = randomPeerId()
    const store = new kad.MemoryStore(local, { maxRecords: 2, maxProvidedKeys: 1 })
    store.put({ key: bytes('a'), value: bytes('1'), expires: Date.now() + 1000 })
    store.put({ key: bytes('b'), value: bytes('2') })
    expect(() => { store.put({ key: bytes('c'), value: bytes('3') }) }).to.throw(kad.StoreError)
    clock.tick(1000)
    expect(store.get(bytes('a'))).to.equal(undefined)
    store.put({ key: bytes('c'), value: bytes('3') })
    const other = randomPeerId()
    store.addProvider({ key: bytes('p'), provider: other, addresses: [], expires: Date.now() + 500 })
    expect(store.providers(bytes('p'))).to.have.length(1)
    expect(() => { store.addProvider({ key: bytes('q'), provider: other, addresses: [] }) }).to.throw(kad.StoreError).with.property('kind', 'MaxProvidedKeys')
    clock.tick(500)
    expect(store.providers(bytes('p'))).to.have.length(0)
    store.addProvider({ key: bytes('q'), provider: local, addresses: [] })
    expect([...store.provided()].map(p => Buffer.from(p.key).toString())).to.deep.equal(['q'])
    store.removeProvider(bytes('q'), local)
    expect([...store.provided()]).to.have.length(0)
  })

  it('keeps at most maxProvidersPerKey providers of a key; a known provider is refreshed', () => {
    const store = new kad.MemoryStore(randomPeerId(), { maxProvidersPerKey: 3 })
    const providers = Array.from({ length: 5 }, randomPeerId)
    for (const provider of providers) store.addProvider({ key: bytes('k'), provider, addresses: [] })
    expect(store.providers(bytes('k')).map(p => p.provider.toString())).to.deep.equal(providers.slice(0, 3).map(p => p.toString()))
    store.addProvider({ key: bytes('k'), provider: providers[0], addresses: [multiaddr('/ip4/10.0.0.1/tcp/1')] })
    expect(store.providers(bytes('k'))[0].addresses).to.have.length(1)
  })
})

describe('kad: the wire message', () => {
  it('round-trips every field, rust\'s private record fields included', () => {
    const peer = randomPeerId()
    const message: kad.Message = {
      type: 'GET_VALUE',
      key: bytes('/v/key'),
      record: { key: bytes('/v/key'), value: bytes('value'), timeReceived: '2026-12-06T07:10:00.123000000Z', publisher: peer.toMultihash().bytes, ttl: 3600 },
      closerPeers: [{ id: peer, addrs: [multiaddr('/ip4/127.0.0.1/tcp/4001')], connection: 'CONNECTED' }],
      providerPeers: [{ id: randomPeerId(), addrs: [], connection: 'NOT_CONNECTED' }],
      clusterLevelRaw: 9
    }
    const decoded = kad.decodeMessage(kad.encodeMessage(message))
    expect(decoded.type).to.equal('GET_VALUE')
    expect(decoded.record).to.deep.equal(message.record)
    expect(decoded.closerPeers[0].id.equals(peer)).to.equal(true)
    expect(decoded.closerPeers[0].addrs.map(String)).to.deep.equal(['/ip4/127.0.0.1/tcp/4001'])
    expect(decoded.closerPeers[0].connection).to.equal('CONNECTED')
    expect(decoded.providerPeers).to.have.length(1)
    expect(decoded.clusterLevelRaw).to.equal(9)
  })

  it('reads a missing type as PUT_VALUE (proto3 leaves the zero value out) and skips unknown fields', () => {
    const encoded = kad.encodeMessage({ type: 'PUT_VALUE', key: bytes('k'), record: { key: bytes('k'), value: bytes('v') }, closerPeers: [], providerPeers: [] })
    expect(encoded[0]).to.equal(2 << 3 | 2)
    // An unknown varint field 12 and an unknown bytes field 13 after the rest.
    const extended = new Uint8Array([...encoded, 12 << 3 | 0, 7, 13 << 3 | 2, 2, 1, 2])
    expect(kad.decodeMessage(extended).type).to.equal('PUT_VALUE')
  })

  it('strips our own /p2p/ suffix, drops addresses naming another peer, peers with bad ids, and keeps within the bounds', () => {
    const peer = randomPeerId()
    const other = randomPeerId()
    const many = Array.from({ length: 300 }, (_, i) => ({ id: randomPeerId(), addrs: Array.from({ length: 50 }, (_, j) => multiaddr(`/ip4/10.0.${i % 250}.${j + 1}/tcp/1`)), connection: 'NOT_CONNECTED' as const }))
    const message = kad.encodeMessage({
      type: 'FIND_NODE',
      closerPeers: [
        { id: peer, addrs: [multiaddr(`/ip4/10.0.0.1/tcp/1/p2p/${peer.toString()}`), multiaddr(`/ip4/10.0.0.2/tcp/1/p2p/${other.toString()}`)], connection: 'NOT_CONNECTED' },
        ...many
      ],
      providerPeers: []
    })
    const decoded = kad.decodeMessage(message)
    expect(decoded.closerPeers).to.have.length(kad.MAX_PEERS_PER_LIST)
    expect(decoded.closerPeers[0].addrs.map(String)).to.deep.equal(['/ip4/10.0.0.1/tcp/1'])
    expect(decoded.closerPeers[1].addrs).to.have.length(kad.MAX_ADDRESSES_PER_PEER)
    expect(kad.decodeMessage(message, { maxPeers: 2, maxAddressesPerPeer: 3 }).closerPeers.map(p => p.addrs.length)).to.deep.equal([1, 3])
    // A peer whose id is garbage is skipped, not fatal.
    const badPeer = new Uint8Array([8 << 3 | 2, 4, 1 << 3 | 2, 2, 0xff, 0xff])
    expect(kad.decodeMessage(new Uint8Array([4 << 3 | 0, 4, ...badPeer])).closerPeers).to.have.length(0)
  })

  it('throws InvalidMessageError on garbage: wrong wire types, truncation, unknown types, keyless records', () => {
    const garbage = [
      new Uint8Array([1 << 3 | 2, 1, 0]), // type with a length-delimited wire type
      new Uint8Array([2 << 3 | 2, 10, 1]), // key longer than the message
      new Uint8Array([1 << 3 | 0, 99]), // unknown message type
      new Uint8Array([3 << 3 | 2, 2, 2 << 3 | 2, 0]), // a record without a key
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      new Uint8Array([8 << 3 | 2, 5, 1 << 3 | 2, 10, 0]) // a peer running past its container
    ]
    for (const input of garbage) expect(() => kad.decodeMessage(input), Buffer.from(input).toString('hex')).to.throw(kad.InvalidMessageError)
  })

  it('writes timeReceived as RFC 3339 with nanoseconds', async () => {
    const { rfc3339Now } = await import('../../src/protocols/kad/message.js')
    expect(rfc3339Now(Date.UTC(2026, 11, 6, 7, 10, 0, 123))).to.equal('2026-12-06T07:10:00.123000000Z')
  })
})

describe('kad: config', () => {
  it('has rust-libp2p\'s defaults', () => {
    const c = new kad.Behaviour(randomPeerId()).config
    expect(c).to.include({ replicationFactor: 20, parallelism: 3, queryTimeout: 60_000, maxPacketSize: 16 * 1024, periodicBootstrapInterval: 300_000, recordTtl: 48 * 3_600_000, providerRecordTtl: 48 * 3_600_000, replicationInterval: 3_600_000, publicationInterval: 22 * 3_600_000, providerPublicationInterval: 12 * 3_600_000 })
    expect(c.protocolNames).to.deep.equal(['/ipfs/kad/1.0.0'])
    expect(c.mode).to.equal(undefined)
    expect(Object.isFrozen(c)).to.equal(true)
  })

  it('names the bad field', () => {
    const cases: Array<[Partial<kad.Config>, string]> = [
      [{ protocolNames: [] }, 'protocolNames'],
      [{ protocolNames: ['kad'] }, 'protocolNames'],
      [{ mode: 'both' as never }, 'mode'],
      [{ replicationFactor: 0 }, 'replicationFactor'],
      [{ parallelism: 1.5 }, 'parallelism'],
      [{ queryTimeout: -1 }, 'queryTimeout'],
      [{ queryTimeout: 2 ** 31 }, 'queryTimeout'],
      [{ recordTtl: 0 }, 'recordTtl'],
      [{ replicationInterval: Number.NaN }, 'replicationInterval'],
      [{ periodicBootstrapInterval: 0 }, 'periodicBootstrapInterval'],
      [{ maxPacketSize: 0 }, 'maxPacketSize'],
      [{ bucketInserts: 'never' as never }, 'bucketInserts'],
      [{ cacheCandidates: -1 }, 'cacheCandidates'],
      [{ store: {} as never }, 'store']
    ]
    for (const [options, field] of cases) expect(() => new kad.Behaviour(randomPeerId(), options), field).to.throw(ConfigError).with.property('field', field)
  })
})
