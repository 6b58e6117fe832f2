/**
 * Through real NATs: the rootless test bed of test/fixtures/nat-testbed.ts (namespaces inside
 * `unshare`, two nftables NATs masquerading 10.0.1.0/24 and 10.0.2.0/24 behind 198.18.0.1 and
 * 198.18.0.2, a relay and a public peer on 198.18.0.0/24; all gone after the run). Skipped, with
 * the reason, where user namespaces or `nft` are missing; `PEERSWARM_REQUIRE_ALL=1` makes that a
 * failure.
 *
 * Checks: both NATed peers get a reservation at the relay; a dials b through it and both see a
 * ping over the relayed (limited) connection; DCUtR turns it into a direct connection between
 * the two NATs' public addresses (a and b dial from port 4002, which the NATs keep), a closes the
 * relayed one, and ping and a GossipSub message go over the direct one; AutoNAT v2 tells the
 * NATed peers that their NAT's public address is not reachable, and the public peer that its
 * address is. A second run with `masquerade fully-random` NATs (a new random port per
 * connection) is the negative control: DCUtR gives up with `AttemptsExceeded` after 3 attempts
 * and the relayed connection keeps carrying pings.
 */
import { expect } from 'chai'
import { requireCapability } from '../fixtures/capabilities.js'
import { runNatTestbed } from '../fixtures/nat-testbed.js'
import type { PeerLine, TestbedRun } from '../fixtures/nat-testbed.js'

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

  it('(b) they connect through the relay (limited on both sides) and ping over it', () => {
    expect(lines('a', 'connected').some(l => l.peer === 'b' && l.limited === true && l.endpoint === 'Dialer'), explain()).to.equal(true)
    expect(lines('b', 'connected').some(l => l.peer === 'a' && l.limited === true && l.endpoint === 'Listener'), explain()).to.equal(true)
    expect(lines('a', 'relayedPing'), explain()).to.have.length(1)
    expect(lines('b', 'relayedPing'), explain()).to.have.length(1)
    expect(lines('relay', 'relay:CircuitReqAccepted').length, explain()).to.be.at.least(1)
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
    for (const role of ['a', 'b']) {
      const [after] = lines(role, 'relayedPingAfterPunch')
      const connections = after?.connections as Array<{ limited: boolean, remote: string }> | undefined
      expect(connections?.map(c => c.limited), explain()).to.deep.equal([true])
      expect(connections?.[0]?.remote, explain()).to.include('/p2p-circuit')
    }
  })
})
