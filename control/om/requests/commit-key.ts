/** @module
 * commitKey: makes an open key visible, atomically. With `ifNotExists` it fails with
 * KEY_ALREADY_EXISTS when the key exists by then, with `ifMatchEtag` with KEY_NOT_FOUND or
 * ETAG_MISMATCH unless it exists with that ETag (core/write-condition.ts; checked in apply, so of
 * two writers racing to create one key exactly one wins: S3's `If-None-Match: *` and
 * `If-Match`); the loser's open key stays open and its writer aborts it. Blocks allocated to the key but not in it, and a replaced
 * key's blocks, go to the deleted blocks (Ozone's OMKeyCommitRequest). The bucket's usage
 * grows by the key's replicated bytes (less a replaced key's), checked against its quotas
 * here, in apply, so that of writers racing for a quota's last bytes only those that fit win.
 * With `whileKeyExists` the commit fails with REQUIRED_KEY_NOT_FOUND unless that other key exists by
 * then (an S3 part commits only while its upload's record does: a part in flight when the
 * upload is aborted or completed must not outlive it where no call can reach it).
 */
import { inheritedAcls } from '../../../core/access/native-acl.ts'
import { O3Error } from '../../../core/errors.ts'
import { blockIdString, parseId, parseReplication, type BlockId, type KeyLocation } from '../../../core/wire.ts'
import type { CommittedBlock, KeyInfo } from '../../../core/om-wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { addUsage, applyUsage, replicatedBytes, type UsageChanges } from '../quota.ts'
import { keyPath, nextObjectId, recordDeleted, requireKey } from '../tables.ts'
import type { OmRequestContext } from './context.ts'
import { checkClientId, checkMetadata, keyBytesPerBlock } from './open-key.ts'
import { checkFullKeyName, type FullKeyName } from '../names.ts'
import { checkWriteCondition, parseWriteCondition, type WriteCondition } from '../../../core/write-condition.ts'

type Args = { clientId?: unknown; blocks?: unknown; size?: unknown; metadata?: unknown; ifNotExists?: unknown; ifMatchEtag?: unknown; whileKeyExists?: unknown }
type Payload = { clientId: string; blocks: { blockId: BlockId; length: number }[]; size: number; metadata: Record<string, string> | null; condition: WriteCondition; whileKeyExists?: FullKeyName; nowMs: number }

export function commitKey(ctx: OmRequestContext): ReplicatedRequest<Args, Payload, KeyInfo> {
  return {
    name: 'commitKey',
    prepare: (a) => {
      const clientId = checkClientId(a.clientId)
      const condition = parseWriteCondition(a, 'key')
      if (!Array.isArray(a.blocks)) throw new O3Error('INVALID_ARGUMENT', 'Cannot commit key: blocks must be an array')
      const blocks = (a.blocks as CommittedBlock[]).map((raw) => ({
        blockId: { containerId: parseId(raw?.blockId?.containerId, 'containerId'), localId: parseId(raw?.blockId?.localId, 'localId') } as BlockId,
        length: parseId<number>(raw?.length, 'length'),
      }))
      return {
        clientId, blocks, size: parseId<number>(a.size, 'size'), metadata: a.metadata === undefined ? null : checkMetadata(a.metadata),
        condition, whileKeyExists: checkFullKeyName(a.whileKeyExists, 'whileKeyExists'), nowMs: Date.now(),
      }
    },
    apply: (_db, p) => {
      const t = ctx.tables()
      const open = t.openKeys.get(p.clientId)
      if (open === undefined) throw new O3Error('OPEN_KEY_NOT_FOUND', `Open key ${p.clientId} not found (expired, committed or aborted)`)
      requireKey(t, p.whileKeyExists, open.volume, open.bucket, `Cannot commit key ${open.name}`)
      const allocated = new Map(open.allocated.map((b) => [blockIdString(b.blockId), b]))
      const locations: KeyLocation[] = []
      const capacity = keyBytesPerBlock(parseReplication(open.replication), open.blockSizeBytes)
      let offset = 0
      for (const { blockId, length } of p.blocks) {
        const block = allocated.get(blockIdString(blockId))
        if (block === undefined) throw new O3Error('INVALID_ARGUMENT', `Cannot commit key ${open.name}: block ${blockIdString(blockId)} was not allocated to it`)
        if (length > capacity) throw new O3Error('INVALID_ARGUMENT', `Cannot commit key ${open.name}: block ${blockIdString(blockId)} holds ${length} bytes, more than the ${capacity} a ${open.replication} block holds`)
        if (length === 0) continue
        locations.push({ blockId, offset, length, pipeline: block.pipeline })
        offset += length
      }
      if (offset !== p.size) throw new O3Error('INVALID_ARGUMENT', `Cannot commit key ${open.name}: blocks hold ${offset} bytes, size says ${p.size}`)
      const id = `${open.volume}/${open.bucket}`
      const bucket = t.buckets.get(id)
      if (bucket === undefined) throw new O3Error('BUCKET_NOT_FOUND', `Cannot commit key ${open.name}: bucket ${id} was deleted`)
      const path = keyPath(open.volume, open.bucket, open.name)
      const previous = t.keys.get(path)
      const full = `${id}/${open.name}`
      checkWriteCondition(p.condition, previous, full)
      if (previous !== undefined) recordDeleted(t, full, previous.locations.map((l) => l.blockId), p.nowMs)
      const committed = new Set(locations.map((l) => blockIdString(l.blockId)))
      recordDeleted(t, full, open.allocated.map((b) => b.blockId).filter((b) => !committed.has(blockIdString(b))), p.nowMs)
      const key: KeyInfo = {
        volume: open.volume, bucket: open.bucket, name: open.name, size: p.size, replication: open.replication, checksumType: open.checksumType,
        bytesPerChecksum: open.bytesPerChecksum, createdAtMs: p.nowMs, modifiedAtMs: p.nowMs, locations, metadata: p.metadata ?? open.metadata, objectId: nextObjectId(t),
        // Ozone's OMKeyRequest: the writer's ALL (the bucket owner's when nobody is named) and the bucket's DEFAULT ACLs.
        acls: inheritedAcls(open.owner ?? bucket.owner, bucket.acls, false),
      }
      t.keys.putSync(path, key)
      t.openKeys.removeSync(p.clientId)
      // The replaced key's bytes are released at once (Ozone >= 1.4 holds them as the bucket's
      // snapshotUsedBytes until its blocks are purged); the quota check sees the net change.
      const changes: UsageChanges = new Map()
      addUsage(changes, open.volume, open.bucket, replicatedBytes(key.size, key.replication), 1)
      if (previous !== undefined) addUsage(changes, open.volume, open.bucket, -replicatedBytes(previous.size, previous.replication), -1)
      applyUsage(t, changes, `commit key ${full}`)
      return key
    },
  }
}
