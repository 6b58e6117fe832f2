import { expect } from 'chai'
import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'

/** One `examples/chat.ts` process, on 127.0.0.1 only, with its output kept line by line. */
class Chat {
  readonly lines: string[] = []
  readonly exited: Promise<number | null>
  private readonly child: ChildProcessWithoutNullStreams
  private readonly waiters = new Set<() => void>()
  private buffered = ''

  constructor (service: string) {
    this.child = spawn(process.execPath, [
      '--import', 'tsx', 'examples/chat.ts', '--interface', '127.0.0.1', '--service', service, '--listen', '/ip4/127.0.0.1/tcp/0'
    ], { stdio: 'pipe' })
    this.child.stdout.setEncoding('utf8')
    this.child.stdout.on('data', (chunk: string) => {
      const parts = (this.buffered + chunk).split('\n')
      this.buffered = parts.pop() ?? ''
      this.lines.push(...parts)
      for (const waiter of this.waiters) waiter()
    })
    this.child.stderr.resume()
    this.exited = new Promise(resolve => { this.child.on('exit', (code) => { resolve(code) }) })
  }

  /** The first output line matching `pattern` (waits up to `timeout` ms for it). */
  async line (pattern: RegExp, timeout = 15_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.lines.find(l => pattern.test(l))
        if (found === undefined) return false
        this.waiters.delete(check)
        clearTimeout(timer)
        resolve(found)
        return true
      }
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        reject(new Error(`no line matching ${String(pattern)} within ${timeout} ms; output:\n${this.lines.join('\n')}`))
      }, timeout)
      if (!check()) this.waiters.add(check)
    })
  }

  type (text: string): void {
    this.child.stdin.write(`${text}\n`)
  }

  /** End input, which makes the chat close its node and exit. */
  async end (): Promise<number | null> {
    this.child.stdin.end()
    return this.exited
  }

  kill (): void {
    this.child.kill('SIGKILL')
  }
}

describe('examples/chat: two processes on 127.0.0.1', function () {
  this.timeout(60_000)
  const chats: Chat[] = []
  afterEach(() => { for (const chat of chats.splice(0)) chat.kill() })

  it('find each other over mDNS, and a line typed in one is printed by the other', async () => {
    const service = `_ps${Math.random().toString(36).slice(2, 10)}._udp.local`
    const a = new Chat(service)
    const b = new Chat(service)
    chats.push(a, b)
    const idOf = async (chat: Chat) => (await chat.line(/^Local peer id: /)).slice('Local peer id: '.length)
    const [idA, idB] = await Promise.all([idOf(a), idOf(b)])
    await Promise.all([a.line(new RegExp(`^Peer ${idB} joined test-net$`)), b.line(new RegExp(`^Peer ${idA} joined test-net$`))])
    await Promise.all([a.line(new RegExp(`^mDNS discovered a new peer: ${idB}$`)), b.line(new RegExp(`^mDNS discovered a new peer: ${idA}$`))])

    a.type('hello from a')
    expect(await b.line(/^Got message: /)).to.equal(`Got message: 'hello from a' from peer: ${idA}`)
    b.type('and back from b')
    expect(await a.line(/^Got message: /)).to.equal(`Got message: 'and back from b' from peer: ${idB}`)

    expect(await Promise.all([a.end(), b.end()])).to.deep.equal([0, 0])
  })
})
