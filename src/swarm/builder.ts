/**
 * `SwarmBuilder`: identity, then transports, then the behaviour, then the swarm's config.
 *
 * @module
 */
import { TypedEventEmitter } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { ConfigError } from '../core/errors.js'
import { generateKeypair, peerIdOf } from '../core/identity.js'
import { platform } from '../platform.js'
import { memory } from '../transport/memory.js'
import { webSockets } from '../transport/websockets.js'
import { swarmConfig } from './config.js'
import { Swarm } from './swarm.js'
import { noiseYamuxUpgrader } from '../upgrade/noise-yamux.js'
import type { SwarmConfig } from './config.js'
import type { AnyBehaviour } from '../behaviour/network-behaviour.js'
import type { Keypair } from '../core/identity.js'
import type { TcpOptions, TransportComponents, TransportFactory } from '../transport/transport.js'
import type { WebSocketsOptions } from '../transport/websockets.js'
import type { Libp2pEvents } from '@libp2p/interface'

/**
 * Builds a {@link Swarm}, in phases as rust-libp2p's builder:
 *
 * ```ts
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(() => new ping.Behaviour())
 *   .withSwarmConfig({ idleConnectionTimeout: 60_000 })
 *   .build()
 * ```
 *
 * Every transport's connections are secured with Noise and multiplexed with Yamux.
 */
export class SwarmBuilder {
  private readonly transports: TransportFactory[] = []

  private constructor (private readonly identity: Keypair | undefined) {}

  /** Start with a freshly generated Ed25519 identity. */
  static withNewIdentity (): SwarmBuilder {
    return new SwarmBuilder(undefined)
  }

  /** Start with an existing identity. */
  static withExistingIdentity (key: Keypair): SwarmBuilder {
    return new SwarmBuilder(key)
  }

  /** Add a transport. The first one that can dial (or listen on) an address is used for it. */
  withTransport (factory: TransportFactory): this {
    this.transports.push(factory)
    return this
  }

  /**
   * Add TCP (`/ip4/…/tcp/<port>`, `/ip6/…`, `/dns…`). Node only: in the browser build this
   * throws a `ConfigError` (browsers cannot open TCP sockets; use {@link withWebSockets}).
   */
  withTcp (options: TcpOptions = {}): this {
    const tcp = platform().tcp
    if (tcp == null) throw new ConfigError('transport', `TCP is not available on this platform (${platform().name}): browsers cannot open TCP sockets; use withWebSockets()`)
    return this.withTransport(tcp(options))
  }

  /** Add WebSockets (`/ip4/…/tcp/<port>/ws`). */
  withWebSockets (options: WebSocketsOptions = {}): this {
    return this.withTransport(webSockets(options))
  }

  /** Add the in-memory transport (`/memory/<n>`), for tests and simulations. */
  withMemoryTransport (): this {
    return this.withTransport(memory())
  }

  /** Set the behaviour; `create` receives the identity (e.g. to sign pubsub messages). */
  withBehaviour<B extends AnyBehaviour> (create: (key: Keypair) => B): BehaviourSwarmBuilder<B> {
    return new BehaviourSwarmBuilder(this.identity, [...this.transports], create)
  }
}

/** The builder's last phase: swarm options, then `build()`. */
export class BehaviourSwarmBuilder<B extends AnyBehaviour> {
  private config: Partial<SwarmConfig> = {}

  /** @internal */
  constructor (
    private readonly identity: Keypair | undefined,
    private readonly transports: readonly TransportFactory[],
    private readonly create: (key: Keypair) => B
  ) {}

  /** Swarm options; see {@link SwarmConfig} for each field and its default. */
  withSwarmConfig (config: Partial<SwarmConfig>): this {
    this.config = { ...this.config, ...config }
    return this
  }

  /** Create the swarm. Throws `ConfigError` for invalid options. */
  async build (): Promise<Swarm<B>> {
    const config = swarmConfig(this.config)
    const key = this.identity ?? await generateKeypair()
    const peerId = peerIdOf(key)
    const logger = defaultLogger()
    const upgrader = noiseYamuxUpgrader(key, logger, true, config.maxNegotiatingInboundStreams)
    const components: TransportComponents = { logger, events: new TypedEventEmitter<Libp2pEvents>() }
    const transports = this.transports.map(factory => factory(components))
    return new Swarm({ localPeerId: peerId, behaviour: this.create(key), transports, upgrader, config })
  }
}
