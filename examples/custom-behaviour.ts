/**
 * A protocol written from scratch: "hello". A peer opens a stream, writes its name and closes
 * its side; the other answers "hello, <name>!" and closes. The guide docs/custom-behaviour.md
 * walks through this file.
 *
 * Run: npx tsx examples/custom-behaviour.ts
 */
import { ConnectionDenied, SwarmBuilder } from 'peerswarm'
import type {
  ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, Context, FromSwarm,
  NetworkBehaviour, PeerId, Stream, SubstreamProtocol, ToSwarm, Waker
} from 'peerswarm'

export const PROTOCOL = '/peerswarm-example/hello/1.0.0'
/** Longest name or answer, in bytes: a remote cannot make us buffer more. */
const MAX_MESSAGE = 256
/** How long one exchange may take, in ms. */
const TIMEOUT = 5_000
/** Greetings a connection holds before it has streams for them; more are refused. */
const MAX_QUEUED = 16
/** Events a behaviour holds for the application; `greet` is refused while it is full. */
const MAX_EVENTS = 64

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Read the remote's whole message (until it closes its side), at most MAX_MESSAGE bytes. */
async function readMessage (stream: Stream): Promise<string> {
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of stream) {
    size += chunk.byteLength
    if (size > MAX_MESSAGE) throw new Error(`message longer than ${MAX_MESSAGE} bytes`)
    chunks.push(chunk.subarray())
  }
  const bytes = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    bytes.set(chunk, at)
    at += chunk.byteLength
  }
  return decoder.decode(bytes)
}

/** Write `text` and close our side; the stream's own buffer applies back-pressure. */
async function writeMessage (stream: Stream, text: string): Promise<void> {
  const bytes = encoder.encode(text)
  if (bytes.byteLength > MAX_MESSAGE) throw new Error(`message longer than ${MAX_MESSAGE} bytes`)
  stream.send(bytes)
  await stream.close({ signal: AbortSignal.timeout(TIMEOUT) })
}

/** Run `exchange` on `stream`, resetting the stream if it fails or takes longer than TIMEOUT. */
async function withTimeout<T> (stream: Stream, exchange: () => Promise<T>): Promise<T> {
  const timer = setTimeout(() => { stream.abort(new Error('timed out')) }, TIMEOUT)
  try {
    return await exchange()
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  } finally {
    clearTimeout(timer)
  }
}

/** What the behaviour asks of a handler. */
export type FromBehaviour = { readonly type: 'Greet', readonly name: string }

/** What a handler reports to its behaviour. */
export type ToBehaviour =
  | { readonly type: 'Answered', readonly answer: string }
  | { readonly type: 'Greeted', readonly name: string }
  | { readonly type: 'Failed', readonly error: Error }

/** The hello protocol on one connection. */
export class HelloHandler implements ConnectionHandler<FromBehaviour, ToBehaviour> {
  /** Names to send, each waiting for an outbound stream. Bounded by MAX_QUEUED. */
  private readonly toSend: string[] = []
  /** Stream requests made and not yet answered by the connection. */
  private requested = 0
  /** Results for the behaviour, in order. */
  private readonly reports: ToBehaviour[] = []
  private readonly streams = new Set<Stream>()
  private waker?: Waker

  listenProtocol (): SubstreamProtocol {
    return { protocols: [PROTOCOL] }
  }

  /** Keep the connection while greetings wait for a stream (open streams count by themselves). */
  connectionKeepAlive (): boolean {
    return this.toSend.length > 0 || this.requested > 0
  }

  onBehaviourEvent (event: FromBehaviour): void {
    if (this.toSend.length >= MAX_QUEUED) {
      this.report({ type: 'Failed', error: new Error('too many greetings queued on this connection') })
      return
    }
    this.toSend.push(event.name)
    this.waker?.wake()
  }

  onConnectionEvent (event: ConnectionEvent): void {
    switch (event.type) {
      case 'FullyNegotiatedInbound':
        void this.answer(this.track(event.stream))
        break
      case 'FullyNegotiatedOutbound':
        this.requested--
        void this.greet(this.track(event.stream), event.info as string)
        break
      case 'DialUpgradeError':
        this.requested--
        this.report({ type: 'Failed', error: event.error })
        break
      default:
    }
  }

  poll (cx: Context): ConnectionHandlerEvent<ToBehaviour> | undefined {
    this.waker = cx.waker
    const report = this.reports.shift()
    if (report !== undefined) return { type: 'NotifyBehaviour', event: report }
    const name = this.toSend.shift()
    if (name !== undefined) {
      this.requested++
      // `info` comes back with the negotiated stream: it says which greeting the stream is for.
      return { type: 'OutboundSubstreamRequest', protocol: { protocols: [PROTOCOL], info: name, timeout: TIMEOUT } }
    }
    return undefined
  }

  close (): void {
    for (const stream of this.streams) stream.abort(new Error('connection closed'))
  }

  /** Our side: send our name, read the answer. */
  private async greet (stream: Stream, name: string): Promise<void> {
    try {
      const answer = await withTimeout(stream, async () => {
        await writeMessage(stream, name)
        return readMessage(stream)
      })
      this.report({ type: 'Answered', answer })
    } catch (err) {
      this.report({ type: 'Failed', error: err instanceof Error ? err : new Error(String(err)) })
    }
  }

  /** The remote's side: read its name, answer. */
  private async answer (stream: Stream): Promise<void> {
    try {
      const name = await withTimeout(stream, async () => {
        const name = await readMessage(stream)
        await writeMessage(stream, `hello, ${name}!`)
        return name
      })
      this.report({ type: 'Greeted', name })
    } catch (err) {
      this.report({ type: 'Failed', error: err instanceof Error ? err : new Error(String(err)) })
    }
  }

  private track (stream: Stream): Stream {
    this.streams.add(stream)
    stream.addEventListener('close', () => { this.streams.delete(stream) })
    return stream
  }

  /** Queue a result and wake the connection, which then polls us and passes it on. */
  private report (event: ToBehaviour): void {
    this.reports.push(event)
    this.waker?.wake()
  }
}

/** What the application receives. */
export type HelloEvent =
  | { readonly type: 'Answered', readonly peerId: PeerId, readonly connectionId: ConnectionId, readonly answer: string }
  | { readonly type: 'Greeted', readonly peerId: PeerId, readonly connectionId: ConnectionId, readonly name: string }
  | { readonly type: 'Failed', readonly peerId: PeerId, readonly connectionId: ConnectionId, readonly error: Error }

/** Why a connection was refused. */
export class BlockedPeerError extends Error {
  constructor (readonly peerId: PeerId) {
    super(`${peerId.toString()} is blocked`)
  }
}

/** The hello protocol for the whole swarm. */
export class HelloBehaviour implements NetworkBehaviour<HelloEvent, FromBehaviour, ToBehaviour> {
  private readonly actions: Array<ToSwarm<HelloEvent, FromBehaviour>> = []
  private readonly connected = new Map<string, number>()
  private waker?: Waker

  constructor (readonly name: string, private readonly blocked: ReadonlySet<string> = new Set()) {}

  /**
   * Greet `peerId` on one of its connections. False when it is not connected, or when the
   * application has not taken the events already waiting: back-pressure, try again later.
   */
  greet (peerId: PeerId): boolean {
    if (!this.connected.has(peerId.toString()) || this.actions.length >= MAX_EVENTS) return false
    this.queue({ type: 'NotifyHandler', peerId, handler: 'any', event: { type: 'Greet', name: this.name } })
    return true
  }

  // Gates: throwing ConnectionDenied refuses the connection; every behaviour hears about it.
  handleEstablishedInboundConnection ({ peerId }: { peerId: PeerId }): HelloHandler {
    this.check(peerId)
    return new HelloHandler()
  }

  handleEstablishedOutboundConnection ({ peerId }: { peerId: PeerId }): HelloHandler {
    this.check(peerId)
    return new HelloHandler()
  }

  onSwarmEvent (event: FromSwarm): void {
    const key = 'peerId' in event ? event.peerId?.toString() : undefined
    if (key === undefined) return
    if (event.type === 'ConnectionEstablished') this.connected.set(key, (this.connected.get(key) ?? 0) + 1)
    if (event.type === 'ConnectionClosed') {
      const left = (this.connected.get(key) ?? 1) - 1
      if (left === 0) this.connected.delete(key)
      else this.connected.set(key, left)
    }
  }

  onConnectionHandlerEvent (peerId: PeerId, connectionId: ConnectionId, event: ToBehaviour): void {
    this.queue({ type: 'GenerateEvent', event: { ...event, peerId, connectionId } })
  }

  poll (cx: Context): ToSwarm<HelloEvent, FromBehaviour> | undefined {
    const action = this.actions.shift()
    if (action !== undefined) return action
    // Nothing to do: keep the waker, and wake it when there is something again.
    this.waker = cx.waker
    return undefined
  }

  private check (peerId: PeerId): void {
    if (this.blocked.has(peerId.toString())) throw new ConnectionDenied(new BlockedPeerError(peerId))
  }

  private queue (action: ToSwarm<HelloEvent, FromBehaviour>): void {
    this.actions.push(action)
    this.waker?.wake()
  }
}

/** Two swarms over the in-memory transport; alice greets bob once. */
async function main (): Promise<void> {
  const node = async (name: string) => SwarmBuilder.withNewIdentity()
    .withMemoryTransport()
    .withBehaviour(() => new HelloBehaviour(name))
    .build()
  const [alice, bob] = await Promise.all([node('alice'), node('bob')])
  bob.listenOn('/memory/0')

  const aliceDone = (async () => {
    for await (const event of alice) {
      if (event.type === 'ConnectionEstablished') alice.behaviour.greet(event.peerId)
      if (event.type === 'Behaviour' && event.event.type === 'Answered') {
        console.log(`alice heard: ${event.event.answer}`)
        return
      }
      if (event.type === 'Behaviour' && event.event.type === 'Failed') throw event.event.error
    }
  })()
  const bobDone = (async () => {
    for await (const event of bob) {
      if (event.type === 'NewListenAddr') alice.dial(event.address)
      if (event.type === 'Behaviour' && event.event.type === 'Greeted') {
        console.log(`bob was greeted by ${event.event.name}`)
        return
      }
    }
  })()
  await Promise.all([aliceDone, bobDone])
  await Promise.all([alice.close(), bob.close()])
}

if (process.argv[1] === import.meta.filename) await main()
