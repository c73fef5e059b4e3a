/**
 * The digests S3 asks for, computed independently of the product's hashers: node:crypto on the
 * calling thread for MD5 and the SHAs, and bit-at-a-time CRCs written from their definitions.
 * For tests only (the CRCs loop over every bit).
 */
import { createHash } from 'node:crypto'
import type { DigestName } from '../../datapath/workers/index.ts'

/** A reflected CRC, one bit at a time, as the CRC catalogue defines it (init and xorout all ones). */
export function crcReference(bits: 32 | 64, polyReflected: bigint, data: Uint8Array): Buffer {
  const mask = (1n << BigInt(bits)) - 1n
  let crc = mask
  for (const byte of data) {
    crc ^= BigInt(byte)
    for (let i = 0; i < 8; i++) crc = crc & 1n ? (crc >> 1n) ^ polyReflected : crc >> 1n
  }
  crc ^= mask
  const out = Buffer.alloc(bits / 8)
  if (bits === 32) out.writeUInt32BE(Number(crc))
  else out.writeBigUInt64BE(crc)
  return out
}
export const CRC32_POLY = 0xedb88320n, CRC32C_POLY = 0x82f63b78n, CRC64NVME_POLY = 0x9a6c9329ac4bc9b5n

export function reference(data: Uint8Array): Record<DigestName, string> {
  const hex = (b: Buffer) => b.toString('hex')
  return {
    md5: createHash('md5').update(data).digest('hex'),
    sha1: createHash('sha1').update(data).digest('hex'),
    sha256: createHash('sha256').update(data).digest('hex'),
    crc32: hex(crcReference(32, CRC32_POLY, data)),
    crc32c: hex(crcReference(32, CRC32C_POLY, data)),
    crc64nvme: hex(crcReference(64, CRC64NVME_POLY, data)),
  }
}

