import { expect } from 'chai'
import { combine, dummy, toggle, ping } from '../../src/index.js'
import { connect, drive, listen, newSwarm } from '../../src/testing/index.js'
import type { ConnectionHandler, ConnectionHandlerEvent, Context, FromSwarm, NetworkBehaviour, SubstreamProtocol, ToSwarm } from '../../src/index.js'
import type { PeerId } from '@libp2p/interface'

/** Records what it is told, and the size of each batch delivered between two polls. */
class SinkHandler implements ConnectionHandler<number, never> {
  readonly received: number[] = []
  readonly batches: number[] = [0]
  listenProtocol (): SubstreamProtocol { return { protocols: [] } }
  connectionKeepAlive (): boolean { return true }
  onBehaviourEvent (event: number): void {
    this.received.push(event)
    this.batches[this.batches.length - 1]++
  }

  onConnectionEvent (): void {}
  poll (_cx: Context): ConnectionHandlerEvent<never> | undefined {
    if (this.batches[this.batches.length - 1] > 0) this.batches.push(0)
    return undefined
  }
}

/** Sends `total` numbered events to the first connected peer's handler, as fast as allowed. */
class Sender implements NetworkBehaviour<never, number, never> {
  readonly handlers: SinkHandler[] = []
  polled = 0
  private peer?: PeerId
  private next = 0
  constructor (private readonly total: number) {}
  handleEstablishedInboundConnection (): SinkHandler { return this.track() }
  handleEstablishedOutboundConnection (): SinkHandler { return this.track() }
  onSwarmEvent (event: FromSwarm): void {
    if (event.type === 'ConnectionEstablished') this.peer = event.peerId
  }

  onConnectionHandlerEvent (): void {}
  poll (): ToSwarm<never, number> | undefined {
    this.polled++
    if (this.peer == null || this.next >= this.total) return undefined
    return { type: 'NotifyHandler', peerId: this.peer, handler: 'any', event: this.next++ }
  }

  private track (): SinkHandler {
    const handler = new SinkHandler()
    this.handlers.push(handler)
    return handler
  }
}

describe('behaviour to handler events', () => {
  it('are delivered in order, never more than notifyHandlerBufferSize at a time', async () => {
    const bufferSize = 4
    const a = await newSwarm(() => new Sender(100), { notifyHandlerBufferSize: bufferSize })
    const b = await newSwarm(() => dummy())
    try {
      await connect(a, b)
      const deadline = Date.now() + 5_000
      const handler = a.behaviour.handlers[0]
      while (handler.received.length < 100 && Date.now() < deadline) {
        await drive([a, b], { count: 1, filter: () => false, timeout: 20 }).catch(() => {})
      }
      expect(handler.received).to.deep.equal(Array.from({ length: 100 }, (_, i) => i))
      expect(Math.max(...handler.batches)).to.be.at.most(bufferSize)
    } finally {
      await a.close()
      await b.close()
    }
  })
})

describe('toggle', () => {
  it('runs the wrapped behaviour when enabled', async () => {
    const a = await newSwarm(() => combine({ ping: toggle(new ping.Behaviour({ interval: 60_000 })) }))
    const b = await newSwarm(() => new ping.Behaviour({ interval: 60_000 }))
    try {
      expect(a.behaviour.ping.enabled).to.equal(true)
      a.dial(await listen(b))
      const [[event]] = await drive([a, b], { count: [1, 0] })
      expect(event.type === 'Behaviour' && event.event.behaviour === 'ping' && event.event.event.type).to.equal('Success')
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('speaks no protocol when disabled', async () => {
    const a = await newSwarm(() => new ping.Behaviour({ interval: 60_000 }))
    const b = await newSwarm(() => combine({ ping: toggle<ping.Behaviour>(undefined) }))
    try {
      expect(b.behaviour.ping.enabled).to.equal(false)
      a.dial(await listen(b))
      const [[event]] = await drive([a, b], { count: [1, 0] })
      expect(event.type === 'Behaviour' && event.event.type === 'Failure' && event.event.error.kind).to.equal('Unsupported')
    } finally {
      await a.close()
      await b.close()
    }
  })
})
