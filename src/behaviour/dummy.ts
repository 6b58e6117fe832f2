/**
 * `dummy()`: a behaviour that does nothing, with a handler that speaks no protocol and does
 * not keep connections alive. A placeholder, and the disabled half of `toggle`.
 *
 * @module
 */
import { NO_PROTOCOLS } from './connection-handler.js'
import type { ConnectionHandler, ConnectionHandlerEvent, SubstreamProtocol } from './connection-handler.js'
import type { NetworkBehaviour, ToSwarm } from './network-behaviour.js'

/**
 * A handler with no protocol, no events and no keep-alive.
 *
 * @group Composing behaviours
 */
export class DummyHandler implements ConnectionHandler<never, never> {
  listenProtocol (): SubstreamProtocol {
    return NO_PROTOCOLS
  }

  connectionKeepAlive (): boolean {
    return false
  }

  onBehaviourEvent (): void {}

  onConnectionEvent (): void {}

  poll (): ConnectionHandlerEvent<never> | undefined {
    return undefined
  }
}

/**
 * A behaviour that accepts every connection and never has work.
 *
 * @group Composing behaviours
 */
export class DummyBehaviour implements NetworkBehaviour<never, never, never> {
  handleEstablishedInboundConnection (): DummyHandler {
    return new DummyHandler()
  }

  handleEstablishedOutboundConnection (): DummyHandler {
    return new DummyHandler()
  }

  onSwarmEvent (): void {}

  onConnectionHandlerEvent (): void {}

  poll (): ToSwarm<never, never> | undefined {
    return undefined
  }
}

/**
 * A behaviour that does nothing.
 *
 * @group Composing behaviours
 */
export function dummy (): DummyBehaviour {
  return new DummyBehaviour()
}
