/**
 * Memory under attack, the retained part (docs/limits.md, "Memory under attack"): a GossipSub
 * node `a` (StrictSign) meshed with an honest node `b` that publishes throughout, over TCP on
 * 127.0.0.1, meets a shortened run of the twenty-one attack kinds of `scripts/attack-memory.ts`
 * (`ATTACKS` in test/fixtures/under-attack.ts, every count at a tenth, and 20,000 distinct valid
 * messages of an attacker's), twice. Every honest message must arrive, nothing bad; and once the
 * attackers of the second pass are gone and the message cache has turned over, the JS heap in
 * use after a full GC must be back within `RETAINED_BOUND_MB` of where it was before that pass
 * (the first pass compiles the code the attacks run, a few MB kept for good).
 *
 * Both nodes keep at most `SEEN_MAX` ids in their seen caches, below the 20,000 valid ids, so the
 * bound catches a seen cache that stops evicting (each node would then keep ~2 MB more); scoring
 * is off, since its delivery records keep every id for two minutes by design (as go's).
 */
import { expect } from 'chai'
import { SwarmBuilder, combine, gossipsub } from '../../src/index.js'
import { EventLog, addressOf, until } from '../fixtures/event-log.js'
import { ATTACKS, Attacker, VALID_PREFIX, meshedPair } from '../fixtures/under-attack.js'

const TOPIC = 'attack-memory'
/** The seen caches' bound here (the default is 100,000). */
const SEEN_MAX = 1_000
/**
 * Growth of the heap in use allowed over the measured pass and a GC, both nodes together.
 * Measured on the 2-core development machine, loaded by other test runs: −0.3, +0.4, −0.3 MB
 * (three runs); with the seen caches' eviction disabled, +3.7 MB, which fails.
 */
const RETAINED_BOUND_MB = 1.5
/** Every count of the sequence at this share (valid spam aside). */
const SCALE = 0.1
/** Distinct valid messages of an attacker's: 20 times the seen caches' bound. */
const VALID_SPAM = 20_000

const options: Partial<gossipsub.Options> = { heartbeatInterval: 200, heartbeatInitialDelay: 10, iwantFollowupTime: 500, seenMaxEntries: SEEN_MAX }

/** What a node delivered: honest messages, valid ones of an attacker's, anything else. */
interface Delivered { honest: Set<string>, valid: number, bad: string[] }

async function node (delivered: Delivered) {
  const swarm = await SwarmBuilder.withNewIdentity().withTcp()
    .withBehaviour(key => combine({ gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key), ...options }) }))
    .build()
  swarm.behaviour.gossipsub.subscribe(TOPIC)
  swarm.listenOn('/ip4/127.0.0.1/tcp/0')
  return new EventLog(swarm, (event) => {
    if (event.type !== 'Behaviour' || event.event.event.type !== 'Message') return
    const text = new TextDecoder().decode(event.event.event.message.data)
    if (text.startsWith('honest ')) delivered.honest.add(text)
    else if (text.startsWith(VALID_PREFIX)) delivered.valid++
    else delivered.bad.push(text.slice(0, 40))
  })
}

/** The heap in use after full GCs, in MB. */
function heapUsedMB (): number {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc == null) throw new Error('run with --expose-gc (.mocharc does)')
  gc()
  gc()
  return process.memoryUsage().heapUsed / (1024 * 1024)
}

const pause = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('memory under attack (127.0.0.1)', function () {
  this.timeout(180_000)
  const closing: Array<{ close: () => Promise<void> }> = []
  afterEach(async () => { await Promise.all(closing.splice(0).map(async n => { await n.close() })) })

  it(`after a shortened attack sequence the heap in use returns within ${RETAINED_BOUND_MB} MB, and honest delivery stays complete`, async () => {
    const atA: Delivered = { honest: new Set(), valid: 0, bad: [] }
    const atB: Delivered = { honest: new Set(), valid: 0, bad: [] }
    let made = 0
    const { a, b } = await meshedPair(async () => await node(made++ === 0 ? atA : atB), TOPIC, closing)
    const target = { address: await addressOf(a), peerId: a.swarm.localPeerId, topic: TOPIC }
    // The logs would keep every event (and the received buffers under them): counted above instead.
    const forget = setInterval(() => { a.clear(); b.clear() }, 500)
    let published = 0
    let publishing = true
    const honest = (async () => {
      while (publishing) {
        b.swarm.behaviour.gossipsub.publish(TOPIC, new TextEncoder().encode(`honest ${published++}`))
        await pause(50)
      }
    })()
    const sequence = async (): Promise<void> => {
      for (const attack of ATTACKS) {
        const attacker = await Attacker.create()
        try {
          await attack.run({ target, attacker, scale: attack.kind === 'valid-spam' ? VALID_SPAM / 10_000 : SCALE })
          // What is still on its way is lost when the attacker closes: let a read it (until its
          // deliveries stop for half a second).
          for (let last = -1; last !== atA.valid;) {
            last = atA.valid
            await pause(500)
          }
        } finally {
          await attacker.close()
        }
      }
    }
    try {
      // A first pass, not measured: the code the attacks run is compiled and its type feedback
      // kept (a few MB of heap, once), and the seen caches fill to their bound.
      await sequence()
      await pause(2_000)
      const before = heapUsedMB()
      await sequence()
      publishing = false
      await honest
      await until(() => atA.honest.size === published, 15_000, `every honest message at a (${atA.honest.size} of ${published})`)
      expect(atA.bad, 'bad messages delivered at a').to.deep.equal([])
      expect(atB.bad, 'bad messages delivered at b').to.deep.equal([])
      expect(atA.valid).to.equal(2 * (VALID_SPAM + 1))
      // The message cache keeps 5 heartbeats (1 s) of messages; the attackers' connections are closed.
      await pause(2_000)
      a.clear()
      b.clear()
      const retained = heapUsedMB() - before
      if (process.env.ATTACK_MEMORY_LOG != null) console.log(JSON.stringify({ heapUsedBeforeMB: before, retainedMB: retained }))
      expect(retained, `heap in use after the sequence − before (MB): ${retained.toFixed(2)}`).to.be.below(RETAINED_BOUND_MB)
    } finally {
      publishing = false
      clearInterval(forget)
    }
  })
})
