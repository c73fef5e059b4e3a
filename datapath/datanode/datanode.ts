/** @module
 * The datanode service: containers of blocks on local data volumes, chunk writes verified and
 * written by the worker pool while they arrive (chunk-write.ts), block metadata committed in
 * one LMDB per volume (Ozone's schema V3), small blocks packed inline in LMDB, heartbeats with
 * node and container reports to the SCM. As leader of a RATIS/THREE pipeline it forwards each
 * chunk and putBlock to the followers in parallel and acknowledges only when all hold it.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync, rmSync, statSync, statfsSync, existsSync, renameSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createHash, randomUUID } from 'node:crypto'
import type { Database, RootDatabase } from 'lmdb'
import type { Context } from 'hono'
import { assert } from '../../core/assert.ts'
import { checksumsLengthBytes, checksumSizeBytes } from '../../core/checksum.ts'
import type { O3Config } from '../../core/config.ts'
import { openMetadataDb } from '../../core/metadata-db.ts'
import { O3Error } from '../../core/errors.ts'
import { requestBody } from '../../core/http/body.ts'
import { serveApp, type Listener } from '../../core/http/serve.ts'
import { BYTES_PER_CHECKSUM_MIN, CHECKSUM_BYTES_MAX, CHUNK_SIZE_BYTES_DEFAULT, CHUNK_SIZE_BYTES_MAX, DATANODE_BLOCK_FILE_IDLE_MS, DATANODE_CHUNK_SLABS, DATANODE_LARGE_CHUNK_SLABS, DATANODE_OPEN_BLOCK_FILES_MAX, DATANODE_PENDING_BLOCKS_MAX, DATANODE_READ_BUFFERS, DATANODE_SLAB_WAIT_MS_MAX, HEARTBEAT_COMMANDS_MAX, RPC_BODY_BYTES_MAX, SMALL_BLOCK_BYTES_MAX } from '../../core/limits.ts'
import { log } from '../../core/log.ts'
import { ServiceMetrics } from '../../core/metrics.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { createServiceApp, observed } from '../../core/rpc/server.ts'
import { blockIdString, parseChecksumType, parseId, type ChecksumType, type ContainerId, type ContainerState, type DatanodeId, type LocalId } from '../../core/wire.ts'
import { BufferPool, SizedSlabPools, runReadChunk, workerPool } from '../workers/index.ts'
import { watchResponse } from '../../core/http/body-out.ts'
import { smallBodyJson } from '../../core/http/body.ts'
import { blockFile, chunksDir, containerFile, metadataDbPath } from './layout.ts'
import { BlockFiles } from './block-files.ts'
import { writeChunkData, type WriteChunkArgs } from './chunk-write.ts'
import { allSettledOrThrow, followerError } from './followers.ts'

export interface ChunkInfo {
  offset: number
  length: number
  checksums: Uint8Array
}

export interface BlockData {
  containerId: ContainerId
  localId: LocalId
  length: number
  checksumType: ChecksumType
  bytesPerChecksum: number
  chunks: ChunkInfo[]
  /** The bytes live inline in LMDB (small block), not in a block file. */
  packed: boolean
  committedAtMs: number
}

export interface ContainerData {
  id: ContainerId
  state: ContainerState
  replication: string
  pipelineId: string
  createdAtMs: number
  blockCount: number
  usedBytes: number
  volume: number
}

interface Volume {
  dir: string
  db: RootDatabase
  containers: Database<ContainerData, number>
  blocks: Database<BlockData, [number, number]>
  packed: Database<Buffer, [number, number]>
  /**
   * Blocks deleted while their container is open. A writer of an expired key may still
   * send chunks or a putBlock after the deletion; they are refused rather than bringing
   * the block back with nobody left to delete it. Dropped when the container closes, after
   * which no write is taken anyway. Local ids are never reused, so no new block is refused.
   */
  deleted: Database<boolean, [number, number]>
}

interface PendingBlock {
  chunks: Map<number, ChunkInfo>
  packed?: Uint8Array
  checksumType: ChecksumType
  bytesPerChecksum: number
}

export interface DatanodeOptions {
  config: O3Config
  /** Port to listen on; 0 picks a free one. */
  port?: number
  /** Address of the SCM (host:port). */
  scmAddress: string
}

const SLAB_BYTES = CHUNK_SIZE_BYTES_MAX + CHECKSUM_BYTES_MAX
/** A default-size chunk and its checksums at the smallest window and widest checksum. */
const READ_BUFFER_BYTES = CHUNK_SIZE_BYTES_DEFAULT + (CHUNK_SIZE_BYTES_DEFAULT / BYTES_PER_CHECKSUM_MIN) * 32
/** Chunks up to the default size are received into slabs of this size, larger ones into SLAB_BYTES. */
const CHUNK_SLAB_BYTES = READ_BUFFER_BYTES

export class Datanode {
  readonly metrics = new ServiceMetrics('datanode')
  private readonly config: O3Config
  private readonly scms: RpcClient[]
  private readonly slabs: SizedSlabPools
  /** Chunk reads land here (default-size chunks; a larger read gets a buffer of its own). */
  readonly readBuffers: BufferPool
  private readonly volumes: Volume[] = []
  private readonly containers = new Map<ContainerId, ContainerData>()
  private readonly pending = new Map<string, PendingBlock>()
  /** Block files open for writing between chunks. */
  private readonly blockFiles = new BlockFiles(DATANODE_OPEN_BLOCK_FILES_MAX, DATANODE_BLOCK_FILE_IDLE_MS)
  /** Block-deletion transactions done here, to acknowledge in the next heartbeat. Lost ones are sent again by the SCM. */
  private readonly deletedTxIds: number[] = []
  private listener?: Listener
  private heartbeatTimer?: ReturnType<typeof setTimeout>
  private beating: Promise<void> | undefined
  private stopped = false
  id = '' as DatanodeId
  clusterId = ''

  constructor(private readonly options: DatanodeOptions) {
    this.config = options.config
    // Every SCM of the group hears each heartbeat (each knows the datanodes itself, as in
    // Ozone); only the leader answers with commands.
    this.scms = options.scmAddress.split(',').map((a) => a.trim()).filter((a) => a.length > 0).map((a) => new RpcClient('SCM', a))
    this.slabs = new SizedSlabPools(CHUNK_SLAB_BYTES, DATANODE_CHUNK_SLABS, SLAB_BYTES, DATANODE_LARGE_CHUNK_SLABS)
    this.readBuffers = new BufferPool(READ_BUFFER_BYTES, DATANODE_READ_BUFFERS)
  }

  get port(): number {
    assert(this.listener !== undefined, 'datanode not started')
    return this.listener.port
  }

  get address(): string {
    return `${this.config.host}:${this.port}`
  }

  get dirs(): string[] {
    return this.config['datanode.dirs'].split(',').filter(Boolean)
  }

  async start(): Promise<void> {
    const startedAtMs = Date.now()
    const dirs = this.dirs
    for (const d of dirs) mkdirSync(d, { recursive: true })
    const idFile = join(dirs[0], 'datanode.id')
    const saved = existsSync(idFile) ? JSON.parse(readFileSync(idFile, 'utf8')) as { id: DatanodeId; clusterId?: string } : undefined
    this.id = saved?.id ?? (randomUUID() as DatanodeId)
    if (saved === undefined) writeFileSync(idFile, JSON.stringify({ id: this.id }))
    workerPool(this.config['datanode.workerThreads'])

    const app = createServiceApp({
      service: 'Datanode',
      metrics: this.metrics,
      health: () => ({ id: this.id, clusterId: this.clusterId, containers: this.containers.size }),
      handlers: {
        putBlock: (a) => this.putBlock(a),
        getBlock: (a) => this.getBlock(a),
        listBlock: (a) => this.listBlock(a),
        closeContainer: (a) => this.closeContainer(parseId<ContainerId>(a.containerId, 'containerId')),
        listContainers: () => [...this.containers.values()],
      },
    })
    app.post('/chunk/write', (c) => observed(this.metrics, 'writeChunk', c, () => this.writeChunk(c)))
    app.post('/chunk/read', (c) => observed(this.metrics, 'readChunk', c, () => this.readChunk(c)))
    this.metrics.gauge('containers', 'Containers on this datanode', () => this.containers.size)
    this.metrics.gauge('open_block_files', 'Block files held open for writing between chunks', () => this.blockFiles.size)
    this.metrics.gauge('pending_blocks', 'Blocks written but not committed', () => this.pending.size)
    this.listener = await serveApp(app, { host: this.config.host, port: this.options.port ?? this.config['datanode.port'], name: 'datanode' })

    // The cluster id comes from the SCM at first registration; afterwards the volumes hold it.
    this.clusterId = saved?.clusterId ?? ''
    if (this.clusterId === '') {
      await this.register(true)
      writeFileSync(idFile, JSON.stringify({ id: this.id, clusterId: this.clusterId }))
    }
    this.openVolumes()
    this.sweepOrphanBlockFiles(startedAtMs)
    if (saved?.clusterId !== undefined) await this.register(false).catch((err) => log.warn(`datanode ${this.id}: SCM not reachable yet: ${(err as Error).message}`))
    this.scheduleHeartbeat()
    log.info(`datanode ${this.id} listening on ${this.address}`)
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.heartbeatTimer)
    await this.listener?.close()
    await this.blockFiles.closeAll()
    await this.beating
    for (const v of this.volumes) await v.db.close()
    this.volumes.length = 0
  }

  private openVolumes(): void {
    this.dirs.forEach((dir, index) => {
      const db = openMetadataDb(metadataDbPath(dir, this.clusterId), this.config)
      const volume: Volume = {
        dir, db,
        containers: db.openDB({ name: 'containers', keyEncoding: 'uint32' }),
        blocks: db.openDB({ name: 'blocks' }),
        packed: db.openDB({ name: 'packedBlocks', encoding: 'binary' }),
        deleted: db.openDB({ name: 'deletedBlocks' }),
      }
      this.volumes.push(volume)
      for (const { value } of volume.containers.getRange()) this.containers.set(value.id, { ...value, volume: index })
    })
  }

  /**
   * Removes block files that have no block record and predate this start: chunks of blocks
   * that never got a putBlock, whose pending state died with the previous process. No
   * putBlock can commit them any more (it needs the chunks from offset 0 pending), so no
   * key can come to refer to them; and a key refers only to blocks committed on every
   * replica, which have a record. This reclaims what lost or older deletions left behind.
   */
  private sweepOrphanBlockFiles(startedAtMs: number): void {
    let removed = 0
    for (const c of this.containers.values()) {
      const v = this.volumeOf(c)
      const chunks = chunksDir(v.dir, this.clusterId, c.id)
      let names: string[]
      try { names = readdirSync(chunks) } catch { continue }
      for (const name of names) {
        const m = /^(\d+)\.block$/.exec(name)
        if (m === null) continue
        const localId = Number(m[1])
        if (!Number.isSafeInteger(localId) || v.blocks.doesExist([c.id, localId])) continue
        const path = join(chunks, name)
        const modifiedAtMs = statSync(path, { throwIfNoEntry: false })?.mtimeMs
        if (modifiedAtMs === undefined || modifiedAtMs >= startedAtMs) continue
        rmSync(path, { force: true })
        removed++
      }
    }
    if (removed > 0) log.info(`datanode ${this.id}: removed ${removed} block files without a block record`)
  }

  // --- SCM ------------------------------------------------------------------------------

  private volumeReports() {
    // One pass over the containers, not one per volume: this runs on every heartbeat.
    const used = new Array<number>(this.dirs.length).fill(0)
    for (const c of this.containers.values()) used[c.volume] += c.usedBytes
    return this.dirs.map((dir, i) => {
      try {
        const s = statfsSync(dir)
        return { dir, capacityBytes: s.blocks * s.bsize, availableBytes: s.bavail * s.bsize, usedBytes: used[i] }
      } catch { return { dir, capacityBytes: 0, availableBytes: 0, usedBytes: 0 } }
    })
  }

  private async register(retryForever: boolean): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        // Registered with every SCM, or none: a datanode one SCM does not know gets no work from it.
        const answers = await Promise.all(this.scms.map((scm) => scm.call<{ clusterId: string }>('register', { id: this.id, address: this.address, volumes: this.volumeReports() })))
        for (const r of answers) {
          if (this.clusterId !== '' && r.clusterId !== this.clusterId) throw new O3Error('INVALID_ARGUMENT', `Cannot join SCM: it runs cluster ${r.clusterId}, this datanode belongs to ${this.clusterId}`)
          this.clusterId = r.clusterId
        }
        return
      } catch (err) {
        if (!retryForever || this.stopped || (err instanceof O3Error && err.code === 'INVALID_ARGUMENT')) throw err
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)))
      }
    }
  }

  private scheduleHeartbeat(): void {
    if (this.stopped) return
    this.heartbeatTimer = setTimeout(() => {
      this.beating = this.heartbeat().finally(() => { this.beating = undefined; this.scheduleHeartbeat() })
    }, this.config['datanode.heartbeatIntervalMs'])
  }

  async heartbeat(): Promise<void> {
    const deleted = this.deletedTxIds.splice(0, HEARTBEAT_COMMANDS_MAX)
    type Commands = { commands: { type: string; txId?: number; containerId?: number; localIds?: number[] }[] }
    const containers = [...this.containers.values()].map((c) => ({ containerId: c.id, state: c.state, usedBytes: c.usedBytes, blockCount: c.blockCount }))
    const volumes = this.volumeReports()
    const answers = await Promise.allSettled(this.scms.map((scm) => scm.call<Commands>('heartbeat', { id: this.id, volumes, containers, deleted })))
    const commands: Commands['commands'] = []
    for (const a of answers) {
      if (a.status === 'fulfilled') commands.push(...a.value.commands)
      else log.debug(`datanode ${this.id}: heartbeat failed: ${(a.reason as Error).message}`)
    }
    // Acknowledged deletions go to every SCM; the leader records them. Heard by none: again next time.
    if (answers.every((a) => a.status === 'rejected')) {
      this.deletedTxIds.unshift(...deleted)
      return
    }
    // One failed command must not cost the others: each is tried on its own.
    for (const cmd of commands.slice(0, HEARTBEAT_COMMANDS_MAX)) {
      try {
        if (cmd.type === 'reregister') await this.register(false)
        else if (cmd.type === 'closeContainer') await this.closeContainer(parseId<ContainerId>(cmd.containerId, 'containerId'))
        else if (cmd.type === 'deleteBlocks') {
          await this.deleteBlocks(parseId<ContainerId>(cmd.containerId, 'containerId'), (cmd.localIds ?? []).map((l) => parseId<LocalId>(l, 'localId')))
          if (cmd.txId !== undefined) this.deletedTxIds.push(parseId<number>(cmd.txId, 'txId'))
        }
      } catch (err) {
        log.debug(`datanode ${this.id}: command ${cmd.type} failed: ${(err as Error).message}`)
      }
    }
  }

  // --- containers -----------------------------------------------------------------------

  private volumeOf(c: ContainerData): Volume {
    const v = this.volumes[c.volume]
    assert(v !== undefined, `container ${c.id} on unknown volume ${c.volume}`)
    return v
  }

  private async writeContainerFile(c: ContainerData): Promise<void> {
    const v = this.volumeOf(c)
    const path = containerFile(v.dir, this.clusterId, c.id)
    mkdirSync(dirname(path), { recursive: true })
    const body = { containerId: c.id, state: c.state, replication: c.replication, pipelineId: c.pipelineId, replicaIndex: 0, layout: 'FILE_PER_BLOCK', schemaVersion: 3, createdAtMs: c.createdAtMs }
    const text = JSON.stringify({ ...body, checksum: createHash('sha256').update(JSON.stringify(body)).digest('hex') }, null, 2)
    writeFileSync(path + '.tmp', text)
    renameSync(path + '.tmp', path)
    await v.containers.put(c.id, c)
  }

  private async openContainer(args: WriteChunkArgs): Promise<ContainerData> {
    const id = args.containerId as ContainerId
    const existing = this.containers.get(id)
    if (existing !== undefined) {
      if (existing.state !== 'OPEN') throw new O3Error('CONTAINER_NOT_OPEN', `Cannot write to container ${id}: it is ${existing.state}`)
      return existing
    }
    // Containers are created by their first write, on the volume holding the fewest.
    const counts = this.volumes.map((_, i) => [...this.containers.values()].filter((c) => c.volume === i).length)
    const volume = counts.indexOf(Math.min(...counts))
    const c: ContainerData = { id, state: 'OPEN', replication: args.replication, pipelineId: args.pipelineId, createdAtMs: Date.now(), blockCount: 0, usedBytes: 0, volume }
    this.containers.set(id, c)
    await this.writeContainerFile(c)
    return c
  }

  async closeContainer(id: ContainerId): Promise<{ state: ContainerState }> {
    const c = this.containers.get(id)
    if (c === undefined) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot close container ${id}: not on this datanode`)
    if (c.state === 'OPEN' || c.state === 'CLOSING') {
      c.state = 'CLOSED'
      for (const key of [...this.pending.keys()]) if (key.startsWith(`${id}:`)) this.pending.delete(key)
      await this.blockFiles.closeContainer(id)
      await this.writeContainerFile(c)
      const v = this.volumeOf(c)
      await v.db.transaction(() => {
        for (const key of v.deleted.getKeys({ start: [id, 0], end: [id + 1, 0] })) v.deleted.remove(key)
      })
      log.debug(`datanode ${this.id}: container ${id} CLOSED`)
    }
    return { state: c.state }
  }

  /**
   * Deletes blocks of deleted, replaced, aborted or expired keys. A block of an open key that
   * never got a putBlock has chunks on disk but no record (or only pending chunks in memory):
   * its file goes too, whatever the records say, so that failed writes leave nothing behind.
   * Deleting is idempotent: the SCM may send a command again.
   */
  private async deleteBlocks(id: ContainerId, localIds: LocalId[]): Promise<void> {
    const c = this.containers.get(id)
    if (c === undefined) return
    const v = this.volumeOf(c)
    for (const lid of localIds) this.pending.delete(blockIdString({ containerId: id, localId: lid }))
    // One commit for the whole command: the metadata goes first, then the files it named.
    await v.db.transaction(() => {
      let changed = false
      for (const lid of localIds) {
        if (c.state === 'OPEN') v.deleted.put([id, lid], true)
        const b = v.blocks.get([id, lid])
        if (b === undefined) continue
        v.blocks.remove([id, lid])
        if (b.packed) v.packed.remove([id, lid])
        c.blockCount = Math.max(0, c.blockCount - 1)
        c.usedBytes = Math.max(0, c.usedBytes - b.length)
        changed = true
      }
      if (changed) v.containers.put(c.id, c)
    })
    for (const lid of localIds) {
      const path = blockFile(v.dir, this.clusterId, id, lid)
      await this.blockFiles.close(path)
      rmSync(path, { force: true })
    }
  }

  // --- chunks and blocks ----------------------------------------------------------------

  private parseWriteArgs(header: string | undefined): WriteChunkArgs {
    let a: Partial<WriteChunkArgs>
    try { a = JSON.parse(header ?? '') } catch { throw new O3Error('INVALID_ARGUMENT', 'Cannot write chunk: x-o3-args header missing or not JSON') }
    parseId<ContainerId>(a.containerId, 'containerId')
    parseId<LocalId>(a.localId, 'localId')
    parseId<number>(a.offset, 'offset')
    const length = parseId<number>(a.length, 'length')
    if (length > CHUNK_SIZE_BYTES_MAX) throw new O3Error('ENTITY_TOO_LARGE', `Cannot write chunk of ${length} bytes: the limit is ${CHUNK_SIZE_BYTES_MAX}`)
    parseChecksumType(String(a.checksumType))
    if (parseId<number>(a.bytesPerChecksum, 'bytesPerChecksum') < 1) throw new O3Error('INVALID_ARGUMENT', 'Cannot write chunk: bytesPerChecksum must be positive')
    if (a.offset! % a.bytesPerChecksum! !== 0) throw new O3Error('INVALID_ARGUMENT', `Cannot write chunk at ${a.offset}: chunks must start on a checksum window (${a.bytesPerChecksum} bytes)`)
    if (!Array.isArray(a.forward) || a.forward.length > 2 || !a.forward.every((f) => typeof f === 'string' && /^[\w.-]+:\d+$/.test(f))) throw new O3Error('INVALID_ARGUMENT', 'Cannot write chunk: forward must list at most two host:port addresses')
    return a as WriteChunkArgs
  }

  /** The /chunk/write route: parses, checks the container and block, writes the chunk's data, records it. */
  private async writeChunk(c: Context): Promise<Response> {
    const args = this.parseWriteArgs(c.req.header('x-o3-args'))
    const total = checksumsLengthBytes(args.checksumType, args.length, args.bytesPerChecksum) + args.length
    if (Number(c.req.header('content-length')) !== total) throw new O3Error('INVALID_ARGUMENT', `Cannot write chunk: body must be ${total} bytes (checksums and data)`)
    const container = await this.openContainer(args)
    const containerId = args.containerId as ContainerId
    const localId = args.localId as LocalId
    const key = `${args.containerId}:${args.localId}`
    this.assertNotDeleted(container, localId, 'write chunk to')
    if (!this.pending.has(key) && this.pending.size >= DATANODE_PENDING_BLOCKS_MAX) throw new O3Error('UNAVAILABLE', `Cannot write chunk: ${DATANODE_PENDING_BLOCKS_MAX} blocks already pending`)
    const v = this.volumeOf(container)
    const path = blockFile(v.dir, this.clusterId, containerId, localId)
    const committedBytes = v.blocks.get([containerId, localId])?.length ?? 0
    const written = await writeChunkData({
      args, body: requestBody(c), path,
      packed: args.whole === true && args.offset === 0 && args.length <= Math.min(SMALL_BLOCK_BYTES_MAX, this.config['datanode.smallBlockBytes']),
      overwrites: args.offset < committedBytes,
      slabs: this.slabs, blockFiles: this.blockFiles, bodyIdleTimeoutMs: this.config['datanode.bodyIdleTimeoutMs'],
    })
    this.metrics.bytesIn.inc(args.length)
    // Deleted while the bytes went to disk: the file the write may have brought back goes again.
    if (this.isDeleted(container, localId)) {
      await this.blockFiles.close(path)
      rmSync(path, { force: true })
      this.assertNotDeleted(container, localId, 'write chunk to')
    }
    const pending: PendingBlock = this.pending.get(key) ?? { chunks: new Map(), checksumType: args.checksumType, bytesPerChecksum: args.bytesPerChecksum }
    pending.chunks.set(args.offset, { offset: args.offset, length: args.length, checksums: written.checksums })
    if (written.packed !== undefined) pending.packed = written.packed
    this.pending.set(key, pending)
    if (args.commit === true) await this.commitBlock(containerId, localId, args.offset + args.length)
    return c.json({ result: { length: args.length } })
  }

  private async putBlock(a: { containerId?: unknown; localId?: unknown; length?: unknown; forward?: unknown }): Promise<{ length: number }> {
    const containerId = parseId<ContainerId>(a.containerId, 'containerId')
    const localId = parseId<LocalId>(a.localId, 'localId')
    const length = parseId<number>(a.length, 'length')
    const forward = Array.isArray(a.forward) ? a.forward.filter((f): f is string => typeof f === 'string').slice(0, 2) : []
    const forwarded = forward.map((address) => new RpcClient('Datanode', address).call('putBlock', { containerId, localId, length, forward: [] })
      .catch((err) => { throw followerError(address, err, 'commit block') }))
    await allSettledOrThrow([this.commitBlock(containerId, localId, length), ...forwarded])
    return { length }
  }

  /** Commits the pending chunks of a block as its metadata: after this the block is durable. */
  private async commitBlock(containerId: ContainerId, localId: LocalId, length: number): Promise<void> {
    const c = this.containers.get(containerId)
    if (c === undefined) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot commit block ${containerId}:${localId}: no such container here`)
    if (c.state !== 'OPEN') throw new O3Error('CONTAINER_NOT_OPEN', `Cannot commit block ${containerId}:${localId}: container is ${c.state}`)
    const v = this.volumeOf(c)
    const key = blockIdString({ containerId, localId })
    const pending = this.pending.get(key)
    const previous = v.blocks.get([containerId, localId])
    const chunks = new Map<number, ChunkInfo>((previous?.chunks ?? []).map((ch) => [ch.offset, ch]))
    for (const [offset, ch] of pending?.chunks ?? []) chunks.set(offset, ch)
    const ordered = [...chunks.values()].sort((x, y) => x.offset - y.offset)
    let covered = 0
    const kept: ChunkInfo[] = []
    for (const ch of ordered) {
      if (covered >= length) break
      if (ch.offset !== covered) throw new O3Error('CHUNK_NOT_FOUND', `Cannot commit block ${key} of ${length} bytes: no chunk at offset ${covered}`)
      kept.push(ch)
      covered += ch.length
    }
    if (covered !== length) throw new O3Error('CHUNK_NOT_FOUND', `Cannot commit block ${key} of ${length} bytes: chunks cover ${covered}`)
    const block: BlockData = {
      containerId, localId, length, chunks: kept, packed: pending?.packed !== undefined && kept.length === 1,
      checksumType: pending?.checksumType ?? previous?.checksumType ?? 'NONE', bytesPerChecksum: pending?.bytesPerChecksum ?? previous?.bytesPerChecksum ?? 1,
      committedAtMs: Date.now(),
    }
    assert(checksumSizeBytes(block.checksumType) === 0 || kept.every((ch) => ch.checksums.length === checksumsLengthBytes(block.checksumType, ch.length, block.bytesPerChecksum)), 'checksums do not cover chunks')
    this.assertNotDeleted(c, localId, 'commit')
    const committed = await v.db.transaction(() => {
      if (v.deleted.doesExist([containerId, localId])) return false
      // The counters change in the commit that adds the block, read against the record as
      // this commit sees it: a restart then finds them exact (Ozone keeps #BLOCKCOUNT and
      // #BYTESUSED in the container's metadata table, written in putBlock's batch).
      const stored = v.blocks.get([containerId, localId])
      v.blocks.put([containerId, localId], block)
      if (block.packed) v.packed.put([containerId, localId], Buffer.from(pending!.packed!.buffer, pending!.packed!.byteOffset, pending!.packed!.byteLength))
      if (stored === undefined) c.blockCount++
      c.usedBytes += length - (stored?.length ?? 0)
      v.containers.put(c.id, c)
      return true
    })
    if (!committed) throw new O3Error('BLOCK_NOT_FOUND', `Cannot commit block ${key}: it was deleted`)
    if (!block.packed) await this.blockFiles.closeIfIdle(blockFile(v.dir, this.clusterId, containerId, localId))
    // Chunks past `length` stay pending: with putBlock running beside the writes, later
    // chunks may already have arrived, and the next putBlock commits them.
    if (pending !== undefined) {
      for (const offset of [...pending.chunks.keys()]) if (offset < length) pending.chunks.delete(offset)
      if (pending.chunks.size === 0) this.pending.delete(key)
    }
  }

  private isDeleted(c: ContainerData, localId: LocalId): boolean {
    return this.volumeOf(c).deleted.doesExist([c.id, localId])
  }

  private assertNotDeleted(c: ContainerData, localId: LocalId, action: string): void {
    if (this.isDeleted(c, localId)) throw new O3Error('BLOCK_NOT_FOUND', `Cannot ${action} block ${c.id}:${localId}: it was deleted`)
  }

  private block(a: { containerId?: unknown; localId?: unknown }): { c: ContainerData; v: Volume; b: BlockData } {
    const containerId = parseId<ContainerId>(a.containerId, 'containerId')
    const localId = parseId<LocalId>(a.localId, 'localId')
    const c = this.containers.get(containerId)
    if (c === undefined) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot find container ${containerId} on this datanode`)
    const v = this.volumeOf(c)
    const b = v.blocks.get([containerId, localId])
    if (b === undefined) throw new O3Error('BLOCK_NOT_FOUND', `Cannot find block ${containerId}:${localId}`)
    return { c, v, b }
  }

  private getBlock(a: { containerId?: unknown; localId?: unknown }) {
    const { b } = this.block(a)
    return { containerId: b.containerId, localId: b.localId, length: b.length, packed: b.packed, checksumType: b.checksumType, bytesPerChecksum: b.bytesPerChecksum, chunks: b.chunks.map((ch) => ({ offset: ch.offset, length: ch.length })) }
  }

  private listBlock(a: { containerId?: unknown; startLocalId?: unknown; count?: unknown }) {
    const containerId = parseId<ContainerId>(a.containerId, 'containerId')
    const c = this.containers.get(containerId)
    if (c === undefined) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot list blocks of container ${containerId}: not on this datanode`)
    const start = a.startLocalId === undefined ? 0 : parseId<number>(a.startLocalId, 'startLocalId')
    const count = Math.min(1000, a.count === undefined ? 1000 : parseId<number>(a.count, 'count'))
    const out = []
    for (const { value } of this.volumeOf(c).blocks.getRange({ start: [containerId, start], end: [containerId + 1, 0], limit: count })) {
      out.push({ localId: value.localId, length: value.length, packed: value.packed })
    }
    return out
  }

  /**
   * Serves a byte range of a block (at most one chunk's worth), widened to whole checksum
   * windows; windows line up across chunks because every chunk but the last holds whole
   * windows. The body is data || checksums; x-o3-args says where the data starts.
   */
  private async readChunk(c: Context): Promise<Response> {
    const a: { containerId?: unknown; localId?: unknown; offset?: unknown; length?: unknown } = await smallBodyJson(c, RPC_BODY_BYTES_MAX, 'Cannot read chunk')
    const { v, b } = this.block(a)
    const offset = parseId<number>(a.offset, 'offset')
    const wanted = parseId<number>(a.length, 'length')
    if (wanted > CHUNK_SIZE_BYTES_MAX) throw new O3Error('INVALID_ARGUMENT', `Cannot read ${wanted} bytes at once: the limit is ${CHUNK_SIZE_BYTES_MAX}`)
    if (offset + wanted > b.length) throw new O3Error('INVALID_ARGUMENT', `Cannot read ${wanted} bytes at ${offset} of block ${b.containerId}:${b.localId} (${b.length} bytes)`)
    const size = checksumSizeBytes(b.checksumType)
    const bpc = b.bytesPerChecksum
    const start = size === 0 ? offset : Math.floor(offset / bpc) * bpc
    const end = size === 0 ? offset + wanted : Math.min(b.length, Math.ceil((offset + wanted) / bpc) * bpc)
    const length = end - start
    const parts: Uint8Array[] = []
    let checksumsLength = 0
    if (size > 0) {
      for (const ch of b.chunks) {
        if (ch.offset + ch.length <= start || ch.offset >= end) continue
        const from = Math.max(start, ch.offset) - ch.offset, to = Math.min(end, ch.offset + ch.length) - ch.offset
        const part = ch.checksums.subarray((from / bpc) * size, Math.ceil(to / bpc) * size)
        parts.push(part)
        checksumsLength += part.length
      }
    }
    // Data and checksums go out as one body, from one buffer with room left behind the data.
    let body: Uint8Array
    if (b.packed) {
      const all = v.packed.getBinary([b.containerId, b.localId])
      if (all === undefined) throw new O3Error('CHUNK_NOT_FOUND', `Cannot read packed block ${b.containerId}:${b.localId}`)
      body = new Uint8Array(length + checksumsLength)
      body.set(all.subarray(start, end))
    } else {
      // A pooled buffer when the read fits one and the runtime says when the response has
      // gone (so the buffer goes back only then); a buffer of its own otherwise.
      const done = length + checksumsLength <= this.readBuffers.bufferBytes ? watchResponse(c)?.done : undefined
      const into = done === undefined ? new ArrayBuffer(length + checksumsLength) : await this.readBuffers.acquire(DATANODE_SLAB_WAIT_MS_MAX)
      let data: Uint8Array
      try {
        data = await runReadChunk({ path: blockFile(v.dir, this.clusterId, b.containerId, b.localId), fileOffset: start, length, into })
      } catch (err) {
        if (done !== undefined) this.readBuffers.discard()
        throw err
      }
      if (done !== undefined) {
        const back = data.buffer as ArrayBuffer
        void done.then(() => this.readBuffers.release(back))
      }
      if (data.length < length) throw new O3Error('IO_ERROR', `Cannot read block ${b.containerId}:${b.localId}: file holds ${start + data.length} of ${b.length} bytes`)
      body = new Uint8Array(data.buffer, 0, length + checksumsLength)
    }
    let at = length
    for (const part of parts) { body.set(part, at); at += part.length }
    return this.chunkResponse(c, body, { b, start, length, checksumsLength })
  }

  private chunkResponse(c: Context, body: Uint8Array, r: { b: BlockData; start: number; length: number; checksumsLength: number }): Response {
    this.metrics.bytesOut.inc(r.length)
    const args = { blockLength: r.b.length, dataOffset: r.start, dataLength: r.length, checksumType: r.b.checksumType, bytesPerChecksum: r.b.bytesPerChecksum, checksumsLength: r.checksumsLength }
    return c.body(body as Uint8Array<ArrayBuffer>, 200, { 'x-o3-args': JSON.stringify(args), 'content-type': 'application/octet-stream' })
  }
}
