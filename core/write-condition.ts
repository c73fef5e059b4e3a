/** @module
 * The condition a key write may carry (S3's conditional writes, `If-None-Match: *` and
 * `If-Match: <etag>` on PutObject and CompleteMultipartUpload): parsed in prepare, checked in
 * apply against the key as it is then, so of writers racing on one key the condition holds
 * for exactly the ones it should. Pure: no I/O, no clock.
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
  const etag = a.ifMatchEtag
  if (etag !== undefined && etag !== null && (typeof etag !== 'string' || etag.length === 0 || etag.length > ETAG_CHARS_MAX)) {
    throw new O3Error('INVALID_ARGUMENT', `Cannot commit ${what}: ifMatchEtag must be a string of 1..${ETAG_CHARS_MAX} characters`)
  }
  return { ifNotExists: a.ifNotExists === true, ifMatchEtag: typeof etag === 'string' ? etag : null }
}

/** apply: throws unless `previous` (the key as it is now, undefined when absent) satisfies the condition. */
export function checkWriteCondition(c: WriteCondition, previous: KeyInfo | undefined, full: string): void {
  if (c.ifNotExists && previous !== undefined) throw new O3Error('KEY_ALREADY_EXISTS', `Cannot commit key ${full}: it exists and ifNotExists was set`)
  if (c.ifMatchEtag === null) return
  if (previous === undefined) throw new O3Error('KEY_NOT_FOUND', `Cannot commit key ${full}: it does not exist and ifMatchEtag was set`)
  if (c.ifMatchEtag !== '*' && previous.metadata.etag !== c.ifMatchEtag) throw new O3Error('ETAG_MISMATCH', `Cannot commit key ${full}: its ETag is not ${c.ifMatchEtag}`)
}
