import { expect } from 'chai'
import { ConfigError, SwarmBuilder, defaultSwarmConfig, dummy, ping, swarmConfig } from '../../src/index.js'

describe('configuration', () => {
  it('defaults to rust-libp2p\'s values', () => {
    expect(swarmConfig()).to.deep.equal({
      idleConnectionTimeout: 10_000,
      notifyHandlerBufferSize: 32,
      perConnectionEventBufferSize: 7,
      dialConcurrencyFactor: 8,
      maxNegotiatingInboundStreams: 128,
      substreamNegotiationTimeout: 10_000,
      connectionTimeout: 10_000,
      drainTimeout: 2_000,
      maxStreamWindow: 4 * 1024 * 1024
    })
    expect(Object.isFrozen(defaultSwarmConfig)).to.equal(true)
    expect(new ping.Behaviour().config).to.deep.equal({ interval: 15_000, timeout: 20_000 })
  })

  it('accepts Infinity and 0 for the idle timeout', () => {
    expect(swarmConfig({ idleConnectionTimeout: Infinity }).idleConnectionTimeout).to.equal(Infinity)
    expect(swarmConfig({ idleConnectionTimeout: 0 }).idleConnectionTimeout).to.equal(0)
  })

  const bad: Array<[string, object]> = [
    ['idleConnectionTimeout', { idleConnectionTimeout: -1 }],
    ['dialConcurrencyFactor', { dialConcurrencyFactor: 0 }],
    ['dialConcurrencyFactor', { dialConcurrencyFactor: 1.5 }],
    ['notifyHandlerBufferSize', { notifyHandlerBufferSize: 0 }],
    ['perConnectionEventBufferSize', { perConnectionEventBufferSize: -1 }],
    ['maxNegotiatingInboundStreams', { maxNegotiatingInboundStreams: Number.NaN }],
    ['substreamNegotiationTimeout', { substreamNegotiationTimeout: Infinity }],
    ['connectionTimeout', { connectionTimeout: 0 }],
    ['connectionTimeout', { connectionTimeout: 2 ** 31 }],
    ['drainTimeout', { drainTimeout: -1 }],
    ['drainTimeout', { drainTimeout: 2 ** 31 }],
    ['maxStreamWindow', { maxStreamWindow: 256 * 1024 - 1 }],
    ['maxStreamWindow', { maxStreamWindow: 2 ** 32 }],
    ['maxStreamWindow', { maxStreamWindow: 1.5 * 1024 * 1024 + 0.5 }],
    ['maxStreamWindow', { maxStreamWindow: Number.NaN }],
    ['maxStreamWindow', { maxStreamWindow: '4194304' }]
  ]
  for (const [field, options] of bad) {
    it(`rejects ${JSON.stringify(options)} with a ConfigError naming ${field}`, () => {
      expect(() => swarmConfig(options)).to.throw(ConfigError).with.property('field', field)
    })
  }

  it('accepts a Yamux stream window from 256 KiB to 2^32 - 1 bytes', () => {
    expect(swarmConfig({ maxStreamWindow: 256 * 1024 }).maxStreamWindow).to.equal(256 * 1024)
    expect(swarmConfig({ maxStreamWindow: 2 ** 32 - 1 }).maxStreamWindow).to.equal(2 ** 32 - 1)
  })

  it('makes build() reject an invalid Yamux stream window', async () => {
    const building = SwarmBuilder.withNewIdentity().withMemoryTransport().withBehaviour(() => dummy())
      .withSwarmConfig({ maxStreamWindow: 16 * 1024 }).build()
    await building.then(() => { throw new Error('built') }, (err: unknown) => {
      expect(err).to.be.instanceOf(ConfigError).with.property('field', 'maxStreamWindow')
    })
  })

  it('makes build() reject an invalid swarm config', async () => {
    const building = SwarmBuilder.withNewIdentity().withMemoryTransport().withBehaviour(() => dummy())
      .withSwarmConfig({ idleConnectionTimeout: -5 }).build()
    await building.then(() => { throw new Error('built') }, (err: unknown) => {
      expect(err).to.be.instanceOf(ConfigError)
    })
  })

  it('rejects invalid ping options', () => {
    expect(() => new ping.Behaviour({ interval: 0 })).to.throw(ConfigError).with.property('field', 'interval')
    // Longer than a timer can wait: Node would fire it after 1 ms, pinging without pause.
    expect(() => new ping.Behaviour({ interval: 30 * 24 * 3600_000 })).to.throw(ConfigError).with.property('field', 'interval')
  })
})
