/** @module
 * The SCM leader's replication loop (Ozone's ReplicationManager): every
 * scm.replication.intervalMs it classifies every container (classify.ts), plans commands
 * (plan.ts) and queues them for the datanodes' heartbeats. A replicate or delete command is
 * in flight until the datanode's report shows it done (the target holds the replica, or the
 * surplus one is gone) or scm.replication.commandTimeoutMs passes, and the next round plans
 * it again. In-flight commands live in the leader's memory only: a new leader starts with
 * none, and the datanodes refuse a copy they already hold. It owns no replicated state; the
 * SCM does the Raft writes it asks for (container state moves).
 */
import { Counter, Gauge } from 'prom-client'
import type { O3Config } from '../../../core/config.ts'
import { REPLICATION_CONTAINERS_PER_ROUND_MAX, REPLICATION_FAILURES_TRACKED_MAX, REPLICATION_RETRY_BASE_MS, REPLICATION_SCAN_VALID_MS, REPLICATION_SCANNED_HEARD_HEARTBEATS, REPLICATION_SCANS_MAX, SCANNER_ON_DEMAND_WAIT_MS_MAX } from '../../../core/limits.ts'
import { O3Error } from '../../../core/errors.ts'
import { log } from '../../../core/log.ts'
import type { ServiceMetrics } from '../../../core/metrics.ts'
import { isEcReplication, parseReplication, type ContainerId, type ContainerState, type DatanodeDetails, type DatanodeId } from '../../../core/wire.ts'
import { HEALTH_STATES, type Classification, type ContainerView, type HealthState } from './classify.ts'
import type { EcContainerView } from './ec-classify.ts'
import { planEcReplication, type EcAction, type EcEndpoint } from './ec-plan.ts'
import { planReplication, type InflightOp, type NodeView } from './plan.ts'

/**
 * EC (issue 14): rebuild the `targets`' indexes of a container from the `sources` (one node
 * per available index), run by `targets[0]`, the coordinator (Ozone's ReconstructECContainersCommand).
 */
export interface ReconstructECContainerCommand {
  type: 'reconstructECContainer'
  containerId: ContainerId
  replication: string
  sources: { replicaIndex: number; datanode: DatanodeDetails }[]
  targets: { replicaIndex: number; datanode: DatanodeDetails }[]
}

/** The commands this loop sends (the SCM's DatanodeCommand has them as members). */
export type ReplicationCommand =
  /** `asIs`: the sources are corrupt replicas, the only ones left: copy what they hold, verified or not. */
  | { type: 'replicateContainer'; containerId: ContainerId; sources: DatanodeDetails[]; asIs?: true }
  | ReconstructECContainerCommand
  | { type: 'deleteContainer'; containerId: ContainerId; force: boolean }
  | { type: 'closeContainer'; containerId: ContainerId; force?: boolean }

/** A replica as the SCM last heard it from its datanode. */
export interface ReportedReplica {
  state: ContainerState; bcsid: number; usedBytes: number; blockCount: number; reportedAtMs: number
  /** EC: the replica's index, 1..k+m; 0 for RATIS. */
  replicaIndex: number
}

/** What the loop needs of the SCM service. */
export interface ReplicationHost {
  isLeader(): boolean
  term(): number
  inSafeMode(): boolean
  /** Every container record, in id order. */
  containers(): Iterable<{ id: ContainerId; state: ContainerState; replication: string; pipelineNodes: DatanodeId[] }>
  replicas(id: ContainerId): ReadonlyMap<DatanodeId, ReportedReplica>
  nodes(): NodeView[]
  details(dn: DatanodeId): DatanodeDetails
  /** Is a replica of this container on this datanode marked corrupt (so it must not get a new copy)? */
  markedUnhealthy(id: ContainerId, dn: DatanodeId): boolean
  queue(dn: DatanodeId, command: ReplicationCommand): void
  /** Has the datanode scan its replica of the container whole now (its `scanContainer`, waited for up to `timeoutMs`). */
  scanReplica(id: ContainerId, dn: DatanodeId, timeoutMs: number): Promise<{ result: string; error?: string }>
  setContainerState(id: ContainerId, state: 'CLOSING' | 'QUASI_CLOSED' | 'CLOSED', why: string): Promise<unknown>
}

interface Sent extends InflightOp {
  sentAtMs: number
  sources?: DatanodeId[]
  /** The target said it failed from every source: planned again from then (a back-off), not at the timeout. */
  retryAtMs?: number
}

export interface ContainerReport {
  /** Containers per lifecycle state (OPEN, CLOSING, QUASI_CLOSED, CLOSED). */
  lifecycle: Record<string, number>
  /** Containers per health state; a container may count in several. */
  health: Record<HealthState, number>
  /** Up to REPORT_SAMPLE_MAX container ids per health state other than HEALTHY. */
  samples: Partial<Record<HealthState, ContainerId[]>>
  /** `scan`: whole-replica scans asked of datanodes before a corrupt replica makes room. */
  inflight: { replicate: number; reconstruct: number; delete: number; scan: number }
}

/** What a plan says of one container, RATIS or EC alike (reports, `o3 admin container info`). */
export type ContainerHealth = Pick<Classification, 'id' | 'health' | 'states'>

export interface ManagerPlan {
  classifications: ContainerHealth[]
  actions: EcAction[]
}

const REPORT_SAMPLE_MAX = 100

/** Replicas a RATIS container should have. */
export function replicationFactor(replication: string): number {
  if (replication.endsWith('/THREE')) return 3
  if (replication.endsWith('/ONE')) return 1
  return 3
}

export class ReplicationManager {
  private timer?: ReturnType<typeof setInterval>
  private readonly inflight = new Map<string, Sent>()
  /** Copies failed in a row, by `containerId/target` (the back-off's exponent); a copy done clears its count. */
  private readonly failuresInRow = new Map<string, number>()
  /** Whole-replica scans asked for and not answered, by `containerId/datanodeId`. */
  private readonly scans = new Set<string>()
  /** Replicas a scan found healthy, by `containerId/datanodeId`: their bcsid then, and the round that saw the answer. */
  private readonly scannedHealthy = new Map<string, { bcsid: number; atMs: number }>()
  private term = -1
  private leaderSinceMs = 0
  /** The clock of the latest round (a scan's answer is dated by it). */
  private roundMs = 0
  private running?: Promise<void>
  private readonly sent: Counter<'kind'>
  private readonly completed: Counter<'kind'>
  private readonly timedOut: Counter<'kind'>
  private readonly failed: Counter<'kind'>
  private readonly bytes: Counter

  constructor(private readonly host: ReplicationHost, private readonly config: O3Config, metrics: ServiceMetrics) {
    const registers = [metrics.registry]
    this.sent = new Counter({ name: 'o3_scm_replication_commands_sent_total', help: 'Replication manager commands queued for datanodes, by kind', labelNames: ['kind'], registers })
    this.completed = new Counter({ name: 'o3_scm_replication_commands_completed_total', help: 'Replicate and delete commands seen done in datanode reports, by kind', labelNames: ['kind'], registers })
    this.timedOut = new Counter({ name: 'o3_scm_replication_commands_timed_out_total', help: 'Replicate and delete commands not done within scm.replication.commandTimeoutMs, by kind', labelNames: ['kind'], registers })
    this.failed = new Counter({ name: 'o3_scm_replication_commands_failed_total', help: 'Replicate commands a datanode reported failed from every source, by kind', labelNames: ['kind'], registers })
    this.bytes = new Counter({ name: 'o3_scm_replication_bytes_total', help: 'Bytes of container replicas made by replication', registers })
    const self = this
    new Gauge({
      name: 'o3_scm_containers_health', help: 'Containers per health state (leader only; a container may count in several)', labelNames: ['state'], registers,
      collect() {
        if (!host.isLeader()) return
        const health = self.report().health
        for (const s of HEALTH_STATES) this.set({ state: s }, health[s])
      },
    })
    new Gauge({ name: 'o3_scm_replication_inflight', help: 'Replicate and delete commands in flight', registers, collect() { this.set(self.inflight.size) } })
    new Gauge({ name: 'o3_scm_replication_scans_inflight', help: 'Whole-replica scans asked of datanodes and not answered', registers, collect() { this.set(self.scans.size) } })
  }

  start(): void {
    this.timer = setInterval(() => { void this.tick() }, this.config['scm.replication.intervalMs'])
    this.timer.unref()
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.running
  }

  /** One round, unless one is running (or this SCM does not lead); errors are logged, the next round tries again. */
  tick(nowMs = Date.now()): Promise<void> {
    if (this.running !== undefined) return this.running
    this.running = this.round(nowMs)
      .catch((err: unknown) => log.warn(`SCM: replication round failed: ${(err as Error).message}`))
      .finally(() => { this.running = undefined })
    return this.running
  }

  /**
   * The plan for the cluster as it is now, acting on nothing (reports and tests): RATIS
   * containers by plan.ts, EC ones by ec-plan.ts, which counts the RATIS commands just
   * planned against the same per-datanode limit.
   */
  plan(nowMs = Date.now()): ManagerPlan {
    const nodes = this.host.nodes()
    const byId = new Map(nodes.map((n) => [n.id, n]))
    const containers: ContainerView[] = []
    const ec: EcContainerView[] = []
    for (const c of this.host.containers()) {
      const replicas = [...this.host.replicas(c.id)].flatMap(([dn, r]) => {
        const n = byId.get(dn)
        // A replica of a datanode this SCM never heard register is not known to be anywhere.
        return n === undefined ? [] : [{ datanodeId: dn, state: r.state, bcsid: r.bcsid, usedBytes: r.usedBytes, host: n.host, health: n.health, operationalState: n.operationalState, replicaIndex: r.replicaIndex }]
      })
      // EC containers' replicas are indexes, not copies (issue 14).
      const parsed = isEcReplication(c.replication) ? parseReplication(c.replication) : undefined
      if (parsed?.ec !== undefined) ec.push({ id: c.id, state: c.state, replication: c.replication, data: parsed.ec.data, parity: parsed.ec.parity, pipelineNodes: c.pipelineNodes, replicas })
      else containers.push({ id: c.id, state: c.state, factor: replicationFactor(c.replication), pipelineNodes: c.pipelineNodes, replicas })
    }
    const inflight = [...this.inflight.values()]
    const limits = { maxInflightPerDatanode: this.config['scm.replication.maxInflightPerDatanode'], excludedTargets: (id: ContainerId, dn: DatanodeId) => this.host.markedUnhealthy(id, dn), verified: (id: ContainerId, dn: DatanodeId) => this.verified(id, dn, nowMs) }
    const ratis = planReplication({ containers, nodes, inflight, maintenanceMinimum: this.config['maintenance.replica.minimum'], ...limits })
    const planned = ratis.actions.flatMap((a): InflightOp[] => a.type === 'replicate' ? [{ kind: 'replicate', containerId: a.containerId, datanodeId: a.target }]
      : a.type === 'delete' ? [{ kind: 'delete', containerId: a.containerId, datanodeId: a.datanodeId }] : [])
    const erasure = planEcReplication({ containers: ec, nodes, inflight: [...inflight, ...planned], ...limits })
    return { classifications: [...ratis.classifications, ...erasure.classifications], actions: [...ratis.actions, ...erasure.actions] }
  }

  /**
   * Whether a scan found the replica healthy within REPLICATION_SCAN_VALID_MS, and it reports
   * the same bcsid, CLOSED, since, the last time within REPLICATION_SCANNED_HEARD_HEARTBEATS
   * heartbeats (a corrupt replica is not deleted beside a source that may have just died).
   */
  private verified(id: ContainerId, dn: DatanodeId, nowMs: number): boolean {
    const heardWithinMs = REPLICATION_SCANNED_HEARD_HEARTBEATS * this.config['datanode.heartbeatIntervalMs']
    return this.scanStands(id, dn, nowMs) && nowMs - this.host.replicas(id).get(dn)!.reportedAtMs <= heardWithinMs
  }

  /** Whether a scan found the replica healthy within REPLICATION_SCAN_VALID_MS, and it reports the same bcsid, CLOSED, since (no new scan is needed). */
  private scanStands(id: ContainerId, dn: DatanodeId, nowMs: number): boolean {
    const scanned = this.scannedHealthy.get(`${id}/${dn}`)
    const r = this.host.replicas(id).get(dn)
    return scanned !== undefined && r !== undefined && r.state === 'CLOSED' && r.bcsid === scanned.bcsid && nowMs - scanned.atMs < REPLICATION_SCAN_VALID_MS
  }

  report(): ContainerReport {
    const lifecycle: Record<string, number> = {}
    for (const c of this.host.containers()) lifecycle[c.state] = (lifecycle[c.state] ?? 0) + 1
    const health = Object.fromEntries(HEALTH_STATES.map((s) => [s, 0])) as Record<HealthState, number>
    const samples: Partial<Record<HealthState, ContainerId[]>> = {}
    for (const cls of this.plan().classifications) {
      for (const s of cls.states) {
        health[s]++
        if (s === 'HEALTHY') continue
        const list = (samples[s] ??= [])
        if (list.length < REPORT_SAMPLE_MAX) list.push(cls.id)
      }
    }
    const inflight = { replicate: 0, reconstruct: 0, delete: 0, scan: this.scans.size }
    for (const op of this.inflight.values()) inflight[op.kind]++
    return { lifecycle, health, samples, inflight }
  }

  /** The commands in flight (`replicationStatus`, for operators and tests). */
  status(): { inflight: Sent[] } {
    return { inflight: [...this.inflight.values()].map((op) => ({ ...op, sources: op.sources === undefined ? undefined : [...op.sources] })) }
  }

  /** The classification of one container now (`o3 admin container info`). */
  classification(id: ContainerId): ContainerHealth | undefined {
    return this.plan().classifications.find((c) => c.id === id)
  }

  private async round(nowMs: number): Promise<void> {
    this.roundMs = nowMs
    if (!this.host.isLeader()) {
      this.inflight.clear()
      this.scannedHealthy.clear()
      this.term = -1
      return
    }
    const term = this.host.term()
    if (term !== this.term) {
      // A new leader knows nothing of its predecessor's commands: it waits for the
      // datanodes to report to it before it judges any container.
      this.term = term
      this.leaderSinceMs = nowMs
      this.inflight.clear()
      this.scannedHealthy.clear()
    }
    for (const [key, scanned] of this.scannedHealthy) if (nowMs - scanned.atMs >= REPLICATION_SCAN_VALID_MS) this.scannedHealthy.delete(key)
    if (this.host.inSafeMode()) return
    const graceMs = Math.max(this.config['scm.replication.intervalMs'], 3 * this.config['datanode.heartbeatIntervalMs'])
    if (nowMs - this.leaderSinceMs < graceMs) return
    this.settle(nowMs)
    const { actions } = this.plan(nowMs)
    let moved = 0
    for (const a of actions) {
      if (a.type === 'setState') {
        if (moved++ >= REPLICATION_CONTAINERS_PER_ROUND_MAX) continue
        await this.host.setContainerState(a.containerId, a.state, 'replication manager: its replicas settled it')
          .catch((err: unknown) => log.warn(`SCM: cannot move container ${a.containerId} to ${a.state}: ${(err as Error).message}`))
      } else this.send(a, nowMs)
    }
  }

  /**
   * A datanode says its copy of container `id` failed from every source (a source died before
   * the SCM knew it, say): the command leaves the in-flight set after a back-off (settle), and
   * a later round plans it again from the sources then known, instead of waiting out
   * scm.replication.commandTimeoutMs.
   */
  copyFailed(id: ContainerId, dn: DatanodeId, nowMs = Date.now()): void {
    const op = this.inflight.get(`replicate/${id}/${dn}`)
    if (op === undefined || op.retryAtMs !== undefined) return
    // A copy that keeps failing (a source corrupt but not known so yet, a full target) backs off.
    const pair = `${id}/${dn}`
    const inRow = (this.failuresInRow.get(pair) ?? 0) + 1
    this.failuresInRow.delete(pair)
    this.failuresInRow.set(pair, inRow)
    for (const oldest of this.failuresInRow.keys()) {
      if (this.failuresInRow.size <= REPLICATION_FAILURES_TRACKED_MAX) break
      this.failuresInRow.delete(oldest)
    }
    const waitMs = Math.min(this.config['scm.replication.commandTimeoutMs'], REPLICATION_RETRY_BASE_MS * 2 ** Math.min(inRow - 1, 30))
    op.retryAtMs = nowMs + waitMs
    this.failed.inc({ kind: 'replicate' })
    log.warn(`SCM: replicate of container ${id} on ${dn} failed from every source (${inRow} in a row): planned again in ${waitMs} ms`)
  }

  /** Commands seen done in reports leave the in-flight set; those past the timeout too, to be planned again. */
  private settle(nowMs: number): void {
    const timeoutMs = this.config['scm.replication.commandTimeoutMs']
    for (const [key, op] of this.inflight) {
      const r = this.host.replicas(op.containerId).get(op.datanodeId)
      // A rebuilt index is done once its target reports it CLOSED with that index (the
      // coordinator closes it last); until then it is OPEN or recovering there.
      const done = op.kind === 'delete' ? r === undefined
        : op.kind === 'reconstruct' ? r !== undefined && r.reportedAtMs >= op.sentAtMs && r.state === 'CLOSED' && r.replicaIndex === op.replicaIndex
          : r !== undefined && r.reportedAtMs >= op.sentAtMs && r.state !== 'OPEN' && r.state !== 'CLOSING'
      if (done) {
        this.inflight.delete(key)
        this.failuresInRow.delete(`${op.containerId}/${op.datanodeId}`)
        this.completed.inc({ kind: op.kind })
        if (op.kind !== 'delete' && r !== undefined) this.bytes.inc(r.usedBytes)
        log.info(`SCM: ${op.kind} of container ${op.containerId} on ${op.datanodeId} done`)
      } else if (op.retryAtMs !== undefined && nowMs >= op.retryAtMs) {
        this.inflight.delete(key)
      } else if (nowMs - op.sentAtMs >= timeoutMs) {
        this.inflight.delete(key)
        this.timedOut.inc({ kind: op.kind })
        log.warn(`SCM: ${op.kind} of container ${op.containerId} on ${op.datanodeId} not done within ${timeoutMs} ms: planned again`)
      }
    }
  }

  private send(a: Exclude<EcAction, { type: 'setState' }>, nowMs: number): void {
    switch (a.type) {
      case 'replicate': {
        const asIs = 'asIs' in a && a.asIs === true
        this.host.queue(a.target, { type: 'replicateContainer', containerId: a.containerId, sources: a.sources.map((dn) => this.host.details(dn)), ...(asIs ? { asIs: true as const } : {}) })
        this.inflight.set(`replicate/${a.containerId}/${a.target}`, { kind: 'replicate', containerId: a.containerId, datanodeId: a.target, sentAtMs: nowMs, sources: a.sources, replicaIndex: a.replicaIndex })
        this.sent.inc({ kind: 'replicate' })
        const index = a.replicaIndex === undefined ? '' : ` (EC index ${a.replicaIndex}, its node leaving service)`
        log.info(`SCM: replicating container ${a.containerId} to ${a.target} from ${a.sources.join(',')}${index}${asIs ? ' (its UNHEALTHY replicas, the only ones left, as they are)' : ''}`)
        return
      }
      case 'reconstruct': {
        const endpoint = (e: EcEndpoint) => ({ replicaIndex: e.replicaIndex, datanode: this.host.details(e.datanodeId) })
        const coordinator = a.targets[0].datanodeId
        this.host.queue(coordinator, { type: 'reconstructECContainer', containerId: a.containerId, replication: a.replication, sources: a.sources.map(endpoint), targets: a.targets.map(endpoint) })
        for (const t of a.targets) {
          this.inflight.set(`reconstruct/${a.containerId}/${t.datanodeId}`, { kind: 'reconstruct', containerId: a.containerId, datanodeId: t.datanodeId, replicaIndex: t.replicaIndex, sentAtMs: nowMs, sources: a.sources.map((s) => s.datanodeId) })
        }
        this.sent.inc({ kind: 'reconstruct' })
        log.info(`SCM: reconstructing EC container ${a.containerId} index(es) ${a.targets.map((t) => `${t.replicaIndex}->${t.datanodeId}`).join(', ')} from index(es) ${a.sources.map((s) => s.replicaIndex).join(',')}, coordinated by ${coordinator}`)
        return
      }
      case 'delete': {
        this.host.queue(a.datanodeId, { type: 'deleteContainer', containerId: a.containerId, force: a.force })
        this.inflight.set(`delete/${a.containerId}/${a.datanodeId}`, { kind: 'delete', containerId: a.containerId, datanodeId: a.datanodeId, sentAtMs: nowMs })
        this.sent.inc({ kind: 'delete' })
        log.info(`SCM: deleting replica of container ${a.containerId} on ${a.datanodeId}`)
        return
      }
      case 'scan': {
        const key = `${a.containerId}/${a.datanodeId}`
        // Scanned already, only not heard from lately: the delete waits for its next report.
        if (this.scanStands(a.containerId, a.datanodeId, nowMs)) return
        if (this.scans.has(key) || this.scans.size >= REPLICATION_SCANS_MAX || [...this.scans].some((k) => k.endsWith(`/${a.datanodeId}`))) return
        const bcsid = this.host.replicas(a.containerId).get(a.datanodeId)?.bcsid
        if (bcsid === undefined) return
        const { term } = this
        const scan = this.host.scanReplica(a.containerId, a.datanodeId, SCANNER_ON_DEMAND_WAIT_MS_MAX)
        this.scans.add(key)
        this.sent.inc({ kind: 'scan' })
        log.info(`SCM: scanning the replica of container ${a.containerId} on ${a.datanodeId} whole before a corrupt replica beside it makes room`)
        void scan
          .then((r) => {
            // An answer to a former term's leader is not this one's to act on (its memory was cleared).
            if (r.result === 'HEALTHY' && this.term === term) this.scannedHealthy.set(key, { bcsid, atMs: this.roundMs })
            // UNHEALTHY: the datanode marked the replica, and its report says so.
            log.info(`SCM: replica of container ${a.containerId} on ${a.datanodeId} scanned: ${r.result}${r.error === undefined ? '' : ` (${r.error})`}`)
          }, (err: unknown) => {
            // A datanode with its on-demand scans all running refuses (UNAVAILABLE): asked again next round.
            const busy = err instanceof O3Error && err.code === 'UNAVAILABLE'
            log[busy ? 'debug' : 'warn'](`SCM: cannot scan the replica of container ${a.containerId} on ${a.datanodeId}: ${(err as Error).message}`)
          })
          .finally(() => this.scans.delete(key))
        return
      }
      case 'close': {
        this.host.queue(a.datanodeId, { type: 'closeContainer', containerId: a.containerId, ...(a.force ? { force: true } : {}) })
        this.sent.inc({ kind: a.force ? 'forceClose' : 'close' })
        if (a.force) log.info(`SCM: force-closing QUASI_CLOSED replica of container ${a.containerId} on ${a.datanodeId}`)
        return
      }
    }
  }
}
