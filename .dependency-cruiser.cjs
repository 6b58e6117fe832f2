/**
 * The layers of `src/`, top to bottom (docs/architecture.md, "Layers"). An import may point only
 * down this list or within its own layer, and nothing imports in a circle, type-only imports
 * included. `npm test` runs this check (`npm run check:layers`); a wrong arrow fails with the
 * rule's name, e.g. `layer-protocols-imports-above`.
 */
const layers = [
  // The package's entry points: '.', its browser build, 'peerswarm/testing' and 'peerswarm/view',
  // the Node platform that the Node ones install, and the module a simulation's worker thread runs.
  { name: 'entry', path: '^src/((index|browser|node)\\.ts|(testing|view)/index\\.ts|testing/node-shard\\.ts)$' },
  { name: 'testing-view', path: '^src/(testing|view)/(?!index\\.ts$|node-shard\\.ts$)' },
  { name: 'swarm', path: '^src/swarm/' },
  { name: 'protocols', path: '^src/protocols/' },
  { name: 'upgrade', path: '^src/upgrade/' },
  { name: 'behaviour', path: '^src/behaviour/' },
  // The platform registry, Node 20's shims of globals, and the end-of-turn queue.
  { name: 'platform', path: '^src/(platform|compat|next-turn)\\.ts$' },
  { name: 'transport', path: '^src/transport/' },
  { name: 'core', path: '^src/core/' }
]

const upward = layers.slice(1).map((layer, i) => ({
  name: `layer-${layer.name}-imports-above`,
  comment: `${layer.name} may import only itself and the layers below it: ${layers.slice(i + 2).map(l => l.name).join(', ') || 'nothing'}`,
  severity: 'error',
  from: { path: layer.path },
  to: { path: layers.slice(0, i + 1).map(l => l.path) }
}))

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import circles, type-only imports included: a type in the wrong file is the usual cause.',
      severity: 'error',
      from: {},
      to: { circular: true }
    },
    ...upward,
    {
      name: 'protocols-use-the-contract-not-the-engine',
      comment: 'Protocols stand on behaviour/, the platform, next-turn and core/; never on upgrade/ (nor swarm/, which is above them).',
      severity: 'error',
      from: { path: '^src/protocols/' },
      to: { path: '^src/(swarm|upgrade)/' }
    },
    {
      name: 'protocols-share-only-pubsub',
      comment: 'A protocol owns its folder; the one shared protocol core is protocols/pubsub (FloodSub and GossipSub).',
      severity: 'error',
      from: { path: '^src/protocols/([^/]+)/' },
      to: { path: '^src/protocols/', pathNot: ['^src/protocols/$1/', '^src/protocols/pubsub/'] }
    },
    {
      name: 'node-builtins-only-in-node-modules',
      comment: 'Only the Node entry point, the mDNS socket, the view server and the simulator\'s worker threads use node: modules; the rest runs in browsers unchanged.',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/node\\.ts$', '^src/protocols/mdns/socket\\.ts$', '^src/view/server\\.ts$', '^src/testing/node-shard\\.ts$'] },
      to: { dependencyTypes: ['core'] }
    },
    {
      name: 'no-orphans',
      comment: 'A module nothing imports is dead code (entry points excepted).',
      severity: 'error',
      from: { orphan: true, path: '^src/', pathNot: ['^src/(index|browser|node|compat)\\.ts$', '^src/(testing|view)/index\\.ts$'] },
      to: {}
    }
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|\\.bench-build)/' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
    moduleSystems: ['es6']
  }
}
