/** @module
 * deleteKey: removes a key, releasing its replicated bytes and its place in the bucket's
 * quotas; its blocks go to the deleted blocks. A missing key is refused (KEY_NOT_FOUND) in
 * apply, at the entry's place in the log: a leader's prepare may read a state that lags its
 * log (a new leader that has not applied every committed entry yet), so an answer from it
 * would not be linearizable (found by the OM simulator, seed 192). A conditional delete (S3's
 * If-Match and friends, core/write-condition.ts) is checked there too, so that a writer racing
 * it either replaces the key first (the delete fails) or after (it writes a new key).
 */
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { checkBucketName, checkKeyName, checkVolumeName } from '../names.ts'
import { addUsage, applyUsage, replicatedBytes, type UsageChanges } from '../quota.ts'
import { keyPath, recordDeleted } from '../tables.ts'
import { checkDeleteCondition, parseDeleteCondition, type DeleteCondition, type DeleteConditionArgs } from '../../../core/write-condition.ts'
import type { OmRequestContext } from './context.ts'
import { keyOf } from './keys.ts'

type Args = { volume?: unknown; bucket?: unknown; key?: unknown } & DeleteConditionArgs
/** `condition` is absent from entries logged before conditional deletes (unconditional). */
type Payload = { volume: string; bucket: string; name: string; condition?: DeleteCondition; nowMs: number }

export function deleteKey(ctx: OmRequestContext): ReplicatedRequest<Args, Payload, null> {
  return {
    name: 'deleteKey',
    prepare: (a) => {
      const condition = parseDeleteCondition(a)
      return { volume: checkVolumeName(a.volume), bucket: checkBucketName(a.bucket), name: checkKeyName(a.key), ...(condition !== undefined ? { condition } : {}), nowMs: Date.now() }
    },
    apply: (_db, p) => {
      const t = ctx.tables()
      const path = keyPath(p.volume, p.bucket, p.name)
      const current = keyOf(t, p)
      if (p.condition !== undefined) checkDeleteCondition(p.condition, current, `${p.volume}/${p.bucket}/${p.name}`)
      recordDeleted(t, `${p.volume}/${p.bucket}/${p.name}`, current.locations.map((l) => l.blockId), p.nowMs)
      t.keys.removeSync(path)
      const changes: UsageChanges = new Map()
      addUsage(changes, p.volume, p.bucket, -replicatedBytes(current.size, current.replication), -1)
      applyUsage(t, changes, `delete key ${p.volume}/${p.bucket}/${p.name}`)
      return null
    },
  }
}
