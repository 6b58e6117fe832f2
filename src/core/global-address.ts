/**
 * Which addresses count as global (reachable from the internet at large): the address policy
 * of AutoNAT and hole punching. The default is the IANA special-purpose lists, as rust-libp2p's
 * `is_global` and js-libp2p's `isPrivate`; tests that build a "public" network on a reserved
 * range (198.18.0.0/15) pass a predicate of their own.
 *
 * @module
 */
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * Decides whether an address is global. Options named `isGlobal` take one; the default is
 * {@link isGlobalAddress}.
 *
 * @group The swarm
 */
export type AddressPolicy = (address: Multiaddr) => boolean

/** [first address as a 32-bit number, prefix length] of IPv4 ranges that are not global. */
const IPV4_NOT_GLOBAL: ReadonlyArray<readonly [string, number]> = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // shared address space (CGNAT)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast (deprecated)
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking (the test networks' "public" range)
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4] // reserved, broadcast
]
const IPV4_RANGES = IPV4_NOT_GLOBAL.map(([ip, bits]) => [ipv4ToNumber(ip) ?? 0, bits] as const)

/**
 * The IP address of `address` (its first `/ip4` or `/ip6` part), or undefined for addresses
 * without one (DNS names, memory addresses).
 *
 * @group The swarm
 */
export function ipOfAddress (address: Multiaddr): { readonly family: 4 | 6, readonly ip: string } | undefined {
  for (const component of address.getComponents()) {
    if (component.name === 'ip4' && component.value != null) return { family: 4, ip: component.value }
    if (component.name === 'ip6' && component.value != null) return { family: 6, ip: component.value }
  }
  return undefined
}

/**
 * Whether `address` is a direct (not relayed) address on a global IP: not in the private,
 * loopback, link-local, shared (CGNAT), documentation, benchmarking, multicast or reserved
 * ranges of IPv4, and in 2000::/3 less the documentation and IETF ranges for IPv6 (an
 * IPv4-mapped IPv6 address as its IPv4 address). Addresses without an IP (DNS names) and
 * relayed ones (`/p2p-circuit`) are not global.
 *
 * ```ts
 * import { isGlobalAddress } from 'peerswarm'
 * import { multiaddr } from '@multiformats/multiaddr'
 *
 * isGlobalAddress(multiaddr('/ip4/10.0.1.2/tcp/4001')) // false
 * ```
 *
 * @group The swarm
 */
export function isGlobalAddress (address: Multiaddr): boolean {
  if (address.getComponents().some(c => c.name === 'p2p-circuit')) return false
  const ip = ipOfAddress(address)
  if (ip == null) return false
  return ip.family === 4 ? isGlobalIpv4(ip.ip) : isGlobalIpv6(ip.ip)
}

/** Whether `ip` (dotted IPv4) is global; false when it does not parse. */
function isGlobalIpv4 (ip: string): boolean {
  const n = ipv4ToNumber(ip)
  if (n == null) return false
  return !IPV4_RANGES.some(([base, bits]) => inRange(n, base, bits))
}

/**
 * `true` for IPv4 addresses in `cidr` (e.g. `'198.18.0.0/15'`): for policies that add a range
 * to the default, `a => isGlobalAddress(a) || inIpv4Range(a, '198.18.0.0/15')`.
 *
 * @group The swarm
 */
export function inIpv4Range (address: Multiaddr, cidr: string): boolean {
  if (address.getComponents().some(c => c.name === 'p2p-circuit')) return false
  const [base, bitsText] = cidr.split('/')
  const bits = Number(bitsText)
  const start = ipv4ToNumber(base ?? '')
  if (start == null || !Number.isInteger(bits) || bits < 0 || bits > 32) throw new TypeError(`not an IPv4 CIDR: ${cidr}`)
  const ip = ipOfAddress(address)
  if (ip == null) return false
  const n = ip.family === 4 ? ipv4ToNumber(ip.ip) : mappedIpv4(ip.ip)
  return n != null && inRange(n, start, bits)
}

function isGlobalIpv6 (ip: string): boolean {
  const mapped = mappedIpv4(ip)
  if (mapped != null) return !IPV4_RANGES.some(([base, bits]) => inRange(mapped, base, bits))
  const words = ipv6Words(ip)
  if (words == null) return false
  const [w0, w1] = words as [number, number]
  if ((w0 & 0xe000) !== 0x2000) return false // outside 2000::/3 (global unicast)
  if (w0 === 0x2001 && w1 === 0x0db8) return false // documentation
  if (w0 === 0x2001 && w1 < 0x0200) return false // 2001::/23, IETF protocol assignments
  return true
}

function inRange (n: number, base: number, bits: number): boolean {
  if (bits === 0) return true
  const shift = 32 - bits
  return (n >>> shift) === (base >>> shift)
}

function ipv4ToNumber (ip: string): number | undefined {
  const parts = ip.split('.')
  if (parts.length !== 4) return undefined
  let n = 0
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part)) return undefined
    const byte = Number(part)
    if (byte > 255) return undefined
    n = n * 256 + byte
  }
  return n
}

/** The eight 16-bit words of an IPv6 address, or undefined. */
function ipv6Words (ip: string): number[] | undefined {
  const text = ip.split('%')[0] ?? ''
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const parse = (half: string): number[] | undefined => {
    if (half === '') return []
    const words: number[] = []
    for (const part of half.split(':')) {
      if (part.includes('.')) {
        const v4 = ipv4ToNumber(part)
        if (v4 == null) return undefined
        words.push(v4 >>> 16, v4 & 0xffff)
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return undefined
        words.push(parseInt(part, 16))
      }
    }
    return words
  }
  const head = parse(halves[0] ?? '')
  const tail = halves.length === 2 ? parse(halves[1] ?? '') : []
  if (head == null || tail == null) return undefined
  if (halves.length === 1) return head.length === 8 ? head : undefined
  const fill = 8 - head.length - tail.length
  if (fill < 1) return undefined
  return [...head, ...new Array<number>(fill).fill(0), ...tail]
}

/** The IPv4 address of an IPv4-mapped IPv6 address (::ffff:a.b.c.d), as a number. */
function mappedIpv4 (ip: string): number | undefined {
  const words = ipv6Words(ip)
  if (words == null) return undefined
  if (words.slice(0, 5).some(w => w !== 0) || words[5] !== 0xffff) return undefined
  return ((words[6] ?? 0) * 65536) + (words[7] ?? 0)
}
