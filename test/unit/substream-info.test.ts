import { expect } from 'chai'
import { combine, dummy } from '../../src/index.js'
import { connect, drive, newSwarm } from '../../src/testing/index.js'
import type {
  ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, Context, NetworkBehaviour, SubstreamProtocol, ToSwarm, Waker
} from '../../src/index.js'
import type { PeerId } from '@libp2p/interface'

// A handler that declares the type of its `info` (SubstreamProtocol<TInfo>): it reads the info
// of its requests back without a cast, through `combine`.
const SPOKEN = '/test/info/1.0.0'
type Info = { readonly request: number, readonly protocol: string }
type Outcome = { readonly request: number, readonly ok: boolean, readonly info: Info }

class InfoHandler implements ConnectionHandler<never, Outcome, Info> {
  private readonly outcomes: Outcome[] = []
  private readonly requests: Info[]
  private waker?: Waker
  constructor (dialer: boolean) {
    this.requests = dialer ? [{ request: 1, protocol: SPOKEN }, { request: 2, protocol: '/test/unspoken/1.0.0' }] : []
  }

  listenProtocol (): SubstreamProtocol<Info> { return { protocols: [SPOKEN], info: { request: 0, protocol: SPOKEN } } }
  connectionKeepAlive (): boolean { return false }
  onBehaviourEvent (): void {}
  onConnectionEvent (event: ConnectionEvent<Info>): void {
    switch (event.type) {
      case 'FullyNegotiatedOutbound':
        // `event.info.request` compiles: the info is typed.
        this.outcomes.push({ request: event.info.request, ok: true, info: event.info })
        event.stream.abort(new Error('done'))
        break
      case 'DialUpgradeError':
        this.outcomes.push({ request: event.info.request, ok: false, info: event.info })
        break
      case 'FullyNegotiatedInbound':
        event.stream.abort(new Error('done'))
        break
      default:
    }
    this.waker?.wake()
  }

  poll (cx: Context): ConnectionHandlerEvent<Outcome, Info> | undefined {
    this.waker = cx.waker
    const outcome = this.outcomes.shift()
    if (outcome != null) return { type: 'NotifyBehaviour', event: outcome }
    const info = this.requests.shift()
    return info == null ? undefined : { type: 'OutboundSubstreamRequest', protocol: { protocols: [info.protocol], info } }
  }
}

class InfoBehaviour implements NetworkBehaviour<Outcome, never, Outcome> {
  private readonly events: Outcome[] = []
  handleEstablishedInboundConnection (): InfoHandler { return new InfoHandler(false) }
  handleEstablishedOutboundConnection (): InfoHandler { return new InfoHandler(true) }
  onSwarmEvent (): void {}
  onConnectionHandlerEvent (_peer: PeerId, _id: ConnectionId, outcome: Outcome): void { this.events.push(outcome) }
  poll (): ToSwarm<Outcome, never> | undefined {
    const event = this.events.shift()
    return event === undefined ? undefined : { type: 'GenerateEvent', event }
  }
}

describe('SubstreamProtocol<TInfo>: a handler\'s typed info', () => {
  it('comes back unchanged with the negotiated stream and with the negotiation failure, through combine', async () => {
    const a = await newSwarm(() => combine({ other: dummy(), info: new InfoBehaviour() }))
    const b = await newSwarm(() => combine({ other: dummy(), info: new InfoBehaviour() }))
    try {
      await connect(a, b)
      const [events] = await drive([a, b], { count: [2, 0] })
      const outcomes = events.map(e => e.type === 'Behaviour' && e.event.behaviour === 'info' ? e.event.event : undefined)
      expect(outcomes.map(o => [o?.request, o?.ok])).to.deep.equal([[1, true], [2, false]])
      expect(outcomes.map(o => o?.info.protocol)).to.deep.equal([SPOKEN, '/test/unspoken/1.0.0'])
    } finally {
      await Promise.all([a.close(), b.close()])
    }
  })

  it('defaults to unknown: handlers that do not declare it compile as before', () => {
    const untyped: SubstreamProtocol = { protocols: ['/x'], info: 42 }
    const handler: ConnectionHandler = new InfoHandler(false)
    expect(untyped.info).to.equal(42)
    expect(handler.listenProtocol().protocols).to.deep.equal([SPOKEN])
  })
})
