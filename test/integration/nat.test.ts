/**
 * Through real NATs: the rootless test bed of test/fixtures/nat-testbed.ts (namespaces inside
 * `unshare`, two nftables NATs masquerading 10.0.1.0/24 and 10.0.2.0/24 behind 198.18.0.1 and
 * 198.18.0.2, a relay and a public peer on 198.18.0.0/24; all gone after the run). Skipped, with
 * the reason, where user namespaces or `nft` are missing; `PEERSWARM_REQUIRE_ALL=1` makes that a
 * failure.
 *
 * Checks: both NATed peers get a reservation at the relay; a dials b through it and both see a
 * ping over the relayed (limited) connection; AutoNAT v2 tells the NATed peers that their NAT's
 * public address is not reachable, and the public peer that its address is.
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
