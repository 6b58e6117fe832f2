/**
 * The view's page: one HTML document with its style and script inline (no framework, nothing
 * fetched from elsewhere). The script opens `events` (server-sent events) and redraws on each
 * `snapshot`; `traffic` events are drawn as dots travelling along the edges. It never polls:
 * the only timer is local (connection ages, animation frames).
 *
 * The script is plain JavaScript in a string (it is served as is, not compiled): it uses no
 * template literals, so that it can sit in this one.
 *
 * @module
 */

const STYLE = `
  :root { --fg: #1d232b; --muted: #6b7480; --line: #d9dee5; --bg: #fbfcfd; --accent: #2764c5 }
  * { box-sizing: border-box }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg) }
  header { display: flex; gap: 1.5rem; align-items: baseline; padding: .6rem 1rem; border-bottom: 1px solid var(--line); background: #fff; flex-wrap: wrap }
  header h1 { font-size: 16px; margin: 0 }
  header .counter b { font-variant-numeric: tabular-nums }
  #status.live { color: #17823b } #status.down { color: #b3261e }
  main { display: grid; grid-template-columns: minmax(320px, 1fr) minmax(360px, 1fr); gap: 1rem; padding: 1rem }
  @media (max-width: 900px) { main { grid-template-columns: 1fr } }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: .8rem; min-width: 0 }
  h2 { font-size: 14px; margin: .2rem 0 .6rem } h3 { font-size: 13px; margin: 1rem 0 .4rem; color: var(--muted); text-transform: uppercase; letter-spacing: .04em }
  svg { width: 100%; height: auto; display: block }
  svg .conn { stroke: #c3cad3; stroke-width: 1.5 }
  svg .conn.limited { stroke: #e67700; stroke-width: 2; stroke-dasharray: 6 4 }
  svg .conn.webrtc { stroke: #2b8a3e; stroke-width: 3 }
  svg .mesh { stroke-width: 2; opacity: .85 }
  svg .node circle { stroke: #fff; stroke-width: 2; cursor: pointer }
  svg .node.observed circle { fill: var(--accent) }
  svg .node.remote circle { fill: #9aa4b1 }
  svg .node.browser circle { fill: #7048e8 }
  svg .node.selected circle { stroke: #111; stroke-width: 3 }
  svg .node text { font-size: 11px; fill: var(--fg); pointer-events: none }
  svg .dot { pointer-events: none }
  table { border-collapse: collapse; width: 100%; font-size: 12.5px }
  th, td { text-align: left; padding: .25rem .4rem; border-bottom: 1px solid #eef1f4; vertical-align: top; white-space: nowrap }
  td.wrap { white-space: normal; overflow-wrap: anywhere }
  th { color: var(--muted); font-weight: 600 }
  td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap }
  .muted { color: var(--muted) } .mono { font-family: ui-monospace, monospace; font-size: 12px; overflow-wrap: anywhere }
  .legend span { display: inline-block; margin-right: .8rem; font-size: 12px }
  .legend i { display: inline-block; width: 14px; height: 3px; vertical-align: middle; margin-right: .3rem }
  select { font: inherit }
`

const SCRIPT = `(function () {
'use strict'
var state = { snapshot: null, selected: null, topic: '', positions: new Map(), layoutKey: '' }
var SVG = 'http://www.w3.org/2000/svg'
var SIZE = 600
var palette = ['#2764c5', '#d9480f', '#2b8a3e', '#ae3ec9', '#c2255c', '#1098ad', '#e67700', '#5f3dc4']

function el (tag, attrs, text) {
  var node = document.createElement(tag)
  if (attrs) for (var k in attrs) node.setAttribute(k, attrs[k])
  if (text != null) node.textContent = String(text)
  return node
}
function svg (tag, attrs) {
  var node = document.createElementNS(SVG, tag)
  for (var k in attrs) node.setAttribute(k, attrs[k])
  return node
}
function short (id) { return '…' + String(id).slice(-6) }
function nameOf (id) {
  var nodes = state.snapshot ? state.snapshot.nodes : []
  for (var i = 0; i < nodes.length; i++) if (nodes[i].peerId === id) return nodes[i].name
  return short(id)
}
function colorOf (topic) {
  var h = 0
  for (var i = 0; i < topic.length; i++) h = (h * 31 + topic.charCodeAt(i)) >>> 0
  return palette[h % palette.length]
}
function isWebRTC (c) { return c.transport === 'webrtc' || c.transport === 'webrtc-direct' }
function fmt (n, digits) { return Number(n).toFixed(digits == null ? 1 : digits) }
function age (ms) {
  var s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return s + ' s'
  if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s'
  return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min'
}

/** Every peer on the graph: observed nodes first, then the peers they are connected to. */
function peersOf (snapshot) {
  var list = []
  var seen = new Set()
  function add (id) { if (!seen.has(id)) { seen.add(id); list.push(id) } }
  snapshot.nodes.forEach(function (n) { add(n.peerId) })
  snapshot.nodes.forEach(function (n) { n.connections.forEach(function (c) { add(c.peer) }) })
  return list
}

function layout (snapshot) {
  var peers = peersOf(snapshot)
  var key = peers.join(',')
  if (key === state.layoutKey) return
  state.layoutKey = key
  state.positions = new Map()
  var c = SIZE / 2
  var r = SIZE / 2 - 60
  if (snapshot.nodes.length === 1) {
    state.positions.set(peers[0], { x: c, y: c })
    var others = peers.slice(1)
    others.forEach(function (id, i) {
      var a = (2 * Math.PI * i) / Math.max(1, others.length) - Math.PI / 2
      state.positions.set(id, { x: c + r * Math.cos(a), y: c + r * Math.sin(a) })
    })
  } else {
    peers.forEach(function (id, i) {
      var a = (2 * Math.PI * i) / peers.length - Math.PI / 2
      state.positions.set(id, { x: c + r * Math.cos(a), y: c + r * Math.sin(a) })
    })
  }
}

function topicsOf (snapshot) {
  var topics = new Set()
  snapshot.nodes.forEach(function (n) { n.pubsub.forEach(function (p) { p.topics.forEach(function (t) { topics.add(t.topic) }) }) })
  return Array.from(topics).sort()
}

function drawGraph (snapshot) {
  layout(snapshot)
  var graph = document.getElementById('graph')
  var edges = svg('g', { id: 'edges' })
  var pairs = new Map()
  snapshot.nodes.forEach(function (n) {
    n.connections.forEach(function (c) {
      var a = n.peerId < c.peer ? n.peerId : c.peer
      var b = n.peerId < c.peer ? c.peer : n.peerId
      var key = a + ' ' + b
      var pair = pairs.get(key) || { a: a, b: b, direct: false, limited: false, webrtc: false }
      if (c.limited) pair.limited = true; else pair.direct = true
      if (!c.limited && isWebRTC(c)) pair.webrtc = true
      pairs.set(key, pair)
    })
  })
  pairs.forEach(function (pair) {
    var p = state.positions.get(pair.a); var q = state.positions.get(pair.b)
    if (!p || !q) return
    // A relayed (limited) connection is dashed; beside a direct one, it is drawn a little apart.
    var len = Math.max(1, Math.hypot(q.x - p.x, q.y - p.y))
    var ox = pair.direct ? -(q.y - p.y) / len * 6 : 0; var oy = pair.direct ? (q.x - p.x) / len * 6 : 0
    // A direct WebRTC connection (between pages, say) is drawn green and thick.
    if (pair.direct) edges.appendChild(svg('line', { class: pair.webrtc ? 'conn webrtc' : 'conn', 'data-a': pair.a, 'data-b': pair.b, x1: p.x, y1: p.y, x2: q.x, y2: q.y }))
    if (pair.limited) edges.appendChild(svg('line', { class: 'conn limited', 'data-a': pair.a, 'data-b': pair.b, x1: p.x + ox, y1: p.y + oy, x2: q.x + ox, y2: q.y + oy }))
  })
  snapshot.nodes.forEach(function (n) {
    n.pubsub.forEach(function (ps) {
      ps.topics.forEach(function (t) {
        if (state.topic !== '' && state.topic !== t.topic) return
        t.mesh.forEach(function (peer) {
          var p = state.positions.get(n.peerId); var q = state.positions.get(peer)
          if (!p || !q) return
          // Offset each direction to its own side, so A→B and B→A both show.
          var dx = q.x - p.x; var dy = q.y - p.y; var len = Math.hypot(dx, dy) || 1
          var ox = -dy / len * 3; var oy = dx / len * 3
          var line = svg('line', { class: 'mesh', 'data-from': n.peerId, 'data-to': peer, 'data-topic': t.topic, stroke: colorOf(t.topic), x1: p.x + ox, y1: p.y + oy, x2: q.x + ox, y2: q.y + oy })
          var title = svg('title', {}); title.textContent = n.name + ' → ' + nameOf(peer) + ' in the mesh of ' + t.topic
          line.appendChild(title)
          edges.appendChild(line)
        })
      })
    })
  })
  var nodes = svg('g', { id: 'nodes' })
  var observed = new Set(snapshot.nodes.map(function (n) { return n.peerId }))
  var browsers = new Set(snapshot.nodes.filter(function (n) { return n.browser === true }).map(function (n) { return n.peerId }))
  state.positions.forEach(function (pos, id) {
    var classes = 'node ' + (observed.has(id) ? 'observed' : 'remote') + (browsers.has(id) ? ' browser' : '') + (id === state.selected ? ' selected' : '')
    var g = svg('g', { class: classes, 'data-peer': id, 'data-name': nameOf(id), transform: 'translate(' + pos.x + ',' + pos.y + ')' })
    var circle = svg('circle', { r: observed.has(id) ? 14 : 10 })
    var title = svg('title', {}); title.textContent = id + (browsers.has(id) ? ' (in a browser)' : '')
    circle.appendChild(title)
    g.appendChild(circle)
    var label = svg('text', { x: 0, y: observed.has(id) ? 30 : 25, 'text-anchor': 'middle' })
    label.textContent = nameOf(id)
    g.appendChild(label)
    if (observed.has(id)) g.addEventListener('click', function () { state.selected = id; render() })
    nodes.appendChild(g)
  })
  var dots = document.getElementById('dots') || svg('g', { id: 'dots' })
  graph.replaceChildren(edges, nodes, dots)
  var legend = document.getElementById('legend')
  legend.replaceChildren()
  topicsOf(snapshot).forEach(function (t) {
    var item = el('span')
    var swatch = el('i'); swatch.style.background = colorOf(t)
    item.append(swatch, 'mesh of ' + t)
    legend.appendChild(item)
  })
  var connItem = el('span'); var connSwatch = el('i'); connSwatch.style.background = '#c3cad3'
  connItem.append(connSwatch, 'connection'); legend.appendChild(connItem)
  var relayedItem = el('span'); var relayedSwatch = el('i'); relayedSwatch.style.background = 'repeating-linear-gradient(90deg, #e67700 0 5px, transparent 5px 8px)'
  relayedItem.append(relayedSwatch, 'relayed (limited) connection'); legend.appendChild(relayedItem)
  var hasWebRTC = snapshot.nodes.some(function (n) { return n.connections.some(isWebRTC) })
  if (hasWebRTC) {
    var webrtcItem = el('span'); var webrtcSwatch = el('i'); webrtcSwatch.style.background = '#2b8a3e'
    webrtcItem.append(webrtcSwatch, 'WebRTC connection (direct)'); legend.appendChild(webrtcItem)
  }
  if (browsers.size > 0) {
    var browserItem = el('span'); var browserSwatch = el('i'); browserSwatch.style.background = '#7048e8'; browserSwatch.style.height = '10px'; browserSwatch.style.borderRadius = '5px'; browserSwatch.style.width = '10px'
    browserItem.append(browserSwatch, 'swarm in a browser'); legend.appendChild(browserItem)
  }
}

function table (head, rows) {
  var t = el('table')
  var tr = el('tr')
  head.forEach(function (h) { tr.appendChild(el('th', null, h)) })
  t.appendChild(tr)
  rows.forEach(function (r) {
    var row = el('tr')
    r.forEach(function (cell) {
      if (cell instanceof Node) { var td = el('td', { class: 'wrap' }); td.appendChild(cell); row.appendChild(td) } else {
        row.appendChild(el('td', typeof cell === 'number' ? { class: 'num' } : null, cell))
      }
    })
    t.appendChild(row)
  })
  return t
}

function drawDetails (snapshot) {
  var box = document.getElementById('details')
  var node = null
  snapshot.nodes.forEach(function (n) { if (n.peerId === state.selected) node = n })
  if (node == null) node = snapshot.nodes[0]
  if (node == null) { box.replaceChildren(el('p', { class: 'muted' }, 'no swarm')); return }
  state.selected = node.peerId
  var parts = []
  parts.push(el('h2', { id: 'node-name' }, node.name + (node.browser === true ? ' (browser)' : '')))
  parts.push(el('div', { class: 'mono muted', id: 'node-peer' }, node.peerId))
  if (node.listeners.length > 0) parts.push(el('div', { class: 'mono muted' }, 'listening on ' + node.listeners.join(', ')))
  parts.push(el('h3', null, 'connections (' + node.connections.length + ')'))
  var conns = table(['peer', 'transport', 'kind', 'direction', 'address', 'age', 'streams'], node.connections.map(function (c) {
    var ageCell = el('span', { class: 'age', 'data-since': c.establishedAt }, age(Date.now() - c.establishedAt))
    return [nameOf(c.peer), c.transport, c.limited ? 'relayed (limited)' : 'direct', c.direction, el('span', { class: 'mono' }, c.address), ageCell, c.streams]
  }))
  conns.id = 'connections'
  parts.push(conns)
  node.pubsub.forEach(function (ps) {
    parts.push(el('h3', null, ps.kind + (ps.path && ps.path !== ps.kind ? ' (' + ps.path + ')' : '')))
    var r = ps.rates; var t = ps.totals
    parts.push(el('div', { class: 'rates' }, 'in ' + fmt(r.in) + '/s · out ' + fmt(r.out) + '/s · duplicates ' + fmt(r.duplicates) + '/s · queue drops ' + fmt(r.droppedBytes, 0) + ' B/s'))
    parts.push(el('div', { class: 'muted totals' }, 'totals: published ' + t.published + ', received ' + t.received + ', forwarded ' + t.forwarded + ', duplicates ' + t.duplicates + ', invalid ' + t.invalid + ', ignored ' + t.ignored + ', dropped ' + t.droppedBytes + ' B'))
    var names = function (list) { return list.length === 0 ? '—' : list.map(nameOf).join(', ') }
    var topics = table(['topic', 'mesh', 'fanout', 'subscribers'], ps.topics.map(function (tp) {
      return [tp.topic + (tp.subscribed ? '' : ' (fanout only)'), el('span', null, names(tp.mesh)), el('span', null, names(tp.fanout)), tp.subscribers.length]
    }))
    topics.className = 'topics'
    parts.push(topics)
    if (ps.scores.length > 0) {
      parts.push(el('h3', null, 'peer scores'))
      parts.push(table(['peer', 'score', 'per topic (P1 P2 P3 P3b P4)', 'topics', 'P5', 'P6', 'P7'], ps.scores.map(function (s) {
        var per = Object.keys(s.topics).map(function (k) { var v = s.topics[k]; return k + ': ' + [v.p1, v.p2, v.p3, v.p3b, v.p4].map(function (x) { return fmt(x, 2) }).join(' ') }).join('; ')
        return [nameOf(s.peer), Number(fmt(s.score, 2)), el('span', null, per || '—'), Number(fmt(s.topicsTotal, 2)), Number(fmt(s.p5, 2)), Number(fmt(s.p6, 2)), Number(fmt(s.p7, 2))]
      })))
    }
  })
  box.replaceChildren.apply(box, parts)
}

function drawCounters (snapshot) {
  var d = snapshot.deliveries
  document.getElementById('delivered').textContent = String(d.delivered)
  document.getElementById('latency').textContent = d.latency.count === 0 ? '—' : fmt(d.latency.mean) + ' ms mean, ' + fmt(d.latency.max) + ' ms max'
  document.getElementById('peers').textContent = String(state.positions.size)
  var select = document.getElementById('topic')
  var topics = topicsOf(snapshot)
  var options = [''].concat(topics)
  if (select.options.length !== options.length || options.some(function (t, i) { return select.options[i].value !== t })) {
    select.replaceChildren.apply(select, options.map(function (t) { return el('option', { value: t }, t === '' ? 'all topics' : t) }))
    select.value = options.indexOf(state.topic) >= 0 ? state.topic : ''
  }
}

function render () {
  if (!state.snapshot) return
  drawGraph(state.snapshot)
  drawDetails(state.snapshot)
  drawCounters(state.snapshot)
  document.body.setAttribute('data-updated', String(state.snapshot.time))
}

var flying = 0
function animate (hop) {
  var p = state.positions.get(hop.from); var q = state.positions.get(hop.to)
  var layer = document.getElementById('dots')
  if (!p || !q || !layer || flying > 300) return
  flying++
  var dot = svg('circle', { class: 'dot', r: 4, fill: colorOf(hop.topic), cx: p.x, cy: p.y })
  layer.appendChild(dot)
  var start = performance.now()
  var duration = 500
  function step (now) {
    var k = Math.min(1, (now - start) / duration)
    dot.setAttribute('cx', String(p.x + (q.x - p.x) * k))
    dot.setAttribute('cy', String(p.y + (q.y - p.y) * k))
    if (k < 1) requestAnimationFrame(step); else { dot.remove(); flying-- }
  }
  requestAnimationFrame(step)
}

document.getElementById('topic').addEventListener('change', function (e) { state.topic = e.target.value; render() })
setInterval(function () {
  document.querySelectorAll('.age').forEach(function (cell) { cell.textContent = age(Date.now() - Number(cell.getAttribute('data-since'))) })
}, 1000)

var statusLine = document.getElementById('status')
var source = new EventSource('events')
source.addEventListener('open', function () { statusLine.textContent = 'live'; statusLine.className = 'live' })
source.addEventListener('error', function () { statusLine.textContent = 'reconnecting…'; statusLine.className = 'down' })
source.addEventListener('snapshot', function (e) { state.snapshot = JSON.parse(e.data); render() })
source.addEventListener('traffic', function (e) { JSON.parse(e.data).forEach(animate) })
})()
`

/** The page, with `title` (escaped) as its title. */
export function pageHtml (title: string): string {
  const escaped = title.replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`)
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escaped}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>${escaped}</h1>
  <span id="status">connecting…</span>
  <span class="counter">peers <b id="peers">0</b></span>
  <span class="counter">delivered <b id="delivered">0</b></span>
  <span class="counter">latency <b id="latency">—</b></span>
  <label>show <select id="topic"><option value="">all topics</option></select></label>
</header>
<main>
  <section>
    <svg id="graph" viewBox="0 0 600 600" role="img" aria-label="peers, connections and mesh edges"></svg>
    <div class="legend" id="legend"></div>
  </section>
  <section id="details"><p class="muted">waiting for the first update…</p></section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`
}

/** The page's script alone (tests check that it parses). */
export const PAGE_SCRIPT: string = SCRIPT
