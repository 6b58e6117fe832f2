/**
 * The page's own WebRTC (`RTCPeerConnection`, `RTCDataChannel`) in the shapes the stream layer
 * and the transport use (node-datachannel's), so that a page dials `/webrtc-direct` with the
 * same code as Node. Browsers cannot set ICE credentials, so the dialer edits its offer's
 * `a=ice-ufrag` and `a=ice-pwd` lines ("SDP munging", which the spec's version 1 relies on).
 *
 * @module
 */
import type { DataChannel } from './stream.js'

/** A peer connection as the transport's `Peer` uses it. */
export interface BasicPeerConnection {
  close: () => void
  createDataChannel: (label: string, config?: { negotiated?: boolean, id?: number }) => DataChannel
  onDataChannel: (cb: (channel: DataChannel) => void) => void
  onStateChange: (cb: (state: string) => void) => void
}

/** Whether this platform has the standard `RTCPeerConnection` (browsers; not Node). */
export function hasRTCPeerConnection (): boolean {
  return typeof (globalThis as { RTCPeerConnection?: unknown }).RTCPeerConnection === 'function'
}

/** An `RTCDataChannel` as a {@link DataChannel}: one callback per event, as node-datachannel. */
function adaptChannel (channel: RTCDataChannel): DataChannel {
  channel.binaryType = 'arraybuffer'
  return {
    getId: () => channel.id ?? -1,
    sendMessageBinary: (buffer) => {
      channel.send(buffer as Uint8Array<ArrayBuffer>)
      return true
    },
    bufferedAmount: () => channel.bufferedAmount,
    setBufferedAmountLowThreshold: (size) => { channel.bufferedAmountLowThreshold = size },
    isOpen: () => channel.readyState === 'open',
    close: () => { channel.close() },
    onOpen: (cb) => { channel.onopen = () => { cb() } },
    onClosed: (cb) => { channel.onclose = () => { cb() } },
    onError: (cb) => { channel.onerror = (evt) => { cb(String((evt as RTCErrorEvent).error?.message ?? 'error')) } },
    onBufferedAmountLow: (cb) => { channel.onbufferedamountlow = () => { cb() } },
    onMessage: (cb) => { channel.onmessage = (evt: MessageEvent<string | ArrayBuffer>) => { cb(evt.data) } }
  }
}

/** An `RTCPeerConnection` as a {@link BasicPeerConnection}. */
export class BrowserPeerConnection implements BasicPeerConnection {
  /**
   * @param ignoreLabel - channels the remote opens with this label are not streams (the
   * `init` channel a `/webrtc` dialer opens so that its offer has a data section).
   */
  constructor (readonly pc: RTCPeerConnection, private readonly ignoreLabel?: string) {}

  close (): void {
    this.pc.close()
  }

  createDataChannel (label: string, config?: { negotiated?: boolean, id?: number }): DataChannel {
    return adaptChannel(this.pc.createDataChannel(label, config))
  }

  onDataChannel (cb: (channel: DataChannel) => void): void {
    this.pc.ondatachannel = (evt) => {
      if (this.ignoreLabel !== undefined && evt.channel.label === this.ignoreLabel) return
      cb(adaptChannel(evt.channel))
    }
  }

  onStateChange (cb: (state: string) => void): void {
    this.pc.onconnectionstatechange = () => { cb(this.pc.connectionState) }
  }
}

/** `sdp` with `ufrag` as its ICE ufrag and password. */
export function mungeUfrag (sdp: string, ufrag: string): string {
  return sdp
    .replace(/^a=ice-ufrag:[^\r\n]*/gm, `a=ice-ufrag:${ufrag}`)
    .replace(/^a=ice-pwd:[^\r\n]*/gm, `a=ice-pwd:${ufrag}`)
}

/** The `a=fingerprint:sha-256 AB:CD:…` value of `sdp`. */
export function sha256FingerprintOf (sdp: string): string | undefined {
  return /^a=fingerprint:sha-256 ([0-9A-Fa-f:]+)/m.exec(sdp)?.[1]
}
