/**
 * Typed errors shared by the whole library. Every error has a stable `code` (for logs and
 * programmatic checks) and keeps the underlying error as `cause`.
 *
 * @module
 */

/**
 * Base class of every error thrown or reported by peerswarm.
 *
 * @group Errors
 */
export class PeerswarmError extends Error {
  /** A stable, machine-readable identifier of the error kind, e.g. `ERR_NO_ADDRESSES`. */
  readonly code: string

  constructor (code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/**
 * A configuration object had an invalid field; `field` names it.
 *
 * @group Errors
 */
export class ConfigError extends PeerswarmError {
  /** The offending option, e.g. `idleConnectionTimeout`. */
  readonly field: string

  constructor (field: string, message: string) {
    super('ERR_CONFIG', `invalid ${field}: ${message}`)
    this.field = field
  }
}

/**
 * Thrown by a behaviour's connection gate (`handle…Connection`) to refuse a connection.
 *
 * The Swarm turns it into a `DialDeniedError` or `ListenDeniedError` and tells every behaviour
 * through `DialFailure` / `ListenFailure`. Put the reason in `cause`, and recover it with
 * {@link ConnectionDenied.causeAs}.
 *
 * @group Errors
 */
export class ConnectionDenied extends PeerswarmError {
  constructor (cause: unknown, message?: string) {
    super('ERR_CONNECTION_DENIED', message ?? `connection denied: ${describe(cause)}`, { cause })
  }

  /** The cause, if it is an instance of `type`. */
  causeAs<T> (type: abstract new (...args: never[]) => T): T | undefined {
    return this.cause instanceof type ? this.cause : undefined
  }
}

/**
 * The swarm was closed; no further events will be produced.
 *
 * @group Errors
 */
export class SwarmClosedError extends PeerswarmError {
  constructor () {
    super('ERR_SWARM_CLOSED', 'the swarm is closed')
  }
}

/**
 * An operation was aborted through its `AbortSignal`.
 *
 * @group Errors
 */
export class AbortError extends PeerswarmError {
  constructor (message = 'the operation was aborted') {
    super('ERR_ABORTED', message)
  }
}

/** @internal A short human description of any thrown value. */
export function describe (err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}

/** @internal Normalise any thrown value to an `Error`. */
export function toError (err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}
