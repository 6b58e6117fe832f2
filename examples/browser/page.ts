/**
 * The page's swarm (bundled for the browser by `server.ts` with esbuild): it dials the Node
 * swarm whose address `/config.json` gives, joins the GossipSub topic, shows the messages it
 * receives and publishes what is typed. In an application, import from 'peerswarm': bundlers
 * pick its browser build through the `browser` export condition.
 */
import { SwarmBuilder, combine, gossipsub, identify, ping } from '../../src/browser.js'

interface Config {
  /** The Node swarm's WebSockets address, with its peer id. */
  readonly address: string
  readonly topic: string
}

const element = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T
const status = element<HTMLParagraphElement>('status')
const list = element<HTMLUListElement>('messages')
const form = element<HTMLFormElement>('send')
const input = element<HTMLInputElement>('text')
const button = form.querySelector('button') as HTMLButtonElement

function show (text: string, from: string, kind: 'theirs' | 'mine' | 'error' = 'theirs'): void {
  const item = document.createElement('li')
  item.className = kind
  const who = document.createElement('span')
  who.className = 'from'
  who.textContent = from
  item.append(who, text)
  list.append(item)
  list.scrollTop = list.scrollHeight
}

const short = (id: { toString: () => string }): string => `…${id.toString().slice(-6)}`

const config = await (await fetch('/config.json')).json() as Config
element('topic').textContent = config.topic
const topic = new gossipsub.IdentTopic(config.topic)

const swarm = await SwarmBuilder.withNewIdentity()
  .withWebSockets()
  .withBehaviour(key => combine({
    identify: new identify.Behaviour(key.publicKey, { agentVersion: 'peerswarm-browser-example' }),
    ping: new ping.Behaviour(),
    gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key) })
  }))
  .build()
swarm.behaviour.gossipsub.subscribe(topic)
status.textContent = `I am ${short(swarm.localPeerId)}; dialing ${config.address}`
swarm.dial(config.address)

form.addEventListener('submit', (event) => {
  event.preventDefault()
  const text = input.value.trim()
  if (text === '') return
  try {
    swarm.behaviour.gossipsub.publish(topic, new TextEncoder().encode(text))
    show(text, 'me', 'mine')
    input.value = ''
  } catch (err) {
    show(`not published: ${(err as Error).message}`, 'error', 'error')
  }
})

for await (const event of swarm) {
  if (event.type === 'ConnectionEstablished') {
    status.textContent = `I am ${short(swarm.localPeerId)}; connected to ${short(event.peerId)} over ${event.endpoint.type === 'Dialer' ? event.endpoint.address.toString() : 'an inbound connection'}`
    input.disabled = false
    button.disabled = false
  } else if (event.type === 'ConnectionClosed' && swarm.connectedPeers().length === 0) {
    status.textContent = `I am ${short(swarm.localPeerId)}; disconnected (${event.cause?.message ?? 'closed'})`
    input.disabled = true
    button.disabled = true
  } else if (event.type === 'OutgoingConnectionError') {
    status.textContent = `could not dial: ${event.error.message}`
  } else if (event.type === 'Behaviour' && event.event.behaviour === 'gossipsub') {
    const e = event.event.event
    if (e.type === 'Message') show(new TextDecoder().decode(e.message.data), short(e.message.source ?? e.propagationSource))
    else if (e.type === 'Subscribed') show(`${short(e.peerId)} joined '${e.topic}'`, 'swarm')
  }
}
