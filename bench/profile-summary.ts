/**
 * Summarise a V8 CPU profile (`node --cpu-prof`): the functions with the most self time, as a
 * Markdown table (share of all samples, idle and GC included).
 *
 * Run: npx tsx bench/profile-summary.ts <file.cpuprofile> [top=25]
 */
import { readFileSync } from 'node:fs'

interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: Node[], samples: number[], timeDeltas: number[] }

const [file, topArg] = process.argv.slice(2)
if (file == null) throw new Error('usage: profile-summary <file.cpuprofile> [top]')
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map(n => [n.id, n]))
const self = new Map<string, number>()
let total = 0
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0
  const node = byId.get(id)
  if (node == null) return
  const { functionName, url, lineNumber } = node.callFrame
  const where = url === '' ? '' : `${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(src|bench)\//, '$1/')}:${lineNumber + 1}`
  const key = `${functionName === '' ? '(anonymous)' : functionName}|${where}`
  self.set(key, (self.get(key) ?? 0) + dt)
  total += dt
})
const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(topArg ?? 25))
console.log(`total ${(total / 1e6).toFixed(2)} s of samples\n`)
console.log('| self % | function | where |\n|---:|---|---|')
for (const [key, time] of top) {
  const [fn, where] = key.split('|')
  console.log(`| ${(100 * time / total).toFixed(1)} | \`${fn}\` | ${where} |`)
}
