/** @module
 * Reads a request body into a slab: the one copy of payload bytes on their way in. The body's
 * pieces come from core/http/body.ts (the runtime's own buffers). A body that sends nothing
 * for the idle timeout is cut, so a stalled sender cannot keep the slab.
 */
import { O3Error } from '../../core/errors.ts'
import { piecesUntilIdle, type RequestBody } from '../../core/http/body.ts'
import { copyBytes } from '../../core/copy-bytes.ts'

/**
 * Fills `into` with exactly `length` bytes of the body; a shorter or longer body is an error,
 * and so is one that sends nothing for `idleTimeoutMs` (TIMEOUT). `filled(from, to)` is told
 * of every range of `into` as it lands, so that the bytes can go on (to followers, and to
 * the block file) while the rest arrives.
 */
export async function readBodyInto(body: RequestBody | null, into: Uint8Array, length: number, idleTimeoutMs: number, filledRange?: (from: number, to: number) => void): Promise<void> {
  let filled = 0
  const take = (part: Uint8Array) => {
    if (filled + part.length > length) throw new O3Error('INVALID_ARGUMENT', `Cannot read body: more than the ${length} bytes announced`)
    copyBytes(into, filled, part)
    filled += part.length
    filledRange?.(filled - part.length, filled)
  }
  const timedOut = () => new O3Error('TIMEOUT', `Cannot read body: nothing arrived for ${idleTimeoutMs} ms (${filled} of ${length} bytes)`)
  for await (const part of piecesUntilIdle(body, idleTimeoutMs, timedOut)) take(part)
  if (filled !== length) throw new O3Error('INVALID_ARGUMENT', `Cannot read body: got ${filled} of ${length} bytes`)
}

/**
 * Views of a slab handed on as they are filled: an async iterable a forward request reads as
 * its body. Holds views only (the slab outlives the request), so it needs no back-pressure.
 * fail() makes the reader throw, which aborts the request mid-body: the follower then sees a
 * short body and commits nothing.
 */
export class PieceFeed implements AsyncIterable<Uint8Array> {
  private readonly queue: Uint8Array[] = []
  private done = false
  private failed: Error | undefined
  private wake: (() => void) | undefined

  push(view: Uint8Array): void { this.queue.push(view); this.notify() }
  end(): void { this.done = true; this.notify() }
  fail(err: Error): void { this.failed ??= err; this.notify() }

  private notify(): void { const w = this.wake; this.wake = undefined; w?.() }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    for (;;) {
      if (this.failed !== undefined) throw this.failed
      const view = this.queue.shift()
      if (view !== undefined) { yield view; continue }
      if (this.done) return
      await new Promise<void>((resolve) => { this.wake = resolve })
    }
  }
}
