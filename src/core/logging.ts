/**
 * The loggers handed to the js-libp2p parts a swarm runs (transports, Noise, Yamux,
 * multistream-select), which make one per connection and one per stream.
 *
 * `@libp2p/logger`'s `defaultLogger()` builds three `debug` instances for every one of them
 * (the log, `:error` and `:trace`), and each asks whether stderr is a terminal: a system call
 * per instance, 4% of a Kademlia simulation's CPU (bench/README.md). When `DEBUG` enables none
 * of a scope's three names, {@link componentLogger} hands out a do-nothing logger instead, and
 * builds a real one only for the scopes `DEBUG` names. The check is made when the scope is
 * made: enabling namespaces at run time (`enable()` of `@libp2p/logger`) reaches the
 * connections and streams opened afterwards.
 *
 * @module
 */
import { enabled, logger } from '@libp2p/logger'
import type { ComponentLogger, Logger } from '@libp2p/interface'

const noop = (): void => {}

/** A logger that writes nothing, whose scopes are checked against `DEBUG` in their turn. */
function quiet (name: string): Logger {
  return Object.assign(noop.bind(undefined), {
    enabled: false,
    error: noop,
    trace: noop,
    newScope: (scope: string) => scoped(`${name}:${scope}`)
  })
}

/** `@libp2p/logger`'s logger for `name` when `DEBUG` enables it (or its `:error`, `:trace`); else a quiet one. */
function scoped (name: string): Logger {
  return enabled(name) || enabled(`${name}:error`) || enabled(`${name}:trace`) ? logger(name) : quiet(name)
}

/**
 * @internal The `ComponentLogger` a swarm gives the js-libp2p parts it runs: `@libp2p/logger`'s,
 * minus the cost of the loggers nobody reads.
 */
export function componentLogger (): ComponentLogger {
  return { forComponent: scoped }
}
