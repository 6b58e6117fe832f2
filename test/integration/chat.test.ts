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
})
