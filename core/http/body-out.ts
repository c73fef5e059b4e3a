/** @module
 * Response bodies that stream out without a copy, and when a response's bytes have left:
 * the one place a route's answer meets the runtime's response objects (serve.ts runs the
 * server; this file shapes what the app hands it). Node's Readable.toWeb copies every piece it
 * passes on (it detaches each Buffer from Node's pool with `new Uint8Array(chunk)`); a
 * ReadableStream pulled from the source's iterator hands on the same buffers, which
 * @hono/node-server writes to the socket as they are and Deno.serve sends as they are.
 */
import type { Context } from 'hono'
import { O3Error } from '../errors.ts'

/** What the runtime tells of a response in progress: how many bytes still wait to be handed to
 *  the OS, and when the response is over (sent or abandoned). */
export interface ResponseWatch {
  pendingBytes(): number
  done: Promise<void>
  /** Ends the response at once, its connection with it (the client is not reading). */
  cut(): void
}

interface NodeOutgoing {
  once(event: 'close', f: () => void): unknown
  readonly closed?: boolean
  readonly writableLength: number
  destroy(): void
}

/**
 * The watch of `c`'s response: on Node, its ServerResponse ('close' comes once the last byte
 * was handed to the OS or the client went away; writableLength counts the bytes its socket
 * still holds). Undefined where the runtime does not tell (Deno, or an app called without a
 * server): buffers such a response points at must never be reused.
 */
export function watchResponse(c: Context): ResponseWatch | undefined {
  const outgoing = (c.env as { outgoing?: NodeOutgoing } | undefined)?.outgoing
  if (outgoing === undefined || typeof outgoing.once !== 'function' || typeof outgoing.closed !== 'boolean') return undefined
  const done = outgoing.closed ? Promise.resolve() : new Promise<void>((resolve) => { outgoing.once('close', () => resolve()) })
  return { pendingBytes: () => outgoing.writableLength, done, cut: () => outgoing.destroy() }
}

export interface StreamBodyOptions {
  /** A failure of the source after the status line went out. */
  onError(err: unknown): void
  /** With `watch`: called for each piece once its bytes have been handed to the OS (or the
   *  response is over), so that its buffer can be reused. Never called without `watch`. */
  release?: (piece: Uint8Array) => void
  watch?: ResponseWatch
  /** With `watch`: a client that takes no slice (SEND_SLICE_BYTES) of the body this long
   *  (bytes wait to be sent and the runtime asks for no more) is cut, onError told why; what
   *  it held then goes back. */
  sendIdleMs?: number
}

/** Bytes handed to the runtime per pull: a piece (up to a chunk, 4 MiB) goes out in slices,
 *  so that a slow client's progress shows as pulls (a write of a whole piece tells nothing
 *  until it is done: a client taking 20 KB/s would look idle for over three minutes). */
export const SEND_SLICE_BYTES = 1024 * 1024

/**
 * A body of `source`'s pieces, pulled one at a time (back-pressure: the next piece is read
 * when the runtime asks for it); a cancelled body (the client went away) returns the source,
 * which ends its reads. Pieces handed on are released when the runtime has no byte of the
 * response left to send (checked at each pull, which on Node follows the socket's 'drain'),
 * and all of them when the response is over. A piece goes out in slices, one per pull; with
 * `sendIdleMs`, a client that takes no slice that long is cut.
 */
export function streamBody(source: AsyncIterable<Uint8Array>, options: StreamBodyOptions): ReadableStream<Uint8Array> {
  const it = source[Symbol.asyncIterator]()
  const { watch } = options
  const release = watch === undefined ? undefined : options.release
  /** Pieces whose every byte went to the runtime, held until it has sent them. */
  const sent: Uint8Array[] = []
  /** The piece being handed on, a slice per pull, and how far. */
  let current: Uint8Array | undefined
  let at = 0
  let over = false
  const releaseSent = () => { if (release !== undefined) for (const p of sent.splice(0)) release(p) }
  const releaseAll = () => {
    if (current !== undefined) sent.push(current)
    current = undefined
    releaseSent()
  }
  // When the runtime last asked for bytes (now, while a piece is being read): a client taking
  // bytes makes it ask at least once per slice.
  let reading = false
  let askedMs = Date.now()
  const idle = watch === undefined || options.sendIdleMs === undefined ? undefined : watchSending(watch, options.sendIdleMs, () => reading ? Date.now() : askedMs, options.onError)
  // A response abandoned before its body was read is never cancelled by the runtime: ending
  // the source here is what gives back the pieces it read ahead.
  void watch?.done.then(() => {
    over = true
    if (idle !== undefined) clearInterval(idle)
    releaseAll()
    it.return?.(undefined).catch(() => {})
  })
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      askedMs = Date.now()
      if (watch !== undefined && watch.pendingBytes() === 0) releaseSent()
      if (current === undefined) {
        let next: IteratorResult<Uint8Array>
        reading = true
        try {
          next = await it.next()
        } catch (err) {
          options.onError(err)
          controller.error(err)
          return
        } finally {
          reading = false
          askedMs = Date.now()
        }
        if (next.done === true) { controller.close(); return }
        if (over) { release?.(next.value); return }
        current = next.value
        at = 0
      }
      const slice = current.subarray(at, at + SEND_SLICE_BYTES)
      at += slice.length
      if (at >= current.length) {
        sent.push(current)
        current = undefined
      }
      controller.enqueue(slice)
    },
    async cancel() {
      over = true
      if (idle !== undefined) clearInterval(idle)
      await it.return?.(undefined)
      releaseAll()
    },
  }, { highWaterMark: 0 })
}

/**
 * Cuts a response handed over whole (c.body) once its bytes stop leaving: some wait to be
 * sent and none has left for `idleMs` (a client that stopped reading holds the buffer the
 * body points at, a pooled one too, for as long as its connection stays). Checked a few times
 * per `idleMs`; over with the response.
 */
export function cutWhenStalled(watch: ResponseWatch, idleMs: number): void {
  let pending = watch.pendingBytes()
  let movedMs = Date.now()
  const timer = setInterval(() => {
    const now = watch.pendingBytes()
    if (now === 0 || now < pending) movedMs = Date.now()
    pending = now
    if (Date.now() - movedMs < idleMs) return
    clearInterval(timer)
    watch.cut()
  }, Math.max(50, Math.floor(idleMs / 4)))
  timer.unref()
  void watch.done.then(() => clearInterval(timer))
}

/**
 * Cuts the response once bytes wait to go out and the runtime has asked for none since
 * `lastAskMs()`, `idleMs` ago (its socket took no slice); checked a few times per `idleMs`.
 */
function watchSending(watch: ResponseWatch, idleMs: number, lastAskMs: () => number, onError: (err: unknown) => void): NodeJS.Timeout {
  const timer = setInterval(() => {
    if (watch.pendingBytes() === 0 || Date.now() - lastAskMs() < idleMs) return
    clearInterval(timer)
    onError(new O3Error('TIMEOUT', `the client took no slice of the body (${SEND_SLICE_BYTES} bytes) in ${idleMs} ms: connection cut`))
    watch.cut()
  }, Math.max(50, Math.floor(idleMs / 4)))
  timer.unref()
  return timer
}
