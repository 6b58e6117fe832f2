/**
 * Big-endian integers written into byte arrays.
 *
 * Byte by byte, not through a `DataView`: a `DataView` needs the array's `buffer`, and V8 keeps
 * typed arrays of a few dozen bytes on its heap, so asking for their buffer first moves them off
 * it, which costs far more than the write (bench/README.md, "Small typed arrays without
 * `DataView`").
 *
 * @module
 */

/** `value` (an unsigned 32-bit integer) as 4 bytes, big-endian, at `offset` of `buf`. */
export function writeUint32BE (buf: Uint8Array, offset: number, value: number): void {
  buf[offset] = value >>> 24
  buf[offset + 1] = (value >>> 16) & 0xff
  buf[offset + 2] = (value >>> 8) & 0xff
  buf[offset + 3] = value & 0xff
}

/** `value` (taken modulo 2⁶⁴, as `DataView.setBigUint64`) as 8 bytes, big-endian, at `offset` of `buf`. */
export function writeUint64BE (buf: Uint8Array, offset: number, value: bigint): void {
  const v = BigInt.asUintN(64, value)
  writeUint32BE(buf, offset, Number(v >> 32n))
  writeUint32BE(buf, offset + 4, Number(v & 0xffffffffn))
}
