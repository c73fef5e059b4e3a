/** @module createBucket: a new bucket with its replication and checksum defaults. */
import { O3Error } from '../../../core/errors.ts'
import { formatReplication, parseChecksumType, parseReplication } from '../../../core/wire.ts'
import type { BucketInfo } from '../../../core/om-wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { checkBucketName, checkVolumeName } from '../names.ts'
import { volumeOf } from '../tables.ts'
import type { OmRequestContext } from './context.ts'

type Args = { volume?: unknown; bucket?: unknown; owner?: unknown; replication?: unknown; checksumType?: unknown }
/** The bucket as decided, but its owner: the volume's unless given, read in apply. */
type Payload = Omit<BucketInfo, 'owner'> & { owner: string | null }

export function createBucket(ctx: OmRequestContext): ReplicatedRequest<Args, Payload, BucketInfo> {
  return {
    name: 'createBucket',
    prepare: (a) => {
      const volume = checkVolumeName(a.volume)
      const name = checkBucketName(a.bucket)
      const replication = formatReplication(parseReplication(typeof a.replication === 'string' ? a.replication : ctx.config['client.replication']))
      const checksumType = parseChecksumType(typeof a.checksumType === 'string' ? a.checksumType : ctx.config['client.checksumType'])
      const now = Date.now()
      return {
        volume, name, owner: typeof a.owner === 'string' && a.owner.length > 0 ? a.owner : null, layout: 'OBJECT_STORE', replication, checksumType,
        createdAtMs: now, modifiedAtMs: now, quotaBytes: -1, quotaNamespace: -1, usedBytes: 0, keyCount: 0,
      }
    },
    apply: (_db, p) => {
      const t = ctx.tables()
      const v = volumeOf(t, p.volume)
      const id = `${p.volume}/${p.name}`
      if (t.buckets.get(id) !== undefined) throw new O3Error('BUCKET_ALREADY_EXISTS', `Bucket ${id} already exists`)
      const info: BucketInfo = { ...p, owner: p.owner ?? v.owner }
      t.buckets.putSync(id, info)
      return info
    },
  }
}
