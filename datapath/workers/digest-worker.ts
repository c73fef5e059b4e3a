/** @module
 * The Piscina worker entry of a digest lane (digest-lanes.ts): the digest task alone, so that
 * a lane's thread loads only its hashers, not the pool's checksum and erasure-codec modules.
 * Its task notes activity, so that an idle lane runs one GC of its own heap (idle.ts), as the
 * pool's workers do (worker.ts).
 */
import { digest as digestTask } from './digest.ts'
import { workerTask } from './idle.ts'

export const digest = workerTask(digestTask)
