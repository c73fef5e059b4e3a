/** @module
 * A datanode's replicate commands (Ozone's ReplicationSupervisor with its pull task,
 * DownloadAndImportReplicator): at most DATANODE_IMPORTS_INFLIGHT_MAX imports at once, the
 * rest queued in arrival order (up to DATANODE_IMPORTS_QUEUED_MAX); each pulls the container
 * from its sources in the order given, the next one on any failure. A command for a container
 * held, queued or being imported here is dropped. It reports nothing itself: the imported
 * replica shows in the next heartbeat's container report, which is how the SCM learns the
 * copy is done, and a copy that failed from every source is sent again by the SCM.
 */
import { O3Error } from '../../core/errors.ts'
import { DATANODE_IMPORTS_INFLIGHT_MAX, DATANODE_IMPORTS_QUEUED_MAX } from '../../core/limits.ts'
import { log } from '../../core/log.ts'
import type { ServiceMetrics } from '../../core/metrics.ts'
import { parseId, type ContainerId, type DatanodeDetails, type DatanodeId } from '../../core/wire.ts'
import type { ContainerCopies } from './container-copy.ts'

export interface ReplicateCommand {
  containerId: ContainerId
  sources: DatanodeDetails[]
}

/** A replicate command's fields from a heartbeat answer, checked (a source names an id and a host:port). */
export function parseReplicateCommand(cmd: Record<string, unknown>): ReplicateCommand {
  const containerId = parseId<ContainerId>(cmd.containerId, 'containerId')
  const sources = Array.isArray(cmd.sources) ? cmd.sources : []
  if (sources.length === 0 || sources.length > 16 || !sources.every((s) => typeof s?.id === 'string' && typeof s?.address === 'string' && /^[\w.-]+:\d+$/.test(s.address))) {
    throw new O3Error('INVALID_ARGUMENT', `Cannot replicate container ${containerId}: sources must list 1 to 16 datanodes with id and host:port address`)
  }
  return { containerId, sources: sources.map((s: DatanodeDetails) => ({ id: s.id, address: s.address })) }
}

type Counter = ReturnType<ServiceMetrics['counter']>

export interface ReplicationOptions {
  copies: ContainerCopies
  metrics: ServiceMetrics
  /** This datanode's id (sources naming it are skipped) and how logs name it. */
  self: () => { id: DatanodeId; name: string }
  holds: (id: ContainerId) => boolean
  /** Called when an import completes (the datanode heartbeats soon, to report it). */
  imported: (id: ContainerId) => void
}

export class ContainerReplication {
  private readonly queue: ReplicateCommand[] = []
  private readonly running = new Set<ContainerId>()
  private readonly idleWaiters: (() => void)[] = []
  /** Aborts the running downloads at stop(). */
  private readonly abort = new AbortController()
  private readonly copies: ContainerCopies
  private readonly self: ReplicationOptions['self']
  private readonly holds: ReplicationOptions['holds']
  private readonly imported: ReplicationOptions['imported']
  private readonly succeeded: Counter
  private readonly bytes: Counter
  private readonly failed: Counter

  constructor(o: ReplicationOptions) {
    this.copies = o.copies
    this.self = o.self
    this.holds = o.holds
    this.imported = o.imported
    this.succeeded = o.metrics.counter('container_imports_total', 'Container replicas imported from another datanode')
    this.bytes = o.metrics.counter('container_import_bytes_total', 'Block bytes of the container replicas imported')
    this.failed = o.metrics.counter('container_import_failures_total', 'replicateContainer commands that failed from every source')
    o.metrics.gauge('container_imports_inflight', 'Container copies being imported', () => this.running.size)
    o.metrics.gauge('container_imports_queued', 'Container copies waiting to be imported', () => this.queue.length)
  }

  /** Queues a copy; answers whether it was taken (not a duplicate, not held, room in the queue). */
  add(cmd: ReplicateCommand): boolean {
    const id = cmd.containerId
    if (this.holds(id) || this.running.has(id) || this.queue.some((q) => q.containerId === id)) return false
    if (this.queue.length >= DATANODE_IMPORTS_QUEUED_MAX) {
      log.warn(`${this.self().name}: replicate container ${id} dropped: ${DATANODE_IMPORTS_QUEUED_MAX} copies queued already`)
      return false
    }
    this.queue.push(cmd)
    this.pump()
    return true
  }

  /** Resolves once no copy is queued or running (tests, and stop()). */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.running.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** Drops the queue and cuts the running copies (each removes what it had written), then waits for them. */
  async stop(): Promise<void> {
    this.queue.length = 0
    this.abort.abort()
    await this.idle()
  }

  private pump(): void {
    while (this.running.size < DATANODE_IMPORTS_INFLIGHT_MAX && this.queue.length > 0) {
      const cmd = this.queue.shift()!
      this.running.add(cmd.containerId)
      void this.copy(cmd).finally(() => {
        this.running.delete(cmd.containerId)
        this.pump()
        if (this.queue.length === 0 && this.running.size === 0) for (const wake of this.idleWaiters.splice(0)) wake()
      })
    }
  }

  private async copy(cmd: ReplicateCommand): Promise<void> {
    const { id: selfId, name } = this.self()
    const id = cmd.containerId
    const errors: string[] = []
    for (const source of cmd.sources.filter((s) => s.id !== selfId)) {
      if (this.holds(id) || this.abort.signal.aborted) return
      try {
        const c = await this.copies.importFrom(source, id, this.abort.signal)
        this.succeeded.inc()
        this.bytes.inc(c.usedBytes)
        this.imported(id)
        return
      } catch (err) {
        if (err instanceof O3Error && err.code === 'CONTAINER_EXISTS') return
        errors.push(`${source.address}: ${(err as Error).message}`)
        log.warn(`${name}: copying container ${id} from ${source.address} failed: ${(err as Error).message}`)
      }
    }
    if (this.abort.signal.aborted) return
    this.failed.inc()
    log.warn(`${name}: cannot replicate container ${id}: every source failed (${errors.join('; ')})`)
  }
}
