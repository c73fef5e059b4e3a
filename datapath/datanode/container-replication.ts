/** @module
 * A datanode's replicate commands (Ozone's ReplicationSupervisor with its pull task,
 * DownloadAndImportReplicator): at most DATANODE_IMPORTS_INFLIGHT_MAX imports at once, the
 * rest queued in arrival order (up to DATANODE_IMPORTS_QUEUED_MAX); each pulls the container
 * from its sources in the order given, the next one on any failure. A command for a container
 * held, queued or being imported here is dropped. The imported replica shows in the next
 * heartbeat's container report, which is how the SCM learns the copy is done; a copy that
 * failed from every source is named in the next heartbeat (`failed`), so the SCM plans it
 * again after a short back-off instead of waiting out its command timeout.
 */
import { O3Error } from '../../core/errors.ts'
import { DATANODE_IMPORTS_INFLIGHT_MAX, DATANODE_IMPORTS_QUEUED_MAX } from '../../core/limits.ts'
import { log } from '../../core/log.ts'
import type { ServiceMetrics } from '../../core/metrics.ts'
import { parseId, type ContainerId, type DatanodeDetails, type DatanodeId, type LocalId } from '../../core/wire.ts'
import { ContainerCommandQueue } from './command-queue.ts'
import { CorruptSourceBlock, type ContainerCopies } from './container-copy.ts'

export interface ReplicateCommand {
  containerId: ContainerId
  sources: DatanodeDetails[]
  /** The sources are corrupt replicas, the only ones left: copy them as they are (ImportOptions.asIs). */
  asIs?: boolean
}

/** A replicate command's fields from a heartbeat answer, checked (a source names an id and a host:port). */
export function parseReplicateCommand(cmd: Record<string, unknown>): ReplicateCommand {
  const containerId = parseId<ContainerId>(cmd.containerId, 'containerId')
  const sources = Array.isArray(cmd.sources) ? cmd.sources : []
  if (sources.length === 0 || sources.length > 16 || !sources.every((s) => typeof s?.id === 'string' && typeof s?.address === 'string' && /^[\w.-]+:\d+$/.test(s.address))) {
    throw new O3Error('INVALID_ARGUMENT', `Cannot replicate container ${containerId}: sources must list 1 to 16 datanodes with id and host:port address`)
  }
  return { containerId, sources: sources.map((s: DatanodeDetails) => ({ id: s.id, address: s.address })), ...(cmd.asIs === true ? { asIs: true } : {}) }
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
  /** Called when a copy failed from every source (the datanode tells the SCM in its next heartbeat). */
  failed: (id: ContainerId) => void
  /** A source sent a block that fails its own checksums: that datanode is asked to check it (its checkBlock RPC). */
  corruptSource: (source: DatanodeDetails, id: ContainerId, localId: LocalId) => void
}

export class ContainerReplication {
  /** The copies queued and running; stop() aborts the running downloads. */
  private readonly commands: ContainerCommandQueue<ReplicateCommand>
  private readonly copies: ContainerCopies
  private readonly self: ReplicationOptions['self']
  private readonly holds: ReplicationOptions['holds']
  private readonly imported: ReplicationOptions['imported']
  private readonly failedCopy: ReplicationOptions['failed']
  private readonly corruptSource: ReplicationOptions['corruptSource']
  private readonly succeeded: Counter
  private readonly bytes: Counter
  private readonly failed: Counter

  constructor(o: ReplicationOptions) {
    this.copies = o.copies
    this.self = o.self
    this.holds = o.holds
    this.imported = o.imported
    this.failedCopy = o.failed
    this.corruptSource = o.corruptSource
    this.succeeded = o.metrics.counter('container_imports_total', 'Container replicas imported from another datanode')
    this.bytes = o.metrics.counter('container_import_bytes_total', 'Block bytes of the container replicas imported')
    this.failed = o.metrics.counter('container_import_failures_total', 'replicateContainer commands that failed from every source')
    this.commands = new ContainerCommandQueue({ inflightMax: DATANODE_IMPORTS_INFLIGHT_MAX, queuedMax: DATANODE_IMPORTS_QUEUED_MAX, run: (cmd, signal) => this.copy(cmd, signal) })
    o.metrics.gauge('container_imports_inflight', 'Container copies being imported', () => this.commands.runningCount)
    o.metrics.gauge('container_imports_queued', 'Container copies waiting to be imported', () => this.commands.queuedCount)
  }

  /** Queues a copy; answers whether it was taken (not a duplicate, not held, room in the queue). */
  add(cmd: ReplicateCommand): boolean {
    if (this.holds(cmd.containerId)) return false
    const r = this.commands.add(cmd)
    if (r === 'full') log.warn(`${this.self().name}: replicate container ${cmd.containerId} dropped: ${DATANODE_IMPORTS_QUEUED_MAX} copies queued already`)
    return r === 'taken'
  }

  /** Resolves once no copy is queued or running (tests, and stop()). */
  idle(): Promise<void> {
    return this.commands.idle()
  }

  /** Drops the queue and cuts the running copies (each removes what it had written), then waits for them. */
  stop(): Promise<void> {
    return this.commands.stop()
  }

  private async copy(cmd: ReplicateCommand, signal: AbortSignal): Promise<void> {
    const { id: selfId, name } = this.self()
    const id = cmd.containerId
    const errors: string[] = []
    // As is: first only from a source that holds every byte; one that lacked some (zeros in
    // their place) is taken only if no source does better.
    const asIs = cmd.asIs === true
    const sources = cmd.sources.filter((s) => s.id !== selfId).map((s) => ({ source: s, refuseZeroFilled: asIs }))
    for (let i = 0; i < sources.length; i++) {
      const { source, refuseZeroFilled } = sources[i]
      if (this.holds(id) || signal.aborted) return
      try {
        const c = await this.copies.importFrom(source, id, signal, { asIs, refuseZeroFilled })
        this.succeeded.inc()
        this.bytes.inc(c.usedBytes)
        this.imported(id)
        return
      } catch (err) {
        if (err instanceof O3Error && err.code === 'CONTAINER_EXISTS') return
        if (refuseZeroFilled && err instanceof O3Error && err.code === 'CHUNK_NOT_FOUND') sources.push({ source, refuseZeroFilled: false })
        // The source thinks its replica healthy (a plain copy): until it knows, every copy from it fails.
        if (err instanceof CorruptSourceBlock) this.corruptSource(source, id, err.localId)
        errors.push(`${source.address}: ${(err as Error).message}`)
        log.warn(`${name}: copying container ${id} from ${source.address} failed: ${(err as Error).message}`)
      }
    }
    if (signal.aborted) return
    this.failed.inc()
    log.warn(`${name}: cannot replicate container ${id}: every source failed (${errors.join('; ')})`)
    this.failedCopy(id)
  }
}
