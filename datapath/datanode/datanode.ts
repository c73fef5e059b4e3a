/** @module
 * The datanode service: containers of blocks on local data volumes, chunk writes verified and
 * written by the worker pool while they arrive (chunk-write.ts), block metadata committed in
 * one LMDB per volume (Ozone's schema V3), small blocks packed inline in LMDB, heartbeats with
 * node and container reports to the SCM. As leader of a RATIS/THREE pipeline it forwards each
 * chunk and putBlock to the followers in parallel and acknowledges only when all hold it.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync, rmSync, statSync, existsSync, renameSync } from 'node:fs'
import { appendFile, mkdir, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { randomUUID } from 'node:crypto'
import type { Database, RootDatabase } from 'lmdb'
import type { Context } from 'hono'
import type { Message } from '../../core/raft/index.ts'
import { assert } from '../../core/assert.ts'
import { checksumsLengthBytes, checksumSizeBytes, verifyChecksums } from '../../core/checksum.ts'
import type { O3Config } from '../../core/config.ts'
import { DirLock } from '../../core/dir-lock.ts'
import { openMetadataDb } from '../../core/metadata-db.ts'
import { O3Error, toO3Error } from '../../core/errors.ts'
import { requestBody, type RequestBody } from '../../core/http/body.ts'
import { serveApp, type Listener } from '../../core/http/serve.ts'
import { BYTES_PER_CHECKSUM_MIN, CHECKSUM_BYTES_MAX, CHUNK_SIZE_BYTES_DEFAULT, CHUNK_SIZE_BYTES_MAX, DATANODE_BLOCK_FILE_IDLE_MS, DATANODE_CHUNK_SLABS, DATANODE_LARGE_CHUNK_SLABS, DATANODE_OPEN_BLOCK_FILES_MAX, DATANODE_PENDING_BLOCKS_MAX, DATANODE_CHUNK_DATA_BUFFERS, DATANODE_FAILED_COPIES_REPORTED_MAX, DATANODE_READ_BUFFERS, DATANODE_SLAB_WAIT_MS_MAX, BLOCK_CHECK_WAIT_MS_MAX, HEARTBEAT_COMMANDS_MAX, PIPELINE_FETCH_MS_MAX, PIPELINE_GROUPS_MAX, PIPELINE_STAGE_WAIT_MS, PIPELINE_STAGED_TTL_MS, PIPELINE_WATCH_MS_MAX, RPC_BODY_BYTES_MAX, RPC_TIMEOUT_MS_DEFAULT, SMALL_BLOCK_BYTES_MAX, VERIFY_INLINE_BYTES_MAX } from '../../core/limits.ts'
import { log } from '../../core/log.ts'
import { ServiceMetrics } from '../../core/metrics.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { createServiceApp, errorResponse, observed } from '../../core/rpc/server.ts'
import type { SecretKeysAnswer } from '../../core/security/secret-keys.ts'
import { blockIdString, parseChecksumType, parseId, type ChecksumType, type ContainerId, type ContainerState, type DatanodeDetails, type DatanodeId, type LocalId, type PipelineId } from '../../core/wire.ts'
import { BufferPool, SizedSlabPools, runReadChunk, runReadVerify, runVerifySlab, workerPool } from '../workers/index.ts'
import { serveLocally, type LocalChunkAnswer, type LocalChunkRead, type LocalChunkWrite, type LocalDatanode } from '../client/local-datanodes.ts'
import { cutWhenStalled, watchResponse, type ResponseWatch } from '../../core/http/body-out.ts'
import { smallBodyJson } from '../../core/http/body.ts'
import { requestHeader } from '../../core/http/connection.ts'
import { request } from 'undici'
import { receiveRaftBatch } from '../../core/raft-io/index.ts'
import { serveRaftLocally } from '../../core/raft-io/local-peers.ts'
import { LocalCalls } from '../../core/rpc/local-services.ts'
import { readError } from '../../core/rpc/client.ts'
import { PLAIN_TRANSPORT, urlOf, type Transport } from '../../core/rpc/transport.ts'
import { OPEN_CONTEXT, peerIdentity, type RpcContext } from '../../core/security/caller.ts'
import type { ServiceIdentity } from '../../core/security/identity.ts'
import { startIdentity, type IdentitySource } from '../../core/security/identity-source.ts'
import { administratorsOf } from '../../core/security/administrators.ts'
import { certCaller, checkRule } from '../../core/security/peer-access.ts'
import { authorizeDatanode, untilBlockTokens, checkBlockRoute, DATANODE_ACCESS, type BlockTokenCheck } from './access.ts'
import { blockFile, chunksDir, containerFile, metadataDbPath, pipelineDir, pipelinesDir } from './layout.ts'
import { BlockFiles } from './block-files.ts'
import { ContainerScanner, type ScannerHost } from './container-scanner.ts'
import { writeChunkData, type ChunkData, type ChunkDataWrite, type WriteChunkArgs } from './chunk-write.ts'
import { blockChunks } from './pipeline/block-chunks.ts'
import { chunkKey, sameBytes, type PipelineEntry, type WriteChunkEntry } from './pipeline/entries.ts'
import { PipelineGroup, type PipelineReplica } from './pipeline/group.ts'
import { ContainerCopies, containerFileText, sweepCopyLeftovers } from './container-copy.ts'
import { ContainerReplication, parseReplicateCommand } from './container-replication.ts'
import { BlockTokenGuard } from './block-tokens.ts'
import { checkReplicaIndex, ecReplicaIndex, isEcReplica, isEcReplication, listBlocks } from './ec-replica.ts'
import { EcReconstructions, parseReconstructCommand } from './ec-reconstruction.ts'
import { copyBytes } from '../../core/copy-bytes.ts'
import { fullVolumeMessage, VolumeSpace } from './volume-space.ts'

/** A chunk fetched from a member that this datanode failed to write (holdChunk stops asking members). */
class LocalWriteError extends Error {
  constructor(override readonly cause: O3Error) { super(cause.message) }
}

/** Codes of a failing or full disk from the file system (opening a block file, making its folder). */
const DISK_ERRNOS: Record<string, 'DISK_FULL' | 'IO_ERROR'> = { ENOSPC: 'DISK_FULL', EDQUOT: 'DISK_FULL', EIO: 'IO_ERROR', EROFS: 'IO_ERROR' }

/** `err` as this node's disk failing a write (the worker's DISK_FULL or IO_ERROR, or a file system call's), else undefined. */
function localDiskError(err: unknown): O3Error | undefined {
  if (err instanceof O3Error) return err.code === 'DISK_FULL' || err.code === 'IO_ERROR' ? err : undefined
  const code = DISK_ERRNOS[String((err as NodeJS.ErrnoException | undefined)?.code)]
  return code === undefined ? undefined : new O3Error(code, (err as Error).message, { cause: err })
}

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
  /** The log index of the pipeline entry that committed it (Ozone's BCSID): a replay at or below it changes nothing. */
  bcsid?: number
  /** EC: the key bytes of the block group this replica belongs to (the largest putBlock named). */
  blockGroupLength?: number
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
  /** The highest log index of a putBlock this container committed (Ozone's container BCSID): a replay at or below it changes nothing. */
  bcsid?: number
  /** Why the container scanner marked this replica UNHEALTHY. */
  unhealthyReason?: string
  /** EC: which replica of the group this is, 1..k+m (1..k data, k+1..k+m parity); 0 or absent for RATIS. */
  replicaIndex?: number
}

export interface Volume {
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
  /**
   * RATIS replicas deleted from this volume, by container id, each with the pipeline whose
   * log may name it: a replay of that log (at a restart, or a follower catching up) would make
   * the container again, empty and OPEN. Entries for one are refused instead. Dropped with the
   * pipeline's group (its log is gone then); a copy imported later is held, and wins.
   */
  deletedContainers: Database<string, number>
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
  /** With security.enabled=1: an identity source in process (tests); default: enroll with security.bootstrapToken. */
  identity?: IdentitySource
}

const SLAB_BYTES = CHUNK_SIZE_BYTES_MAX + CHECKSUM_BYTES_MAX
/** A default-size chunk and its checksums at the smallest window and widest checksum. */
const READ_BUFFER_BYTES = CHUNK_SIZE_BYTES_DEFAULT + (CHUNK_SIZE_BYTES_DEFAULT / BYTES_PER_CHECKSUM_MIN) * 32
/** Chunks up to the default size are received into slabs of this size, larger ones into SLAB_BYTES. */
const CHUNK_SLAB_BYTES = READ_BUFFER_BYTES

/** What /chunk/write answers in `result`: the length written and, at a pipeline's leader, its entry's log index and whether every member holds it. */
interface WriteChunkAnswer {
  length: number
  index?: number
  allCommitted?: boolean
}

/** A chunk's bytes on this node ahead of its entry: the checksums they were verified against, once written. */
interface StagedChunk {
  checksums: Promise<Uint8Array>
  atMs: number
}

export class Datanode implements PipelineReplica, LocalDatanode {
  readonly metrics = new ServiceMetrics('datanode')
  private readonly config: O3Config
  private scms: RpcClient[] = []
  /** Security on: the certificate this datanode serves and calls with (its id is the datanode's). */
  private identity: ServiceIdentity | undefined
  /**
   * Security on: admits a caller of a block route that is not a datanode or SCM peer. Until
   * block tokens are verified here (issue 16 part "tokens"), every caller (untilBlockTokens).
   */
  blockTokenCheck: BlockTokenCheck = untilBlockTokens
  private readonly slabs: SizedSlabPools
  /** Chunk reads land here (default-size chunks; a larger read gets a buffer of its own). */
  readonly readBuffers: BufferPool<SharedArrayBuffer>
  /** For /pipeline/ID/chunk-data: bounds what its reads hold at once. */
  private readonly chunkDataBuffers = BufferPool.shared(CHUNK_SIZE_BYTES_MAX, DATANODE_CHUNK_DATA_BUFFERS)
  private readonly volumes: Volume[] = []
  /** Each volume's free space against its reserve (datanode.volume.minFreeBytes). */
  readonly space: VolumeSpace
  /** Each volume's in_use.lock, held from start to stop. */
  private locks: DirLock[] = []
  private readonly containers = new Map<ContainerId, ContainerData>()
  private readonly pending = new Map<string, PendingBlock>()
  /** Block files open for writing between chunks. */
  private readonly blockFiles = new BlockFiles(DATANODE_OPEN_BLOCK_FILES_MAX, DATANODE_BLOCK_FILE_IDLE_MS)
  /** Block-deletion transactions done here, to acknowledge in the next heartbeat. Lost ones are sent again by the SCM. */
  private readonly deletedTxIds: number[] = []
  /** Containers whose replicate command failed from every source, for the next heartbeat (the SCM plans them again). */
  private readonly failedCopies = new Set<ContainerId>()
  /** The Raft group of each pipeline this datanode serves. */
  private readonly groups = new Map<PipelineId, PipelineGroup>()
  /** Chunk bytes written here ahead of their writeChunk entry (chunkKey); the entry's apply drops them. */
  private readonly staged = new Map<string, StagedChunk>()
  private stagedSweeper?: ReturnType<typeof setInterval>
  readonly scanner: ContainerScanner
  private listener?: Listener
  private heartbeatTimer?: ReturnType<typeof setTimeout>
  private beating: Promise<void> | undefined
  private stopped = false
  /** Ends the short-circuit reads of this process's readers (serveLocally), once they began. */
  private leaveLocal: (() => void) | undefined
  /** Calls without HTTP under way (short-circuit reads and writes, Raft batches): stop() waits for them. */
  private readonly localCalls = new LocalCalls()
  /** Ends the local Raft deliveries of this process's pipeline peers (serveRaftLocally), once they began. */
  private leaveLocalRaft: (() => void) | undefined
  /** Container copies: export, import, delete of replicas (issue 13). */
  readonly copies: ContainerCopies
  /** replicateContainer commands, a bounded number at once. */
  readonly replication: ContainerReplication
  /** reconstructECContainer commands this datanode coordinates, a bounded number at once. */
  readonly reconstruction: EcReconstructions
  /** Security on: the block-token check of chunk reads and writes, putBlock and getBlock (block-tokens.ts). */
  private readonly blockTokens: BlockTokenGuard
  id = '' as DatanodeId
  clusterId = ''

  constructor(private readonly options: DatanodeOptions) {
    this.config = options.config
    // Every SCM of the group hears each heartbeat (each knows the datanodes itself, as in
    // Ozone); only the leader answers with commands.
    this.slabs = new SizedSlabPools(CHUNK_SLAB_BYTES, DATANODE_CHUNK_SLABS, SLAB_BYTES, DATANODE_LARGE_CHUNK_SLABS)
    this.readBuffers = BufferPool.shared(READ_BUFFER_BYTES, DATANODE_READ_BUFFERS)
    this.space = new VolumeSpace(this.dirs, this.config['datanode.volume.minFreeBytes'], (dir, room) => {
      if (!room.full) {
        log.info(`datanode ${this.id}: volume ${dir} has room again (${room.availableBytes} bytes free, reserve ${room.reservedBytes})`)
        return
      }
      log.warn(`datanode ${this.id}: ${fullVolumeMessage(dir, room)}: it takes no new containers, and its open ones are to be closed`)
      // Registering (which reports the volumes) tells the SCM already; once beating, the next
      // beat does, now: after the one being built, if this was found building it.
      if (this.heartbeatTimer !== undefined) queueMicrotask(() => this.heartbeatSoon())
    })
    this.copies = new ContainerCopies({
      name: () => `datanode ${this.id}`, clusterId: () => this.clusterId, volumes: this.volumes, space: this.space, containers: this.containers, slabs: this.slabs,
      forget: async (id) => {
        for (const key of [...this.pending.keys()]) if (key.startsWith(`${id}:`)) this.pending.delete(key)
        await this.blockFiles.closeContainer(id)
      },
      blockLacking: (c, localId) => this.blockLacking(c, localId),
      hasPipelineLog: (pipelineId) => this.hasPipelineLog(pipelineId),
      transport: () => this.transport(),
    })
    this.replication = new ContainerReplication({
      copies: this.copies, metrics: this.metrics, self: () => ({ id: this.id, name: `datanode ${this.id}` }), holds: (id) => this.containers.has(id), imported: () => this.heartbeatSoon(),
      failed: (id) => { if (this.failedCopies.size < DATANODE_FAILED_COPIES_REPORTED_MAX) this.failedCopies.add(id); this.heartbeatSoon() },
      corruptSource: (source, id, localId) => {
        new RpcClient('Datanode', source.address, { transport: this.transport() }).call('checkBlock', { containerId: id, localId }, { timeoutMs: BLOCK_CHECK_WAIT_MS_MAX })
          .catch((err: unknown) => log.debug(`datanode ${this.id}: asking ${source.address} to check block ${id}:${localId} failed: ${(err as Error).message}`))
      },
    })
    this.reconstruction = new EcReconstructions({ metrics: this.metrics, name: () => `datanode ${this.id}`, done: () => this.heartbeatSoon(), transport: () => this.transport() })
    this.blockTokens = new BlockTokenGuard({
      enabled: this.config['security.enabled'] === 1, name: 'datanode', rotateMs: this.config['security.secretKey.rotateMs'],
      fetch: () => firstAnswer(this.scms.map((scm) => () => scm.call<SecretKeysAnswer>('getSecretKeys', {}))),
    })
    if (this.config['security.enabled'] === 1) this.blockTokenCheck = this.blockTokens.asCheck()
    this.scanner = new ContainerScanner({
      host: this.scannerHost(), metrics: this.metrics, name: () => `datanode ${this.id}`,
      bytesPerSec: this.config['datanode.scanner.bytesPerSec'], intervalMs: this.config['datanode.scanner.intervalMs'],
    })
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
    // Before anything reads them: a second process on these volumes would share their id and files.
    this.locks = []
    try {
      for (const d of dirs) this.locks.push(DirLock.acquire(d, `datanode on ${d}`))
    } catch (err) {
      this.releaseLocks()
      throw err
    }
    const idFile = join(dirs[0], 'datanode.id')
    const saved = existsSync(idFile) ? JSON.parse(readFileSync(idFile, 'utf8')) as { id: DatanodeId; clusterId?: string } : undefined
    this.id = saved?.id ?? (randomUUID() as DatanodeId)
    if (saved === undefined) writeFileSync(idFile, JSON.stringify({ id: this.id }))
    workerPool(this.config['datanode.workerThreads'])
    this.identity = await startIdentity({
      enabled: this.config['security.enabled'], role: 'datanode', id: this.id, host: this.config.host,
      dir: dirs[0], scm: this.options.scmAddress, bootstrapToken: this.config['security.bootstrapToken'], source: this.options.identity,
    })
    // Every SCM of the group hears each heartbeat (each knows the datanodes itself, as in
    // Ozone); only the leader answers with commands.
    this.scms = this.options.scmAddress.split(',').map((a) => a.trim()).filter((a) => a.length > 0).map((a) => new RpcClient('SCM', a, { transport: this.transport() }))
    const admins = administratorsOf(this.config['o3.administrators'])
    const app = createServiceApp({
      service: 'Datanode',
      metrics: this.metrics,
      ...(this.identity === undefined ? {} : { authenticate: certCaller, authorize: authorizeDatanode(admins, () => this.blockTokenCheck) }),
      health: () => ({ id: this.id, clusterId: this.clusterId, containers: this.containers.size }),
      handlers: {
        putBlock: (a) => this.putBlock(a),
        watchForCommit: (a) => this.watchForCommit(a),
        listPipelines: () => [...this.groups.values()].map((g) => g.describe()),
        createPipeline: (a) => this.createPipeline(a),
        triggerHeartbeat: () => { this.heartbeatSoon(); return {} },
        getBlock: (a) => this.getBlock(a),
        listBlock: (a) => this.listBlock(a),
        listBlocks: (a) => {
          const c = this.containers.get(parseId<ContainerId>(a.containerId, 'containerId'))
          if (c === undefined) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot list blocks of container ${String(a.containerId)}: not on this datanode`)
          return listBlocks(c, this.volumeOf(c), a)
        },
        closeContainer: (a) => this.closeContainer(parseId<ContainerId>(a.containerId, 'containerId'), a.force === true),
        createContainer: (a) => this.createEcContainer(a),
        deleteContainer: async (a) => ({ deleted: await this.copies.deleteContainer(parseId<ContainerId>(a.containerId, 'containerId'), a.force === true) }),
        listContainers: () => [...this.containers.values()],
        scanContainer: (a) => this.scanner.scanNow(parseId<ContainerId>(a.containerId, 'containerId')),
        checkBlock: (a) => this.scanner.checkBlock(parseId<ContainerId>(a.containerId, 'containerId'), parseId<LocalId>(a.localId, 'localId')),
      },
    })
    app.post('/chunk/write', (c) => observed(this.metrics, 'writeChunk', c, () => this.writeChunk(c)))
    app.post('/chunk/read', (c) => observed(this.metrics, 'readChunk', c, () => this.readChunk(c)))
    app.post('/pipeline/:id/raft/messages', (c) => {
      try { this.allowPeers(c, 'raftMessages') } catch (err) { return errorResponse(c, err) }
      const g = this.groups.get(c.req.param('id') as PipelineId)
      if (g === undefined) return c.json({ code: 'PIPELINE_NOT_FOUND', message: `Cannot deliver raft messages: no group for pipeline ${c.req.param('id')} here` }, 404)
      // Secure: each message must come from the member the caller's certificate names, or any
      // datanode could speak as another pipeline's leader.
      const senders = this.config['security.enabled'] === 1 ? (ctx: Context, messages: readonly Message[]) => {
        const peer = peerIdentity(ctx)
        for (const m of messages) {
          if (peer === undefined || g.memberId(m.from) !== peer.id) throw new O3Error('PERMISSION_DENIED', `Cannot deliver a Raft message of pipeline ${c.req.param('id')} from member ${m.from}: the caller's certificate names ${peer?.id ?? 'nobody'}, not that member`)
        }
      } : undefined
      return receiveRaftBatch(c, (messages, wantReplies) => g.deliver(messages, wantReplies), senders)
    })
    app.get('/container/:id/export', (c) => observed(this.metrics, 'exportContainer', c, async () => {
      this.allowPeers(c, 'exportContainer')
      const asIs = c.req.query('asIs') === '1'
      return c.body(this.copies.exportStream(parseId<ContainerId>(Number(c.req.param('id')), 'containerId'), { asIs }), 200, { 'content-type': 'application/x-tar' })
    }))
    app.post('/pipeline/:id/chunk-data', (c) => observed(this.metrics, 'chunkData', c, () => this.chunkData(c)))
    this.metrics.gauge('containers', 'Containers on this datanode', () => this.containers.size)
    this.metrics.gauge('open_block_files', 'Block files held open for writing between chunks', () => this.blockFiles.size)
    this.metrics.gauge('pending_blocks', 'Blocks written but not committed', () => this.pending.size)
    // Each pipeline's Raft group as this member sees it (the OM's and SCM's are raft_*).
    const perPipeline = (read: (s: ReturnType<PipelineGroup['raftStatus']>) => number) => () => [...this.groups.values()].map((g) => [g.id, read(g.raftStatus())] as const)
    this.metrics.labeledGauge('pipeline_raft_term', 'Raft term of each pipeline this datanode is a member of', 'pipeline', perPipeline((s) => s.term))
    this.metrics.labeledGauge('pipeline_raft_leader', '1 for each pipeline this datanode leads', 'pipeline', perPipeline((s) => (s.leader ? 1 : 0)))
    this.metrics.labeledGauge('pipeline_raft_commit_index', 'Raft commit index of each pipeline', 'pipeline', perPipeline((s) => s.commit))
    this.metrics.labeledGauge('pipeline_raft_applied_index', 'Raft applied index of each pipeline (its replica state)', 'pipeline', perPipeline((s) => s.applied))
    this.listener = await serveApp(app, { host: this.config.host, port: this.options.port ?? this.config['datanode.port'], name: 'datanode', ...(this.identity === undefined ? {} : { tls: this.identity.serverTls() }) })

    // The cluster id comes from the SCM at first registration; afterwards the volumes hold it.
    this.clusterId = saved?.clusterId ?? ''
    if (this.clusterId === '') {
      await this.register(true)
      writeFileSync(idFile, JSON.stringify({ id: this.id, clusterId: this.clusterId }))
    }
    this.openVolumes()
    await sweepCopyLeftovers(this.volumes, this.clusterId, `datanode ${this.id}`, (pipelineId) => this.hasPipelineLog(pipelineId))
    this.sweepOrphanBlockFiles(startedAtMs)
    await this.reopenPipelines()
    // Only where the group's log is gone: one that failed to open keeps its folder, and a later createPipeline replays it.
    await this.forgetDeletedContainers((pipelineId) => !this.hasPipelineLog(pipelineId))
    this.stagedSweeper = setInterval(() => this.sweepStaged(), PIPELINE_STAGED_TTL_MS / 4)
    this.stagedSweeper.unref?.()
    this.scanner.start()
    this.blockTokens.start()
    if (saved?.clusterId !== undefined) await this.register(false).catch((err) => log.warn(`datanode ${this.id}: SCM not reachable yet: ${(err as Error).message}`))
    this.scheduleHeartbeat()
    // With security on, calls stay on HTTPS: the caller's certificate and block token are checked there.
    const shortCircuit = this.config['datanode.shortCircuitReads'] === 1 || this.config['datanode.shortCircuitWrites'] === 1
    if (!this.stopped && this.identity === undefined && shortCircuit) this.leaveLocal = serveLocally(this.address, this)
    // Pipeline peers in this process hand their Raft batches over without HTTP, as forwards go.
    if (!this.stopped && this.identity === undefined && this.config['datanode.shortCircuitWrites'] === 1) {
      this.leaveLocalRaft = serveRaftLocally(`http://${this.address}`, (path, messages, wantReplies) => {
        const id = /^\/pipeline\/([^/]+)\/raft\/messages$/.exec(path)?.[1]
        const g = id === undefined || !this.servesLocally() ? undefined : this.groups.get(id as PipelineId)
        if (g === undefined) return null
        const delivered = g.deliver(messages, wantReplies)
        return delivered === undefined ? undefined : this.localCalls.track(delivered)
      })
    }
    log.info(`datanode ${this.id} listening on ${this.address}`)
  }

  async stop(): Promise<void> {
    this.stopped = true
    // Readers and writers in this process reach it over HTTP from now on, as any stopped datanode.
    this.leaveLocal?.()
    this.leaveLocal = undefined
    this.leaveLocalRaft?.()
    this.leaveLocalRaft = undefined
    clearTimeout(this.heartbeatTimer)
    clearInterval(this.stagedSweeper)
    this.blockTokens.stop()
    await this.replication.stop()
    await this.reconstruction.stop()
    await this.scanner.stop()
    await Promise.all([...this.groups.values()].map((g) => g.stop()))
    this.groups.clear()
    // The local calls under way settle as the listener's requests do, before files and databases close.
    await Promise.all([this.listener?.close(), this.localCalls.settled()])
    await this.blockFiles.closeAll()
    await this.beating
    for (const v of this.volumes) await v.db.close()
    this.volumes.length = 0
    this.identity?.stop()
    this.releaseLocks()
  }

  private releaseLocks(): void {
    for (const l of this.locks.splice(0)) l.release()
  }

  /** How this datanode calls the others and the SCM: plain HTTP, or its identity when security is on. */
  transport(): Transport {
    return this.identity?.transport() ?? PLAIN_TRANSPORT
  }

  /** Who called a raw route: open when security is off, else the peer certificate's. */
  private contextOf(c: Context): RpcContext {
    return this.identity === undefined ? OPEN_CONTEXT : { caller: certCaller(c) }
  }

  /** A raw route between datanodes (raft messages, chunk data, container export): throws unless the caller may. */
  private allowPeers(c: Context, route: 'raftMessages' | 'chunkData' | 'exportContainer'): void {
    checkRule(DATANODE_ACCESS[route], this.contextOf(c), new Set(), `call the datanode's ${route}`)
  }

  /** A raw block route (/chunk/write, /chunk/read): a datanode or SCM peer, or what blockTokenCheck admits. */
  private async allowBlock(c: Context, method: 'writeChunk' | 'readChunk', a: { containerId?: unknown; localId?: unknown; token?: unknown }): Promise<void> {
    if (this.identity === undefined) return
    const token = requestHeader(c, 'x-o3-block-token') ?? (typeof a.token === 'string' ? a.token : undefined)
    await checkBlockRoute(this.contextOf(c), method, { containerId: a.containerId, localId: a.localId }, token, this.blockTokenCheck)
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
        deletedContainers: db.openDB({ name: 'deletedContainers', keyEncoding: 'uint32' }),
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
      // An open container's chunks may belong to entries its pipeline's log replays.
      if (c.state === 'OPEN' || c.state === 'CLOSING') continue
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
    return this.dirs.map((dir, i) => ({ dir, ...this.space.room(i), usedBytes: used[i] }))
  }

  /**
   * Ozone's container actions: a CLOSE for every open container on a full volume (the SCM
   * closes it through its pipeline), sent with each heartbeat until it is closed.
   */
  private containerActions(): { containerId: ContainerId; action: 'CLOSE'; reason: 'VOLUME_FULL' }[] {
    const full = this.dirs.map((_, i) => this.space.room(i).full)
    const out: { containerId: ContainerId; action: 'CLOSE'; reason: 'VOLUME_FULL' }[] = []
    for (const c of this.containers.values()) {
      if (c.state === 'OPEN' && full[c.volume] && out.length < HEARTBEAT_COMMANDS_MAX) out.push({ containerId: c.id, action: 'CLOSE', reason: 'VOLUME_FULL' })
    }
    return out
  }

  /**
   * Refuses a write entering the cluster here (a pipeline leader's chunk, an EC replica's)
   * into a full volume: CONTAINER_NOT_OPEN while another volume has room (the writer takes a
   * new container, which goes there), else DISK_FULL naming this node (the writer excludes
   * it). Entries a group already agreed on are applied regardless: that is what the reserve is for.
   */
  private refuseIfFull(containerId: number, action: string): void {
    const c = this.containers.get(containerId as ContainerId)
    const refusal = this.space.refusal(c?.volume)
    if (refusal === undefined) return
    const i = c?.volume ?? 0
    const why = fullVolumeMessage(this.dirs[i], this.space.room(i))
    // Another volume has room: the writer takes a new container (made there), and keeps this node.
    if (refusal === 'container') throw new O3Error('CONTAINER_NOT_OPEN', `Cannot ${action}: container ${containerId} is on a full volume (${why}); it is to be closed`)
    throw new O3Error('DISK_FULL', `Cannot ${action} on datanode ${this.address}: every volume is full (${why})`, { node: this.address })
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

  private scheduleHeartbeat(delayMs = this.config['datanode.heartbeatIntervalMs']): void {
    if (this.stopped) return
    clearTimeout(this.heartbeatTimer)
    this.heartbeatTimer = setTimeout(() => {
      this.beating = this.heartbeat().finally(() => { this.beating = undefined; this.scheduleHeartbeat() })
    }, delayMs)
  }

  /** Heartbeats now (the SCM has commands waiting, or a group's state changed), or right after the one in flight. */
  private heartbeatSoon(): void {
    if (this.beating === undefined) this.scheduleHeartbeat(0)
    else void this.beating.then(() => this.scheduleHeartbeat(0))
  }

  async heartbeat(): Promise<void> {
    const deleted = this.deletedTxIds.splice(0, HEARTBEAT_COMMANDS_MAX)
    const failedCopies = [...this.failedCopies]
    this.failedCopies.clear()
    type Commands = { commands: ({ type: string; txId?: number; containerId?: number; localIds?: number[]; pipelineId?: string } & Record<string, unknown>)[] }
    const containers = [...this.containers.values()].map((c) => ({ containerId: c.id, state: c.state, usedBytes: c.usedBytes, blockCount: c.blockCount, bcsid: c.bcsid ?? 0, replicaIndex: c.replicaIndex ?? 0 }))
    const volumes = this.volumeReports()
    const containerActions = this.containerActions()
    const pipelines = [...this.groups.values()].map((g) => g.report())
    const answers = await Promise.allSettled(this.scms.map((scm) => scm.call<Commands>('heartbeat', { id: this.id, volumes, containers, containerActions, deleted, failedCopies, pipelines })))
    const commands: Commands['commands'] = []
    for (const a of answers) {
      if (a.status === 'fulfilled') commands.push(...a.value.commands)
      else log.debug(`datanode ${this.id}: heartbeat failed: ${(a.reason as Error).message}`)
    }
    // Acknowledged deletions go to every SCM; the leader records them. Heard by none: again next time.
    if (answers.every((a) => a.status === 'rejected')) {
      this.deletedTxIds.unshift(...deleted)
      for (const id of failedCopies) if (!this.containers.has(id)) this.failedCopies.add(id)
      return
    }
    // One failed command must not cost the others: each is tried on its own.
    for (const cmd of commands.slice(0, HEARTBEAT_COMMANDS_MAX)) {
      try {
        await this.command(cmd)
      } catch (err) {
        log.debug(`datanode ${this.id}: command ${cmd.type} failed: ${(err as Error).message}`)
      }
    }
  }

  /** Runs one SCM command (from a heartbeat answer; tests call it too). An unknown type is ignored. */
  async command(cmd: { type: string; txId?: number; containerId?: number; localIds?: number[]; pipelineId?: string } & Record<string, unknown>): Promise<void> {
    if (cmd.type === 'reregister') await this.register(false)
    else if (cmd.type === 'closeContainer') await this.closeContainer(parseId<ContainerId>(cmd.containerId, 'containerId'), cmd.force === true)
    else if (cmd.type === 'deleteBlocks') await this.deleteBlocksCommand(parseId<ContainerId>(cmd.containerId, 'containerId'), (cmd.localIds ?? []).map((l) => parseId<LocalId>(l, 'localId')), cmd.txId === undefined ? undefined : parseId<number>(cmd.txId, 'txId'))
    else if (cmd.type === 'createPipeline') await this.createPipeline(cmd)
    else if (cmd.type === 'closePipeline') await this.closePipeline(String(cmd.pipelineId) as PipelineId)
    else if (cmd.type === 'replicateContainer') this.replication.add(parseReplicateCommand(cmd))
    else if (cmd.type === 'reconstructECContainer') this.reconstruction.add(parseReconstructCommand(cmd))
    else if (cmd.type === 'deleteContainer') await this.copies.deleteContainer(parseId<ContainerId>(cmd.containerId, 'containerId'), cmd.force === true)
  }

  // --- containers -----------------------------------------------------------------------

  private volumeOf(c: ContainerData): Volume {
    const v = this.volumes[c.volume]
    assert(v !== undefined, `container ${c.id} on unknown volume ${c.volume}`)
    return v
  }

  /** Writes the container file and issues its record's write (in order with later LMDB writes); the promise says when it is done. */
  private writeContainerFile(c: ContainerData): Promise<boolean> {
    const v = this.volumeOf(c)
    const path = containerFile(v.dir, this.clusterId, c.id)
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path + '.tmp', containerFileText(c))
    renameSync(path + '.tmp', path)
    return v.containers.put(c.id, c)
  }

  /** The container, made (its file written, its record's write issued) if this is its first write here. */
  private openContainer(args: Pick<WriteChunkArgs, 'containerId' | 'replication' | 'pipelineId' | 'replicaIndex'>): ContainerData {
    const id = args.containerId as ContainerId
    const existing = this.containers.get(id)
    if (existing !== undefined) {
      if (args.replicaIndex !== undefined) checkReplicaIndex(existing, args.replicaIndex, `write to container ${id}`)
      if (existing.state !== 'OPEN') throw new O3Error('CONTAINER_NOT_OPEN', `Cannot write to container ${id}: it is ${existing.state}`)
      return existing
    }
    if (this.wasDeleted(id)) {
      throw new O3Error('CONTAINER_NOT_FOUND', `Cannot write to container ${id}: its replica was deleted from this datanode, and is not made again`)
    }
    // Containers are created by their first write, on the volume with room holding the
    // fewest; with every one full (an entry the group agreed on), on the roomiest. Which
    // volume is this node's own affair, not the group's state: free space may decide it, in apply too.
    const counts = this.volumes.map(() => 0)
    for (const c of this.containers.values()) counts[c.volume]++
    const volume = this.space.choose(counts) ?? this.space.roomiest().index
    const c: ContainerData = { id, state: 'OPEN', replication: args.replication, pipelineId: args.pipelineId, createdAtMs: Date.now(), blockCount: 0, usedBytes: 0, volume, replicaIndex: args.replicaIndex ?? 0 }
    this.containers.set(id, c)
    this.writeContainerFile(c).catch((err: unknown) => log.error(`datanode ${this.id}: cannot record container ${id}: ${(err as Error).message}`))
    return c
  }

  /** An empty EC replica (the reconstruction coordinator makes one on each target first, as Ozone's createRecoveringContainer); refused where one is held. */
  private createEcContainer(a: { containerId?: unknown; replication?: unknown; replicaIndex?: unknown; pipelineId?: unknown }): { state: ContainerState } {
    const id = parseId<ContainerId>(a.containerId, 'containerId')
    const replicaIndex = ecReplicaIndex(String(a.replication), a.replicaIndex, `create container ${id}`)
    if (this.containers.has(id)) throw new O3Error('CONTAINER_EXISTS', `Cannot create container ${id}: this datanode holds a replica already`)
    this.refuseIfFull(id, `create container ${id}`)
    const c = this.openContainer({ containerId: id, replication: String(a.replication), pipelineId: typeof a.pipelineId === 'string' ? a.pipelineId : '', replicaIndex })
    return { state: c.state }
  }

  /**
   * Closes a container (SCM command or RPC). One of a live pipeline is closed through its log,
   * so every replica closes at the same index: the leader proposes, a follower leaves it to
   * the leader. One whose group is gone or diverged cannot be closed in step with the others:
   * it is QUASI_CLOSED, as in Ozone. With `force`, a QUASI_CLOSED replica is CLOSED (the SCM
   * force-closes the quasi-closed replicas with the highest BCSID, as Ozone's does).
   */
  async closeContainer(id: ContainerId, force = false): Promise<{ state: ContainerState }> {
    const c = this.containers.get(id)
    if (c === undefined) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot close container ${id}: not on this datanode`)
    if (force && c.state === 'QUASI_CLOSED') {
      c.state = 'CLOSED'
      await this.writeContainerFile(c)
      log.info(`datanode ${this.id}: container ${id} force-closed from QUASI_CLOSED (bcsid ${c.bcsid ?? 0})`)
      return { state: c.state }
    }
    if (c.state !== 'OPEN' && c.state !== 'CLOSING') return { state: c.state }
    // An EC replica has no group to close in step with: it closes at once (Ozone closes EC containers on each node).
    if (isEcReplica(c)) {
      await this.closeReplica(c, 'CLOSED')
      return { state: c.state }
    }
    const g = this.groups.get(c.pipelineId as PipelineId)
    if (g !== undefined && !g.isDiverged) {
      if (g.isLeader()) await g.propose({ op: 'closeContainer', containerId: id }, 'close container')
      return { state: c.state }
    }
    await this.closeReplica(c, 'QUASI_CLOSED')
    return { state: c.state }
  }

  /** Closes this replica of a container: no more writes, its pending chunks and open files go. */
  private async closeReplica(c: ContainerData, state: 'CLOSED' | 'QUASI_CLOSED'): Promise<void> {
    const id = c.id
    if (c.state === 'OPEN' || c.state === 'CLOSING') {
      c.state = state
      for (const key of [...this.pending.keys()]) if (key.startsWith(`${id}:`)) this.pending.delete(key)
      await this.blockFiles.closeContainer(id)
      await this.writeContainerFile(c)
      const v = this.volumeOf(c)
      await v.db.transaction(() => {
        for (const key of v.deleted.getKeys({ start: [id, 0], end: [id + 1, 0] })) v.deleted.remove(key)
      })
      log.debug(`datanode ${this.id}: container ${id} ${state}`)
    }
  }

  /** What the container scanner reads here, and how it marks a replica UNHEALTHY. */
  private scannerHost(): ScannerHost {
    return {
      containerIds: () => [...this.containers.keys()],
      container: (id) => this.containers.get(id),
      blocksAfter: (c, after, limit) => [...this.volumeOf(c).blocks.getRange({ start: [c.id, after + 1], end: [c.id + 1, 0], limit }).map(({ value }) => value)],
      block: (c, localId) => this.volumeOf(c).blocks.get([c.id, localId]),
      packedBytes: (c, localId) => {
        const bytes = this.volumeOf(c).packed.getBinary([c.id, localId])
        return bytes === undefined ? undefined : new Uint8Array(bytes)
      },
      blockFilePath: (c, localId) => blockFile(this.volumeOf(c).dir, this.clusterId, c.id, localId),
      containerFilePath: (c) => containerFile(this.volumeOf(c).dir, this.clusterId, c.id),
      markUnhealthy: (c, reason) => this.markUnhealthy(c, reason),
    }
  }

  /**
   * A read or an export found a block's bytes missing, short or failing their checksums here:
   * a settled replica's block is checked at once (Ozone's on-demand scan), so a replica that
   * lost bytes is marked UNHEALTHY and replaced now, not when the next pass (days) reaches it.
   * An unsettled replica is left to its writers and the SCM (readers report mismatches there).
   */
  private blockLacking(c: ContainerData, localId: LocalId): void {
    if (c.state !== 'CLOSED' && c.state !== 'QUASI_CLOSED') return
    this.scanner.checkBlock(c.id, localId, { own: true }).catch((err: unknown) => log.debug(`datanode ${this.id}: cannot check block ${c.id}:${localId}: ${(err as Error).message}`))
  }

  /** The block's bytes lacking (IO_ERROR: short; CHUNK_NOT_FOUND: no file or packed bytes) makes blockLacking check it; the error goes on. */
  private lackingOn<T>(c: ContainerData, localId: LocalId, read: () => Promise<T>): Promise<T> {
    return read().catch((err: unknown) => {
      const code = (err as O3Error).code
      if (code === 'IO_ERROR' || code === 'CHUNK_NOT_FOUND') this.blockLacking(c, localId)
      throw err
    })
  }

  /** A replica found corrupt: UNHEALTHY for good (its file and record say so), out of reads, reported to the SCM now. */
  private async markUnhealthy(c: ContainerData, reason: string): Promise<void> {
    // Deleted meanwhile: writing its file and record would bring it back.
    if (c.state === 'UNHEALTHY' || this.containers.get(c.id) !== c) return
    c.state = 'UNHEALTHY'
    c.unhealthyReason = reason
    await this.writeContainerFile(c)
    this.heartbeatSoon()
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

  /**
   * A deletion from the SCM. Blocks of an open container of a live pipeline are deleted
   * through its log, in order with the putBlocks (the leader proposes; every replica
   * acknowledges the transaction once it applied it); others here and now.
   */
  private async deleteBlocksCommand(id: ContainerId, localIds: LocalId[], txId: number | undefined): Promise<void> {
    const c = this.containers.get(id)
    const g = c === undefined ? undefined : this.groups.get(c.pipelineId as PipelineId)
    if (c !== undefined && c.state === 'OPEN' && g !== undefined && !g.isDiverged && txId !== undefined) {
      if (g.isLeader()) await g.propose({ op: 'deleteBlocks', containerId: id, localIds, txId }, 'delete blocks')
      return
    }
    await this.deleteBlocks(id, localIds)
    if (txId !== undefined) this.deletedTxIds.push(txId)
  }

  // --- pipelines ------------------------------------------------------------------------

  private groupDir(pipelineId: string): string {
    return pipelineDir(this.dirs[0], this.clusterId, pipelineId)
  }

  /** Whether this datanode keeps pipeline `pipelineId`'s Raft log (its group's folder), whose replay may name the pipeline's containers. */
  private hasPipelineLog(pipelineId: string): boolean {
    return existsSync(this.groupDir(pipelineId))
  }

  /** Was this datanode's replica of container `id` deleted while its pipeline's log may still name it (Volume.deletedContainers)? */
  private wasDeleted(id: ContainerId): boolean {
    return this.volumes.some((v) => v.deletedContainers.get(id) !== undefined)
  }

  /** Drops the deletion records of containers whose pipeline log matches `gone`: no log is left to replay them. */
  private async forgetDeletedContainers(gone: (pipelineId: string) => boolean): Promise<void> {
    for (const v of this.volumes) {
      await v.db.transaction(() => {
        for (const { key, value } of v.deletedContainers.getRange()) if (gone(value)) v.deletedContainers.remove(key)
      })
    }
  }

  /** Starts the groups this datanode ran before it stopped (their logs replay what was not applied). */
  private async reopenPipelines(): Promise<void> {
    let names: string[]
    try { names = readdirSync(pipelinesDir(this.dirs[0], this.clusterId)) } catch { return }
    for (const name of names) {
      const dir = join(pipelinesDir(this.dirs[0], this.clusterId), name)
      const file = PipelineGroup.readMembers(dir)
      if (file === undefined || file.pipelineId !== name) continue
      try {
        const g = await PipelineGroup.open({ pipelineId: file.pipelineId, replication: file.replication, members: file.members, self: this.id, dir, replica: this, campaign: false, sync: this.config['db.sync'] === 1, transport: this.identity?.transport() })
        this.groups.set(g.id, g)
      } catch (err) {
        log.warn(`datanode ${this.id}: cannot reopen pipeline ${name}: ${(err as Error).message}`)
      }
    }
  }

  /** The SCM's createPipeline (command or RPC): starts the group, or points a running one at the members' addresses. */
  private async createPipeline(a: Record<string, unknown>): Promise<{ pipelineId: string }> {
    const pipelineId = typeof a.pipelineId === 'string' && /^[A-Za-z0-9-]{1,64}$/.test(a.pipelineId) ? a.pipelineId as PipelineId : undefined
    if (pipelineId === undefined) throw new O3Error('INVALID_ARGUMENT', 'Cannot create pipeline: pipelineId missing or malformed')
    if (this.stopped) throw new O3Error('UNAVAILABLE', `Cannot create pipeline ${pipelineId}: this datanode is stopping`)
    const members = Array.isArray(a.members) ? a.members : []
    if (members.length < 1 || members.length > 3 || !members.every((m) => typeof m?.id === 'string' && typeof m?.address === 'string' && /^[\w.-]+:\d+$/.test(m.address))) {
      throw new O3Error('INVALID_ARGUMENT', `Cannot create pipeline ${pipelineId}: members must list 1 to 3 datanodes with id and host:port address`)
    }
    const list = members.map((m: DatanodeDetails) => ({ id: m.id, address: m.address }))
    if (!list.some((m) => m.id === this.id)) throw new O3Error('INVALID_ARGUMENT', `Cannot create pipeline ${pipelineId}: this datanode ${this.id} is not a member`)
    const existing = this.groups.get(pipelineId)
    if (existing !== undefined) {
      existing.updateMembers(list)
      return { pipelineId }
    }
    if (this.groups.size >= PIPELINE_GROUPS_MAX) throw new O3Error('UNAVAILABLE', `Cannot create pipeline ${pipelineId}: this datanode runs ${PIPELINE_GROUPS_MAX} already`)
    const g = await PipelineGroup.open({
      pipelineId, replication: typeof a.replication === 'string' ? a.replication : (list.length === 1 ? 'RATIS/ONE' : 'RATIS/THREE'), members: list, self: this.id,
      dir: this.groupDir(pipelineId), replica: this, campaign: a.suggestedLeaderId === this.id, sync: this.config['db.sync'] === 1, transport: this.identity?.transport(),
    })
    // Created meanwhile by a second command, or the datanode stopped while the group opened
    // (a heartbeat's answer handled during stop()): a group left running would outlive it.
    if (this.groups.has(pipelineId) || this.stopped) { await g.stop(); return { pipelineId } }
    this.groups.set(pipelineId, g)
    log.info(`datanode ${this.id}: started pipeline ${pipelineId} (${list.length} members)`)
    this.heartbeatSoon()
    return { pipelineId }
  }

  /** The SCM closed the pipeline: its group stops and its log goes; containers still open here cannot close in step. */
  private async closePipeline(pipelineId: PipelineId): Promise<void> {
    const g = this.groups.get(pipelineId)
    if (g !== undefined) {
      this.groups.delete(pipelineId)
      await g.destroy()
      log.info(`datanode ${this.id}: closed pipeline ${pipelineId}`)
    }
    await this.forgetDeletedContainers((id) => id === pipelineId)
    for (const c of this.containers.values()) if (c.pipelineId === pipelineId) await this.closeReplica(c, isEcReplica(c) ? 'CLOSED' : 'QUASI_CLOSED')
  }

  /** A member's read of a chunk's bytes from its block file, for a follower that missed them (/pipeline/:id/chunk-data). */
  private async chunkData(c: Context): Promise<Response> {
    this.allowPeers(c, 'chunkData')
    const a: { containerId?: unknown; localId?: unknown; offset?: unknown; length?: unknown } = await smallBodyJson(c, RPC_BODY_BYTES_MAX, 'Cannot read chunk data')
    const containerId = parseId<ContainerId>(a.containerId, 'containerId')
    const localId = parseId<LocalId>(a.localId, 'localId')
    const offset = parseId<number>(a.offset, 'offset')
    const length = parseId<number>(a.length, 'length')
    if (length > CHUNK_SIZE_BYTES_MAX) throw new O3Error('INVALID_ARGUMENT', `Cannot read ${length} bytes of chunk data: the limit is ${CHUNK_SIZE_BYTES_MAX}`)
    const container = this.containers.get(containerId)
    // Only a member of the container's pipeline asks, through that pipeline.
    if (container === undefined || container.pipelineId !== c.req.param('id')) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot read chunk data of container ${containerId}: not on this datanode in pipeline ${c.req.param('id')}`)
    this.assertNotDeleted(container, localId, 'read chunk data of')
    const path = blockFile(this.volumeOf(container).dir, this.clusterId, containerId, localId)
    // Reads at once hold at most DATANODE_CHUNK_DATA_BUFFERS pooled buffers; a stalled answer is cut.
    const watch = watchResponse(c)
    if (watch !== undefined) cutWhenStalled(watch, this.config['datanode.sendIdleTimeoutMs'])
    const data = await this.readInto(this.chunkDataBuffers, watch, { path, fileOffset: offset, length }, length)
    if (data.length < length) throw new O3Error('CHUNK_NOT_FOUND', `Cannot read chunk data ${containerId}:${localId} at ${offset}: the file holds ${data.length} of ${length} bytes`)
    return c.body(data as Uint8Array<ArrayBuffer>, 200, { 'content-type': 'application/octet-stream' })
  }

  // --- pipeline replica (the group's state machine calls these) ---------------------------

  async holdChunk(pipelineId: PipelineId, e: WriteChunkEntry, from: () => string[]): Promise<void> {
    const c = this.containers.get(e.containerId)
    // A replica that cannot take the chunk refuses its entry at apply, like the others would
    // (one deleted here too: it is not made again).
    if (c !== undefined ? c.state !== 'OPEN' || this.isDeleted(c, e.localId) : this.wasDeleted(e.containerId)) return
    const key = chunkKey(e.containerId, e.localId, e.offset, e.length)
    const staged = this.staged.get(key)
    if (staged !== undefined) {
      let timer: NodeJS.Timeout | undefined
      const gaveUp = new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), PIPELINE_STAGE_WAIT_MS) })
      const checksums = await Promise.race([staged.checksums, gaveUp]).catch(() => undefined).finally(() => clearTimeout(timer))
      if (checksums !== undefined && sameBytes(checksums, e.checksums)) return
    }
    const deadline = Date.now() + PIPELINE_FETCH_MS_MAX
    const lastError = new Map<string, string>()
    for (let attempt = 0; ; attempt++) {
      for (const address of from()) {
        try {
          await this.fetchChunk(pipelineId, e, address)
          return
        } catch (err) {
          // Deleted on the leader since (a deleteBlocks entry follows in the log): nothing will read these bytes.
          if (err instanceof O3Error && err.code === 'BLOCK_NOT_FOUND') return
          // The bytes came and this node could not write them (a full or failing disk): no member can help.
          if (err instanceof LocalWriteError) throw new O3Error(err.cause.code, `Cannot hold chunk ${key} of pipeline ${pipelineId}: writing it here failed: ${err.cause.message}`)
          lastError.set(address, (err as Error).message)
          log.debug(`datanode ${this.id}: fetching chunk ${key} of pipeline ${pipelineId} from ${address} failed: ${(err as Error).message}`)
        }
      }
      if (Date.now() >= deadline || this.stopped) {
        const why = [...lastError].map(([address, message]) => `${address}: ${message}`).join('; ')
        throw new O3Error('UNAVAILABLE', `Cannot hold chunk ${key} of pipeline ${pipelineId}: no member could send its bytes in ${PIPELINE_FETCH_MS_MAX} ms${why === '' ? '' : ` (${why})`}`)
      }
      await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)))
    }
  }

  /** Fetches a chunk's bytes from a member and writes them here, verified against the entry's checksums. */
  private async fetchChunk(pipelineId: PipelineId, e: WriteChunkEntry, address: string): Promise<void> {
    const t = this.transport()
    const res = await request(urlOf(t, address, `/pipeline/${pipelineId}/chunk-data`), {
      method: 'POST', dispatcher: t.dispatcher('datanode'), headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ containerId: e.containerId, localId: e.localId, offset: e.offset, length: e.length }),
      headersTimeout: RPC_TIMEOUT_MS_DEFAULT, bodyTimeout: RPC_TIMEOUT_MS_DEFAULT,
    })
    if (res.statusCode !== 200) throw await readError(res, `chunk data from ${address}`)
    const args: WriteChunkArgs = {
      containerId: e.containerId, localId: e.localId, offset: e.offset, length: e.length, checksumType: e.checksumType, bytesPerChecksum: e.bytesPerChecksum,
      replication: e.replication, pipelineId, forward: [],
    }
    // The body a chunk write reads is checksums || data: the entry's checksums, then the member's bytes.
    const pieces = res.body as AsyncIterable<Uint8Array>
    const body = {
      async *[Symbol.asyncIterator]() {
        if (e.checksums.length > 0) yield e.checksums
        yield* pieces
      },
      cancel: () => res.body.destroy(),
    }
    const container = this.openContainer(args)
    const v = this.volumeOf(container)
    try {
      await this.stageWrite(chunkKey(e.containerId, e.localId, e.offset, e.length), { args, body, path: blockFile(v.dir, this.clusterId, container.id, e.localId), packed: false, overwrites: true })
    } catch (err) {
      // The member's failures are the transfer's; a disk's failure here is this node's.
      const local = localDiskError(err)
      if (local !== undefined) throw new LocalWriteError(local)
      throw err
    }
  }

  async applyEntry(pipelineId: PipelineId, e: PipelineEntry, index: number): Promise<unknown> {
    switch (e.op) {
      case 'writeChunk': {
        const container = this.containerForEntry(pipelineId, e.containerId, e.replication)
        this.assertNotDeleted(container, e.localId, 'write chunk to')
        const key = blockIdString({ containerId: e.containerId, localId: e.localId })
        this.staged.delete(chunkKey(e.containerId, e.localId, e.offset, e.length))
        // A replay of a chunk its block already committed (the log since the last snapshot) records nothing.
        const committed = this.volumeOf(container).blocks.get([e.containerId, e.localId])
        const known = committed?.chunks.find((ch) => ch.offset === e.offset && ch.length === e.length)
        if (known === undefined || !sameBytes(known.checksums, e.checksums)) {
          const pending: PendingBlock = this.pending.get(key) ?? { chunks: new Map(), checksumType: e.checksumType, bytesPerChecksum: e.bytesPerChecksum }
          pending.chunks.set(e.offset, { offset: e.offset, length: e.length, checksums: e.checksums })
          this.pending.set(key, pending)
        }
        if (e.commit) await this.commitBlock(e.containerId, e.localId, e.offset + e.length, index)
        return { length: e.length }
      }
      case 'putSmallFile': {
        this.containerForEntry(pipelineId, e.containerId, e.replication)
        const given: PendingBlock = { chunks: new Map([[0, { offset: 0, length: e.data.length, checksums: e.checksums }]]), packed: e.data, checksumType: e.checksumType, bytesPerChecksum: e.bytesPerChecksum }
        await this.commitBlock(e.containerId, e.localId, e.data.length, index, given)
        return { length: e.data.length }
      }
      case 'putBlock':
        await this.commitBlock(e.containerId, e.localId, e.length, index)
        return { length: e.length }
      case 'closeContainer': {
        const c = this.containers.get(e.containerId)
        if (c !== undefined) await this.closeReplica(c, 'CLOSED')
        else await this.closeReplica(this.containerForEntry(pipelineId, e.containerId, ''), 'CLOSED')
        return { state: 'CLOSED' }
      }
      case 'deleteBlocks':
        await this.deleteBlocks(e.containerId, e.localIds)
        this.deletedTxIds.push(e.txId)
        return {}
    }
  }

  /** The container an entry names, made on its first entry here (with its pipeline's id). */
  private containerForEntry(pipelineId: PipelineId, id: ContainerId, replication: string): ContainerData {
    const c = this.containers.get(id)
    if (c !== undefined) {
      if (c.state !== 'OPEN') throw new O3Error('CONTAINER_NOT_OPEN', `Cannot apply to container ${id}: it is ${c.state}`)
      return c
    }
    const g = this.groups.get(pipelineId)
    return this.openContainer({ containerId: id, pipelineId, replication: replication !== '' ? replication : g?.replication ?? 'RATIS/THREE' })
  }

  snapshotOf(pipelineId: PipelineId): Uint8Array {
    const out: { key: string; checksumType: ChecksumType; bytesPerChecksum: number; chunks: { offset: number; length: number; checksums: string }[] }[] = []
    for (const [key, p] of this.pending) {
      const containerId = Number(key.split(':')[0]) as ContainerId
      if (this.containers.get(containerId)?.pipelineId !== pipelineId || p.packed !== undefined) continue
      out.push({ key, checksumType: p.checksumType, bytesPerChecksum: p.bytesPerChecksum, chunks: [...p.chunks.values()].map((ch) => ({ offset: ch.offset, length: ch.length, checksums: Buffer.from(ch.checksums).toString('base64') })) })
    }
    return new TextEncoder().encode(JSON.stringify({ pending: out }))
  }

  restore(_pipelineId: PipelineId, data: Uint8Array): void {
    if (data.length === 0) return
    const saved = JSON.parse(new TextDecoder().decode(data)) as ReturnType<typeof JSON.parse>
    for (const b of (saved.pending ?? []) as { key: string; checksumType: ChecksumType; bytesPerChecksum: number; chunks: { offset: number; length: number; checksums: string }[] }[]) {
      this.pending.set(b.key, { checksumType: b.checksumType, bytesPerChecksum: b.bytesPerChecksum, chunks: new Map(b.chunks.map((ch) => [ch.offset, { offset: ch.offset, length: ch.length, checksums: new Uint8Array(Buffer.from(ch.checksums, 'base64')) }])) })
    }
  }

  async diverged(pipelineId: PipelineId): Promise<void> {
    for (const c of this.containers.values()) if (c.pipelineId === pipelineId) await this.closeReplica(c, 'QUASI_CLOSED')
    this.heartbeatSoon()
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
    if (a.forward === undefined && isEcReplication(a.replication)) a.forward = []
    if (a.replicaIndex !== undefined && a.replicaIndex !== 0 && !isEcReplication(a.replication)) throw new O3Error('INVALID_ARGUMENT', `Cannot write chunk: replicaIndex ${JSON.stringify(a.replicaIndex)} with ${JSON.stringify(a.replication)}, only EC writes name one`)
    if (!Array.isArray(a.forward) || a.forward.length > 2 || !a.forward.every((f) => typeof f === 'string' && /^[\w.-]+:\d+$/.test(f))) throw new O3Error('INVALID_ARGUMENT', 'Cannot write chunk: forward must list at most two host:port addresses')
    return a as WriteChunkArgs
  }

  /**
   * The /chunk/write route. At the pipeline's leader: the bytes go to the block file while
   * they go on to the followers (staged there), then a writeChunk entry (metadata and
   * checksums) is proposed and the answer waits for its apply, so the chunk is on a majority.
   * A small whole block is one putSmallFile entry, its bytes in the log (Ozone's PutSmallFile).
   * With `stage`, at a follower: the bytes only, for the entry to come.
   */
  private async writeChunk(c: Context): Promise<Response> {
    const args = this.parseWriteArgs(requestHeader(c, 'x-o3-args'))
    await this.allowBlock(c, 'writeChunk', args)
    return c.json({ result: await this.writeChunkBody(args, Number(requestHeader(c, 'content-length')), requestBody(c)) })
  }

  /**
   * A short-circuit write (LocalDatanode, for writers in this process and pipeline leaders
   * forwarding here): /chunk/write's work on the body handed in, the same checks, entries
   * and answer. Counted as `writeChunkLocal` in the RPC metrics.
   */
  async writeChunkFrom(write: LocalChunkWrite): Promise<WriteChunkAnswer | undefined> {
    if (this.config['datanode.shortCircuitWrites'] !== 1 || !this.servesLocally()) return undefined
    return this.countedLocal('writeChunkLocal', () => this.writeChunkBody(this.parseWriteArgs(write.args), write.lengthBytes, write.body))
  }

  /** Whether a call without HTTP may be served: never once stopping (the caller goes over HTTP and is refused there), never with security on (HTTPS checks the caller's certificate and block token). */
  private servesLocally(): boolean {
    return !this.stopped && this.identity === undefined
  }

  /**
   * A call without HTTP, tracked for stop() to wait on, counted and timed in the RPC metrics as
   * a route's (observed) is, and an internal error logged as errorResponse logs it; an answer
   * of undefined (the call goes over HTTP instead, and is counted there) is not counted.
   */
  private countedLocal<T>(method: string, run: () => Promise<T>): Promise<T> {
    const started = performance.now()
    const count = (code: string) => {
      this.metrics.rpcRequests.inc({ method, code })
      this.metrics.rpcSeconds.observe({ method }, (performance.now() - started) / 1000)
    }
    return this.localCalls.track(run().then((answer) => {
      if (answer !== undefined) count('OK')
      return answer
    }, (err: unknown) => {
      const e = toO3Error(err)
      if (e.code === 'INTERNAL_ERROR') log.error(`internal error: ${e.message}`, e.cause ?? e)
      count(e.code)
      throw err
    }))
  }

  private async writeChunkBody(args: WriteChunkArgs, lengthBytes: number, body: RequestBody | null): Promise<WriteChunkAnswer> {
    const total = checksumsLengthBytes(args.checksumType, args.length, args.bytesPerChecksum) + args.length
    if (lengthBytes !== total) throw new O3Error('INVALID_ARGUMENT', `Cannot write chunk: body must be ${total} bytes (checksums and data)`)
    if (args.stage === true) {
      await this.stageChunk(args, body)
      return { length: args.length }
    }
    if (isEcReplication(args.replication)) return this.writeEcChunk(args, body)
    // A full node refuses even as a follower: the writer is to leave its pipeline, not look for the leader.
    this.refuseIfFull(args.containerId, `write chunk to block ${args.containerId}:${args.localId}`)
    const group = this.groupOf(args.pipelineId as PipelineId, 'write chunk')
    if (!group.isLeader()) throw group.notLeader('write chunk')
    const container = this.openContainer(args)
    this.assertNotDeleted(container, args.localId as LocalId, 'write chunk to')
    const v = this.volumeOf(container)
    const path = blockFile(v.dir, this.clusterId, container.id, args.localId as LocalId)
    const small = args.whole === true && args.commit === true && args.offset === 0 && args.length <= Math.min(SMALL_BLOCK_BYTES_MAX, this.config['datanode.smallBlockBytes'])
    let entry: PipelineEntry
    if (small) {
      const written = await this.writeChunkHere({ args: { ...args, forward: [] }, body, path, packed: true, overwrites: false })
      entry = {
        op: 'putSmallFile', containerId: container.id, localId: args.localId as LocalId, checksumType: args.checksumType, bytesPerChecksum: args.bytesPerChecksum,
        checksums: written.checksums, replication: args.replication, data: written.packed!,
      }
    } else {
      const key = chunkKey(args.containerId, args.localId, args.offset, args.length)
      const followers = group.followerAddresses()
      const checksums = await this.stageWrite(key, {
        args: { ...args, forward: followers }, body, path, packed: false, overwrites: await this.overwrites(v, container, args.localId as LocalId, args.offset, path),
        // With the leader, a majority holds the bytes; a follower left behind fetches them.
        forwardsNeeded: Math.floor(group.memberCount / 2),
      })
      entry = {
        op: 'writeChunk', containerId: container.id, localId: args.localId as LocalId, offset: args.offset, length: args.length,
        checksumType: args.checksumType, bytesPerChecksum: args.bytesPerChecksum, checksums, replication: args.replication, commit: args.commit === true,
      }
    }
    this.metrics.bytesIn.inc(args.length)
    const { index } = await group.propose(entry, 'write chunk')
    return { length: args.length, index, allCommitted: group.allCommitted(index) }
  }

  /**
   * A chunk of an EC replica (one cell, or part of one): standalone, as Ozone's EC writes are
   * (no group, no forward). The bytes go to the block file verified as on any write, the chunk
   * is recorded pending, and a putBlock (or `commit`) commits it. The container is made by its
   * first write, with the write's replica index; a write naming another index is refused.
   */
  private async writeEcChunk(args: WriteChunkArgs, body: RequestBody | null): Promise<{ length: number; index?: number }> {
    const id = args.containerId as ContainerId
    const localId = args.localId as LocalId
    const action = `write chunk to block ${id}:${localId}`
    const replicaIndex = ecReplicaIndex(args.replication, args.replicaIndex, action)
    if (args.forward.length > 0) throw new O3Error('INVALID_ARGUMENT', `Cannot ${action}: an EC write goes to each replica itself, it is not forwarded`)
    this.refuseIfFull(id, action)
    const container = this.openContainer({ ...args, replicaIndex })
    this.assertNotDeleted(container, localId, 'write chunk to')
    const key = blockIdString({ containerId: id, localId })
    // Writers that never commit (gone mid-key) leave their blocks pending until the container closes: bounded.
    if (!this.pending.has(key) && this.pending.size >= DATANODE_PENDING_BLOCKS_MAX) throw new O3Error('UNAVAILABLE', `Cannot ${action}: ${DATANODE_PENDING_BLOCKS_MAX} blocks are written here and not committed`)
    const v = this.volumeOf(container)
    const path = blockFile(v.dir, this.clusterId, id, localId)
    const written = await this.writeChunkHere({ args, body, path, packed: false, overwrites: await this.overwrites(v, container, localId, args.offset, path) })
    // Closed, deleted or its block deleted while the bytes landed: recording the chunk would outlive that.
    if (this.containers.get(id) !== container || container.state !== 'OPEN') throw new O3Error('CONTAINER_NOT_OPEN', `Cannot ${action}: the container closed meanwhile`)
    this.assertNotDeleted(container, localId, 'write chunk to')
    const pending: PendingBlock = this.pending.get(key) ?? { chunks: new Map(), checksumType: args.checksumType, bytesPerChecksum: args.bytesPerChecksum }
    pending.chunks.set(args.offset, { offset: args.offset, length: args.length, checksums: written.checksums })
    this.pending.set(key, pending)
    this.metrics.bytesIn.inc(args.length)
    if (args.commit !== true) return { length: args.length }
    const groupLength = args.blockGroupLength === undefined ? undefined : parseId<number>(args.blockGroupLength, 'blockGroupLength')
    return { length: args.length, index: await this.commitBlock(id, localId, args.offset + args.length, 'next', undefined, groupLength) }
  }

  /** A follower's copy of a chunk's bytes, forwarded by the leader while they arrive there. */
  private async stageChunk(args: WriteChunkArgs, body: RequestBody | null): Promise<void> {
    const container = this.openContainer(args)
    this.assertNotDeleted(container, args.localId as LocalId, 'write chunk to')
    const v = this.volumeOf(container)
    const path = blockFile(v.dir, this.clusterId, container.id, args.localId as LocalId)
    await this.stageWrite(chunkKey(args.containerId, args.localId, args.offset, args.length), {
      args: { ...args, forward: [] }, body, path, packed: false, overwrites: await this.overwrites(v, container, args.localId as LocalId, args.offset, path),
    })
    this.metrics.bytesIn.inc(args.length)
  }

  /**
   * Whether a chunk at `offset` lands on bytes already in the block's file: bytes a putBlock
   * committed here, or bytes of a chunk recorded or staged that an entry will (or may) commit.
   * The committed length alone is not enough: on a follower the leader has answered a commit
   * that this replica has yet to apply, and a recorded chunk is committed by a later putBlock;
   * a rewrite that turned out bad after writing its first runs over those bytes left them
   * under checksums they no longer match. Such a chunk is verified whole before any of it is
   * written (writeChunkData's `overwrites`); a chunk at the file's end streams as it arrives.
   */
  private async overwrites(v: Volume, c: ContainerData, localId: LocalId, offset: number, path: string): Promise<boolean> {
    if (offset < (v.blocks.get([c.id, localId])?.length ?? 0)) return true
    const fileBytes = (await stat(path).catch(() => undefined))?.size ?? 0
    return offset < fileBytes
  }

  /** writeChunkData with this datanode's slabs, open block files and body timeout. */
  private writeChunkHere(w: Omit<ChunkDataWrite, 'slabs' | 'blockFiles' | 'bodyIdleTimeoutMs'>): Promise<ChunkData> {
    return writeChunkData({ ...w, slabs: this.slabs, blockFiles: this.blockFiles, bodyIdleTimeoutMs: this.config['datanode.bodyIdleTimeoutMs'], transport: this.transport() })
  }

  /** Writes a chunk's bytes here, staged under `key` while they land (a follower's persistData waits on them); resolves with their checksums. */
  private stageWrite(key: string, w: Omit<ChunkDataWrite, 'slabs' | 'blockFiles' | 'bodyIdleTimeoutMs'>): Promise<Uint8Array> {
    const writing = this.writeChunkHere(w).then((written) => written.checksums)
    this.stage(key, writing)
    return writing
  }

  private stage(key: string, checksums: Promise<Uint8Array>): void {
    const entry = { checksums, atMs: Date.now() }
    this.staged.set(key, entry)
    checksums.catch(() => { if (this.staged.get(key) === entry) this.staged.delete(key) })
  }

  private sweepStaged(): void {
    const before = Date.now() - PIPELINE_STAGED_TTL_MS
    for (const [key, s] of this.staged) if (s.atMs < before) this.staged.delete(key)
  }

  private groupOf(pipelineId: PipelineId, action: string): PipelineGroup {
    const g = this.groups.get(pipelineId)
    if (g === undefined) throw new O3Error('PIPELINE_NOT_FOUND', `Cannot ${action}: this datanode runs no group for pipeline ${pipelineId}`)
    if (g.isDiverged) throw new O3Error('PIPELINE_NOT_FOUND', `Cannot ${action}: this datanode's replica of pipeline ${pipelineId} diverged; the SCM closes the pipeline`)
    return g
  }

  private async putBlock(a: { containerId?: unknown; localId?: unknown; length?: unknown; pipelineId?: unknown; replication?: unknown; replicaIndex?: unknown; blockGroupLength?: unknown }): Promise<{ length: number; index: number; allCommitted: boolean }> {
    const containerId = parseId<ContainerId>(a.containerId, 'containerId')
    const localId = parseId<LocalId>(a.localId, 'localId')
    const length = parseId<number>(a.length, 'length')
    const held = this.containers.get(containerId)
    if ((a.replicaIndex !== undefined && a.replicaIndex !== 0) || (held !== undefined && isEcReplica(held))) return this.putEcBlock(containerId, localId, length, a)
    const pipelineId = this.containers.get(containerId)?.pipelineId ?? (typeof a.pipelineId === 'string' ? a.pipelineId : undefined)
    if (pipelineId === undefined) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot commit block ${containerId}:${localId}: no such container here`)
    const group = this.groupOf(pipelineId as PipelineId, 'commit block')
    const { index } = await group.propose({ op: 'putBlock', containerId, localId, length }, 'commit block')
    return { length, index, allCommitted: group.allCommitted(index) }
  }

  /**
   * putBlock of an EC replica: committed here and now (no group), its BCSID the container's
   * next. A replica that got no chunk of the block (its cells of a short group are empty) is
   * made by a putBlock of length 0, with the replication and pipeline the args name.
   */
  private async putEcBlock(containerId: ContainerId, localId: LocalId, length: number, a: { pipelineId?: unknown; replication?: unknown; replicaIndex?: unknown; blockGroupLength?: unknown }): Promise<{ length: number; index: number; allCommitted: boolean }> {
    const action = `commit block ${containerId}:${localId}`
    const replicaIndex = parseId<number>(a.replicaIndex, 'replicaIndex')
    if (isEcReplication(a.replication)) ecReplicaIndex(a.replication as string, replicaIndex, action)
    const blockGroupLength = a.blockGroupLength === undefined ? undefined : parseId<number>(a.blockGroupLength, 'blockGroupLength')
    if (blockGroupLength !== undefined && blockGroupLength < length) throw new O3Error('INVALID_ARGUMENT', `Cannot ${action}: blockGroupLength ${blockGroupLength} is below the replica's ${length} bytes`)
    let c = this.containers.get(containerId)
    if (c === undefined) {
      if (length > 0) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot ${action}: no such container here`)
      if (!isEcReplication(a.replication)) throw new O3Error('INVALID_ARGUMENT', `Cannot ${action}: container ${containerId} is not here and the putBlock names no EC replication to make it with`)
      c = this.openContainer({ containerId, replication: a.replication as string, pipelineId: typeof a.pipelineId === 'string' ? a.pipelineId : '', replicaIndex })
    }
    checkReplicaIndex(c, replicaIndex, action)
    this.assertNotDeleted(c, localId, 'commit')
    // An empty replica of a block (its cells of a short group are all empty) gets no chunk,
    // but every file-backed block has its file, as an empty chunk's write makes one: the
    // scanner and container copies read it.
    if (length === 0) {
      const path = blockFile(this.volumeOf(c).dir, this.clusterId, containerId, localId)
      await mkdir(dirname(path), { recursive: true })
      await appendFile(path, new Uint8Array(0))
    }
    const index = await this.commitBlock(containerId, localId, length, 'next', undefined, blockGroupLength)
    return { length, index, allCommitted: true }
  }

  /** Waits (leader) until every member's log holds `index`, or the timeout: then names those that do not. */
  private async watchForCommit(a: { pipelineId?: unknown; index?: unknown; timeoutMs?: unknown }): Promise<{ allCommitted: boolean; lagging: DatanodeId[] }> {
    const group = this.groupOf(String(a.pipelineId) as PipelineId, 'watch for commit')
    const index = parseId<number>(a.index, 'index')
    const timeoutMs = Math.min(PIPELINE_WATCH_MS_MAX, parseId<number>(a.timeoutMs ?? PIPELINE_WATCH_MS_MAX, 'timeoutMs'))
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (!group.isLeader()) throw group.notLeader('watch for commit')
      if (group.allCommitted(index)) return { allCommitted: true, lagging: [] }
      if (Date.now() >= deadline) return { allCommitted: false, lagging: group.lagging(index) }
      await new Promise((r) => setTimeout(r, 5))
    }
  }

  /**
   * Commits the recorded chunks of a block as its metadata, at log `index` (0 outside a
   * pipeline; 'next' for an EC replica: one past its container's BCSID, a local counter):
   * after this the block is durable. A replayed or shortening putBlock changes nothing.
   * Resolves with the BCSID the block holds. An EC block keeps the largest `blockGroupLength`.
   */
  private commitBlock(containerId: ContainerId, localId: LocalId, length: number, index: number | 'next', given?: PendingBlock, blockGroupLength?: number): Promise<number> {
    const c = this.containers.get(containerId)
    if (c === undefined) return Promise.reject(new O3Error('CONTAINER_NOT_FOUND', `Cannot commit block ${containerId}:${localId}: no such container here`))
    if (c.state !== 'OPEN') return Promise.reject(new O3Error('CONTAINER_NOT_OPEN', `Cannot commit block ${containerId}:${localId}: container is ${c.state}`))
    const v = this.volumeOf(c)
    const key = blockIdString({ containerId, localId })
    const pending = given ?? this.pending.get(key)
    // The chunks recorded as of this entry; what is committed is read in the transaction,
    // which runs after every one issued before it: a pipeline's applies issue theirs in log
    // order without waiting for the one before to finish.
    const recorded = new Map(pending?.chunks ?? [])
    type Outcome = { kind: 'deleted' } | { kind: 'skip'; previous: BlockData | undefined } | { kind: 'refused'; error: O3Error } | { kind: 'committed'; block: BlockData }
    const issued = v.db.transaction((): Outcome => {
      if (v.deleted.doesExist([containerId, localId])) return { kind: 'deleted' }
      const previous = v.blocks.get([containerId, localId])
      // Read in the transaction: EC putBlocks of one container commit one after another.
      const at = index === 'next' ? (c.bcsid ?? 0) + 1 : index
      let decided
      try {
        decided = blockChunks(previous === undefined ? undefined : { length: previous.length, chunks: previous.chunks, bcsid: previous.bcsid ?? 0 }, recorded, length, at, key, c.bcsid ?? 0)
      } catch (err) {
        if (err instanceof O3Error) return { kind: 'refused', error: err }
        throw err
      }
      if (decided.kind === 'skip') return { kind: 'skip', previous }
      const kept = decided.chunks
      const block: BlockData = {
        containerId, localId, length, chunks: kept, packed: pending?.packed !== undefined && kept.length === 1,
        checksumType: pending?.checksumType ?? previous?.checksumType ?? 'NONE', bytesPerChecksum: pending?.bytesPerChecksum ?? previous?.bytesPerChecksum ?? 1,
        committedAtMs: Date.now(), bcsid: at,
      }
      const groupLength = Math.max(blockGroupLength ?? 0, previous?.blockGroupLength ?? 0)
      if (blockGroupLength !== undefined || previous?.blockGroupLength !== undefined) block.blockGroupLength = groupLength
      assert(checksumSizeBytes(block.checksumType) === 0 || kept.every((ch) => ch.checksums.length === checksumsLengthBytes(block.checksumType, ch.length, block.bytesPerChecksum)), 'checksums do not cover chunks')
      // The counters change in the commit that adds the block, read against the record as
      // this commit sees it: a restart then finds them exact (Ozone keeps #BLOCKCOUNT and
      // #BYTESUSED in the container's metadata table, written in putBlock's batch).
      v.blocks.put([containerId, localId], block)
      if (block.packed) v.packed.put([containerId, localId], Buffer.from(pending!.packed!.buffer, pending!.packed!.byteOffset, pending!.packed!.byteLength))
      if (previous === undefined) c.blockCount++
      c.usedBytes += length - (previous?.length ?? 0)
      c.bcsid = Math.max(c.bcsid ?? 0, at)
      v.containers.put(c.id, c)
      return { kind: 'committed', block }
    })
    return issued.then(async (o) => {
      if (o.kind === 'deleted') throw new O3Error('BLOCK_NOT_FOUND', `Cannot commit block ${key}: it was deleted`)
      if (o.kind === 'refused') throw o.error
      const bcsid = o.kind === 'committed' ? o.block.bcsid ?? 0 : o.previous?.bcsid ?? 0
      if (given !== undefined || pending === undefined) return bcsid
      if (o.kind === 'skip') {
        // A replay (the container's state ahead of the log): what the block holds is not pending.
        for (const ch of o.previous?.chunks ?? []) {
          const p = pending.chunks.get(ch.offset)
          if (p !== undefined && p.length === ch.length && sameBytes(p.checksums, ch.checksums)) pending.chunks.delete(ch.offset)
        }
      } else {
        // Chunks past `length` stay recorded: later chunks may be in the log already, and the
        // next putBlock commits them.
        for (const offset of [...pending.chunks.keys()]) if (offset < length && recorded.get(offset) === pending.chunks.get(offset)) pending.chunks.delete(offset)
      }
      if (pending.chunks.size === 0 && this.pending.get(key) === pending) this.pending.delete(key)
      if (o.kind === 'committed' && !o.block.packed) await this.blockFiles.closeIfIdle(blockFile(v.dir, this.clusterId, containerId, localId))
      return bcsid
    })
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
    // An UNHEALTHY replica still serves reads, as Ozone's do: its intact blocks may be the only
    // copies left of them (each replica of a container corrupt in a different block), and a
    // reader verifies every window it gets, going to another replica on a mismatch (key-reader.ts).
    const v = this.volumeOf(c)
    const b = v.blocks.get([containerId, localId])
    if (b === undefined) throw new O3Error('BLOCK_NOT_FOUND', `Cannot find block ${containerId}:${localId}`)
    return { c, v, b }
  }

  private getBlock(a: { containerId?: unknown; localId?: unknown }) {
    const { b } = this.block(a)
    return { containerId: b.containerId, localId: b.localId, length: b.length, packed: b.packed, checksumType: b.checksumType, bytesPerChecksum: b.bytesPerChecksum, chunks: b.chunks.map((ch) => ({ offset: ch.offset, length: ch.length })), ...(b.blockGroupLength !== undefined ? { blockGroupLength: b.blockGroupLength } : {}) }
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
   * What a read of [offset, offset + length) of a block serves (a readChunk request's
   * arguments, checked; at most one chunk's worth): the range widened to whole checksum
   * windows (they line up across chunks: every chunk but the last holds whole windows), and
   * those windows' checksums from the block's record.
   */
  private readPlan(a: { containerId?: unknown; localId?: unknown; offset?: unknown; length?: unknown }): ReadPlan {
    const { c, v, b } = this.block(a)
    const offset = parseId<number>(a.offset, 'offset')
    const wanted = parseId<number>(a.length, 'length')
    if (wanted > CHUNK_SIZE_BYTES_MAX) throw new O3Error('INVALID_ARGUMENT', `Cannot read ${wanted} bytes at once: the limit is ${CHUNK_SIZE_BYTES_MAX}`)
    if (offset + wanted > b.length) throw new O3Error('INVALID_ARGUMENT', `Cannot read ${wanted} bytes at ${offset} of block ${b.containerId}:${b.localId} (${b.length} bytes)`)
    const size = checksumSizeBytes(b.checksumType)
    const bpc = b.bytesPerChecksum
    const start = size === 0 ? offset : Math.floor(offset / bpc) * bpc
    const end = size === 0 ? offset + wanted : Math.min(b.length, Math.ceil((offset + wanted) / bpc) * bpc)
    const checksums: Uint8Array[] = []
    let checksumsLength = 0
    if (size > 0) {
      for (const ch of b.chunks) {
        if (ch.offset + ch.length <= start || ch.offset >= end) continue
        const from = Math.max(start, ch.offset) - ch.offset, to = Math.min(end, ch.offset + ch.length) - ch.offset
        const part = ch.checksums.subarray((from / bpc) * size, Math.ceil(to / bpc) * size)
        checksums.push(part)
        checksumsLength += part.length
      }
    }
    return { c, v, b, start, length: end - start, checksums, checksumsLength }
  }

  /** A packed block's bytes of the plan's range (a view of LMDB's answer, valid until the next read of it). */
  private packedRange(p: ReadPlan): Uint8Array {
    const all = p.v.packed.getBinary([p.b.containerId, p.b.localId])
    if (all === undefined) throw new O3Error('CHUNK_NOT_FOUND', `Cannot read packed block ${p.b.containerId}:${p.b.localId}`)
    if (all.length < p.start + p.length) throw shortFile(p.b, 0, all.length)
    return all.subarray(p.start, p.start + p.length)
  }

  /** /chunk/read: the plan's range as one body, data || checksums; x-o3-args says where the data starts. */
  private async readChunk(c: Context): Promise<Response> {
    const a: { containerId?: unknown; localId?: unknown; offset?: unknown; length?: unknown } = await smallBodyJson(c, RPC_BODY_BYTES_MAX, 'Cannot read chunk')
    await this.allowBlock(c, 'readChunk', a)
    const p = this.readPlan(a)
    const { v, b, start, length, checksumsLength } = p
    // A client that stops reading would hold the body's buffer (a pooled one too) for good.
    const watch = watchResponse(c)
    if (watch !== undefined) cutWhenStalled(watch, this.config['datanode.sendIdleTimeoutMs'])
    // Data and checksums go out as one body, from one buffer with room left behind the data.
    const body = await this.lackingOn(p.c, b.localId as LocalId, async () => {
      if (b.packed) {
        const packed = new Uint8Array(length + checksumsLength)
        packed.set(this.packedRange(p))
        return packed
      }
      // A pooled buffer when the read fits one and the runtime says when the response has
      // gone (so the buffer goes back only then); a buffer of its own otherwise.
      // Pooled buffers are shared memory the worker fills in place: a buffer moved to a worker
      // and back is a new ArrayBuffer to V8 on every read, fresh external memory that drove
      // back-to-back mark-compacts in `o3 local`, where the gateway shares this isolate.
      const pool = length + checksumsLength <= this.readBuffers.bufferBytes ? this.readBuffers : undefined
      const data = await this.readInto(pool, watch, { path: blockFile(v.dir, this.clusterId, b.containerId, b.localId), fileOffset: start, length }, length + checksumsLength)
      if (data.length < length) throw shortFile(b, start, data.length)
      return new Uint8Array(data.buffer, 0, length + checksumsLength)
    })
    let at = length
    for (const part of p.checksums) { copyBytes(body, at, part); at += part.length }
    return this.chunkResponse(c, body, { b, start, length, checksumsLength })
  }

  /**
   * Reads a block file range into a buffer of `pool` (`bytes` long at least) when the runtime
   * says when the answer carrying it has gone (`watch`: the buffer goes back only then), or
   * into a buffer of its own (`bytes` long) otherwise.
   */
  private async readInto(pool: BufferPool<SharedArrayBuffer> | undefined, watch: ResponseWatch | undefined, read: { path: string; fileOffset: number; length: number }, bytes: number): Promise<Uint8Array> {
    const pooled = pool === undefined || watch === undefined ? undefined : await pool.acquire(DATANODE_SLAB_WAIT_MS_MAX)
    let data: Uint8Array
    try {
      data = await runReadChunk({ ...read, into: pooled ?? new ArrayBuffer(bytes) })
    } catch (err) {
      // Dropped, not given back: a worker lost with the task may still write into it.
      if (pooled !== undefined) pool!.discard()
      throw err
    }
    if (pooled !== undefined) void watch!.done.then(() => pool!.release(pooled))
    return data
  }

  /**
   * A short-circuit read (LocalDatanode, for readers in this process): the range read
   * straight into the reader's buffer and verified there, by one worker task; a packed
   * block's bytes copied in. Counted as `readChunkLocal` in the RPC metrics.
   */
  async readChunkInto(read: LocalChunkRead): Promise<LocalChunkAnswer | undefined> {
    if (this.config['datanode.shortCircuitReads'] !== 1 || !this.servesLocally()) return undefined
    return this.countedLocal('readChunkLocal', async () => {
      const p = this.readPlan({ containerId: read.blockId.containerId, localId: read.blockId.localId, offset: read.offset, length: read.length })
      const { v, b, start, length } = p
      // A range larger than the reader's buffer is read over HTTP instead, and counted there.
      if (read.into.slab.byteLength - read.into.byteOffset < length) return undefined
      // A compact copy (a few KiB): a view would clone its whole backing buffer to the worker.
      const checksums = new Uint8Array(p.checksumsLength)
      let at = 0
      for (const part of p.checksums) { checksums.set(part, at); at += part.length }
      const into = { slab: read.into.slab, offset: read.into.byteOffset, length }
      const badWindow = await this.lackingOn(p.c, b.localId as LocalId, async () => {
        if (b.packed) {
          const data = new Uint8Array(into.slab, into.offset, length)
          data.set(this.packedRange(p))
          return length <= VERIFY_INLINE_BYTES_MAX
            ? verifyChecksums(b.checksumType, data, b.bytesPerChecksum, checksums)
            : await runVerifySlab({ type: b.checksumType, bytesPerChecksum: b.bytesPerChecksum, data: into, checksums: { slab: checksums.buffer, offset: 0, length: checksums.length } })
        }
        const r = await runReadVerify({ path: blockFile(v.dir, this.clusterId, b.containerId, b.localId), fileOffset: start, into, type: b.checksumType, bytesPerChecksum: b.bytesPerChecksum, checksums })
        if (r.length < length) throw shortFile(b, start, r.length)
        return r.badWindow
      })
      // Verified here: a mismatch is this replica's (the bytes never left the process).
      if (badWindow >= 0) this.blockLacking(p.c, b.localId as LocalId)
      this.metrics.bytesOut.inc(length)
      return { dataOffset: start, dataLength: length, checksumType: b.checksumType, bytesPerChecksum: b.bytesPerChecksum, badWindow }
    })
  }


  private chunkResponse(c: Context, body: Uint8Array, r: { b: BlockData; start: number; length: number; checksumsLength: number }): Response {
    this.metrics.bytesOut.inc(r.length)
    const args = { blockLength: r.b.length, dataOffset: r.start, dataLength: r.length, checksumType: r.b.checksumType, bytesPerChecksum: r.b.bytesPerChecksum, checksumsLength: r.checksumsLength }
    return c.body(body as Uint8Array<ArrayBuffer>, 200, { 'x-o3-args': JSON.stringify(args), 'content-type': 'application/octet-stream' })
  }
}

/** What a read of a block range serves (Datanode.readPlan). */
interface ReadPlan {
  readonly c: ContainerData
  readonly v: Volume
  readonly b: BlockData
  /** The range widened to whole checksum windows: from `start`, `length` bytes. */
  readonly start: number
  readonly length: number
  /** The windows' checksums, in order, `checksumsLength` bytes in all. */
  readonly checksums: readonly Uint8Array[]
  readonly checksumsLength: number
}

function shortFile(b: BlockData, start: number, read: number): O3Error {
  return new O3Error('IO_ERROR', `Cannot read block ${b.containerId}:${b.localId}: file holds ${start + read} of ${b.length} bytes`)
}

/** The first of `calls` to answer, tried in turn (the SCM leader answers; the others say NOT_LEADER); else the last failure. */
async function firstAnswer<T>(calls: (() => Promise<T>)[]): Promise<T> {
  let last: unknown = new O3Error('UNAVAILABLE', 'no SCM configured')
  for (const call of calls) {
    try {
      return await call()
    } catch (err) {
      last = err
    }
  }
  throw last
}
