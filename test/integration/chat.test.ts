import { expect } from 'chai'
import { Chat } from '../fixtures/chat-process.js'

describe('examples/chat: two processes on 127.0.0.1', function () {
  this.timeout(60_000)
  const chats: Chat[] = []
  afterEach(() => { for (const chat of chats.splice(0)) chat.kill() })

  for (const pubsub of ['gossipsub', 'floodsub']) {
    it(`find each other over mDNS, and a line typed in one is printed by the other (${pubsub})`, async () => {
      const service = `_ps${Math.random().toString(36).slice(2, 10)}._udp.local`
      const args = ['--interface', '127.0.0.1', '--service', service, '--listen', '/ip4/127.0.0.1/tcp/0', ...(pubsub === 'floodsub' ? ['--floodsub'] : [])]
      const a = new Chat(args)
      const b = new Chat(args)
      chats.push(a, b)
      const [idA, idB] = await Promise.all([a.peerId(), b.peerId()])
      await Promise.all([a.line(new RegExp(`^Peer ${idB} joined test-net$`)), b.line(new RegExp(`^Peer ${idA} joined test-net$`))])
      await Promise.all([a.line(new RegExp(`^mDNS discovered a new peer: ${idB}$`)), b.line(new RegExp(`^mDNS discovered a new peer: ${idA}$`))])

      a.type('hello from a')
      const got = await b.line(/^Got message: /).catch((err: Error) => { throw new Error(`${err.message}\nthe other chat's output:\n${a.lines.join('\n')}`) })
      expect(got).to.equal(`Got message: 'hello from a' from peer: ${idA}`)
      b.type('and back from b')
      expect(await a.line(/^Got message: /)).to.equal(`Got message: 'and back from b' from peer: ${idB}`)

      expect(await Promise.all([a.end(), b.end()])).to.deep.equal([0, 0])
    })
  }

  it('--relay: two chats that cannot find each other reach each other through a relay (examples/chat-relay.ts) and chat', async () => {
    const relay = new Chat(['--listen', '/ip4/127.0.0.1/tcp/0'], [], 'examples/chat-relay.ts')
    chats.push(relay)
    const relayAddress = (await relay.line(/^Relay listening on /)).slice('Relay listening on '.length)
    // Each chat in an mDNS group of its own: the relay is the only way between them.
    const own = (): string[] => ['--interface', '127.0.0.1', '--service', `_ps${Math.random().toString(36).slice(2, 10)}._udp.local`, '--listen', '/ip4/127.0.0.1/tcp/0']
    const b = new Chat([...own(), '--relay', relayAddress])
    chats.push(b)
    const idB = await b.peerId()
    await b.line(/^Reservation accepted by relay /)
    expect(await b.line(/^Reachable through the relay at /)).to.equal(`Reachable through the relay at ${relayAddress}/p2p-circuit/p2p/${idB}`)

    const a = new Chat([...own(), '--relay', relayAddress, '--peer', idB])
    chats.push(a)
    const idA = await a.peerId()
    expect(await a.line(new RegExp(`^Connected to ${idB}`))).to.equal(`Connected to ${idB} through the relay`)
    expect(await b.line(new RegExp(`^Connected to ${idA}`))).to.equal(`Connected to ${idA} through the relay`)
    await relay.line(new RegExp(`^Circuit from ${idA} to ${idB}$`))
    await Promise.all([a.line(new RegExp(`^Peer ${idB} joined test-net$`)), b.line(new RegExp(`^Peer ${idA} joined test-net$`))])

    a.type('hello through the relay')
    expect(await b.line(/^Got message: /)).to.equal(`Got message: 'hello through the relay' from peer: ${idA}`)
    b.type('and back')
    expect(await a.line(/^Got message: /)).to.equal(`Got message: 'and back' from peer: ${idB}`)
    expect(a.lines.concat(b.lines).some(l => l.startsWith('mDNS discovered')), 'not found over mDNS').to.equal(false)
    // 127.0.0.1 is not a public address: DCUtR has nothing to send or dial, and they stay on the relay.
    expect(await b.line(new RegExp(`^No direct connection to ${idA} `))).to.match(/staying on the relay$/)
    expect(a.lines.concat(b.lines).some(l => l.startsWith('Direct connection')), 'no direct connection').to.equal(false)
    expect(await Promise.all([a.end(), b.end()])).to.deep.equal([0, 0])
  })
})
