/** @module
 * Test helper: a datanode reduced to its conversation with the SCM (issue 12), over the real
 * RPC on loopback: it registers, heartbeats with its pipeline reports, keeps every command
 * it is answered, runs a "group" (a report) per createPipeline it chooses to obey, drops it
 * on closePipeline, and answers the SCM's triggerHeartbeat nudge. The test scripts what it
 * reports (leader, term, diverged), the container replicas it reports, and when it stops
 * heartbeating. Holds no data.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig, type O3Config } from '../../../core/config.ts'
import { StorageContainerManager } from '../../../control/scm/index.ts'
import { until } from '../../helpers.ts'
import { serveApp, type Listener } from '../../../core/http/serve.ts'
import { ServiceMetrics } from '../../../core/metrics.ts'
import { RpcClient } from '../../../core/rpc/client.ts'
import { createServiceApp } from '../../../core/rpc/server.ts'
import type { ContainerId, DatanodeDetails, DatanodeId, PipelineId, PipelineReport } from '../../../core/wire.ts'

/** A command as the datanode received it, and when. */
export interface Received { type: string; pipelineId?: PipelineId; containerId?: ContainerId; members?: DatanodeDetails[]; suggestedLeaderId?: DatanodeId; atMs: number }

export class ScriptedDatanode {
  readonly id: DatanodeId
  /** The groups it runs, as it reports them. */
  readonly groups = new Map<PipelineId, PipelineReport>()
  readonly received: Received[] = []
  nudges = 0
  /** Starts a group when told createPipeline (false: ignores it, as a node whose group fails to start). */
  forms = true
  /** The container replicas its heartbeats report (the test sets them). */
  containers: { containerId: ContainerId; state: string; usedBytes: number; blockCount: number; bcsid?: number; replicaIndex?: number }[] = []
  /** Sends `pipelines` in its heartbeats (false: a datanode from before issue 12). */
  reports = true
  private readonly scm: RpcClient
  private listener?: Listener
  private timer?: ReturnType<typeof setTimeout>
  private paused = false
  private stopped = false

  /** `answersNudge` false: the datanode knows no triggerHeartbeat (the SCM must ignore its error). */
  constructor(scmAddress: string, private readonly options: { heartbeatMs: number; answersNudge?: boolean; id?: DatanodeId }) {
    this.id = options.id ?? randomUUID() as DatanodeId
    this.scm = new RpcClient('SCM', scmAddress)
  }

  get address(): string {
    return `127.0.0.1:${this.listener!.port}`
  }

  async start(): Promise<void> {
    const handlers: Record<string, () => object> = this.options.answersNudge === false ? {} : {
      triggerHeartbeat: () => {
        this.nudges++
        void this.beat().catch(() => undefined)
        return {}
      },
    }
    this.listener = await serveApp(createServiceApp({ service: 'Datanode', handlers, metrics: new ServiceMetrics('datanode'), health: () => ({ id: this.id }) }), { host: '127.0.0.1', port: 0, name: 'scripted datanode' })
    await this.register()
    this.schedule()
  }

  /** Stops heartbeating (the SCM sees it go STALE, then DEAD); `resume()` starts again. */
  pause(): void {
    this.paused = true
  }

  resume(): void {
    this.paused = false
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.listener?.close()
  }

  commandsOf(type: string, pipelineId?: PipelineId): Received[] {
    return this.received.filter((c) => c.type === type && (pipelineId === undefined || c.pipelineId === pipelineId))
  }

  /** Every group of `pipelineId` on these nodes now reports `leaderId` in `term`. */
  static elect(nodes: ScriptedDatanode[], pipelineId: PipelineId, leaderId: DatanodeId | '', term: number): void {
    for (const n of nodes) {
      const g = n.groups.get(pipelineId)
      if (g !== undefined) n.groups.set(pipelineId, { ...g, leaderId, term })
    }
  }

  heartbeatArgs(): Record<string, unknown> {
    return { id: this.id, volumes: [], containers: this.containers, ...(this.reports ? { pipelines: [...this.groups.values()] } : {}) }
  }

  /**
   * One heartbeat, its commands obeyed; after the one running, if any (each reports what the
   * commands of the previous one made it run, as a datanode's do).
   */
  beat(): Promise<void> {
    this.last = this.last.catch(() => undefined).then(() => this.beatNow())
    return this.last
  }

  private last: Promise<void> = Promise.resolve()

  private async beatNow(): Promise<void> {
    if (this.stopped || this.paused) return
    const { commands } = await this.scm.call<{ commands: Omit<Received, 'atMs'>[] }>('heartbeat', this.heartbeatArgs())
    const atMs = Date.now()
    for (const c of commands) {
      this.received.push({ ...c, atMs })
      if (c.type === 'reregister') await this.register()
      if (c.type === 'createPipeline' && this.forms && !this.groups.has(c.pipelineId!)) {
        this.groups.set(c.pipelineId!, { pipelineId: c.pipelineId!, leaderId: c.suggestedLeaderId!, term: 1, applied: 0, diverged: false })
      }
      if (c.type === 'closePipeline') this.groups.delete(c.pipelineId!)
    }
  }

  private async register(): Promise<void> {
    await this.scm.call('register', { id: this.id, address: this.address, volumes: [{ dir: '/d', capacityBytes: 1 << 30, usedBytes: 0, availableBytes: 1 << 30 }] })
  }

  private schedule(): void {
    this.timer = setTimeout(async () => {
      if (!this.paused) await this.beat().catch(() => undefined)
      if (!this.stopped) this.schedule()
    }, this.options.heartbeatMs)
  }
}

/**
 * A real SCM on loopback (LMDB in a temp dir) with `count` scripted datanodes heartbeating
 * to it every 200 ms: start() waits until the SCM leaves safemode; stop() removes the dir.
 */
export class ScriptedScm {
  readonly dir: string
  readonly scm: StorageContainerManager
  readonly nodes: ScriptedDatanode[] = []
  rpc!: RpcClient

  constructor(prefix: string, private readonly count: number, overrides: Partial<O3Config>) {
    this.dir = mkdtempSync(join(tmpdir(), prefix))
    const config = loadConfig({ env: {}, overrides: { 'scm.dir': join(this.dir, 'scm'), 'scm.safemode.minDatanodes': count, 'datanode.heartbeatIntervalMs': 200, ...overrides } })
    this.scm = new StorageContainerManager({ config, port: 0, healthCheckIntervalMs: 100 })
  }

  byId(id: DatanodeId): ScriptedDatanode {
    const n = this.nodes.find((x) => x.id === id)
    if (n === undefined) throw new Error(`no scripted datanode ${id}`)
    return n
  }

  async start(): Promise<void> {
    await this.scm.start()
    this.rpc = new RpcClient('SCM', this.scm.address)
    for (let i = 0; i < this.count; i++) {
      const n = new ScriptedDatanode(this.scm.address, { heartbeatMs: 200 })
      this.nodes.push(n)
      await n.start()
    }
    await until('out of safemode', async () => !(await this.rpc.call<{ inSafeMode: boolean }>('safemodeStatus', {})).inSafeMode)
  }

  async stop(): Promise<void> {
    for (const n of this.nodes) await n.stop()
    await this.scm.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }
}
