/** @module
 * The RPC edge of every service: a Hono app serving `POST /rpc/<Service>.<method>` (JSON in,
 * JSON out, errors as {code, message}), `GET /prom` and `GET /health`. Services add their own
 * raw-body routes (chunk data) to the app it returns.
 */
import { Hono, type Context } from 'hono'
import { assert } from '../assert.ts'
import { O3Error, toO3Error, ErrorCode, fromWire } from '../errors.ts'
import { RPC_BODY_BYTES_MAX } from '../limits.ts'
import type { ServiceMetrics } from '../metrics.ts'
import { log } from '../log.ts'
import { parseJsonObject, smallBodyText } from '../http/body.ts'
import { requestHeader } from '../http/connection.ts'
import { OPEN_CONTEXT, type Caller, type RpcContext } from '../security/caller.ts'
import type { LocalRpc } from './local-services.ts'

// Handlers take an untrusted wire body: each validates what it reads (parseId, name checks).
// `ctx` says who is calling (core/security/caller.ts).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type RpcHandler = (args: any, ctx: RpcContext) => unknown

export interface ServiceAppOptions {
  service: string
  handlers: Record<string, RpcHandler>
  metrics: ServiceMetrics
  /** What /health adds to `{service, status: 'UP'}`; a `status` other than UP answers 503 (a readiness probe's "not ready"). */
  health: () => Record<string, unknown> | Promise<Record<string, unknown>>
  /**
   * Who is calling, from the request and its exact body text. Default: every caller is
   * `open` (security off). A secure service passes one that reads the peer certificate
   * (serviceCaller) and, on the OM, a user's signature.
   */
  authenticate?: (c: Context, body: string) => Caller | Promise<Caller>
  /** Checked before the handler runs (role tables, admin checks); throws to refuse. */
  authorize?: (method: string, args: Record<string, unknown>, ctx: RpcContext) => void | Promise<void>
}

/** The RpcContext of a request: its caller and the user a trusted service acts for. */
export function contextOf(caller: Caller, c: Context): RpcContext {
  const behalf = requestHeader(c, 'x-o3-on-behalf-of')
  return behalf === undefined || behalf.length === 0 ? { caller } : { caller, onBehalfOf: behalf }
}

/** Sends an O3Error as the wire error body with the status its code maps to. */
export function errorResponse(c: Context, err: unknown): Response {
  const e = toO3Error(err)
  if (e.code === 'INTERNAL_ERROR') log.error(`internal error: ${e.message}`, e.cause ?? e)
  return c.json(e.toWire(), ErrorCode[e.code].http as 400)
}

/**
 * Runs a route's work, counting it and timing it under `method`; an error becomes the wire
 * error response. Every RPC and raw-body route goes through this.
 */
export async function observed(metrics: ServiceMetrics, method: string, c: Context, run: () => Promise<Response>): Promise<Response> {
  const started = performance.now()
  let code = 'OK'
  try {
    return await run()
  } catch (err) {
    code = toO3Error(err).code
    return errorResponse(c, err)
  } finally {
    metrics.rpcRequests.inc({ method, code })
    metrics.rpcSeconds.observe({ method }, (performance.now() - started) / 1000)
  }
}

/** The handler name in `Service.method`, and whether it is one of this service's. */
function methodOf(options: ServiceAppOptions, full: string): { method: string; known: boolean } {
  const dot = full.indexOf('.')
  const method = full.slice(dot + 1)
  return { method, known: dot >= 0 && full.slice(0, dot) === options.service && Object.hasOwn(options.handlers, method) }
}

/**
 * The work of one call once its caller is known: the method looked up (after authentication,
 * so that a stranger learns nothing of which methods exist), its JSON arguments parsed,
 * authorized and handled. The route and a local call both run it.
 */
function dispatcher(options: ServiceAppOptions): (full: string, text: string, ctx: RpcContext) => Promise<unknown> {
  return async (full, text, ctx) => {
    const { method, known } = methodOf(options, full)
    if (!known) throw new O3Error('INVALID_ARGUMENT', `Cannot call ${full}: no such method on ${options.service}`)
    const args = parseJsonObject(text, `Cannot call ${full}`)
    await options.authorize?.(method, args, ctx)
    return options.handlers[method](args, ctx)
  }
}

/** The method name metrics count a call under: one of the handlers' names, or `unknown` (a name from the path would make a new label set, kept for good, for every made-up method a client sends). */
function metricName(options: ServiceAppOptions, full: string): string {
  const { method, known } = methodOf(options, full)
  return known ? method : 'unknown'
}

export function createServiceApp(options: ServiceAppOptions): Hono {
  const { service, metrics } = options
  const dispatch = dispatcher(options)
  const app = new Hono()
  app.get('/health', async (c) => {
    const body = { service, status: 'UP', ...(await options.health()) }
    return c.json(body, body.status === 'UP' ? 200 : 503)
  })
  app.get('/prom', async (c) => c.text(await metrics.text(), 200, { 'content-type': metrics.registry.contentType }))
  app.post('/rpc/:method', (c) => {
    const full = c.req.param('method') ?? ''
    return observed(metrics, metricName(options, full), c, async () => {
      // Read through the body adapter: c.req.text() would build a web Request and stream per call.
      const text = await smallBodyText(c, RPC_BODY_BYTES_MAX, `Cannot call ${full}`)
      const ctx = options.authenticate === undefined ? OPEN_CONTEXT : contextOf(await options.authenticate(c, text), c)
      return c.json({ result: (await dispatch(full, text, ctx)) ?? null })
    })
  })
  return app
}

/**
 * The route's work without HTTP, for clients in this process (local-services.ts): the same
 * dispatch, counted and timed under the same method names, the answer as the JSON text the
 * route sends and a refusal as the O3Error a client reads off the wire. For a service
 * without security only: every caller is open.
 */
export function localServiceCall(options: ServiceAppOptions): LocalRpc {
  assert(options.authenticate === undefined, 'a secure service answers over HTTPS only')
  const dispatch = dispatcher(options)
  return async (method, text) => {
    const full = `${options.service}.${method}`
    const name = metricName(options, full)
    const started = performance.now()
    let code = 'OK'
    try {
      // UTF-8 is at most three bytes per UTF-16 unit: most bodies need no encoding to tell.
      if (text.length > RPC_BODY_BYTES_MAX / 3 && new TextEncoder().encode(text).length > RPC_BODY_BYTES_MAX) throw new O3Error('ENTITY_TOO_LARGE', `Cannot call ${full}: body exceeds ${RPC_BODY_BYTES_MAX} bytes`)
      return JSON.stringify({ result: (await dispatch(full, text, OPEN_CONTEXT)) ?? null })
    } catch (err) {
      const e = toO3Error(err)
      code = e.code
      if (e.code === 'INTERNAL_ERROR') log.error(`internal error: ${e.message}`, e.cause ?? e)
      throw fromWire(e.toWire(), `${full}: ${e.code}`)
    } finally {
      options.metrics.rpcRequests.inc({ method: name, code })
      options.metrics.rpcSeconds.observe({ method: name }, (performance.now() - started) / 1000)
    }
  }
}
