// @ts-check
/**
 * A TypeDoc plugin (typedoc.json's `plugin`): a relative link from the README or a guide to a
 * source file of the package, e.g. `[gossipsub.Config](../src/protocols/gossipsub/config.ts)`,
 * leads on GitHub to the file and on the API site to the file's main declaration in the
 * reference, instead of a copy of the file. TypeDoc itself does so only for files that are a
 * module or a namespace (`src/protocols/gossipsub/index.ts` → the `gossipsub` page).
 *
 * A file's main declaration is the exported one named after the file (`swarm.ts` → `Swarm`,
 * `connection-handler.ts` → `ConnectionHandler`, a protocol's `config.ts` → its `Config`), else
 * the first class, interface, function, type or variable it declares. Links to other files (tests,
 * examples) are left to TypeDoc, which copies them to the site's `media/`.
 *
 * It also puts the types the package re-exports from js-libp2p (`PeerId`, `Stream`, `Multiaddr`)
 * in a group of their own, since their doc comments, where a `@group` tag would go, are not ours.
 */

/** The group of the declarations re-exported from other packages. */
const FOREIGN_GROUP = 'Types from js-libp2p'
import { resolve } from 'node:path'
import { Comment, CommentTag, Converter, ReflectionKind } from 'typedoc'

const KINDS = [ReflectionKind.Class, ReflectionKind.Interface, ReflectionKind.Function, ReflectionKind.TypeAlias, ReflectionKind.Variable]

/** `connection-handler.ts` → `ConnectionHandler`. */
function declarationName (path) {
  const base = path.replace(/^.*\//, '').replace(/\.ts$/, '')
  return base.split('-').map(part => part.charAt(0).toUpperCase() + part.slice(1)).join('')
}

/** Lower is better: named after the file first, then by kind, then in declaration order. */
function rank (reflection, path, pos) {
  const wanted = declarationName(path)
  const named = reflection.name === wanted || (wanted === 'Config' && reflection.name.endsWith('Config') && reflection.name !== 'ProtocolConfig')
  const kind = KINDS.findIndex(k => reflection.kindOf(k))
  return [named ? 0 : 1, kind, pos]
}

function better (a, b) {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i]
  return false
}

/** @param {import('typedoc').Application} app */
export function load (app) {
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    const project = context.project
    const root = process.cwd()
    /** @type {Map<string, { reflection: import('typedoc').Reflection, rank: number[] }>} */
    const best = new Map()
    for (const reflection of project.getReflectionsByKind(KINDS.reduce((all, k) => all | k, 0))) {
      const id = project.getSymbolIdFromReflection(reflection)
      if (id == null || !id.packagePath.startsWith('src/')) continue
      const candidate = { reflection, rank: rank(reflection, id.packagePath, id.pos) }
      const current = best.get(id.packagePath)
      if (current == null || better(candidate.rank, current.rank)) best.set(id.packagePath, candidate)
    }
    for (const module of project.getReflectionsByKind(ReflectionKind.Module)) {
      for (const child of module.children ?? []) {
        const id = project.getSymbolIdFromReflection(child)
        if (id == null || id.packageName === 'peerswarm' || child.comment?.getTag('@group') != null) continue
        child.comment ??= new Comment()
        child.comment.blockTags.push(new CommentTag('@group', [{ kind: 'text', text: FOREIGN_GROUP }]))
      }
    }
    const files = project.files
    for (const [path, { reflection }] of best) {
      const absolute = resolve(root, path).replaceAll('\\', '/')
      const { target } = files.registerAbsolute(absolute)
      // A module's or namespace's own file already leads to its page.
      if (files.mediaToReflection.has(target)) continue
      files.registerReflectionPath(absolute, reflection)
    }
  })
}
