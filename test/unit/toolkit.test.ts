/**
 * The toolkit for protocol authors, without sockets: one-message framing over an in-memory
 * stream pair, the action queue's waker, and the address books fed from `FromSwarm` events.
 */
import { streamPair } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'
import * as varint from 'uint8-varint'
import {
  ActionQueue, ExternalAddresses, FrameTooLargeError, ListenAddresses, PeerAddresses, DialTransportError, encodeFrame, generateKeypair,
  newConnectionId, newListenerId, peerIdOf, readFrame, writeFrame
} from '../../src/index.js'
import type { FromSwarm, ToSwarm } from '../../src/index.js'
import type { PeerId } from '@libp2p/interface'

describe('toolkit: readFrame / writeFrame', () => {
  it('a frame written on one end is read whole on the other, and the stream stays usable for the reply', async () => {
    const [a, b] = await streamPair()
    const request = new Uint8Array(3000).fill(7)
    await writeFrame(a, request, { maxSize: 4096 })
    expect(await readFrame(b, { maxSize: 4096 })).to.deep.equal(request)
    await writeFrame(b, Uint8Array.of(1, 2, 3), { maxSize: 16 })
    expect(await readFrame(a, { maxSize: 16 })).to.deep.equal(Uint8Array.of(1, 2, 3))
  })

  it('reads frames sent back to back, each up to maxSize, one read each', async () => {
    const [a, b] = await streamPair()
    const first = new Uint8Array(1000).fill(1)
    const second = new Uint8Array(1000).fill(2)
    // Both frames in one chunk: the second arrives while the first is read.
    a.send(new Uint8Array([...encodeFrame(first), ...encodeFrame(second)]))
    expect(await readFrame(b, { maxSize: 1000 })).to.deep.equal(first)
    expect(await readFrame(b, { maxSize: 1000 })).to.deep.equal(second)
  })

  it('refuses to write more than maxSize', async () => {
    const [a] = await streamPair()
    const error = await writeFrame(a, new Uint8Array(17), { maxSize: 16 }).then(() => undefined, (err: unknown) => err)
    expect(error).to.be.instanceOf(FrameTooLargeError)
    expect((error as FrameTooLargeError).limit).to.equal(16)
  })

  it('refuses a frame whose announced length is over maxSize before its bytes arrive', async () => {
    const [a, b] = await streamPair()
    // Only the prefix of a 1 MiB frame is sent: the reader must fail on the prefix alone.
    a.send(varint.encode(1024 * 1024))
    const error = await readFrame(b, { maxSize: 1024 }).then(() => undefined, (err: unknown) => err)
    expect(error).to.be.instanceOf(FrameTooLargeError)
  })

  it('fails with the signal\'s reason when it aborts before a frame arrives', async () => {
    const [, b] = await streamPair()
    const controller = new AbortController()
    const read = readFrame(b, { maxSize: 16, signal: controller.signal })
    controller.abort(new Error('gave up'))
    const error = await read.then(() => undefined, (err: unknown) => err)
    expect(error).to.be.instanceOf(Error)
    expect(String(error)).to.match(/gave up|abort/i)
  })

  it('encodeFrame prefixes the length as a uvarint', () => {
    expect([...encodeFrame(new Uint8Array(300))].slice(0, 2)).to.deep.equal([0xac, 0x02])
  })
})

describe('toolkit: ActionQueue', () => {
  function waker (): { wakes: number, cx: { waker: { wake: () => void } } } {
    const state = { wakes: 0, cx: { waker: { wake: () => { state.wakes++ } } } }
    return state
  }

  it('hands actions out in order and wakes the swarm for an action queued after poll returned nothing', () => {
    const queue = new ActionQueue<string, never>()
    const w = waker()
    expect(queue.poll(w.cx)).to.equal(undefined)
    queue.generate('a')
    expect(w.wakes).to.equal(1)
    queue.push({ type: 'ListenOn', address: multiaddr('/memory/1') })
    expect(queue.length).to.equal(2)
    expect(queue.poll(w.cx)).to.deep.equal({ type: 'GenerateEvent', event: 'a' })
    expect(queue.poll(w.cx)?.type).to.equal('ListenOn')
    expect(queue.poll(w.cx)).to.equal(undefined)
    expect(queue.length).to.equal(0)
  })

  it('keeps its order across compactions of a long queue', () => {
    const queue = new ActionQueue<number, never>()
    const w = waker()
    const seen: number[] = []
    for (let i = 0; i < 5000; i++) {
      queue.generate(i)
      if (i % 3 === 0) seen.push((queue.poll(w.cx) as Extract<ToSwarm<number, never>, { type: 'GenerateEvent' }>).event)
    }
    for (let action = queue.poll(w.cx); action !== undefined; action = queue.poll(w.cx)) {
      seen.push((action as Extract<ToSwarm<number, never>, { type: 'GenerateEvent' }>).event)
    }
    expect(seen).to.deep.equal(Array.from({ length: 5000 }, (_, i) => i))
  })
})

describe('toolkit: address books', () => {
  let peer: PeerId
  let other: PeerId
  before(async () => {
    peer = peerIdOf(await generateKeypair())
    other = peerIdOf(await generateKeypair())
  })

  it('ListenAddresses follows NewListenAddr and ExpiredListenAddr', () => {
    const listen = new ListenAddresses()
    const listenerId = newListenerId()
    const address = multiaddr('/ip4/127.0.0.1/tcp/4001')
    expect(listen.onSwarmEvent({ type: 'NewListenAddr', listenerId, address })).to.equal(true)
    expect(listen.onSwarmEvent({ type: 'NewListenAddr', listenerId, address })).to.equal(false)
    expect([...listen].map(String)).to.deep.equal(['/ip4/127.0.0.1/tcp/4001'])
    expect(listen.onSwarmEvent({ type: 'ExpiredListenAddr', listenerId, address })).to.equal(true)
    expect(listen.size).to.equal(0)
  })

  it('ExternalAddresses keeps the most recently confirmed first, at most `limit`', () => {
    const external = new ExternalAddresses(2)
    const confirm = (a: string): boolean => external.onSwarmEvent({ type: 'ExternalAddrConfirmed', address: multiaddr(a) })
    expect(confirm('/ip4/198.18.0.1/tcp/1')).to.equal(true)
    expect(confirm('/ip4/198.18.0.1/tcp/2')).to.equal(true)
    expect(confirm('/ip4/198.18.0.1/tcp/1')).to.equal(true)
    expect(confirm('/ip4/198.18.0.1/tcp/3')).to.equal(true)
    expect([...external].map(String)).to.deep.equal(['/ip4/198.18.0.1/tcp/3', '/ip4/198.18.0.1/tcp/1'])
    expect(external.onSwarmEvent({ type: 'ExternalAddrExpired', address: multiaddr('/ip4/198.18.0.1/tcp/3') })).to.equal(true)
    expect(external.has(multiaddr('/ip4/198.18.0.1/tcp/3'))).to.equal(false)
  })

  it('PeerAddresses learns from NewExternalAddrOfPeer, forgets an address whose dial failed, and refuses another peer\'s /p2p/', () => {
    const book = new PeerAddresses()
    const a = multiaddr('/ip4/127.0.0.1/tcp/1')
    const b = multiaddr(`/ip4/127.0.0.1/tcp/2/p2p/${peer.toString()}`)
    expect(book.onSwarmEvent({ type: 'NewExternalAddrOfPeer', peerId: peer, address: a })).to.equal(true)
    expect(book.onSwarmEvent({ type: 'NewExternalAddrOfPeer', peerId: peer, address: b })).to.equal(true)
    expect(book.add(peer, a)).to.equal(false)
    expect(book.add(peer, multiaddr(`/ip4/127.0.0.1/tcp/3/p2p/${other.toString()}`))).to.equal(false)
    expect(book.get(peer).map(String)).to.deep.equal(['/ip4/127.0.0.1/tcp/1', '/ip4/127.0.0.1/tcp/2'])
    const failure: FromSwarm = {
      type: 'DialFailure',
      peerId: peer,
      connectionId: newConnectionId(),
      error: new DialTransportError([{ address: b, error: new Error('refused') }])
    }
    expect(book.onSwarmEvent(failure)).to.equal(true)
    expect(book.get(peer).map(String)).to.deep.equal(['/ip4/127.0.0.1/tcp/1'])
  })

  it('PeerAddresses forgets the least recently used peer and the oldest address beyond its limits', () => {
    const book = new PeerAddresses({ peers: 1, addressesPerPeer: 2 })
    for (const port of [1, 2, 3]) book.add(peer, multiaddr(`/ip4/127.0.0.1/tcp/${port}`))
    expect(book.get(peer).map(String)).to.deep.equal(['/ip4/127.0.0.1/tcp/2', '/ip4/127.0.0.1/tcp/3'])
    book.add(other, multiaddr('/ip4/127.0.0.1/tcp/9'))
    expect(book.get(peer)).to.deep.equal([])
    expect(book.size).to.equal(1)
  })
})
