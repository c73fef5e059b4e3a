/** @module deleteKey: removes a key, releasing its replicated bytes and its place in the bucket's quotas; its blocks go to the deleted blocks. Deleting a missing key changes nothing. */
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { checkBucketName, checkKeyName, checkVolumeName } from '../names.ts'
import { addUsage, applyUsage, replicatedBytes, type UsageChanges } from '../quota.ts'
import { keyPath, recordDeleted } from '../tables.ts'
import type { OmRequestContext } from './context.ts'
import { keyOf } from './keys.ts'

type Payload = { volume: string; bucket: string; name: string; nowMs: number }

export function deleteKey(ctx: OmRequestContext): ReplicatedRequest<{ volume?: unknown; bucket?: unknown; key?: unknown }, Payload, null> {
  return {
    name: 'deleteKey',
    prepare: (a) => {
      const key = keyOf(ctx.tables(), { volume: checkVolumeName(a.volume), bucket: checkBucketName(a.bucket), name: checkKeyName(a.key) })
      return { volume: key.volume, bucket: key.bucket, name: key.name, nowMs: Date.now() }
    },
    apply: (_db, p) => {
      const t = ctx.tables()
      const path = keyPath(p.volume, p.bucket, p.name)
      const current = t.keys.get(path)
      if (current === undefined) return null
      recordDeleted(t, `${p.volume}/${p.bucket}/${p.name}`, current.locations.map((l) => l.blockId), p.nowMs)
      t.keys.removeSync(path)
      const changes: UsageChanges = new Map()
      addUsage(changes, p.volume, p.bucket, -replicatedBytes(current.size, current.replication), -1)
      applyUsage(t, changes, `delete key ${p.volume}/${p.bucket}/${p.name}`)
      return null
    },
  }
}
