import { expect } from 'chai'
import { dummy } from '../../src/index.js'
import { connect, drive, newSwarm } from '../../src/testing/index.js'
import type { ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, FromSwarm, NetworkBehaviour, SubstreamProtocol, ToSwarm } from '../../src/index.js'
import type { PeerId } from '@libp2p/interface'

/** Listens on the protocols the behaviour last sent it, and records the changes it is told. */
class ChangingHandler implements ConnectionHandler<readonly string[], never> {
  readonly changes: string[] = []
  private protocols: readonly string[] = ['/a/1']
  listenProtocol (): SubstreamProtocol { return { protocols: this.protocols } }
  connectionKeepAlive (): boolean { return true }
  onBehaviourEvent (protocols: readonly string[]): void { this.protocols = protocols }
  onConnectionEvent (event: ConnectionEvent): void {
    if (event.type === 'LocalProtocolsChange') this.changes.push(`${event.change.type} ${event.change.protocols.join(',')}`)
  }

  poll (): ConnectionHandlerEvent<never> | undefined { return undefined }
}

/** Sends each queued protocol list to the handler of its one connection. */
class Changing implements NetworkBehaviour<never, readonly string[], never> {
  handler?: ChangingHandler
  readonly queued: Array<readonly string[]> = []
  private peer?: PeerId
  handleEstablishedInboundConnection (): ChangingHandler { return this.track() }
  handleEstablishedOutboundConnection (): ChangingHandler { return this.track() }
  onSwarmEvent (event: FromSwarm): void {
    if (event.type === 'ConnectionEstablished') this.peer = event.peerId
  }

  onConnectionHandlerEvent (): void {}
  poll (): ToSwarm<never, readonly string[]> | undefined {
    const protocols = this.peer == null ? undefined : this.queued.shift()
    return protocols == null || this.peer == null ? undefined : { type: 'NotifyHandler', peerId: this.peer, handler: 'any', event: protocols }
  }

  private track (): ChangingHandler {
    this.handler = new ChangingHandler()
    return this.handler
  }
}

describe('the protocols a handler listens on', () => {
  it('are told to it as LocalProtocolsChange when the connection starts and each time they change', async () => {
    const a = await newSwarm(() => new Changing())
    const b = await newSwarm(() => dummy())
    try {
      await connect(a, b)
      a.behaviour.queued.push(['/a/1', '/b/1'], ['/b/1'])
      const handler = a.behaviour.handler
      const deadline = Date.now() + 5_000
      while ((handler?.changes.length ?? 0) < 3 && Date.now() < deadline) {
        await drive([a, b], { count: 1, filter: () => false, timeout: 20 }).catch(() => {})
      }
      expect(handler?.changes).to.deep.equal(['Added /a/1', 'Added /b/1', 'Removed /a/1'])
    } finally {
      await a.close()
      await b.close()
    }
  })
})
