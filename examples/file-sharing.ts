/**
 * File sharing, after rust-libp2p's file-sharing example (providers found over mDNS instead of
 * Kademlia): one node provides the files of a directory; another finds providers on the local
 * network and fetches one file by name over request-response, in chunks, with a progress bar.
 *
 * Run:
 *   npx tsx examples/file-sharing.ts                       both in this process, on 127.0.0.1,
 *                                                           with a generated file; exits 0
 *   npx tsx examples/file-sharing.ts provide <dir>         serve the files of <dir>
 *   npx tsx examples/file-sharing.ts get <name> [--out f]  fetch <name> from a provider
 * Options: --interface <ip or name> keeps mDNS on one interface (default: all of them, loopback
 * only when there is no other); --service _name._udp.local isolates a group of nodes;
 * --listen /ip4/…/tcp/0 (default: /ip4/0.0.0.0/tcp/0).
 *
 * The protocol, /peerswarm-example/files/1.0.0: a request is JSON `{ name, offset, length }`;
 * a response is a JSON header (`{ status: 'ok', size }` or `{ status: 'not-found' }`)
 * followed by the chunk's bytes. Both are length-prefixed frames (`lengthPrefixedCodec`).
 */
import { createHash } from 'node:crypto'
import { mkdtemp, open, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { parseArgs } from 'node:util'
import { SwarmBuilder, combine, mdns, peerIdOf, requestResponse } from 'peerswarm'
import type { PeerId } from '@libp2p/interface'

const PROTOCOL = '/peerswarm-example/files/1.0.0'
/** Bytes per chunk: one request fetches at most this much. */
const CHUNK = 64 * 1024
/** Chunk requests in flight at once. */
const WINDOW = 4

/** A chunk request. */
type FileRequest = { readonly name: string, readonly offset: number, readonly length: number }
/** A chunk, or the provider has no such file. */
type FileResponse = { readonly status: 'ok', readonly size: number, readonly data: Uint8Array } | { readonly status: 'not-found' }

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** The codec: JSON requests; responses are a 4-byte header length, a JSON header, then the data. */
const codec = requestResponse.lengthPrefixedCodec<FileRequest, FileResponse>({
  maxRequestSize: 1024,
  maxResponseSize: CHUNK + 1024,
  encodeRequest: request => encoder.encode(JSON.stringify(request)),
  decodeRequest: (bytes) => {
    const request = JSON.parse(decoder.decode(bytes)) as Partial<FileRequest>
    if (typeof request.name !== 'string' || !Number.isSafeInteger(request.offset) || !Number.isSafeInteger(request.length)) {
      throw new requestResponse.InvalidMessageError('not a file request')
    }
    return request as FileRequest
  },
  encodeResponse: (response) => {
    const header = encoder.encode(JSON.stringify(response.status === 'ok' ? { status: 'ok', size: response.size } : response))
    const data = response.status === 'ok' ? response.data : new Uint8Array(0)
    const bytes = new Uint8Array(4 + header.byteLength + data.byteLength)
    new DataView(bytes.buffer).setUint32(0, header.byteLength)
    bytes.set(header, 4)
    bytes.set(data, 4 + header.byteLength)
    return bytes
  },
  decodeResponse: (bytes) => {
    const length = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0)
    const header = JSON.parse(decoder.decode(bytes.subarray(4, 4 + length))) as { status?: string, size?: number }
    if (header.status === 'not-found') return { status: 'not-found' }
    if (header.status !== 'ok' || !Number.isSafeInteger(header.size)) throw new requestResponse.InvalidMessageError('not a file response')
    return { status: 'ok', size: header.size as number, data: bytes.subarray(4 + length) }
  }
})

interface NodeOptions {
  readonly serviceName: string
  readonly interface?: string
  readonly listen: string
}

async function node (options: NodeOptions) {
  const swarm = await SwarmBuilder.withNewIdentity()
    .withTcp()
    .withBehaviour(key => combine({
      mdns: new mdns.Behaviour(peerIdOf(key), { serviceName: options.serviceName, interface: options.interface }),
      files: new requestResponse.Behaviour(codec, [PROTOCOL], { requestTimeout: 10_000 })
    }))
    .withSwarmConfig({ idleConnectionTimeout: 30_000 })
    .build()
  swarm.listenOn(options.listen)
  return swarm
}

type Node = Awaited<ReturnType<typeof node>>

/** Serve the files of `dir` (by their base name) until `signal` aborts. */
async function provide (swarm: Node, dir: string, signal: AbortSignal): Promise<void> {
  const files = new Map<string, string>()
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isFile()) files.set(entry.name, join(dir, entry.name))
  }
  console.log(`provider ${swarm.localPeerId.toString()}: ${files.size} files: ${[...files.keys()].join(', ')}`)
  for (;;) {
    const event = await swarm.selectNextSome({ signal }).catch(() => undefined)
    if (event === undefined) return
    if (event.type === 'NewListenAddr') console.log(`provider: listening on ${event.address.toString()}`)
    if (event.type !== 'Behaviour' || event.event.behaviour !== 'files') continue
    const e = event.event.event
    if (e.type === 'Message' && e.message.type === 'Request') {
      const { request, channel } = e.message
      // Only names of the directory's files: no paths, so nothing outside it can be read.
      const path = request.name === basename(request.name) ? files.get(request.name) : undefined
      swarm.behaviour.files.sendResponse(channel, path === undefined ? { status: 'not-found' } : await readChunk(path, request))
    } else if (e.type === 'InboundFailure') {
      console.log(`provider: a request from ${e.peerId.toString()} failed: ${e.error.kind} (${e.error.message})`)
    }
  }
}

async function readChunk (path: string, request: FileRequest): Promise<FileResponse> {
  const handle = await open(path)
  try {
    const { size } = await handle.stat()
    const length = Math.max(0, Math.min(request.length, CHUNK, size - request.offset))
    const data = new Uint8Array(length)
    if (length > 0) await handle.read(data, 0, length, request.offset)
    return { status: 'ok', size, data }
  } finally {
    await handle.close()
  }
}

/** Find a provider of `name` over mDNS and fetch it in chunks, with a progress bar. */
async function fetchFile (swarm: Node, name: string, signal: AbortSignal): Promise<Uint8Array> {
  const asked = new Set<string>()
  const pending = new Map<number, number>()
  let provider: PeerId | undefined
  let file: Uint8Array | undefined
  let received = 0
  let nextOffset = 0
  const progress = new ProgressBar(name)
  const request = (peerId: PeerId, offset: number): void => {
    pending.set(swarm.behaviour.files.sendRequest(peerId, { name, offset, length: CHUNK }), offset)
  }
  console.log(`getter ${swarm.localPeerId.toString()}: looking for ${name} over mDNS`)
  while (file === undefined || received < file.byteLength) {
    const event = await swarm.selectNextSome({ signal })
    if (event.type !== 'Behaviour') continue
    const { behaviour, event: e } = event.event
    if (behaviour === 'mdns' && e.type === 'Discovered') {
      // Ask each newly found peer for the first chunk; the first to have the file provides it.
      // Not connected yet: request-response dials the peer, with the addresses mDNS found.
      for (const { peerId } of e.peers) {
        if (provider !== undefined || asked.has(peerId.toString())) continue
        asked.add(peerId.toString())
        console.log(`getter: found ${peerId.toString()}, asking for ${name}`)
        request(peerId, 0)
      }
    }
    if (behaviour !== 'files') continue
    if (e.type === 'OutboundFailure') {
      pending.delete(e.requestId)
      if (provider?.equals(e.peerId) === true) throw new Error(`fetching from the provider failed: ${e.error.kind} (${e.error.message})`)
      console.log(`getter: ${e.peerId.toString()} failed: ${e.error.kind}`)
      continue
    }
    if (e.type !== 'Message' || e.message.type !== 'Response') continue
    const offset = pending.get(e.message.requestId)
    pending.delete(e.message.requestId)
    const response = e.message.response
    if (response.status === 'not-found') console.log(`getter: ${e.peerId.toString()} does not have ${name}`)
    if (offset === undefined || response.status !== 'ok' || (provider !== undefined && !provider.equals(e.peerId))) continue
    if (provider === undefined) {
      provider = e.peerId
      file = new Uint8Array(response.size)
      nextOffset = Math.min(response.data.byteLength, response.size)
      console.log(`getter: ${provider.toString()} provides ${name} (${response.size} bytes)`)
    }
    if (file === undefined) continue
    file.set(response.data.subarray(0, file.byteLength - offset), offset)
    received += response.data.byteLength
    progress.update(received, file.byteLength)
    while (pending.size < WINDOW && nextOffset < file.byteLength) {
      request(provider, nextOffset)
      nextOffset += CHUNK
    }
  }
  progress.done()
  return file
}

/** A progress bar on one line of a terminal; a line per 10% elsewhere (logs, tests). */
class ProgressBar {
  private lastTenth = -1

  constructor (private readonly label: string) {}

  update (done: number, total: number): void {
    const ratio = total === 0 ? 1 : done / total
    const width = 30
    const filled = Math.round(ratio * width)
    const line = `${this.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(ratio * 100).toFixed(0).padStart(3)}% ${(done / 1024).toFixed(0)}/${(total / 1024).toFixed(0)} KiB`
    if (process.stdout.isTTY) {
      process.stdout.write(`\r${line}`)
      return
    }
    const tenth = Math.floor(ratio * 10)
    if (tenth === this.lastTenth) return
    this.lastTenth = tenth
    console.log(line)
  }

  done (): void {
    if (process.stdout.isTTY) process.stdout.write('\n')
  }
}

function sha256 (bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** Both sides in this process, on 127.0.0.1, with a generated file. */
async function demo (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'peerswarm-files-'))
  const name = 'generated.bin'
  const original = new Uint8Array(1024 * 1024 + 12_345)
  // getRandomValues fills at most 64 KiB at a time.
  for (let at = 0; at < original.byteLength; at += 65_536) crypto.getRandomValues(original.subarray(at, at + 65_536))
  await writeFile(join(dir, name), original)
  await writeFile(join(dir, 'readme.txt'), 'served by examples/file-sharing.ts\n')
  const options = { serviceName: `_files${Math.random().toString(36).slice(2, 8)}._udp.local`, interface: '127.0.0.1', listen: '/ip4/127.0.0.1/tcp/0' }
  const [provider, getter] = await Promise.all([node(options), node(options)])
  const stop = new AbortController()
  const deadline = AbortSignal.timeout(20_000)
  try {
    const providing = provide(provider, dir, AbortSignal.any([stop.signal, deadline]))
    const fetched = await fetchFile(getter, name, deadline)
    stop.abort()
    await providing
    const same = sha256(fetched) === sha256(original)
    console.log(`fetched ${name}: ${fetched.byteLength} bytes, sha-256 ${sha256(fetched).slice(0, 16)}… ${same ? 'matches' : 'DIFFERS'}`)
    if (!same) process.exitCode = 1
  } finally {
    await Promise.all([provider.close(), getter.close()])
    await rm(dir, { recursive: true, force: true })
  }
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    out: { type: 'string' },
    interface: { type: 'string' },
    service: { type: 'string', default: '_peerswarm-files._udp.local' },
    listen: { type: 'string', default: '/ip4/0.0.0.0/tcp/0' }
  }
})
const [mode, target] = positionals
const options = { serviceName: values.service, interface: values.interface, listen: values.listen }

try {
  if (mode === undefined) {
    await demo()
  } else if (mode === 'provide' && target !== undefined) {
    if (!(await stat(target)).isDirectory()) throw new Error(`${target} is not a directory`)
    const swarm = await node(options)
    const stop = new AbortController()
    process.once('SIGINT', () => { stop.abort() })
    await provide(swarm, target, stop.signal)
    await swarm.close()
  } else if (mode === 'get' && target !== undefined) {
    const swarm = await node(options)
    const file = await fetchFile(swarm, target, AbortSignal.timeout(120_000))
    const out = values.out ?? basename(target)
    await writeFile(out, file)
    console.log(`wrote ${out}: ${file.byteLength} bytes, sha-256 ${sha256(file)}`)
    await swarm.close()
  } else {
    console.error('usage: file-sharing.ts [provide <dir> | get <name> [--out <file>]] [--interface <ip>] [--service <name>] [--listen <addr>]')
    process.exitCode = 2
  }
} catch (err) {
  console.error(`file-sharing failed: ${err instanceof Error ? err.message : String(err)}`)
  process.exitCode = 1
}
