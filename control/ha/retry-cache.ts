/** @module
 * The retry cache of a replicated service (Ratis's RetryCache, kept in the state database):
 * the answer to each (client id, call id) applied lately, so that a call retried after a
 * timeout or across a failover gets its first answer instead of applying twice. Bounded by
 * age and count; eviction follows the leader's clock as written in the log, so every
 * replica evicts alike.
 */
import type { Database, RootDatabase } from 'lmdb'
import { assert } from '../../core/assert.ts'
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

  /** The answer already applied for `caller`, if the cache still holds it. */
  answer(caller: CallerId): { result: unknown } | undefined {
    const a = this.answers.get(RetryCache.key(caller))
    return a === undefined ? undefined : { result: JSON.parse(a.result) as unknown }
  }

  /**
   * Inside an entry's transaction: the first answer for `caller`, or `run()`'s, recorded
   * with the entry's index and the leader's time `timeMs`. A throwing run records nothing
   * (the transaction rolls back), so a retry runs again.
   */
  applyOnce(caller: CallerId, at: Applied, timeMs: number, run: () => unknown): unknown {
    const key = RetryCache.key(caller)
    const seen = this.answers.get(key)
    if (seen !== undefined) return JSON.parse(seen.result) as unknown
    const result = run()
    this.answers.putSync(key, { result: JSON.stringify(result ?? null), index: at.index })
    this.slots.putSync(at.index, { key, timeMs })
    this.evict(timeMs, at.index)
    return result
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
