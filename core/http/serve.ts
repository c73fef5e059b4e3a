/** @module
 * Starts a Hono app on a port, on Node (@hono/node-server) or Deno (Deno.serve): the one
 * runtime adapter every service uses. Port 0 picks a free port; the bound one is returned.
 * On Node it also owns what happens to a request body the app answered without reading whole:
 * it is drained (bounded), so that the client reads the answer rather than a reset.
 */
import type { IncomingMessage } from 'node:http'
import type { Hono } from 'hono'
import { O3Error } from '../errors.ts'
import type { DenoRequestEnv, DenoServeInfo } from './connection.ts'
import { HTTP_BODY_DRAIN_BYTES_MAX, HTTP_BODY_DRAIN_MS_MAX, HTTP_LINGER_IDLE_MS_MAX, HTTP_LINGER_MS_MAX, HTTP_PIPELINED_REQUESTS_MAX } from '../limits.ts'

export interface Listener {
  port: number
  close(): Promise<void>
}

interface DenoServe {
  serve(options: { port: number; hostname: string; cert?: string; key?: string; onListen?: (a: { port: number }) => void }, handler: (r: Request, info: DenoServeInfo) => Response | Promise<Response>): { finished: Promise<void>; shutdown(): Promise<void>; addr: { port: number } }
}

/** How long close() takes at most: requests in flight finish within it or are cut. */
const CLOSE_TIMEOUT_MS = 10_000
/** Of that, how long a connection whose answer is out may take to deliver its last bytes (Node). */
const CLOSE_LINGER_MS = 2_000
/** How long a connection refused at its head (a parse error, a headers timeout) stays for its answer to be read. */
const CLIENT_ERROR_LINGER_MS = 2_000
const HEADERS_TIMEOUT_MS_DEFAULT = 60_000

/** An answer the server gives itself, before or instead of the app: to a request Node's HTTP parser rejects, or one that comes while the server stops. */
export interface ServerReply {
  status: number
  contentType: string
  body: string
  /** More response headers (latin1 names and values: an S3 request id). */
  headers?: Record<string, string>
}

/** A ServerReply as the bytes of an HTTP/1.1 response that closes its connection. */
function rawReply(reply: ServerReply): string {
  const extra = Object.entries(reply.headers ?? {}).map(([name, value]) => `${name}: ${value}\r\n`).join('')
  return `HTTP/1.1 ${reply.status} Bad Request\r\ncontent-type: ${reply.contentType}\r\ncontent-length: ${Buffer.byteLength(reply.body)}\r\n${extra}connection: close\r\n\r\n${reply.body}`
}

/**
 * The answer to a request @hono/node-server could not make a web Request of (its RequestError:
 * a malformed Host header, a backslash in the path): the service's own answer to a malformed
 * request (`parseError`, with HPE_INVALID_HOST or HPE_INVALID_URL), not its bare 400. Any
 * other error it hands here is answered as it would by default (504 for a timeout, else 500).
 */
function requestErrorResponse(err: unknown, parseError: ((code: string) => ServerReply) | undefined): Response {
  const name = err instanceof Error ? err.name : ''
  if (name !== 'RequestError') return new Response(null, { status: name === 'TimeoutError' ? 504 : 500 })
  if (parseError === undefined) return new Response(null, { status: 400 })
  const message = (err as Error).message
  const reply = parseError(message === 'Invalid URL' || /host header/i.test(message) ? 'HPE_INVALID_HOST' : 'HPE_INVALID_URL')
  return new Response(reply.body, { status: reply.status, headers: { 'content-type': reply.contentType, ...reply.headers } })
}

export interface ServeOptions {
  host: string
  port: number
  name: string
  /**
   * Answers requests the HTTP parser rejects (headers over maxHeaderBytes, malformed
   * framing), which would otherwise get Node's bare 431/400; the connection is closed after.
   */
  parseError?: (code: string) => ServerReply
  maxHeaderBytes?: number
  /**
   * How long a connection may take to send a request's head (Node's headersTimeout, checked
   * every quarter of it at most): past it, parseError answers ERR_HTTP_REQUEST_TIMEOUT and the
   * connection closes. Default 60 s. Deno's server keeps its own.
   */
  headersTimeoutMs?: number
  /**
   * The answer to a request that arrives while the server stops (its status is 503); by
   * default an O3 wire error UNAVAILABLE, which O3's clients retry.
   */
  stopping?: () => ServerReply
  /**
   * Serve HTTPS with this certificate and key (PEM). With `ca`, clients may present a
   * certificate from that CA (mutual TLS); it is asked for, not required: a caller without
   * one (a user, an S3 client) is anonymous to the route (core/security/caller.ts), which
   * decides. `current` is read for every new connection, so a renewed certificate takes over
   * without a restart.
   */
  tls?: { current: () => { key: string; cert: string; ca?: string } }
}

type ServerResponse = import('node:http').ServerResponse

/** The response a Node HTTP connection is sending (queued ones for pipelined requests follow it). */
function responseOn(socket: object): ServerResponse | undefined {
  return (socket as { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined
}

/**
 * Ends `socket` once `response` and the responses queued behind it have been sent (or cut),
 * and destroys it once the last had time to be read: a reset at once, with the client still
 * sending, could drop the tail of what it has not read yet.
 */
function closeAfterAnswers(socket: import('node:stream').Duplex, response: ServerResponse): void {
  refusedSockets.add(socket)
  response.once('close', () => {
    // Node hands the socket to the next queued response before this one's 'close'. One whose
    // request is not whole is the broken one: its body will never come (answerInTurn skips it).
    const next = responseOn(socket)
    if (next !== undefined && next !== response && !socket.destroyed && next.req.complete && !unanswered.has(next)) return closeAfterAnswers(socket, next)
    endThenDestroy(socket)
  })
}

/** Connections that close once the requests they have been answering are answered (closeAfterAnswers): their parser failed, or too many requests were pipelined. */
const refusedSockets = new WeakSet<object>()

/** Ends `socket` and destroys it CLIENT_ERROR_LINGER_MS later (the client may keep its side open). */
function endThenDestroy(socket: import('node:stream').Duplex, answer?: string): void {
  if (answer === undefined) socket.end()
  else socket.end(answer)
  setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER_MS).unref()
}

export async function serveApp(app: Hono, options: ServeOptions): Promise<Listener> {
  // Requests in flight are counted, each until its response has been sent (a streamed body
  // too), so that close() lets them finish before the service releases what they use (its
  // LMDB environment): stop never pulls state from under a handler, nor cuts a transfer.
  let inflight = 0
  const ended = () => { inflight-- }
  /** Set by close(): requests that arrive after it are turned away, to be retried elsewhere or later. */
  let closing = false
  const fetch = (request: Request, env?: unknown): Response | Promise<Response> => {
    if (closing) {
      const reply = options.stopping?.() ?? { status: 503, contentType: 'application/json', body: JSON.stringify({ code: 'UNAVAILABLE', message: `${options.name} is stopping` }) }
      return new Response(reply.body, { status: reply.status, headers: { ...reply.headers, 'content-type': reply.contentType, 'retry-after': '1', connection: 'close' } })
    }
    return app.fetch(request, env)
  }
  /** Waits until no request is in flight or `until` (Date.now() time) passes. */
  const drained = async (until: number) => {
    while (inflight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
  }
  /** Resolves `p` or at `until`, whichever comes first. */
  const by = async (p: Promise<unknown>, until: number) => {
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([p, new Promise<void>((r) => { timer = setTimeout(r, Math.max(0, until - Date.now())) })])
    clearTimeout(timer)
  }
  const deno = (globalThis as { Deno?: DenoServe }).Deno
  if (deno !== undefined) {
    // Deno.serve takes a certificate but cannot ask clients for one: on Deno a secure
    // listener is HTTPS without mutual TLS (every caller is anonymous to peerIdentity).
    const tls = options.tls?.current()
    const handler = async (request: Request, info: DenoServeInfo): Promise<Response> => {
      inflight++
      let response: Response | undefined
      try {
        const env: DenoRequestEnv = { deno: info, secure: tls !== undefined }
        response = await fetch(request, env)
        return response
      } finally {
        // Older Deno tells no completion: then the request counts until its handler answered.
        if (response === undefined || info.completed === undefined) ended()
        else info.completed.then(ended, ended)
      }
    }
    const server = deno.serve({ port: options.port, hostname: options.host, ...(tls === undefined ? {} : { cert: tls.cert, key: tls.key }), onListen: () => {} }, handler)
    // Requests in flight finish first: Deno 2's shutdown() makes the bodies of requests still
    // being received unreadable (denoland/deno#36809), which an upload in progress would see
    // as its client's fault. Then shutdown() stops accepting and releases the port; it is
    // awaited whole (bounded), since a restart on the same port must find it free.
    const close = async () => {
      const until = Date.now() + CLOSE_TIMEOUT_MS
      closing = true
      await drained(until - CLOSE_LINGER_MS)
      await by(server.shutdown(), until)
    }
    return { port: server.addr.port, close }
  }
  const { getRequestListener } = await import('@hono/node-server')
  // @hono/node-server's autoCleanupIncoming stays on: it is what keeps the request's web body
  // lazy (routes read the Node stream through core/http/body.ts, and an eager Readable.toWeb would copy
  // every piece into a queue nobody reads). Its cleanup of an unread body gives up after
  // 500 ms or 64 MiB and calls destroySoon(); drainUnreadBody runs first and answers that.
  const headerLimit = options.maxHeaderBytes === undefined ? {} : { maxHeaderSize: options.maxHeaderBytes }
  const headersTimeoutMs = options.headersTimeoutMs ?? HEADERS_TIMEOUT_MS_DEFAULT
  const nodeOptions = {
    ...headerLimit, ServerResponse: await byteHeadersResponse(),
    // requestTimeout here, not after: Node refuses a headersTimeout over its default 300 s one.
    headersTimeout: headersTimeoutMs, requestTimeout: 0, connectionsCheckingInterval: Math.max(10, Math.min(30_000, Math.floor(headersTimeoutMs / 4))),
  }
  const tls = options.tls
  const parseError = options.parseError
  const listener = getRequestListener(fetch, {
    hostname: options.host,
    errorHandler: (err: unknown) => requestErrorResponse(err, parseError),
  })
  const server = tls === undefined
    ? (await import('node:http')).createServer(nodeOptions, listener)
    : (await import('node:https')).createServer({ ...nodeOptions, ...tlsOptions(tls.current()) }, listener)
  if (tls !== undefined) {
    // A renewed certificate takes over from the next connection's handshake on. Prepended:
    // tls.Server's own 'connection' listener, added first, wraps the socket in TLS with the
    // context current at that moment, so a swap after it would only reach the connection after.
    let served = tls.current()
    server.prependListener('connection', () => {
      const now = tls.current()
      if (now === served) return
      served = now
      ;(server as unknown as import('node:tls').Server).setSecureContext(tlsOptions(now))
    })
  }
  let boundPort = options.port
  // Only where people point clients (the S3 gateway, which answers parse errors itself): a
  // service's plain-HTTP caller (a Raft peer not yet switched to TLS) must see the failure.
  if (tls !== undefined && options.parseError !== undefined) {
    // A plain-HTTP request to this HTTPS port (http:// where https:// was meant) fails TLS with
    // OpenSSL's "http request"; rather than a bare reset (which a client reports as "connection
    // closed" or "empty reply"), answer it in plain HTTP with a 400 that says so, as nginx does.
    server.on('tlsClientError', (err: NodeJS.ErrnoException, tlsSocket: import('node:tls').TLSSocket) => {
      const raw = (tlsSocket as unknown as { _parent?: import('node:net').Socket })._parent
      if (err.code !== 'ERR_SSL_HTTP_REQUEST' || raw === undefined || !raw.writable) { tlsSocket.destroy(); return }
      const message = `${options.name} on port ${boundPort} serves HTTPS only and this request was plain HTTP: call https:// (o3 clients: set client.caFile, O3_CLIENT_CAFILE, to the cluster CA)`
      const reply = options.parseError?.('ERR_SSL_HTTP_REQUEST') ?? { status: 400, contentType: 'text/plain', body: `${message}\n` }
      raw.end(rawReply(reply))
    })
  }
  // The sockets HTTP runs over (over TLS the TLS sockets, whose end() flushes and closes the
  // session), and every accepted one (a TLS socket still in its handshake is known only so).
  const sockets = new Set<import('node:net').Socket>()
  const accepted = new Set<import('node:net').Socket>()
  const track = (set: Set<import('node:net').Socket>) => (socket: import('node:net').Socket) => {
    set.add(socket)
    socket.once('close', () => set.delete(socket))
  }
  server.on('connection', track(accepted))
  server.on(tls === undefined ? 'connection' : 'secureConnection', track(sockets))
  // Prepended: its 'finish' listener must run before @hono/node-server's.
  server.prependListener('request', (req: IncomingMessage, res: import('node:http').ServerResponse) => {
    inflight++
    // Counted from its turn (answerInTurn) until its response is sent, or its connection is gone.
    let counted = true
    const end = () => {
      if (!counted) return
      counted = false
      ended()
      req.socket.off('close', end)
    }
    res.once('close', end)
    req.socket.once('close', end)
    res.once('finish', () => { if (!req.complete) drainUnreadBody(req) })
  })
  // After every 'request' listener: those above run for a request only when its turn comes.
  answerInTurn(server as unknown as import('node:http').Server)
  if (parseError !== undefined) {
    server.on('clientError', (err: NodeJS.ErrnoException, socket: import('node:stream').Duplex) => {
      if (!socket.writable || err.code === 'ECONNRESET') { socket.destroy(); return }
      // The rest of a body answered early (a refused upload) that turns out malformed: its
      // request has its answer; another would be read as the next request's.
      if (drainingBodies.has(socket)) { endThenDestroy(socket); return }
      const answering = responseOn(socket)
      if (answering?.req.complete === true) {
        // A request pipelined behind ones received whole and still being answered: an answer
        // written now would land inside theirs, or be read as one of them. They finish, then
        // the connection closes with the bad request unanswered (clients retry those).
        if (!refusedSockets.has(socket)) closeAfterAnswers(socket, answering)
        return
      }
      // The request being answered is itself the broken one: answered, unless its answer has begun.
      if (answering?.headersSent === true) { socket.destroy(); return }
      const reply = parseError(err.code ?? 'HPE_INVALID')
      // A client that keeps its side open (a header trickle cut by headersTimeout, say) would
      // hold the descriptor for good: the socket goes once the answer had time to be read.
      endThenDestroy(socket, rawReply(reply))
    })
  }
  // S3 clients send `Expect: 100-continue` and others; answer 100 ourselves rather than 417.
  // (Deno.serve, above, sends 100 Continue itself as soon as the head arrives.)
  // 100 Continue goes out when the app first reads the body (the stream's first _read), not
  // before: an answer given without reading it (NoSuchBucket, SignatureDoesNotMatch) then
  // spares the client sending a body that would be refused, as S3 does.
  server.on('checkContinue', (req: IncomingMessage, res: import('node:http').ServerResponse) => {
    const read = req._read
    req._read = function (size: number) {
      req._read = read
      if (!res.headersSent) res.writeContinue()
      return read.call(this, size)
    }
    server.emit('request', req, res)
  })
  server.on('checkExpectation', (req, res) => { server.emit('request', req, res) })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE'
        ? new O3Error('UNAVAILABLE', `Cannot start ${options.name}: port ${options.port} on ${options.host} is already in use (use --ports free, or stop what holds it)`)
        : err)
    })
    server.listen(options.port, options.host, () => resolve())
  })
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : options.port
  boundPort = port
  const http = server as unknown as import('node:http').Server
  http.keepAliveTimeout = 30_000
  return {
    port,
    close: async () => {
      const until = Date.now() + CLOSE_TIMEOUT_MS
      closing = true
      // close() stops accepting and drops the idle keep-alive connections.
      const closed = new Promise<void>((resolve) => http.close(() => resolve()))
      await drained(until - CLOSE_LINGER_MS)
      // A connection whose answer is out ends after its last bytes (a FIN behind them: a reset
      // now could drop what the client has not read yet); one still answering is cut. What
      // lingers past the bound is cut too.
      for (const socket of sockets) {
        const response = responseOn(socket)
        if (response !== undefined && !response.writableFinished) socket.destroy()
        else socket.end()
      }
      await by(closed, until)
      http.closeAllConnections()
      for (const socket of accepted) socket.destroy()
      await closed
    },
  }
}

function tlsOptions(t: { key: string; cert: string; ca?: string }): import('node:tls').SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
  return { key: t.key, cert: t.cert, ...(t.ca === undefined ? {} : { ca: t.ca }), requestCert: t.ca !== undefined, rejectUnauthorized: false }
}

/**
 * Hands the app a connection's requests one at a time: each once the answer before it is
 * out. Node emits every pipelined request as soon as it is parsed, and only queues their
 * answers, so a GET pipelined behind a PUT or DELETE of its key ran beside it and could miss
 * it (HTTP/1.1 lets only safe methods run so), and a few hundred pipelined GETs each held
 * their first read buffers while their answers waited. O3's own clients never pipeline.
 * Waiting requests are bounded (HTTP_PIPELINED_REQUESTS_MAX): Node stops reading a
 * connection only when its answers back up, and these have none yet.
 */
function answerInTurn(server: import('node:http').Server): void {
  const app = server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[]
  server.removeAllListeners('request')
  const dispatch = (req: IncomingMessage, res: ServerResponse) => { for (const listener of app) listener.call(server, req, res) }
  /** Per connection, the requests parsed and not yet run, oldest first. */
  const waiting = new WeakMap<object, { req: IncomingMessage; res: ServerResponse }[]>()
  // Runs the oldest waiting request once the connection is sending its answer: Node attaches
  // a queued answer to the socket when the one before it is out, or never (that one closed
  // the connection; Node answered a request itself in between, which it then closes): then
  // the rest are dropped. One listener per connection, on the answer being sent.
  const runNext = (socket: import('node:net').Socket) => {
    const queue = waiting.get(socket)
    if (queue === undefined) return
    const head = queue[0]
    const sending = responseOn(socket)
    // On a connection whose parser failed, a request not received whole is the broken one:
    // run, it would wait for a body that cannot come (closeAfterAnswers closes the connection).
    if (socket.destroyed || (refusedSockets.has(socket) && !head.req.complete)) { waiting.delete(socket); return }
    if (sending === head.res) {
      queue.shift()
      if (queue.length === 0) waiting.delete(socket)
      else head.res.once('close', () => runNext(socket))
      return dispatch(head.req, head.res)
    }
    if (sending !== undefined && !sending.writableFinished) sending.once('close', () => runNext(socket))
    else waiting.delete(socket)
  }
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket
    if (refusedSockets.has(socket)) { unanswered.add(res); return }
    const sending = responseOn(socket)
    let queue = waiting.get(socket)
    if (queue === undefined) {
      if (sending === undefined || sending === res || sending.writableFinished) return dispatch(req, res)
      waiting.set(socket, queue = [])
      sending.once('close', () => runNext(socket))
    }
    if (queue.length < HTTP_PIPELINED_REQUESTS_MAX) { queue.push({ req, res }); return }
    // Too many waiting: stop reading (as Node does when answers back up; the parser pauses
    // after the data in hand), answer those waiting, then close; this one and later ones never run.
    unanswered.add(res)
    ;(socket as unknown as { _paused: boolean })._paused = true
    socket.pause()
    if (sending !== undefined) closeAfterAnswers(socket, sending)
  })
}

/** Answers of requests that will not run (past HTTP_PIPELINED_REQUESTS_MAX, or after a refusal). */
const unanswered = new WeakSet<ServerResponse>()

/** Sockets whose answered request's body is still being read and dropped (drainUnreadBody). */
const drainingBodies = new WeakSet<object>()

/**
 * Reads and discards what is left of a request body after its answer was sent (an early S3
 * error, a RequestTimeout, a 503), so that a client still sending its body reads the answer:
 * closing a socket with unread input makes the kernel send a RST, which the client sees as
 * ECONNRESET/EPIPE and which drops the answer from its receive buffer. If the body ends within
 * HTTP_BODY_DRAIN_BYTES_MAX and HTTP_BODY_DRAIN_MS_MAX the connection stays reusable; otherwise
 * it is half-closed (FIN after the answer) and input is still discarded until the client stops
 * sending for HTTP_LINGER_IDLE_MS_MAX or HTTP_LINGER_MS_MAX passes (nginx's lingering close),
 * and only then closed. Node's own IncomingMessage._dump discards the same way.
 */
function drainUnreadBody(req: IncomingMessage): void {
  const socket = req.socket
  if (socket.destroyed || socket.writableFinished) return
  drainingBodies.add(socket)
  let bytes = 0
  let lingering = false
  let lingerTimer: NodeJS.Timeout | undefined
  let idle: NodeJS.Timeout | undefined
  const stop = () => {
    drainingBodies.delete(socket)
    clearTimeout(drainTimer); clearTimeout(lingerTimer); clearTimeout(idle)
    socket.off('close', stop)
    // Back to Socket.prototype.destroySoon (see below).
    Reflect.deleteProperty(socket, 'destroySoon')
  }
  const close = () => { stop(); socket.destroy() }
  const halfClose = () => {
    if (lingering) return
    lingering = true
    clearTimeout(drainTimer)
    if (!socket.writableEnded) socket.end()
    lingerTimer = setTimeout(close, HTTP_LINGER_MS_MAX)
    idle = setTimeout(close, HTTP_LINGER_IDLE_MS_MAX)
  }
  const drainTimer = setTimeout(halfClose, HTTP_BODY_DRAIN_MS_MAX)
  if (socket.writableEnded) {
    // The request asked for Connection: close, so Node has already ended the socket and
    // destroys it once the FIN is out (destroySoon), input unread: linger instead.
    socket.removeListener('finish', socket.destroy)
    halfClose()
  }
  // @hono/node-server's cleanup, next in line, calls destroySoon() after 500 ms or 64 MiB:
  // while this drain runs, that only half-closes.
  socket.destroySoon = halfClose
  // The app's body stream (Readable.toWeb), if it was read, listens for 'data' too; nobody
  // reads it any more, so its listener goes, lest it queue what is discarded here.
  req.removeAllListeners('data')
  req.on('data', (piece: Buffer) => {
    bytes += piece.length
    if (lingering) idle?.refresh()
    else if (bytes > HTTP_BODY_DRAIN_BYTES_MAX) halfClose()
  })
  req.once('end', () => { if (!lingering) stop() })
  socket.once('close', stop)
  req.resume()
}

/**
 * Node's ServerResponse, but flushHeaders() sends the header bytes as they are. Header values
 * are strings of one character per byte (a UTF-8 metadata value or file name is several
 * characters), which Node writes as latin1, except in flushHeaders(): it sends the header as
 * an empty string body, encoded UTF-8, so every byte past 0x7F went out as two (a UTF-8
 * x-amz-meta-* or Content-Disposition came back garbled on GET: @hono/node-server flushes the
 * headers of a streamed body whose first piece is not ready yet).
 */
async function byteHeadersResponse(): Promise<typeof import('node:http').ServerResponse> {
  const { ServerResponse } = await import('node:http')
  type Internals = { _header: string | null; _implicitHeader(): void; _send(data: string, encoding: BufferEncoding): boolean }
  class ByteHeadersResponse extends ServerResponse {
    override flushHeaders(): void {
      const self = this as unknown as Internals
      if (self._header === null || self._header === undefined) self._implicitHeader()
      self._send('', 'latin1')
    }
  }
  return ByteHeadersResponse as typeof ServerResponse
}
