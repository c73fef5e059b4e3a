/** @module
 * A failed LMDB commit (a full or broken disk) must not end a service. lmdb-js rejects
 * promises of its own that no caller holds when a commit fails (its commit-error promise, the
 * other writes of the failed batch), and Node ends a process on any unhandled rejection: a
 * datanode with a full volume died and stopped serving the reads it still could. Those are
 * logged and the process goes on; the writes that failed have failed their callers too (a
 * Raft node stops and its pipeline member reports itself, so the SCM closes the pipeline).
 * Any other unhandled rejection is a bug and still ends the process, as Node's default does.
 */
import { log } from './log.ts'

/**
 * Whether `err` is lmdb-js's own (a commit that failed): made in its write path, by the top
 * frame of its stack. An error of ours thrown inside a transaction callback has our frame on top.
 */
export function isLmdbCommitFailure(err: unknown): boolean {
  const stack = (err as { stack?: unknown } | null)?.stack
  if (typeof stack !== 'string') return false
  const top = stack.split('\n').find((line) => line.trimStart().startsWith('at '))
  return top !== undefined && /[\\/]lmdb[\\/]write\.js:/.test(top)
}

let installed = false

/** Installs the process's unhandled-rejection policy above (once; a service process calls it at start). */
export function surviveLmdbCommitFailures(): void {
  if (installed) return
  installed = true
  process.on('unhandledRejection', (err: unknown) => {
    if (isLmdbCommitFailure(err)) {
      log.error(`an LMDB commit failed (is a disk full or failing?); the writes in it failed, the service goes on: ${(err as Error).message}`)
      return
    }
    console.error(err)
    process.exit(1)
  })
}
