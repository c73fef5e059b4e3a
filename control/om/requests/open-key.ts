/** @module
 * openKey: a writer's open key with its first blocks, which the leader asks the SCM for
 * (prepare); every replica records the open key with the blocks and id the leader chose,
 * unless its declared size or one more key would not fit the bucket's quotas (quota.ts:
 * an early refusal; nothing is reserved, commitKey's check is the one that counts).
 */
import { randomUUID } from 'node:crypto'
import { O3Error } from '../../../core/errors.ts'
import { KEY_METADATA_BYTES_MAX, OPEN_KEY_PREALLOCATED_BLOCKS_MAX } from '../../../core/limits.ts'
import { ecSchemeOf, groupCapacityBytes } from '../../../core/ec-layout.ts'
import { formatReplication, parseId, parseReplication, type ReplicationConfig } from '../../../core/wire.ts'
import type { BucketInfo, OpenKeyInfo, OpenKeyResult } from '../../../core/om-wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import { checkBucketName, checkKeyName, checkVolumeName } from '../names.ts'
import { checkOpen, MULTIPART_VOLUME, S3_VOLUME } from '../quota.ts'
import { bucketOf, type OmTables } from '../tables.ts'
import type { OmRequestContext } from './context.ts'

/** `owner` is set by the OM's handler from the caller, never taken from the wire. */
export type OpenKeyArgs = { volume?: unknown; bucket?: unknown; key?: unknown; sizeBytes?: unknown; replication?: unknown; metadata?: unknown; owner?: unknown }

/** The open key as decided, with the size its writer declared (0: unknown) for the early quota check. */
type Payload = OpenKeyInfo & { sizeBytes?: number }

export function openKey(ctx: OmRequestContext): ReplicatedRequest<OpenKeyArgs, Payload, OpenKeyResult> {
  return {
    name: 'openKey',
    prepare: async (a) => {
      const volume = checkVolumeName(a.volume)
      const bucketName = checkBucketName(a.bucket)
      const name = checkKeyName(a.key)
      const bucket = bucketOf(ctx.tables(), volume, bucketName)
      const parsed = parseReplication(typeof a.replication === 'string' ? a.replication : defaultReplication(ctx.tables(), bucket))
      const replication = formatReplication(parsed)
      checkEcCell(parsed, ctx.config['client.bytesPerChecksum'])
      const metadata = checkMetadata(a.metadata)
      const blockSizeBytes = ctx.config['scm.block.sizeBytes']
      const size = a.sizeBytes === undefined || a.sizeBytes === null ? 0 : parseId<number>(a.sizeBytes, 'sizeBytes')
      // Refused before blocks are drawn from the SCM too; apply checks again against the state then.
      checkOpen(ctx.tables(), { volume, bucket: bucketName, name, sizeBytes: size, replication })
      // An EC block is a group of k + m replicas holding up to k blocks of key bytes.
      const count = Math.min(OPEN_KEY_PREALLOCATED_BLOCKS_MAX, Math.max(1, Math.ceil(size / keyBytesPerBlock(parsed, blockSizeBytes))))
      const blocks = await ctx.blocksFor(replication, count)
      return {
        clientId: randomUUID(), volume, bucket: bucketName, name, replication, checksumType: bucket.checksumType,
        bytesPerChecksum: ctx.config['client.bytesPerChecksum'], blockSizeBytes, metadata, createdAtMs: Date.now(), allocated: blocks, sizeBytes: size,
        ...(typeof a.owner === 'string' && a.owner.length > 0 ? { owner: a.owner } : {}),
      }
    },
    apply: (_db, p) => {
      const t = ctx.tables()
      const { sizeBytes, ...info } = p
      bucketOf(t, info.volume, info.bucket)
      checkOpen(t, { volume: info.volume, bucket: info.bucket, name: info.name, sizeBytes: sizeBytes ?? 0, replication: info.replication })
      t.openKeys.putSync(info.clientId, info)
      return { clientId: info.clientId, replication: info.replication, checksumType: info.checksumType, bytesPerChecksum: info.bytesPerChecksum, blockSizeBytes: info.blockSizeBytes, blocks: info.allocated }
    },
  }
}

/**
 * A key's replication when its writer names none: its bucket's; for the parts of an S3
 * multipart upload (bucket `s3v-multipart/<b>`, made with the default replication) the S3
 * bucket `s3v/<b>`'s, so that an upload into an EC bucket is EC (its key takes its parts').
 */
/** An open key's id as openKey draws it (a UUID). */
const CLIENT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Whether `raw` can name an open key: anything else names none, and must not reach LMDB as a key (its keys are bounded). */
export function isClientId(raw: unknown): raw is string {
  return typeof raw === 'string' && CLIENT_ID.test(raw)
}

/** `raw` as an open key's id, or INVALID_ARGUMENT. */
export function checkClientId(raw: unknown): string {
  if (!isClientId(raw)) throw new O3Error('INVALID_ARGUMENT', 'clientId must be an open key\'s id, as openKey answers it (a UUID)')
  return raw
}

export function defaultReplication(t: OmTables, bucket: BucketInfo): string {
  if (bucket.volume !== MULTIPART_VOLUME) return bucket.replication
  return t.buckets.get(`${S3_VOLUME}/${bucket.name}`)?.replication ?? bucket.replication
}

/** An EC cell is written as one chunk, checksummed per bytesPerChecksum: a cell must be whole checksum windows. */
export function checkEcCell(r: ReplicationConfig, bytesPerChecksum: number): void {
  if (r.type !== 'EC' || r.ec === undefined || r.ec.cellSizeBytes % bytesPerChecksum === 0) return
  throw new O3Error('INVALID_ARGUMENT', `Cannot write with ${formatReplication(r)}: its cell size (${r.ec.cellSizeBytes} bytes) is not a multiple of bytesPerChecksum (${bytesPerChecksum})`)
}

/** Key bytes one allocated block holds at most: a block, or an EC block group's capacity (core/ec-layout.ts). */
export function keyBytesPerBlock(r: ReplicationConfig, blockSizeBytes: number): number {
  return r.type === 'EC' ? groupCapacityBytes(ecSchemeOf(r), blockSizeBytes) : blockSizeBytes
}

export function checkMetadata(raw: unknown): Record<string, string> {
  if (raw === undefined || raw === null) return {}
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new O3Error('INVALID_ARGUMENT', 'metadata must be an object of strings')
  const out: Record<string, string> = {}
  let bytes = 0
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') throw new O3Error('INVALID_ARGUMENT', `metadata ${k} must be a string`)
    bytes += k.length + v.length
    out[k] = v
  }
  if (bytes > KEY_METADATA_BYTES_MAX) throw new O3Error('INVALID_ARGUMENT', `metadata of ${bytes} bytes exceeds ${KEY_METADATA_BYTES_MAX}`)
  return out
}
