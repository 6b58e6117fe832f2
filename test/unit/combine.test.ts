import { expect } from 'chai'
import { ConfigError, combine, dummy, ping } from '../../src/index.js'
import { connect, drive, newSwarm } from '../../src/testing/index.js'
import type {
  ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, Context, NetworkBehaviour, SubstreamProtocol, ToSwarm, Waker
} from '../../src/index.js'
import type { PeerId } from '@libp2p/interface'

// A complete custom protocol in under 60 lines: the dialer sends one greeting on a fresh
// stream, the listener reports it.
const HELLO = '/test/hello/1.0.0'
type HelloEvent = { readonly type: 'Received', readonly peerId: PeerId, readonly text: string }

class HelloHandler implements ConnectionHandler<never, string> {
  private readonly received: string[] = []
  private waker?: Waker
  constructor (private sendGreeting: boolean) {}
  listenProtocol (): SubstreamProtocol { return { protocols: [HELLO] } }
  connectionKeepAlive (): boolean { return false }
  onBehaviourEvent (): void {}
  onConnectionEvent (event: ConnectionEvent): void {
    if (event.type === 'FullyNegotiatedOutbound') {
      event.stream.send(new TextEncoder().encode('hello'))
      void event.stream.close()
    } else if (event.type === 'FullyNegotiatedInbound') {
      void (async () => {
        let text = ''
        for await (const chunk of event.stream) text += new TextDecoder().decode(chunk.subarray())
        this.received.push(text)
        this.waker?.wake()
      })()
    }
  }

  poll (cx: Context): ConnectionHandlerEvent<string> | undefined {
    this.waker = cx.waker
    const text = this.received.shift()
    if (text !== undefined) return { type: 'NotifyBehaviour', event: text }
    if (!this.sendGreeting) return undefined
    this.sendGreeting = false
    return { type: 'OutboundSubstreamRequest', protocol: { protocols: [HELLO] } }
  }
}

class Hello implements NetworkBehaviour<HelloEvent, never, string> {
  private readonly events: HelloEvent[] = []
  handleEstablishedInboundConnection (): HelloHandler { return new HelloHandler(false) }
  handleEstablishedOutboundConnection (): HelloHandler { return new HelloHandler(true) }
  onSwarmEvent (): void {}
  onConnectionHandlerEvent (peerId: PeerId, _id: ConnectionId, text: string): void {
    this.events.push({ type: 'Received', peerId, text })
  }

  poll (): ToSwarm<HelloEvent, never> | undefined {
    const event = this.events.shift()
    return event === undefined ? undefined : { type: 'GenerateEvent', event }
  }
}

describe('combine', () => {
  it('routes inbound streams to the child listening on the protocol and tags events with its key', async () => {
    const make = async () => newSwarm(() => combine({ ping: new ping.Behaviour({ interval: 60_000 }), hello: new Hello() }))
    const a = await make()
    const b = await make()
    try {
      expect(a.behaviour.hello).to.be.instanceOf(Hello)
      expect(a.behaviour.ping).to.be.instanceOf(ping.Behaviour)
      await connect(a, b)
      const [eventsA, eventsB] = await drive([a, b], { count: [1, 2] })
      const tagsB = eventsB.map(e => e.type === 'Behaviour' ? `${e.event.behaviour}:${e.event.event.type}` : e.type).sort()
      expect(tagsB).to.deep.equal(['hello:Received', 'ping:Success'])
      const hello = eventsB.map(e => e.type === 'Behaviour' && e.event.behaviour === 'hello' ? e.event.event : undefined).find(e => e != null)
      expect(hello?.text).to.equal('hello')
      expect(hello?.peerId.equals(a.localPeerId)).to.equal(true)
      const [onlyA] = eventsA
      expect(onlyA.type === 'Behaviour' && onlyA.event.behaviour).to.equal('ping')
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('gives every child a turn even when another always has work', () => {
    let polls = 0
    const busy: NetworkBehaviour<string, never, never> = {
      handleEstablishedInboundConnection: () => { throw new Error('unused') },
      handleEstablishedOutboundConnection: () => { throw new Error('unused') },
      onSwarmEvent () {},
      onConnectionHandlerEvent () {},
      poll: () => ({ type: 'GenerateEvent', event: `busy ${polls++}` })
    }
    const once = new Hello()
    once.onConnectionHandlerEvent(undefined as unknown as PeerId, 1 as ConnectionId, 'late')
    const combined = combine({ busy, once })
    const cx = { waker: { wake () {} } }
    const first = [combined.poll(cx), combined.poll(cx)].map(a => a?.type === 'GenerateEvent' ? a.event.behaviour : undefined)
    expect(first).to.deep.equal(['busy', 'once'])
  })

  it('refuses keys that would shadow its own members', () => {
    expect(() => combine({ poll: dummy() })).to.throw(ConfigError).with.property('field', 'poll')
  })
})
