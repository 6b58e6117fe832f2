/**
 * Our own transport-message layer under the muxer: the Noise handshake and cipher states stay
 * `@chainsafe/libp2p-noise`'s, the framing and the writes are ours.
 *
 * - {@link HandshakeStream} stands between the raw connection and Noise during the handshake,
 *   so that afterwards Noise's own encrypted stream can be left unattached (it never sees
 *   another byte) and {@link SecureChannel} takes the raw connection over, with the bytes that
 *   arrived right behind the handshake.
 * - {@link SecureChannel} coalesces writes: everything the muxer sends within one event-loop
 *   turn (Yamux frames of every stream, window updates, pings) is encrypted as few Noise
 *   messages (≤ 65,535 B each) and leaves in one write to the socket, at the end of the turn
 *   (`setImmediate`, or a task where there is none), or at once when `FLUSH_BYTES` are waiting. Reads decode whole messages
 *   from contiguous chunks ({@link NoiseFrameDecoder}), decrypt them (in place for messages
 *   under 1,200 B, which `@chainsafe/libp2p-noise` decrypts in WebAssembly; larger ones go
 *   through Node's crypto, which returns a new buffer, so the ciphertext chunk is garbage at
 *   once), and hand the muxer every plaintext of a chunk in one event.
 * - Under Yamux ({@link SecureChannel.holdWindowUpdates}), plain window updates are held back
 *   until something else is written or enough of them add up (see `yamux-window.ts`), so that
 *   they do not cost a socket write each.
 *
 * The wire stays spec Noise (`u16 BE length ‖ ChaCha20-Poly1305 ciphertext`), so any libp2p
 * Noise peer reads it.
 *
 * @module
 */
import { AbstractMessageStream } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import { nextTurn } from '../next-turn.js'
import { NOISE_MAX_PLAINTEXT, NOISE_TAG_LENGTH, NoiseFrameDecoder, sealFrames } from './noise-framing.js'
import { WindowUpdateBatcher } from './yamux-window.js'
import type { AbortOptions, MessageStream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import type { SendResult } from '@libp2p/utils'

/** The cipher states a Noise handshake ends with (`@chainsafe/libp2p-noise`'s `handshake`). */
export interface NoiseCipher {
  encrypt: (plaintext: Uint8Array) => Uint8Array | Uint8ArrayList
  decrypt: (ciphertext: Uint8Array | Uint8ArrayList, dst?: Uint8Array) => Uint8Array | Uint8ArrayList
}

/**
 * Queued plaintext past which a write leaves at once rather than at the end of the turn. It
 * also bounds what the muxer can hand over in one turn past a socket that pushes back (the
 * write that crosses it tells the muxer to wait): one Noise message's worth, so that
 * priorities and IDONTWANT in the queues above still have something to act on (256 KiB let a
 * forwarded message sit below them for ~100 ms on a 20 Mbit/s link).
 */
export const FLUSH_BYTES = 64 * 1024

/** The cipher of a connection secured by `@chainsafe/libp2p-noise`, if it can be read. */
export function noiseCipherOf (secured: unknown): NoiseCipher | undefined {
  const handshake = (secured as { handshake?: Partial<NoiseCipher> } | undefined)?.handshake
  if (typeof handshake?.encrypt !== 'function' || typeof handshake.decrypt !== 'function') return undefined
  return handshake as NoiseCipher
}

/**
 * A transparent stand-in for the raw connection during a security handshake. {@link detach}
 * stops it: from then on it forwards nothing, and it returns the bytes received but not
 * consumed by the handshake.
 */
export class HandshakeStream extends AbstractMessageStream {
  private readonly leftover = new Uint8ArrayList()
  private detached = false
  private readonly rawOnMessage = (evt: StreamMessageEvent): void => { this.onData(evt.data) }
  private readonly rawOnDrain = (): void => { this.safeDispatchEvent('drain') }
  private readonly rawOnRemoteCloseWrite = (): void => { this.onRemoteCloseWrite() }
  private readonly rawOnClose = (evt: StreamCloseEvent): void => {
    if (evt.error != null) {
      if (evt.local === true) this.abort(evt.error)
      else this.onRemoteReset()
    } else {
      this.onTransportClosed()
    }
  }

  constructor (readonly raw: MessageStream) {
    super({ log: raw.log, inactivityTimeout: raw.inactivityTimeout, maxReadBufferLength: raw.maxReadBufferLength, direction: raw.direction })
    raw.addEventListener('message', this.rawOnMessage)
    raw.addEventListener('drain', this.rawOnDrain)
    raw.addEventListener('close', this.rawOnClose)
    raw.addEventListener('remoteCloseWrite', this.rawOnRemoteCloseWrite)
  }

  /**
   * Bytes put back by a reader that is done (the handshake's length-prefixed reader does so
   * when it lets go): kept for whoever takes the connection over, never re-dispatched here.
   */
  override unshift (data: Uint8Array | Uint8ArrayList): void {
    this.leftover.prepend(data)
  }

  /** Stop forwarding; returns the bytes received and not yet consumed, in order. */
  detach (): Uint8ArrayList {
    this.detached = true
    this.raw.removeEventListener('message', this.rawOnMessage)
    this.raw.removeEventListener('drain', this.rawOnDrain)
    this.raw.removeEventListener('close', this.rawOnClose)
    this.raw.removeEventListener('remoteCloseWrite', this.rawOnRemoteCloseWrite)
    const rest = new Uint8ArrayList(this.leftover, this.readBuffer)
    this.leftover.consume(this.leftover.byteLength)
    this.readBuffer.consume(this.readBuffer.byteLength)
    return rest
  }

  sendData (data: Uint8ArrayList): SendResult {
    if (this.detached) throw new Error('handshake stream detached')
    return { sentBytes: data.byteLength, canSendMore: this.raw.send(data) }
  }

  sendReset (err: Error): void {
    if (!this.detached) this.raw.abort(err)
  }

  sendPause (): void {
    if (!this.detached) this.raw.pause()
  }

  sendResume (): void {
    if (!this.detached) this.raw.resume()
  }

  async close (options?: AbortOptions): Promise<void> {
    if (!this.detached) await this.raw.close(options)
  }
}

/**
 * Where `sealFrames` assembles a Noise message from several parts: one for all channels, since
 * sealing is synchronous and the cipher does not keep its input (one per channel was 64 KiB of
 * memory per connection, and zeroing it 2% of a connection's set-up).
 */
let scratch: Uint8Array | undefined
function sealScratch (): Uint8Array {
  scratch ??= new Uint8Array(NOISE_MAX_PLAINTEXT)
  return scratch
}

/** An encrypted connection: Noise transport messages over `raw`, writes coalesced per turn. */
export class SecureChannel extends AbstractMessageStream {
  private readonly decoder = new NoiseFrameDecoder()
  private pending: Uint8Array[] = []
  private pendingBytes = 0
  private flushScheduled = false
  /** Set once Yamux runs on this channel: its plain window updates are held back. */
  private updates?: WindowUpdateBatcher
  /** Whether the next write starts where a Yamux frame starts (the last one ended with a frame). */
  private writeStartsFrame = true
  /** The raw connection refused more until its `drain`. */
  private rawFull = false
  private readonly encryptOne = (plaintext: Uint8Array): Uint8Array | Uint8ArrayList => this.cipher.encrypt(plaintext)
  private readonly flushNow = (): void => {
    this.flushScheduled = false
    this.flush()
  }

  private readonly rawOnMessage = (evt: StreamMessageEvent): void => { this.receive(evt.data) }
  private readonly rawOnDrain = (): void => {
    this.rawFull = false
    this.safeDispatchEvent('drain')
  }

  private readonly rawOnRemoteCloseWrite = (): void => { this.onRemoteCloseWrite() }
  private readonly rawOnClose = (evt: StreamCloseEvent): void => {
    this.discardPending()
    if (evt.error != null) {
      if (evt.local === true) this.abort(evt.error)
      else this.onRemoteReset()
    } else {
      this.onTransportClosed()
    }
  }

  /**
   * Take `raw` over with `cipher`. `leftover`: bytes that arrived behind the handshake, read
   * before anything new.
   */
  constructor (readonly raw: MessageStream, private readonly cipher: NoiseCipher, leftover?: Uint8ArrayList) {
    super({ log: raw.log, inactivityTimeout: raw.inactivityTimeout, maxReadBufferLength: raw.maxReadBufferLength, direction: raw.direction })
    // Kept in the read buffer until the muxer listens (AbstractMessageStream dispatches then).
    if (leftover != null && leftover.byteLength > 0) this.receive(leftover)
    raw.addEventListener('message', this.rawOnMessage)
    raw.addEventListener('drain', this.rawOnDrain)
    raw.addEventListener('close', this.rawOnClose)
    raw.addEventListener('remoteCloseWrite', this.rawOnRemoteCloseWrite)
  }

  /** Decode, decrypt (in place where Noise's crypto allows), and pass every plaintext of `chunk` on in one event. */
  private receive (chunk: Uint8Array | Uint8ArrayList): void {
    // Most chunks hold one message: its plaintext goes on as it is, without a list around it.
    let first: Uint8Array | Uint8ArrayList | undefined
    let more: Uint8ArrayList | undefined
    try {
      this.decoder.decode(chunk, (frame) => {
        const plaintext = frame instanceof Uint8Array ? this.cipher.decrypt(frame, frame.subarray(0, frame.byteLength - NOISE_TAG_LENGTH)) : this.cipher.decrypt(frame)
        if (first === undefined) first = plaintext
        else if (more === undefined) more = new Uint8ArrayList(first, plaintext)
        else more.append(plaintext)
      })
    } catch (err) {
      this.abort(err as Error)
      return
    }
    const plaintext = more ?? first
    if (plaintext !== undefined && plaintext.byteLength > 0) this.onData(plaintext)
  }

  /**
   * From now on, what is written here is Yamux frames (the muxer was just negotiated): hold
   * its plain window updates back, to leave with other data or once enough add up.
   */
  holdWindowUpdates (): void {
    if (this.updates !== undefined) return
    // What is queued came before Yamux (the muxer negotiation's last message): it leaves first,
    // so that no held update can be put in front of it.
    this.flush()
    this.updates = new WindowUpdateBatcher()
    this.writeStartsFrame = true
  }

  sendData (data: Uint8ArrayList): SendResult {
    const updates = this.updates
    for (const buf of data) {
      if (buf.byteLength === 0) continue
      if (updates !== undefined) {
        this.pendingBytes += updates.filter(buf, this.pending)
      } else {
        this.pending.push(buf)
        this.pendingBytes += buf.byteLength
      }
    }
    if (this.pendingBytes >= FLUSH_BYTES) {
      this.flush()
    } else if (!this.flushScheduled && (this.pendingBytes > 0 || updates?.due === true)) {
      this.flushScheduled = true
      nextTurn(this.flushNow)
    }
    return { sentBytes: data.byteLength, canSendMore: !this.rawFull }
  }

  /** Encrypt and write everything queued, as one write, with any held window updates. */
  flush (): void {
    const updates = this.updates
    if (updates?.holding === true && (this.pendingBytes > 0 || updates.due)) {
      // Held updates go where a frame starts: the front of this write, or else its end (the
      // muxer hands over whole frames, so one of the two always is).
      if (this.writeStartsFrame) {
        const frames = updates.take() as Uint8Array
        this.pending.unshift(frames)
        this.pendingBytes += frames.byteLength
      } else if (updates.atFrameStart) {
        const frames = updates.take() as Uint8Array
        this.pending.push(frames)
        this.pendingBytes += frames.byteLength
      }
    }
    if (this.pendingBytes === 0) return
    if (updates !== undefined) this.writeStartsFrame = updates.atFrameStart
    const parts = this.pending
    const total = this.pendingBytes
    this.pending = []
    this.pendingBytes = 0
    if (this.raw.status !== 'open') return
    let sealed: Uint8Array
    try {
      sealed = sealFrames(parts, total, this.encryptOne, sealScratch())
    } catch (err) {
      this.abort(err as Error)
      return
    }
    try {
      if (!this.raw.send(sealed)) this.rawFull = true
    } catch (err) {
      this.abort(err as Error)
    }
  }

  private discardPending (): void {
    this.pending = []
    this.pendingBytes = 0
  }

  sendReset (err: Error): void {
    this.discardPending()
    this.raw.abort(err)
  }

  sendPause (): void {
    this.raw.pause()
  }

  sendResume (): void {
    this.raw.resume()
  }

  /**
   * Close gracefully: what the muxer handed over (still in our write buffer under
   * back-pressure, or queued for this turn's write) is encrypted and written first.
   */
  async close (options?: AbortOptions): Promise<void> {
    if (this.writeBuffer.byteLength > 0 || this.sendingData) await idleOrClosed(this, options)
    this.flush()
    await this.raw.close(options)
  }
}

/** Resolves on `stream`'s next `idle` (its write buffer is empty), or when it closes or `options.signal` aborts. */
async function idleOrClosed (stream: AbstractMessageStream, options?: AbortOptions): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = (): void => {
      stream.removeEventListener('idle', done)
      stream.removeEventListener('close', done)
      options?.signal?.removeEventListener('abort', done)
      resolve()
    }
    stream.addEventListener('idle', done)
    stream.addEventListener('close', done)
    options?.signal?.addEventListener('abort', done)
  })
}
