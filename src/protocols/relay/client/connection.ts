/**
 * A relayed connection's raw side: a js-libp2p `MultiaddrConnection` over the stream that a
 * relay splices to the other peer, which the swarm then upgrades (Noise, Yamux) like a socket.
 *
 * @module
 */
import { AbstractMultiaddrConnection } from '@libp2p/utils'
import type { SendResult } from '@libp2p/utils'
import type { AbortOptions, MessageStreamDirection, Stream, StreamCloseEvent, StreamMessageEvent } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Uint8ArrayList } from 'uint8arraylist'

/** Options of a {@link CircuitConnection}. */
export interface CircuitConnectionInit {
  /** The other peer's circuit address (`…/p2p/<relay>/p2p-circuit/p2p/<peer>`). */
  readonly remoteAddr: Multiaddr
  readonly direction: MessageStreamDirection
}

/**
 * The stream through a relay as a connection's socket: bytes, back-pressure (pause, resume,
 * drain), close and reset go to and from the stream. Like a TCP socket without half-open, it
 * closes its side when the remote closes its own.
 */
export class CircuitConnection extends AbstractMultiaddrConnection {
  constructor (private readonly stream: Stream, init: CircuitConnectionInit) {
    super({ remoteAddr: init.remoteAddr, direction: init.direction, log: stream.log.newScope('relayed') })
    stream.addEventListener('message', (evt: StreamMessageEvent) => { this.onData(evt.data) })
    stream.addEventListener('drain', () => { this.safeDispatchEvent('drain') })
    stream.addEventListener('remoteCloseWrite', () => {
      this.onRemoteCloseWrite()
      this.close().catch((err: unknown) => { this.abort(err instanceof Error ? err : new Error(String(err))) })
    })
    stream.addEventListener('close', (evt: StreamCloseEvent) => { this.onTransportClosed(evt.error) })
    // The relay may have reset the stream before we took it.
    if (stream.status === 'aborted' || stream.status === 'reset') queueMicrotask(() => { this.onTransportClosed(new Error(`the relayed stream was ${stream.status}`)) })
  }

  sendData (data: Uint8ArrayList): SendResult {
    return { sentBytes: data.byteLength, canSendMore: this.stream.send(data) }
  }

  async sendClose (options?: AbortOptions): Promise<void> {
    await this.stream.close(options)
  }

  sendReset (err: Error): void {
    this.stream.abort(err)
  }

  sendPause (): void {
    if (this.stream.readStatus === 'readable') this.stream.pause()
  }

  sendResume (): void {
    if (this.stream.readStatus === 'paused') this.stream.resume()
  }
}
