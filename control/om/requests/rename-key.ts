/** @module
 * renameKey: moves a key to a new name in its bucket; the target must not exist. Both checks
 * are apply's, at the entry's place in the log (a leader's prepare may read a lagging state;
 * see delete-key.ts).
 */
import { O3Error } from '../../../core/errors.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { checkBucketName, checkKeyName, checkVolumeName } from '../names.ts'
import { keyPath } from '../tables.ts'
import type { OmRequestContext } from './context.ts'
import { keyOf } from './keys.ts'

type Payload = { volume: string; bucket: string; name: string; to: string; nowMs: number }

export function renameKey(ctx: OmRequestContext): ReplicatedRequest<{ volume?: unknown; bucket?: unknown; key?: unknown; toKey?: unknown }, Payload, null> {
  return {
    name: 'renameKey',
    prepare: (a) => ({ volume: checkVolumeName(a.volume), bucket: checkBucketName(a.bucket), name: checkKeyName(a.key), to: checkKeyName(a.toKey), nowMs: Date.now() }),
    apply: (_db, p) => {
      const t = ctx.tables()
      const from = keyPath(p.volume, p.bucket, p.name)
      const target = keyPath(p.volume, p.bucket, p.to)
      const current = keyOf(t, p)
      if (t.keys.get(target) !== undefined) throw new O3Error('KEY_ALREADY_EXISTS', `Cannot rename to ${p.to}: key exists`)
      t.keys.removeSync(from)
      t.keys.putSync(target, { ...current, name: p.to, modifiedAtMs: p.nowMs })
      return null
    },
  }
}
