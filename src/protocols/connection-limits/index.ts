/**
 * Connection limits: {@link Behaviour | connectionLimits.Behaviour} is made of gates only. It
 * counts pending and established connections and refuses those over a limit
 * ({@link ConnectionLimits}); the refusal is a `DialDeniedError` or `ListenDeniedError` whose
 * cause names the limit as a {@link LimitExceededError}. Combine it with the behaviours that do
 * the work.
 *
 * ```ts
 * import { DialDeniedError, SwarmBuilder, combine, connectionLimits, ping } from 'peerswarm'
 *
 * const swarm = await SwarmBuilder.withNewIdentity()
 *   .withTcp()
 *   .withBehaviour(() => combine({
 *     limits: new connectionLimits.Behaviour({ maxEstablished: 50, maxEstablishedPerPeer: 1 }),
 *     ping: new ping.Behaviour()
 *   }))
 *   .build()
 * for await (const event of swarm) {
 *   if (event.type === 'OutgoingConnectionError' && event.error instanceof DialDeniedError) {
 *     console.log('over the limit:', event.error.cause.causeAs(connectionLimits.LimitExceededError)?.kind)
 *   }
 * }
 * ```
 *
 * @group Protocols
 * @module
 */
export { Behaviour, LimitExceededError } from './behaviour.js'
export type { ConnectionLimits, LimitKind } from './behaviour.js'
