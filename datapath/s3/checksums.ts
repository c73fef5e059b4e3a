/** @module
 * S3's additional checksums (CRC32, CRC32C, CRC64NVME, SHA1, SHA256): their names in headers
 * and XML, the checks on values and on a multipart upload's checksum type (COMPOSITE or
 * FULL_OBJECT), and the object checksum of a multipart upload made from its parts' checksums.
 * A key keeps its checksum as `x-amz-checksum-<algorithm>` metadata (a COMPOSITE one ends in
 * `-<parts>`, which is how its type is told) and, for a COMPOSITE multipart object, its parts'
 * checksums as `x-o3-part-checksums` while they fit. Pure: no I/O; it reads checksums (metadata), never
 * payload bytes, which are hashed in the worker pool (datapath/workers/digest.ts).
 */
import { createHash } from 'node:crypto'
import { crc32, crc32c } from '@node-rs/crc32'
import { S3_PART_CHECKSUMS_BYTES_MAX } from '../../core/limits.ts'
import { RESERVED_METADATA_PREFIX } from '../../core/s3-access/model.ts'
import { assert } from '../../core/assert.ts'
import { combineCrcs, crcFromBytes, crcToBytes, CRC32, CRC32C, CRC64NVME, type CrcSpec } from './crc-combine.ts'
import { S3Error } from './errors.ts'

export const CHECKSUM_ALGORITHMS = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number]
export type ChecksumType = 'COMPOSITE' | 'FULL_OBJECT'

const DIGEST_BYTES: Record<ChecksumAlgorithm, number> = { crc32: 4, crc32c: 4, crc64nvme: 8, sha1: 20, sha256: 32 }
const CRC_SPECS: Partial<Record<ChecksumAlgorithm, CrcSpec>> = { crc32: CRC32, crc32c: CRC32C, crc64nvme: CRC64NVME }
/** S3's table of what a multipart upload may use: CRC64NVME only whole, the SHAs only composite. */
const TYPES_ALLOWED: Record<ChecksumAlgorithm, readonly ChecksumType[]> = {
  crc32: ['COMPOSITE', 'FULL_OBJECT'], crc32c: ['COMPOSITE', 'FULL_OBJECT'], crc64nvme: ['FULL_OBJECT'], sha1: ['COMPOSITE'], sha256: ['COMPOSITE'],
}

/** The metadata that holds a multipart object's parts' checksums: `<algorithm>:<base64 of the binary checksums in part order>`. */
export const PART_CHECKSUMS_METADATA = `${RESERVED_METADATA_PREFIX}part-checksums`

export const checksumHeader = (a: ChecksumAlgorithm) => `x-amz-checksum-${a}`
/** The XML element (and SDK field) of an algorithm's checksum: ChecksumCRC64NVME, ChecksumSHA256... */
export const checksumField = (a: ChecksumAlgorithm) => `Checksum${a.toUpperCase()}`

/** The algorithm a header names (CRC32, crc32...), undefined when absent; InvalidRequest when not one of S3's. */
export function parseAlgorithm(raw: string | null | undefined): ChecksumAlgorithm | undefined {
  if (raw === null || raw === undefined) return undefined
  const a = raw.trim().toLowerCase()
  if (!(CHECKSUM_ALGORITHMS as readonly string[]).includes(a)) {
    throw new S3Error('InvalidRequest', `Checksum algorithm provided is unsupported. Please try again with any of the valid types: [${CHECKSUM_ALGORITHMS.map((x) => x.toUpperCase()).join(', ')}]`)
  }
  return a as ChecksumAlgorithm
}

/** Refuses a checksum value that is not the base64 of the algorithm's digest. */
export function checkChecksumValue(a: ChecksumAlgorithm, value: string): void {
  const bytes = DIGEST_BYTES[a]
  const ok = value.length === 4 * Math.ceil(bytes / 3) && /^[A-Za-z0-9+/]+={0,2}$/.test(value) && Buffer.from(value, 'base64').length === bytes
  if (!ok) throw new S3Error('InvalidRequest', `Value for ${checksumHeader(a)} header is invalid.`)
}

/**
 * A multipart upload's checksum type from CreateMultipartUpload's x-amz-checksum-algorithm and
 * x-amz-checksum-type: FULL_OBJECT for CRC64NVME, else COMPOSITE unless asked; a type S3 does
 * not pair with the algorithm, or a type without an algorithm, is InvalidRequest.
 */
export function uploadChecksumType(a: ChecksumAlgorithm | undefined, rawType: string | null): ChecksumType | undefined {
  const type = rawType === null ? undefined : rawType.trim().toUpperCase()
  if (type !== undefined && type !== 'COMPOSITE' && type !== 'FULL_OBJECT') throw new S3Error('InvalidRequest', `Value for x-amz-checksum-type header is invalid.`)
  if (a === undefined) {
    if (type !== undefined) throw new S3Error('InvalidRequest', 'The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.')
    return undefined
  }
  const chosen = (type ?? TYPES_ALLOWED[a][0]) as ChecksumType
  if (!TYPES_ALLOWED[a].includes(chosen)) throw new S3Error('InvalidRequest', `The ${chosen} checksum type cannot be used with the ${a} checksum algorithm.`)
  return chosen
}

/** The checksum a key's metadata holds, if any: its algorithm, value and type. */
export function storedChecksum(metadata: Record<string, string>): { algorithm: ChecksumAlgorithm; value: string; type: ChecksumType } | undefined {
  for (const a of CHECKSUM_ALGORITHMS) {
    const value = metadata[checksumHeader(a)]
    if (value !== undefined) return { algorithm: a, value, type: value.includes('-') ? 'COMPOSITE' : 'FULL_OBJECT' }
  }
  return undefined
}

/** The headers that show a key's checksum (GET and HEAD with x-amz-checksum-mode: ENABLED). */
export function checksumHeaders(metadata: Record<string, string>): Record<string, string> {
  const c = storedChecksum(metadata)
  return c === undefined ? {} : { [checksumHeader(c.algorithm)]: c.value, 'x-amz-checksum-type': c.type }
}

/** The XML elements of a key's checksum (CompleteMultipartUpload, GetObjectAttributes' Checksum). */
export function checksumXml(metadata: Record<string, string>): Record<string, string> {
  const c = storedChecksum(metadata)
  return c === undefined ? {} : { [checksumField(c.algorithm)]: c.value, ChecksumType: c.type }
}

/** What a listing (ListObjects, ListObjectVersions) shows of a key's checksum: its algorithm and type. */
export function listedChecksum(metadata: Record<string, string>): Record<string, string> {
  const c = storedChecksum(metadata)
  return c === undefined ? {} : { ChecksumAlgorithm: c.algorithm.toUpperCase(), ChecksumType: c.type }
}

/**
 * S3's COMPOSITE checksum of a multipart object: the algorithm over the parts' binary
 * checksums in part order, then `-<parts>`. Hashes at most 32 bytes a part.
 */
export function compositeChecksum(a: ChecksumAlgorithm, partValues: readonly string[]): string {
  const joined = Buffer.concat(partValues.map((v) => Buffer.from(v, 'base64')))
  let digest: Buffer
  if (a === 'sha1' || a === 'sha256') digest = createHash(a).update(joined).digest()
  else if (a === 'crc64nvme') throw new S3Error('InvalidRequest', 'The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm.')
  else {
    digest = Buffer.alloc(4)
    digest.writeUInt32BE((a === 'crc32' ? crc32(joined) : crc32c(joined)) >>> 0)
  }
  return `${digest.toString('base64')}-${partValues.length}`
}

/** S3's FULL_OBJECT checksum of a multipart object: its parts' CRCs combined (crc-combine.ts), as if over every byte. */
export function fullObjectChecksum(a: ChecksumAlgorithm, parts: readonly { value: string; sizeBytes: number }[]): string {
  const spec = CRC_SPECS[a]
  assert(spec !== undefined, 'a FULL_OBJECT checksum of a SHA')
  const crc = combineCrcs(spec, parts.map((p) => [crcFromBytes(spec, Buffer.from(p.value, 'base64')), p.sizeBytes] as const))
  return crcToBytes(spec, crc).toString('base64')
}

/** The parts' checksums as PART_CHECKSUMS_METADATA keeps them, or undefined past S3_PART_CHECKSUMS_BYTES_MAX. */
export function encodePartChecksums(a: ChecksumAlgorithm, partValues: readonly string[]): string | undefined {
  if (a.length + 1 + 4 * Math.ceil(partValues.length * DIGEST_BYTES[a] / 3) > S3_PART_CHECKSUMS_BYTES_MAX) return undefined
  return `${a}:${Buffer.concat(partValues.map((v) => Buffer.from(v, 'base64'))).toString('base64')}`
}

/** The checksums of a multipart object's parts, in part order, when its metadata keeps them. */
export function partChecksums(metadata: Record<string, string>): { algorithm: ChecksumAlgorithm; values: string[] } | undefined {
  const raw = metadata[PART_CHECKSUMS_METADATA]
  if (raw === undefined) return undefined
  const colon = raw.indexOf(':')
  const algorithm = raw.slice(0, colon) as ChecksumAlgorithm
  const bytes = DIGEST_BYTES[algorithm]
  if (bytes === undefined) return undefined
  const all = Buffer.from(raw.slice(colon + 1), 'base64')
  const values: string[] = []
  for (let at = 0; at + bytes <= all.length; at += bytes) values.push(all.subarray(at, at + bytes).toString('base64'))
  return { algorithm, values }
}
