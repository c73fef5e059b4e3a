/** @module
 * CRC combination: the CRC of A‖B from crc(A), crc(B) and the length of B, for the reflected
 * CRCs S3 uses (CRC-32, CRC-32C, CRC-64/NVME; initial value and final xor all ones), without
 * reading A or B. S3's FULL_OBJECT checksum of a multipart upload is its parts' CRCs combined
 * in part order. Pure: no I/O; the loops run over the CRC's bits, never over payload bytes.
 * The math is zlib's crc32_combine (multmodp, x2nmodp), in BigInt so that one routine serves
 * 32 and 64 bits.
 */
import { assert } from '../../core/assert.ts'

export interface CrcSpec {
  widthBits: 32 | 64
  /** The polynomial, reflected (bit order reversed), without its top term. */
  polynomialReflected: bigint
}

export const CRC32: CrcSpec = { widthBits: 32, polynomialReflected: 0xedb88320n }
export const CRC32C: CrcSpec = { widthBits: 32, polynomialReflected: 0x82f63b78n }
export const CRC64NVME: CrcSpec = { widthBits: 64, polynomialReflected: 0x9a6c9329ac4bc9b5n }

/** Lengths up to 2^64 bits: x^(2^k) mod P for k in 0..63. */
const POWERS_COUNT = 64

/** a·b mod P, both in reflected form (the top bit is x^0). */
function multiplyModP(spec: CrcSpec, a: bigint, b: bigint): bigint {
  let m = 1n << BigInt(spec.widthBits - 1)
  let product = 0n
  while (m !== 0n) {
    if ((a & m) !== 0n) {
      product ^= b
      if ((a & (m - 1n)) === 0n) break
    }
    m >>= 1n
    b = (b & 1n) !== 0n ? (b >> 1n) ^ spec.polynomialReflected : b >> 1n
  }
  return product
}

const powersBySpec = new Map<CrcSpec, bigint[]>()

/** x^(2^k) mod P for every k, computed once per CRC. */
function powers(spec: CrcSpec): bigint[] {
  let table = powersBySpec.get(spec)
  if (table !== undefined) return table
  table = [1n << BigInt(spec.widthBits - 2)] // x^1
  for (let k = 1; k < POWERS_COUNT; k++) table.push(multiplyModP(spec, table[k - 1], table[k - 1]))
  powersBySpec.set(spec, table)
  return table
}

/** x^(8·lengthBytes) mod P: the operator that shifts a CRC past lengthBytes zero bytes. */
export function shiftOperator(spec: CrcSpec, lengthBytes: number): bigint {
  assert(Number.isSafeInteger(lengthBytes), 'a CRC shift by a non-integer length')
  assert(lengthBytes >= 0, 'a CRC shift by a negative length')
  const table = powers(spec)
  let n = BigInt(lengthBytes)
  let k = 3 // 8 bits a byte: start at x^(2^3)
  let op = 1n << BigInt(spec.widthBits - 1) // x^0
  while (n !== 0n) {
    if ((n & 1n) !== 0n) op = multiplyModP(spec, table[k], op)
    n >>= 1n
    k++
  }
  return op
}

/**
 * Combines CRCs of consecutive pieces, given as [crc, lengthBytes] in order, into the CRC of
 * their concatenation. Pieces of equal length share one shift operator (a multipart upload's
 * parts mostly are), so each piece costs one multiplication.
 */
export function combineCrcs(spec: CrcSpec, pieces: Iterable<readonly [crc: bigint, lengthBytes: number]>): bigint {
  const operators = new Map<number, bigint>()
  let crc: bigint | undefined
  for (const [pieceCrc, length] of pieces) {
    if (crc === undefined) { crc = pieceCrc; continue }
    let op = operators.get(length)
    if (op === undefined) { op = shiftOperator(spec, length); operators.set(length, op) }
    crc = multiplyModP(spec, op, crc) ^ pieceCrc
  }
  // The CRC of nothing is 0 for these CRCs (all-ones initial value and final xor).
  return crc ?? 0n
}

/** A CRC as S3 sends it: its bytes big-endian. */
export function crcToBytes(spec: CrcSpec, crc: bigint): Buffer {
  const out = Buffer.alloc(spec.widthBits / 8)
  if (spec.widthBits === 64) out.writeBigUInt64BE(crc)
  else out.writeUInt32BE(Number(crc))
  return out
}

/** The CRC in S3's big-endian bytes. */
export function crcFromBytes(spec: CrcSpec, bytes: Uint8Array): bigint {
  assert(bytes.length === spec.widthBits / 8, 'a CRC of the wrong length')
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)
  return spec.widthBits === 64 ? b.readBigUInt64BE() : BigInt(b.readUInt32BE())
}
