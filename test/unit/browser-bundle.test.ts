import { expect } from 'chai'
import { build } from 'esbuild'
import { gzipSync } from 'node:zlib'
import { ConfigError, SwarmBuilder, ping } from '../../src/index.js'
import { installPlatform, platform } from '../../src/platform.js'

/**
 * The browser entry point bundles with no shims: esbuild for the browser, nothing marked
 * external, no `node:` module and no Node-only module of ours reachable (docs/architecture.md).
 */
describe('browser build', () => {
  it('bundles src/browser.ts for the browser with nothing Node-only in it', async function () {
    this.timeout(60_000)
    const result = await build({
      entryPoints: ['src/browser.ts'],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      minify: true,
      write: false,
      metafile: true,
      logLevel: 'silent'
    })
    expect(result.errors).to.deep.equal([])
    const inputs = Object.keys(result.metafile.inputs)
    const ours = inputs.filter(input => !input.includes('node_modules/'))
    expect(ours).to.include('src/browser.ts')
    expect(ours).to.include('src/transport/websockets.ts')
    expect(ours).to.include('src/protocols/gossipsub/behaviour.ts')
    for (const edge of ['src/compat.ts', 'src/node.ts', 'src/index.ts', 'src/transport/tcp.ts', 'src/protocols/mdns/socket.ts']) expect(ours).not.to.include(edge)
    expect(ours.filter(input => input.includes('/mdns/'))).to.deep.equal([])
    for (const pkg of ['/ws/', '/@libp2p/tcp/', '/dns-packet/']) expect(inputs.filter(input => input.includes(`node_modules${pkg}`)), pkg).to.deep.equal([])
    const bundle = result.outputFiles[0].contents
    // A ceiling that catches a heavy dependency slipping in (measured: ~540 KB minified, ~160 KB gzipped).
    expect(bundle.byteLength).to.be.below(800_000)
    console.log(`      browser bundle: ${Math.round(bundle.byteLength / 1000)} KB minified, ${Math.round(gzipSync(bundle).byteLength / 1000)} KB gzipped`)
  })

  it('withTcp() throws a ConfigError naming the platform where there is no TCP', () => {
    const node = platform()
    installPlatform({ name: 'portable' })
    try {
      expect(() => SwarmBuilder.withNewIdentity().withTcp()).to.throw(ConfigError, /TCP is not available on this platform \(portable\)/)
    } finally {
      installPlatform(node)
    }
    expect(platform().name).to.equal('node')
    expect(() => SwarmBuilder.withNewIdentity().withTcp().withBehaviour(() => new ping.Behaviour())).not.to.throw()
  })
})
