import { expect } from 'chai'
import { defaultLogger } from '@libp2p/logger'
import { dummy, generateKeypair, peerIdOf } from '../../src/index.js'
import { noiseYamuxUpgrader } from '../../src/upgrade/noise-yamux.js'
import { dialUpgraded } from '../../src/upgrade/upgrader.js'
import { MemoryTransport } from '../../src/transport/memory.js'
import { drive, listen, newSwarm } from '../../src/testing/index.js'

describe('connection upgrade', () => {
  for (const inline of [true, false]) {
    it(`agrees on Yamux with a peer that ${inline ? 'lists its muxers in the Noise handshake' : 'negotiates the muxer with multistream-select (as rust-libp2p)'}`, async () => {
      const swarm = await newSwarm(() => dummy())
      const address = await listen(swarm)
      const key = await generateKeypair()
      const remote = noiseYamuxUpgrader(key, defaultLogger(), inline)
      const dialing = new MemoryTransport().dial(address, { upgrader: remote.transportUpgrader(async () => {}), signal: AbortSignal.timeout(5_000) })
      try {
        const [[established]] = await drive([swarm], { count: 1, filter: e => e.type === 'ConnectionEstablished' })
        const upgraded = dialUpgraded(await dialing)
        expect(upgraded.multiplexer).to.equal('/yamux/1.0.0')
        expect(upgraded.encryption).to.equal('/noise')
        if (established.type !== 'ConnectionEstablished') throw new Error('unreachable')
        expect(established.peerId.equals(peerIdOf(key))).to.equal(true)
        expect(upgraded.remotePeer.equals(swarm.localPeerId)).to.equal(true)
        upgraded.muxer.abort(new Error('done'))
      } finally {
        await swarm.close()
      }
    })
  }
})
