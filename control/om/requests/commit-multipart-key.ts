/** @module
 * commitMultipartKey: commits a key as the concatenation of the blocks of committed `parts`
 * (an S3 multipart upload's parts, or the key itself to rewrite its metadata), in one entry.
 * The parts are removed without deleting their blocks: completing an upload moves no bytes.
 * With `asParts` (CompleteMultipartUpload) each listed key becomes one part of the new key's
 * part list (KeyInfo.parts, read by GET ?partNumber=N); without it the new key keeps the
 * part lists of the keys it is made of (a metadata rewrite keeps the layout), or has none if
 * any of them has none. `ifNotExists` and `ifMatchEtag` condition the commit on the key as
 * it is then (core/write-condition.ts: S3's conditional CompleteMultipartUpload). With `keepTimes`
 * (a key listed as its own only part: S3's PutObjectTagging and PutObjectAcl) the key keeps
 * its creation and modification times, as S3 keeps an object's Last-Modified when only its
 * tags or ACL change. With `whileKeyExists` it commits only while that other key exists (an
 * S3 upload completes only while its record does: an abort that came first wins).
 */
import { inheritedAcls } from '../../../core/access/native-acl.ts'
import { assert } from '../../../core/assert.ts'
import { O3Error } from '../../../core/errors.ts'
import { KEY_PARTS_COUNT_MAX } from '../../../core/limits.ts'
import { blockIdString, type KeyLocation } from '../../../core/wire.ts'
import { appendParts, partCount, type KeyInfo, type PartRun } from '../../../core/om-wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { checkBucketName, checkFullKeyName, checkKeyName, checkVolumeName, type FullKeyName } from '../names.ts'
import { addUsage, applyUsage, replicatedBytes, type UsageChanges } from '../quota.ts'
import { bucketOf, keyPath, nextObjectId, recordDeleted, requireKey } from '../tables.ts'
import type { OmRequestContext } from './context.ts'
import { checkMetadata } from './open-key.ts'
import { checkWriteCondition, parseWriteCondition, type WriteCondition } from '../../../core/write-condition.ts'

/** `owner` is set by the OM's handler from the caller, never taken from the wire. */
type Args = { volume?: unknown; bucket?: unknown; key?: unknown; parts?: unknown; metadata?: unknown; asParts?: unknown; keepTimes?: unknown; ifNotExists?: unknown; ifMatchEtag?: unknown; whileKeyExists?: unknown; owner?: unknown }
type Part = { volume: string; bucket: string; key: string }
type Payload = { volume: string; bucket: string; name: string; metadata: Record<string, string>; parts: Part[]; asParts: boolean; keepTimes: boolean; condition: WriteCondition; whileKeyExists?: FullKeyName; nowMs: number; owner?: string }

export function commitMultipartKey(ctx: OmRequestContext): ReplicatedRequest<Args, Payload, KeyInfo> {
  return {
    name: 'commitMultipartKey',
    prepare: (a) => {
      const volume = checkVolumeName(a.volume)
      const bucket = checkBucketName(a.bucket)
      const name = checkKeyName(a.key)
      const metadata = checkMetadata(a.metadata)
      if (!Array.isArray(a.parts) || a.parts.length === 0) throw new O3Error('INVALID_ARGUMENT', `Cannot commit key ${name}: parts must be a non-empty array`)
      if (a.parts.length > KEY_PARTS_COUNT_MAX) throw new O3Error('INVALID_ARGUMENT', `Cannot commit key ${name}: ${a.parts.length} parts exceed ${KEY_PARTS_COUNT_MAX}`)
      if (a.asParts !== undefined && typeof a.asParts !== 'boolean') throw new O3Error('INVALID_ARGUMENT', `Cannot commit key ${name}: asParts must be a boolean`)
      if (a.keepTimes !== undefined && typeof a.keepTimes !== 'boolean') throw new O3Error('INVALID_ARGUMENT', `Cannot commit key ${name}: keepTimes must be a boolean`)
      const parts = (a.parts as { volume?: unknown; bucket?: unknown; key?: unknown }[]).map((p) => ({ volume: checkVolumeName(p?.volume), bucket: checkBucketName(p?.bucket), key: checkKeyName(p?.key) }))
      const keepTimes = a.keepTimes === true
      if (keepTimes && (parts.length !== 1 || parts[0].volume !== volume || parts[0].bucket !== bucket || parts[0].key !== name)) {
        throw new O3Error('INVALID_ARGUMENT', `Cannot commit key ${name}: keepTimes needs the key as its only part`)
      }
      const condition = parseWriteCondition(a, `key ${name}`)
      bucketOf(ctx.tables(), volume, bucket)
      const owner = typeof a.owner === 'string' && a.owner.length > 0 ? { owner: a.owner } : {}
      const whileKeyExists = checkFullKeyName(a.whileKeyExists, 'whileKeyExists')
      return { volume, bucket, name, metadata, parts, asParts: a.asParts === true, keepTimes, condition, whileKeyExists, nowMs: Date.now(), ...owner }
    },
    apply: (_db, p) => {
      const t = ctx.tables()
      const { volume, bucket: bucketName, name } = p
      const target = bucketOf(t, volume, bucketName)
      const path = keyPath(volume, bucketName, name)
      const previous = t.keys.get(path)
      // Before the parts: a write whose condition fails leaves them as they were.
      checkWriteCondition(p.condition, previous, `${volume}/${bucketName}/${name}`)
      requireKey(t, p.whileKeyExists, volume, bucketName, `Cannot commit key ${name}`)
      const locations: KeyLocation[] = []
      const reused = new Set<string>()
      let size = 0
      let first: KeyInfo | undefined
      // The parts by name, each once (an empty part may be listed twice: it has no blocks to repeat).
      const found = new Map<string, { path: Uint8Array; part: KeyInfo }>()
      let runs: PartRun[] | undefined = []
      for (const part of p.parts) {
        const partPath = keyPath(part.volume, part.bucket, part.key)
        const info = t.keys.get(partPath)
        if (info === undefined) throw new O3Error('KEY_NOT_FOUND', `Cannot commit key ${name}: part ${part.volume}/${part.bucket}/${part.key} not found`)
        found.set(`${part.volume}/${part.bucket}/${part.key}`, { path: partPath, part: info })
        first ??= info
        if (p.asParts) appendParts(runs!, info.size)
        else if (runs !== undefined && info.parts !== undefined) for (const r of info.parts) appendParts(runs, r.sizeBytes, r.count)
        else runs = undefined
        for (const l of info.locations) {
          const id = blockIdString(l.blockId)
          if (reused.has(id)) throw new O3Error('INVALID_ARGUMENT', `Cannot commit key ${name}: block ${id} listed twice`)
          reused.add(id)
          locations.push({ ...l, offset: size })
          size += l.length
        }
      }
      assert(first !== undefined, 'no parts')
      if (runs !== undefined && partCount(runs) > KEY_PARTS_COUNT_MAX) throw new O3Error('INVALID_ARGUMENT', `Cannot commit key ${name}: ${partCount(runs)} parts exceed ${KEY_PARTS_COUNT_MAX}`)
      assert(runs === undefined || runs.reduce((n, r) => n + r.sizeBytes * r.count, 0) === size, 'parts do not add up to the key')
      if (previous !== undefined) {
        const dropped = previous.locations.map((l) => l.blockId).filter((id) => !reused.has(blockIdString(id)))
        recordDeleted(t, `${volume}/${bucketName}/${name}`, dropped, p.nowMs)
      }
      const changes: UsageChanges = new Map()
      for (const { path: partPath, part } of found.values()) {
        t.keys.removeSync(partPath)
        addUsage(changes, part.volume, part.bucket, -replicatedBytes(part.size, part.replication), -1)
      }
      // A replaced key is counted out unless it was one of the parts (counted out just above).
      if (previous !== undefined && !found.has(`${volume}/${bucketName}/${name}`)) addUsage(changes, volume, bucketName, -replicatedBytes(previous.size, previous.replication), -1)
      const key: KeyInfo = {
        volume, bucket: bucketName, name, size, replication: first.replication, checksumType: first.checksumType,
        bytesPerChecksum: first.bytesPerChecksum, locations,
        createdAtMs: p.keepTimes ? first.createdAtMs : p.nowMs, modifiedAtMs: p.keepTimes ? first.modifiedAtMs : p.nowMs, metadata: p.metadata, objectId: nextObjectId(t),
        ...(runs === undefined ? {} : { parts: runs }),
        // A metadata rewrite (keepTimes) keeps the key's ACLs; a new key gets its writer's and the bucket's DEFAULT ones.
        acls: p.keepTimes && first.acls !== undefined ? first.acls : inheritedAcls(p.owner ?? target.owner, target.acls, false),
      }
      t.keys.putSync(path, key)
      addUsage(changes, volume, bucketName, replicatedBytes(size, key.replication), 1)
      // Checked on the net change: parts moved from s3v-multipart/<b> into s3v/<b> were counted against its quota already.
      applyUsage(t, changes, `commit key ${volume}/${bucketName}/${name}`)
      return key
    },
  }
}
