/**
 * The peer program (scripts/peer.ts) compiled into one ES module with esbuild, our sources
 * bundled and the packages left as imports, under node_modules/.cache/peerswarm/ so that they
 * resolve from there. `npm run net` and `npm run sim -- --shadow` run peers from it: a process
 * then costs what a compiled program does (no TypeScript loader, no esbuild service process per
 * peer, which under Shadow would be one more simulated process per host).
 */
import { mkdirSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/** Build the peer program; returns the module's path (`node <path> <config.json>` runs a peer). */
export async function bundlePeerProgram (): Promise<string> {
  const out = join(REPO, 'node_modules', '.cache', 'peerswarm', 'peer.mjs')
  mkdirSync(dirname(out), { recursive: true })
  await build({
    entryPoints: [join(REPO, 'scripts', 'peer.ts')],
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    sourcemap: 'linked',
    logLevel: 'warning'
  })
  return out
}
