/** @module
 * The condition a key write may carry (S3's conditional writes, `If-None-Match: *` and
 * `If-Match: <etag>` on PutObject and CompleteMultipartUpload) and the one a key delete may
 * carry (S3's conditional deletes): parsed in prepare, checked in apply against the key as it
 * is then, so of writers racing on one key the condition holds for exactly the ones it should.
 * Pure: no I/O, no clock.
 */
import { O3Error } from './errors.ts'
import type { KeyInfo } from './om-wire.ts'

/** An ETag as S3 writes it is at most a 32-hex MD5 and `-N`; anything far longer is not one. */
const ETAG_CHARS_MAX = 256

export interface WriteCondition {
  /** Commit only if no key of that name exists then (KEY_ALREADY_EXISTS). */
  ifNotExists: boolean
  /** Commit only if the key exists (KEY_NOT_FOUND) with this `etag` metadata, or any with `*` (ETAG_MISMATCH). */
  ifMatchEtag: string | null
}

/** prepare: the condition of a request's `ifNotExists` and `ifMatchEtag` arguments. */
export function parseWriteCondition(a: { ifNotExists?: unknown; ifMatchEtag?: unknown }, what: string): WriteCondition {
  if (a.ifNotExists !== undefined && a.ifNotExists !== null && typeof a.ifNotExists !== 'boolean') throw new O3Error('INVALID_ARGUMENT', `Cannot commit ${what}: ifNotExists must be a boolean`)
  return { ifNotExists: a.ifNotExists === true, ifMatchEtag: parseEtag(a.ifMatchEtag, `commit ${what}`) }
}

function parseEtag(etag: unknown, what: string): string | null {
  if (etag === undefined || etag === null) return null
  if (typeof etag !== 'string' || etag.length === 0 || etag.length > ETAG_CHARS_MAX) throw new O3Error('INVALID_ARGUMENT', `Cannot ${what}: ifMatchEtag must be a string of 1..${ETAG_CHARS_MAX} characters`)
  return etag
}

/** apply: throws unless `previous` (the key as it is now, undefined when absent) satisfies the condition. */
export function checkWriteCondition(c: WriteCondition, previous: KeyInfo | undefined, full: string): void {
  if (c.ifNotExists && previous !== undefined) throw new O3Error('KEY_ALREADY_EXISTS', `Cannot commit key ${full}: it exists and ifNotExists was set`)
  if (c.ifMatchEtag === null) return
  if (previous === undefined) throw new O3Error('KEY_NOT_FOUND', `Cannot commit key ${full}: it does not exist and ifMatchEtag was set`)
  if (c.ifMatchEtag !== '*' && previous.metadata.etag !== c.ifMatchEtag) throw new O3Error('ETAG_MISMATCH', `Cannot commit key ${full}: its ETag is not ${c.ifMatchEtag}`)
}

/**
 * The condition of a key delete (S3's DeleteObject `If-Match`, `x-amz-if-match-size`,
 * `x-amz-if-match-last-modified-time`, and a DeleteObjects entry's ETag, Size, LastModifiedTime).
 * A missing key fails the delete (KEY_NOT_FOUND) whatever the condition; whether that is an
 * error is the caller's to say (S3: only with If-Match).
 */
export interface DeleteCondition {
  /** Delete only if the key has this `etag` metadata, or any with `*` (ETAG_MISMATCH). */
  ifMatchEtag: string | null
  /** Delete only if the key holds this many bytes (KEY_CONDITION_FAILED). */
  ifMatchSize: number | null
  /** Delete only if the key was last modified in this second since the epoch, as Last-Modified names it (KEY_CONDITION_FAILED). */
  ifMatchModifiedSeconds: number | null
}

/**
 * prepare: the condition of a delete's `ifMatchEtag`, `ifMatchSize` and
 * `ifMatchModifiedSeconds` arguments; undefined when it names none (an unconditional delete,
 * logged as before conditional deletes).
 */
export function parseDeleteCondition(a: DeleteConditionArgs): DeleteCondition | undefined {
  const whole = (v: unknown, name: string): number | null => {
    if (v === undefined || v === null) return null
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new O3Error('INVALID_ARGUMENT', `Cannot delete key: ${name} must be a whole number, 0 or more`)
    return v
  }
  const c = { ifMatchEtag: parseEtag(a.ifMatchEtag, 'delete key'), ifMatchSize: whole(a.ifMatchSize, 'ifMatchSize'), ifMatchModifiedSeconds: whole(a.ifMatchModifiedSeconds, 'ifMatchModifiedSeconds') }
  return c.ifMatchEtag === null && c.ifMatchSize === null && c.ifMatchModifiedSeconds === null ? undefined : c
}

export type DeleteConditionArgs = { ifMatchEtag?: unknown; ifMatchSize?: unknown; ifMatchModifiedSeconds?: unknown }

/**
 * Whether a delete's condition tells its caller something of the key beyond its existence (an
 * ETag other than `*`, a size, a time): who may delete a key without reading it must not learn
 * them by probing (S3 asks s3:GetObject of such a delete; the OM asks READ).
 */
export function deleteConditionReads(a: DeleteConditionArgs): boolean {
  const given = (v: unknown) => v !== undefined && v !== null
  return (given(a.ifMatchEtag) && a.ifMatchEtag !== '*') || given(a.ifMatchSize) || given(a.ifMatchModifiedSeconds)
}

/**
 * apply: throws unless `current`, the key as it is now, satisfies the delete's condition. The
 * messages name what was asked, never the key's own values (a native caller reads them).
 */
export function checkDeleteCondition(c: DeleteCondition, current: KeyInfo, full: string): void {
  if (c.ifMatchEtag !== null && c.ifMatchEtag !== '*' && current.metadata.etag !== c.ifMatchEtag) throw new O3Error('ETAG_MISMATCH', `Cannot delete key ${full}: its ETag is not ${c.ifMatchEtag}`)
  if (c.ifMatchSize !== null && current.size !== c.ifMatchSize) throw new O3Error('KEY_CONDITION_FAILED', `Cannot delete key ${full}: it does not hold ${c.ifMatchSize} bytes`)
  if (c.ifMatchModifiedSeconds !== null && Math.floor(current.modifiedAtMs / 1000) !== c.ifMatchModifiedSeconds) {
    throw new O3Error('KEY_CONDITION_FAILED', `Cannot delete key ${full}: it was not last modified in second ${c.ifMatchModifiedSeconds}`)
  }
}
