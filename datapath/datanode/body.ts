/** @module
 * Reads a request body into a slab: the one copy of payload bytes on their way in. Uses the
 * Node request stream when @hono/node-server gives one, else the web stream (Deno). A body
 * that sends nothing for the idle timeout is cut, so a stalled sender cannot keep the slab.
 */
import type { Context } from 'hono'
import { O3Error } from '../../core/errors.ts'

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
  const incoming = (c.env as { incoming?: AsyncIterable<Uint8Array> & { destroy(err?: Error): void } } | undefined)?.incoming
  const reader = incoming === undefined ? c.req.raw.body?.getReader() : undefined
  let idle = false
  // One timer for the whole body, pushed back by every piece: cheaper than one per read.
  const timer = setTimeout(() => {
    idle = true
    if (incoming !== undefined) incoming.destroy()
    else void reader?.cancel().catch(() => {})
  }, idleTimeoutMs)
  try {
    if (incoming !== undefined) {
      for await (const part of incoming) { timer.refresh(); take(part) }
    } else if (reader !== undefined) {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        timer.refresh()
        take(value)
      }
    }
  } catch (err) {
    if (idle) throw new O3Error('TIMEOUT', `Cannot read body: nothing arrived for ${idleTimeoutMs} ms (${filled} of ${length} bytes)`)
    throw err
  } finally {
    clearTimeout(timer)
  }
  if (idle) throw new O3Error('TIMEOUT', `Cannot read body: nothing arrived for ${idleTimeoutMs} ms (${filled} of ${length} bytes)`)
  if (filled !== length) throw new O3Error('INVALID_ARGUMENT', `Cannot read body: got ${filled} of ${length} bytes`)
}
