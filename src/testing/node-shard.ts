/**
 * The Node side of a simulation over threads (`shards.ts`): {@link spawnShard} starts a worker
 * thread running this module, which runs its shard of the scenario with `runShard`. The worker
 * inherits the process's flags (the heap limits, `--expose-gc`). One of the few modules allowed
 * to import `node:` modules (see docs/architecture.md); `peerswarm/testing` is Node's only.
 *
 * ```ts
 * import { runScenarioInShards, spawnShard, standardScenarios } from 'peerswarm/testing'
 * const report = await runScenarioInShards(standardScenarios(2_000, 1).baseline, { threads: 2, spawn: spawnShard })
 * ```
 *
 * @module
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
// The Node platform (node:crypto's keys and ciphers), which a thread that imported only the
// simulator would go without: it would sign, verify and agree keys the slow portable way.
import '../node.js'
import { Inbox, runShard } from './shards.js'
import type { FromShard, ShardChannel, ShardInit, ToShard } from './shards.js'

/** Start shard `init.index` of a run over threads in a worker thread of this process (for `runScenarioInShards`'s `spawn`). */
export function spawnShard (init: ShardInit): ShardChannel {
  // Run from TypeScript (the repository's `npm run sim` and tests), the worker registers tsx
  // first: a worker thread does not inherit the loader hooks of `--import tsx` on Node 20.
  const url = import.meta.url
  const worker = url.endsWith('.ts')
    ? new Worker(`import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(url)}) })`, { eval: true, workerData: { shard: init } })
    : new Worker(new URL(url), { workerData: { shard: init } })
  let finished = false
  return {
    send: (message: ToShard, transfer: ArrayBuffer[]) => { worker.postMessage(message, transfer) },
    listen: (receive, failed) => {
      worker.on('message', (message: FromShard) => {
        if (message.type !== 'barrier') finished = true
        receive(message)
      })
      worker.on('error', failed)
      worker.on('exit', code => { if (!finished) failed(new Error(`shard ${init.index} exited with ${code} before reporting`)) })
    },
    terminate: async () => {
      finished = true
      await worker.terminate()
    }
  }
}

const init = (workerData as { shard?: ShardInit } | null)?.shard
if (!isMainThread && init != null && parentPort != null) {
  const port = parentPort
  const inbox = new Inbox<ToShard>()
  port.on('message', inbox.put)
  const gc = (globalThis as { gc?: () => void }).gc
  await runShard(init, {
    send: (message, transfer) => { port.postMessage(message, transfer) },
    receive: async () => await inbox.take()
  }, {
    memoryUsage: () => process.memoryUsage(),
    gc: gc == null ? undefined : () => { gc(); gc() }
  })
  port.close()
}
