/** @module
 * A datanode's queue of long container commands (replicateContainer, reconstructECContainer):
 * one per container at a time, a bounded number running and queued, each given an abort
 * signal that stop() fires. Owns no I/O; the command's own work is `run`.
 */
import type { ContainerId } from '../../core/wire.ts'

export interface CommandQueueOptions<C> {
  inflightMax: number
  queuedMax: number
  run: (cmd: C, signal: AbortSignal) => Promise<void>
}

export class ContainerCommandQueue<C extends { containerId: ContainerId }> {
  private readonly queue: C[] = []
  private readonly running = new Set<ContainerId>()
  private readonly idleWaiters: (() => void)[] = []
  private readonly abort = new AbortController()

  constructor(private readonly o: CommandQueueOptions<C>) {}

  get runningCount(): number {
    return this.running.size
  }
  get queuedCount(): number {
    return this.queue.length
  }
  get signal(): AbortSignal {
    return this.abort.signal
  }

  /** Whether a command for container `id` is queued or running. */
  has(id: ContainerId): boolean {
    return this.running.has(id) || this.queue.some((q) => q.containerId === id)
  }

  /** Queues a command: 'taken', 'duplicate' (one for its container is queued or running) or 'full'. */
  add(cmd: C): 'taken' | 'duplicate' | 'full' {
    if (this.has(cmd.containerId)) return 'duplicate'
    if (this.queue.length >= this.o.queuedMax) return 'full'
    this.queue.push(cmd)
    this.pump()
    return 'taken'
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.running.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** Drops the queue and aborts the running commands, then waits for them. */
  async stop(): Promise<void> {
    this.queue.length = 0
    this.abort.abort()
    await this.idle()
  }

  private pump(): void {
    while (this.running.size < this.o.inflightMax && this.queue.length > 0) {
      const cmd = this.queue.shift()!
      this.running.add(cmd.containerId)
      void this.o.run(cmd, this.abort.signal).finally(() => {
        this.running.delete(cmd.containerId)
        this.pump()
        if (this.queue.length === 0 && this.running.size === 0) for (const wake of this.idleWaiters.splice(0)) wake()
      })
    }
  }
}
