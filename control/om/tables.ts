/** @module
 * The OM's state: its tables in the state database every OM replica holds alike (Ozone's
 * table names), written only by the apply functions in requests/, and the helpers those
 * applies share.
 */
import type { Database, RootDatabase } from 'lmdb'
import { O3Error } from '../../core/errors.ts'
import type { BlockId } from '../../core/wire.ts'
import type { BucketInfo, KeyInfo, OpenKeyInfo, S3Secret, VolumeInfo } from '../../core/om-wire.ts'
import { MULTIPART_VOLUME, S3_VOLUME } from './quota.ts'

/** Blocks of a deleted, replaced or abandoned key, waiting to be handed to the SCM. */
export interface DeletedEntry { key: string; blocks: BlockId[]; deletedAtMs: number }

export interface OmTables {
  /** `objectId`: the last object id given to a committed key. */
  readonly meta: Database<unknown, string>
  readonly volumes: Database<VolumeInfo, string>
  readonly buckets: Database<BucketInfo, string>
  readonly keys: Database<KeyInfo, Uint8Array>
  readonly openKeys: Database<OpenKeyInfo, string>
  readonly deleted: Database<DeletedEntry, number>
  /** S3 credentials by access key (Ozone's S3SecretTable). */
  readonly s3Secrets: Database<S3Secret, string>
}

export function openOmTables(db: RootDatabase): OmTables {
  return {
    meta: db.openDB({ name: 'meta' }),
    volumes: db.openDB({ name: 'volumeTable' }),
    buckets: db.openDB({ name: 'bucketTable' }),
    keys: db.openDB({ name: 'keyTable', keyEncoding: 'binary' }),
    openKeys: db.openDB({ name: 'openKeyTable' }),
    deleted: db.openDB({ name: 'deletedTable', keyEncoding: 'uint32' }),
    s3Secrets: db.openDB({ name: 's3SecretTable' }),
  }
}

const enc = new TextEncoder()

/** A key's row in keyTable: `volume/bucket/key` as bytes (so that a bucket's keys sort together). */
export const keyPath = (v: string, b: string, k: string): Uint8Array => enc.encode(`${v}/${b}/${k}`)

/** Inside an apply: remembers blocks the SCM must delete, numbered after the last entry. */
export function recordDeleted(t: OmTables, key: string, blocks: BlockId[], nowMs: number): void {
  if (blocks.length === 0) return
  let next = 1
  for (const { key: last } of t.deleted.getRange({ reverse: true, limit: 1 })) next = last + 1
  t.deleted.putSync(next, { key, blocks, deletedAtMs: nowMs })
}

/**
 * Inside an apply, for a write into `volume`/`bucket` that names a key it requires
 * (whileKeyExists; `what`: the refused change): the key must be in the bucket written or, for
 * an S3 bucket, in its multipart bucket (an upload's record), so that a writer learns no more
 * than ifNotExists tells it of its own bucket (INVALID_ARGUMENT); and it must exist
 * (REQUIRED_KEY_NOT_FOUND).
 */
export function requireKey(t: OmTables, k: { volume: string; bucket: string; key: string } | undefined, volume: string, bucket: string, what: string): void {
  if (k === undefined) return
  const same = k.volume === volume && k.bucket === bucket
  const uploadOf = volume === S3_VOLUME && k.volume === MULTIPART_VOLUME && k.bucket === bucket
  if (!same && !uploadOf) throw new O3Error('INVALID_ARGUMENT', `${what}: a required key must be in the bucket written (or its S3 multipart bucket), not ${k.volume}/${k.bucket}`)
  if (t.keys.get(keyPath(k.volume, k.bucket, k.key)) === undefined) throw new O3Error('REQUIRED_KEY_NOT_FOUND', `${what}: key ${k.volume}/${k.bucket}/${k.key} it requires does not exist`)
}

export function volumeOf(t: OmTables, name: string): VolumeInfo {
  const v = t.volumes.get(name)
  if (v === undefined) throw new O3Error('VOLUME_NOT_FOUND', `Volume ${name} not found`)
  return v
}

export function bucketOf(t: OmTables, volume: string, name: string): BucketInfo {
  volumeOf(t, volume)
  const b = t.buckets.get(`${volume}/${name}`)
  if (b === undefined) throw new O3Error('BUCKET_NOT_FOUND', `Bucket ${volume}/${name} not found`)
  return b
}

export function startsWith(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false
  return true
}

/** The next object id, recorded as given (inside an apply). */
export function nextObjectId(t: OmTables): number {
  const id = ((t.meta.get('objectId') as number | undefined) ?? 0) + 1
  t.meta.putSync('objectId', id)
  return id
}
