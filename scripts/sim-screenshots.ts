/**
 * PNG pictures of a simulation report's charts (`npm run sim -- --report <file.html>`), as
 * docs/simulation.md shows them: headless Chromium (playwright-core, no browser download;
 * Debian's `chromium`, or `CHROMIUM_PATH`) opens the page and takes each scenario's charts.
 *
 * Run: npx tsx scripts/sim-screenshots.ts <report.html> <dir>   writes <dir>/sim-<scenario>.png
 */
import { resolve } from 'node:path'
import { chromium } from 'playwright-core'
import { chromiumPath } from '../test/fixtures/capabilities.js'

const [file, dir] = process.argv.slice(2)
if (file == null || dir == null) {
  process.stderr.write('usage: scripts/sim-screenshots.ts <report.html> <dir>\n')
  process.exit(2)
}
const executablePath = chromiumPath()
if (executablePath == null) throw new Error('no Chromium found: set CHROMIUM_PATH or install chromium')
const browser = await chromium.launch({ executablePath, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] })
try {
  const page = await browser.newPage({ viewport: { width: 1340, height: 900 }, deviceScaleFactor: 1 })
  await page.goto(`file://${resolve(file)}`)
  const sections = await page.locator('section.scenario').all()
  for (const section of sections) {
    const id = (await section.getAttribute('id') ?? 'scenario').replace(/^scenario-/, '')
    const out = resolve(dir, `sim-${id}.png`)
    await section.locator('.charts').screenshot({ path: out })
    process.stdout.write(`${out}\n`)
  }
} finally {
  await browser.close()
}
