import { expect } from 'chai'
import { generateKeypair } from '../../src/index.js'
import { VerifyingKeyCache } from '../../src/protocols/pubsub/authenticity.js'

describe('verifying key cache', () => {
  it('holds at most its capacity, evicting the least recently used, and verifies with cached keys', async () => {
    const keys = await Promise.all(Array.from({ length: 5 }, async () => generateKeypair()))
    const cache = new VerifyingKeyCache(3)
    let imports = 0
    const get = (i: number): ((bytes: Uint8Array, sig: Uint8Array) => boolean | Promise<boolean>) => cache.get(`k${i}`, () => { imports++; return keys[i].publicKey })
    get(0); get(1); get(2)
    expect(cache.size).to.equal(3)
    get(0) // 0 is now the most recently used; 1 the least
    expect(imports).to.equal(3)
    get(3)
    expect(cache.size).to.equal(3)
    expect(cache.has('k1')).to.equal(false)
    expect(cache.has('k0') && cache.has('k2') && cache.has('k3')).to.equal(true)
    for (let i = 0; i < 100; i++) get(i % 5)
    expect(cache.size).to.equal(3)
    const data = new TextEncoder().encode('signed bytes')
    const signature = await keys[4].sign(data)
    expect(await get(4)(data, signature)).to.equal(true)
    expect(await get(3)(data, signature)).to.equal(false)
    expect(await get(4)(data, signature.slice(1))).to.equal(false)
    expect(() => new VerifyingKeyCache(0)).to.throw(RangeError)
  })
})
