/** @module
 * The Piscina worker entry of a digest lane (digest-lanes.ts): the digest task alone, so that
 * a lane's thread loads only its hashers, not the pool's checksum and erasure-codec modules.
 * Its task notes activity, so that an idle lane runs one GC of its own heap (idle.ts), as the
 * pool's workers do (worker.ts).
 */
import { WORKER_IDLE_GC_MS } from '../../core/limits.ts'
import { digest as digestTask, type DigestResult, type DigestTask } from './digest.ts'
import { noteActivity } from './idle.ts'

export function digest(task: DigestTask): Promise<DigestResult> {
  noteActivity(WORKER_IDLE_GC_MS)
  return digestTask(task)
}
