/**
 * AutoNAT v2 against js-libp2p 3.3.11's `@libp2p/autonat-v2` 2.0.15, both ways, on 127.0.0.1:
 * a js server confirms our listen address, and our server confirms a js client's. js-libp2p
 * counts 127/8 as private and has no option for it, so the js peer runs in a process of its own
 * with a module hook that declares 127.0.0.0/8 global (test/fixtures/js-global-ip.mjs); ours
 * gets the same through `isGlobal`.
 */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { multiaddr } from '@multiformats/multiaddr'
import { expect } from 'chai'
import { SwarmBuilder, autonat, combine, identify, inIpv4Range } from '../../src/index.js'
import { EventLog } from '../fixtures/event-log.js'
import type { Multiaddr } from '../../src/index.js'
import type { ChildProcess } from 'node:child_process'

const loopbackIsGlobal = (address: Multiaddr): boolean => inIpv4Range(address, '127.0.0.0/8')

interface JsPeer {
  readonly process: ChildProcess
  readonly peerId: string
  readonly listen: string[]
  /** Resolves when a line matching `predicate` arrives (or already did). */
  readonly next: (predicate: (line: { type: string, addrs?: string[] }) => boolean, timeout?: number) => Promise<{ type: string, addrs?: string[] }>
  readonly send: (command: unknown) => void
}

async function jsPeer (): Promise<JsPeer> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--import', './test/fixtures/js-global-ip.mjs', 'test/fixtures/js-autonat-peer.ts'], {
    env: { ...process.env, PEERSWARM_JS_GLOBAL_CIDRS: '127.0.0.0/8', PEERSWARM_JS_LISTEN: '/ip4/127.0.0.1/tcp/0' },
    stdio: ['pipe', 'pipe', 'inherit']
  })
  const lines: Array<{ type: string, addrs?: string[], peerId?: string, listen?: string[] }> = []
  const waiters = new Set<() => void>()
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    lines.push(JSON.parse(line))
    for (const wake of waiters) wake()
  })
  const next: JsPeer['next'] = async (predicate, timeout = 20_000) => {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = lines.find(predicate)
        if (found == null) return false
        waiters.delete(wake)
        clearTimeout(timer)
        resolve(found)
        return true
      }
      const wake = (): void => { check() }
      const timer = setTimeout(() => {
        waiters.delete(wake)
        reject(new Error(`the js peer did not print the expected line; it printed ${JSON.stringify(lines)}`))
      }, timeout)
      if (!check()) waiters.add(wake)
    })
  }
  const exited = new Promise<never>((_resolve, reject) => child.once('exit', (code) => { reject(new Error(`the js peer exited with ${String(code)}`)) }))
  const ready = await Promise.race([next(l => l.type === 'ready'), exited]) as unknown as { peerId: string, listen: string[] }
  exited.catch(() => {})
  return { process: child, peerId: ready.peerId, listen: ready.listen, next, send: (command) => { child.stdin?.write(`${JSON.stringify(command)}\n`) } }
}

async function ours (role: 'client' | 'server') {
  const swarm = await SwarmBuilder.withNewIdentity()
    .withTcp()
    .withBehaviour(key => combine({
      identify: new identify.Behaviour(key.publicKey),
      autonat: role === 'client'
        ? new autonat.v2.client.Behaviour({ isGlobal: loopbackIsGlobal, probeInterval: 200 })
        : new autonat.v2.server.Behaviour({ isGlobal: loopbackIsGlobal })
    }))
    .withSwarmConfig({ idleConnectionTimeout: 30_000 })
    .build()
  const log = new EventLog(swarm)
  swarm.listenOn('/ip4/127.0.0.1/tcp/0')
  const event = await log.find(e => e.type === 'NewListenAddr')
  if (event.type !== 'NewListenAddr') throw new Error('unreachable')
  return { swarm, log, address: event.address }
}

describe('AutoNAT v2 with js-libp2p', function () {
  this.timeout(60_000)
  let peer: JsPeer | undefined
  let logs: Array<EventLog<any>> = []
  afterEach(async () => {
    peer?.process.stdin?.end()
    peer?.process.kill()
    peer = undefined
    await Promise.all(logs.map(async l => { await l.close() }))
    logs = []
  })

  it('a js server confirms our listen address', async () => {
    peer = await jsPeer()
    const a = await ours('client')
    logs.push(a.log)
    const client = a.swarm.behaviour.children.autonat as autonat.v2.client.Behaviour
    a.swarm.dial(multiaddr(`${peer.listen[0] ?? ''}/p2p/${peer.peerId}`))
    client.probeAddress(a.address)
    const event = await a.log.find(e => e.type === 'Behaviour' && e.event.behaviour === 'autonat' &&
      (e.event.event as autonat.v2.client.Event).testedAddr.toString() === a.address.toString(), 30_000)
    if (event.type !== 'Behaviour') throw new Error('unreachable')
    const result = event.event.event as autonat.v2.client.Event
    expect(result.server.toString()).to.equal(peer.peerId)
    expect(result.result).to.deep.equal({ ok: true })
    expect(a.swarm.externalAddresses().map(String)).to.include(a.address.toString())
  })

  it('our server confirms a js client\'s listen address', async () => {
    peer = await jsPeer()
    const s = await ours('server')
    logs.push(s.log)
    const jsListen = peer.listen[0] ?? ''
    peer.send({ dial: `${s.address.toString()}/p2p/${s.swarm.localPeerId.toString()}` })
    const served = await s.log.find(e => e.type === 'Behaviour' && e.event.behaviour === 'autonat' &&
      (e.event.event as autonat.v2.server.Event).client.toString() === peer?.peerId, 30_000)
    if (served.type !== 'Behaviour') throw new Error('unreachable')
    const event = served.event.event as autonat.v2.server.Event
    expect(event.testedAddr?.toString()).to.equal(jsListen)
    expect(event.result).to.deep.equal({ ok: true })
    // js announces an address once its AutoNAT confirmed it.
    await peer.next(l => l.type === 'addrs' && (l.addrs ?? []).some(a => a.startsWith(jsListen)))
  })
})
