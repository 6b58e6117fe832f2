import { expect } from 'chai'
import { combine, floodsub } from '../../src/index.js'
import { connect, drive, newSwarm } from '../../src/testing/index.js'

async function node (anonymous = false) {
  return newSwarm(key => combine({
    floodsub: new floodsub.Behaviour({ authenticity: anonymous ? floodsub.MessageAuthenticity.anonymous() : floodsub.MessageAuthenticity.signed(key) })
  }))
}

const topic = new floodsub.IdentTopic('chat')
const text = (s: string) => new TextEncoder().encode(s)

describe('floodsub over the memory transport', () => {
  for (const anonymous of [false, true]) {
    it(`delivers a published message (${anonymous ? 'StrictNoSign' : 'StrictSign'}) and reports subscriptions`, async () => {
      const a = await node(anonymous)
      const b = await node(anonymous)
      try {
        a.behaviour.floodsub.subscribe(topic)
        b.behaviour.floodsub.subscribe(topic)
        await connect(a, b)
        await drive([a, b], { count: 1, filter: e => e.type === 'Behaviour' && e.event.event.type === 'Subscribed' })
        const id = b.behaviour.floodsub.publish(topic, text('hello'))
        const [[received]] = await drive([a, b], { count: [1, 0], filter: e => e.type === 'Behaviour' && e.event.event.type === 'Message' })
        if (received.type !== 'Behaviour' || received.event.event.type !== 'Message') throw new Error('unreachable')
        const event = received.event.event
        expect(new TextDecoder().decode(event.message.data)).to.equal('hello')
        expect(event.message.topic).to.equal('chat')
        expect(event.messageId).to.deep.equal(id)
        expect(event.propagationSource.equals(b.localPeerId)).to.equal(true)
        if (anonymous) expect(event.message.source).to.equal(undefined)
        else expect(event.message.source?.equals(b.localPeerId)).to.equal(true)
      } finally {
        await a.close()
        await b.close()
      }
    })
  }
})
