/**
 * Codecs: how requests and responses are written to and read from a stream. A request-response
 * exchange is one stream: the requester writes its request and closes its writing side, the
 * responder reads it, writes the response and closes. A codec only reads and writes messages;
 * opening, closing, timeouts and resets are the handler's.
 *
 * The ready codecs frame each message as `uvarint(length) ‖ bytes` (the framing most libp2p
 * protocols use, read and written by `readFrame` / `writeFrame` of the framing toolkit) and
 * refuse messages over a size limit on both sides, before sending and before buffering.
 *
 * @module
 */
import { FrameTooLargeError, readFrame as readLengthPrefixed, writeFrame as writeLengthPrefixed } from '../../behaviour/framing.js'
import { ConfigError } from '../../core/errors.js'
import { InvalidMessageError, MessageTooLargeError } from './errors.js'
import type { Stream } from '@libp2p/interface'

/** What a codec's methods get besides the stream. */
export interface CodecOptions {
  /** Aborted when the request times out or the connection closes: stop and throw. */
  readonly signal: AbortSignal
}

/**
 * Reads and writes the messages of a request-response protocol on a stream (rust-libp2p's
 * `request_response::Codec`). `protocol` is the protocol the stream negotiated, so one codec
 * can speak several versions. A method that throws fails the exchange (the stream is reset and
 * an `Io` failure reported with the error as `cause`).
 */
export interface Codec<TRequest, TResponse> {
  /** Read one request from `stream`. */
  readRequest(protocol: string, stream: Stream, options: CodecOptions): Promise<TRequest>
  /** Read one response from `stream`. */
  readResponse(protocol: string, stream: Stream, options: CodecOptions): Promise<TResponse>
  /** Write `request` to `stream` (the handler closes the writing side afterwards). */
  writeRequest(protocol: string, stream: Stream, request: TRequest, options: CodecOptions): Promise<void>
  /** Write `response` to `stream` (the handler closes the writing side afterwards). */
  writeResponse(protocol: string, stream: Stream, response: TResponse, options: CodecOptions): Promise<void>
}

/** Size limits of the length-prefixed codecs. */
export interface SizeLimits {
  /** Largest request written or read, in bytes (default: 1 MiB). */
  readonly maxRequestSize?: number
  /** Largest response written or read, in bytes (default: 10 MiB). */
  readonly maxResponseSize?: number
}

/** Default `maxRequestSize`: 1 MiB (as rust-libp2p's JSON and CBOR codecs). */
export const DEFAULT_MAX_REQUEST_SIZE = 1024 * 1024
/** Default `maxResponseSize`: 10 MiB (as rust-libp2p's JSON and CBOR codecs). */
export const DEFAULT_MAX_RESPONSE_SIZE = 10 * 1024 * 1024

/** How a length-prefixed codec turns messages into bytes and back. */
export interface LengthPrefixedCodecInit<TRequest, TResponse> extends SizeLimits {
  /** The bytes of a request. */
  encodeRequest(request: TRequest): Uint8Array
  /** A request from its bytes; throw (e.g. `InvalidMessageError`) if they are not one. */
  decodeRequest(bytes: Uint8Array): TRequest
  /** The bytes of a response. */
  encodeResponse(response: TResponse): Uint8Array
  /** A response from its bytes; throw (e.g. `InvalidMessageError`) if they are not one. */
  decodeResponse(bytes: Uint8Array): TResponse
}

/**
 * A codec that writes each message as one length-prefixed frame (`uvarint(length) ‖ bytes`)
 * from the given encoders. Messages over the limits are refused with `MessageTooLargeError`:
 * before anything is sent when writing, as soon as the length prefix is read when reading.
 */
export function lengthPrefixedCodec<TRequest, TResponse> (init: LengthPrefixedCodecInit<TRequest, TResponse>): Codec<TRequest, TResponse> {
  const maxRequestSize = limit('maxRequestSize', init.maxRequestSize ?? DEFAULT_MAX_REQUEST_SIZE)
  const maxResponseSize = limit('maxResponseSize', init.maxResponseSize ?? DEFAULT_MAX_RESPONSE_SIZE)
  return {
    async readRequest (_protocol, stream, { signal }) {
      return init.decodeRequest(await readFrame(stream, maxRequestSize, signal))
    },
    async readResponse (_protocol, stream, { signal }) {
      return init.decodeResponse(await readFrame(stream, maxResponseSize, signal))
    },
    async writeRequest (_protocol, stream, request, { signal }) {
      await writeFrame(stream, init.encodeRequest(request), maxRequestSize, signal)
    },
    async writeResponse (_protocol, stream, response, { signal }) {
      await writeFrame(stream, init.encodeResponse(response), maxResponseSize, signal)
    }
  }
}

/**
 * A codec of raw bytes: each request and response is one length-prefixed frame.
 *
 * ```ts
 * const files = new requestResponse.Behaviour(requestResponse.bytesCodec({ maxResponseSize: 64 * 1024 }), ['/files/1.0.0'])
 * ```
 */
export function bytesCodec (limits: SizeLimits = {}): Codec<Uint8Array, Uint8Array> {
  const same = (bytes: Uint8Array): Uint8Array => bytes
  return lengthPrefixedCodec({ ...limits, encodeRequest: same, decodeRequest: same, encodeResponse: same, decodeResponse: same })
}

/**
 * A codec of JSON values: each request and response is one length-prefixed frame of UTF-8 JSON.
 * Decoding checks only that the bytes are JSON, not that they have the shape of `TRequest` /
 * `TResponse`: validate what a remote sends before trusting it.
 *
 * ```ts
 * type Request = { readonly name: string }
 * type Response = { readonly greeting: string }
 * const hello = new requestResponse.Behaviour(requestResponse.jsonCodec<Request, Response>(), ['/hello/1.0.0'])
 * ```
 */
export function jsonCodec<TRequest, TResponse> (limits: SizeLimits = {}): Codec<TRequest, TResponse> {
  return lengthPrefixedCodec<TRequest, TResponse>({
    ...limits,
    encodeRequest: encodeJson,
    decodeRequest: bytes => decodeJson(bytes) as TRequest,
    encodeResponse: encodeJson,
    decodeResponse: bytes => decodeJson(bytes) as TResponse
  })
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

function encodeJson (value: unknown): Uint8Array {
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch (err) {
    throw new InvalidMessageError('the message cannot be written as JSON', err)
  }
  if (text === undefined) throw new InvalidMessageError(`the message cannot be written as JSON (${typeof value})`)
  return encoder.encode(text)
}

function decodeJson (bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(bytes))
  } catch (err) {
    throw new InvalidMessageError('the message is not UTF-8 JSON', err)
  }
}

function limit (field: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new ConfigError(field, `must be a non-negative integer, got ${String(value)}`)
  return value
}

/** Read one frame of at most `max` bytes; a larger one is a `MessageTooLargeError`. */
async function readFrame (stream: Stream, max: number, signal: AbortSignal): Promise<Uint8Array> {
  try {
    return await readLengthPrefixed(stream, { maxSize: max, signal })
  } catch (err) {
    if (err instanceof FrameTooLargeError) throw new MessageTooLargeError(max, undefined, err)
    throw err
  }
}

/** Write `bytes` as one frame, refusing more than `max` bytes with `MessageTooLargeError`. */
async function writeFrame (stream: Stream, bytes: Uint8Array, max: number, signal: AbortSignal): Promise<void> {
  if (bytes.byteLength > max) throw new MessageTooLargeError(max, bytes.byteLength)
  await writeLengthPrefixed(stream, bytes, { maxSize: max, signal })
}
