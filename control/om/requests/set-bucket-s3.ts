/** @module
 * setBucketS3 (S3's bucket subresources, kept with the bucket as Ozone keeps bucket ACLs):
 * sets or clears (null) one field of a bucket's S3 configuration (ACL, policy, CORS, tags...).
 * The gateway validates the S3 shape first; the OM checks the field's name and size.
 */
import { O3Error } from '../../../core/errors.ts'
import { BUCKET_S3_FIELD_BYTES_MAX } from '../../../core/limits.ts'
import type { BucketInfo } from '../../../core/om-wire.ts'
import { BUCKET_S3_FIELDS, type BucketS3Config, type BucketS3Field } from '../../../core/s3-access/model.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { checkBucketName, checkVolumeName } from '../names.ts'
import { bucketOf } from '../tables.ts'
import type { OmRequestContext } from './context.ts'

type Args = { volume?: unknown; bucket?: unknown; field?: unknown; value?: unknown }
type Payload = { volume: string; bucket: string; field: BucketS3Field; value: unknown; nowMs: number }

export function setBucketS3(ctx: OmRequestContext): ReplicatedRequest<Args, Payload, BucketInfo> {
  return {
    name: 'setBucketS3',
    prepare: (a) => {
      const volume = checkVolumeName(a.volume)
      const bucket = checkBucketName(a.bucket)
      const field = a.field as BucketS3Field
      if (!(BUCKET_S3_FIELDS as readonly unknown[]).includes(field)) throw new O3Error('INVALID_ARGUMENT', `Cannot set ${String(a.field)} of bucket ${volume}/${bucket}: the S3 fields are ${BUCKET_S3_FIELDS.join(', ')}`)
      const value = a.value ?? null
      if (value !== null) {
        const bytes = Buffer.byteLength(JSON.stringify(value))
        if (bytes > BUCKET_S3_FIELD_BYTES_MAX) throw new O3Error('INVALID_ARGUMENT', `Cannot set ${field} of bucket ${volume}/${bucket}: ${bytes} bytes exceeds ${BUCKET_S3_FIELD_BYTES_MAX}`)
      }
      return { volume, bucket, field, value, nowMs: Date.now() }
    },
    apply: (_db, p) => {
      const t = ctx.tables()
      const b = bucketOf(t, p.volume, p.bucket)
      const s3: BucketS3Config = { ...b.s3 }
      if (p.value === null) delete s3[p.field]
      else (s3 as Record<string, unknown>)[p.field] = p.value
      const next: BucketInfo = { ...b, modifiedAtMs: p.nowMs }
      if (Object.keys(s3).length > 0) next.s3 = s3
      else delete next.s3
      t.buckets.putSync(`${p.volume}/${p.bucket}`, next)
      return next
    },
  }
}
