/** @module
 * Response bodies that stream out without a copy, and when a response's bytes have left:
 * the one place a route's answer meets the runtime's response objects (serve.ts runs the
 * server; this file shapes what the app hands it). Node's Readable.toWeb copies every piece it
 * passes on (it detaches each Buffer from Node's pool with `new Uint8Array(chunk)`); a
 * ReadableStream pulled from the source's iterator hands on the same buffers, which
 * @hono/node-server writes to the socket as they are and Deno.serve sends as they are.
 */
import type { Context } from 'hono'

/** A body of `source`'s pieces, pulled one at a time (back-pressure: the next piece is read
 *  when the runtime asks for it); a cancelled body (the client went away) returns the source,
 *  which ends its reads. `onError` sees a failure after the status line went out. */
export function streamBody(source: AsyncIterable<Uint8Array>, onError: (err: unknown) => void): ReadableStream<Uint8Array> {
  const it = source[Symbol.asyncIterator]()
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let next: IteratorResult<Uint8Array>
      try {
        next = await it.next()
      } catch (err) {
        onError(err)
        controller.error(err)
        return
      }
      if (next.done === true) controller.close()
      else controller.enqueue(next.value)
    },
    async cancel() {
      await it.return?.(undefined)
    },
  }, { highWaterMark: 0 })
}

interface NodeEnv { outgoing?: { once(event: 'close', f: () => void): unknown; writableFinished?: boolean; closed?: boolean } }

/**
 * Resolves once the response to `c` has been handed to the OS or abandoned (Node: the
 * ServerResponse's 'close'), so that the buffers its body points at may be reused; undefined
 * where the runtime does not tell (Deno, or an app called without a server): such buffers
 * must not be reused.
 */
export function whenResponseDone(c: Context): Promise<void> | undefined {
  const outgoing = (c.env as NodeEnv | undefined)?.outgoing
  if (outgoing === undefined || typeof outgoing.once !== 'function') return undefined
  if (outgoing.closed === true) return Promise.resolve()
  return new Promise((resolve) => { outgoing.once('close', () => resolve()) })
}
