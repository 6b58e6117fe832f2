import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddrConnectionPair } from '@libp2p/utils'
import { expect } from 'chai'
import { dummy, generateKeypair, ping } from '../../src/index.js'
import { noiseYamuxUpgrader } from '../../src/upgrade/noise-yamux.js'
import { dialUpgraded } from '../../src/upgrade/upgrader.js'
import { MemoryTransport } from '../../src/transport/memory.js'
import { drive, listen, newSwarm } from '../../src/testing/index.js'
import type { Stream } from '@libp2p/interface'

/** Resolves with the time each stream ended at. */
async function endTimes (streams: Stream[]): Promise<number[]> {
  return Promise.all(streams.map(async stream => new Promise<number>((resolve) => {
    if (stream.status !== 'open') resolve(performance.now())
    stream.addEventListener('close', () => { resolve(performance.now()) }, { once: true })
  })))
}

describe('inbound stream negotiation limits', () => {
  it('resets streams beyond maxNegotiatingInboundStreams at once and the rest after the negotiation timeout', async () => {
    const limit = 8
    const timeout = 300
    const swarm = await newSwarm(() => dummy(), { maxNegotiatingInboundStreams: limit, substreamNegotiationTimeout: timeout })
    const address = await listen(swarm)
    const upgrader = noiseYamuxUpgrader(await generateKeypair())
    // Keep the listener's event loop running until the swarm closes.
    const driving = drive([swarm], { count: 1, filter: () => false, timeout: 5_000 }).catch(() => {})
    try {
      const upgraded = dialUpgraded(await new MemoryTransport().dial(address, {
        upgrader: upgrader.transportUpgrader(async () => {}),
        signal: AbortSignal.timeout(5_000)
      }))
      const started = performance.now()
      const streams = await Promise.all(Array.from({ length: limit + 5 }, async () => upgraded.muxer.createStream()))
      // Start a multistream-select header (a length of 19) and never finish it.
      for (const stream of streams) stream.send(new Uint8Array([19]))
      const ended = (await endTimes(streams)).map(t => t - started).sort((x, y) => x - y)
      const early = ended.filter(t => t < timeout - 50)
      const late = ended.filter(t => t >= timeout - 50)
      expect(early.length, `ends at ${ended.map(Math.round).join(', ')}`).to.equal(5)
      expect(late.length).to.equal(limit)
      upgraded.muxer.abort(new Error('done'))
    } finally {
      await swarm.close()
      await driving
    }
  })
})

describe('streams opened before the swarm takes a connection over', () => {
  // A remote may open streams in the same packet as its last handshake message: they reach our
  // muxer before the swarm's connection listens to it. js-libp2p does so when it dials and opens
  // a burst of streams at once; Yamux's own limit (10) would abort the connection.
  it('are held by our muxer up to maxNegotiatingInboundStreams, then handed over', async () => {
    const ours = noiseYamuxUpgrader(await generateKeypair(), undefined, true, 40).streamMuxers().get('/yamux/1.0.0')
    if (ours == null) throw new Error('no yamux')
    const [outbound, inbound] = multiaddrConnectionPair()
    const remote = yamux()().createStreamMuxer(outbound)
    const muxer = ours.createStreamMuxer(inbound)
    try {
      const opened = await Promise.all(Array.from({ length: 30 }, async () => remote.createStream()))
      for (const stream of opened) stream.send(new Uint8Array([1]))
      const deadline = performance.now() + 5_000
      while (muxer.streams.length < 30 && performance.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
      expect(muxer.status).to.equal('open')
      const handedOver: unknown[] = []
      muxer.addEventListener('stream', (evt) => { handedOver.push(evt.detail) })
      await new Promise(resolve => setTimeout(resolve, 0))
      expect(handedOver).to.have.length(30)
    } finally {
      remote.abort(new Error('done'))
      muxer.abort(new Error('done'))
    }
  })
})

describe('ping failures', () => {
  it('reports Unsupported once when the remote does not speak ping', async () => {
    const a = await newSwarm(() => new ping.Behaviour({ interval: 20 }))
    const b = await newSwarm(() => dummy())
    try {
      a.dial(await listen(b))
      const [[failure]] = await drive([a, b], { count: [1, 0] })
      if (failure.type !== 'Behaviour' || failure.event.type !== 'Failure') throw new Error('expected a ping failure')
      expect(failure.event.error.kind).to.equal('Unsupported')
      const more = await drive([a, b], { count: [1, 0], timeout: 200 }).then(() => true, () => false)
      expect(more, 'asked again after Unsupported').to.equal(false)
    } finally {
      await a.close()
      await b.close()
    }
  })
})
