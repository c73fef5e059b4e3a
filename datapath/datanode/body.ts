/** @module
 * Reads a request body into a slab: the one copy of payload bytes on their way in. Uses the
 * Node request stream when @hono/node-server gives one, else the web stream (Deno).
 */
import type { Context } from 'hono'
import { O3Error } from '../../core/errors.ts'

/** Fills `into` with exactly `length` bytes of the body; a shorter or longer body is an error. */
export async function readBodyInto(c: Context, into: Uint8Array, length: number): Promise<void> {
  let filled = 0
  const take = (part: Uint8Array) => {
    if (filled + part.length > length) throw new O3Error('INVALID_ARGUMENT', `Cannot read body: more than the ${length} bytes announced`)
    into.set(part, filled)
    filled += part.length
  }
  const incoming = (c.env as { incoming?: AsyncIterable<Uint8Array> } | undefined)?.incoming
  if (incoming !== undefined) {
    for await (const part of incoming) take(part)
  } else if (c.req.raw.body !== null) {
    const reader = c.req.raw.body.getReader()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      take(value)
    }
  }
  if (filled !== length) throw new O3Error('INVALID_ARGUMENT', `Cannot read body: got ${filled} of ${length} bytes`)
}
