/**
 * The NAT demo: builds the test bed of test/fixtures/nat-testbed.ts (network namespaces inside
 * a throwaway `unshare`, rootless where user namespaces are allowed; two nftables NATs, a relay
 * on 198.18.0.10), starts the relay and two NATed peers, and tells how their relayed connection
 * becomes a direct one through both NATs (circuit relay v2, then DCUtR). Exits 0 when the direct
 * connection carried a ping and a GossipSub message, 1 when it did not, 2 when the test bed
 * cannot be built here (the reason is printed: `unshare`, `ip`, `nft`, user namespaces).
 *
 * It also draws it in the live view (`peerswarm/view`), served on 127.0.0.1 (the URL is printed
 * first): the peers run in other processes, inside the namespaces, and print their view state
 * (`nodeView`) as JSON lines with the rest; this process serves those as
 * {@link ExternalViewNode}s, pushing each to the page as it arrives. The relayed connection is
 * drawn dashed, the direct one solid. The page keeps the last state for `--hold` seconds after
 * the run (default 5), then the demo exits.
 *
 * Run: npm run demo:nat [-- --hold <seconds>]
 */
import { parseArgs } from 'node:util'
import { serveNetworkView } from '../src/view/index.js'
import { natTestbedMissing, runNatTestbed } from '../test/fixtures/nat-testbed.js'
import type { ExternalViewNode, NodeView } from '../src/view/index.js'
import type { PeerLine } from '../test/fixtures/nat-testbed.js'

const { values: args } = parseArgs({ options: { hold: { type: 'string', default: '5' } } })
const hold = Number(args.hold)
if (!Number.isFinite(hold) || hold < 0 || hold > 3_600) {
  process.stderr.write(`--hold takes a number of seconds in 0..3600, got ${args.hold}\n`)
  process.exit(2)
}

const NAME: Record<string, string> = { a: 'A (10.0.1.2, behind NAT 198.18.0.1)', b: 'B (10.0.2.2, behind NAT 198.18.0.2)', relay: 'relay (198.18.0.10)', public: 'public peer (198.18.0.20)' }
const start = Date.now()

function say (role: string, text: string): void {
  const seconds = ((Date.now() - start) / 1000).toFixed(1).padStart(5)
  process.stdout.write(`${seconds} s  ${(NAME[role] ?? role).padEnd(36)} ${text}\n`)
}

const missing = natTestbedMissing()
if (missing !== undefined) {
  process.stderr.write(`demo:nat cannot build the NAT test bed here: ${missing}\n`)
  process.exit(2)
}

/** Each peer's latest view state, as it printed it. */
const views = new Map<string, NodeView>()
const VIEW_NAME: Record<string, string> = { relay: 'relay', public: 'public', a: 'A (behind NAT 1)', b: 'B (behind NAT 2)' }
const viewNodes: ExternalViewNode[] = Object.entries(VIEW_NAME).map(([role, name]) => ({ name, latest: () => views.get(role) }))
const view = await serveNetworkView(viewNodes, { title: 'peerswarm NAT demo: relayed, then direct' })
process.stdout.write(`Live view: ${view.url} (relayed connections dashed, direct ones solid)\n`)
process.stdout.write(`Building the test bed: namespaces, a bridge for 198.18.0.0/24, two masquerading NATs (nftables)…\n\n`)
const story = new Set(['a:direct', 'b:direct', 'a:directPing', 'b:directPing', 'b:gossipReceived'])
const abort = new AbortController()
const shortPeer = (id: unknown): string => String(id).slice(-8)
const observed = new Set<string>()

function narrate (line: PeerLine): void {
  const { role } = line
  switch (line.event) {
    case 'view':
      views.set(role, line.view as NodeView)
      view.update()
      return
    case 'listening':
      say(role, 'listens on /ip4/198.18.0.10/tcp/4001 (circuit relay v2, AutoNAT v2 server)')
      break
    case 'candidate':
      // The first observation comes from the relay; later ones repeat it (the other peer's).
      if (!String(line.addr).includes('p2p-circuit') && !observed.has(role)) {
        observed.add(role)
        say(role, `identify: the relay sees us at ${String(line.addr)} (our NAT's mapping of dial port 4002)`)
      }
      break
    case 'reserved':
      say(role, 'reservation accepted by the relay: reachable through it now')
      break
    case 'connected':
      if (line.limited === true) say(role, `connected to ${String(line.peer).toUpperCase()} through the relay (limited: 2 min, 128 KiB)`)
      break
    case 'relayedPing':
      say(role, `ping over the relayed connection: ${Math.round(Number(line.rtt))} ms`)
      break
    case 'relayedGossipReceived':
      say(role, `GossipSub message over the relayed connection: "${String(line.text)}"`)
      break
    case 'dcutrReleased':
      say(role, 'a GossipSub message crossed the relay each way: hole punching (DCUtR) may start')
      break
    case 'dcutr':
      if (line.ok === true) say(role, `DCUtR: hole punched, direct connection to ${String(line.remote).split('/p2p/')[0]}`)
      else say(role, `DCUtR attempt failed: ${String(line.code)} (${String(line.failure)})`)
      break
    case 'direct':
      say(role, `  …upgraded as ${line.roleOverride === 'Listener' ? 'the listener (Noise responder, Yamux server), as DCUtR assigns' : 'the dialer (Noise initiator, Yamux client)'}`)
      break
    case 'directPing':
      say(role, `ping over the direct connection: ${Math.round(Number(line.rtt))} ms`)
      break
    case 'gossipSent':
      say(role, 'relayed connection closed; GossipSub message published')
      break
    case 'gossipReceived': {
      const connections = line.connections as Array<{ limited: boolean }>
      say(role, `GossipSub message from …${shortPeer(line.from)}: "${String(line.text)}" (connections to A: ${connections.map(c => c.limited ? 'relayed' : 'direct').join(', ')})`)
      break
    }
    case 'timeout':
      say(role, `gave up waiting for: ${String(line.missing)}`)
      break
    default:
  }
  story.delete(`${role}:${line.event}`)
  if (story.size === 0 && !abort.signal.aborted) {
    process.stdout.write('\nThe relayed connection became direct: done. Tearing the test bed down.\n')
    abort.abort()
  }
}

const run = await runNatTestbed({ timeout: 90_000, onLine: narrate, signal: abort.signal, view: true })
if (hold > 0) {
  process.stdout.write(`The live view keeps the last state at ${view.url} for ${hold} s (--hold).\n`)
  await new Promise(resolve => setTimeout(resolve, hold * 1_000))
}
await view.close()
if (story.size === 0) process.exit(0)
process.stderr.write(`\nThe connection did not become direct (missing: ${[...story].join(', ')}).\n${run.stderr.slice(0, 4_000)}\n`)
process.exit(1)
