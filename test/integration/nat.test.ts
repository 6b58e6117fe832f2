/**
 * Through real NATs: the rootless test bed of test/fixtures/nat-testbed.ts (namespaces inside
 * `unshare`, two nftables NATs masquerading 10.0.1.0/24 and 10.0.2.0/24 behind 198.18.0.1 and
 * 198.18.0.2, a relay and a public peer on 198.18.0.0/24; all gone after the run). Skipped, with
 * the reason, where user namespaces or `nft` are missing; `PEERSWARM_REQUIRE_ALL=1` makes that a
 * failure.
 *
 * Checks: both NATed peers get a reservation at the relay; a dials b through it and both see a
 * ping over the relayed (limited) connection, and a GossipSub message goes each way over it
 * (the peers hold DCUtR back until then, so that it is the only connection); DCUtR turns it into a direct connection between
 * the two NATs' public addresses (a and b dial from port 4002, which the NATs keep), a closes the
 * relayed one, and ping and a GossipSub message go over the direct one; AutoNAT v2 tells the
 * NATed peers that their NAT's public address is not reachable, and the public peer that its
 * address is. A second run with `masquerade fully-random` NATs (a new random port per
 * connection) is the negative control: DCUtR gives up with `AttemptsExceeded` after 3 attempts
 * and the relayed connection keeps carrying pings.
 *
 * Then examples/chat.ts (test/fixtures/nat-chat.ts drives it): chat-relay.ts on the relay
 * host and a chat behind each NAT; they chat through the relay, DCUtR connects them directly,
 * the relayed connection closes, and they chat over the direct one.
 *
 * Last, `npm run demo:nat` (scripts/demo-nat.ts) as a user runs it: it exits 0 by itself, and its
 * live view, fed by the peers in the namespaces, shows A's relayed (limited) and direct
 * connections to B side by side, then the direct one alone.
 */
import { spawn } from 'node:child_process'
import { expect } from 'chai'
import { requireCapability } from '../fixtures/capabilities.js'
import { runNatTestbed } from '../fixtures/nat-testbed.js'
import type { PeerLine, TestbedRun } from '../fixtures/nat-testbed.js'
import type { ConnectionView, ViewSnapshot } from '../../src/view/index.js'

describe('through real NATs (rootless namespaces, nftables masquerade)', function () {
  this.timeout(120_000)
  let run: TestbedRun

  before(async function () {
    requireCapability(this, 'nat')
    run = await runNatTestbed({ timeout: 100_000 })
  })

  function lines (role: string, event: string): PeerLine[] {
    return run.lines.filter(l => l.role === role && l.event === event)
  }

  function explain (): string {
    return `peers printed:\n${run.lines.map(l => JSON.stringify(l)).join('\n')}\nstderr:\n${run.stderr.slice(0, 4_000)}`
  }

  it('every peer reached its goals and the test bed was torn down cleanly', () => {
    expect(run.code, explain()).to.equal(0)
    for (const role of ['public', 'a', 'b']) expect(lines(role, 'done'), `${role}: ${explain()}`).to.have.length(1)
  })

  it('(a) both NATed peers get reservations at the relay', () => {
    expect(lines('a', 'reserved'), explain()).to.have.length(1)
    expect(lines('b', 'reserved'), explain()).to.have.length(1)
    expect(lines('relay', 'relay:ReservationReqAccepted').length, explain()).to.be.at.least(2)
  })

  it('(b) they connect through the relay (limited on both sides), ping and exchange GossipSub messages over it', () => {
    expect(lines('a', 'connected').some(l => l.peer === 'b' && l.limited === true && l.endpoint === 'Dialer'), explain()).to.equal(true)
    expect(lines('b', 'connected').some(l => l.peer === 'a' && l.limited === true && l.endpoint === 'Listener'), explain()).to.equal(true)
    expect(lines('a', 'relayedPing'), explain()).to.have.length(1)
    expect(lines('b', 'relayedPing'), explain()).to.have.length(1)
    expect(lines('relay', 'relay:CircuitReqAccepted').length, explain()).to.be.at.least(1)
    for (const [role, other] of [['a', 'b'], ['b', 'a']] as const) {
      // Sent while the relayed connection was the only one to the other (DCUtR held back until
      // both messages crossed), and received over it: nothing else connected the two then.
      const [sent] = lines(role, 'relayedGossipSent')
      expect(sent?.connections, explain()).to.have.length(1)
      expect((sent?.connections as Array<{ limited: boolean, remote: string }>)[0], explain()).to.deep.include({ limited: true })
      const [received] = lines(other, 'relayedGossipReceived')
      expect(received?.text, explain()).to.equal(`from ${role} over the relay`)
      const connections = received?.connections as Array<{ limited: boolean, remote: string }> | undefined
      expect(connections?.map(c => c.limited), explain()).to.deep.equal([true])
      expect(connections?.[0]?.remote, explain()).to.include('/p2p-circuit')
      // Only then did the hole punch start, and the direct connection come up.
      const released = lines(other, 'dcutrReleased')[0]?.at as number
      expect(released, explain()).to.be.at.least(received?.at as number)
      expect(lines(other, 'direct')[0]?.at as number, explain()).to.be.greaterThan(released)
    }
  })

  it('(c) DCUtR makes a direct connection between the two NATs\' public addresses, and ping and GossipSub move to it', () => {
    for (const [role, otherNat] of [['a', '198.18.0.2'], ['b', '198.18.0.1']] as const) {
      // identify's observation of the dial port is the candidate: the NAT keeps the port (masquerade).
      expect(lines(role, 'candidate').some(l => l.addr === `/ip4/${role === 'a' ? '198.18.0.1' : '198.18.0.2'}/tcp/4002`), explain()).to.equal(true)
      const [direct] = lines(role, 'direct')
      // The other NAT's public address and the port its peer dials from: not the relay, not a private address.
      expect(String(direct?.remote), explain()).to.match(new RegExp(`^/ip4/${otherNat.replaceAll('.', '\\.')}/tcp/4002(/p2p/|$)`))
      expect(lines(role, 'directPing'), explain()).to.have.length(1)
    }
    // One punched connection, dialed by both: a upgraded it as the dialer, b (roleOverride) as the listener.
    expect(lines('a', 'direct')[0], explain()).to.deep.include({ endpoint: 'Dialer' }).and.not.have.property('roleOverride')
    expect(lines('b', 'direct')[0], explain()).to.deep.include({ endpoint: 'Dialer', roleOverride: 'Listener' })
    expect(lines('a', 'gossipSent'), explain()).to.have.length(1)
    const [gossip] = lines('b', 'gossipReceived')
    expect(gossip?.text, explain()).to.match(/^from a over the punched connection/)
    // By then the relayed connection was closed: the message came over the direct one.
    const connections = gossip?.connections as Array<{ limited: boolean, remote: string }> | undefined
    expect(connections?.map(c => c.limited), explain()).to.deep.equal([false])
    expect(connections?.[0]?.remote, explain()).to.match(/^\/ip4\/198\.18\.0\.1\/tcp\/4002/)
  })

  it('(d) AutoNAT: the NATed peers learn their NAT address is not reachable, the public peer that its address is', () => {
    for (const [role, nat] of [['a', '198.18.0.1'], ['b', '198.18.0.2']] as const) {
      const results = lines(role, 'autonat')
      expect(results.length, explain()).to.be.at.least(1)
      // Only ever their NAT's public address is tested: never a private one.
      for (const result of results) expect(String(result.addr)).to.match(new RegExp(`^/ip4/${nat.replaceAll('.', '\\.')}/tcp/`))
      expect(results.every(r => r.ok === false), explain()).to.equal(true)
      expect(lines(role, 'notReachable'), explain()).to.have.length(1)
    }
    expect(lines('public', 'reachable')[0]?.addr, explain()).to.equal('/ip4/198.18.0.20/tcp/4001')
  })
})

describe('through real NATs that pick a random port per connection (symmetric: hole punching cannot work)', function () {
  this.timeout(120_000)
  let run: TestbedRun

  before(async function () {
    requireCapability(this, 'nat')
    run = await runNatTestbed({ randomPorts: true, timeout: 100_000 })
  })

  function lines (role: string, event: string): PeerLine[] {
    return run.lines.filter(l => l.role === role && l.event === event)
  }

  function explain (): string {
    return `peers printed:\n${run.lines.map(l => JSON.stringify(l)).join('\n')}\nstderr:\n${run.stderr.slice(0, 4_000)}`
  }

  it('DCUtR fails with a typed error after 3 attempts, no direct connection, and the relayed connection stays and carries pings', () => {
    expect(run.code, explain()).to.equal(0)
    for (const role of ['a', 'b']) expect(lines(role, 'done'), `${role}: ${explain()}`).to.have.length(1)
    const [failed] = lines('b', 'punchFailed')
    expect(failed, explain()).to.deep.include({ kind: 'AttemptsExceeded', failure: 'DialFailed', code: 'ERR_DCUTR_ATTEMPTS_EXCEEDED' })
    expect(lines('a', 'directDialsFailed')[0]?.count, explain()).to.equal(3)
    expect(run.lines.filter(l => l.event === 'direct'), explain()).to.deep.equal([])
    // GossipSub over the relayed connection, each way, here too.
    expect(lines('a', 'relayedGossipReceived')[0]?.text, explain()).to.equal('from b over the relay')
    expect(lines('b', 'relayedGossipReceived')[0]?.text, explain()).to.equal('from a over the relay')
    for (const role of ['a', 'b']) {
      const [after] = lines(role, 'relayedPingAfterPunch')
      const connections = after?.connections as Array<{ limited: boolean, remote: string }> | undefined
      expect(connections?.map(c => c.limited), explain()).to.deep.equal([true])
      expect(connections?.[0]?.remote, explain()).to.include('/p2p-circuit')
    }
  })
})

describe('examples/chat.ts behind the two NATs, with examples/chat-relay.ts on the public segment', function () {
  this.timeout(150_000)
  let run: TestbedRun

  before(async function () {
    requireCapability(this, 'nat')
    run = await runNatTestbed({ command: [process.execPath, '--import', 'tsx', 'test/fixtures/nat-chat.ts'], timeout: 120_000 })
  })

  function step (event: string): Record<string, unknown> {
    return run.lines.find(l => l.role === 'chat' && l.event === event) ?? {}
  }

  function explain (): string {
    return `driver printed:\n${run.lines.map(l => JSON.stringify(l)).join('\n')}\nstderr:\n${run.stderr.slice(0, 4_000)}`
  }

  it('chat through the relay, then directly through both NATs once DCUtR punched a hole, lines going both ways each time', () => {
    expect(run.code, explain()).to.equal(0)
    const { a: idA, b: idB } = step('ids') as { a: string, b: string }
    expect(step('relay').address, explain()).to.match(/^\/ip4\/198\.18\.0\.10\/tcp\/4001\/p2p\//)
    expect(step('reachable').line, explain()).to.equal(`Reachable through the relay at ${String(step('relay').address)}/p2p-circuit/p2p/${idA}`)
    expect(step('relayed'), explain()).to.deep.equal({ role: 'chat', event: 'relayed', a: `Connected to ${idB} through the relay`, b: `Connected to ${idA} through the relay` })
    expect(step('firstLines'), explain()).to.deep.include({ a: `Got message: 'hello from b' from peer: ${idB}`, b: `Got message: 'hello from a' from peer: ${idA}` })
    // Each reports the direct connection, to the other NAT's public address and dial port.
    const direct = step('direct')
    expect(direct.a, explain()).to.match(new RegExp(`^Direct connection to ${idB} \\(hole punched through the relay\\): /ip4/198\\.18\\.0\\.2/tcp/4002(/|$)`))
    expect(direct.b, explain()).to.match(new RegExp(`^Direct connection to ${idA} \\(hole punched through the relay\\): /ip4/198\\.18\\.0\\.1/tcp/4002(/|$)`))
    expect(step('relayedClosed').relay, explain()).to.match(new RegExp(`^Circuit from ${idB} to ${idA} closed`))
    // After the circuit closed, the direct connection carried the chat both ways.
    expect(step('directLines'), explain()).to.deep.include({ a: `Got message: 'directly from b' from peer: ${idB}`, b: `Got message: 'directly from a' from peer: ${idA}` })
    expect(step('disconnects').lines, explain()).to.deep.equal([])
    expect(step('exited').codes, explain()).to.deep.equal([0, 0])
  })
})

describe('npm run demo:nat, and its live view of the relayed connection becoming direct', function () {
  this.timeout(150_000)

  before(function () {
    requireCapability(this, 'nat')
  })

  /** Snapshots from the view's event stream until `done` says so (or `signal` aborts). */
  async function watch (url: string, done: (snapshot: ViewSnapshot) => boolean, signal: AbortSignal): Promise<ViewSnapshot> {
    const response = await fetch(`${url}events`, { signal })
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    const decoder = new TextDecoder()
    let buffer = ''
    for (;;) {
      const { value, done: ended } = await reader.read()
      if (ended) throw new Error('the view\'s event stream ended')
      buffer += decoder.decode(value, { stream: true })
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const data = /^event: snapshot\ndata: (.*)$/m.exec(block)?.[1]
        if (data == null) continue
        const snapshot = JSON.parse(data) as ViewSnapshot
        if (done(snapshot)) {
          await reader.cancel()
          return snapshot
        }
      }
    }
  }

  /** A's connections to B in `snapshot` (by the names the demo gives them). */
  function aToB (snapshot: ViewSnapshot): ConnectionView[] {
    const a = snapshot.nodes.find(n => n.name.startsWith('A '))
    const b = snapshot.nodes.find(n => n.name.startsWith('B '))
    return a == null || b == null ? [] : a.connections.filter(c => c.peer === b.peerId)
  }

  it('exits 0 by itself, and its view shows the relayed (limited) connection beside the direct one, then the direct one alone', async () => {
    const demo = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo-nat.ts', '--hold', '4'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    demo.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    demo.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const exited = new Promise<number | null>(resolve => { demo.once('exit', resolve) })
    const controller = new AbortController()
    const timer = setTimeout(() => { controller.abort(); demo.kill('SIGKILL') }, 120_000)
    const explain = (): string => `demo printed:\n${stdout}\nstderr:\n${stderr.slice(0, 4_000)}`
    try {
      // The URL comes first, before the test bed is built.
      for (let i = 0; i < 300 && !/Live view: http/.test(stdout); i++) await new Promise(resolve => setTimeout(resolve, 100))
      const url = /Live view: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stdout)?.[1]
      expect(url, explain()).to.be.a('string')
      const page = await (await fetch(url as string)).text()
      expect(page).to.include('relayed (limited) connection')

      const both = await watch(url as string, snapshot => {
        const kinds = aToB(snapshot).map(c => c.limited)
        return kinds.includes(true) && kinds.includes(false)
      }, controller.signal)
      const [relayed, direct] = [aToB(both).find(c => c.limited), aToB(both).find(c => !c.limited)]
      expect(relayed?.transport, explain()).to.equal('p2p-circuit')
      expect(relayed?.address, explain()).to.include('/p2p-circuit')
      expect(direct?.address, explain()).to.match(/^\/ip4\/198\.18\.0\.2\/tcp\/4002/)
      // Then A closes the relayed one: the direct connection alone (the state the view holds).
      const after = await watch(url as string, snapshot => aToB(snapshot).length === 1 && !aToB(snapshot)[0].limited, controller.signal)
      expect(aToB(after)[0].address, explain()).to.match(/^\/ip4\/198\.18\.0\.2\/tcp\/4002/)
      expect(await exited, explain()).to.equal(0)
      expect(stdout, explain()).to.include('The relayed connection became direct: done.')
    } finally {
      clearTimeout(timer)
      controller.abort()
      demo.kill('SIGKILL')
    }
  })
})
