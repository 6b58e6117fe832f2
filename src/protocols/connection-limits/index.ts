/**
 * Connection limits: `connectionLimits.Behaviour`, `connectionLimits.LimitExceededError`.
 *
 * @module
 */
export { Behaviour, LimitExceededError } from './behaviour.js'
export type { ConnectionLimits, LimitKind } from './behaviour.js'
