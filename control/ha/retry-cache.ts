/** @module
 * The retry cache of a replicated service (Ratis's RetryCache, kept in the state database):
 * the answer to each (client id, call id) applied lately, so that a call retried after a
 * timeout or across a failover gets its first answer instead of applying twice. Bounded by
 * age and count; eviction follows the leader's clock as written in the log, so every
 * replica evicts alike.
 */
import type { Database, RootDatabase } from 'lmdb'
import { assert } from '../../core/assert.ts'
import { O3Error, type ErrorCodeName } from '../../core/errors.ts'
import { entryCount } from '../../core/metadata-db.ts'
import type { Applied } from '../../core/raft-io/state-db.ts'
import { RETRY_CACHE_ENTRIES_MAX, RETRY_CACHE_EXPIRY_MS } from './limits.ts'

/** Who made a call: a client's id (unique per client process) and its call number. */
export interface CallerId {
  readonly client: string
  readonly call: number
}

interface Answer {
  /** The answer as JSON ('null' for none). */
  readonly result: string
  /** A refusal: the call's answer is this error (its writes were rolled back). */
  readonly error?: { readonly code: ErrorCodeName; readonly message: string }
  readonly index: number
}

interface Slot {
  readonly key: string
  /** The leader's clock when it prepared the call (from the log). */
  readonly timeMs: number
}

/** Evictions per applied call: more than one, so that the cache shrinks after a burst. */
const EVICT_PER_APPLY = 4

export function checkCaller(v: unknown): CallerId | undefined {
  if (v === undefined || v === null) return undefined
  const c = v as Partial<CallerId>
  if (typeof c.client !== 'string' || c.client.length === 0 || c.client.length > 128 || !Number.isSafeInteger(c.call) || (c.call as number) < 0) return undefined
  return { client: c.client, call: c.call as number }
}

export class RetryCache {
  private answers!: Database<Answer, string>
  private slots!: Database<Slot, number>

  /** Opens the cache's tables in the (re)opened state database. */
  open(db: RootDatabase): void {
    this.answers = db.openDB<Answer, string>({ name: 'retryAnswers' })
    this.slots = db.openDB<Slot, number>({ name: 'retrySlots' })
  }

  private static key(c: CallerId): string {
    return `${c.client}\u0000${c.call}`
  }

  /** The answer already applied for `caller` (a result or a refusal), if the cache still holds it. */
  answer(caller: CallerId): { result: unknown } | { error: O3Error } | undefined {
    const a = this.answers.get(RetryCache.key(caller))
    if (a === undefined) return undefined
    return a.error === undefined ? { result: JSON.parse(a.result) as unknown } : { error: new O3Error(a.error.code, a.error.message) }
  }

  /** A recorded answer given again: the result, or the refusal thrown again. */
  private static replay(a: Answer): unknown {
    if (a.error !== undefined) throw new O3Error(a.error.code, a.error.message)
    return JSON.parse(a.result) as unknown
  }

  /**
   * Inside an entry's transaction: the first answer for `caller`, or `run()`'s, recorded
   * with the entry's index and the leader's time `timeMs`. A throwing run records nothing
   * here (the transaction rolls back); a refusal is recorded by `refused`.
   */
  applyOnce(caller: CallerId, at: Applied, timeMs: number, run: () => unknown): unknown {
    const key = RetryCache.key(caller)
    const seen = this.answers.get(key)
    if (seen !== undefined) return RetryCache.replay(seen)
    const result = run()
    this.record(key, { result: JSON.stringify(result ?? null), index: at.index }, timeMs)
    return result
  }

  /**
   * Inside the transaction that marks a refused entry applied: the refusal is the call's
   * answer, so that a copy of the call still in the log (proposed again by a retry across a
   * failover) refuses alike instead of applying after the client was told it failed (found
   * by the OM simulator, seed 235: a rename refused KEY_NOT_FOUND, then its retry moved a
   * key committed in between).
   */
  refused(caller: CallerId, at: Applied, timeMs: number, err: O3Error): void {
    const key = RetryCache.key(caller)
    if (this.answers.get(key) !== undefined) return
    this.record(key, { result: 'null', error: { code: err.code, message: err.message }, index: at.index }, timeMs)
  }

  private record(key: string, answer: Answer, timeMs: number): void {
    this.answers.putSync(key, answer)
    this.slots.putSync(answer.index, { key, timeMs })
    this.evict(timeMs, answer.index)
  }

  /**
   * Drops the oldest answers past the age or count bound, a few per call. Slots are keyed by
   * log index, one answer per index: keeping only those of the last RETRY_CACHE_ENTRIES_MAX
   * indexes bounds the count without asking LMDB for it (its page statistics cost more than
   * the rest of the eviction, once per applied call).
   */
  private evict(nowMs: number, index: number): void {
    let dropped = 0
    for (const { key, value } of this.slots.getRange({ limit: EVICT_PER_APPLY })) {
      if (index - key < RETRY_CACHE_ENTRIES_MAX && value.timeMs >= nowMs - RETRY_CACHE_EXPIRY_MS) break
      this.slots.removeSync(key)
      this.answers.removeSync(value.key)
      dropped++
    }
    assert(dropped <= EVICT_PER_APPLY, 'eviction is bounded per call')
  }

  /** Answers held (LMDB's page statistics: no scan). */
  count(): number {
    return entryCount(this.slots)
  }
}
