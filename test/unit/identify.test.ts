import { expect } from 'chai'
import { FrameTooLargeError, identify } from '../../src/index.js'
import { drive, listen, newSwarm } from '../../src/testing/index.js'
import type { Keypair, SwarmEvent } from '../../src/index.js'

/** What `a` makes of `b`'s identify message of about `size` bytes, with `a` accepting `limit`. */
async function identifyWith (size: number, limit: number | undefined): Promise<identify.Event> {
  const a = await newSwarm((key: Keypair) => new identify.Behaviour(key.publicKey, limit == null ? {} : { maxMessageSize: limit }))
  // `b` may send more than the default: its own limit bounds what it writes too.
  const b = await newSwarm((key: Keypair) => new identify.Behaviour(key.publicKey, { agentVersion: 'x'.repeat(size), maxMessageSize: 64 * 1024 }))
  try {
    a.dial(await listen(b))
    const [[event]] = await drive([a, b], {
      count: [1, 0],
      filter: (e: SwarmEvent<identify.Event>, i) => i === 0 && e.type === 'Behaviour' && (e.event.type === 'Received' || e.event.type === 'Error')
    })
    if (event.type !== 'Behaviour') throw new Error('unreachable')
    // The failure ends the identify stream, not the connection.
    expect(a.isConnected(b.localPeerId)).to.equal(true)
    return event.event
  } finally {
    await a.close()
    await b.close()
  }
}

describe('identify message size (maxMessageSize)', () => {
  it('refuses a message over the default 8 KiB with an error event; the connection stays', async () => {
    const event = await identifyWith(9 * 1024, undefined)
    expect(event.type).to.equal('Error')
    if (event.type !== 'Error') return
    expect(event.error).to.be.instanceOf(FrameTooLargeError)
    expect((event.error as FrameTooLargeError).limit).to.equal(8 * 1024)
  })

  it('accepts the same message when the limit is raised, and one just under the default', async () => {
    expect((await identifyWith(9 * 1024, 16 * 1024)).type).to.equal('Received')
    expect((await identifyWith(7 * 1024, undefined)).type).to.equal('Received')
  })
})
