/** @module
 * Small helpers every suite shares: waiting for a condition with a deadline, and reading the
 * O3Error code a promise fails with.
 */
import type { O3Error } from '../core/errors.ts'

/**
 * Polls `check` until it gives something other than undefined or false, and returns that;
 * throws naming `what` after `timeoutMs`.
 */
export async function until<T>(what: string, check: () => T | undefined | false, timeoutMs = 15_000, pollMs = 10): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, pollMs))
  }
}

/** The code of the O3Error `p` rejects with, or 'OK' when it resolves. */
export async function errorCode(p: Promise<unknown>): Promise<string> {
  try { await p } catch (err) { return (err as O3Error).code }
  return 'OK'
}
