/** @module
 * The RPC edge of every service: a Hono app serving `POST /rpc/<Service>.<method>` (JSON in,
 * JSON out, errors as {code, message}), `GET /prom` and `GET /health`. Services add their own
 * raw-body routes (chunk data) to the app it returns.
 */
import { Hono, type Context } from 'hono'
import { O3Error, toO3Error, ErrorCode } from '../errors.ts'
import { RPC_BODY_BYTES_MAX } from '../limits.ts'
import type { ServiceMetrics } from '../metrics.ts'
import { log } from '../log.ts'
import { parseJsonObject, smallBodyText } from '../http/body.ts'
import { requestHeader } from '../http/connection.ts'
import { OPEN_CONTEXT, type Caller, type RpcContext } from '../security/caller.ts'

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

export function createServiceApp(options: ServiceAppOptions): Hono {
  const { service, handlers, metrics } = options
  const app = new Hono()
  app.get('/health', async (c) => {
    const body = { service, status: 'UP', ...(await options.health()) }
    return c.json(body, body.status === 'UP' ? 200 : 503)
  })
  app.get('/prom', async (c) => c.text(await metrics.text(), 200, { 'content-type': metrics.registry.contentType }))
  /** `Service.method` from the path, and the method name metrics count it under: one of the
   *  handlers' names, or `unknown`. A name from the path would make a new label set, kept for
   *  good, for every made-up method a client sends. */
  const methodOf = (c: Context): { full: string; name: string; dot: number } => {
    const full = c.req.param('method') ?? ''
    const dot = full.indexOf('.')
    const method = full.slice(dot + 1)
    const known = dot >= 0 && full.slice(0, dot) === service && Object.hasOwn(handlers, method)
    return { full, dot, name: known ? method : 'unknown' }
  }
  app.post('/rpc/:method', (c) => {
    const { full, dot, name } = methodOf(c)
    return observed(metrics, name, c, async () => {
      const method = full.slice(dot + 1)
      // Read through the body adapter: c.req.text() would build a web Request and stream per call.
      const text = await smallBodyText(c, RPC_BODY_BYTES_MAX, `Cannot call ${full}`)
      // Authenticated before the method is looked up: a stranger learns nothing of which methods exist.
      const ctx = options.authenticate === undefined ? OPEN_CONTEXT : contextOf(await options.authenticate(c, text), c)
      if (dot < 0 || full.slice(0, dot) !== service || !Object.hasOwn(handlers, method)) throw new O3Error('INVALID_ARGUMENT', `Cannot call ${full}: no such method on ${service}`)
      const args = parseJsonObject(text, `Cannot call ${full}`)
      await options.authorize?.(method, args, ctx)
      const result = await handlers[method](args, ctx)
      return c.json({ result: result ?? null })
    })
  })
  return app
}
