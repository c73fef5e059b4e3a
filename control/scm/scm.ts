/** @module
 * The Storage Container Manager service: datanodes (register, heartbeat, health), pipelines,
 * containers and block allocation, safemode, block deletion, and with security.enabled the
 * cluster's certificate authority (ca.ts), serving HTTPS with its own certificate. What the SCM group agrees on
 * (cluster id, id batches, pipelines and their states, containers, deletions) changes only
 * through Raft entries (requests/, applied to tables.ts); what each SCM learns from datanodes
 * itself (registrations, heartbeats, replica and pipeline reports, so a pipeline's leader and
 * term) and the leader's command queues stay local.
 */
import type { RootDatabase } from 'lmdb'
import { assert } from '../../core/assert.ts'
import type { O3Config } from '../../core/config.ts'
import { DirLock } from '../../core/dir-lock.ts'
import { O3Error } from '../../core/errors.ts'
import { serveApp, type Listener } from '../../core/http/serve.ts'
import {
  ALLOCATE_BLOCK_COUNT_MAX, DATANODE_PIPELINE_LIMIT, HEARTBEAT_COMMANDS_MAX, PIPELINE_NUDGE_TIMEOUT_MS, PIPELINE_OPEN_WAIT_MS,
  BLOCK_CHECK_WAIT_MS_MAX, SCM_CORRUPT_REPORT_CHECKS_MAX, SCM_CORRUPT_REPORT_CHECKS_PER_DATANODE,
} from '../../core/limits.ts'
import { log } from '../../core/log.ts'
import { entryCount } from '../../core/metadata-db.ts'
import { ServiceMetrics } from '../../core/metrics.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { createServiceApp, localServiceCall, type ServiceAppOptions } from '../../core/rpc/server.ts'
import { serveRpcLocally } from '../../core/rpc/local-services.ts'
import { PLAIN_TRANSPORT } from '../../core/rpc/transport.ts'
import { administratorsOf } from '../../core/security/administrators.ts'
import { certCaller } from '../../core/security/peer-access.ts'
import { authorizeScm } from './access.ts'
import {
  formatReplication, isEcReplication, parseId, parseReplication,
  CONTAINER_STATE_ORDER, type AllocatedBlock, type BlockId, type ContainerId, type ContainerLocation, type ContainerState, type DatanodeDetails, type DatanodeId,
  type ExcludeList, type LocalId, type Pipeline, type PipelineId, type PipelineReport, type ReplicationConfig,
} from '../../core/wire.ts'
import { ServiceIdentity } from '../../core/security/identity.ts'
import { refuseSecureUnderDeno } from '../../core/security/identity-source.ts'
import { GroupAdmin } from '../ha/group-admin.ts'
import { stateDigest } from '../ha/state-digest.ts'
import { startServiceGroup, type ReplicatedService } from '../ha/replicated-service.ts'
import { DatanodeAdminMonitor, parseAdminRequest, type AdminContainer, type AdminHost } from './node-admin/index.ts'
import { hasRoom, isDatanodeId, nodeHealth, nodeUsage, type NodeRecord, type VolumeReport } from './nodes.ts'
import {
  everyMemberReports, formingTooLong, isPipelineId, leaderFromReports, memberAddresses, parsePipelineReports, pipelineCommands, suggestLeader,
  type PipelineCommand,
} from './pipeline-groups.ts'
import { ScmCa } from './ca.ts'
import { chooseEcPipeline } from './ec-pipelines.ts'
import { planAround, planPipelines } from './pipelines.ts'
import { ReplicationManager, type ReconstructECContainerCommand, type ReplicationHost, type ReportedReplica } from './replication/index.ts'
import { replicateCommand } from './replicate-container.ts'
import { scmRequests } from './requests/index.ts'
import { SecretKeyManager } from './secret-keys.ts'
import type { IdKind } from './requests/reserve-ids.ts'
import { operationalStateOf } from './requests/set-node-state.ts'
import { openScmTables, type ContainerInfo, type DeleteTx, type PipelineRecord, type ScmTables } from './tables.ts'

/**
 * A command the SCM hands a datanode in a heartbeat response. A datanode ignores a type it
 * does not know (datapath/datanode/datanode.ts heartbeat()), so new ones may go to old nodes.
 */
export type DatanodeCommand =
  | { type: 'closeContainer'; containerId: ContainerId; force?: boolean }
  /** Pull a copy of a CLOSED/QUASI_CLOSED container from the first source that answers (the receiver is the target); `asIs`: of corrupt ones. */
  | { type: 'replicateContainer'; containerId: ContainerId; sources: DatanodeDetails[]; asIs?: true }
  /** EC (issue 14): rebuild the targets' indexes from the sources; sent to targets[0], the coordinator. */
  | ReconstructECContainerCommand
  /** Remove the replica; without force never an OPEN or CLOSING one. */
  | { type: 'deleteContainer'; containerId: ContainerId; force: boolean }
  | { type: 'deleteBlocks'; txId: number; containerId: ContainerId; localIds: LocalId[] }
  | { type: 'reregister' }
  | PipelineCommand

export interface ContainerReplicaReport {
  containerId: ContainerId
  /** 'UNHEALTHY': the datanode's container scanner found the replica corrupt (persisted with markReplicaUnhealthy). */
  state: ContainerState
  usedBytes: number
  blockCount: number
  /** The replica's block commit sequence id (the highest log index of a putBlock it committed). */
  bcsid: number
  /** EC: the replica's index in its block groups, 1..k+m; 0 or absent for RATIS (issue 14). */
  replicaIndex?: number
}

/** A replica as its datanode last reported it (this SCM's own view, not replicated). */
type ReplicaRecord = ReportedReplica

/** A deletion not acknowledged within this many datanode heartbeats is sent again. */
const DELETE_RESEND_HEARTBEATS = 10
/** Ozone's hdds.container.close.threshold. */
const CONTAINER_CLOSE_THRESHOLD = 0.9
/** How long start() waits for the SCM group to elect a leader. */
const LEADER_WAIT_MS = 30_000

export interface ScmOptions {
  config: O3Config
  /** Port to listen on; 0 picks a free one. */
  port?: number
  /** Raft port; 0 picks a free one (the default when `port` is given: a group of one needs no fixed one). */
  raftPort?: number
  /** Ticks the health check, for tests that want it faster. */
  healthCheckIntervalMs?: number
}

export class StorageContainerManager {
  readonly metrics = new ServiceMetrics('scm')
  private readonly config: O3Config
  private ha!: ReplicatedService
  private tables!: ScmTables
  private listener?: Listener
  /** Ends the local calls of this process's clients (serveRpcLocally), once they began. */
  private leaveLocal: (() => Promise<void>) | undefined
  /** stop() was called: a start still under way registers nothing. */
  private stopping = false
  private timer?: ReturnType<typeof setInterval>
  /** The data directory's in_use.lock, held from start to stop. */
  private dirLock: DirLock | undefined

  private readonly nodes = new Map<DatanodeId, NodeRecord>()
  private readonly replicas = new Map<ContainerId, Map<DatanodeId, ReplicaRecord>>()
  /** Leader: an OPEN container per pipeline to allocate from (a hint, checked against the table). */
  private readonly openContainerOf = new Map<PipelineId, ContainerId>()
  /** Leader: containers being closed because a holder's volume is full (its close actions repeat every heartbeat). */
  private readonly closingFull = new Set<ContainerId>()
  /** Leader: the container being created per pipeline. */
  private readonly creatingContainer = new Map<PipelineId, Promise<ContainerId>>()
  /** The term deletesSent was built for: a new leader rebuilds it from the table. */
  private deletesTerm = -1
  private readonly commands = new Map<DatanodeId, DatanodeCommand[]>()
  /**
   * Every SCM: each datanode's pipeline reports from its last heartbeat (datanodes tell every
   * SCM, as they do replicas). A group's leader and term come from here and are not in the
   * log: they change at Raft speed on the datanodes, each SCM hears them first-hand within a
   * heartbeat, and a new SCM leader knows them already (Ozone too keeps a pipeline's leader
   * in memory, from PipelineReports).
   */
  private readonly pipelineReports = new Map<DatanodeId, Map<PipelineId, PipelineReport>>()
  /** Leader: opens and closes submitted and not yet applied, so that a heartbeat or a tick does not submit one twice. */
  private readonly opening = new Set<PipelineId>()
  private readonly closing = new Map<PipelineId, Promise<ContainerId[]>>()
  /** Leader: allocations waiting for an ALLOCATED pipeline to open; called on every pipeline state change. */
  private readonly pipelineWaiters = new Set<() => void>()
  /** Per datanode, the deletions it has yet to acknowledge and when each was last sent (0: never). */
  private readonly deletesSent = new Map<DatanodeId, Map<number, number>>()
  /** Leader: ids of the batches reserved in the log, handed out in order; void after a term change. */
  private readonly idBatches = new Map<IdKind, { term: number; next: number; last: number }>()
  private nodeAdmin!: DatanodeAdminMonitor
  /** When this SCM last heard each datanode's container report (the admin monitor waits for one). */
  private readonly containersHeard = new Map<DatanodeId, number>()
  private replication!: ReplicationManager
  private secretKeys!: SecretKeyManager
  /** Leader: replicas reported UNHEALTHY whose markReplicaUnhealthy is submitted and not yet applied (`containerId/datanodeId`). */
  private readonly markingUnhealthy = new Set<string>()
  /** Leader: readers' reports of corrupt blocks (`container/datanode/localId`) their datanode checks now. */
  private readonly reportChecks = new Set<string>()
  private readonly reportsConfirmed = this.metrics.counter('corrupt_reports_confirmed_total', 'Readers\' reports of corrupt blocks their datanode found corrupt (the replica marked UNHEALTHY)')
  private readonly reportsRefuted = this.metrics.counter('corrupt_reports_refuted_total', 'Readers\' reports of corrupt blocks their datanode found intact (nothing marked)')
  private readonly reportsDropped = this.metrics.counter('corrupt_reports_dropped_total', 'Readers\' reports of corrupt blocks not checked: as many checks ran on their datanode, or in all')
  private clusterId = ''
  /** The cluster CA (security.enabled=1): every SCM of the group holds it. */
  ca: ScmCa | undefined
  /** This SCM's certificate, self-issued from the CA (security.enabled=1). */
  identity: ServiceIdentity | undefined
  private inSafeMode = true
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
    // A second process on this directory would share its LMDB files.
    if (this.config['security.enabled'] === 1) refuseSecureUnderDeno('scm')
    this.dirLock = DirLock.acquire(this.config['scm.dir'], `the SCM on ${this.config['scm.dir']}`)
    // The SCM's certificate comes from the CA its group holds. A group whose state holds it
    // already (every start but the first) runs Raft over mutual TLS from the first message. A
    // brand-new secure group elects its first leader and replicates the CA (initCa: the CA's key
    // among it) over plain HTTP; each member then secures its Raft port (ha.secure below), after
    // which plain Raft messages are refused (Ozone's `scm --init` likewise makes the CA before
    // the ring is secured). A group of one takes no Raft message before it is secure.
    const secure = this.config['security.enabled'] === 1
    const hosts = [...new Set([this.config.host, '127.0.0.1', 'localhost'])].filter((h) => h !== '0.0.0.0' && h !== '::')
    const group = await startServiceGroup({
      closedWhenAlone: secure,
      identityAtStart: !secure ? undefined : async (name) => {
        const issuer = ScmCa.issuerOf(() => this.tables, this.config)
        if (issuer === undefined) return undefined
        this.identity = await ServiceIdentity.forScm({ id: name, hosts, issuer })
        log.info(`SCM ${name}: Raft over mutual TLS from the start (the group's CA is in its state)`)
        return this.identity
      },
      service: 'SCM', prefix: 'scm', dir: this.config['scm.dir'], legacyDb: 'scm.db', nodes: this.config['scm.nodes'], id: this.config['scm.id'],
      host: this.config.host, raftPort: this.options.raftPort ?? (this.options.port !== undefined ? 0 : this.config['scm.raft.port']), sync: this.config['db.sync'] === 1,
      requests: scmRequests(() => this.tables),
      timing: { tickMs: this.config['raft.tickMs'], electionTimeoutTicks: this.config['raft.electionTimeoutTicks'], heartbeatTimeoutTicks: this.config['raft.heartbeatTimeoutTicks'] },
      opened: (db: RootDatabase) => { this.tables = openScmTables(db) },
    })
    this.ha = group.ha
    const deadline = Date.now() + LEADER_WAIT_MS
    // The cluster id is the group's: the leader draws it once, the others learn it from the log.
    for (;;) {
      const known = this.tables.meta.get('clusterId') as string | undefined
      if (known !== undefined) { this.clusterId = known; break }
      if (this.ha.isLeader()) { this.clusterId = await this.ha.submit('initCluster', {}) as string; break }
      if (Date.now() > deadline) throw new O3Error('UNAVAILABLE', `Cannot start SCM: no Raft leader and no cluster id within ${LEADER_WAIT_MS} ms`)
      await new Promise((r) => setTimeout(r, 10))
    }
    if (secure) {
      this.ca = await ScmCa.start({ ha: this.ha, tables: () => this.tables, config: this.config, clusterId: this.clusterId })
      if (this.identity === undefined) {
        this.identity = await ServiceIdentity.forScm({ id: this.ha.role().name, hosts, issuer: this.ca.issuer() })
        await this.ha.secure(this.identity, 'scm', 'SCM', { closed: this.config['scm.nodes'].trim() === '' })
        log.info(`SCM ${this.ha.role().name}: Raft secured (mutual TLS; plain messages refused from now on) once the group's CA existed`)
      }
    }

    this.metrics.gauge('datanodes', 'Registered datanodes', () => this.nodes.size)
    this.metrics.gauge('datanodes_healthy', 'Healthy datanodes', () => this.healthyNodes().length)
    this.metrics.gauge('pipelines_open', 'Open pipelines', () => this.allPipelines().filter((p) => p.state === 'OPEN').length)
    this.metrics.gauge('pipelines_allocated', 'Pipelines whose Raft groups are forming', () => this.allPipelines().filter((p) => p.state === 'ALLOCATED').length)
    this.metrics.gauge('containers', 'Containers', () => entryCount(this.tables.containers))
    this.metrics.gauge('safemode', '1 while in safemode', () => (this.inSafeMode ? 1 : 0))
    this.metrics.gauge('delete_txs_pending', 'Block deletions not yet acknowledged by every datanode', () => entryCount(this.tables.deletes))
    this.ha.exportMetrics(this.metrics)
    this.nodeAdmin = new DatanodeAdminMonitor(this.adminHost())
    this.replication = new ReplicationManager(this.replicationHost(), this.config, this.metrics)
    this.secretKeys = new SecretKeyManager(this.config, this.ha, () => this.tables)

    const service: ServiceAppOptions = {
      service: 'SCM',
      metrics: this.metrics,
      health: () => ({ clusterId: this.clusterId, safemode: this.inSafeMode, ...this.ha.health() }),
      ...(secure ? { authenticate: certCaller, authorize: authorizeScm(administratorsOf(this.config['o3.administrators'])) } : {}),
      handlers: {
        ...(this.ca?.handlers((what, run) => this.leader(what, run)) ?? {}),
        register: (a) => this.register(a),
        heartbeat: (a) => this.heartbeat(a),
        // Heartbeats and registrations reach every SCM; everything else is the leader's.
        allocateBlock: (a) => this.leader('allocateBlock', () => this.allocateBlock(a)),
        getContainerLocations: (a) => this.leader('getContainerLocations', () => this.getContainerLocations(a)),
        getContainer: (a) => this.leader('getContainer', () => {
          const id = parseId<ContainerId>(a.containerId, 'containerId')
          return { ...this.containerInfo(id), health: this.replication.classification(id)?.states ?? [] }
        }),
        listContainers: (a) => this.leader('listContainers', () => this.listContainers(a)),
        listDatanodes: () => this.leader('listDatanodes', () => this.listDatanodes()),
        listPipelines: () => this.leader('listPipelines', () => this.listPipelines()),
        datanodeAdmin: (a) => this.leader('datanodeAdmin', () => { const r = parseAdminRequest(a); return this.nodeAdmin.admin(r.action, r.datanodes, r.endHours) }),
        closePipeline: (a) => this.leader('closePipeline', () => this.closePipelineByAdmin(a)),
        safemodeStatus: () => this.leader('safemodeStatus', () => this.safemodeStatus()),
        closeContainer: (a) => this.leader('closeContainer', () => this.closeContainer(parseId<ContainerId>(a.containerId, 'containerId'), 'admin request')),
        replicateContainer: (a) => this.leader('replicateContainer', () => this.replicateContainerByAdmin(a)),
        reportCorruptReplica: (a) => this.leader('reportCorruptReplica', () => this.reportCorruptReplica(a)),
        deleteBlocks: (a) => this.leader('deleteBlocks', () => this.deleteBlocks(a)),
        containerReport: () => this.leader('containerReport', () => this.replication.report()),
        replicationStatus: () => this.leader('replicationStatus', () => this.replication.status()),
        ...new GroupAdmin(this.ha, 'SCM', 'scm', () => ({ address: this.address, raftAddress: `${this.config.host}:${this.ha.raft.port}` })).handlers(false),
        stateDigest: () => stateDigest(this.ha.db),
        getSecretKeys: (_a, ctx) => this.leader('getSecretKeys', () => this.secretKeys.getSecretKeys(ctx)),
      },
    }
    const app = createServiceApp(service)
    const port = group.rpcPort ?? this.options.port ?? this.config['scm.port']
    this.listener = await serveApp(app, { host: this.config.host, port, name: 'SCM', ...(this.identity === undefined ? {} : { tls: this.identity.serverTls() }) })
    this.timer = setInterval(() => this.checkHealth(), this.options.healthCheckIntervalMs ?? Math.max(100, Math.min(1000, this.config['scm.heartbeat.staleMs'] / 4)))
    this.timer.unref()
    this.replication.start()
    this.secretKeys.start()
    // Last, once started: clients in this process call without HTTP (never with security on: calls stay on HTTPS).
    if (service.authenticate === undefined && this.config['rpc.shortCircuit'] === 1 && !this.stopping) this.leaveLocal = serveRpcLocally('SCM', this.address, localServiceCall(service))
    log.info(`SCM ${this.clusterId} listening on ${this.address}`)
  }

  async stop(): Promise<void> {
    this.stopping = true
    // Clients in this process reach it over HTTP from now on, as any stopped service; the
    // local calls under way settle first, as the listener's requests do.
    const leaving = this.leaveLocal?.()
    this.leaveLocal = undefined
    await leaving
    clearInterval(this.timer)
    this.secretKeys?.stop()
    this.identity?.stop()
    await this.replication?.stop()
    await this.listener?.close()
    await this.creating
    await this.ha?.stop()
    this.dirLock?.release()
  }

  /** A datanode's RPC, through this SCM's identity when security is on. */
  private datanodeRpc(address: string): RpcClient {
    return new RpcClient('Datanode', address, { transport: this.identity?.transport() ?? PLAIN_TRANSPORT })
  }

  /** Runs a call the leader answers (NOT_LEADER with its address elsewhere), on state as new as any write acknowledged before it. */
  private leader<T>(what: string, run: () => T | Promise<T>): Promise<T> {
    return this.ha.read(what, run) as Promise<T>
  }

  /** A failure of work the SCM started on its own (not a caller's request): logged, retried by the next trigger. */
  private background(what: string, p: Promise<unknown>): void {
    p.catch((err: unknown) => log.warn(`SCM: ${what} failed: ${(err as Error).message}`))
  }

  // --- datanodes -------------------------------------------------------------------------

  private register(a: { id?: unknown; address?: unknown; volumes?: unknown }): { clusterId: string } {
    if (!isDatanodeId(a.id)) throw new O3Error('INVALID_ARGUMENT', 'Cannot register datanode: id missing or malformed')
    if (typeof a.address !== 'string' || !/^[\w.-]+:\d+$/.test(a.address)) throw new O3Error('INVALID_ARGUMENT', `Cannot register datanode ${a.id}: address must be host:port`)
    const now = Date.now()
    const previous = this.nodes.get(a.id)
    const node: NodeRecord = {
      id: a.id, address: a.address, registeredAtMs: now, lastHeartbeatMs: now, volumes: parseVolumes(a.volumes),
    }
    this.nodes.set(node.id, node)
    if (previous === undefined || previous.address !== node.address) log.info(`SCM: datanode ${node.id} registered at ${node.address}`)
    this.noteRoom(node, previous === undefined || this.hasRoom(previous))
    this.checkSafeMode()
    this.background('creating pipelines', this.createPipelines())
    return { clusterId: this.clusterId }
  }

  private async heartbeat(a: { id?: unknown; volumes?: unknown; containers?: unknown; containerActions?: unknown; deleted?: unknown; failedCopies?: unknown; pipelines?: unknown }): Promise<{ commands: DatanodeCommand[] }> {
    if (!isDatanodeId(a.id)) throw new O3Error('INVALID_ARGUMENT', 'Cannot accept heartbeat: id missing or malformed')
    const reports = parsePipelineReports(a.pipelines, `datanode ${a.id}`)
    const node = this.nodes.get(a.id)
    if (node === undefined || node.lastHeartbeatMs === 0) return { commands: [{ type: 'reregister' }] }
    const wasHealthy = this.health(node) === 'HEALTHY'
    const hadRoom = this.hasRoom(node)
    node.lastHeartbeatMs = Date.now()
    node.volumes = parseVolumes(a.volumes)
    this.noteRoom(node, hadRoom)
    if (this.ha.isLeader()) {
      for (const id of closeActions(a.containerActions)) {
        const c = this.tables.containers.get(id)
        // Only a holder's word counts, and one close at a time (each member of the pipeline asks).
        if (c === undefined || c.state !== 'OPEN' || !this.holders(c).has(node.id) || this.closingFull.has(id)) continue
        this.closingFull.add(id)
        this.background(`closing container ${id}`, this.closeContainer(id, `its volume on ${node.id} is full`).finally(() => this.closingFull.delete(id)))
      }
    }
    if (Array.isArray(a.containers)) this.processContainerReport(node.id, a.containers as ContainerReplicaReport[])
    // Copies that failed from every source: planned again after a short back-off, not at their command timeout.
    if (this.ha.isLeader() && Array.isArray(a.failedCopies)) {
      for (const id of a.failedCopies.slice(0, HEARTBEAT_COMMANDS_MAX)) if (Number.isSafeInteger(id) && id > 0) this.replication.copyFailed(id as ContainerId, node.id)
    }
    if (Array.isArray(a.containers)) this.containersHeard.set(node.id, node.lastHeartbeatMs)
    if (reports !== undefined) this.pipelineReports.set(node.id, new Map(reports.map((r) => [r.pipelineId, r])))
    if (!wasHealthy || (!hadRoom && this.hasRoom(node))) this.background('creating pipelines', this.createPipelines())
    if (Array.isArray(a.deleted)) await this.ackDeletes(node.id, a.deleted)
    const queued = this.commands.get(node.id) ?? []
    const commands = queued.splice(0, HEARTBEAT_COMMANDS_MAX)
    if (reports !== undefined) commands.push(...(await this.pipelineCommandsFor(node.id, reports)).slice(0, HEARTBEAT_COMMANDS_MAX - commands.length))
    commands.push(...this.deleteCommandsFor(node.id, HEARTBEAT_COMMANDS_MAX - commands.length))
    return { commands }
  }

  private health(node: NodeRecord) {
    return nodeHealth(node, Date.now(), { staleMs: this.config['scm.heartbeat.staleMs'], deadMs: this.config['scm.heartbeat.deadMs'] })
  }

  private healthyNodes(): DatanodeId[] {
    return [...this.nodes.values()].filter((n) => this.operationalState(n.id) === 'IN_SERVICE' && this.health(n) === 'HEALTHY').map((n) => n.id).sort()
  }

  /** Room for a new container on the node: a volume that takes a block beyond its reserve. */
  private hasRoom(node: Pick<NodeRecord, 'volumes'>): boolean {
    return hasRoom(node, this.config['scm.block.sizeBytes'])
  }

  private noteRoom(node: NodeRecord, hadRoom: boolean): void {
    if (hadRoom && !this.hasRoom(node)) log.warn(`SCM: datanode ${node.id} has no volume with room for a block beyond its reserve: no new pipelines or containers go on it`)
    if (!hadRoom && this.hasRoom(node)) log.info(`SCM: datanode ${node.id} has room again`)
  }

  /** Healthy, in-service nodes with room for a new container: what new pipelines and blocks go on. */
  private writableNodes(healthy = this.healthyNodes()): DatanodeId[] {
    return healthy.filter((id) => this.hasRoom(this.nodes.get(id)!))
  }

  /** A datanode's operational state, as the SCM group agreed on it (issue 13): only IN_SERVICE nodes get new pipelines and replicas. */
  operationalState(dn: DatanodeId) {
    return operationalStateOf(this.tables, dn)
  }

  private details(id: DatanodeId): DatanodeDetails {
    const n = this.nodes.get(id)
    assert(n !== undefined, `unknown datanode ${id}`)
    return { id, address: n.address }
  }

  /**
   * A pipeline as callers see it: addresses looked up now (a restarted node may move), and
   * its group's leader and term as the members last reported them, else the suggested leader.
   */
  private resolve(p: PipelineRecord): Pipeline {
    const { closedAtMs: _closedAtMs, leaderId: suggested, ...rest } = p
    const reported = leaderFromReports(p, (dn) => this.pipelineReports.get(dn)?.get(p.id))
    return {
      ...rest, nodes: p.nodes.map((n) => this.nodes.has(n.id) ? this.details(n.id) : n),
      ...(reported ?? { leaderId: suggested ?? p.nodes[0]?.id }),
    }
  }

  /**
   * The datanodes safemode counts: every registered HEALTHY one, whatever its operational
   * state (Ozone's DataNodeSafeModeRule counts registrations): an SCM restarted while a
   * datanode is decommissioning or in maintenance must still leave safemode and go on.
   */
  private safemodeNodes(): number {
    let n = 0
    for (const node of this.nodes.values()) if (this.health(node) === 'HEALTHY') n++
    return n
  }

  private checkSafeMode(): void {
    if (this.inSafeMode && this.safemodeNodes() >= this.config['scm.safemode.minDatanodes']) {
      this.inSafeMode = false
      log.info(`SCM: leaving safemode with ${this.safemodeNodes()} healthy datanodes`)
    }
  }

  /**
   * Closes the pipelines that lost a member, STALE or DEAD (as Ozone's StaleNodeHandler
   * does), and those whose group never formed.
   */
  private checkHealth(): void {
    if (!this.ha.isLeader()) return
    this.background('datanode admin', this.nodeAdmin.tick(Date.now()))
    let live: PipelineRecord[] | undefined
    for (const node of this.nodes.values()) {
      const health = this.health(node)
      if (node.lastHeartbeatMs === 0 || health === 'HEALTHY') continue
      live ??= this.allPipelines().filter((p) => p.state !== 'CLOSED')
      for (const p of live) {
        if (p.nodes.some((n) => n.id === node.id)) this.background(`closing pipeline ${p.id}`, this.closePipeline(p, `datanode ${node.id} is ${health}`))
      }
    }
    for (const p of formingTooLong(this.allPipelines(), Date.now())) this.background(`closing pipeline ${p.id}`, this.closePipeline(p, 'its group did not form'))
  }

  private allPipelines(): PipelineRecord[] {
    return [...this.tables.pipelines.getRange()].map((e) => e.value)
  }

  /** Pipelines not CLOSED: ALLOCATED ones count, as their groups are forming on their nodes. */
  private livePipelines(): PipelineRecord[] {
    return this.allPipelines().filter((p) => p.state !== 'CLOSED')
  }

  /**
   * Closes a pipeline (once, however many callers ask): its OPEN containers go CLOSING and
   * their close commands out, new pipelines are placed from healthy nodes, and the members'
   * groups are removed once scm.pipeline.destroyTimeoutMs has passed (pipelineCommandsFor).
   * Answers the containers it moved to CLOSING.
   */
  private closePipeline(p: Pipeline, why: string): Promise<ContainerId[]> {
    const running = this.closing.get(p.id)
    if (running !== undefined) return running
    const run = (async () => {
      const closing = await this.ha.submit('closePipeline', { id: p.id }) as ContainerId[]
      log.info(`SCM: closed pipeline ${p.id} (${p.replication}): ${why}`)
      this.wakePipelineWaiters()
      for (const id of closing) {
        log.info(`SCM: closing container ${id}: pipeline ${p.id} closed`)
        this.queueClose(id)
      }
      return closing
    })().finally(() => this.closing.delete(p.id))
    this.closing.set(p.id, run)
    return run.then(async (closing) => {
      await this.createPipelines()
      return closing
    })
  }

  private async closePipelineByAdmin(a: { pipelineId?: unknown }): Promise<{ id: PipelineId; state: 'CLOSED'; closing: ContainerId[] }> {
    if (!isPipelineId(a.pipelineId)) throw new O3Error('INVALID_ARGUMENT', `Cannot close pipeline ${JSON.stringify(a.pipelineId)}: not a pipeline id`)
    const p = this.tables.pipelines.get(a.pipelineId)
    if (p === undefined) throw new O3Error('PIPELINE_NOT_FOUND', `Cannot close pipeline ${a.pipelineId}: not found`)
    const closing = p.state === 'CLOSED' ? [] : await this.closePipeline(p, 'admin request')
    return { id: p.id, state: 'CLOSED', closing }
  }

  /** An ALLOCATED pipeline whose members all report its group is OPEN. */
  private async openPipeline(p: Pipeline): Promise<void> {
    if (this.opening.has(p.id)) return
    this.opening.add(p.id)
    try {
      const state = await this.ha.submit('openPipeline', { id: p.id })
      if (state === 'OPEN') log.info(`SCM: pipeline ${p.id} (${p.replication}) OPEN: every member runs its group`)
      this.wakePipelineWaiters()
    } finally {
      this.opening.delete(p.id)
    }
  }

  private wakePipelineWaiters(): void {
    for (const wake of [...this.pipelineWaiters]) wake()
  }

  /**
   * Leader, on a heartbeat with pipeline reports: opens the pipelines every member now
   * reports, closes those a member reports diverged, and answers the node's createPipeline
   * and closePipeline commands.
   */
  private async pipelineCommandsFor(dn: DatanodeId, reports: PipelineReport[]): Promise<PipelineCommand[]> {
    if (!this.ha.isLeader()) return []
    const byId = new Map<PipelineId, PipelineRecord>()
    for (const p of this.allPipelines()) byId.set(p.id, p)
    let known = reports
    if (reports.some((r) => !byId.has(r.pipelineId))) {
      // A group the SCM has no pipeline for is removed, but only once this leader's state
      // holds every committed entry: a new leader may not have applied the one creating it.
      const current = await this.ha.read('check pipeline reports', () => true).catch(() => false)
      for (const r of reports) {
        const p = this.tables.pipelines.get(r.pipelineId)
        if (p !== undefined) byId.set(p.id, p)
      }
      if (!current) known = reports.filter((r) => byId.has(r.pipelineId))
    }
    const reportOf = (p: Pipeline) => (node: DatanodeId) => this.pipelineReports.get(node)?.get(p.id)
    for (const r of known) {
      const p = byId.get(r.pipelineId)
      if (p === undefined || p.state === 'CLOSED' || !p.nodes.some((n) => n.id === dn)) continue
      if (r.diverged) this.background(`closing pipeline ${p.id}`, this.closePipeline(p, `datanode ${dn} diverged from its group or its Raft node failed`))
      else if (everyMemberReports(p, reportOf(p))) this.background(`opening pipeline ${p.id}`, this.openPipeline(p))
    }
    // Only the pipelines this node is in or reports matter here.
    const reported = new Set(known.map((r) => r.pipelineId))
    const resolved = new Map<PipelineId, PipelineRecord>()
    for (const [id, p] of byId) {
      if (reported.has(id) || (p.state !== 'CLOSED' && p.nodes.some((n) => n.id === dn))) resolved.set(id, { ...this.resolve(p), closedAtMs: p.closedAtMs })
    }
    const commands = pipelineCommands({
      node: dn, reports: known, pipelines: resolved, nowMs: Date.now(), destroyTimeoutMs: this.config['scm.pipeline.destroyTimeoutMs'],
      toldAddresses: (id) => this.membersSent.get(`${dn}/${id}`),
    })
    for (const c of commands) if (c.type === 'createPipeline') this.membersSent.set(`${dn}/${c.pipelineId}`, memberAddresses({ nodes: c.members }))
    return commands
  }

  /** Tells a new pipeline's members to heartbeat now, so that they get createPipeline in milliseconds, not a heartbeat interval. */
  private nudge(p: Pipeline): void {
    for (const n of this.resolve(p).nodes) {
      // A datanode from before issue 12 answers that it has no such method: nothing to do.
      this.datanodeRpc(n.address).call('triggerHeartbeat', {}, { timeoutMs: PIPELINE_NUDGE_TIMEOUT_MS })
        .catch((err: unknown) => log.debug(`SCM: nudging datanode ${n.id} for pipeline ${p.id} failed: ${(err as Error).message}`))
    }
  }

  /** Leader: the member addresses each node's group was last told (node/pipeline), to send again when they change. */
  private readonly membersSent = new Map<string, string>()

  private creating: Promise<void> | undefined
  /** Creates the pipelines placement asks for; serialised so that two calls do not double up. */
  private createPipelines(): Promise<void> {
    const run = async () => {
      if (!this.ha.isLeader()) return
      for (const plan of planPipelines({ healthy: this.writableNodes(), open: this.livePipelines(), limit: DATANODE_PIPELINE_LIMIT })) {
        await this.addPipeline(plan.replication, plan.nodes)
      }
    }
    // A failed round does not stop the next one.
    this.creating = (this.creating ?? Promise.resolve()).catch(() => undefined).then(run)
    return this.creating
  }

  /**
   * A new pipeline on `nodes`, led first by the member leading the fewest (MinLeaderCount).
   * It is ALLOCATED, and its members are nudged to heartbeat for their createPipeline
   * command; it opens once they all report the group.
   */
  private async addPipeline(replication: string, nodes: DatanodeId[]): Promise<PipelineRecord> {
    // EC pipelines have no leader to count (issue 14).
    const leaderId = suggestLeader(nodes, this.livePipelines().filter((p) => !isEcReplication(p.replication)).map((p) => this.resolve(p)))
    const p = await this.ha.submit('addPipeline', { replication, nodes: nodes.map((id) => this.details(id)), state: 'ALLOCATED', leaderId }) as PipelineRecord
    log.info(`SCM: created pipeline ${p.id} ${replication} ${p.state} on ${p.nodes.map((n) => n.id).join(',')}, suggested leader ${leaderId}`)
    this.nudge(p)
    return p
  }

  // --- containers and blocks -------------------------------------------------------------

  /** `count` ids from the leader's batch, reserving a new batch in the log when it runs out or the term changed. */
  private async reserve(kind: IdKind, count: number): Promise<number> {
    const term = this.ha.raft.term()
    let batch = this.idBatches.get(kind)
    if (batch === undefined || batch.term !== term || batch.next + count - 1 > batch.last) {
      const r = await this.ha.submit('reserveIds', { kind, count }) as { first: number; last: number }
      batch = { term, next: r.first, last: r.last }
      this.idBatches.set(kind, batch)
    }
    const first = batch.next
    batch.next += count
    return first
  }

  private async allocateBlock(a: { replication?: unknown; sizeBytes?: unknown; count?: unknown; excludeList?: Partial<ExcludeList> }): Promise<AllocatedBlock[]> {
    if (this.inSafeMode) throw new O3Error('SAFE_MODE', `Cannot allocate blocks: SCM is in safemode (${this.safemodeNodes()}/${this.config['scm.safemode.minDatanodes']} datanodes registered)`)
    const parsed = parseReplication(String(a.replication ?? 'RATIS/THREE'))
    const replication = formatReplication(parsed)
    // A block's size reserves nothing here: containers close on what their replicas report holding.
    if (a.sizeBytes !== undefined) parseId<number>(a.sizeBytes, 'sizeBytes')
    const count = a.count === undefined ? 1 : parseId<number>(a.count, 'count')
    if (count < 1 || count > ALLOCATE_BLOCK_COUNT_MAX) throw new O3Error('INVALID_ARGUMENT', `Cannot allocate ${count} blocks: count must be 1..${ALLOCATE_BLOCK_COUNT_MAX}`)
    const exclude = {
      datanodes: new Set((a.excludeList?.datanodes ?? []) as DatanodeId[]),
      containers: new Set((a.excludeList?.containers ?? []) as ContainerId[]),
      pipelines: new Set((a.excludeList?.pipelines ?? []) as PipelineId[]),
    }
    if (parsed.type === 'EC') return this.allocateOn(await this.ecPipelineFor(replication, parsed, exclude), exclude.containers, count)
    let healthy = new Set(this.writableNodes())
    const fits = (p: Pipeline) => p.replication === replication && !exclude.pipelines.has(p.id)
      && p.nodes.every((n) => healthy.has(n.id) && !exclude.datanodes.has(n.id))
    const usable = () => this.allPipelines().filter((p) => p.state === 'OPEN' && fits(p))
    const forming = () => this.allPipelines().filter((p) => p.state === 'ALLOCATED' && fits(p))
    let candidates = usable()
    if (candidates.length === 0 && forming().length === 0) {
      // Ozone's WritableRatisContainerProvider: with nothing usable, try a new pipeline around the exclusions.
      await this.createPipelines()
      candidates = usable()
      if (candidates.length === 0 && forming().length === 0) {
        const nodes = planAround([...healthy], exclude.datanodes, parsed.factor, this.livePipelines())
        if (nodes !== undefined) await this.addPipeline(replication, nodes)
        candidates = usable()
      }
    }
    if (candidates.length === 0 && forming().length > 0) {
      // A pipeline whose group is forming opens within milliseconds of its members' nudged
      // heartbeats; wait for it rather than fail the write (or place yet another).
      const deadline = Date.now() + PIPELINE_OPEN_WAIT_MS
      while (candidates.length === 0 && forming().length > 0 && Date.now() < deadline) {
        await this.pipelineChange(deadline - Date.now())
        healthy = new Set(this.writableNodes())
        candidates = usable()
      }
      if (candidates.length === 0) {
        const still = forming()
        if (still.length > 0) {
          // Name the members that never reported the group: down or unreachable, most likely.
          const silent = [...new Set(still.flatMap((p) => p.nodes.filter((n) => this.pipelineReports.get(n.id)?.get(p.id) === undefined).map((n) => n.address)))]
          const who = silent.length > 0 ? `; no group reported by ${silent.join(', ')} (down or unreachable?)` : ''
          throw new O3Error('NO_PIPELINE', `Cannot allocate a ${replication} block: ${still.length} pipeline${still.length === 1 ? ' is' : 's are'} still ALLOCATED (the datanodes' Raft groups did not form within ${PIPELINE_OPEN_WAIT_MS} ms${who})`)
        }
      }
    }
    if (candidates.length === 0) {
      const full = this.healthyNodes().length - healthy.size
      throw new O3Error('NO_PIPELINE', `Cannot allocate a ${replication} block: no open pipeline of healthy datanodes with room (${healthy.size} healthy with room${full > 0 ? `, ${full} full` : ''}, ${exclude.datanodes.size} excluded)`)
    }
    return this.allocateOn(candidates[this.roundRobin++ % candidates.length], exclude.containers, count)
  }

  /** `count` blocks in the pipeline's open container (a new one if none, or it is excluded). */
  private async allocateOn(pipeline: Pipeline, excluded: Set<ContainerId>, count: number): Promise<AllocatedBlock[]> {
    const container = await this.openContainerFor(pipeline, excluded)
    const first = await this.reserve('localId', count)
    const blocks: AllocatedBlock[] = []
    for (let i = 0; i < count; i++) blocks.push({ blockId: { containerId: container, localId: (first + i) as LocalId }, pipeline: this.resolve(pipeline) })
    return blocks
  }

  /** Leader: EC pipelines being added per replication, so that concurrent allocations add one, not one each. */
  private readonly addingEc = new Map<string, Promise<PipelineRecord>>()

  /**
   * An EC allocation's pipeline (ec-pipelines.ts): an open one reused, else a new one on
   * k + m distinct usable nodes, OPEN at once through the log (no Raft group to form, no
   * createPipeline to its members: EC replicas are written directly by the client).
   */
  private async ecPipelineFor(replication: string, parsed: ReplicationConfig, exclude: { datanodes: Set<DatanodeId>; pipelines: Set<PipelineId>; containers: Set<ContainerId> }): Promise<Pipeline> {
    for (let waited = 0; ; waited++) {
      const healthy = this.healthyNodes()
      const usable = this.writableNodes(healthy)
      const choice = chooseEcPipeline({
        replication, parsed, usable, full: healthy.length - usable.length, live: this.livePipelines(), exclude,
        openContainerOf: (id) => { const c = this.openContainerOf.get(id); return c !== undefined && this.tables.containers.get(c)?.state === 'OPEN' ? c : undefined },
      })
      if ('reuse' in choice) return choice.reuse[this.roundRobin++ % choice.reuse.length]
      const running = this.addingEc.get(replication)
      if (running !== undefined && waited < 2) { await running.catch(() => undefined); continue }
      const adding = this.ha.submit('addPipeline', { replication, nodes: choice.create.map((id) => this.details(id)), state: 'OPEN' }) as Promise<PipelineRecord>
      this.addingEc.set(replication, adding)
      try {
        const p = await adding
        log.info(`SCM: created pipeline ${p.id} ${replication} OPEN on ${p.nodes.map((n) => n.id).join(',')} (replica indexes 1..${p.nodes.length})`)
        return p
      } finally {
        if (this.addingEc.get(replication) === adding) this.addingEc.delete(replication)
      }
    }
  }

  /** Resolves at the next pipeline state change this leader makes, or after `timeoutMs`. */
  private pipelineChange(timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer)
        this.pipelineWaiters.delete(wake)
        resolve()
      }
      const timer = setTimeout(wake, Math.max(0, timeoutMs))
      this.pipelineWaiters.add(wake)
    })
  }

  private async openContainerFor(pipeline: Pipeline, excluded: Set<ContainerId>): Promise<ContainerId> {
    const hint = this.openContainerOf.get(pipeline.id)
    if (hint !== undefined && !excluded.has(hint) && this.tables.containers.get(hint)?.state === 'OPEN') return hint
    for (const { value } of this.tables.containers.getRange({ reverse: true })) {
      if (value.pipelineId === pipeline.id && value.state === 'OPEN' && !excluded.has(value.id)) {
        this.openContainerOf.set(pipeline.id, value.id)
        return value.id
      }
    }
    // One new container per pipeline at a time: concurrent allocations wait for it rather
    // than each creating its own (two Raft rounds apart, they would all find none open).
    const creating = this.creatingContainer.get(pipeline.id)
    if (creating !== undefined) {
      const id = await creating
      if (!excluded.has(id)) return id
    }
    const created = (async () => {
      const id = (await this.reserve('containerId', 1)) as ContainerId
      const c = await this.ha.submit('createContainer', { id, pipelineId: pipeline.id }) as ContainerInfo
      this.openContainerOf.set(pipeline.id, c.id)
      return c.id
    })().finally(() => this.creatingContainer.delete(pipeline.id))
    this.creatingContainer.set(pipeline.id, created)
    return created
  }

  private async closeContainer(id: ContainerId, why: string): Promise<{ state: ContainerState }> {
    const c = this.tables.containers.get(id)
    if (c === undefined) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot close container ${id}: not found`)
    let state = c.state
    if (state === 'OPEN') {
      state = await this.ha.submit('setContainerState', { id, state: 'CLOSING' }) as ContainerState
      log.info(`SCM: closing container ${id}: ${why}`)
    }
    if (state === 'CLOSING') this.queueClose(id)
    return { state }
  }

  private queueClose(id: ContainerId): void {
    const c = this.tables.containers.get(id)
    if (c !== undefined) for (const dn of this.holders(c)) this.queue(dn, { type: 'closeContainer', containerId: id })
  }

  /** Datanodes that may hold a replica: the pipeline's members and every node that reported one. */
  private holders(c: ContainerInfo): Set<DatanodeId> {
    const p = this.tables.pipelines.get(c.pipelineId)
    return new Set([...(p?.nodes.map((n) => n.id) ?? []), ...(this.replicas.get(c.id)?.keys() ?? [])])
  }

  /** Queues a command for a datanode's next heartbeat; a container command already queued is not queued again. */
  private queue(dn: DatanodeId, command: DatanodeCommand): void {
    const q = this.commands.get(dn) ?? []
    const dup = 'containerId' in command && command.type !== 'deleteBlocks'
      && q.some((c) => c.type === command.type && 'containerId' in c && c.containerId === command.containerId && ('force' in c ? c.force : undefined) === ('force' in command ? command.force : undefined))
    if (!dup) q.push(command)
    this.commands.set(dn, q)
  }

  private replicaState(c: ContainerId, dn: DatanodeId, reported: ContainerState): ContainerState {
    // A replica found corrupt stays UNHEALTHY until it is replaced.
    return this.tables.unhealthy.get(`${c}/${dn}`) === true ? 'UNHEALTHY' : reported
  }

  private processContainerReport(dn: DatanodeId, reports: ContainerReplicaReport[]): void {
    const now = Date.now()
    const reported = new Set<ContainerId>()
    for (const r of reports) {
      const c = this.tables.containers.get(r.containerId)
      if (c === undefined) continue
      reported.add(c.id)
      let replicas = this.replicas.get(c.id)
      if (replicas === undefined) this.replicas.set(c.id, (replicas = new Map()))
      const isNew = !replicas.has(dn)
      const bcsid = Number.isSafeInteger(r.bcsid) ? r.bcsid : 0
      // A datanode from before issue 14 sends no index: a RATIS replica's is 0.
      const replicaIndex = typeof r.replicaIndex === 'number' && Number.isSafeInteger(r.replicaIndex) && r.replicaIndex >= 0 ? r.replicaIndex : 0
      replicas.set(dn, { state: this.replicaState(c.id, dn, r.state), bcsid, usedBytes: r.usedBytes, blockCount: r.blockCount, reportedAtMs: now, replicaIndex })
      if (!this.ha.isLeader()) continue
      if (r.state === 'UNHEALTHY') this.persistUnhealthy(c.id, dn, 'found corrupt by its datanode (a scan or a block check)')
      if (isNew) this.background(`adding ${dn} to the block deletions of container ${c.id}`, this.addDeleteHolder(c, dn))
      // Ozone closes a container once a replica reports it 90% full (what its blocks really
      // hold, not the block size each allocation reserved, which small keys never fill).
      if (c.state === 'OPEN' && r.usedBytes >= CONTAINER_CLOSE_THRESHOLD * this.config['scm.container.sizeBytes']) {
        this.background(`closing container ${c.id}`, this.closeContainer(c.id, `full (${r.usedBytes} bytes on ${dn})`))
      }
      if (c.state === 'CLOSING' && r.state !== 'CLOSED') this.queue(dn, { type: 'closeContainer', containerId: c.id })
      const live = [...replicas.values()].filter((x) => x.state !== 'UNHEALTHY')
      // Every pipeline member not known DEAD must have reported since this SCM started (or
      // registered again after its restart): one that has not may hold a replica still open
      // (reports are this SCM's own memory).
      const unheard = (this.tables.pipelines.get(c.pipelineId)?.nodes ?? []).some((n) => {
        const node = this.nodes.get(n.id)
        return !replicas.has(n.id) && (node === undefined || this.health(node) !== 'DEAD')
      })
      if (c.state === 'CLOSING' && !unheard && live.length > 0 && live.every((x) => x.state === 'CLOSED')) {
        this.background(`closing container ${c.id}`, this.ha.submit('setContainerState', { id: c.id, state: 'CLOSED' }).then(() => log.info(`SCM: container ${c.id} CLOSED`)))
      }
    }
    // A report lists every container the datanode holds: one it no longer lists is gone from it.
    for (const [id, replicas] of this.replicas) if (!reported.has(id)) replicas.delete(dn)
    if (this.ha.isLeader()) this.clearGoneUnhealthy(dn, reported)
  }

  /**
   * Marks of UNHEALTHY replicas `dn` no longer holds go: kept, a mark made a later copy of the
   * container to that datanode UNHEALTHY at once (deleted as surplus) and barred it as a target
   * for good, so a container could stay under-replicated with a datanode free to take it.
   */
  private clearGoneUnhealthy(dn: DatanodeId, reported: ReadonlySet<ContainerId>): void {
    const suffix = `/${dn}`
    for (const key of this.tables.unhealthy.getKeys()) {
      if (typeof key !== 'string' || !key.endsWith(suffix)) continue
      const id = Number(key.slice(0, -suffix.length)) as ContainerId
      if (reported.has(id) || this.markingUnhealthy.has(key)) continue
      this.markingUnhealthy.add(key)
      const clearing = this.ha.submit('clearReplicaUnhealthy', { containerId: id, datanodeId: dn })
        .then(() => log.info(`SCM: replica of container ${id} on ${dn} is gone; its UNHEALTHY mark cleared`))
        .finally(() => this.markingUnhealthy.delete(key))
      this.background(`clearing the UNHEALTHY mark of container ${id} on ${dn}`, clearing)
    }
  }

  /**
   * A replica the SCM first hears of on a datanode outside the container's pipeline (a copy
   * the replication manager made) gets the container's pending block deletions too, through
   * the log; they go out with its next heartbeat.
   */
  private async addDeleteHolder(c: ContainerInfo, dn: DatanodeId): Promise<void> {
    const members = this.tables.pipelines.get(c.pipelineId)?.nodes ?? []
    if (members.some((n) => n.id === dn)) return
    const ids: number[] = []
    for (const { value } of this.tables.deletes.getRange()) if (value.containerId === c.id && !value.pending.includes(dn)) ids.push(value.id)
    if (ids.length === 0) return
    const added = await this.ha.submit('addDeleteHolder', { datanodeId: dn, ids }) as number[]
    for (const id of added) this.deletesOf(dn).set(id, 0)
    if (added.length > 0) log.info(`SCM: new replica of container ${c.id} on ${dn} gets ${added.length} pending block deletion(s)`)
  }

  /** The admin's copy of a container to a chosen datanode: queued for the target's next heartbeat, which is nudged. */
  private replicateContainerByAdmin(a: { containerId?: unknown; targetId?: unknown }): { containerId: ContainerId; target: DatanodeDetails; sources: DatanodeDetails[] } {
    const id = parseId<ContainerId>(a.containerId, 'containerId')
    const c = this.tables.containers.get(id)
    if (c === undefined) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot replicate container ${id}: not found`)
    const nodes = [...this.nodes.values()].map((n) => ({ id: n.id, address: n.address, health: this.health(n) }))
    const replicas = this.replicaList(id).map(([dn, r]) => ({ id: dn, state: r.state }))
    const { target, command } = replicateCommand({ containerId: id, state: c.state, replication: c.replication, target: String(a.targetId ?? ''), nodes, replicas })
    this.queue(target.id, command)
    this.datanodeRpc(target.address).call('triggerHeartbeat', {}, { timeoutMs: PIPELINE_NUDGE_TIMEOUT_MS })
      .catch((err: unknown) => log.debug(`SCM: nudging datanode ${target.id} for container ${id} failed: ${(err as Error).message}`))
    log.info(`SCM: replicate container ${id} to ${target.id} from ${command.sources.map((s) => s.id).join(', ')} (admin request)`)
    return { containerId: id, target, sources: command.sources }
  }

  /** A replica found corrupt (by its datanode's scanner, or a reader whose report its datanode confirmed): persisted once, UNHEALTHY until it is gone. */
  private persistUnhealthy(id: ContainerId, dn: DatanodeId, why: string): void {
    const key = `${id}/${dn}`
    if (this.tables.unhealthy.get(key) === true || this.markingUnhealthy.has(key)) return
    this.markingUnhealthy.add(key)
    const marking = this.ha.submit('markReplicaUnhealthy', { containerId: id, datanodeId: dn })
      .then(() => {
        const held = this.replicas.get(id)?.get(dn)
        if (held !== undefined) this.replicas.get(id)!.set(dn, { ...held, state: 'UNHEALTHY' })
        log.warn(`SCM: replica of container ${id} on ${dn} ${why}, marked UNHEALTHY`)
      })
      .finally(() => this.markingUnhealthy.delete(key))
    this.background(`marking replica of container ${id} on ${dn} UNHEALTHY`, marking)
  }

  /**
   * A reader's report that a replica's block failed its checksums. Not taken on the reader's
   * word (any authenticated caller may report, and a mark costs a forced delete and a copy):
   * the replica's datanode checks the block (ContainerScanner.checkBlock), and only a block
   * it finds corrupt marks the replica UNHEALTHY. Answered at once: the check reads the block
   * at the scanner's pace. `checking` says whether a check was started: not for a replica
   * marked already or a block being checked, nor past SCM_CORRUPT_REPORT_CHECKS_PER_DATANODE
   * checks on its datanode or SCM_CORRUPT_REPORT_CHECKS_MAX in all (then `dropped`; false reports cost a
   * datanode at most that many throttled reads; none is remembered, as corruption may come
   * after a report found none, and readers report again when they meet it).
   */
  private reportCorruptReplica(a: { containerId?: unknown; datanodeId?: unknown; localId?: unknown }): { checking: boolean; dropped?: true } {
    const id = parseId<ContainerId>(a.containerId, 'containerId')
    if (this.tables.containers.get(id) === undefined) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot mark replica of container ${id}: not found`)
    if (!isDatanodeId(a.datanodeId)) throw new O3Error('INVALID_ARGUMENT', 'Cannot mark replica: datanodeId malformed')
    const localId = parseId<LocalId>(a.localId, 'localId')
    const dn = a.datanodeId
    const node = this.nodes.get(dn)
    if (node === undefined) throw new O3Error('NODE_NOT_FOUND', `Cannot check replica of container ${id} on ${dn}: no such datanode`)
    const replica = `${id}/${dn}`
    const block = `${replica}/${localId}`
    // Marked already, or being checked (readers keep hitting a corrupt replica until it is replaced).
    if (this.tables.unhealthy.get(replica) === true || this.markingUnhealthy.has(replica) || this.reportChecks.has(block)) return { checking: false }
    let onNode = 0
    for (const k of this.reportChecks) if (k.split('/')[1] === dn) onNode++
    if (onNode >= SCM_CORRUPT_REPORT_CHECKS_PER_DATANODE || this.reportChecks.size >= SCM_CORRUPT_REPORT_CHECKS_MAX) {
      // Counted, logged at debug only: a caller flooding reports would set the log's volume.
      this.reportsDropped.inc()
      log.debug(`SCM: report of a corrupt block ${id}:${localId} on ${dn} dropped: ${onNode >= SCM_CORRUPT_REPORT_CHECKS_PER_DATANODE ? `${onNode} reports on that datanode` : `${this.reportChecks.size} reports`} are being checked`)
      // The reader is to report again when it meets the replica again (it forgets it corrupt).
      return { checking: false, dropped: true }
    }
    this.reportChecks.add(block)
    const check = this.datanodeRpc(node.address).call<{ result: string; error?: string }>('checkBlock', { containerId: id, localId }, { timeoutMs: BLOCK_CHECK_WAIT_MS_MAX })
      .then((r) => {
        if (r.result === 'CORRUPT') {
          this.reportsConfirmed.inc()
          this.persistUnhealthy(id, dn, `reported corrupt and found so by its datanode (${r.error ?? `block ${localId}`})`)
          return
        }
        this.reportsRefuted.inc()
        log.info(`SCM: replica of container ${id} on ${dn} reported corrupt (block ${localId}); its datanode finds the block intact`)
      })
      .finally(() => this.reportChecks.delete(block))
    this.background(`checking the reported corrupt block ${id}:${localId} on ${dn}`, check)
    return { checking: true }
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
    const txs: Omit<DeleteTx, 'id'>[] = []
    for (const [containerId, localIds] of byContainer) {
      const c = this.tables.containers.get(containerId)
      if (c === undefined) continue
      const pending = [...this.holders(c)]
      if (pending.length > 0) txs.push({ containerId, localIds, pending })
    }
    if (txs.length === 0) return { queued: 0 }
    const ids = await this.ha.submit('addDeleteTxs', { txs }) as number[]
    for (const [i, id] of ids.entries()) for (const dn of txs[i].pending) this.deletesOf(dn).set(id, 0)
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
    if (!this.ha.isLeader()) return out
    const term = this.ha.raft.term()
    if (term !== this.deletesTerm) {
      // New at leading (or the first heartbeat after start): every pending deletion, from the log's table.
      this.deletesSent.clear()
      for (const { value } of this.tables.deletes.getRange()) for (const holder of value.pending) this.deletesOf(holder).set(value.id, 0)
      this.deletesTerm = term
    }
    const sent = this.deletesSent.get(dn)
    if (sent === undefined) return out
    const now = Date.now()
    const resendMs = DELETE_RESEND_HEARTBEATS * this.config['datanode.heartbeatIntervalMs']
    for (const [id, at] of sent) {
      if (out.length >= room) break
      if (at !== 0 && now - at < resendMs) continue
      const tx = this.tables.deletes.get(id)
      if (tx === undefined || !tx.pending.includes(dn)) { sent.delete(id); continue }
      out.push({ type: 'deleteBlocks', txId: id, containerId: tx.containerId, localIds: tx.localIds })
      sent.set(id, now)
    }
    return out
  }

  /** A datanode did these deletions: it is off their lists, and a deletion every holder did is done. */
  private async ackDeletes(dn: DatanodeId, raw: unknown[]): Promise<void> {
    const ids = raw.slice(0, HEARTBEAT_COMMANDS_MAX).filter((x): x is number => typeof x === 'number' && Number.isSafeInteger(x))
    if (ids.length === 0 || !this.ha.isLeader()) return
    for (const id of ids) this.deletesSent.get(dn)?.delete(id)
    if (!ids.some((id) => this.tables.deletes.get(id)?.pending.includes(dn) === true)) return
    await this.ha.submit('ackDeletes', { datanodeId: dn, ids })
  }

  /** What the datanode admin monitor sees of this SCM and may ask of it. */
  private adminHost(): AdminHost {
    const pipelinesOf = (dn: DatanodeId) => this.livePipelines().filter((p) => p.nodes.some((n) => n.id === dn))
    return {
      isLeader: () => this.ha.isLeader(),
      records: () => [...this.tables.nodeStates.getRange()].map(({ key, value }) => [key as DatanodeId, value]),
      operationalState: (dn) => this.operationalState(dn),
      nodes: () => [...this.nodes.values()].map((n) => ({ id: n.id, address: n.address })),
      health: (dn) => {
        const n = this.nodes.get(dn)
        if (n === undefined) return undefined
        const health = this.health(n)
        // A report from after its last pipeline closed lists every container written through it.
        const closedAtMs = Math.max(0, ...this.allPipelines().filter((p) => p.nodes.some((m) => m.id === dn)).map((p) => p.closedAtMs ?? 0))
        return (this.containersHeard.get(dn) ?? -1) > closedAtMs || health === 'DEAD' ? health : undefined
      },
      livePipelinesOf: pipelinesOf,
      closePipeline: (p, why) => this.closePipeline(p, why),
      containersOf: (dn) => {
        const out: AdminContainer[] = []
        // What it reported (Ozone's NodeManager.getContainers): a container allocated on its
        // pipelines but never written has no replica anywhere and does not hold it back.
        for (const [id, replicas] of this.replicas) {
          const c = this.tables.containers.get(id)
          if (c === undefined || !replicas.has(dn)) continue
          const parsed = parseReplication(c.replication)
          out.push({
            id: c.id, state: c.state, factor: parsed.factor, ...(parsed.ec === undefined ? {} : { ec: parsed.ec }),
            replicas: [...replicas].map(([id, r]) => {
              const node = this.nodes.get(id)
              return { datanodeId: id, state: r.state, bcsid: r.bcsid, health: node === undefined ? 'DEAD' : this.health(node), operationalState: this.operationalState(id), replicaIndex: r.replicaIndex }
            }),
          })
        }
        return out
      },
      submit: async (changes) => await this.ha.submit('setNodeStates', { changes }) as DatanodeId[],
      backInService: () => this.background('creating pipelines', this.createPipelines()),
      maintenanceMinimum: this.config['maintenance.replica.minimum'],
    }
  }

  /** What the replication manager sees of this SCM and may ask of it. */
  private replicationHost(): ReplicationHost {
    const empty = new Map<DatanodeId, ReplicaRecord>()
    return {
      isLeader: () => this.ha.isLeader(),
      term: () => this.ha.raft.term(),
      inSafeMode: () => this.inSafeMode,
      containers: () => [...this.tables.containers.getRange()].map(({ value: c }) => ({ ...c, pipelineNodes: this.tables.pipelines.get(c.pipelineId)?.nodes.map((n) => n.id) ?? [] })),
      replicas: (id) => this.replicas.get(id) ?? empty,
      nodes: () => [...this.nodes.values()].filter((n) => n.lastHeartbeatMs !== 0).map((n) => ({
        id: n.id, host: n.address.slice(0, n.address.lastIndexOf(':')), health: this.health(n), operationalState: this.operationalState(n.id), availableBytes: nodeUsage(n).availableBytes, full: !this.hasRoom(n),
      })),
      details: (dn) => this.details(dn),
      markedUnhealthy: (id, dn) => this.tables.unhealthy.get(`${id}/${dn}`) === true,
      queue: (dn, command) => this.queue(dn, command),
      scanReplica: (id, dn, timeoutMs) => this.datanodeRpc(this.details(dn).address).call<{ result: string; error?: string }>('scanContainer', { containerId: id }, { idempotent: true, timeoutMs }),
      setContainerState: async (id, state, why) => {
        if (state === 'CLOSING') return this.closeContainer(id, why)
        const now = await this.ha.submit('setContainerState', { id, state })
        log.info(`SCM: container ${id} ${String(now)}: ${why}`)
      },
    }
  }

  // --- queries ---------------------------------------------------------------------------

  private replicaList(c: ContainerId): [DatanodeId, ReplicaRecord][] {
    return [...(this.replicas.get(c) ?? new Map<DatanodeId, ReplicaRecord>())]
  }

  private getContainerLocations(a: { containerIds?: unknown }): Record<string, ContainerLocation> {
    if (!Array.isArray(a.containerIds)) throw new O3Error('INVALID_ARGUMENT', 'Cannot look up containers: containerIds must be an array')
    const out: Record<string, ContainerLocation> = {}
    for (const raw of a.containerIds) {
      const id = parseId<ContainerId>(raw, 'containerId')
      const c = this.tables.containers.get(id)
      if (c === undefined) continue
      const p = this.tables.pipelines.get(c.pipelineId)
      out[id] = {
        state: c.state,
        pipeline: p === undefined ? null : this.resolve(p),
        // Replicas known corrupt come last: a reader tries them only when nothing else answers;
        // before them those on nodes not HEALTHY, then not IN_SERVICE (an EC reader takes the
        // first replica of each index: a rebuilt one, not the dead node's).
        replicas: this.replicaList(id).filter(([dn]) => this.nodes.has(dn)).map(([dn, r]) => ({ ...this.details(dn), state: r.state, replicaIndex: r.replicaIndex }))
          .sort((x, y) => this.readRank(x) - this.readRank(y)),
      }
    }
    return out
  }

  /** Where a replica goes in a reader's order: 0 best. */
  private readRank(r: { id: DatanodeId; state: ContainerState }): number {
    const node = this.nodes.get(r.id)
    const healthy = node !== undefined && this.health(node) === 'HEALTHY'
    return (r.state === 'UNHEALTHY' ? 4 : 0) + (healthy ? 0 : 2) + (this.operationalState(r.id) === 'IN_SERVICE' ? 0 : 1)
  }

  private containerInfo(id: ContainerId) {
    const c = this.tables.containers.get(id)
    if (c === undefined) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot find container ${id}`)
    const p = this.tables.pipelines.get(c.pipelineId)
    const replicas = this.replicaList(id)
    return {
      id: c.id, state: c.state, replication: c.replication, pipelineId: c.pipelineId, createdAtMs: c.createdAtMs,
      // What the fullest replica reports its blocks hold (Ozone's container usedBytes and key count).
      usedBytes: Math.max(0, ...replicas.map(([, r]) => r.usedBytes || 0)), blockCount: Math.max(0, ...replicas.map(([, r]) => r.blockCount || 0)),
      pipeline: p === undefined ? null : this.resolve(p),
      replicas: replicas.map(([dn, r]) => {
        const node = this.nodes.get(dn)
        return { datanodeId: dn, address: node?.address ?? '', nodeState: node === undefined ? 'UNKNOWN' : this.health(node), ...r }
      }),
    }
  }

  private listContainers(a: { state?: unknown; start?: unknown; count?: unknown }) {
    const start = a.start === undefined ? 0 : parseId<number>(a.start, 'start')
    const count = a.count === undefined ? 1000 : Math.min(1000, parseId<number>(a.count, 'count'))
    if (a.state !== undefined && !(CONTAINER_STATE_ORDER as readonly unknown[]).includes(a.state)) throw new O3Error('INVALID_ARGUMENT', `Cannot list containers in state ${JSON.stringify(a.state)}: a container is ${CONTAINER_STATE_ORDER.join(', ')}`)
    const out = []
    for (const { value } of this.tables.containers.getRange({ start })) {
      if (out.length >= count) break
      if (a.state === undefined || value.state === a.state) out.push(this.containerInfo(value.id))
    }
    return out
  }

  private listDatanodes() {
    const pipelines = this.allPipelines()
    return [...this.nodes.values()].sort((x, y) => (x.id < y.id ? -1 : 1)).map((n) => ({
      id: n.id, address: n.address, state: this.health(n), operationalState: this.operationalState(n.id),
      maintenanceEndMs: this.tables.nodeStates.get(n.id)?.endMs ?? null, adminProgress: this.nodeAdmin.progress(n.id) ?? null,
      lastHeartbeatMs: n.lastHeartbeatMs, ...nodeUsage(n), full: !this.hasRoom(n),
      pipelines: pipelines.filter((p) => p.state === 'OPEN' && p.nodes.some((x) => x.id === n.id)).length,
      containers: [...this.replicas.values()].filter((r) => r.has(n.id)).length,
    }))
  }

  private listPipelines(): Pipeline[] {
    return this.allPipelines().sort((x, y) => x.createdAtMs - y.createdAtMs).map((p) => this.resolve(p))
  }

  private safemodeStatus() {
    return { inSafeMode: this.inSafeMode, healthyDatanodes: this.safemodeNodes(), requiredDatanodes: this.config['scm.safemode.minDatanodes'] }
  }
}

function parseVolumes(raw: unknown): VolumeReport[] {
  if (!Array.isArray(raw)) return []
  return raw.slice(0, 64).map((v: Partial<VolumeReport>) => ({
    dir: String(v.dir ?? ''), capacityBytes: Number(v.capacityBytes) || 0, usedBytes: Number(v.usedBytes) || 0, availableBytes: Number(v.availableBytes) || 0,
    reservedBytes: Number(v.reservedBytes) || 0, full: v.full === true,
  }))
}

/** A heartbeat's container actions (Ozone's ContainerAction): the ids of containers the datanode asks to close, bounded. */
function closeActions(raw: unknown): ContainerId[] {
  if (!Array.isArray(raw)) return []
  return raw.slice(0, HEARTBEAT_COMMANDS_MAX).flatMap((a: { containerId?: unknown; action?: unknown }) =>
    a !== null && typeof a === 'object' && a.action === 'CLOSE' && Number.isSafeInteger(a.containerId) && (a.containerId as number) >= 0 ? [a.containerId as ContainerId] : [])
}
