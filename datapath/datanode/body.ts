/** @module
 * Reads a request body into a slab: the one copy of payload bytes on their way in. The body's
 * pieces come from core/http/body.ts (the runtime's own buffers). A body that sends nothing
 * for the idle timeout is cut, so a stalled sender cannot keep the slab.
 */
import type { Context } from 'hono'
import { O3Error } from '../../core/errors.ts'
import { requestBody } from '../../core/http/body.ts'

/**
 * Fills `into` with exactly `length` bytes of the body; a shorter or longer body is an error,
 * and so is one that sends nothing for `idleTimeoutMs` (TIMEOUT).
 */
export async function readBodyInto(c: Context, into: Uint8Array, length: number, idleTimeoutMs: number): Promise<void> {
  let filled = 0
  const take = (part: Uint8Array) => {
    if (filled + part.length > length) throw new O3Error('INVALID_ARGUMENT', `Cannot read body: more than the ${length} bytes announced`)
    into.set(part, filled)
    filled += part.length
  }
  const body = requestBody(c)
  let idle = false
  // One timer for the whole body, pushed back by every piece: cheaper than one per read.
  const timer = setTimeout(() => { idle = true; body?.cancel() }, idleTimeoutMs)
  try {
    if (body !== null) for await (const part of body) { timer.refresh(); take(part) }
  } catch (err) {
    if (idle) throw new O3Error('TIMEOUT', `Cannot read body: nothing arrived for ${idleTimeoutMs} ms (${filled} of ${length} bytes)`)
    throw err
  } finally {
    clearTimeout(timer)
  }
  if (idle) throw new O3Error('TIMEOUT', `Cannot read body: nothing arrived for ${idleTimeoutMs} ms (${filled} of ${length} bytes)`)
  if (filled !== length) throw new O3Error('INVALID_ARGUMENT', `Cannot read body: got ${filled} of ${length} bytes`)
}
