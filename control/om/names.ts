/** @module
 * Ozone's naming rules (HddsClientUtils.verifyResourceName) for volumes and buckets, and the
 * key rule: valid UTF-8, 1..1024 bytes. Pure.
 */
import { O3Error } from '../../core/errors.ts'
import { KEY_NAME_BYTES_MAX, VOLUME_NAME_LENGTH_MAX, VOLUME_NAME_LENGTH_MIN } from '../../core/limits.ts'

const RESOURCE = /^[a-z0-9][a-z0-9.-]*[a-z0-9]$/
const IPV4 = /^\d+\.\d+\.\d+\.\d+$/

/** Why `name` is not a valid volume or bucket name, or undefined when it is. */
export function resourceNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'must be a string'
  if (name.length < VOLUME_NAME_LENGTH_MIN || name.length > VOLUME_NAME_LENGTH_MAX) return `must be ${VOLUME_NAME_LENGTH_MIN}-${VOLUME_NAME_LENGTH_MAX} characters`
  if (!RESOURCE.test(name)) return "may hold only lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
  if (name.includes('..') || name.includes('.-') || name.includes('-.')) return "must not hold '..', '.-' or '-.'"
  if (IPV4.test(name)) return 'must not look like an IP address'
  return undefined
}

export function checkVolumeName(name: unknown): string {
  const problem = resourceNameProblem(name)
  if (problem !== undefined) throw new O3Error('INVALID_VOLUME_NAME', `Invalid volume name ${JSON.stringify(name)}: ${problem}`)
  return name as string
}

export function checkBucketName(name: unknown): string {
  const problem = resourceNameProblem(name)
  if (problem !== undefined) throw new O3Error('INVALID_BUCKET_NAME', `Invalid bucket name ${JSON.stringify(name)}: ${problem}`)
  return name as string
}

export function checkKeyName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw new O3Error('INVALID_KEY_NAME', 'Invalid key name: must be a non-empty string')
  if (!name.isWellFormed()) throw new O3Error('INVALID_KEY_NAME', 'Invalid key name: not valid UTF-8 (lone surrogate)')
  const bytes = Buffer.byteLength(name, 'utf8')
  if (bytes > KEY_NAME_BYTES_MAX) throw new O3Error('INVALID_KEY_NAME', `Invalid key name: ${bytes} bytes exceeds ${KEY_NAME_BYTES_MAX}`)
  return name
}

/** A key named in full (volume, bucket, key), as a request may name another key than its own. */
export interface FullKeyName { volume: string; bucket: string; key: string }

/** prepare: an optional key named in full, from the wire (undefined when absent); `field` names the argument in the error. */
export function checkFullKeyName(v: unknown, field: string): FullKeyName | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'object') throw new O3Error('INVALID_ARGUMENT', `${field} must name a volume, bucket and key`)
  const o = v as { volume?: unknown; bucket?: unknown; key?: unknown }
  return { volume: checkVolumeName(o.volume), bucket: checkBucketName(o.bucket), key: checkKeyName(o.key) }
}
