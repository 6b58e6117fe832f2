/**
 * The demo's network, as a module (examples/demo.ts is its command line; the browser test
 * drives it in its own process to compare the view with the swarms): nodes with TCP on
 * 127.0.0.1 that find each other over mDNS (kept on the loopback interface, under a service
 * name of this run, so that nothing leaves the machine), dial what they discover and talk over
 * GossipSub; optionally a whole-network view (`peerswarm/view`) that draws the peers, their
 * connections and meshes, and every delivery as it happens.
 */
import { SwarmBuilder, childEvent, combine, gossipsub, mdns, peerIdOf } from 'peerswarm'
import { serveNetworkView } from 'peerswarm/view'
import type { ViewHandle } from 'peerswarm/view'

/** The topic every node joins. */
export const TOPIC = new gossipsub.IdentTopic('demo')

/** Options of {@link DemoNetwork.start}. */
export interface DemoOptions {
  /** How many nodes (at least 2). */
  readonly count: number
  /** Serve the network view (on 127.0.0.1). */
  readonly view: boolean
  /** The view's port (0: any free one). */
  readonly port?: number
  /** Where progress lines go. */
  readonly log: (line: string) => void
}

async function node (serviceName: string) {
  const swarm = await SwarmBuilder.withNewIdentity().withTcp()
    .withBehaviour(key => combine({
      mdns: new mdns.Behaviour(peerIdOf(key), { interface: '127.0.0.1', serviceName }),
      gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key) })
    }))
    .build()
  swarm.behaviour.gossipsub.subscribe(TOPIC)
  swarm.listenOn('/ip4/127.0.0.1/tcp/0')
  return swarm
}

/** A demo node's swarm. */
export type DemoSwarm = Awaited<ReturnType<typeof node>>

/** Messages carry the time they were published, so that receivers can tell the latency. */
function encode (text: string): Uint8Array {
  return new TextEncoder().encode(`${Date.now()} ${text}`)
}

function decode (data: Uint8Array): { sentAt: number, text: string } {
  const raw = new TextDecoder().decode(data)
  const space = raw.indexOf(' ')
  return { sentAt: Number(raw.slice(0, space)), text: raw.slice(space + 1) }
}

/** The demo's nodes, their event loops and (optionally) their view. */
export class DemoNetwork {
  /** Greetings each node has received, by text. */
  readonly greetings: Array<Set<string>>
  /** Messages delivered (greetings and traffic), and the sum of their latencies in ms. */
  readonly delivered = { count: 0, latency: 0 }
  private readonly names: Map<string, string>
  private readonly stop = new AbortController()
  private loops: Array<Promise<void>> = []
  private greeted = false
  private readonly whenGreeted: PromiseWithResolvers<void> = Promise.withResolvers<void>()
  private sequence = 0

  private constructor (
    readonly nodes: readonly DemoSwarm[],
    readonly serviceName: string,
    readonly view: ViewHandle | undefined,
    private readonly log: (line: string) => void
  ) {
    this.names = new Map(nodes.map((swarm, i) => [swarm.localPeerId.toString(), `node ${i}`]))
    this.greetings = nodes.map(() => new Set())
  }

  /** Start the nodes (and the view), and their event loops. */
  static async start (options: DemoOptions): Promise<DemoNetwork> {
    const count = Math.max(2, options.count)
    const serviceName = `_demo${Math.random().toString(36).slice(2, 8)}._udp.local`
    const nodes = await Promise.all(Array.from({ length: count }, async () => node(serviceName)))
    const view = options.view
      ? await serveNetworkView(nodes.map((swarm, i) => ({ name: `node ${i}`, swarm })), { port: options.port ?? 0, title: `peerswarm demo: ${count} nodes` })
      : undefined
    const network = new DemoNetwork(nodes, serviceName, view, options.log)
    network.loops = nodes.map(async (swarm, i) => { await network.run(swarm, i) })
    return network
  }

  /** A node's name (`node 3`), or a short peer id for anyone else. */
  nameOf (peer: { toString: () => string }): string {
    return this.names.get(peer.toString()) ?? `…${peer.toString().slice(-6)}`
  }

  /** Resolves once every node has every other node's greeting. */
  async allGreeted (): Promise<void> {
    await this.whenGreeted.promise
  }

  /** Established connections in the network, each counted once (one per connected pair). */
  connections (): number {
    return this.nodes.reduce((sum, swarm) => sum + swarm.networkInfo().connectionCounters.numEstablishedOutgoing, 0)
  }

  /** Publish `text` from node `i` (false if it could not be published, e.g. no peers yet). */
  publish (i: number, text: string): boolean {
    try {
      this.nodes[i].behaviour.gossipsub.publish(TOPIC, encode(text))
      return true
    } catch {
      return false
    }
  }

  /** Publish one message from a random node. */
  traffic (): boolean {
    const i = Math.floor(Math.random() * this.nodes.length)
    return this.publish(i, `message ${++this.sequence} from node ${i}`)
  }

  /** Stop the loops, the view and the nodes. */
  async close (): Promise<void> {
    this.stop.abort()
    await Promise.all(this.loops)
    await this.view?.close()
    await Promise.all(this.nodes.map(async swarm => { await swarm.close() }))
  }

  /** Publish the greetings once every node has heard every other node subscribe. */
  private maybeGreet (): void {
    const count = this.nodes.length
    if (this.greeted || !this.nodes.every(swarm => swarm.behaviour.gossipsub.subscribers(TOPIC).length === count - 1)) return
    this.greeted = true
    this.log('everyone is connected and subscribed: publishing')
    for (const [i] of this.nodes.entries()) this.publish(i, `hello from node ${i}`)
  }

  private async run (swarm: DemoSwarm, i: number): Promise<void> {
    const me = `node ${i}`
    const count = this.nodes.length
    for (;;) {
      let event
      try {
        event = await swarm.selectNextSome({ signal: this.stop.signal })
      } catch {
        return
      }
      if (event.type === 'NewListenAddr') this.log(`${me}: listening on ${event.address.toString()}`)
      if (event.type === 'ConnectionEstablished' && event.numEstablished === 1) this.log(`${me}: connected to ${this.nameOf(event.peerId)}`)
      const discovered = childEvent(event, 'mdns', 'Discovered')
      const mdnsError = childEvent(event, 'mdns', 'Error')
      const message = childEvent(event, 'gossipsub', 'Message')
      if (discovered != null) {
        for (const peerId of new Map(discovered.peers.map(p => [p.peerId.toString(), p.peerId])).values()) {
          this.log(`${me}: discovered ${this.nameOf(peerId)} over mDNS`)
          // Both sides of a pair discover each other at about the same time; if both dialed,
          // each pair would hold two connections. The side whose peer id sorts first dials.
          if (swarm.localPeerId.toString() < peerId.toString() && !swarm.isConnected(peerId)) {
            try {
              swarm.dial(peerId)
            } catch {}
          }
        }
      } else if (mdnsError != null) {
        this.log(`${me}: mDNS error: ${mdnsError.error.message}`)
      } else if (childEvent(event, 'gossipsub', 'Subscribed') != null) {
        this.maybeGreet()
      } else if (message != null) {
        const { sentAt, text } = decode(message.message.data)
        const latency = Date.now() - sentAt
        this.delivered.count++
        this.delivered.latency += latency
        this.view?.delivered({ to: swarm.localPeerId, from: message.propagationSource, topic: message.message.topic, latency })
        if (text.startsWith('hello from ')) {
          this.greetings[i].add(text)
          this.log(`${me}: received '${text}' from ${this.nameOf(message.propagationSource)}`)
          if (this.greetings.every(set => set.size === count - 1)) this.whenGreeted.resolve()
        }
      }
    }
  }
}
