import { expect } from 'chai'
import { execFileSync } from 'node:child_process'
import { requireCapability } from '../fixtures/capabilities.js'
import { Chat } from '../fixtures/chat-process.js'

/**
 * Hosts on a LAN of their own: one network namespace per host, each with an interface `lan0`
 * plugged (veth) into a bridge that lives in one more namespace. Nothing touches the machine's
 * own interfaces; `remove()` deletes every namespace, which deletes the links with them.
 */
class Lan {
  readonly hosts: Array<{ readonly ns: string, readonly ipv4: string, readonly ipv6: string }> = []
  private readonly namespaces: string[] = []
  private readonly prefix = `ps${process.pid % 10_000}${Math.random().toString(36).slice(2, 6)}`

  constructor (count: number) {
    try {
      this.build(count)
    } catch (err) {
      this.remove()
      throw err
    }
  }

  private build (count: number): void {
    const bridge = this.namespace('br')
    ip(['-n', bridge, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0'])
    ip(['-n', bridge, 'link', 'set', 'br0', 'up'])
    for (let i = 1; i <= count; i++) {
      const ns = this.namespace(`h${i}`)
      // No duplicate address detection: addresses are usable at once, no waiting.
      run(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'])
      ip(['link', 'add', 'lan0', 'netns', ns, 'type', 'veth', 'peer', 'name', `port${i}`, 'netns', bridge])
      ip(['-n', bridge, 'link', 'set', `port${i}`, 'master', 'br0', 'up'])
      const host = { ns, ipv4: `10.231.0.${i}`, ipv6: `fd77::${i}` }
      ip(['-n', ns, 'addr', 'add', `${host.ipv4}/24`, 'dev', 'lan0'])
      ip(['-n', ns, 'addr', 'add', `${host.ipv6}/64`, 'dev', 'lan0', 'nodad'])
      ip(['-n', ns, 'link', 'set', 'lo', 'up'])
      ip(['-n', ns, 'link', 'set', 'lan0', 'up'])
      this.hosts.push(host)
    }
  }

  remove (): void {
    for (const ns of this.namespaces.splice(0)) {
      try {
        ip(['netns', 'del', ns])
      } catch {
        // Already gone.
      }
    }
  }

  private namespace (name: string): string {
    const ns = `${this.prefix}-${name}`
    ip(['netns', 'add', ns])
    this.namespaces.push(ns)
    return ns
  }
}

function ip (args: string[]): void {
  run(['ip', ...args])
}

function run (command: string[]): void {
  execFileSync(command[0], command.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 })
}

describe('mdns between hosts: chats in network namespaces on a bridged LAN', function () {
  this.timeout(60_000)
  // Network namespaces need root; without it these tests are skipped (CI requires them).
  before(function () { requireCapability(this, 'netns') })
  let lan: Lan | undefined
  const chats: Chat[] = []
  afterEach(() => {
    for (const chat of chats.splice(0)) chat.kill()
    lan?.remove()
    lan = undefined
  })

  for (const family of ['4', '6'] as const) {
    it(`three hosts discover each other over IPv${family} multicast, connect over IPv${family} TCP and chat`, async () => {
      lan = new Lan(3)
      const service = `_ps${Math.random().toString(36).slice(2, 10)}._udp.local`
      for (const host of lan.hosts) {
        const listen = family === '4' ? `/ip4/${host.ipv4}/tcp/0` : `/ip6/${host.ipv6}/tcp/0`
        chats.push(new Chat(['--interface', 'lan0', '--ip', family, '--service', service, '--listen', listen], ['ip', 'netns', 'exec', host.ns]))
      }
      const ids = await Promise.all(chats.map(async chat => chat.peerId()))
      const addressOf = (i: number) => family === '4' ? `/ip4/${lan!.hosts[i].ipv4}/tcp/` : `/ip6/${lan!.hosts[i].ipv6}/tcp/`
      await Promise.all(chats.map(async (chat, i) => {
        for (const [j, id] of ids.entries()) {
          if (j === i) continue
          await chat.line(new RegExp(`^mDNS discovered a new peer: ${id}$`))
          await chat.line(new RegExp(`^Peer ${id} joined test-net$`))
        }
      }))
      // Each listens on its LAN address only, so the connections went over IPv${family}.
      for (const [i, chat] of chats.entries()) {
        expect(await chat.line(/^Local node is listening on /)).to.satisfy((l: string) => l.startsWith(`Local node is listening on ${addressOf(i)}`))
      }

      chats[0].type(`over IPv${family}`)
      for (const chat of chats.slice(1)) {
        expect(await chat.line(/^Got message: /)).to.equal(`Got message: 'over IPv${family}' from peer: ${ids[0]}`)
      }
      expect(await Promise.all(chats.map(async chat => chat.end()))).to.deep.equal([0, 0, 0])
    })
  }
})
