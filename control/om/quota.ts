/** @module
 * Quotas, as Ozone keeps them (docs/feature/Quota.md, OMKeyRequest.checkBucketQuotaInBytes):
 * a bucket's space quota caps the replicated bytes of its keys (size x replicas, Ozone's
 * QuotaUtil.getReplicatedSize), its namespace quota the number of its keys; a volume's
 * namespace quota caps its buckets, and its space quota the sum of its buckets' space quotas
 * (Ozone checks a volume's space only through its buckets'). Usage lives in the bucket and
 * volume records and changes only in apply, where every check reads the usage committed by
 * the entries before it in log order: of two writers racing for the last bytes, the one
 * applied second fails with QUOTA_EXCEEDED. Pure: no clock, no I/O but the tables.
 */
import { assert } from '../../core/assert.ts'
import { O3Error } from '../../core/errors.ts'
import type { BucketInfo, VolumeInfo } from '../../core/om-wire.ts'
import { parseReplication } from '../../core/wire.ts'
import { keyPath, startsWith, type OmTables } from './tables.ts'

/** No quota (Ozone's OzoneConsts.QUOTA_RESET). */
export const QUOTA_RESET = -1

/**
 * The S3 gateway's volumes (datapath/s3/context.ts; the OM may not import it): parts of an
 * unfinished multipart upload are keys of bucket `s3v-multipart/<b>`, and count against the
 * space quota of `s3v/<b>` as Ozone counts uploaded parts in their bucket's usedBytes.
 */
export const S3_VOLUME = 's3v'
export const MULTIPART_VOLUME = 's3v-multipart'

/** The largest quota the records hold exactly (2^53 - 1 bytes, about 8 PiB). */
export const QUOTA_MAX = Number.MAX_SAFE_INTEGER

/** Bytes a key of `sizeBytes` takes on the datanodes (Ozone's QuotaUtil.getReplicatedSize). */
export function replicatedBytes(sizeBytes: number, replication: string): number {
  assert(Number.isSafeInteger(sizeBytes), 'a key size is an integer')
  assert(sizeBytes >= 0, 'a key size is not negative')
  const r = parseReplication(replication)
  if (r.type === 'RATIS') return sizeBytes * r.factor
  assert(r.ec !== undefined, 'an EC replication has its schema')
  // EC: the data, plus parity for every full stripe and for the first cell of a partial one.
  const stripeBytes = r.ec.data * r.ec.cellSizeBytes
  const fullStripes = Math.floor(sizeBytes / stripeBytes)
  const partialFirstCell = Math.min(r.ec.cellSizeBytes, sizeBytes % stripeBytes)
  return sizeBytes + fullStripes * r.ec.parity * r.ec.cellSizeBytes + partialFirstCell * r.ec.parity
}

/**
 * A quota as a request gives it (prepare): undefined leaves it as it is, -1 clears it, else
 * a whole number from 1 to QUOTA_MAX. Ozone refuses 0 and other negatives alike.
 */
export function checkQuota(raw: unknown, what: 'space' | 'namespace'): number | undefined {
  if (raw === undefined || raw === null) return undefined
  if (raw === QUOTA_RESET) return QUOTA_RESET
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw) || raw < 1) {
    throw new O3Error('INVALID_ARGUMENT', `Invalid ${what} quota ${JSON.stringify(raw)}: a whole number from 1 to ${QUOTA_MAX}${what === 'space' ? ' bytes' : ''}, or -1 for none`)
  }
  return raw
}

/** A bucket with its usage; a record from before quotas (keyCount, logical bytes) is counted afresh from its keys. */
export function withUsage(t: OmTables, b: BucketInfo): BucketInfo {
  if (typeof b.usedNamespace === 'number') return b
  let usedBytes = 0
  let usedNamespace = 0
  const prefix = keyPath(b.volume, b.name, '')
  for (const { key, value } of t.keys.getRange({ start: prefix })) {
    if (!startsWith(key, prefix)) break
    usedBytes += replicatedBytes(value.size, value.replication)
    usedNamespace++
  }
  const { keyCount: _legacy, ...rest } = b as BucketInfo & { keyCount?: number }
  return { ...rest, usedBytes, usedNamespace }
}

/** The buckets of a volume, in name order. */
export function bucketsOf(t: OmTables, volume: string): BucketInfo[] {
  const out: BucketInfo[] = []
  for (const { key, value } of t.buckets.getRange({ start: `${volume}/` })) {
    if (!key.startsWith(`${volume}/`)) break
    out.push(value)
  }
  return out
}

/** A volume with its bucket count; a record from before quotas is counted afresh. */
export function volumeWithUsage(t: OmTables, v: VolumeInfo): VolumeInfo & { usedNamespace: number } {
  if (typeof v.usedNamespace === 'number') return v as VolumeInfo & { usedNamespace: number }
  return { ...v, usedNamespace: bucketsOf(t, v.name).length }
}

/** Refuses a bucket of `addBuckets` more than `v`'s namespace quota allows (Ozone's OMBucketCreateRequest). */
export function checkVolumeNamespace(v: VolumeInfo & { usedNamespace: number }, addBuckets: number): void {
  if (v.quotaNamespace <= 0 || v.usedNamespace + addBuckets <= v.quotaNamespace) return
  throw new O3Error('QUOTA_EXCEEDED', `Cannot create a bucket in volume ${v.name}: its namespace quota is ${v.quotaNamespace} buckets and it holds ${v.usedNamespace}`)
}

/** The sum of the space quotas of a volume's buckets but `except`; with `unset`, how many have none. */
export function bucketQuotaSum(t: OmTables, volume: string, except?: string): { sumBytes: number; unset: number } {
  let sumBytes = 0
  let unset = 0
  for (const b of bucketsOf(t, volume)) {
    if (b.name === except) continue
    if (b.quotaBytes > 0) sumBytes += b.quotaBytes
    else unset++
  }
  return { sumBytes, unset }
}

/** Refuses bucket space quotas that would add up to more than the volume's (Ozone: QUOTA_EXCEEDED). */
export function checkVolumeSpace(v: VolumeInfo, totalBucketQuotaBytes: number, what: string): void {
  if (v.quotaBytes <= 0 || totalBucketQuotaBytes <= v.quotaBytes) return
  throw new O3Error('QUOTA_EXCEEDED', `Cannot ${what}: the space quotas of the buckets of volume ${v.name} would add up to ${totalBucketQuotaBytes} bytes, more than its space quota of ${v.quotaBytes}`)
}

/** How one apply changes the usage of buckets, by `volume/bucket`. */
export type UsageChanges = Map<string, { volume: string; bucket: string; bytes: number; namespace: number }>

/** Adds to `changes` a change of `bytes` (replicated) and `keys` in bucket volume/bucket. */
export function addUsage(changes: UsageChanges, volume: string, bucket: string, bytes: number, keys: number): void {
  const id = `${volume}/${bucket}`
  const c = changes.get(id) ?? { volume, bucket, bytes: 0, namespace: 0 }
  changes.set(id, { ...c, bytes: c.bytes + bytes, namespace: c.namespace + keys })
}

/** The bucket whose space quota a bucket's keys count against: `s3v/<b>` for `s3v-multipart/<b>`, else itself. */
function quotaHolder(volume: string, bucket: string): string {
  return volume === MULTIPART_VOLUME ? `${S3_VOLUME}/${bucket}` : `${volume}/${bucket}`
}

/** The replicated bytes counted against bucket `id`'s space quota: its keys' and, for an S3 bucket, its unfinished uploads' parts. */
export function spaceCounted(t: OmTables, id: string): number {
  const b = t.buckets.get(id)
  if (b === undefined) return 0
  let used = withUsage(t, b).usedBytes
  if (b.volume === S3_VOLUME) {
    const parts = t.buckets.get(`${MULTIPART_VOLUME}/${b.name}`)
    if (parts !== undefined) used += withUsage(t, parts).usedBytes
  }
  return used
}

/**
 * Inside an apply, after its key writes: records every changed bucket's new usage, then
 * checks the quotas of the buckets whose counted usage grew, so that a write that leaves a
 * bucket over a quota throws QUOTA_EXCEEDED (and the whole entry rolls back). A change that
 * shrinks or keeps usage passes even over a quota (one set before a legacy recount, say), so
 * deleting and overwriting with less always work. Buckets deleted meanwhile are skipped.
 */
export function applyUsage(t: OmTables, changes: UsageChanges, what: string): void {
  const grown = new Map<string, { bytes: number; namespace: number }>()
  for (const [id, c] of changes) {
    const current = t.buckets.get(id)
    if (current === undefined) continue
    const b = withUsage(t, current)
    const next = { ...b, usedBytes: b.usedBytes + c.bytes, usedNamespace: b.usedNamespace + c.namespace }
    assert(next.usedBytes >= 0, `bucket ${id} uses no negative bytes`)
    assert(next.usedNamespace >= 0, `bucket ${id} holds no negative number of keys`)
    t.buckets.putSync(id, next)
    const holder = quotaHolder(c.volume, c.bucket)
    const g = grown.get(holder) ?? { bytes: 0, namespace: 0 }
    // Keys of an upload's parts do not count in the S3 bucket's namespace (Ozone counts a key once it completes).
    grown.set(holder, { bytes: g.bytes + c.bytes, namespace: g.namespace + (holder === id ? c.namespace : 0) })
  }
  for (const [id, g] of grown) {
    const b = t.buckets.get(id)
    if (b === undefined) continue
    if (g.bytes > 0 && b.quotaBytes > 0) {
      const used = spaceCounted(t, id)
      if (used > b.quotaBytes) throw new O3Error('QUOTA_EXCEEDED', `Cannot ${what}: bucket ${id} would use ${used} bytes (replicated) of its space quota of ${b.quotaBytes}`)
    }
    if (g.namespace > 0 && b.quotaNamespace > 0 && withUsage(t, b).usedNamespace > b.quotaNamespace) {
      throw new O3Error('QUOTA_EXCEEDED', `Cannot ${what}: bucket ${id} would hold ${withUsage(t, b).usedNamespace} keys, over its namespace quota of ${b.quotaNamespace}`)
    }
  }
}

/**
 * openKey's early refusal (Ozone's OMKeyCreateRequest checks its preallocated blocks): a key
 * whose declared size would not fit, or a new key past the namespace quota, is refused
 * before its bytes are written. Nothing is reserved: commitKey's check is the one that
 * counts. Unlike Ozone, which checks whole blocks (256 MiB x replicas) and so cannot write
 * into a quota smaller than that, this checks the declared size.
 */
export function checkOpen(t: OmTables, k: { volume: string; bucket: string; name: string; sizeBytes: number; replication: string }): void {
  const id = quotaHolder(k.volume, k.bucket)
  const b = t.buckets.get(id)
  if (b === undefined) return
  const existing = t.keys.get(keyPath(k.volume, k.bucket, k.name))
  const bytes = replicatedBytes(k.sizeBytes, k.replication) - (existing === undefined ? 0 : replicatedBytes(existing.size, existing.replication))
  if (bytes > 0 && b.quotaBytes > 0) {
    const used = spaceCounted(t, id)
    if (used + bytes > b.quotaBytes) throw new O3Error('QUOTA_EXCEEDED', `Cannot open key ${k.name}: bucket ${id} would use ${used + bytes} bytes (replicated) of its space quota of ${b.quotaBytes}`)
  }
  if (existing === undefined && id === `${k.volume}/${k.bucket}` && b.quotaNamespace > 0) {
    const used = withUsage(t, b).usedNamespace
    if (used + 1 > b.quotaNamespace) throw new O3Error('QUOTA_EXCEEDED', `Cannot open key ${k.name}: bucket ${id} holds ${used} keys, its namespace quota`)
  }
}
