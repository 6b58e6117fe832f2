/**
 * The package's public names, types included, written down in `public-exports.json`: a move
 * inside `src/` must not add, drop or rename what users import from `peerswarm`, its browser
 * build, `peerswarm/testing` or `peerswarm/view`. Members of the protocol namespaces
 * (`gossipsub.Behaviour`, …) count too. An intended change updates the list in the same commit
 * (`UPDATE_EXPORTS=1 npm run test:unit` rewrites it; review the diff).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { expect } from 'chai'
import ts from 'typescript'

const ENTRY_POINTS = {
  peerswarm: 'src/index.ts',
  'peerswarm (browser)': 'src/browser.ts',
  'peerswarm/testing': 'src/testing/index.ts',
  'peerswarm/view': 'src/view/index.ts'
} as const
const LIST = new URL('./public-exports.json', import.meta.url)

/** `name` for a value or type, `ns.name` for the members of an exported namespace. */
function exportedNames (checker: ts.TypeChecker, module: ts.Symbol, prefix = ''): string[] {
  const names: string[] = []
  for (const symbol of checker.getExportsOfModule(module)) {
    const name = `${prefix}${symbol.name}`
    names.push(name)
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol
    if (target.flags & ts.SymbolFlags.ValueModule && target.declarations?.some(ts.isSourceFile) === true) {
      names.push(...exportedNames(checker, target, `${name}.`))
    }
  }
  return names.sort()
}

function currentExports (): Record<string, string[]> {
  const files = Object.values(ENTRY_POINTS)
  const program = ts.createProgram(files, { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, noEmit: true, skipLibCheck: true })
  const checker = program.getTypeChecker()
  const result: Record<string, string[]> = {}
  for (const [entry, file] of Object.entries(ENTRY_POINTS)) {
    const source = program.getSourceFile(file)
    const module = source == null ? undefined : checker.getSymbolAtLocation(source)
    if (module == null) throw new Error(`cannot read the exports of ${file}`)
    result[entry] = exportedNames(checker, module)
  }
  return result
}

describe('public exports', function () {
  this.timeout(60_000)

  it('are the names written down in public-exports.json', () => {
    const current = currentExports()
    if (process.env.UPDATE_EXPORTS === '1') writeFileSync(LIST, `${JSON.stringify(current, null, 2)}\n`)
    const written = JSON.parse(readFileSync(LIST, 'utf8')) as Record<string, string[]>
    for (const entry of Object.keys(ENTRY_POINTS)) {
      const added = current[entry].filter(name => !written[entry]?.includes(name))
      const removed = (written[entry] ?? []).filter(name => !current[entry].includes(name))
      expect({ entry, added, removed }).to.deep.equal({ entry, added: [], removed: [] })
    }
  })
})
