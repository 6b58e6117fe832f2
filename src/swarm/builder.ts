/**
 * `SwarmBuilder`: identity, then transports, then the behaviour, then the swarm's config.
 *
 * @module
 */
import { TypedEventEmitter } from '@libp2p/interface'
import { ConfigError } from '../core/errors.js'
import { generateKeypair, peerIdOf } from '../core/identity.js'
import { componentLogger } from '../core/logging.js'
import { platform } from '../platform.js'
import { memory } from '../transport/memory.js'
import { webSockets } from '../transport/websockets.js'
import { webRTCDirect } from '../transport/webrtc/direct.js'
import { WebRTCTransport } from '../transport/webrtc/private.js'
import { swarmConfig } from './config.js'
import { Swarm } from './swarm.js'
import { noiseYamuxUpgrader } from '../upgrade/noise-yamux.js'
import { create as createRelayClient } from '../protocols/relay/client/behaviour.js'
import type { Behaviour as RelayClientBehaviour } from '../protocols/relay/client/behaviour.js'
import type { Config as RelayClientConfig } from '../protocols/relay/client/config.js'
import type { SwarmConfig } from './config.js'
import type { AnyBehaviour } from '../behaviour/network-behaviour.js'
import type { Keypair } from '../core/identity.js'
import type { TcpOptions, TransportComponents, TransportFactory } from '../transport/transport.js'
import type { WebSocketsOptions } from '../transport/websockets.js'
import type { WebRTCDirectOptions } from '../transport/webrtc/direct.js'
import type { WebRTCOptions } from '../transport/webrtc/private.js'
import type { Libp2pEvents } from '@libp2p/interface'

/**
 * Builds a {@link Swarm}, in phases as rust-libp2p's builder:
 *
 * ```ts
 * import { SwarmBuilder, ping } from 'peerswarm'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(() => new ping.Behaviour())
 *   .withSwarmConfig({ idleConnectionTimeout: 60_000 })
 *   .build()
 * ```
 *
 * Every transport's connections are secured with Noise and multiplexed with Yamux.
 *
 * @group Start here
 * @sortStrategy source-order
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

  /**
   * Add WebRTC Direct (`/ip4/…/udp/<port>/webrtc-direct/certhash/…`, spec
   * `webrtc-direct.md`): on Node, listen on a UDP port and dial, with the optional peer
   * dependency `node-datachannel` (>= 0.33.4), loaded at the first dial or listen (without it
   * those fail with `WebRTCUnavailableError`); in a page, dial with the page's
   * `RTCPeerConnection` (a page cannot listen). Connections are secured by Noise on a data
   * channel and multiplexed by data channels (no Yamux). See docs/webrtc.md.
   */
  withWebRTCDirect (options: WebRTCDirectOptions = {}): this {
    return this.withTransport(webRTCDirect(options))
  }

  /** Add the in-memory transport (`/memory/<n>`), for tests and simulations. */
  withMemoryTransport (): this {
    return this.withTransport(memory())
  }

  /**
   * Add the circuit relay v2 client, as rust-libp2p's `with_relay_client`: a transport for
   * `/p2p-circuit` addresses (`listenOn('<relay>/p2p-circuit')` reserves a slot on the relay,
   * `dial('<relay>/p2p-circuit/p2p/<peer>')` dials through it) and the behaviour that goes with
   * it, which `withBehaviour` then receives to combine into the swarm's behaviour:
   *
   * ```ts
   * import { SwarmBuilder, combine, ping } from 'peerswarm'
   *
   * const swarm = await SwarmBuilder.withNewIdentity()
   *   .withTcp()
   *   .withRelayClient()
   *   .withBehaviour((key, relayClient) => combine({ relayClient, ping: new ping.Behaviour() }))
   *   .build()
   * ```
   *
   * Relayed connections are upgraded (Noise, Yamux) like every other connection. The relay
   * transport is tried before the others. `config` tunes the client (`relay.client.Config`:
   * how often it reserves again after losing its relay; by default six attempts, 1 s to 30 s
   * apart).
   */
  withRelayClient (config: Partial<RelayClientConfig> = {}): RelayClientSwarmBuilder {
    return new RelayClientSwarmBuilder(this.identity, [...this.transports], config)
  }

  /** Set the behaviour; `create` receives the identity (e.g. to sign pubsub messages). */
  withBehaviour<B extends AnyBehaviour> (create: (key: Keypair) => B): BehaviourSwarmBuilder<B> {
    return new BehaviourSwarmBuilder(this.identity, [...this.transports], key => ({ behaviour: create(key), transports: [] }))
  }
}

/**
 * The builder's phase after `withRelayClient()`: the behaviour, which must include the relay
 * client's behaviour that `withBehaviour` hands over.
 *
 * @group The swarm
 */
export class RelayClientSwarmBuilder {
  /** @internal */
  constructor (
    private readonly identity: Keypair | undefined,
    private readonly transports: readonly TransportFactory[],
    private readonly relayClientConfig: Partial<RelayClientConfig> = {},
    private readonly webRTCOptions?: WebRTCOptions
  ) {}

  /**
   * Add WebRTC private to private (`<relay>/p2p/<relay>/p2p-circuit/webrtc/p2p/<peer>`, spec
   * `webrtc.md`): peers that share a relay signal over a relayed connection, then talk
   * directly. `listenOn('<relay address>/p2p/<relay>/p2p-circuit/webrtc')` reserves a slot on
   * the relay and announces the `/webrtc` address. On Node it needs `node-datachannel`
   * (>= 0.33.4); in a page, the page's `RTCPeerConnection`. See docs/webrtc.md.
   */
  withWebRTC (options: WebRTCOptions = {}): RelayClientSwarmBuilder {
    return new RelayClientSwarmBuilder(this.identity, this.transports, this.relayClientConfig, options)
  }

  /**
   * Set the behaviour; `create` receives the identity and the relay client's behaviour, to
   * combine with the others (`combine({ relayClient, … })`). Without it in the swarm's
   * behaviour the relay transport can neither dial nor listen.
   */
  withBehaviour<B extends AnyBehaviour> (create: (key: Keypair, relayClient: RelayClientBehaviour) => B): BehaviourSwarmBuilder<B> {
    return new BehaviourSwarmBuilder(this.identity, this.transports, (key) => {
      const client = createRelayClient(peerIdOf(key), this.relayClientConfig)
      const webRTC = this.webRTCOptions
      const own: TransportFactory[] = webRTC === undefined ? [() => client.transport] : [() => client.transport, () => new WebRTCTransport(client.transport, webRTC)]
      return { behaviour: create(key, client.behaviour), transports: own }
    })
  }
}

/**
 * @internal What a build makes from the identity: the behaviour, and the transports made
 * with it (the relay client's), which are tried before the builder's others.
 */
type Assemble<B> = (key: Keypair) => { readonly behaviour: B, readonly transports: readonly TransportFactory[] }

/**
 * The builder's last phase: swarm options, then `build()`.
 *
 * @group The swarm
 */
export class BehaviourSwarmBuilder<B extends AnyBehaviour> {
  private config: Partial<SwarmConfig> = {}

  /** @internal */
  constructor (
    private readonly identity: Keypair | undefined,
    private readonly transports: readonly TransportFactory[],
    private readonly assemble: Assemble<B>
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
    const logger = componentLogger()
    const upgrader = noiseYamuxUpgrader(key, logger, true, config.maxNegotiatingInboundStreams, config.maxStreamWindow)
    const components: TransportComponents = { logger, events: new TypedEventEmitter<Libp2pEvents>() }
    const { behaviour, transports: own } = this.assemble(key)
    const transports = [...own, ...this.transports].map(factory => factory(components))
    return new Swarm({ localPeerId: peerId, behaviour, transports, upgrader, config })
  }
}
