/**
 * What importing peerswarm does to the process's globals (src/compat.ts): on Node 20 it installs
 * `Promise.withResolvers` (the js-libp2p stack calls it itself) and nothing else; it never sets
 * `globalThis.WebSocket`, yet our WebSockets transport dials without one. Run in a child
 * process, since the test process's globals are shared with other tests (the interop fixtures
 * set `globalThis.WebSocket` for js-libp2p).
 */
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'

const root = join(import.meta.dirname, '../..')

const child = `
const hadResolvers = typeof Promise.withResolvers === 'function'
const before = Object.getOwnPropertyDescriptor(globalThis, 'WebSocket')
const { SwarmBuilder, ping } = await import('./src/index.js')
const { waitFor } = await import('./src/testing/index.js')
const afterImport = Object.getOwnPropertyDescriptor(globalThis, 'WebSocket')
const make = () => SwarmBuilder.withNewIdentity().withWebSockets().withBehaviour(() => new ping.Behaviour()).build()
const a = await make()
const b = await make()
b.listenOn('/ip4/127.0.0.1/tcp/0/ws')
const listening = await waitFor(b, e => e.type === 'NewListenAddr')
a.dial(listening.address)
const established = await waitFor(a, e => e.type === 'ConnectionEstablished', { drive: [b] })
const afterDial = Object.getOwnPropertyDescriptor(globalThis, 'WebSocket')
console.log(JSON.stringify({
  node: process.versions.node,
  hadResolvers,
  hasResolvers: typeof Promise.withResolvers === 'function',
  hadWebSocket: before != null,
  webSocketAfterImport: afterImport?.value === before?.value && (afterImport != null) === (before != null),
  webSocketAfterDial: afterDial?.value === before?.value && (afterDial != null) === (before != null),
  connected: established.type === 'ConnectionEstablished'
}))
await Promise.all([a.close(), b.close()])
`

describe('Node globals (a child process importing peerswarm)', function () {
  this.timeout(30_000)

  it('leaves globalThis.WebSocket as it was, dials WebSockets all the same, and installs only Promise.withResolvers (where missing)', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child], { cwd: root })
    const result = JSON.parse(stdout.trim().split('\n').at(-1) as string) as Record<string, unknown>
    expect(result).to.include({ hasResolvers: true, webSocketAfterImport: true, webSocketAfterDial: true, connected: true })
    const major = Number(String(result.node).split('.')[0])
    // Node 22 has both natively; Node 20 has neither, and peerswarm sets no WebSocket.
    expect(result.hadWebSocket).to.equal(major >= 22)
    expect(result.hadResolvers).to.equal(major >= 22)
  })
})
