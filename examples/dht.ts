/**
 * A distributed key-value store over Kademlia, after rust-libp2p's `distributed-key-value-store`
 * example. Type commands on stdin:
 *
 *   put <key> <value>    store a record in the DHT (here and at the closest peers)
 *   get <key>            look a record up
 *   provide <key>        announce that this node provides <key>
 *   providers <key>      look up who provides <key>
 *
 * Run: npx tsx examples/dht.ts [--peer /ip4/…/tcp/…/p2p/…]… [--listen /ip4/0.0.0.0/tcp/0]
 *        [--no-mdns] [--interface lo] [--service _name._udp.local]
 *
 * Peers come from `--peer` (as many as you like: bootstrap peers) and, unless `--no-mdns`, from
 * mDNS on the local network. The node runs in server mode: on a LAN no external address is
 * ever confirmed, so the automatic mode would stay a client.
 */
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { multiaddr } from '@multiformats/multiaddr'
import { SwarmBuilder, combine, identify, kad, mdns, parsePeerId, peerIdOf, toggle } from 'peerswarm'

const { values: args } = parseArgs({
  options: {
    peer: { type: 'string', multiple: true, default: [] },
    listen: { type: 'string', default: '/ip4/0.0.0.0/tcp/0' },
    'no-mdns': { type: 'boolean', default: false },
    interface: { type: 'string' },
    service: { type: 'string', default: mdns.SERVICE_NAME }
  }
})

const swarm = await SwarmBuilder.withNewIdentity()
  .withTcp()
  .withBehaviour(key => combine({
    kad: new kad.Behaviour(peerIdOf(key), { mode: 'server' }),
    identify: new identify.Behaviour(key.publicKey),
    mdns: toggle(args['no-mdns'] ? undefined : new mdns.Behaviour(peerIdOf(key), { interface: args.interface, serviceName: args.service }))
  }))
  .withSwarmConfig({ idleConnectionTimeout: 60_000 })
  .build()

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const dht = swarm.behaviour.kad

swarm.listenOn(args.listen)
console.log(`Local peer id: ${swarm.localPeerId.toString()}`)

for (const text of args.peer) {
  const address = multiaddr(text)
  const id = address.getComponents().findLast(c => c.name === 'p2p')?.value
  if (id === undefined) {
    console.log(`--peer ${text}: the address needs its /p2p/<peer id>`)
    continue
  }
  dht.addAddress(parsePeerId(id), address)
}
if (args.peer.length > 0) dht.bootstrap()

// One command per line; end of input (Ctrl-D) closes the node.
const input = createInterface({ input: process.stdin })
input.on('line', (line) => {
  const [command, key, ...rest] = line.trim().split(/\s+/)
  if (command === undefined || command === '') return
  if (key === undefined) {
    console.log('expected: put <key> <value> | get <key> | provide <key> | providers <key>')
    return
  }
  try {
    switch (command) {
      case 'put':
        if (rest.length === 0) throw new Error('put needs a value')
        dht.putRecord({ key: encoder.encode(key), value: encoder.encode(rest.join(' ')) }, 'one')
        break
      case 'get':
        dht.getRecord(encoder.encode(key))
        break
      case 'provide':
        dht.startProviding(encoder.encode(key))
        break
      case 'providers':
        dht.getProviders(encoder.encode(key))
        break
      default:
        console.log(`unknown command "${command}": put, get, provide or providers`)
    }
  } catch (err) {
    console.log(`${command} failed: ${err instanceof Error ? err.message : String(err)}`)
  }
})
input.on('close', () => { void swarm.close() })
process.on('SIGINT', () => { input.close() })

for await (const event of swarm) {
  if (event.type === 'NewListenAddr') {
    console.log(`Listening on ${event.address.toString()}/p2p/${swarm.localPeerId.toString()}`)
    continue
  }
  if (event.type !== 'Behaviour') continue
  const { behaviour, event: e } = event.event
  if (behaviour === 'mdns' && e !== undefined && e.type === 'Discovered') {
    // Tell Kademlia where the peers mDNS found listen (it dials them when it needs to).
    for (const { peerId, address } of e.peers) dht.addAddress(peerId, address)
    continue
  }
  if (behaviour !== 'kad' || e.type !== 'OutboundQueryProgressed') continue
  const { result } = e
  const name = (k: Uint8Array): string => JSON.stringify(decoder.decode(k))
  switch (result.type) {
    case 'GetRecord':
      if (result.ok?.type === 'FoundRecord') {
        const { record } = result.ok.record
        console.log(`Got record ${name(record.key)} ${name(record.value)}`)
        // The first one will do, as in rust's example.
        dht.query(e.id)?.finish()
      } else if (result.error !== undefined) {
        console.log(`Failed to get record: ${result.error.message}`)
      }
      break
    case 'PutRecord':
      if (result.ok !== undefined) console.log(`Successfully put record ${name(result.ok.key)}`)
      else console.log(`Failed to put record: ${result.error.message}`)
      break
    case 'StartProviding':
      if (result.ok !== undefined) console.log(`Successfully put provider record ${name(result.ok.key)}`)
      else console.log(`Failed to put provider record: ${result.error.message}`)
      break
    case 'GetProviders':
      if (result.ok?.type === 'FoundProviders') {
        for (const provider of result.ok.providers) console.log(`Peer ${provider.peerId.toString()} provides key ${name(result.ok.key)}`)
      } else if (result.error !== undefined) {
        console.log(`Failed to get providers: ${result.error.message}`)
      }
      break
    case 'Bootstrap':
      if (result.ok !== undefined && e.step.last) console.log('Bootstrap done')
      break
    default:
  }
}
