/** @module
 * The request-body adapter: hands a route the raw body pieces of its request as the runtime
 * receives them, on Node the IncomingMessage's own Buffers (not the copies Readable.toWeb
 * queues), on Deno (or for a bare web Request) the web stream's reader. Routes read bodies
 * through this and never reach into a runtime's objects themselves.
 *
 * Stopping early (return(), or abandoning the iterator) leaves the unread rest in place:
 * serve.ts drains it once the answer is out, so the client reads the answer rather than a
 * reset. cancel() is the other choice: it cuts the body (and on Node its connection).
 */
import type { IncomingMessage } from 'node:http'
import type { Context } from 'hono'
import { O3Error } from '../errors.ts'
import { HTTP_SMALL_BODY_IDLE_MS_MAX } from '../limits.ts'
import { requestHeader } from './connection.ts'

export interface RequestBody extends AsyncIterable<Uint8Array> {
  /** One iterator per body; a second call throws. */
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array>
  /** Cuts the body: a pending read fails, and on Node the connection is closed. */
  cancel(): void
}

/** The request's body, or null when it has none (GET, HEAD, no body sent). */
export function requestBody(c: Context): RequestBody | null {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming
  if (incoming !== undefined && typeof incoming.on === 'function') {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return null
    return nodeBody(incoming)
  }
  return webBody(c.req.raw.body)
}

/**
 * A small JSON body (an RPC's arguments, a Raft batch, a chunk read) read whole, at most
 * `maxBytes`: a declared or counted length past it is ENTITY_TOO_LARGE (the rest is left for
 * serve.ts to drain), anything but a JSON object INVALID_ARGUMENT, an empty body {}. Through
 * requestBody, so that no web Request or stream is built for it.
 */
export async function smallBodyJson(c: Context, maxBytes: number, what: string): Promise<Record<string, unknown>> {
  return parseJsonObject(await smallBodyText(c, maxBytes, what), what)
}

/**
 * `body`'s pieces; when none comes for `idleMs` the body is cut (its connection with it) and
 * `timedOut()` thrown. One timer for the whole body, pushed back by every piece.
 */
export async function* piecesUntilIdle(body: RequestBody | null, idleMs: number, timedOut: () => Error): AsyncGenerator<Uint8Array> {
  if (body === null) return
  let idle = false
  const timer = setTimeout(() => { idle = true; body.cancel() }, idleMs)
  try {
    for await (const piece of body) {
      timer.refresh()
      yield piece
    }
  } catch (err) {
    if (idle) throw timedOut()
    throw err
  } finally {
    clearTimeout(timer)
  }
  if (idle) throw timedOut()
}

/** A small body's pieces, cut as TIMEOUT when it stops coming: any live client sends one at once. */
function smallBodyPieces(c: Context, idleMs: number, what: string): AsyncGenerator<Uint8Array> {
  return piecesUntilIdle(requestBody(c), idleMs, () => new O3Error('TIMEOUT', `${what}: the body sent nothing for ${idleMs} ms`))
}

/** A small body read whole as text, at most `maxBytes` (ENTITY_TOO_LARGE past it). */
export async function smallBodyText(c: Context, maxBytes: number, what: string, idleMs = HTTP_SMALL_BODY_IDLE_MS_MAX): Promise<string> {
  const tooLarge = () => new O3Error('ENTITY_TOO_LARGE', `${what}: body exceeds ${maxBytes} bytes`)
  const declared = requestHeader(c, 'content-length')
  if (declared !== undefined && Number(declared) > maxBytes) throw tooLarge()
  const decoder = new TextDecoder()
  let text = ''
  let length = 0
  for await (const piece of smallBodyPieces(c, idleMs, what)) {
    length += piece.length
    if (length > maxBytes) throw tooLarge()
    text += decoder.decode(piece, { stream: true })
  }
  return text + decoder.decode()
}

/** A small body read whole as bytes (one Buffer), at most `maxBytes` (ENTITY_TOO_LARGE past it). */
export async function smallBodyBytes(c: Context, maxBytes: number, what: string, idleMs = HTTP_SMALL_BODY_IDLE_MS_MAX): Promise<Buffer> {
  const tooLarge = () => new O3Error('ENTITY_TOO_LARGE', `${what}: body exceeds ${maxBytes} bytes`)
  const declared = requestHeader(c, 'content-length')
  if (declared !== undefined && Number(declared) > maxBytes) throw tooLarge()
  const pieces: Uint8Array[] = []
  let length = 0
  for await (const piece of smallBodyPieces(c, idleMs, what)) {
    length += piece.length
    if (length > maxBytes) throw tooLarge()
    pieces.push(piece)
  }
  return pieces.length === 1 ? Buffer.from(pieces[0].buffer, pieces[0].byteOffset, pieces[0].byteLength) : Buffer.concat(pieces, length)
}

/**
 * Nesting past which a JSON body is refused: no call nests more than a few levels, and what
 * describes a bad value (an error's message: JSON.stringify, String) recurses through it, so
 * 5,000 levels answered 500 "Maximum call stack size exceeded".
 */
const JSON_DEPTH_MAX = 64

/** Whether `value` nests objects or arrays more than `max` deep (walked without recursion). */
function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]]
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!
    if (depth > max) return true
    for (const child of Array.isArray(v) ? v : Object.values(v as object)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1])
  }
  return false
}

/** A JSON object from text: '' is {}, anything but an object (or one nested past JSON_DEPTH_MAX) INVALID_ARGUMENT. */
export function parseJsonObject(text: string, what: string): Record<string, unknown> {
  if (text.length === 0) return {}
  let value: unknown
  try { value = JSON.parse(text) } catch { throw new O3Error('INVALID_ARGUMENT', `${what}: body is not JSON`) }
  if (typeof value !== 'object' || value === null) throw new O3Error('INVALID_ARGUMENT', `${what}: body is not a JSON object`)
  if (nestedDeeperThan(value, JSON_DEPTH_MAX)) throw new O3Error('INVALID_ARGUMENT', `${what}: body nests deeper than ${JSON_DEPTH_MAX} levels`)
  return value as Record<string, unknown>
}

/** A web stream's pieces as a RequestBody (Deno, or a Request built in process). */
export function webBody(stream: ReadableStream<Uint8Array> | null): RequestBody | null {
  if (stream === null) return null
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined
  let pending = 0
  return {
    [Symbol.asyncIterator]() {
      if (reader !== undefined) throw new Error('request body already read')
      const r = reader = stream.getReader()
      return {
        next: async () => {
          pending++
          try {
            const { done, value } = await r.read()
            return done ? { done: true, value: undefined } : { done: false, value }
          } catch (err) {
            throw incomplete(err)
          } finally { pending-- }
        },
        return: async () => {
          // A read still pending keeps the stream locked; the runtime drains it.
          if (pending === 0) r.releaseLock()
          return { done: true, value: undefined }
        },
      }
    },
    cancel() {
      if (reader !== undefined) void reader.cancel().catch(() => {})
      else void stream.cancel().catch(() => {})
    },
  }
}

/** A body cut before its end (a client that hung up: Node's 'aborted', a closed stream) as the typed error routes answer and count. */
function incomplete(err: unknown): O3Error {
  if (err instanceof O3Error) return err
  return new O3Error('INCOMPLETE_BODY', `The request body ended early: ${(err as Error).message ?? String(err)}`, { cause: err })
}

/**
 * The IncomingMessage's pieces, read by 'data' events with pause/resume for back-pressure
 * (at most one piece waits here). Not the stream's own async iterator: that one destroys the
 * request when left early, and its 'readable' listener would stop serve.ts's drain from
 * flowing; a 'data' listener is what the drain removes and replaces.
 */
function nodeBody(req: IncomingMessage): RequestBody {
  let started = false
  return {
    [Symbol.asyncIterator]() {
      if (started) throw new Error('request body already read')
      started = true
      const queue: Uint8Array[] = []
      let ended = req.readableEnded
      let failed: Error | undefined
      // Cut (the client hung up, or the parser failed on what followed) before the route
      // got here: its events are gone, and so is what it had buffered.
      if (req.destroyed && !ended) failed = req.errored ?? new Error('the connection closed before the body was read')
      let wake: (() => void) | undefined
      const notify = () => { const w = wake; wake = undefined; w?.() }
      const onData = (piece: Buffer) => {
        queue.push(piece)
        req.pause()
        notify()
      }
      const onEnd = () => { ended = true; notify() }
      const onError = (err: Error) => { failed ??= err; notify() }
      const onClose = () => {
        if (!req.complete) failed ??= new Error('the connection closed before the body ended')
        ended = true
        notify()
      }
      const detach = () => {
        req.off('data', onData); req.off('end', onEnd); req.off('error', onError); req.off('close', onClose)
      }
      req.on('data', onData)
      req.on('end', onEnd)
      req.on('error', onError)
      req.on('close', onClose)
      req.pause()
      return {
        next: async () => {
          for (;;) {
            const piece = queue.shift()
            if (piece !== undefined) return { done: false, value: piece }
            if (failed !== undefined) { detach(); throw incomplete(failed) }
            if (ended) { detach(); return { done: true, value: undefined } }
            await new Promise<void>((resolve) => { wake = resolve; req.resume() })
          }
        },
        return: async () => {
          // Left early: the rest stays unread (paused) for serve.ts's drain.
          detach()
          req.pause()
          return { done: true, value: undefined }
        },
      }
    },
    cancel() { req.destroy() },
  }
}
