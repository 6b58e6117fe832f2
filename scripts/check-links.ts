/**
 * Checks every relative link and anchor of the documentation, and fails naming the broken ones:
 *
 * - README.md, CONTRIBUTING.md, docs/*.md and examples/README.md as GitHub shows them: the
 *   linked file or folder exists, and an anchor (`#…`) names a heading of the linked markdown
 *   file (GitHub's slugs) or an `id` / `name` in it;
 * - the API site that `npm run docs` writes to docs/api/: every `href` and `src` of every page
 *   leads to a file of the site, and an anchor to an `id` or `name` of that page.
 *
 * Web addresses are not fetched; one whose host looks like a file name (`http://STYLE.md`, a
 * relative path that a renderer turned into an address) counts as broken.
 *
 * Run: npm run check:links (after `npm run docs`; `--no-site` checks the markdown only)
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, extname, join, relative, resolve } from 'node:path'

const root = join(import.meta.dirname, '..')
const site = join(root, 'docs/api')

interface Broken { readonly where: string, readonly link: string, readonly why: string }
const broken: Broken[] = []
let checked = 0

/** A web address whose host is a file name: a relative link gone wrong. */
function fileLikeUrl (link: string): boolean {
  const host = /^https?:\/\/([^/?#]+)/i.exec(link)?.[1]
  return host != null && /\.(md|ts|js|mjs|cjs|json|html|txt|png)$/i.test(host)
}

/** Links that are not checked: other schemes, and web addresses that look like addresses. */
function external (link: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(link) && !fileLikeUrl(link)
}

// ---------------------------------------------------------------- markdown, as GitHub shows it

/** The lines of a markdown file outside front matter and fenced code blocks (others blanked). */
function proseLines (text: string): string[] {
  const lines = text.split('\n')
  let fence: string | undefined
  let frontMatter = lines[0] === '---'
  return lines.map((line, i) => {
    if (frontMatter) {
      if (i > 0 && line === '---') frontMatter = false
      return ''
    }
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1]
    if (fence === undefined && marker !== undefined) {
      fence = marker
      return ''
    }
    if (fence !== undefined) {
      if (line.trim().startsWith(fence) && line.trim().replace(/[`~]/g, '') === '') fence = undefined
      return ''
    }
    return line
  })
}

/** GitHub's anchor for a heading's text. */
function slug (heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
    .replace(/<[^>]+>/g, '') //                     inline HTML
    .replace(/[`*_]/g, '') //                       code and emphasis markers
    .trim()
    .toLowerCase()
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '').replace(/ /g, '-')
}

const anchorCache = new Map<string, Set<string>>()

/** The anchors of a markdown file: its headings' slugs (repeats numbered) and HTML ids. */
function markdownAnchors (file: string): Set<string> {
  const cached = anchorCache.get(file)
  if (cached != null) return cached
  const anchors = new Set<string>()
  const counts = new Map<string, number>()
  for (const line of proseLines(readFileSync(file, 'utf8'))) {
    const heading = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1]
    if (heading != null) {
      const base = slug(heading)
      const n = counts.get(base) ?? 0
      counts.set(base, n + 1)
      anchors.add(n === 0 ? base : `${base}-${n}`)
    }
    for (const match of line.matchAll(/\b(?:id|name)="([^"]+)"/g)) anchors.add(match[1])
  }
  anchorCache.set(file, anchors)
  return anchors
}

/** The link targets of a markdown line, outside code spans. */
function markdownLinks (line: string): string[] {
  const prose = line.replace(/(`+)[\s\S]*?\1/g, match => ' '.repeat(match.length))
  const links: string[] = []
  for (const match of prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) links.push(match[1])
  for (const match of prose.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/g)) links.push(match[1])
  for (const match of prose.matchAll(/<(?:a|img)\s[^>]*?\b(?:href|src)="([^"]+)"/g)) links.push(match[1])
  return links
}

function checkMarkdown (file: string): void {
  const where = relative(root, file)
  for (const [i, line] of proseLines(readFileSync(file, 'utf8')).entries()) {
    for (const link of markdownLinks(line)) {
      checked++
      const at = `${where}:${i + 1}`
      if (fileLikeUrl(link)) {
        broken.push({ where: at, link, why: 'a file name written as a web address' })
        continue
      }
      if (external(link)) continue
      const [path, anchor] = splitAnchor(link)
      const target = path === '' ? file : path.startsWith('/') ? join(root, path) : resolve(dirname(file), decodeURIComponent(path))
      if (!existsSync(target)) {
        broken.push({ where: at, link, why: 'no such file' })
        continue
      }
      if (anchor === undefined || anchor === '' || extname(target) !== '.md') continue
      if (!markdownAnchors(target).has(decodeURIComponent(anchor).toLowerCase())) {
        broken.push({ where: at, link, why: `no heading or id "${anchor}" in ${relative(root, target)}` })
      }
    }
  }
}

function splitAnchor (link: string): [string, string | undefined] {
  const hash = link.indexOf('#')
  const path = (hash < 0 ? link : link.slice(0, hash)).replace(/\?.*$/, '')
  return [path, hash < 0 ? undefined : link.slice(hash + 1)]
}

// ---------------------------------------------------------------- the API site

const idCache = new Map<string, Set<string>>()

function htmlIds (file: string): Set<string> {
  const cached = idCache.get(file)
  if (cached != null) return cached
  const ids = new Set<string>()
  for (const match of readFileSync(file, 'utf8').matchAll(/\s(?:id|name)="([^"]*)"/g)) ids.add(match[1])
  idCache.set(file, ids)
  return ids
}

function walk (dir: string, ext: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry => entry.isDirectory()
    ? walk(join(dir, entry.name), ext)
    : entry.name.endsWith(ext) ? [join(dir, entry.name)] : [])
}

/** An attribute's value as the browser reads it (the few entities TypeDoc writes). */
function unescapeHtml (value: string): string {
  return value.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>')
}

function checkPage (file: string): void {
  const where = relative(root, file)
  const html = readFileSync(file, 'utf8')
  for (const match of html.matchAll(/<(?:a|link|img|script|source)\b[^>]*?\s(?:href|src)="([^"]*)"/g)) {
    const link = unescapeHtml(match[1])
    checked++
    if (fileLikeUrl(link)) {
      broken.push({ where, link, why: 'a file name written as a web address' })
      continue
    }
    if (external(link)) continue
    const [path, anchor] = splitAnchor(link)
    let target = path === '' ? file : resolve(dirname(file), decodeURIComponent(path))
    if (existsSync(target) && statSync(target).isDirectory()) target = join(target, 'index.html')
    if (!existsSync(target)) {
      broken.push({ where, link, why: 'no such file in the site' })
      continue
    }
    if (anchor === undefined || anchor === '' || extname(target) !== '.html') continue
    if (!htmlIds(target).has(decodeURIComponent(anchor))) {
      broken.push({ where, link, why: `no id "${anchor}" in ${relative(root, target)}` })
    }
  }
}

// ----------------------------------------------------------------

const markdown = [
  join(root, 'README.md'),
  join(root, 'CONTRIBUTING.md'),
  ...readdirSync(join(root, 'docs')).filter(f => f.endsWith('.md')).map(f => join(root, 'docs', f)),
  join(root, 'examples/README.md')
].filter(existsSync)
for (const file of markdown) checkMarkdown(file)

const withSite = !process.argv.includes('--no-site')
let pages = 0
if (withSite) {
  if (!existsSync(join(site, 'index.html'))) {
    console.error('docs/api/ has no site: run `npm run docs` first (or pass --no-site to check the markdown only)')
    process.exit(1)
  }
  for (const file of walk(site, '.html')) {
    checkPage(file)
    pages++
  }
}

const scope = `${markdown.length} markdown files${withSite ? ` and ${pages} pages of docs/api/` : ''}`
if (broken.length > 0) {
  for (const { where, link, why } of broken) console.error(`${where}: ${link}: ${why}`)
  console.error(`links: ${broken.length} broken of ${checked} in ${scope}`)
  process.exit(1)
}
console.log(`links: ${checked} checked in ${scope}, none broken`)
