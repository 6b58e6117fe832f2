/**
 * Browser-to-browser chat over WebRTC (bundled for the browser by `server.ts`). Open it in two
 * tabs:
 *
 * 1. Each tab reaches the server's Node swarm over WebSockets and reserves a slot on its
 *    circuit relay: `listenOn('<relay>/p2p-circuit/webrtc')`. Its address becomes
 *    `<relay>/p2p-circuit/webrtc/p2p/<tab>`, which other peers dial to reach it over WebRTC.
 * 2. Each tab announces that address on a lobby topic (GossipSub, through the server) every
 *    two seconds. Of two tabs, the one with the smaller peer id dials the other.
 * 3. The dial sends the WebRTC offer and answer through the relay, then the tabs talk directly:
 *    the chat topic's messages go from tab to tab (the server does not subscribe to it).
 *
 * The page lists every connection with its kind: direct (WebRTC between tabs, WebSockets to
 * the relay) or relayed. In an application, import from 'peerswarm'.
 */
import { SwarmBuilder, combine, gossipsub, identify, nodeView, ping } from '../../src/browser.js'
import type { ConnectionInfo } from '../../src/browser.js'

interface Config {
  /** The Node swarm's WebSockets address, with its peer id: our relay. */
  readonly address: string
  readonly topic: string
  /** The server's live view. */
  readonly view: string
}

const element = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T
const status = element<HTMLParagraphElement>('status')
const peers = element<HTMLTableSectionElement>('peers')
const list = element<HTMLUListElement>('messages')
const form = element<HTMLFormElement>('send')
const input = element<HTMLInputElement>('text')
const button = form.querySelector('button') as HTMLButtonElement

const short = (id: { toString: () => string }): string => `…${id.toString().slice(-6)}`
/** "direct (webrtc)", "direct (websockets)" or "relayed (p2p-circuit)". */
const kindOf = (c: ConnectionInfo): string => `${c.endpoint.limited === true ? 'relayed' : 'direct'} (${c.transport})`

const config = await (await fetch('/config.json')).json() as Config
element<HTMLAnchorElement>('view').href = config.view
const relayId = config.address.slice(config.address.lastIndexOf('/p2p/') + 5)
const lobby = new gossipsub.IdentTopic(`${config.topic}/lobby`)
const chat = new gossipsub.IdentTopic(`${config.topic}/webrtc`)

const swarm = await SwarmBuilder.withNewIdentity()
  .withWebSockets() // to reach the relay
  .withRelayClient() // to reserve a slot on it, and to signal through it
  .withWebRTC() // /webrtc: the offer and answer go over the relay, then the connection is direct
  .withBehaviour((key, relayClient) => combine({
    relayClient,
    identify: new identify.Behaviour(key.publicKey, { agentVersion: 'peerswarm-browser-example/webrtc' }),
    ping: new ping.Behaviour(),
    gossipsub: new gossipsub.Behaviour({ authenticity: gossipsub.MessageAuthenticity.signed(key) })
  }))
  .withSwarmConfig({ idleConnectionTimeout: 60_000 })
  .build()
const me = swarm.localPeerId.toString()
swarm.behaviour.gossipsub.subscribe(lobby)
swarm.behaviour.gossipsub.subscribe(chat)
document.title = `WebRTC chat ${short(me)}`
status.textContent = `I am ${short(me)}; reserving a slot on the relay ${short(relayId)}`
swarm.listenOn(`${config.address}/p2p-circuit/webrtc`)

let myAddress: string | undefined
const dialing = new Set<string>()

/** Tell the other tabs where we are: once we know, then every two seconds for newcomers. */
function announce (): void {
  if (myAddress == null) return
  try {
    swarm.behaviour.gossipsub.publish(lobby, new TextEncoder().encode(myAddress))
  } catch {} // nobody on the lobby yet
}
setInterval(announce, 2_000)

/** Another tab announced its address: dial it, unless we are connected, or it is the one to dial. */
function heard (address: string): void {
  const prefix = `${config.address}/p2p-circuit/webrtc/p2p/`
  if (!address.startsWith(prefix)) return // not through our relay
  const id = address.slice(prefix.length)
  const connected = swarm.connectedPeers().some(peer => peer.toString() === id)
  if (id === me || connected || dialing.has(id) || me > id) return
  dialing.add(id)
  swarm.dial(address)
}

/** Redraw the table of connected peers: each connection and its kind. */
function showPeers (): void {
  const byPeer = new Map<string, ConnectionInfo[]>()
  for (const c of swarm.connections()) byPeer.set(c.peerId.toString(), [...(byPeer.get(c.peerId.toString()) ?? []), c])
  peers.replaceChildren(...[...byPeer].map(([id, connections]) => {
    const row = document.createElement('tr')
    row.dataset.peer = id
    for (const [name, text] of [['peer', short(id)], ['role', id === relayId ? 'relay' : 'other tab'], ['kind', connections.map(kindOf).join(', ')]]) {
      const cell = document.createElement('td')
      cell.className = name
      cell.textContent = text
      row.append(cell)
    }
    return row
  }))
  const others = swarm.behaviour.gossipsub.subscribers(chat).length
  input.disabled = button.disabled = others === 0
  input.placeholder = others === 0 ? 'waiting for another tab…' : `a message for ${others} other tab(s)`
}

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

form.addEventListener('submit', (event) => {
  event.preventDefault()
  const text = input.value.trim()
  if (text === '') return
  try {
    swarm.behaviour.gossipsub.publish(chat, new TextEncoder().encode(text))
    show(text, 'me', 'mine')
    input.value = ''
  } catch (err) {
    show(`not published: ${(err as Error).message}`, 'error', 'error')
  }
})

// Send our state to the server every second, for its live view.
setInterval(() => {
  void fetch('/report', { method: 'POST', body: JSON.stringify(nodeView({ name: `tab ${short(me)}`, swarm })) }).catch(() => {})
}, 1_000)

for await (const event of swarm) {
  if (event.type === 'NewListenAddr') {
    myAddress = event.address.toString()
    status.textContent = `I am ${short(me)}, reachable over WebRTC at ${myAddress}`
    announce()
  } else if (event.type === 'ConnectionEstablished' || event.type === 'ConnectionClosed') {
    dialing.delete(event.peerId.toString())
    showPeers()
  } else if (event.type === 'OutgoingConnectionError') {
    if (event.peerId != null) dialing.delete(event.peerId.toString())
    show(`could not dial: ${event.error.message}`, 'error', 'error')
  } else if (event.type === 'ListenerError') {
    show(`relay reservation: ${event.error.message}`, 'error', 'error')
  } else if (event.type === 'ListenerClosed') {
    status.textContent = `I am ${short(me)}; no longer reachable over WebRTC (the reservation ended)`
  } else if (event.type === 'Behaviour' && event.event.behaviour === 'gossipsub') {
    const e = event.event.event
    if (e.type === 'Message' && e.message.topic === lobby.hash) {
      heard(new TextDecoder().decode(e.message.data))
    } else if (e.type === 'Message') {
      // The peer it came from, and over which connection: between tabs, direct WebRTC.
      const via = swarm.connections().filter(c => c.peerId.equals(e.propagationSource)).map(kindOf).join(', ')
      show(new TextDecoder().decode(e.message.data), `${short(e.message.source ?? e.propagationSource)} via ${via}`)
    } else if (e.type === 'Subscribed' || e.type === 'Unsubscribed') {
      showPeers()
    }
  }
}
