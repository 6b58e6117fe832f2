import { createServer, connect as tcpConnect } from 'node:net'
import { expect } from 'chai'
import { multiaddr } from '@multiformats/multiaddr'
import { DialAbortedError, DialTransportError, ListenTransportError, SwarmBuilder, UpgradeError, ping } from '../../src/index.js'
import { EventLog } from '../fixtures/event-log.js'
import type { Server, Socket } from 'node:net'

async function tcpNode (connectionTimeout = 10_000) {
  // Ping keeps no connection alive, and its next ping is a minute away: a long idle timeout, so
  // that an honest connection that closes during a test was closed by the attack, not by a
  // machine slow enough to take 10 s over it.
  const swarm = await SwarmBuilder.withNewIdentity().withTcp()
    .withBehaviour(() => new ping.Behaviour({ interval: 60_000 }))
    .withSwarmConfig({ connectionTimeout, idleConnectionTimeout: 300_000 })
    .build()
  return new EventLog(swarm)
}

/** A raw TCP server on 127.0.0.1 that treats each socket with `onSocket`. */
async function rawServer (onSocket: (socket: Socket) => void): Promise<{ server: Server, address: string, sockets: Set<Socket> }> {
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => sockets.delete(socket))
    onSocket(socket)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return { server, address: `/ip4/127.0.0.1/tcp/${port}`, sockets }
}

async function closeServer ({ server, sockets }: { server: Server, sockets: Set<Socket> }): Promise<void> {
  for (const socket of sockets) socket.destroy()
  await new Promise(resolve => server.close(resolve))
}

function lp (text: string): Buffer {
  const body = Buffer.from(text)
  return Buffer.concat([Buffer.from([body.length]), body])
}

/** The first bytes of an honest dialer: multistream-select header and a /noise proposal. */
const NOISE_PROPOSAL = Buffer.concat([lp('/multistream/1.0.0\n'), lp('/noise\n')])

/** Heap in use after a full collection (mocha runs node with --expose-gc). */
function heapAfterGc (): number {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc == null) throw new Error('run with --expose-gc')
  gc()
  return process.memoryUsage().heapUsed
}

function firstFailure (error: unknown): Error {
  expect(error).to.be.instanceOf(DialTransportError)
  return (error as DialTransportError).errors[0].error
}

describe('robustness over TCP (127.0.0.1)', function () {
  this.timeout(60_000)

  it('reports a refused port as a transport error with the socket\'s code', async () => {
    const node = await tcpNode()
    const closed = await rawServer(() => {})
    await closeServer(closed)
    try {
      node.swarm.dial(multiaddr(closed.address))
      const failed = await node.find(e => e.type === 'OutgoingConnectionError')
      expect(failed.type === 'OutgoingConnectionError' && (firstFailure(failed.error) as { code?: string }).code).to.equal('ECONNREFUSED')
    } finally {
      await node.close()
    }
  })

  it('reports a remote that answers garbage as an UpgradeError in security negotiation', async () => {
    const node = await tcpNode()
    const garbage = await rawServer(socket => socket.end(Buffer.from('HTTP/1.1 400 Bad Request\r\n\r\n')))
    try {
      node.swarm.dial(multiaddr(garbage.address))
      const failed = await node.find(e => e.type === 'OutgoingConnectionError')
      const error = firstFailure(failed.type === 'OutgoingConnectionError' ? failed.error : undefined)
      expect(error).to.be.instanceOf(UpgradeError)
      expect((error as UpgradeError).phase).to.equal('security-negotiation')
    } finally {
      await node.close()
      await closeServer(garbage)
    }
  })

  it('times out a remote that stalls in the Noise handshake, with the phase named', async () => {
    const node = await tcpNode(500)
    // Agrees on /noise, then never sends a handshake message.
    const stall = await rawServer(socket => socket.once('data', () => socket.write(NOISE_PROPOSAL)))
    try {
      const started = performance.now()
      node.swarm.dial(multiaddr(stall.address))
      const failed = await node.find(e => e.type === 'OutgoingConnectionError')
      const error = firstFailure(failed.type === 'OutgoingConnectionError' ? failed.error : undefined)
      expect(error).to.be.instanceOf(UpgradeError)
      expect((error as UpgradeError).phase).to.equal('handshake')
      expect(performance.now() - started).to.be.at.least(495)
    } finally {
      await node.close()
      await closeServer(stall)
    }
  })

  it('reports a dial aborted by closeConnection as DialAbortedError', async () => {
    const node = await tcpNode()
    const silent = await rawServer(() => {})
    try {
      const id = node.swarm.dial(multiaddr(silent.address))
      expect(node.swarm.networkInfo().connectionCounters.numPendingOutgoing).to.equal(1)
      expect(node.swarm.closeConnection(id)).to.equal(true)
      const failed = await node.find(e => e.type === 'OutgoingConnectionError')
      expect(failed.type === 'OutgoingConnectionError' && failed.error).to.be.instanceOf(DialAbortedError)
    } finally {
      await node.close()
      await closeServer(silent)
    }
  })

  it('stays up and serves honest peers while 1,000 clients send garbage, stall half-way or say nothing, and keeps none of them', async () => {
    // Long enough that every attacker is still pending while the honest peer connects.
    const timeout = 3_000
    const target = await tcpNode(timeout)
    const honest = await tcpNode()
    const attackers: Socket[] = []
    try {
      target.swarm.listenOn('/ip4/127.0.0.1/tcp/0')
      const listening = await target.find(e => e.type === 'NewListenAddr')
      if (listening.type !== 'NewListenAddr') throw new Error('unreachable')
      const port = Number(listening.address.getComponents().find(c => c.name === 'tcp')?.value)

      /** 1,000 bad clients; resolves once the target reported each as an IncomingConnectionError. */
      const attack = async (): Promise<void> => {
        for (let i = 0; i < 1_000; i++) {
          const socket = tcpConnect(port, '127.0.0.1')
          socket.on('error', () => {})
          if (i % 3 === 0) socket.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'.repeat(4)))
          if (i % 3 === 1) socket.write(NOISE_PROPOSAL)
          attackers.push(socket)
        }
        const deadline = Date.now() + timeout * 10
        while (target.events.filter(e => e.type === 'IncomingConnectionError').length < 1_000 && Date.now() < deadline) {
          await new Promise(resolve => setTimeout(resolve, 50))
        }
        const errors = target.events.filter(e => e.type === 'IncomingConnectionError')
        expect(errors).to.have.length(1_000)
        expect(errors.every(e => e.type === 'IncomingConnectionError' && e.error instanceof ListenTransportError)).to.equal(true)
        expect(target.swarm.networkInfo().connectionCounters.numPendingIncoming).to.equal(0)
        // Forget the test's own references before measuring the heap.
        target.clear()
        for (const socket of attackers.splice(0)) socket.destroy()
        await new Promise(resolve => setTimeout(resolve, 100))
      }

      const firstRound = attack()
      // An honest peer connects and pings while all of them are pending.
      const honestStarted = performance.now()
      honest.swarm.dial(listening.address)
      await honest.find(e => e.type === 'ConnectionEstablished', 10_000)
      await honest.find(e => e.type === 'Behaviour' && e.event.type === 'Success', 10_000)
      expect(performance.now() - honestStarted).to.be.lessThan(timeout)
      await firstRound

      // A second round retains nothing more: memory does not grow with the number of attackers.
      const heapBefore = heapAfterGc()
      await attack()
      const retained = heapAfterGc() - heapBefore
      expect(retained, `${(retained / 2 ** 20).toFixed(2)} MiB retained`).to.be.lessThan(2 * 2 ** 20)
      expect(target.swarm.isConnected(honest.swarm.localPeerId)).to.equal(true)
    } finally {
      for (const socket of attackers) socket.destroy()
      await target.close()
      await honest.close()
    }
  })

  it('closes a silent inbound connection after the upgrade timeout', async () => {
    const node = await tcpNode(300)
    try {
      node.swarm.listenOn('/ip4/127.0.0.1/tcp/0')
      const listening = await node.find(e => e.type === 'NewListenAddr')
      if (listening.type !== 'NewListenAddr') throw new Error('unreachable')
      const port = Number(listening.address.getComponents().find(c => c.name === 'tcp')?.value)
      const opened = performance.now()
      const socket = tcpConnect(port, '127.0.0.1')
      socket.on('error', () => {})
      const closedAt = await new Promise<number>(resolve => socket.on('close', () => { resolve(performance.now()) }))
      const failed = await node.find(e => e.type === 'IncomingConnectionError')
      expect(failed.type === 'IncomingConnectionError' && failed.error).to.be.instanceOf(ListenTransportError)
      expect(closedAt - opened).to.be.at.least(295)
    } finally {
      await node.close()
    }
  })
})
