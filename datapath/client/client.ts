/** @module
 * O3Client, the native client every other client builds on (Ozone's OzoneClient): volumes,
 * buckets and keys over the OM's RPC, key bytes straight to and from the datanodes.
 */
import { Readable, Writable } from 'node:stream'
import { checksumsLengthBytes, initChecksums } from '../../core/checksum.ts'
import { DEFAULT_CONFIG } from '../../core/config.ts'
import { O3Error } from '../../core/errors.ts'
import { BYTES_PER_CHECKSUM_DEFAULT, BYTES_PER_CHECKSUM_MIN, CHUNK_SIZE_BYTES_MAX, CLIENT_CHUNKS_INFLIGHT_MAX, CLIENT_EC_STRIPE_SLAB_BYTES, CLIENT_FLUSH_CHUNKS, CLIENT_READ_BUFFERS } from '../../core/limits.ts'
import type { S3SignatureProof } from '../../core/s3-signature.ts'
import type { BucketS3Config, BucketS3Field } from '../../core/s3-access/model.ts'
import type { OzoneAcl } from '../../core/access/native-acl.ts'
import type { AclObject, BucketInfo, KeyInfo, ListKeysResult, OpenKeyResult, S3AuthResult, S3OpenIntent, S3Secret, VolumeInfo } from '../../core/om-wire.ts'
import { RpcClient, type CallOptions } from '../../core/rpc/client.ts'
import type { Transport } from '../../core/rpc/transport.ts'
import { requestSigner, type UserCredentials } from '../../core/security/request-signing.ts'
import type { ChecksumType } from '../../core/wire.ts'
import type { DeleteCondition } from '../../core/write-condition.ts'
import { BufferPool, SlabPool } from '../workers/index.ts'
import type { KeyDigest } from './key-digest.ts'
import { EcKeyWriter } from './ec-key-writer.ts'
import { KeyWriter } from './key-writer.ts'
import { LeaderCache } from './pipeline-leader.ts'
import { SlowDatanodes } from './slow-datanodes.ts'
import { allPieces, HedgeBudget, readKeyRange, resolveRange, startKeyRange, type KeyReaderOptions, type Pieces, type StartedRange } from './key-reader.ts'
import { StripeSlabPools } from './ec-read-group.ts'
import { FailedNodes } from './failed-nodes.ts'
import { copyBytes } from '../../core/copy-bytes.ts'

export interface O3ClientOptions {
  /** OM address, host:port. */
  om: string
  /** SCM address, for admin calls and reporting corrupt replicas. */
  scm?: string
  chunkSizeBytes?: number
  /** Writers sharing this client at once, each with its window of chunks. */
  writersMax?: number
  /** A user's key pair (getS3Secret's): every OM call is signed with it (a secure cluster refuses unsigned ones). */
  credentials?: UserCredentials
  /**
   * How the client reaches the OM, the SCM and datanodes: plain HTTP (default), or HTTPS
   * trusting the cluster CA, with a certificate (the S3 gateway's identity, an administrator's) or not.
   */
  transport?: Transport
}

/** Keys deleteBucketWithKeys deletes at once. */
const KEYS_DELETED_CONCURRENTLY_MAX = 16
/** Rounds of deleteBucketWithKeys, each after a key written while the last emptied the bucket. */
const DELETE_BUCKET_ROUNDS_MAX = 5

export interface PutKeyOptions {
  replication?: string
  metadata?: Record<string, string>
  /** Expected size, so that the OM preallocates enough blocks. */
  sizeBytes?: number
  onProgress?: (bytesWritten: number) => void
  /** Commit only if no key of that name exists then (atomic at the OM); else KEY_ALREADY_EXISTS. */
  ifNotExists?: boolean
  /** Commit only if the key exists then with this ETag (`*`: any), atomic at the OM; else KEY_NOT_FOUND or ETAG_MISMATCH. */
  ifMatchEtag?: string
  /** Commit only while this other key exists (atomic at the OM); else REQUIRED_KEY_NOT_FOUND. */
  whileKeyExists?: { volume: string; bucket: string; key: string }
  /** Digests of the key's bytes to compute over the writer's slabs (an S3 ETag): see KeyDigest. */
  digest?: KeyDigest
}

/**
 * A key being written, by a KeyWriter (RATIS) or an EcKeyWriter (EC): write, then close()
 * commits it (abort() drops it); park() gives back the slabs of a writer whose source went
 * quiet, slabHeldMs says how long it has held them.
 */
export interface KeyWriting {
  readonly bytesWritten: number
  readonly slabHeldMs: number
  write(bytes: Uint8Array, borrow?: boolean): Promise<void>
  close(metadata?: Record<string, string> | (() => Promise<Record<string, string>>)): Promise<KeyInfo>
  park(): Promise<void>
  abort(): Promise<void>
}

export type KeySource = Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>

export class O3Client {
  readonly om: RpcClient
  readonly scm: RpcClient | undefined
  readonly chunkSizeBytes: number
  /** The payload slabs every writer of this client shares (tests and metrics read `inUse`). */
  readonly slabs: SlabPool
  /** The buffers pooled reads (openKeyPieces with `pooled`) receive chunks into. */
  readonly readBuffers: BufferPool<SharedArrayBuffer>
  /** The slabs its EC readers rebuild stripes in around a lost replica, reused across reads. */
  readonly stripeSlabs = new StripeSlabPools(CLIENT_EC_STRIPE_SLAB_BYTES)
  /** The datanodes its reads could not reach lately, which its next reads go around. */
  readonly failedNodes = new FailedNodes()
  /** Its hedged reads in flight, bounded (key-reader.ts). */
  readonly hedges = new HedgeBudget()
  /** The leader of each pipeline as this client's writes last found it. */
  readonly pipelineLeaders = new LeaderCache()
  /** Datanodes that lagged behind this client's writes: new blocks avoid them for a while. */
  readonly slowDatanodes = new SlowDatanodes()

  constructor(readonly options: O3ClientOptions) {
    // The OM group's members (comma-separated); every call carries a caller id for its retry cache.
    const signer = options.credentials === undefined ? undefined : requestSigner(options.credentials)
    this.om = new RpcClient('OM', options.om, { callerIds: true, transport: options.transport, signer, followsLeaders: true })
    this.scm = options.scm === undefined ? undefined : new RpcClient('SCM', options.scm, { transport: options.transport, followsLeaders: true })
    this.chunkSizeBytes = options.chunkSizeBytes ?? DEFAULT_CONFIG['client.chunkSizeBytes']
    if (this.chunkSizeBytes < BYTES_PER_CHECKSUM_MIN || this.chunkSizeBytes > CHUNK_SIZE_BYTES_MAX) throw new RangeError(`chunkSizeBytes must be ${BYTES_PER_CHECKSUM_MIN}..${CHUNK_SIZE_BYTES_MAX}`)
    const slabBytes = this.chunkSizeBytes + checksumsLengthBytes('BLAKE3', this.chunkSizeBytes, BYTES_PER_CHECKSUM_MIN)
    this.slabs = new SlabPool(slabBytes, (options.writersMax ?? 8) * (CLIENT_CHUNKS_INFLIGHT_MAX + CLIENT_FLUSH_CHUNKS))
    const readBytes = this.chunkSizeBytes + 2 * BYTES_PER_CHECKSUM_DEFAULT
    this.readBuffers = BufferPool.shared(readBytes + checksumsLengthBytes('BLAKE3', readBytes, BYTES_PER_CHECKSUM_MIN), CLIENT_READ_BUFFERS)
  }

  /**
   * This client acting for `user`: every OM call of the view carries x-o3-on-behalf-of, so that
   * what it creates is the user's. The S3 gateway's, per request, once it has authenticated and
   * authorized the user (the OM honours the header only from the gateway's certificate). The
   * view shares everything else (connections, pools, caches) with this client.
   */
  as(user: string): O3Client {
    if (user.length === 0) throw new TypeError('Cannot act for a user without a name')
    const base = this.om
    const om = Object.create(base) as RpcClient
    Object.defineProperty(om, 'call', { value: <T>(method: string, args: object, options: CallOptions = {}): Promise<T> => base.call<T>(method, args, { ...options, onBehalfOf: user }) })
    const view = Object.create(this) as O3Client
    Object.defineProperty(view, 'om', { value: om })
    return view
  }

  // --- volumes and buckets --------------------------------------------------------------

  createVolume(volume: string, options: { owner?: string; quotaBytes?: number; quotaNamespace?: number; acls?: (OzoneAcl | string)[] } = {}): Promise<VolumeInfo> {
    return this.om.call('createVolume', { volume, ...options })
  }
  getVolume(volume: string): Promise<VolumeInfo> {
    return this.om.call('getVolume', { volume }, { idempotent: true })
  }
  listVolumes(options: { prefix?: string; startAfter?: string; maxCount?: number } = {}): Promise<VolumeInfo[]> {
    return this.om.call('listVolumes', options, { idempotent: true })
  }
  deleteVolume(volume: string): Promise<void> {
    return this.om.call('deleteVolume', { volume })
  }
  createBucket(volume: string, bucket: string, options: { replication?: string; checksumType?: ChecksumType; owner?: string; quotaBytes?: number; quotaNamespace?: number } = {}): Promise<BucketInfo> {
    return this.om.call('createBucket', { volume, bucket, ...options })
  }
  getBucket(volume: string, bucket: string): Promise<BucketInfo> {
    return this.om.call('getBucket', { volume, bucket }, { idempotent: true })
  }
  listBuckets(volume: string, options: { prefix?: string; startAfter?: string; maxCount?: number } = {}): Promise<BucketInfo[]> {
    return this.om.call('listBuckets', { volume, ...options }, { idempotent: true })
  }
  deleteBucket(volume: string, bucket: string): Promise<void> {
    return this.om.call('deleteBucket', { volume, bucket })
  }

  /**
   * Deletes a bucket and every key in it (an S3 bucket's multipart bucket: parts and upload
   * records), nothing when it does not exist. A key written meanwhile makes the OM refuse the
   * bucket (BUCKET_NOT_EMPTY); then another round deletes it, up to a bound.
   */
  async deleteBucketWithKeys(volume: string, bucket: string): Promise<void> {
    const gone = (err: unknown) => err instanceof O3Error && (err.code === 'BUCKET_NOT_FOUND' || err.code === 'VOLUME_NOT_FOUND')
    for (let round = 1; ; round++) {
      try {
        for (;;) {
          const page = await this.listKeys(volume, bucket)
          if (page.keys.length === 0) break
          for (let i = 0; i < page.keys.length; i += KEYS_DELETED_CONCURRENTLY_MAX) {
            await Promise.all(page.keys.slice(i, i + KEYS_DELETED_CONCURRENTLY_MAX).map((k) => this.deleteKey(volume, bucket, k.name).catch((err: unknown) => {
              if (!(err instanceof O3Error && err.code === 'KEY_NOT_FOUND')) throw err
            })))
          }
        }
        await this.deleteBucket(volume, bucket)
        return
      } catch (err) {
        if (gone(err)) return
        if (!(err instanceof O3Error && err.code === 'BUCKET_NOT_EMPTY') || round >= DELETE_BUCKET_ROUNDS_MAX) throw err
      }
    }
  }
  /** Sets (bytes, replicated; a count of buckets) or clears (-1) a volume's quotas; one left out stays. */
  setVolumeQuota(volume: string, quota: { quotaBytes?: number; quotaNamespace?: number }): Promise<VolumeInfo> {
    return this.om.call('setVolumeQuota', { volume, ...quota })
  }
  /** Sets (bytes, replicated; a count of keys) or clears (-1) a bucket's quotas; one left out stays. */
  setBucketQuota(volume: string, bucket: string, quota: { quotaBytes?: number; quotaNamespace?: number }): Promise<BucketInfo> {
    return this.om.call('setBucketQuota', { volume, bucket, ...quota })
  }
  // --- native ACLs (ozone sh ... addacl/removeacl/setacl/getacl) ----------------------------

  /** The native ACLs of a volume, bucket or key. */
  async getAcl(object: AclObject): Promise<OzoneAcl[]> {
    return (await this.om.call<{ acls: OzoneAcl[] }>('getAcl', object, { idempotent: true })).acls
  }
  /** Adds an ACL (`user:bob:rw`, or the record); its rights join an ACL of the same identity and scope. */
  addAcl(object: AclObject, acl: OzoneAcl | string): Promise<{ acls: OzoneAcl[]; changed: boolean }> {
    return this.om.call('addAcl', { ...object, acl })
  }
  /** Removes an ACL's rights from the ACL of the same identity and scope. */
  removeAcl(object: AclObject, acl: OzoneAcl | string): Promise<{ acls: OzoneAcl[]; changed: boolean }> {
    return this.om.call('removeAcl', { ...object, acl })
  }
  /** Replaces all of an object's ACLs. */
  setAcl(object: AclObject, acls: (OzoneAcl | string)[]): Promise<{ acls: OzoneAcl[]; changed: boolean }> {
    return this.om.call('setAcl', { ...object, acls })
  }

  /** Sets one field of a bucket's S3 configuration (ACL, policy, CORS, tags...), or clears it with null. */
  setBucketS3<F extends BucketS3Field>(volume: string, bucket: string, field: F, value: BucketS3Config[F] | null): Promise<BucketInfo> {
    return this.om.call('setBucketS3', { volume, bucket, field, value })
  }

  // --- keys -----------------------------------------------------------------------------

  /** Opens a key for writing; write, then close() commits it atomically (abort() drops it). */
  async openKeyWriter(volume: string, bucket: string, key: string, options: PutKeyOptions = {}): Promise<KeyWriting> {
    const session = await this.om.call<OpenKeyResult>('openKey', { volume, bucket, key, replication: options.replication, metadata: options.metadata, sizeBytes: options.sizeBytes })
    return this.keyWriterFor(session, options)
  }

  /** A writer for a key the OM has already opened (OM.s3Authenticate's `opened`): an EcKeyWriter for an EC key. */
  async keyWriterFor(session: OpenKeyResult, options: PutKeyOptions = {}): Promise<KeyWriting> {
    await initChecksums()
    const common = { om: this.om, transport: this.options.transport, session, slabs: this.slabs, metadata: options.metadata, onProgress: options.onProgress, ifNotExists: options.ifNotExists, ifMatchEtag: options.ifMatchEtag, whileKeyExists: options.whileKeyExists, digest: options.digest }
    if (session.replication.startsWith('EC/')) return new EcKeyWriter(common)
    return new KeyWriter({ ...common, chunkSizeBytes: this.chunkSizeBytes, leaders: this.pipelineLeaders, slow: this.slowDatanodes })
  }

  /** Drops an open key nobody will write (its blocks go to the deleted blocks). */
  abortOpenKey(clientId: string): Promise<void> {
    return this.om.call('abortKey', { clientId })
  }

  /** Writes a whole key from bytes or a stream of byte chunks; the key appears when all are durable. */
  async putKey(volume: string, bucket: string, key: string, source: KeySource, options: PutKeyOptions = {}): Promise<KeyInfo> {
    const sizeBytes = options.sizeBytes ?? (source instanceof Uint8Array ? source.length : undefined)
    const writer = await this.openKeyWriter(volume, bucket, key, { ...options, sizeBytes })
    try {
      if (source instanceof Uint8Array) await writer.write(source, true)
      else for await (const part of source) await writer.write(part)
    } catch (err) {
      await writer.abort()
      throw err
    }
    return writer.close()
  }

  /** A writable stream for a key; `result` settles with the committed key once the stream finishes, or fails once a destroyed one's key is aborted. */
  async createKey(volume: string, bucket: string, key: string, options: PutKeyOptions = {}): Promise<Writable & { result: Promise<KeyInfo> }> {
    const writer = await this.openKeyWriter(volume, bucket, key, options)
    let resolve!: (k: KeyInfo) => void, reject!: (e: unknown) => void
    const result = new Promise<KeyInfo>((res, rej) => { resolve = res; reject = rej })
    result.catch(() => {})
    const stream = new Writable({
      highWaterMark: this.chunkSizeBytes,
      write(chunk: Buffer, _enc, done) { writer.write(chunk).then(() => done(), done) },
      final(done) { writer.close().then((k) => { resolve(k); done() }, (e) => { reject(e); done(e) }) },
      // `result` fails once the open key is aborted, so that a caller leaving at it (Ctrl-C) leaves nothing open.
      destroy(err, done) { if (err) void writer.abort().finally(() => reject(err)); done(err) },
    })
    // Callers that await `result` need not listen for 'error' too; pipeline() still sees it.
    stream.on('error', () => {})
    return Object.assign(stream, { result })
  }

  private readerOptions(buffers: BufferPool<SharedArrayBuffer> | undefined): KeyReaderOptions {
    return { scm: this.scm, transport: this.options.transport, requestBytes: this.chunkSizeBytes, buffers, stripeSlabs: this.stripeSlabs, failedNodes: this.failedNodes, hedges: this.hedges }
  }

  headKey(volume: string, bucket: string, key: string): Promise<KeyInfo> {
    return this.om.call('lookupKey', { volume, bucket, key }, { idempotent: true })
  }

  /** Looks the key up, then streams the range (the whole key by default). */
  async readKey(volume: string, bucket: string, key: string, range?: { offset?: number; length?: number }): Promise<Readable & { key: KeyInfo }> {
    const info = await this.headKey(volume, bucket, key)
    return Object.assign(this.readKeyInfo(info, range), { key: info })
  }

  /**
   * Streams a range of an already looked-up key (saves the S3 gateway a second lookup). Its
   * pieces are the consumer's to keep (getKey() kept them all; a Readable's consumer owes no
   * hand-back), so each chunk, received into a pooled buffer and verified in the worker pool,
   * is copied out into a buffer of its own and the pooled one given back at once. A consumer
   * that hands pieces back uses openKeyPieces() with `pooled` instead, which copies nothing.
   */
  readKeyInfo(info: KeyInfo, range?: { offset?: number; length?: number }): Readable {
    const r = resolveRange(info.size, range)
    const buffers = this.readBuffers
    const pieces = readKeyRange(info, r, this.readerOptions(buffers))
    async function* owned(): AsyncGenerator<Buffer> {
      for await (const piece of pieces) {
        // Measured (bench/verify-inline.ts): a fresh buffer per chunk moved to the worker and
        // back costs more CPU than a pooled one plus this copy.
        const out = Buffer.allocUnsafe(piece.length)
        copyBytes(out, 0, piece)
        buffers.releaseIfMine(piece.buffer)
        yield out
      }
    }
    return Readable.from(owned(), { objectMode: false, highWaterMark: this.chunkSizeBytes })
  }

  /**
   * Streams a range of a looked-up key like readKeyInfo, but settles only once the range's
   * first piece has been read: a key no replica can serve fails here, with the reader's error,
   * before the caller has committed to an answer (the S3 gateway's status line). Later pieces
   * can still fail; the stream then errors.
   */
  async openKeyReader(info: KeyInfo, range?: { offset?: number; length?: number }): Promise<Readable> {
    return Readable.from(await this.openKeyPieces(info, range), { objectMode: false, highWaterMark: this.chunkSizeBytes })
  }

  /**
   * openKeyReader's pieces themselves, a chunk's worth each, for a consumer that hands them on
   * as they are: no stream between copies or merges them. With `pooled`, they are views of
   * `readBuffers`, and the consumer gives each back (readBuffers.releaseIfMine(piece.buffer))
   * once done with it; ending the iteration early gives back those read ahead.
   */
  async openKeyPieces(info: KeyInfo, range?: { offset?: number; length?: number }, options: { pooled?: boolean } = {}): Promise<Pieces> {
    return allPieces(await this.startKeyPieces(info, range, options), options.pooled === true ? this.readBuffers : undefined)
  }

  /**
   * openKeyPieces as its first piece and the rest (the S3 gateway's response body: a small
   * object's one piece is the body itself). The first piece, when pooled, is the caller's to
   * give back; so are the rest's, as openKeyPieces'.
   */
  async startKeyPieces(info: KeyInfo, range?: { offset?: number; length?: number }, options: { pooled?: boolean } = {}): Promise<StartedRange> {
    return startKeyRange(info, resolveRange(info.size, range), this.readerOptions(options.pooled === true ? this.readBuffers : undefined))
  }

  /**
   * Reads a whole key (or range) into memory: for small keys and tests. Chunks land in pooled
   * buffers and are copied once into the result, each given back as soon as it is copied.
   */
  async getKey(volume: string, bucket: string, key: string, range?: { offset?: number; length?: number }): Promise<Buffer> {
    const info = await this.headKey(volume, bucket, key)
    const r = resolveRange(info.size, range)
    const out = Buffer.allocUnsafe(r.length)
    let at = 0
    for await (const piece of readKeyRange(info, r, this.readerOptions(this.readBuffers))) {
      copyBytes(out, at, piece)
      at += piece.length
      this.readBuffers.releaseIfMine(piece.buffer)
    }
    if (at !== r.length) throw new O3Error('IO_ERROR', `Cannot read key ${volume}/${bucket}/${key}: ${at} of ${r.length} bytes came`)
    return out
  }

  listKeys(volume: string, bucket: string, options: { prefix?: string; startAfter?: string; maxKeys?: number } = {}): Promise<ListKeysResult> {
    return this.om.call('listKeys', { volume, bucket, ...options }, { idempotent: true })
  }
  /**
   * Deletes a key; with a condition only if the key, when the OM applies the delete, has that
   * ETag (`*`: any; else ETAG_MISMATCH), size or Last-Modified second (else KEY_CONDITION_FAILED).
   * A missing key is KEY_NOT_FOUND either way.
   */
  deleteKey(volume: string, bucket: string, key: string, condition: Partial<DeleteCondition> = {}): Promise<void> {
    return this.om.call('deleteKey', { volume, bucket, key, ...condition })
  }
  renameKey(volume: string, bucket: string, key: string, toKey: string): Promise<void> {
    return this.om.call('renameKey', { volume, bucket, key, toKey })
  }

  /**
   * Commits `key` from the blocks of committed `parts`, which disappear (no bytes move): S3
   * CompleteMultipartUpload, or a key listed as its own part to replace its metadata. With
   * `asParts`, each listed key is recorded as one part of the new key (KeyInfo.parts);
   * otherwise the new key keeps the part lists of the keys it is made of. With `keepTimes`
   * (the key as its own only part) the key keeps its creation and modification times.
   */
  commitMultipartKey(volume: string, bucket: string, key: string, parts: { volume: string; bucket: string; key: string }[], metadata: Record<string, string>, options: { asParts?: boolean; keepTimes?: boolean } & Pick<PutKeyOptions, 'ifNotExists' | 'ifMatchEtag' | 'whileKeyExists'> = {}): Promise<KeyInfo> {
    return this.om.call('commitMultipartKey', { volume, bucket, key, parts, metadata, asParts: options.asParts, keepTimes: options.keepTimes, ifNotExists: options.ifNotExists, ifMatchEtag: options.ifMatchEtag, whileKeyExists: options.whileKeyExists })
  }

  // --- S3 secrets -----------------------------------------------------------------------

  getS3Secret(user: string): Promise<S3Secret> {
    return this.om.call('getS3Secret', { user })
  }
  revokeS3Secret(user: string): Promise<{ revoked: number }> {
    return this.om.call('revokeS3Secret', { user })
  }
  lookupS3Secret(accessKey: string): Promise<S3Secret> {
    return this.om.call('lookupS3Secret', { accessKey }, { idempotent: true })
  }
  /**
   * Has the OM verify an S3 request's signature with the access key's secret (which stays in
   * the OM) and, in the same call, read the bucket and key and open `open` (S3AuthResult).
   * Without an access key (an anonymous request) it only reads the bucket and key.
   * Retried like a read only when it opens nothing: a retried open would leave a second open key.
   */
  s3Authenticate(args: { accessKey?: string; proof: S3SignatureProof | null; signingKey?: boolean; volume?: string; bucket?: string; key?: string; open?: S3OpenIntent }): Promise<S3AuthResult> {
    return this.om.call('s3Authenticate', args, { idempotent: args.open === undefined })
  }

  /** Calls an SCM admin RPC (datanode, pipeline, container and safemode queries). */
  admin<T>(method: string, args: object = {}): Promise<T> {
    if (this.scm === undefined) throw new O3Error('INVALID_ARGUMENT', `Cannot call SCM.${method}: no SCM address given`)
    return this.scm.call<T>(method, args, { idempotent: true })
  }
}
