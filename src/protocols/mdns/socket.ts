/**
 * Multicast sockets for mDNS over `node:dgram`, one per network interface and address family,
 * and the choice of interfaces.
 *
 * @module
 */
import dgram from 'node:dgram'
import { isIPv4 } from 'node:net'
import os from 'node:os'
import { PeerswarmError } from '../../core/errors.js'

/** The mDNS IPv4 group. */
export const IPV4_GROUP = '224.0.0.251'

/** The mDNS IPv6 group (link-local scope). */
export const IPV6_GROUP = 'ff02::fb'

/** A network interface mDNS runs on, for one address family. */
export interface MulticastInterface {
  /** The interface's name, e.g. `eth0`. */
  readonly name: string
  readonly family: 4 | 6
  /** Its address: the IPv4 address, or for IPv6 the link-local (or other) address. */
  readonly address: string
}

/** What a socket factory is asked for. */
export interface MulticastSocketOptions {
  readonly iface: MulticastInterface
  readonly port: number
  /** Called for every datagram received, ours included (multicast loopback is on). */
  readonly onPacket: (packet: Uint8Array, from: { readonly address: string, readonly port: number }) => void
  /** Called when the socket fails after it was opened. */
  readonly onError: (error: Error) => void
}

/** An open multicast socket: it has joined the group on its interface and sends there. */
export interface MulticastSocket {
  /** Send `packet` to the group on this socket's interface. */
  send(packet: Uint8Array): Promise<void>
  /** Leave the group and close. Idempotent. */
  close(): Promise<void>
}

/** Opens sockets; rejects with a `MulticastSocketError` when it cannot. */
export type MulticastSocketFactory = (options: MulticastSocketOptions) => Promise<MulticastSocket>

/**
 * A multicast socket could not be opened, or failed.
 *
 * @group Errors
 */
export class MulticastSocketError extends PeerswarmError {
  /** The interface the socket was for. */
  readonly iface: MulticastInterface

  constructor (iface: MulticastInterface, message: string, options?: { cause?: unknown }) {
    super('ERR_MDNS_SOCKET', `mDNS on ${iface.name} (IPv${iface.family} ${iface.address}): ${message}`, options)
    this.iface = iface
  }
}

/**
 * The named interface is not there, or has no usable address.
 *
 * @group Errors
 */
export class UnknownInterfaceError extends PeerswarmError {
  constructor (message: string) {
    super('ERR_MDNS_INTERFACE', message)
  }
}

type Interfaces = NodeJS.Dict<os.NetworkInterfaceInfo[]>

/**
 * The interfaces to use for the families asked for. With `wanted` (a name or an IPv4 address),
 * only that interface; throws `UnknownInterfaceError` if it has no address of any wanted family.
 * Without it, every interface that is not loopback, or loopback (IPv4) when there is no other.
 */
export function selectInterfaces (
  families: { readonly ipv4: boolean, readonly ipv6: boolean },
  wanted?: string,
  interfaces: Interfaces = os.networkInterfaces()
): MulticastInterface[] {
  const pick = (name: string, infos: readonly os.NetworkInterfaceInfo[]): MulticastInterface[] => {
    const result: MulticastInterface[] = []
    const v4 = infos.find(info => info.family === 'IPv4')
    if (families.ipv4 && v4 !== undefined) result.push({ name, family: 4, address: v4.address })
    const v6 = infos.find(info => info.family === 'IPv6' && info.address.startsWith('fe80:')) ??
      infos.find(info => info.family === 'IPv6')
    // IPv6 multicast does not work on loopback (Linux gives it no multicast route).
    if (families.ipv6 && v6 !== undefined && !v6.internal) result.push({ name, family: 6, address: v6.address })
    return result
  }

  if (wanted !== undefined) {
    const name = isIPv4(wanted)
      ? Object.entries(interfaces).find(([, infos]) => infos?.some(info => info.address === wanted))?.[0]
      : wanted
    const infos = name === undefined ? undefined : interfaces[name]
    if (name === undefined || infos === undefined) throw new UnknownInterfaceError(`no network interface ${wanted}`)
    const chosen = pick(name, isIPv4(wanted) ? infos.filter(info => info.family !== 'IPv4' || info.address === wanted) : infos)
    if (chosen.length === 0) throw new UnknownInterfaceError(`network interface ${wanted} has no address for mDNS`)
    return chosen
  }
  const external = Object.entries(interfaces)
    .filter(([, infos]) => infos?.some(info => !info.internal))
    .flatMap(([name, infos]) => pick(name, infos ?? []))
  if (external.length > 0) return external
  return Object.entries(interfaces).flatMap(([name, infos]) => families.ipv4 ? pick(name, (infos ?? []).filter(info => info.internal)) : [])
}

/**
 * The default factory: a `node:dgram` socket bound to the port on all addresses (shared with
 * other mDNS stacks on the host through SO_REUSEADDR) that joins the group on its interface
 * only, and sends there only, with multicast loopback on so that peers on this host hear it.
 */
export const dgramSocketFactory: MulticastSocketFactory = async ({ iface, port, onPacket, onError }) => {
  const socket = dgram.createSocket({ type: iface.family === 4 ? 'udp4' : 'udp6', reuseAddr: true, ipv6Only: iface.family === 6 })
  const group = iface.family === 4 ? IPV4_GROUP : IPV6_GROUP
  const local = iface.family === 4 ? iface.address : `::%${iface.name}`
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(port, iface.family === 4 ? '0.0.0.0' : '::', () => {
        socket.off('error', reject)
        resolve()
      })
    })
    socket.addMembership(group, local)
    socket.setMulticastInterface(local)
    socket.setMulticastLoopback(true)
    socket.setMulticastTTL(255)
  } catch (err) {
    socket.close()
    throw new MulticastSocketError(iface, 'cannot open', { cause: err })
  }
  let closed = false
  socket.on('message', (packet, from) => { onPacket(packet, from) })
  socket.on('error', (err) => { if (!closed) onError(new MulticastSocketError(iface, err.message, { cause: err })) })
  return {
    send: async (packet) => {
      if (closed) return
      await new Promise<void>((resolve, reject) => {
        socket.send(packet, port, group, (err) => { err == null ? resolve() : reject(new MulticastSocketError(iface, `send failed: ${err.message}`, { cause: err })) })
      })
    },
    close: async () => {
      if (closed) return
      closed = true
      await new Promise<void>(resolve => { socket.close(() => { resolve() }) })
    }
  }
}
