/** @module
 * The Storage Container Manager service: datanodes (register, heartbeat, health), pipelines,
 * containers and block allocation, safemode, block deletion; state in one LMDB environment.
 * It decides with the pure modules beside it and does the I/O (LMDB, HTTP) itself.
 */
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import type { Database, RootDatabase } from 'lmdb'
import { assert } from '../../core/assert.ts'
import type { O3Config } from '../../core/config.ts'
import { openMetadataDb } from '../../core/metadata-db.ts'
import { O3Error } from '../../core/errors.ts'
import { serveApp, type Listener } from '../../core/http/serve.ts'
import { ALLOCATE_BLOCK_COUNT_MAX, DATANODE_PIPELINE_LIMIT, HEARTBEAT_COMMANDS_MAX, PIPELINES_MAX, SCM_DELETE_TXS_MAX } from '../../core/limits.ts'
import { log } from '../../core/log.ts'
import { ServiceMetrics } from '../../core/metrics.ts'
import { createServiceApp } from '../../core/rpc/server.ts'
import {
  formatReplication, parseId, parseReplication, assertWritable,
  type AllocatedBlock, type BlockId, type ContainerId, type ContainerState, type DatanodeDetails, type DatanodeId,
  type ExcludeList, type LocalId, type Pipeline, type PipelineId,
} from '../../core/wire.ts'
import { isDatanodeId, nodeHealth, nodeUsage, type NodeRecord, type VolumeReport } from './nodes.ts'
import { planAround, planPipelines } from './pipelines.ts'

/** A command the SCM hands a datanode in a heartbeat response. */
export type DatanodeCommand =
  | { type: 'closeContainer'; containerId: ContainerId }
  | { type: 'deleteBlocks'; txId: number; containerId: ContainerId; localIds: LocalId[] }
  | { type: 'reregister' }

export interface ContainerReplicaReport {
  containerId: ContainerId
  state: ContainerState
  usedBytes: number
  blockCount: number
}

/**
 * Blocks of one container to delete (Ozone's DeletedBlocksTransaction), persisted until every
 * datanode that may hold the container acknowledged it in a heartbeat: a queue in memory
 * would lose them to an SCM restart, and a datanode that is down would never get them.
 */
interface DeleteTx { id: number; containerId: ContainerId; localIds: LocalId[]; pending: DatanodeId[] }

interface ReplicaRecord { state: ContainerState; usedBytes: number; blockCount: number; reportedAtMs: number }

export interface ContainerRecord {
  id: ContainerId
  state: ContainerState
  replication: string
  pipelineId: PipelineId
  /** Block sizes reserved by allocations (a statistic; reported usage decides closing). */
  allocatedBytes: number
  createdAtMs: number
  replicas: Record<string, ReplicaRecord>
}

/** IDs are reserved in batches; the persisted ceiling is never handed out twice (Ozone's SequenceIdGenerator). */
const ID_BATCH = 1000
/** A deletion not acknowledged within this many datanode heartbeats is sent again. */
const DELETE_RESEND_HEARTBEATS = 10
/** Ozone's hdds.container.close.threshold. */
const CONTAINER_CLOSE_THRESHOLD = 0.9

export interface ScmOptions {
  config: O3Config
  /** Port to listen on; 0 picks a free one. */
  port?: number
  /** Ticks the health check, for tests that want it faster. */
  healthCheckIntervalMs?: number
}

export class StorageContainerManager {
  readonly metrics = new ServiceMetrics('scm')
  private readonly config: O3Config
  private db!: RootDatabase
  private meta!: Database<unknown, string>
  private nodesTable!: Database<NodeRecord, string>
  private pipelinesTable!: Database<Pipeline, string>
  private containersTable!: Database<ContainerRecord, number>
  private deletesTable!: Database<DeleteTx, number>
  private listener?: Listener
  private timer?: ReturnType<typeof setInterval>

  private readonly nodes = new Map<DatanodeId, NodeRecord>()
  private readonly pipelines = new Map<PipelineId, Pipeline>()
  private readonly containers = new Map<ContainerId, ContainerRecord>()
  private readonly commands = new Map<DatanodeId, DatanodeCommand[]>()
  /** Per datanode, the deletions it has yet to acknowledge and when each was last sent (0: never). */
  private readonly deletesSent = new Map<DatanodeId, Map<number, number>>()
  private nextDeleteTxId = 1
  private clusterId = ''
  private inSafeMode = true
  private next = { containerId: 0, localId: 0 }
  private ceiling = { containerId: 0, localId: 0 }
  private roundRobin = 0

  constructor(private readonly options: ScmOptions) {
    this.config = options.config
  }

  get port(): number {
    assert(this.listener !== undefined, 'SCM not started')
    return this.listener.port
  }

  get address(): string {
    return `${this.config.host}:${this.port}`
  }

  async start(): Promise<void> {
    this.db = openMetadataDb(join(this.config['scm.dir'], 'scm.db'), this.config)
    this.meta = this.db.openDB({ name: 'meta' })
    this.nodesTable = this.db.openDB({ name: 'nodeTable' })
    this.pipelinesTable = this.db.openDB({ name: 'pipelineTable' })
    this.containersTable = this.db.openDB({ name: 'containerTable', keyEncoding: 'uint32' })
    this.deletesTable = this.db.openDB({ name: 'deletedBlocksTable' })
    this.clusterId = (this.meta.get('clusterId') as string | undefined) ?? `CID-${randomUUID()}`
    await this.meta.put('clusterId', this.clusterId)
    for (const key of ['containerId', 'localId'] as const) {
      const stored = (this.meta.get(`ceiling.${key}`) as number | undefined) ?? 0
      this.next[key] = stored + 1
      this.ceiling[key] = stored
    }
    for (const { value } of this.nodesTable.getRange()) {
      // Nodes are known again only by heartbeat: until then they count as not heard from.
      this.nodes.set(value.id, { ...value, lastHeartbeatMs: 0 })
    }
    for (const { value } of this.pipelinesTable.getRange()) this.pipelines.set(value.id, value)
    for (const { value } of this.containersTable.getRange()) this.containers.set(value.id, value)
    for (const { key, value } of this.deletesTable.getRange()) {
      this.nextDeleteTxId = key + 1
      for (const dn of value.pending) this.deletesOf(dn).set(value.id, 0)
    }

    this.metrics.gauge('datanodes', 'Registered datanodes', () => this.nodes.size)
    this.metrics.gauge('datanodes_healthy', 'Healthy datanodes', () => this.healthyNodes().length)
    this.metrics.gauge('pipelines_open', 'Open pipelines', () => [...this.pipelines.values()].filter((p) => p.state === 'OPEN').length)
    this.metrics.gauge('containers', 'Containers', () => this.containers.size)
    this.metrics.gauge('safemode', '1 while in safemode', () => (this.inSafeMode ? 1 : 0))
    this.metrics.gauge('delete_txs_pending', 'Block deletions not yet acknowledged by every datanode', () => this.deletesTable.getCount())

    const app = createServiceApp({
      service: 'SCM',
      metrics: this.metrics,
      health: () => ({ clusterId: this.clusterId, safemode: this.inSafeMode }),
      handlers: {
        register: (a) => this.register(a),
        heartbeat: (a) => this.heartbeat(a),
        allocateBlock: (a) => this.allocateBlock(a),
        getContainerLocations: (a) => this.getContainerLocations(a),
        getContainer: (a) => this.containerInfo(parseId<ContainerId>(a.containerId, 'containerId')),
        listContainers: (a) => this.listContainers(a),
        listDatanodes: () => this.listDatanodes(),
        listPipelines: () => this.listPipelines(),
        safemodeStatus: () => this.safemodeStatus(),
        closeContainer: (a) => this.closeContainer(parseId<ContainerId>(a.containerId, 'containerId'), 'admin request'),
        reportCorruptReplica: (a) => this.reportCorruptReplica(a),
        deleteBlocks: (a) => this.deleteBlocks(a),
      },
    })
    this.listener = await serveApp(app, { host: this.config.host, port: this.options.port ?? this.config['scm.port'], name: 'SCM' })
    this.timer = setInterval(() => this.checkHealth(), this.options.healthCheckIntervalMs ?? Math.max(100, Math.min(1000, this.config['scm.heartbeat.staleMs'] / 4)))
    this.timer.unref()
    log.info(`SCM ${this.clusterId} listening on ${this.address}`)
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.listener?.close()
    await this.creating
    await this.db?.close()
  }

  // --- datanodes -------------------------------------------------------------------------

  private register(a: { id?: unknown; address?: unknown; volumes?: unknown }): { clusterId: string } {
    if (!isDatanodeId(a.id)) throw new O3Error('INVALID_ARGUMENT', 'Cannot register datanode: id missing or malformed')
    if (typeof a.address !== 'string' || !/^[\w.-]+:\d+$/.test(a.address)) throw new O3Error('INVALID_ARGUMENT', `Cannot register datanode ${a.id}: address must be host:port`)
    const now = Date.now()
    const previous = this.nodes.get(a.id)
    const node: NodeRecord = {
      id: a.id, address: a.address, operationalState: previous?.operationalState ?? 'IN_SERVICE',
      registeredAtMs: now, lastHeartbeatMs: now, volumes: parseVolumes(a.volumes),
    }
    this.nodes.set(node.id, node)
    void this.nodesTable.put(node.id, node)
    if (previous === undefined || previous.address !== node.address) log.info(`SCM: datanode ${node.id} registered at ${node.address}`)
    this.checkSafeMode()
    void this.createPipelines()
    return { clusterId: this.clusterId }
  }

  private async heartbeat(a: { id?: unknown; volumes?: unknown; containers?: unknown; deleted?: unknown }): Promise<{ commands: DatanodeCommand[] }> {
    if (!isDatanodeId(a.id)) throw new O3Error('INVALID_ARGUMENT', 'Cannot accept heartbeat: id missing or malformed')
    const node = this.nodes.get(a.id)
    if (node === undefined || node.lastHeartbeatMs === 0) return { commands: [{ type: 'reregister' }] }
    const wasHealthy = this.health(node) === 'HEALTHY'
    node.lastHeartbeatMs = Date.now()
    node.volumes = parseVolumes(a.volumes)
    if (Array.isArray(a.containers)) this.processContainerReport(node.id, a.containers as ContainerReplicaReport[])
    if (!wasHealthy) void this.createPipelines()
    if (Array.isArray(a.deleted)) await this.ackDeletes(node.id, a.deleted)
    const queued = this.commands.get(node.id) ?? []
    const commands = queued.splice(0, HEARTBEAT_COMMANDS_MAX)
    commands.push(...this.deleteCommandsFor(node.id, HEARTBEAT_COMMANDS_MAX - commands.length))
    return { commands }
  }

  private health(node: NodeRecord) {
    return nodeHealth(node, Date.now(), { staleMs: this.config['scm.heartbeat.staleMs'], deadMs: this.config['scm.heartbeat.deadMs'] })
  }

  private healthyNodes(): DatanodeId[] {
    return [...this.nodes.values()].filter((n) => n.operationalState === 'IN_SERVICE' && this.health(n) === 'HEALTHY').map((n) => n.id).sort()
  }

  private details(id: DatanodeId): DatanodeDetails {
    const n = this.nodes.get(id)
    assert(n !== undefined, `unknown datanode ${id}`)
    return { id, address: n.address }
  }

  /** Pipelines hold node ids; addresses are looked up now, since a restarted node may move. */
  private resolve(p: Pipeline): Pipeline {
    return { ...p, nodes: p.nodes.map((n) => this.nodes.has(n.id) ? this.details(n.id) : n) }
  }

  private checkSafeMode(): void {
    if (this.inSafeMode && this.healthyNodes().length >= this.config['scm.safemode.minDatanodes']) {
      this.inSafeMode = false
      log.info(`SCM: leaving safemode with ${this.healthyNodes().length} healthy datanodes`)
    }
  }

  private checkHealth(): void {
    for (const node of this.nodes.values()) {
      if (node.lastHeartbeatMs === 0 || this.health(node) !== 'DEAD') continue
      for (const p of this.pipelines.values()) {
        if (p.state === 'OPEN' && p.nodes.some((n) => n.id === node.id)) void this.closePipeline(p, `datanode ${node.id} is DEAD`)
      }
    }
  }

  private async closePipeline(p: Pipeline, why: string): Promise<void> {
    p.state = 'CLOSED'
    await this.pipelinesTable.put(p.id, p)
    log.info(`SCM: closed pipeline ${p.id} (${p.replication}): ${why}`)
    for (const c of this.containers.values()) if (c.pipelineId === p.id && c.state === 'OPEN') this.closeContainer(c.id, `pipeline ${p.id} closed`)
    void this.createPipelines()
  }

  private creating: Promise<void> | undefined
  /** Creates the pipelines placement asks for; serialised so that two calls do not double up. */
  private createPipelines(): Promise<void> {
    this.creating = (this.creating ?? Promise.resolve()).then(async () => {
      const open = [...this.pipelines.values()].filter((p) => p.state === 'OPEN')
      for (const plan of planPipelines({ healthy: this.healthyNodes(), open, limit: DATANODE_PIPELINE_LIMIT })) {
        await this.addPipeline(plan.replication, plan.nodes)
      }
    })
    return this.creating
  }

  private async addPipeline(replication: string, nodes: DatanodeId[]): Promise<Pipeline> {
    if (this.pipelines.size >= PIPELINES_MAX) this.prunePipelines()
    const p: Pipeline = { id: randomUUID() as PipelineId, replication, state: 'OPEN', nodes: nodes.map((id) => this.details(id)), createdAtMs: Date.now() }
    this.pipelines.set(p.id, p)
    await this.pipelinesTable.put(p.id, p)
    log.info(`SCM: created pipeline ${p.id} ${replication} on ${nodes.join(',')}`)
    return p
  }

  /** Forgets closed pipelines that no container refers to any more. */
  private prunePipelines(): void {
    const used = new Set([...this.containers.values()].map((c) => c.pipelineId))
    for (const p of this.pipelines.values()) {
      if (p.state === 'CLOSED' && !used.has(p.id)) { this.pipelines.delete(p.id); void this.pipelinesTable.remove(p.id) }
    }
  }

  // --- containers and blocks -------------------------------------------------------------

  private async reserve(kind: 'containerId' | 'localId', count: number): Promise<number> {
    const first = this.next[kind]
    this.next[kind] += count
    if (this.next[kind] - 1 > this.ceiling[kind]) {
      this.ceiling[kind] = this.next[kind] - 1 + ID_BATCH
      await this.meta.put(`ceiling.${kind}`, this.ceiling[kind])
    }
    return first
  }

  private async allocateBlock(a: { replication?: unknown; sizeBytes?: unknown; count?: unknown; excludeList?: Partial<ExcludeList> }): Promise<AllocatedBlock[]> {
    if (this.inSafeMode) throw new O3Error('SAFE_MODE', `Cannot allocate blocks: SCM is in safemode (${this.healthyNodes().length}/${this.config['scm.safemode.minDatanodes']} datanodes registered)`)
    const parsed = parseReplication(String(a.replication ?? 'RATIS/THREE'))
    assertWritable(parsed)
    const replication = formatReplication(parsed)
    const size = a.sizeBytes === undefined ? this.config['scm.block.sizeBytes'] : parseId<number>(a.sizeBytes, 'sizeBytes')
    const count = a.count === undefined ? 1 : parseId<number>(a.count, 'count')
    if (count < 1 || count > ALLOCATE_BLOCK_COUNT_MAX) throw new O3Error('INVALID_ARGUMENT', `Cannot allocate ${count} blocks: count must be 1..${ALLOCATE_BLOCK_COUNT_MAX}`)
    const exclude = {
      datanodes: new Set((a.excludeList?.datanodes ?? []) as DatanodeId[]),
      containers: new Set((a.excludeList?.containers ?? []) as ContainerId[]),
      pipelines: new Set((a.excludeList?.pipelines ?? []) as PipelineId[]),
    }
    const healthy = new Set(this.healthyNodes())
    const usable = (p: Pipeline) => p.state === 'OPEN' && p.replication === replication && !exclude.pipelines.has(p.id)
      && p.nodes.every((n) => healthy.has(n.id) && !exclude.datanodes.has(n.id))
    let candidates = [...this.pipelines.values()].filter(usable)
    if (candidates.length === 0) {
      // Ozone's WritableRatisContainerProvider: with nothing usable, try a new pipeline around the exclusions.
      await this.createPipelines()
      candidates = [...this.pipelines.values()].filter(usable)
      if (candidates.length === 0) {
        const nodes = planAround([...healthy], exclude.datanodes, parsed.factor, [...this.pipelines.values()].filter((p) => p.state === 'OPEN'))
        if (nodes !== undefined) candidates = [await this.addPipeline(replication, nodes)]
      }
    }
    if (candidates.length === 0) throw new O3Error('NO_PIPELINE', `Cannot allocate a ${replication} block: no open pipeline of healthy datanodes (${healthy.size} healthy, ${exclude.datanodes.size} excluded)`)
    const pipeline = candidates[this.roundRobin++ % candidates.length]
    const container = await this.openContainerFor(pipeline, exclude.containers)
    const first = await this.reserve('localId', count)
    container.allocatedBytes += size * count
    const blocks: AllocatedBlock[] = []
    for (let i = 0; i < count; i++) blocks.push({ blockId: { containerId: container.id, localId: (first + i) as LocalId }, pipeline: this.resolve(pipeline) })
    await this.containersTable.put(container.id, container)
    return blocks
  }

  private async openContainerFor(pipeline: Pipeline, excluded: Set<ContainerId>): Promise<ContainerRecord> {
    for (const c of this.containers.values()) {
      if (c.pipelineId === pipeline.id && c.state === 'OPEN' && !excluded.has(c.id)) return c
    }
    const id = (await this.reserve('containerId', 1)) as ContainerId
    const c: ContainerRecord = { id, state: 'OPEN', replication: pipeline.replication, pipelineId: pipeline.id, allocatedBytes: 0, createdAtMs: Date.now(), replicas: {} }
    this.containers.set(id, c)
    await this.containersTable.put(id, c)
    return c
  }

  private closeContainer(id: ContainerId, why: string): { state: ContainerState } {
    const c = this.containers.get(id)
    if (c === undefined) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot close container ${id}: not found`)
    if (c.state === 'OPEN') {
      c.state = 'CLOSING'
      log.info(`SCM: closing container ${id}: ${why}`)
      void this.containersTable.put(id, c)
    }
    if (c.state === 'CLOSING') for (const dn of this.holders(c)) this.queue(dn, { type: 'closeContainer', containerId: id })
    return { state: c.state }
  }

  /** Datanodes that may hold a replica: the pipeline's members and every node that reported one. */
  private holders(c: ContainerRecord): Set<DatanodeId> {
    const p = this.pipelines.get(c.pipelineId)
    return new Set([...(p?.nodes.map((n) => n.id) ?? []), ...Object.keys(c.replicas)] as DatanodeId[])
  }

  /** Queues a command for a datanode's next heartbeat; a close already queued is not queued again. */
  private queue(dn: DatanodeId, command: DatanodeCommand): void {
    const q = this.commands.get(dn) ?? []
    const dup = command.type === 'closeContainer' && q.some((c) => c.type === 'closeContainer' && c.containerId === command.containerId)
    if (!dup) q.push(command)
    this.commands.set(dn, q)
  }

  private processContainerReport(dn: DatanodeId, reports: ContainerReplicaReport[]): void {
    const now = Date.now()
    for (const r of reports) {
      const c = this.containers.get(r.containerId)
      if (c === undefined) continue
      const previous = c.replicas[dn]
      // A replica the SCM marked UNHEALTHY (reported corrupt) stays so until it is replaced.
      const state = previous?.state === 'UNHEALTHY' ? 'UNHEALTHY' : r.state
      c.replicas[dn] = { state, usedBytes: r.usedBytes, blockCount: r.blockCount, reportedAtMs: now }
      // Ozone closes a container once a replica reports it 90% full (what its blocks really
      // hold, not the block size each allocation reserved, which small keys never fill).
      if (c.state === 'OPEN' && r.usedBytes >= CONTAINER_CLOSE_THRESHOLD * this.config['scm.container.sizeBytes']) this.closeContainer(c.id, `full (${r.usedBytes} bytes on ${dn})`)
      if (c.state === 'CLOSING' && r.state !== 'CLOSED') this.queue(dn, { type: 'closeContainer', containerId: c.id })
      const live = Object.values(c.replicas).filter((x) => x.state !== 'UNHEALTHY')
      if (c.state === 'CLOSING' && live.length > 0 && live.every((x) => x.state === 'CLOSED')) {
        c.state = 'CLOSED'
        log.info(`SCM: container ${c.id} CLOSED`)
      }
      if (previous === undefined || previous.state !== c.replicas[dn].state || c.state === 'CLOSED') void this.containersTable.put(c.id, c)
    }
  }

  private reportCorruptReplica(a: { containerId?: unknown; datanodeId?: unknown; localId?: unknown }): { state: ContainerState } {
    const id = parseId<ContainerId>(a.containerId, 'containerId')
    const c = this.containers.get(id)
    if (c === undefined) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot mark replica of container ${id}: not found`)
    if (!isDatanodeId(a.datanodeId)) throw new O3Error('INVALID_ARGUMENT', 'Cannot mark replica: datanodeId malformed')
    const replica = c.replicas[a.datanodeId] ?? { state: 'UNHEALTHY', usedBytes: 0, blockCount: 0, reportedAtMs: Date.now() }
    replica.state = 'UNHEALTHY'
    c.replicas[a.datanodeId] = replica
    void this.containersTable.put(id, c)
    log.warn(`SCM: replica of container ${id} on ${a.datanodeId} reported corrupt (block ${String(a.localId)}), marked UNHEALTHY`)
    return { state: replica.state }
  }

  /**
   * Blocks of deleted, replaced, aborted or expired keys: one persisted transaction per
   * container, for every datanode that may hold it. Answered once committed, so the OM may
   * forget the blocks then.
   */
  private async deleteBlocks(a: { blocks?: unknown }): Promise<{ queued: number }> {
    if (!Array.isArray(a.blocks)) throw new O3Error('INVALID_ARGUMENT', 'Cannot delete blocks: blocks must be an array')
    const byContainer = new Map<ContainerId, LocalId[]>()
    for (const b of a.blocks as BlockId[]) {
      const cid = parseId<ContainerId>(b?.containerId, 'containerId')
      const localIds = byContainer.get(cid)
      if (localIds === undefined) byContainer.set(cid, [parseId<LocalId>(b.localId, 'localId')])
      else localIds.push(parseId<LocalId>(b.localId, 'localId'))
    }
    const txs: DeleteTx[] = []
    for (const [containerId, localIds] of byContainer) {
      const c = this.containers.get(containerId)
      if (c === undefined) continue
      const pending = [...this.holders(c)]
      if (pending.length > 0) txs.push({ id: 0, containerId, localIds, pending })
    }
    if (txs.length === 0) return { queued: 0 }
    if (this.deletesTable.getCount() + txs.length > SCM_DELETE_TXS_MAX) throw new O3Error('UNAVAILABLE', `Cannot accept block deletions: ${SCM_DELETE_TXS_MAX} are waiting for datanodes already`)
    for (const tx of txs) tx.id = this.nextDeleteTxId++
    await this.deletesTable.transaction(() => { for (const tx of txs) this.deletesTable.put(tx.id, tx) })
    for (const tx of txs) for (const dn of tx.pending) this.deletesOf(dn).set(tx.id, 0)
    return { queued: txs.length }
  }

  private deletesOf(dn: DatanodeId): Map<number, number> {
    let m = this.deletesSent.get(dn)
    if (m === undefined) { m = new Map(); this.deletesSent.set(dn, m) }
    return m
  }

  /** Deletions for a datanode's heartbeat: those never sent, and those it did not acknowledge in time. */
  private deleteCommandsFor(dn: DatanodeId, room: number): DatanodeCommand[] {
    const out: DatanodeCommand[] = []
    const sent = this.deletesSent.get(dn)
    if (sent === undefined) return out
    const now = Date.now()
    const resendMs = DELETE_RESEND_HEARTBEATS * this.config['datanode.heartbeatIntervalMs']
    for (const [id, at] of sent) {
      if (out.length >= room) break
      if (at !== 0 && now - at < resendMs) continue
      const tx = this.deletesTable.get(id)
      if (tx === undefined || !tx.pending.includes(dn)) { sent.delete(id); continue }
      out.push({ type: 'deleteBlocks', txId: id, containerId: tx.containerId, localIds: tx.localIds })
      sent.set(id, now)
    }
    return out
  }

  /** A datanode did these deletions: it is off their lists, and a deletion every holder did is done. */
  private async ackDeletes(dn: DatanodeId, raw: unknown[]): Promise<void> {
    const ids = raw.slice(0, HEARTBEAT_COMMANDS_MAX).filter((x): x is number => typeof x === 'number' && Number.isSafeInteger(x))
    if (ids.length === 0) return
    for (const id of ids) this.deletesSent.get(dn)?.delete(id)
    await this.deletesTable.transaction(() => {
      for (const id of ids) {
        const tx = this.deletesTable.get(id)
        if (tx === undefined) continue
        const pending = tx.pending.filter((x) => x !== dn)
        if (pending.length === 0) this.deletesTable.remove(id)
        else if (pending.length < tx.pending.length) this.deletesTable.put(id, { ...tx, pending })
      }
    })
  }

  // --- queries ---------------------------------------------------------------------------

  private getContainerLocations(a: { containerIds?: unknown }): Record<string, { state: ContainerState; pipeline: Pipeline | null; replicas: (DatanodeDetails & { state: ContainerState })[] }> {
    if (!Array.isArray(a.containerIds)) throw new O3Error('INVALID_ARGUMENT', 'Cannot look up containers: containerIds must be an array')
    const out: Record<string, { state: ContainerState; pipeline: Pipeline | null; replicas: (DatanodeDetails & { state: ContainerState })[] }> = {}
    for (const raw of a.containerIds) {
      const id = parseId<ContainerId>(raw, 'containerId')
      const c = this.containers.get(id)
      if (c === undefined) continue
      const p = this.pipelines.get(c.pipelineId)
      out[id] = {
        state: c.state,
        pipeline: p === undefined ? null : this.resolve(p),
        replicas: Object.entries(c.replicas).filter(([dn]) => this.nodes.has(dn as DatanodeId))
          .map(([dn, r]) => ({ ...this.details(dn as DatanodeId), state: r.state })),
      }
    }
    return out
  }

  private containerInfo(id: ContainerId) {
    const c = this.containers.get(id)
    if (c === undefined) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot find container ${id}`)
    const p = this.pipelines.get(c.pipelineId)
    return {
      id: c.id, state: c.state, replication: c.replication, pipelineId: c.pipelineId, allocatedBytes: c.allocatedBytes, createdAtMs: c.createdAtMs,
      pipeline: p === undefined ? null : this.resolve(p),
      replicas: Object.entries(c.replicas).map(([dn, r]) => ({ datanodeId: dn, address: this.nodes.get(dn as DatanodeId)?.address ?? '', ...r })),
    }
  }

  private listContainers(a: { state?: unknown; start?: unknown; count?: unknown }) {
    const start = a.start === undefined ? 0 : parseId<number>(a.start, 'start')
    const count = a.count === undefined ? 1000 : Math.min(1000, parseId<number>(a.count, 'count'))
    return [...this.containers.values()].filter((c) => c.id >= start && (a.state === undefined || c.state === a.state))
      .sort((x, y) => x.id - y.id).slice(0, count).map((c) => this.containerInfo(c.id))
  }

  private listDatanodes() {
    return [...this.nodes.values()].sort((x, y) => (x.id < y.id ? -1 : 1)).map((n) => ({
      id: n.id, address: n.address, state: this.health(n), operationalState: n.operationalState,
      lastHeartbeatMs: n.lastHeartbeatMs, ...nodeUsage(n),
      pipelines: [...this.pipelines.values()].filter((p) => p.state === 'OPEN' && p.nodes.some((x) => x.id === n.id)).length,
      containers: [...this.containers.values()].filter((c) => n.id in c.replicas).length,
    }))
  }

  private listPipelines(): Pipeline[] {
    return [...this.pipelines.values()].sort((x, y) => x.createdAtMs - y.createdAtMs).map((p) => this.resolve(p))
  }

  private safemodeStatus() {
    return { inSafeMode: this.inSafeMode, healthyDatanodes: this.healthyNodes().length, requiredDatanodes: this.config['scm.safemode.minDatanodes'] }
  }
}

function parseVolumes(raw: unknown): VolumeReport[] {
  if (!Array.isArray(raw)) return []
  return raw.slice(0, 64).map((v: Partial<VolumeReport>) => ({
    dir: String(v.dir ?? ''), capacityBytes: Number(v.capacityBytes) || 0, usedBytes: Number(v.usedBytes) || 0, availableBytes: Number(v.availableBytes) || 0,
  }))
}
