/** @module
 * What the OM stores and answers: volume, bucket, key and open-key records (Ozone's
 * OmVolumeArgs, OmBucketInfo, OmKeyInfo). Wire types shared with the client. Pure.
 */
import type { AllocatedBlock, BlockId, ChecksumType, KeyLocation } from './wire.ts'

export interface VolumeInfo {
  name: string
  owner: string
  admin: string
  createdAtMs: number
  modifiedAtMs: number
  /** -1: no quota (Ozone's default). */
  quotaBytes: number
  quotaNamespace: number
}

export interface BucketInfo {
  volume: string
  name: string
  owner: string
  layout: 'OBJECT_STORE'
  replication: string
  checksumType: ChecksumType
  createdAtMs: number
  modifiedAtMs: number
  quotaBytes: number
  quotaNamespace: number
  usedBytes: number
  keyCount: number
}

export interface KeyInfo {
  volume: string
  bucket: string
  name: string
  size: number
  replication: string
  checksumType: ChecksumType
  bytesPerChecksum: number
  createdAtMs: number
  modifiedAtMs: number
  locations: KeyLocation[]
  /** User metadata (S3 x-amz-meta-*, content type, ...). */
  metadata: Record<string, string>
  objectId: number
}

export interface OpenKeyInfo {
  clientId: string
  volume: string
  bucket: string
  name: string
  replication: string
  checksumType: ChecksumType
  bytesPerChecksum: number
  blockSizeBytes: number
  metadata: Record<string, string>
  createdAtMs: number
  /** Blocks handed to this writer; commitKey may use only these. */
  allocated: AllocatedBlock[]
}

export interface OpenKeyResult {
  clientId: string
  replication: string
  checksumType: ChecksumType
  bytesPerChecksum: number
  blockSizeBytes: number
  blocks: AllocatedBlock[]
}

/** One block a committing writer used: which, and how many bytes of it. */
export interface CommittedBlock {
  blockId: BlockId
  length: number
}

export interface ListKeysResult {
  keys: KeyInfo[]
  truncated: boolean
  /** Pass as startAfter to get the next page. */
  nextStartAfter: string | null
}

/** An S3 key pair of a user (Ozone's S3SecretValue); the gateway signs with awsSecret. */
export interface S3Secret {
  user: string
  awsAccessKey: string
  awsSecret: string
}
