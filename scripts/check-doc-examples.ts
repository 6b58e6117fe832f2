/**
 * Type-checks every TypeScript example of the documentation: the ```ts blocks of README.md and
 * docs/*.md, and those of doc comments in src/ (which typedoc publishes). Each becomes a
 * module under .doc-examples/ and the TypeScript compiler checks them all against the sources.
 *
 * An example's imports of 'peerswarm', 'peerswarm/testing' and 'peerswarm/view' are pointed at
 * the sources. It may also use, without importing them, the main names of each (`IN_SCOPE`),
 * a `key` (the node's keypair) and a `swarm` (of any behaviour); an example that starts with
 * `.` continues a `SwarmBuilder` chain.
 *
 * A markdown block preceded by `<!-- source: path -->` is part of that file of the repository
 * instead (a guide that walks through a runnable example): the blocks of one path, in order and
 * joined by one blank line, must be exactly the file, which the project's own type-check covers.
 *
 * Run: npx tsx scripts/check-doc-examples.ts (part of `npm test`)
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'

const root = join(import.meta.dirname, '..')
const out = join(root, '.doc-examples')

interface Example { readonly source: string, readonly line: number, readonly code: string }

/** A markdown block that is a part of a repository file (`<!-- source: path -->` before it). */
interface Part extends Example { readonly path: string }

const parts: Part[] = []

/** The ```ts blocks of a markdown file; those marked as parts of a file go to `parts`. */
function fromMarkdown (file: string): Example[] {
  const lines = readFileSync(file, 'utf8').split('\n')
  return blocks(file, lines).filter((example) => {
    const path = /^<!-- source: (\S+) -->$/.exec(lines[example.line - 2]?.trim() ?? '')?.[1]
    if (path == null) return true
    parts.push({ ...example, path })
    return false
  })
}

/** Every file that guides show in parts must be exactly the concatenation of its parts. */
function checkParts (): boolean {
  let ok = true
  const byPath = new Map<string, Part[]>()
  for (const part of parts) {
    const key = `${part.source}\0${part.path}`
    byPath.set(key, [...byPath.get(key) ?? [], part])
  }
  for (const group of byPath.values()) {
    const { source, path } = group[0]
    const shown = group.map(part => part.code.replace(/^\n+|\n+$/g, '')).join('\n\n')
    const actual = readFileSync(join(root, path), 'utf8').replace(/\n+$/, '')
    if (shown === actual) continue
    ok = false
    const shownLines = shown.split('\n')
    const actualLines = actual.split('\n')
    const at = shownLines.findIndex((line, i) => line !== actualLines[i])
    const line = at < 0 ? shownLines.length : at
    console.error(`${source}: its blocks of ${path} differ from the file at the file's line ${line + 1}:\n  guide: ${shownLines[line] ?? '(end)'}\n  file:  ${actualLines[line] ?? '(end)'}`)
  }
  return ok
}

/** The ```ts blocks inside the doc comments of a source file. */
function fromSource (file: string): Example[] {
  const lines = readFileSync(file, 'utf8').split('\n').map(line => {
    const match = /^\s*\* ?(.*)$/.exec(line)
    return match == null ? '' : match[1]
  })
  return blocks(file, lines)
}

function blocks (file: string, lines: string[]): Example[] {
  const examples: Example[] = []
  let start = -1
  for (const [i, line] of lines.entries()) {
    if (start < 0 && line.trim() === '```ts') start = i
    else if (start >= 0 && line.trim() === '```') {
      examples.push({ source: relative(root, file), line: start + 1, code: lines.slice(start + 1, i).join('\n') })
      start = -1
    }
  }
  return examples
}

function walk (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry => entry.isDirectory()
    ? walk(join(dir, entry.name))
    : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [])
}

const examples = [
  ...fromMarkdown(join(root, 'README.md')),
  ...readdirSync(join(root, 'docs')).filter(f => f.endsWith('.md')).flatMap(f => fromMarkdown(join(root, 'docs', f))),
  ...walk(join(root, 'src')).flatMap(fromSource)
]

/** Where an example's imports of the package point: the sources. */
const SOURCES: Record<string, string> = { peerswarm: '../src/index.js', 'peerswarm/testing': '../src/testing/index.js', 'peerswarm/view': '../src/view/index.js' }

/** Names every example may use without importing them (older examples rely on it). */
const IN_SCOPE: Record<string, string[]> = {
  peerswarm: ['SwarmBuilder', 'combine', 'toggle', 'dummy', 'ping', 'identify', 'connectionLimits', 'floodsub', 'gossipsub', 'mdns', 'pubsub', 'requestResponse', 'generateKeypair', 'peerIdOf'],
  'peerswarm/testing': ['newSwarm', 'connect', 'drive', 'driveUntil', 'waitFor', 'listen', 'MemoryMulticast', 'SimulatedNetwork', 'VirtualClock', 'Random', 'runScenario', 'formatReport'],
  'peerswarm/view': ['serveView', 'serveNetworkView']
}

/** The preamble of an example: the names in scope that it does not import itself, a `key` and a `swarm`. */
function preamble (imported: ReadonlySet<string>): string {
  const lines = Object.entries(SOURCES).map(([entry, path], i) => {
    const names = IN_SCOPE[entry].filter(name => !imported.has(name))
    return `import * as __e${i} from '${path}'\nconst { ${names.join(', ')} } = __e${i}`
  })
  return `${lines.join('\n')}\ndeclare const key: __e0.Keypair\ndeclare const swarm: __e0.Swarm<__e0.AnyBehaviour>\n`
}

/** The local names an import line brings in (`{ a, b as c, type D }` → a, c, D). */
function importedNames (line: string): string[] {
  const braces = /\{([^}]*)\}/.exec(line)?.[1] ?? ''
  return braces.split(',').map(part => part.trim().replace(/^type\s+/, '').split(/\s+as\s+/).at(-1) ?? '').filter(name => name !== '')
}

if (!checkParts()) process.exit(1)

rmSync(out, { recursive: true, force: true })
mkdirSync(out)
const names: Array<{ file: string, example: Example }> = []
for (const [i, example] of examples.entries()) {
  const imports: string[] = []
  const body: string[] = []
  const imported = new Set<string>()
  for (const line of example.code.split('\n')) {
    if (/^import\s/.test(line)) {
      // Imports of the package point at the sources; others are kept as they are.
      const entry = /from '(peerswarm(?:\/testing|\/view)?)'/.exec(line)?.[1]
      if (entry != null) {
        for (const name of importedNames(line)) imported.add(name)
        imports.push(line.replace(`'${entry}'`, `'${SOURCES[entry]}'`))
      } else {
        imports.push(line)
      }
    } else {
      body.push(line)
    }
  }
  const code = body.join('\n').trimStart().startsWith('.')
    ? `const __builder = SwarmBuilder.withNewIdentity().withMemoryTransport()\nvoid __builder\n  ${body.join('\n').trim()}`
    : body.join('\n')
  const file = `example-${String(i).padStart(3, '0')}.ts`
  writeFileSync(join(out, file), `${preamble(imported)}${imports.join('\n')}\nexport {}\n{\n${code}\n}\n`)
  names.push({ file, example })
}
writeFileSync(join(out, 'tsconfig.json'), JSON.stringify({
  extends: '../tsconfig.json',
  compilerOptions: { noEmit: true, noUnusedLocals: false },
  include: ['*.ts']
}))

try {
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(out, 'tsconfig.json')], { stdio: 'pipe' })
  console.log(`doc examples: ${examples.length} type-checked, ${parts.length} parts of ${new Set(parts.map(p => p.path)).size} files match them`)
  rmSync(out, { recursive: true, force: true })
} catch (err) {
  const output = String((err as { stdout?: Buffer }).stdout ?? err)
  for (const { file, example } of names) {
    const errors = output.split('\n').filter(line => line.includes(file))
    if (errors.length > 0) console.error(`${example.source}:${example.line}: the example does not type-check:\n  ${errors.join('\n  ')}`)
  }
  console.error(output.split('\n').filter(line => !names.some(n => line.includes(n.file))).join('\n'))
  process.exit(1)
}
