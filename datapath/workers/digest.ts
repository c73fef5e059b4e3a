/** @module
 * The worker side of digest sessions (digest-lanes.ts): a body's hashers (hashers.ts) live in
 * the one thread of its lane from its first piece to its end, so they keep their state in
 * place: OpenSSL's MD5 and SHAs need no state saved and moved between threads. Runs only in
 * a lane's worker.
 */
import { DIGEST_SESSIONS_PER_LANE_MAX } from '../../core/limits.ts'
import { Hashers, type DigestName } from './hashers.ts'
import { movedBack } from './moved-back.ts'
import type { SlabRange, TaskResult } from './tasks.ts'

export interface DigestTask {
  /** The session, numbered by the process that opened it. */
  session: number
  /** The digests to compute: with a session's first task, which opens it here. */
  open?: DigestName[]
  /** The next piece: a transferred ArrayBuffer (moved back once hashed: under Deno a buffer
   *  left to a worker's heap was not freed, bench/README.md "Memory at rest"), or a range of a
   *  shared slab, read in place. */
  data?: ArrayBuffer | SlabRange
  /** After the piece: 'finish' returns the digests, 'drop' forgets them; both end the session. */
  end?: 'finish' | 'drop'
}

export type DigestResult = TaskResult<{ digests?: Partial<Record<DigestName, Uint8Array>> }>

const sessions = new Map<number, Hashers>()

export async function digest(task: DigestTask): Promise<DigestResult> {
  const result = await digestOf(task)
  return task.data instanceof ArrayBuffer ? movedBack(result, task.data) : result
}

async function digestOf(task: DigestTask): Promise<DigestResult> {
  if (task.open !== undefined) {
    if (sessions.size >= DIGEST_SESSIONS_PER_LANE_MAX) return { ok: false, code: 'UNAVAILABLE', message: `Cannot open a digest: ${sessions.size} bodies are being hashed on this thread already` }
    sessions.set(task.session, await Hashers.create(task.open))
  }
  const hashers = sessions.get(task.session)
  if (hashers === undefined) {
    // A drop may come for a session whose thread was replaced: nothing to forget.
    if (task.end === 'drop') return { ok: true }
    return { ok: false, code: 'INTERNAL_ERROR', message: `Cannot hash: digest session ${task.session} is not open on this thread (its thread restarted?)` }
  }
  if (task.end === 'drop') {
    sessions.delete(task.session)
    return { ok: true }
  }
  if (task.data !== undefined) {
    const d = task.data
    hashers.update(d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d.slab, d.offset, d.length))
  }
  if (task.end !== 'finish') return { ok: true }
  sessions.delete(task.session)
  // Copied out of Buffers that may view a shared pool, which a structured clone would copy whole.
  const digests: Partial<Record<DigestName, Uint8Array>> = {}
  for (const [name, b] of Object.entries(hashers.digest())) digests[name as DigestName] = new Uint8Array(b)
  return { ok: true, digests }
}
