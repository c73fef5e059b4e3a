/** @module
 * Small helpers every suite shares: waiting for a condition with a deadline, the O3Error (or
 * its code) a promise fails with, deterministic test bytes, a byte flipped on disk as a
 * disk fault would, a free port (cli/free-port.ts). Loads no service code.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs'
import { O3Error } from '../core/errors.ts'

export { freePort } from '../cli/free-port.ts'

/**
 * Polls `check` until it gives something other than undefined or false, and returns that;
 * throws naming `what` after `timeoutMs`.
 */
export async function until<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000, pollMs = 10): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, pollMs))
  }
}

/** The O3Error `p` rejects with; fails the test when it resolves or rejects with anything else. */
export async function refusalOf(p: Promise<unknown>): Promise<O3Error> {
  try {
    await p
  } catch (err) {
    if (err instanceof O3Error) return err
    throw new Error(`rejected with ${String(err)}, not an O3Error`)
  }
  throw new Error('resolved, not refused')
}

/** The code of the O3Error `p` rejects with, or 'OK' when it resolves. */
export async function errorCode(p: Promise<unknown>): Promise<string> {
  try { await p } catch (err) { return (err as O3Error).code }
  return 'OK'
}

export function randomBytes(n: number, seed = n): Buffer {
  // A cheap deterministic generator: the same seed gives the same bytes in every run.
  const out = Buffer.allocUnsafe(n)
  let x = (seed * 2654435761) >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
    out[i] = x & 0xff
  }
  return out
}

/** Flips every bit of the byte at `at` of a file, as a disk fault would; the file must hold it. */
export function flipByte(path: string, at: number): void {
  const fd = openSync(path, 'r+')
  try {
    const b = Buffer.alloc(1)
    if (readSync(fd, b, 0, 1, at) !== 1) throw new Error(`${path} holds no byte ${at}`)
    b[0] ^= 0xff
    writeSync(fd, b, 0, 1, at)
  } finally { closeSync(fd) }
}

/** An OM's gauge of open keys (o3_om_open_keys on its /prom): keys being written, or left open by a writer that never ended. */
export async function openKeyCount(omAddress: string): Promise<number> {
  const text = await (await fetch(`http://${omAddress}/prom`)).text()
  return Number(/^o3_om_open_keys(?:\{[^}]*\})? (\d+)$/m.exec(text)?.[1] ?? NaN)
}
