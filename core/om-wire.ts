/** @module
 * What the OM stores and answers: volume, bucket, key and open-key records (Ozone's
 * OmVolumeArgs, OmBucketInfo, OmKeyInfo). Wire types shared with the client. Pure.
 */
import { assert } from './assert.ts'
import type { WireError } from './errors.ts'
import type { OzoneAcl } from './access/native-acl.ts'
import type { BucketS3Config } from './s3-access/model.ts'
import type { AllocatedBlock, BlockId, ChecksumType, KeyLocation } from './wire.ts'

export interface VolumeInfo {
  name: string
  owner: string
  admin: string
  createdAtMs: number
  modifiedAtMs: number
  /** Space quota in replicated bytes; -1: none (Ozone's QUOTA_RESET, the default). Caps the sum of its buckets' space quotas. */
  quotaBytes: number
  /** Namespace quota: how many buckets the volume may hold; -1: none. */
  quotaNamespace: number
  /** Buckets in the volume (Ozone's usedNamespace). Absent in volumes written before quotas: count them. */
  usedNamespace?: number
  /** Answered by getVolume, not stored: the replicated bytes its buckets use, summed. */
  usedBytes?: number
  /** Native ACLs (Ozone's OmVolumeArgs.acls); absent in volumes written before ACLs. */
  acls?: OzoneAcl[]
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
  /** Space quota in replicated bytes (size x replicas, as Ozone's QuotaUtil counts); -1: none. */
  quotaBytes: number
  /** Namespace quota: how many keys the bucket may hold; -1: none. */
  quotaNamespace: number
  /** Replicated bytes of the bucket's committed keys (Ozone's usedBytes). */
  usedBytes: number
  /** Committed keys in the bucket (Ozone's usedNamespace). */
  usedNamespace: number
  /** S3's configuration of the bucket (ACL, policy, CORS, tags...); absent: S3's defaults. */
  s3?: BucketS3Config
  /** Native ACLs, DEFAULT ones handed to new keys; absent in buckets written before ACLs. */
  acls?: OzoneAcl[]
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
  /**
   * The S3 multipart parts the key was completed from, in order; absent for a key written in
   * one piece. Run-length coded (see PartRun) so that 10,000 equal parts take one entry.
   */
  parts?: PartRun[]
  /** Native ACLs: its writer's ALL and its bucket's DEFAULT ACLs; absent in keys written before ACLs. */
  acls?: OzoneAcl[]
}

/**
 * `count` consecutive parts of `sizeBytes` each. Ozone records a part number on every block
 * (OmKeyLocationInfo.partNumber); sizes by run stay small for any number of parts, hold empty
 * parts, which have no block, and do not tie part boundaries to block boundaries.
 */
export interface PartRun {
  sizeBytes: number
  count: number
}

/** Appends `count` parts of `sizeBytes` each to a run-length coded part list (in place). */
export function appendParts(runs: PartRun[], sizeBytes: number, count = 1): void {
  assert(Number.isSafeInteger(sizeBytes), 'part size must be an integer')
  assert(sizeBytes >= 0, 'part size must not be negative')
  assert(Number.isSafeInteger(count), 'part count must be an integer')
  assert(count >= 1, 'a run holds at least one part')
  const last = runs[runs.length - 1]
  if (last !== undefined && last.sizeBytes === sizeBytes) last.count += count
  else runs.push({ sizeBytes, count })
}

/** How many parts a run-length coded part list holds. */
export function partCount(runs: readonly PartRun[]): number {
  let n = 0
  for (const r of runs) n += r.count
  return n
}

/** Where part `n` (1-based, in completion order) lies in the key; undefined past the last part. */
export function partRange(runs: readonly PartRun[], n: number): { offset: number; length: number } | undefined {
  assert(Number.isSafeInteger(n), 'part number must be an integer')
  assert(n >= 1, 'part numbers start at 1')
  let offset = 0
  let before = 0
  for (const r of runs) {
    if (n <= before + r.count) return { offset: offset + (n - 1 - before) * r.sizeBytes, length: r.sizeBytes }
    before += r.count
    offset += r.count * r.sizeBytes
  }
  return undefined
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
  /** The user writing it (the caller, or the user the S3 gateway acts for): the key's owner ACL. */
  owner?: string
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

/** An S3 key pair of a user (Ozone's S3SecretValue): clients sign with awsSecret, which only the OM verifies with. */
export interface S3Secret {
  user: string
  awsAccessKey: string
  awsSecret: string
}

/** One part of an S3 lookup: the record, or the error looking it up ended in. */
export type LookupPart<T> = { ok: true; value: T } | { ok: false; error: WireError }

/**
 * A key the S3 gateway asks the OM to open in the call that verifies the request's signature
 * (OM.s3Authenticate), so that an upload costs two OM calls, not three. It is opened only if
 * the signature verifies, the request's bucket exists and is the user's, `requireKey` (an
 * upload's record, for UploadPart) exists, and, with `ifNotExists`, the request's key does not.
 */
export interface S3OpenIntent {
  volume: string
  bucket: string
  key: string
  sizeBytes: number
  metadata: Record<string, string>
  ifNotExists?: boolean
  requireKey?: { volume: string; bucket: string; key: string }
}

/**
 * What the S3 gateway learns in the one OM call before its handler runs (OM.s3Authenticate),
 * read afresh on every request, so a revoked key or a deleted bucket is seen by the very next
 * one: the access key's user once its signature verified and, when asked, its bucket and key,
 * the key it asked to open (with its first block) and the record that open required. `key`
 * is looked up whenever the bucket exists, whoever owns it: the gateway authorizes (ACLs,
 * bucket policy); a key is opened only in the user's own bucket. The secret never comes back: for aws-chunked
 * bodies, whose chunks are signed, `signingKeyHex` is the SigV4 key of the request's scope.
 */
export interface S3AuthResult {
  /** The access key's user; absent for an anonymous request (no access key). */
  user?: string
  signingKeyHex?: string
  bucket?: LookupPart<BucketInfo>
  key?: LookupPart<KeyInfo>
  opened?: LookupPart<OpenKeyResult>
  required?: LookupPart<KeyInfo>
}

/** A volume, bucket or key by name: what the native ACL calls (getAcl, addAcl, removeAcl, setAcl) name. */
export type AclObject = { kind: 'volume'; volume: string } | { kind: 'bucket'; volume: string; bucket: string } | { kind: 'key'; volume: string; bucket: string; key: string }
