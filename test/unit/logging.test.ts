import { expect } from 'chai'
import { disable, enable, enabled } from '@libp2p/logger'
import { componentLogger } from '../../src/core/logging.js'

describe('component logger', () => {
  // DEBUG as the run was started, restored after each test.
  const before = process.env.DEBUG ?? ''
  afterEach(() => { if (before === '') disable(); else enable(before) })

  it('hands out a quiet logger, with quiet scopes, when DEBUG names none of them', () => {
    disable()
    const log = componentLogger().forComponent('peerswarm:test-quiet')
    const stream = log.newScope('stream:1')
    expect(log.enabled).to.equal(false)
    expect(stream.enabled).to.equal(false)
    // Calls of every level are accepted and do nothing.
    expect(() => { log('x %s', 1); log.error('e'); log.trace('t'); stream.error(new Error('e')) }).not.to.throw()
  })

  it('gives a scope named by DEBUG a real logger, even under a quiet parent, and only to scopes made after enable()', () => {
    disable()
    const parent = componentLogger().forComponent('peerswarm:test-scope')
    const early = parent.newScope('stream')
    enable('peerswarm:test-scope:stream')
    expect(enabled('peerswarm:test-scope:stream')).to.equal(true)
    const late = parent.newScope('stream')
    expect(parent.enabled).to.equal(false)
    expect(early.enabled).to.equal(false)
    expect(late.enabled).to.equal(true)
  })

  it('builds a real logger when only the scope\'s errors are enabled, so errors are still written', () => {
    enable('peerswarm:test-errors:error')
    const log = componentLogger().forComponent('peerswarm:test-errors')
    expect(log.enabled).to.equal(false)
    expect((log.error as { enabled?: boolean }).enabled).to.equal(true)
  })
})
