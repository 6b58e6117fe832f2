/**
 * The examples run as a user runs them (a child process through tsx), finish in time and
 * print what they promise. The chat has its own test (chat.test.ts).
 */
import { expect } from 'chai'
import { execFile, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** Run `examples/<file>` with `args`; resolves with its exit code and output. */
async function run (file: string, args: string[] = [], timeout = 30_000): Promise<{ code: number | null, stdout: string }> {
  return await new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', `examples/${file}`, ...args], { timeout }, (error, stdout, stderr) => {
      if (error != null && error.code == null) resolve({ code: -1, stdout: `${stdout}\n${stderr}\n${error.message}` })
      else resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout: `${stdout}${stderr}` })
    })
  })
}

describe('examples', function () {
  this.timeout(60_000)

  it('npm run demo: three nodes discover each other over mDNS on 127.0.0.1 and exchange gossipsub greetings', async () => {
    const { code, stdout } = await run('demo.ts')
    expect(stdout).to.match(/done: every node received all 2 greetings/)
    // Both ends of a pair discover each other; only one dials, so each pair has one connection.
    expect(stdout).to.match(/connections: 3 for 3 pairs/)
    expect(code).to.equal(0)
  })

  it('npm run demo serves its network view while it runs, and still exits 0 by itself', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/demo.ts', '--seconds', '2'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
    const exited = new Promise<number | null>(resolve => child.on('exit', resolve))
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const check = (): void => {
          const match = /^view: (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(output)
          if (match != null) resolve(match[1])
        }
        child.stdout.on('data', check)
        void exited.then(() => { reject(new Error(`the demo exited without printing its view's URL:\n${output}`)) })
      })
      const page = await fetch(url)
      expect(page.status).to.equal(200)
      expect(await page.text()).to.include('<title>peerswarm demo: 3 nodes</title>')
      const snapshot = await (await fetch(`${url}snapshot.json`)).json() as { nodes: Array<{ name: string }> }
      expect(snapshot.nodes.map(n => n.name)).to.deep.equal(['node 0', 'node 1', 'node 2'])
      expect(await exited, output).to.equal(0)
      expect(output).to.match(/done: every node received all 2 greetings/)
      expect(output).to.match(/delivered \d+ messages, mean latency/)
    } finally {
      child.kill()
    }
  })

  it('npm run demo -- --no-view serves nothing and exits after the greetings', async () => {
    const { code, stdout } = await run('demo.ts', ['--no-view'])
    expect(code, stdout).to.equal(0)
    expect(stdout).not.to.match(/view: http/)
    expect(stdout).to.match(/done: every node received all 2 greetings/)
  })

  it('ping-memory pings over the memory transport', async () => {
    const { code, stdout } = await run('ping-memory.ts')
    expect(code, stdout).to.equal(0)
  })

  it('metrics-prometheus counts published, received and forwarded messages per node', async () => {
    const { code, stdout } = await run('metrics-prometheus.ts')
    expect(code, stdout).to.equal(0)
    expect(stdout).to.include('gossipsub_messages_published_total{node="node0",topic="metrics-demo"} 5')
    expect(stdout).to.include('gossipsub_messages_received_total{node="node2",topic="metrics-demo"} 5')
  })

  it('custom-behaviour: two swarms exchange one greeting of the hello protocol', async () => {
    const { code, stdout } = await run('custom-behaviour.ts')
    expect(code, stdout).to.equal(0)
    expect(stdout).to.include('bob was greeted by alice')
    expect(stdout).to.include('alice heard: hello, alice!')
  })

  it('file-sharing: a getter finds the provider over mDNS on 127.0.0.1 and fetches a file in chunks', async () => {
    const { code, stdout } = await run('file-sharing.ts')
    expect(code, stdout).to.equal(0)
    expect(stdout).to.match(/getter: \S+ provides generated\.bin \(1060921 bytes\)/)
    expect(stdout).to.include('100% 1036/1036 KiB')
    expect(stdout).to.match(/fetched generated\.bin: 1060921 bytes, sha-256 [0-9a-f]{16}… matches/)
  })

  it('first-swarm (docs/tutorial.md): run twice, each process prints the other\'s greetings and pings', async () => {
    const start = (args: string[]) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'examples/first-swarm.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      const out = { text: '' }
      child.stdout.on('data', (chunk: Buffer) => { out.text += chunk.toString() })
      child.stderr.on('data', (chunk: Buffer) => { out.text += chunk.toString() })
      return { child, out }
    }
    const until = async (what: () => RegExpExecArray | null, output: () => string): Promise<RegExpExecArray> => {
      const deadline = Date.now() + 30_000
      for (;;) {
        const match = what()
        if (match != null) return match
        if (Date.now() > deadline) throw new Error(`first-swarm did not print what was expected within 30 s:\n${output()}`)
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    }
    const a = start([])
    let b: ReturnType<typeof start> | undefined
    try {
      const [, address] = await until(() => /^listening on (\/ip4\/127\.0\.0\.1\/tcp\/\d+)$/m.exec(a.out.text), () => a.out.text)
      b = start([address])
      const both = (): string => `first:\n${a.out.text}\nsecond:\n${b?.out.text ?? ''}`
      const idOf = (text: string): string => /^I am (\S+)$/m.exec(text)?.[1].slice(-6) ?? '(unknown)'
      await until(() => new RegExp(`^received: hello #\\d+ from ${idOf(b?.out.text ?? '')}$`, 'm').exec(a.out.text), both)
      await until(() => new RegExp(`^received: hello #\\d+ from ${idOf(a.out.text)}$`, 'm').exec(b?.out.text ?? ''), both)
      await until(() => /^ping: [\d.]+ ms$/m.exec(a.out.text) != null ? /^ping: [\d.]+ ms$/m.exec(b?.out.text ?? '') : null, both)
    } finally {
      a.child.kill()
      b?.child.kill()
    }
  })

  it('first-swarm is the program of README.md, which imports from \'peerswarm\' as a user does', () => {
    const readme = readFileSync('README.md', 'utf8')
    const marker = readme.indexOf('<!-- the same as examples/first-swarm.ts')
    expect(marker, 'the README marks its program').to.be.greaterThan(-1)
    const shown = /```ts\n([\s\S]*?)\n```/.exec(readme.slice(marker))?.[1]
    const file = readFileSync('examples/first-swarm.ts', 'utf8')
      .replace(/^\/\*\*[\s\S]*?\*\/\n/, '')
      .trimEnd()
    expect(shown).to.equal(file)
  })

  it('dht: two nodes on 127.0.0.1, one bootstrapped from the other, put, get, provide and find providers typed on stdin', async () => {
    const start = (args: string[]) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'examples/dht.ts', '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
      let output = ''
      child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
      child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
      const exited = new Promise<number | null>(resolve => child.on('exit', resolve))
      /** Resolves with the first match of `pattern` in the output (bounded by 30 s). */
      const expectOutput = async (pattern: RegExp): Promise<RegExpExecArray> => {
        const deadline = Date.now() + 30_000
        for (;;) {
          const match = pattern.exec(output)
          if (match != null) return match
          if (Date.now() > deadline || child.exitCode != null) throw new Error(`no ${String(pattern)} in the output:\n${output}`)
          await new Promise(resolve => setTimeout(resolve, 50))
        }
      }
      return { child, exited, expectOutput, type: (line: string) => { child.stdin.write(`${line}\n`) } }
    }
    const a = start([])
    const b = { current: undefined as ReturnType<typeof start> | undefined }
    try {
      const [, address] = await a.expectOutput(/^Listening on (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)$/m)
      b.current = start(['--peer', address])
      const node = b.current
      const [, bId] = await node.expectOutput(/^Local peer id: (\S+)$/m)
      await node.expectOutput(/^Bootstrap done$/m)
      node.type('put mykey my value')
      await node.expectOutput(/^Successfully put record "mykey"$/m)
      a.type('get mykey')
      await a.expectOutput(/^Got record "mykey" "my value"$/m)
      node.type('provide item')
      await node.expectOutput(/^Successfully put provider record "item"$/m)
      a.type('providers item')
      await a.expectOutput(new RegExp(`^Peer ${bId} provides key "item"$`, 'm'))
      a.child.stdin.end()
      node.child.stdin.end()
      expect(await a.exited).to.equal(0)
      expect(await node.exited).to.equal(0)
    } finally {
      a.child.kill()
      b.current?.child.kill()
    }
  })
})
