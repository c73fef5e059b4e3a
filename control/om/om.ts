/** @module
 * The Ozone Manager service: the namespace of volumes, buckets and keys in one LMDB
 * environment (Ozone's table names), block allocation through the SCM in batches, atomic key
 * commits, expiry of abandoned open keys and hand-off of deleted blocks to the SCM.
 */
import { join } from 'node:path'
import { randomBytes, randomUUID } from 'node:crypto'
import type { Database, RootDatabase } from 'lmdb'
import { assert } from '../../core/assert.ts'
import type { O3Config } from '../../core/config.ts'
import { openMetadataDb } from '../../core/metadata-db.ts'
import { O3Error } from '../../core/errors.ts'
import { serveApp, type Listener } from '../../core/http/serve.ts'
import { KEY_METADATA_BYTES_MAX, KEY_PARTS_COUNT_MAX, LIST_KEYS_COUNT_MAX, LIST_VOLUMES_COUNT_MAX, OM_BLOCK_BATCH_COUNT, OPEN_KEY_PREALLOCATED_BLOCKS_MAX } from '../../core/limits.ts'
import { log } from '../../core/log.ts'
import { ServiceMetrics } from '../../core/metrics.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { createServiceApp } from '../../core/rpc/server.ts'
import {
  assertWritable, blockIdString, formatReplication, parseChecksumType, parseId, parseReplication,
  type AllocatedBlock, type BlockId, type ContainerId, type ContainerState, type DatanodeDetails, type ExcludeList, type KeyLocation, type Pipeline,
} from '../../core/wire.ts'
import { checkBucketName, checkKeyName, checkVolumeName } from './names.ts'
import { checkProof, verifyProof } from '../../core/s3-signature.ts'
import {
  appendParts, partCount, type BucketInfo, type CommittedBlock, type KeyInfo, type ListKeysResult, type LookupPart, type OpenKeyInfo, type OpenKeyResult, type PartRun, type S3AuthResult, type S3OpenIntent, type S3Secret, type VolumeInfo,
} from '../../core/om-wire.ts'

const LOCATION_CACHE_TTL_MS = 2000
const LOCATION_CACHE_COUNT_MAX = 100_000

interface DeletedEntry { key: string; blocks: BlockId[]; deletedAtMs: number }
type Locations = Record<string, { state: ContainerState; pipeline: Pipeline | null; replicas: (DatanodeDetails & { state: ContainerState })[] }>

export interface OmOptions {
  config: O3Config
  port?: number
  scmAddress: string
}

const enc = new TextEncoder()

const keyPath = (v: string, b: string, k: string) => enc.encode(`${v}/${b}/${k}`)

export class OzoneManager {
  readonly metrics = new ServiceMetrics('om')
  private readonly config: O3Config
  private readonly scm: RpcClient
  private db!: RootDatabase
  private meta!: Database<unknown, string>
  private volumes!: Database<VolumeInfo, string>
  private buckets!: Database<BucketInfo, string>
  private keys!: Database<KeyInfo, Uint8Array>
  private openKeys!: Database<OpenKeyInfo, string>
  private deleted!: Database<DeletedEntry, number>
  /** S3 credentials by access key (Ozone's S3SecretTable). */
  private s3Secrets!: Database<S3Secret, string>
  private listener?: Listener
  private timers: ReturnType<typeof setInterval>[] = []
  /** The background task running now (one at a time), awaited by stop(). */
  private background: Promise<unknown> | undefined
  private readonly blockCache = new Map<string, AllocatedBlock[]>()
  /** Container locations from the SCM, kept briefly: readers fall back between replicas anyway. */
  private readonly locationCache = new Map<ContainerId, { loc: Locations[string]; expiresAtMs: number }>()
  private nextObjectId = 1
  private nextDeletedId = 1

  constructor(private readonly options: OmOptions) {
    this.config = options.config
    this.scm = new RpcClient('SCM', options.scmAddress)
  }

  get port(): number {
    assert(this.listener !== undefined, 'OM not started')
    return this.listener.port
  }

  get address(): string {
    return `${this.config.host}:${this.port}`
  }

  async start(): Promise<void> {
    this.db = openMetadataDb(join(this.config['om.dir'], 'om.db'), this.config)
    this.meta = this.db.openDB({ name: 'meta' })
    this.volumes = this.db.openDB({ name: 'volumeTable' })
    this.buckets = this.db.openDB({ name: 'bucketTable' })
    this.keys = this.db.openDB({ name: 'keyTable', keyEncoding: 'binary' })
    this.openKeys = this.db.openDB({ name: 'openKeyTable' })
    this.deleted = this.db.openDB({ name: 'deletedTable', keyEncoding: 'uint32' })
    this.s3Secrets = this.db.openDB({ name: 's3SecretTable' })
    this.nextObjectId = ((this.meta.get('objectId') as number | undefined) ?? 0) + 1
    for (const { key } of this.deleted.getRange({ reverse: true, limit: 1 })) this.nextDeletedId = key + 1

    this.metrics.gauge('open_keys', 'Keys being written', () => this.openKeys.getCount())
    this.metrics.gauge('keys', 'Committed keys', () => this.keys.getCount())
    this.metrics.gauge('volumes', 'Volumes', () => this.volumes.getCount())
    this.metrics.gauge('buckets', 'Buckets', () => this.buckets.getCount())
    this.metrics.gauge('deleted_pending', 'Deleted-key entries whose blocks await the SCM', () => this.deleted.getCount())

    const app = createServiceApp({
      service: 'OM',
      metrics: this.metrics,
      health: () => ({}),
      handlers: {
        createVolume: (a) => this.createVolume(a),
        getVolume: (a) => this.getVolume(checkVolumeName(a.volume)),
        listVolumes: (a) => this.listVolumes(a),
        deleteVolume: (a) => this.deleteVolume(a),
        createBucket: (a) => this.createBucket(a),
        getBucket: (a) => this.getBucket(checkVolumeName(a.volume), checkBucketName(a.bucket)),
        listBuckets: (a) => this.listBuckets(a),
        deleteBucket: (a) => this.deleteBucket(a),
        openKey: (a) => this.openKey(a),
        allocateBlock: (a) => this.allocateBlock(a),
        commitKey: (a) => this.commitKey(a),
        abortKey: (a) => this.abortKey(a),
        lookupKey: (a) => this.lookupKey(a),
        listKeys: (a) => this.listKeys(a),
        deleteKey: (a) => this.deleteKey(a),
        renameKey: (a) => this.renameKey(a),
        commitMultipartKey: (a) => this.commitMultipartKey(a),
        getS3Secret: (a) => this.getS3Secret(a),
        revokeS3Secret: (a) => this.revokeS3Secret(a),
        lookupS3Secret: (a) => this.lookupS3Secret(a),
        s3Authenticate: (a) => this.s3Authenticate(a),
      },
    })
    this.listener = await serveApp(app, { host: this.config.host, port: this.options.port ?? this.config['om.port'], name: 'OM' })
    const every = (ms: number, run: () => Promise<unknown>) => {
      const t = setInterval(() => {
        if (this.background !== undefined) return
        this.background = run().catch((e) => log.debug(`OM background: ${(e as Error).message}`)).finally(() => { this.background = undefined })
      }, ms)
      t.unref()
      this.timers.push(t)
    }
    every(this.config['om.openKey.checkIntervalMs'], () => this.expireOpenKeys())
    every(2000, () => this.purgeDeletedBlocks())
    log.info(`OM listening on ${this.address}`)
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t)
    await this.listener?.close()
    await this.background
    await this.db?.close()
  }

  // --- volumes and buckets --------------------------------------------------------------

  private getVolume(name: string): VolumeInfo {
    const v = this.volumes.get(name)
    if (v === undefined) throw new O3Error('VOLUME_NOT_FOUND', `Volume ${name} not found`)
    return v
  }

  private getBucket(volume: string, name: string): BucketInfo {
    this.getVolume(volume)
    const b = this.buckets.get(`${volume}/${name}`)
    if (b === undefined) throw new O3Error('BUCKET_NOT_FOUND', `Bucket ${volume}/${name} not found`)
    return b
  }

  private async createVolume(a: { volume?: unknown; owner?: unknown; quotaBytes?: unknown }): Promise<VolumeInfo> {
    const name = checkVolumeName(a.volume)
    const now = Date.now()
    const owner = typeof a.owner === 'string' && a.owner.length > 0 ? a.owner : 'o3'
    const info: VolumeInfo = { name, owner, admin: owner, createdAtMs: now, modifiedAtMs: now, quotaBytes: typeof a.quotaBytes === 'number' ? a.quotaBytes : -1, quotaNamespace: -1 }
    const created = await this.volumes.ifNoExists(name, () => { this.volumes.put(name, info) })
    if (!created) throw new O3Error('VOLUME_ALREADY_EXISTS', `Volume ${name} already exists`)
    return info
  }

  private listVolumes(a: { prefix?: unknown; startAfter?: unknown; maxCount?: unknown }): VolumeInfo[] {
    return listByName(this.volumes, '', a)
  }

  private async deleteVolume(a: { volume?: unknown }): Promise<void> {
    const name = checkVolumeName(a.volume)
    this.getVolume(name)
    for (const { key } of this.buckets.getRange({ start: `${name}/`, limit: 1 })) {
      if (key.startsWith(`${name}/`)) throw new O3Error('VOLUME_NOT_EMPTY', `Cannot delete volume ${name}: it has buckets`)
    }
    await this.volumes.remove(name)
  }

  private async createBucket(a: { volume?: unknown; bucket?: unknown; owner?: unknown; replication?: unknown; checksumType?: unknown }): Promise<BucketInfo> {
    const volume = checkVolumeName(a.volume)
    const name = checkBucketName(a.bucket)
    const v = this.getVolume(volume)
    const replication = formatReplication(parseReplication(typeof a.replication === 'string' ? a.replication : this.config['client.replication']))
    const checksumType = parseChecksumType(typeof a.checksumType === 'string' ? a.checksumType : this.config['client.checksumType'])
    const now = Date.now()
    const info: BucketInfo = {
      volume, name, owner: typeof a.owner === 'string' && a.owner.length > 0 ? a.owner : v.owner, layout: 'OBJECT_STORE', replication, checksumType,
      createdAtMs: now, modifiedAtMs: now, quotaBytes: -1, quotaNamespace: -1, usedBytes: 0, keyCount: 0,
    }
    const created = await this.buckets.ifNoExists(`${volume}/${name}`, () => { this.buckets.put(`${volume}/${name}`, info) })
    if (!created) throw new O3Error('BUCKET_ALREADY_EXISTS', `Bucket ${volume}/${name} already exists`)
    return info
  }

  private listBuckets(a: { volume?: unknown; prefix?: unknown; startAfter?: unknown; maxCount?: unknown }): BucketInfo[] {
    const volume = checkVolumeName(a.volume)
    this.getVolume(volume)
    return listByName(this.buckets, `${volume}/`, a)
  }

  private async deleteBucket(a: { volume?: unknown; bucket?: unknown }): Promise<void> {
    const volume = checkVolumeName(a.volume)
    const name = checkBucketName(a.bucket)
    this.getBucket(volume, name)
    const prefix = keyPath(volume, name, '')
    for (const { key } of this.keys.getRange({ start: prefix, limit: 1 })) {
      if (startsWith(key, prefix)) throw new O3Error('BUCKET_NOT_EMPTY', `Cannot delete bucket ${volume}/${name}: it holds keys`)
    }
    await this.buckets.remove(`${volume}/${name}`)
  }

  // --- keys -----------------------------------------------------------------------------

  /** Blocks from the SCM: from the batch cache when nothing is excluded, else asked afresh. */
  private async blocksFor(replication: string, count: number, exclude?: ExcludeList): Promise<AllocatedBlock[]> {
    const excluding = exclude !== undefined && (exclude.datanodes.length + exclude.containers.length + exclude.pipelines.length) > 0
    if (excluding) return this.scm.call<AllocatedBlock[]>('allocateBlock', { replication, count, excludeList: exclude, sizeBytes: this.config['scm.block.sizeBytes'] })
    const cache = this.blockCache.get(replication) ?? []
    this.blockCache.set(replication, cache)
    while (cache.length < count) {
      const batch = await this.scm.call<AllocatedBlock[]>('allocateBlock', { replication, count: Math.max(OM_BLOCK_BATCH_COUNT, count - cache.length), sizeBytes: this.config['scm.block.sizeBytes'] })
      cache.push(...batch)
    }
    return cache.splice(0, count)
  }

  private async openKey(a: { volume?: unknown; bucket?: unknown; key?: unknown; sizeBytes?: unknown; replication?: unknown; metadata?: unknown }): Promise<OpenKeyResult> {
    const volume = checkVolumeName(a.volume)
    const bucketName = checkBucketName(a.bucket)
    const name = checkKeyName(a.key)
    const bucket = this.getBucket(volume, bucketName)
    const parsed = parseReplication(typeof a.replication === 'string' ? a.replication : bucket.replication)
    assertWritable(parsed)
    const replication = formatReplication(parsed)
    const metadata = checkMetadata(a.metadata)
    const blockSizeBytes = this.config['scm.block.sizeBytes']
    const size = a.sizeBytes === undefined || a.sizeBytes === null ? 0 : parseId<number>(a.sizeBytes, 'sizeBytes')
    const count = Math.min(OPEN_KEY_PREALLOCATED_BLOCKS_MAX, Math.max(1, Math.ceil(size / blockSizeBytes)))
    const blocks = await this.blocksFor(replication, count)
    const info: OpenKeyInfo = {
      clientId: randomUUID(), volume, bucket: bucketName, name, replication, checksumType: bucket.checksumType,
      bytesPerChecksum: this.config['client.bytesPerChecksum'], blockSizeBytes, metadata, createdAtMs: Date.now(), allocated: blocks,
    }
    await this.openKeys.put(info.clientId, info)
    return { clientId: info.clientId, replication, checksumType: info.checksumType, bytesPerChecksum: info.bytesPerChecksum, blockSizeBytes, blocks }
  }

  private openKeyOf(clientId: unknown): OpenKeyInfo {
    if (typeof clientId !== 'string') throw new O3Error('INVALID_ARGUMENT', 'clientId must be a string')
    const info = this.openKeys.get(clientId)
    if (info === undefined) throw new O3Error('OPEN_KEY_NOT_FOUND', `Open key ${clientId} not found (expired, committed or aborted)`)
    return info
  }

  private async allocateBlock(a: { clientId?: unknown; excludeList?: Partial<ExcludeList> }): Promise<AllocatedBlock> {
    const info = this.openKeyOf(a.clientId)
    const exclude: ExcludeList = { datanodes: a.excludeList?.datanodes ?? [], containers: a.excludeList?.containers ?? [], pipelines: a.excludeList?.pipelines ?? [] }
    const [block] = await this.blocksFor(info.replication, 1, exclude)
    const kept = await this.db.transaction(() => {
      const current = this.openKeys.get(info.clientId)
      // The key expired or was aborted meanwhile: nobody will write this block, but it goes
      // to the deleted blocks like the key's others rather than being forgotten.
      if (current === undefined) { this.recordDeleted(`${info.volume}/${info.bucket}/${info.name}`, [block.blockId]); return false }
      current.allocated.push(block)
      this.openKeys.put(info.clientId, current)
      return true
    })
    if (!kept) throw new O3Error('OPEN_KEY_NOT_FOUND', `Cannot allocate a block for key ${info.name}: open key expired or aborted meanwhile`)
    return block
  }

  /**
   * Makes an open key visible. With `ifNotExists`, the commit fails with KEY_ALREADY_EXISTS
   * when the key exists by then: checked inside the write transaction, so of two writers
   * racing to create one key exactly one wins (S3's `If-None-Match: *`). The loser's open key
   * stays open; its writer aborts it, which deletes its blocks.
   */
  private async commitKey(a: { clientId?: unknown; blocks?: unknown; size?: unknown; metadata?: unknown; ifNotExists?: unknown }): Promise<KeyInfo> {
    const info = this.openKeyOf(a.clientId)
    if (a.ifNotExists !== undefined && typeof a.ifNotExists !== 'boolean') throw new O3Error('INVALID_ARGUMENT', 'Cannot commit key: ifNotExists must be a boolean')
    if (!Array.isArray(a.blocks)) throw new O3Error('INVALID_ARGUMENT', 'Cannot commit key: blocks must be an array')
    const size = parseId<number>(a.size, 'size')
    const allocated = new Map(info.allocated.map((b) => [blockIdString(b.blockId), b]))
    const locations: KeyLocation[] = []
    let offset = 0
    for (const raw of a.blocks as CommittedBlock[]) {
      const id = { containerId: parseId(raw?.blockId?.containerId, 'containerId'), localId: parseId(raw?.blockId?.localId, 'localId') } as BlockId
      const length = parseId<number>(raw.length, 'length')
      const block = allocated.get(blockIdString(id))
      if (block === undefined) throw new O3Error('INVALID_ARGUMENT', `Cannot commit key ${info.name}: block ${blockIdString(id)} was not allocated to it`)
      if (length > info.blockSizeBytes) throw new O3Error('INVALID_ARGUMENT', `Cannot commit key ${info.name}: block ${blockIdString(id)} longer than a block`)
      if (length === 0) continue
      locations.push({ blockId: id, offset, length, pipeline: block.pipeline })
      offset += length
    }
    if (offset !== size) throw new O3Error('INVALID_ARGUMENT', `Cannot commit key ${info.name}: blocks hold ${offset} bytes, size says ${size}`)
    const metadata = a.metadata === undefined ? info.metadata : checkMetadata(a.metadata)
    const path = keyPath(info.volume, info.bucket, info.name)
    const now = Date.now()
    const objectId = this.nextObjectId++
    const key: KeyInfo = {
      volume: info.volume, bucket: info.bucket, name: info.name, size, replication: info.replication, checksumType: info.checksumType,
      bytesPerChecksum: info.bytesPerChecksum, createdAtMs: now, modifiedAtMs: now, locations, metadata, objectId,
    }
    await this.db.transaction(() => {
      const open = this.openKeys.get(info.clientId)
      if (open === undefined) throw new O3Error('OPEN_KEY_NOT_FOUND', `Cannot commit key ${info.name}: open key expired or committed meanwhile`)
      const bucket = this.buckets.get(`${info.volume}/${info.bucket}`)
      if (bucket === undefined) throw new O3Error('BUCKET_NOT_FOUND', `Cannot commit key ${info.name}: bucket ${info.volume}/${info.bucket} was deleted`)
      const previous = this.keys.get(path)
      if (previous !== undefined && a.ifNotExists === true) throw new O3Error('KEY_ALREADY_EXISTS', `Cannot commit key ${info.volume}/${info.bucket}/${info.name}: it exists and ifNotExists was set`)
      if (previous !== undefined) this.recordDeleted(`${info.volume}/${info.bucket}/${info.name}`, previous.locations.map((l) => l.blockId))
      // Blocks allocated to the key but not in it: preallocated ones never used, and those a
      // writer gave up after a datanode failure (the exclude-list rewrite), which may hold
      // chunks on the datanodes that stayed. Ozone's OMKeyCommitRequest sends them to the
      // deleted table too. Each block was allocated to this open key alone.
      const committed = new Set(locations.map((l) => blockIdString(l.blockId)))
      this.recordDeleted(`${info.volume}/${info.bucket}/${info.name}`, open.allocated.map((b) => b.blockId).filter((id) => !committed.has(blockIdString(id))))
      this.keys.put(path, key)
      this.openKeys.remove(info.clientId)
      this.meta.put('objectId', objectId)
      this.buckets.put(`${info.volume}/${info.bucket}`, { ...bucket, usedBytes: bucket.usedBytes + size - (previous?.size ?? 0), keyCount: bucket.keyCount + (previous === undefined ? 1 : 0) })
    })
    return key
  }

  /** Drops an open key (a failed or cancelled write); the blocks it wrote are deleted. */
  private async abortKey(a: { clientId?: unknown }): Promise<void> {
    const info = this.openKeyOf(a.clientId)
    await this.db.transaction(() => {
      // Read again inside the transaction: a commit that won the race owns the blocks now,
      // and a block allocated meanwhile is in the record, not in `info`.
      const current = this.openKeys.get(info.clientId)
      if (current === undefined) return
      this.recordDeleted(`${info.volume}/${info.bucket}/${info.name}`, current.allocated.map((b) => b.blockId))
      this.openKeys.remove(info.clientId)
    })
  }

  /** Inside a write transaction: remembers blocks the SCM must delete. */
  private recordDeleted(key: string, blocks: BlockId[]): void {
    if (blocks.length === 0) return
    this.deleted.put(this.nextDeletedId++, { key, blocks, deletedAtMs: Date.now() })
  }

  private getKey(a: { volume?: unknown; bucket?: unknown; key?: unknown }): KeyInfo {
    const volume = checkVolumeName(a.volume)
    const bucket = checkBucketName(a.bucket)
    const name = checkKeyName(a.key)
    const key = this.keys.get(keyPath(volume, bucket, name))
    if (key === undefined) {
      this.getBucket(volume, bucket)
      throw new O3Error('KEY_NOT_FOUND', `Key ${volume}/${bucket}/${name} not found`)
    }
    return key
  }

  /** A key with its blocks' current locations from the SCM (closed containers list their replicas). */
  private async lookupKey(a: { volume?: unknown; bucket?: unknown; key?: unknown }): Promise<KeyInfo> {
    const key = this.getKey(a)
    if (key.locations.length === 0) return key
    const now = Date.now()
    const missing = [...new Set(key.locations.map((l) => l.blockId.containerId))].filter((id) => (this.locationCache.get(id)?.expiresAtMs ?? 0) <= now)
    if (missing.length > 0) {
      try {
        const found = await this.scm.call<Locations>('getContainerLocations', { containerIds: missing }, { idempotent: true, timeoutMs: 5000 })
        if (this.locationCache.size > LOCATION_CACHE_COUNT_MAX) this.locationCache.clear()
        for (const [id, loc] of Object.entries(found)) this.locationCache.set(Number(id) as ContainerId, { loc, expiresAtMs: now + LOCATION_CACHE_TTL_MS })
      } catch (err) {
        log.warn(`OM: cannot refresh locations from SCM, using recorded pipelines: ${(err as Error).message}`)
      }
    }
    return { ...key, locations: key.locations.map((l) => ({ ...l, pipeline: refreshPipeline(l.pipeline, this.locationCache.get(l.blockId.containerId)?.loc) })) }
  }

  private listKeys(a: { volume?: unknown; bucket?: unknown; prefix?: unknown; startAfter?: unknown; maxKeys?: unknown }): ListKeysResult {
    const volume = checkVolumeName(a.volume)
    const bucket = checkBucketName(a.bucket)
    this.getBucket(volume, bucket)
    const prefix = typeof a.prefix === 'string' ? a.prefix : ''
    const max = a.maxKeys === undefined ? LIST_KEYS_COUNT_MAX : Math.min(LIST_KEYS_COUNT_MAX, parseId<number>(a.maxKeys, 'maxKeys'))
    const full = keyPath(volume, bucket, prefix)
    let start = full
    if (typeof a.startAfter === 'string' && a.startAfter.length > 0) {
      const after = keyPath(volume, bucket, a.startAfter)
      const next = new Uint8Array(after.length + 1)
      next.set(after)
      if (Buffer.compare(next, start) > 0) start = next
    }
    const keys: KeyInfo[] = []
    let truncated = false
    for (const { key, value } of this.keys.getRange({ start })) {
      if (!startsWith(key, full)) break
      if (keys.length >= max) { truncated = true; break }
      keys.push(value)
    }
    assert(keys.every((k) => k.volume === volume && k.bucket === bucket), 'listKeys left its bucket')
    return { keys, truncated, nextStartAfter: truncated && keys.length > 0 ? keys[keys.length - 1].name : null }
  }

  private async deleteKey(a: { volume?: unknown; bucket?: unknown; key?: unknown }): Promise<void> {
    const key = this.getKey(a)
    const path = keyPath(key.volume, key.bucket, key.name)
    await this.db.transaction(() => {
      const current = this.keys.get(path)
      if (current === undefined) return
      this.recordDeleted(`${key.volume}/${key.bucket}/${key.name}`, current.locations.map((l) => l.blockId))
      this.keys.remove(path)
      const bucket = this.buckets.get(`${key.volume}/${key.bucket}`)
      if (bucket !== undefined) this.buckets.put(`${key.volume}/${key.bucket}`, { ...bucket, usedBytes: bucket.usedBytes - current.size, keyCount: bucket.keyCount - 1 })
    })
  }

  private async renameKey(a: { volume?: unknown; bucket?: unknown; key?: unknown; toKey?: unknown }): Promise<void> {
    const key = this.getKey(a)
    const to = checkKeyName(a.toKey)
    const from = keyPath(key.volume, key.bucket, key.name)
    const target = keyPath(key.volume, key.bucket, to)
    await this.db.transaction(() => {
      if (this.keys.get(target) !== undefined) throw new O3Error('KEY_ALREADY_EXISTS', `Cannot rename to ${to}: key exists`)
      const current = this.keys.get(from)
      if (current === undefined) throw new O3Error('KEY_NOT_FOUND', `Key ${key.name} not found`)
      this.keys.remove(from)
      this.keys.put(target, { ...current, name: to, modifiedAtMs: Date.now() })
    })
  }

  /**
   * Commits `key` as the concatenation of the blocks of committed `parts` (an S3 multipart
   * upload's parts, or the key itself to rewrite its metadata), in one transaction. The parts
   * are removed without deleting their blocks: completing an upload moves no bytes.
   * With `asParts` (CompleteMultipartUpload), each listed key becomes one part of the new
   * key's part list (KeyInfo.parts), which GET ?partNumber=N reads; without it the new key
   * keeps the part lists of the keys it is made of (a metadata rewrite keeps the layout), or
   * has none if any of them has none.
   */
  private async commitMultipartKey(a: { volume?: unknown; bucket?: unknown; key?: unknown; parts?: unknown; metadata?: unknown; asParts?: unknown }): Promise<KeyInfo> {
    const volume = checkVolumeName(a.volume)
    const bucketName = checkBucketName(a.bucket)
    const name = checkKeyName(a.key)
    const metadata = checkMetadata(a.metadata)
    if (!Array.isArray(a.parts) || a.parts.length === 0) throw new O3Error('INVALID_ARGUMENT', `Cannot commit key ${name}: parts must be a non-empty array`)
    if (a.parts.length > KEY_PARTS_COUNT_MAX) throw new O3Error('INVALID_ARGUMENT', `Cannot commit key ${name}: ${a.parts.length} parts exceed ${KEY_PARTS_COUNT_MAX}`)
    if (a.asParts !== undefined && typeof a.asParts !== 'boolean') throw new O3Error('INVALID_ARGUMENT', `Cannot commit key ${name}: asParts must be a boolean`)
    const asParts = a.asParts === true
    const parts = (a.parts as { volume?: unknown; bucket?: unknown; key?: unknown }[]).map((p) => ({ volume: checkVolumeName(p?.volume), bucket: checkBucketName(p?.bucket), key: checkKeyName(p?.key) }))
    const target = this.getBucket(volume, bucketName)
    const path = keyPath(volume, bucketName, name)
    return this.db.transaction(() => {
      const locations: KeyLocation[] = []
      const reused = new Set<string>()
      let size = 0
      let first: KeyInfo | undefined
      // The parts by name, each once (an empty part may be listed twice: it has no blocks to repeat).
      const found = new Map<string, { path: Uint8Array; part: KeyInfo }>()
      let runs: PartRun[] | undefined = []
      for (const p of parts) {
        const partPath = keyPath(p.volume, p.bucket, p.key)
        const part = this.keys.get(partPath)
        if (part === undefined) throw new O3Error('KEY_NOT_FOUND', `Cannot commit key ${name}: part ${p.volume}/${p.bucket}/${p.key} not found`)
        found.set(`${p.volume}/${p.bucket}/${p.key}`, { path: partPath, part })
        first ??= part
        if (asParts) appendParts(runs!, part.size)
        else if (runs !== undefined && part.parts !== undefined) for (const r of part.parts) appendParts(runs, r.sizeBytes, r.count)
        else runs = undefined
        for (const l of part.locations) {
          const id = blockIdString(l.blockId)
          if (reused.has(id)) throw new O3Error('INVALID_ARGUMENT', `Cannot commit key ${name}: block ${id} listed twice`)
          reused.add(id)
          locations.push({ ...l, offset: size })
          size += l.length
        }
      }
      assert(first !== undefined, 'no parts')
      if (runs !== undefined && partCount(runs) > KEY_PARTS_COUNT_MAX) throw new O3Error('INVALID_ARGUMENT', `Cannot commit key ${name}: ${partCount(runs)} parts exceed ${KEY_PARTS_COUNT_MAX}`)
      assert(runs === undefined || runs.reduce((n, r) => n + r.sizeBytes * r.count, 0) === size, 'parts do not add up to the key')
      const previous = this.keys.get(path)
      if (previous !== undefined) {
        const dropped = previous.locations.map((l) => l.blockId).filter((id) => !reused.has(blockIdString(id)))
        this.recordDeleted(`${volume}/${bucketName}/${name}`, dropped)
      }
      const counts = new Map<string, { bytes: number; keys: number }>()
      const count = (v: string, b: string, bytes: number, keys: number) => {
        const c = counts.get(`${v}/${b}`) ?? { bytes: 0, keys: 0 }
        counts.set(`${v}/${b}`, { bytes: c.bytes + bytes, keys: c.keys + keys })
      }
      for (const { path: partPath, part } of found.values()) {
        this.keys.remove(partPath)
        count(part.volume, part.bucket, -part.size, -1)
      }
      // A replaced key is counted out unless it was one of the parts (counted out just above).
      if (previous !== undefined && !found.has(`${volume}/${bucketName}/${name}`)) count(volume, bucketName, -previous.size, -1)
      const now = Date.now()
      const objectId = this.nextObjectId++
      const key: KeyInfo = {
        volume, bucket: bucketName, name, size, replication: first.replication, checksumType: first.checksumType,
        bytesPerChecksum: first.bytesPerChecksum, createdAtMs: now, modifiedAtMs: now, locations, metadata, objectId,
        ...(runs === undefined ? {} : { parts: runs }),
      }
      this.keys.put(path, key)
      this.meta.put('objectId', objectId)
      count(volume, bucketName, size, 1)
      for (const [id, c] of counts) {
        const b = id === `${volume}/${bucketName}` ? this.buckets.get(id) ?? target : this.buckets.get(id)
        if (b !== undefined) this.buckets.put(id, { ...b, usedBytes: b.usedBytes + c.bytes, keyCount: b.keyCount + c.keys })
      }
      return key
    })
  }

  // --- S3 secrets (Ozone's S3SecretManager) ----------------------------------------------

  /** Returns the user's key pair, creating one on first call. */
  private async getS3Secret(a: { user?: unknown }): Promise<S3Secret> {
    const user = checkUser(a.user)
    for (const { value } of this.s3Secrets.getRange()) if (value.user === user) return value
    const secret: S3Secret = { user, awsAccessKey: `O3${randomBytes(9).toString('hex').toUpperCase()}`, awsSecret: randomBytes(30).toString('base64url') }
    await this.s3Secrets.put(secret.awsAccessKey, secret)
    return secret
  }

  private async revokeS3Secret(a: { user?: unknown }): Promise<{ revoked: number }> {
    const user = checkUser(a.user)
    const keys: string[] = []
    for (const { key, value } of this.s3Secrets.getRange()) if (value.user === user) keys.push(key)
    await this.s3Secrets.transaction(() => { for (const k of keys) this.s3Secrets.remove(k) })
    return { revoked: keys.length }
  }

  private lookupS3Secret(a: { accessKey?: unknown }): S3Secret {
    if (typeof a.accessKey !== 'string' || a.accessKey.length === 0) throw new O3Error('INVALID_ARGUMENT', 'accessKey must be a non-empty string')
    const secret = this.s3Secrets.get(a.accessKey)
    if (secret === undefined) throw new O3Error('PERMISSION_DENIED', `Access key ${a.accessKey} not found`)
    return secret
  }

  /**
   * Everything the S3 gateway asks before its handler, in one call. The access key must exist
   * (PERMISSION_DENIED, as lookupS3Secret) and the request's signature verify with its secret,
   * which never leaves the OM (SIGNATURE_MISMATCH); with no proof (the gateway found the
   * request malformed and only needs to know whether the key exists) nothing more is read.
   * Then, if named, the bucket; if named and the bucket is the user's, the key with its
   * current locations; and if asked, the key is opened with its first block (S3OpenIntent).
   * A bucket, key or open that fails comes back as its error code, not thrown: the gateway
   * answers it only where its handler would (NoSuchBucket, AccessDenied, NoSuchKey), and
   * aborts an open key its handler did not use. Nothing is cached on either side.
   */
  private async s3Authenticate(a: { accessKey?: unknown; proof?: unknown; signingKey?: unknown; volume?: unknown; bucket?: unknown; key?: unknown; open?: unknown }): Promise<S3AuthResult> {
    const secret = this.lookupS3Secret(a)
    const out: S3AuthResult = { user: secret.user }
    if (a.proof === undefined || a.proof === null) return out
    const proof = checkProof(a.proof)
    const verified = verifyProof(secret.awsSecret, proof)
    if (!verified.ok) throw new O3Error('SIGNATURE_MISMATCH', `Cannot authenticate access key ${a.accessKey as string}: the signature does not match`)
    if (a.signingKey === true && verified.signingKey !== undefined) out.signingKeyHex = verified.signingKey.toString('hex')
    if (a.bucket === undefined) return out
    const bucket = await lookupPart(async () => this.getBucket(checkVolumeName(a.volume), checkBucketName(a.bucket)))
    out.bucket = bucket
    if (!bucket.ok || bucket.value.owner !== secret.user) return out
    if (a.key !== undefined) out.key = await lookupPart(() => this.lookupKey({ volume: a.volume, bucket: a.bucket, key: a.key }))
    if (a.open === undefined || a.open === null) return out
    const open = checkOpenIntent(a.open)
    // Only the request's own bucket, which was just found to be the user's, is opened in.
    if (open.bucket !== a.bucket) throw new O3Error('INVALID_ARGUMENT', `Cannot open key ${String(open.key)} in bucket ${String(open.bucket)}: the request names bucket ${String(a.bucket)}`)
    if (open.ifNotExists === true && (out.key === undefined || out.key.ok || out.key.error.code !== 'KEY_NOT_FOUND')) return out
    if (open.requireKey !== undefined) {
      out.required = await lookupPart(async () => this.getKey(open.requireKey!))
      if (!out.required.ok) return out
    }
    out.opened = await lookupPart(() => this.openKey(open))
    return out
  }

  // --- background -----------------------------------------------------------------------

  private async expireOpenKeys(): Promise<void> {
    const cutoff = Date.now() - this.config['om.openKey.expireMs']
    const expired: OpenKeyInfo[] = []
    for (const { value } of this.openKeys.getRange()) if (value.createdAtMs < cutoff) expired.push(value)
    if (expired.length === 0) return
    await this.db.transaction(() => {
      for (const { clientId } of expired) {
        // Read again inside the transaction: a key committed since the scan keeps its blocks.
        const info = this.openKeys.get(clientId)
        if (info === undefined || info.createdAtMs >= cutoff) continue
        this.recordDeleted(`${info.volume}/${info.bucket}/${info.name}`, info.allocated.map((b) => b.blockId))
        this.openKeys.remove(info.clientId)
      }
    })
    log.info(`OM: expired ${expired.length} open keys`)
  }

  private async purgeDeletedBlocks(): Promise<void> {
    const batch: { id: number; entry: DeletedEntry }[] = []
    for (const { key, value } of this.deleted.getRange({ limit: 100 })) batch.push({ id: key, entry: value })
    if (batch.length === 0) return
    await this.scm.call('deleteBlocks', { blocks: batch.flatMap((b) => b.entry.blocks) })
    await this.deleted.transaction(() => { for (const b of batch) this.deleted.remove(b.id) })
  }
}

/** Runs one part of a lookup; an operating error becomes its wire form, anything else is thrown. */
async function lookupPart<T>(run: () => Promise<T>): Promise<LookupPart<T>> {
  try {
    return { ok: true, value: await run() }
  } catch (err) {
    if (err instanceof O3Error) return { ok: false, error: err.toWire() }
    throw err
  }
}

function refreshPipeline(recorded: Pipeline, found: Locations[string] | undefined): Pipeline {
  if (found === undefined) return recorded
  if (found.state === 'OPEN' && found.pipeline !== null) return found.pipeline
  const healthy = found.replicas.filter((r) => r.state !== 'UNHEALTHY').map((r) => ({ id: r.id, address: r.address }))
  const fallback = found.pipeline?.nodes ?? recorded.nodes
  return { ...recorded, nodes: healthy.length > 0 ? healthy : fallback }
}

function checkMetadata(raw: unknown): Record<string, string> {
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

/** An S3OpenIntent as it came off the wire; names are checked again by openKey. */
function checkOpenIntent(raw: unknown): S3OpenIntent {
  if (typeof raw !== 'object' || raw === null) throw new O3Error('INVALID_ARGUMENT', 'open must be an object')
  const o = raw as Partial<S3OpenIntent>
  const r = o.requireKey
  if (r !== undefined && (typeof r !== 'object' || r === null)) throw new O3Error('INVALID_ARGUMENT', 'open.requireKey must be an object')
  return o as S3OpenIntent
}

function checkUser(raw: unknown): string {
  if (typeof raw !== 'string' || !/^[A-Za-z0-9._@-]{1,64}$/.test(raw)) throw new O3Error('INVALID_ARGUMENT', `Invalid user name ${JSON.stringify(raw)}: 1-64 letters, digits, '.', '_', '@' or '-'`)
  return raw
}

function startsWith(key: Uint8Array, prefix: Uint8Array): boolean {
  if (key.length < prefix.length) return false
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false
  return true
}

/** Up to maxCount (at most LIST_VOLUMES_COUNT_MAX) records of `table` whose names, after the
 *  key's `scope` (a volume's 'vol/' for buckets, '' for volumes), start with `prefix` and
 *  sort after `startAfter`: the paging of listVolumes and listBuckets. */
function listByName<T>(table: Database<T, string>, scope: string, a: { prefix?: unknown; startAfter?: unknown; maxCount?: unknown }): T[] {
  const prefix = `${scope}${typeof a.prefix === 'string' ? a.prefix : ''}`
  const max = Math.min(LIST_VOLUMES_COUNT_MAX, typeof a.maxCount === 'number' ? a.maxCount : LIST_VOLUMES_COUNT_MAX)
  const start = typeof a.startAfter === 'string' ? `${scope}${a.startAfter}\0` : prefix
  const out: T[] = []
  for (const { key, value } of table.getRange({ start })) {
    if (!key.startsWith(prefix) || out.length >= max) break
    out.push(value)
  }
  return out
}
