/** @module
 * What the runtime knows of a request beyond its web Request: the client's address, whether
 * it came over TLS, and the request line's target as sent; and a request header read without
 * building the web Headers of the whole request. serve.ts hands a route the
 * runtime's objects as Hono's env (Node: @hono/node-server's `incoming`; Deno: DenoRequestEnv);
 * routes read them through this or the other core/http adapters (body.ts, body-out.ts) and
 * core/security/caller.ts (a peer's certificate), never themselves.
 */
import type { Context } from 'hono'

export interface RequestConnection {
  /** The client's IP address as the socket saw it (undefined for an app called without a server). */
  readonly remoteAddress: string | undefined
  /** The request came over TLS. */
  readonly secure: boolean
  /**
   * The request line's target as sent (Node). Undefined on Deno, which hands on only a parsed
   * URL: its path has `.` and `..` segments resolved, so a route must use the URL as it is.
   */
  readonly rawTarget: string | undefined
}

/** What Deno.serve tells its handler of a request (the part O3 reads). */
export interface DenoServeInfo {
  readonly remoteAddr?: { readonly hostname?: string }
  /** Settles once the response has been sent (or abandoned). */
  readonly completed?: Promise<void>
}

/** The env serve.ts passes the app under Deno: Deno.serve's handler info and whether the listener is TLS. */
export interface DenoRequestEnv {
  readonly deno: DenoServeInfo
  readonly secure: boolean
}

interface NodeIncoming {
  readonly url?: string
  readonly headers?: Record<string, string | string[] | undefined>
  readonly socket?: { readonly remoteAddress?: string; readonly encrypted?: boolean }
}

const NONE: RequestConnection = Object.freeze({ remoteAddress: undefined, secure: false, rawTarget: undefined })

export function connectionOf(c: Context): RequestConnection {
  const env = c.env as { incoming?: NodeIncoming } | Partial<DenoRequestEnv> | undefined
  if (env === undefined || env === null) return NONE
  if ('incoming' in env && env.incoming !== undefined) {
    const { url, socket } = env.incoming
    return { remoteAddress: socket?.remoteAddress, secure: socket?.encrypted === true, rawTarget: url }
  }
  if ('deno' in env && env.deno !== undefined) return { remoteAddress: env.deno.remoteAddr?.hostname, secure: env.secure === true, rawTarget: undefined }
  return NONE
}

/**
 * The request header `name` (any case). On Node it is read from the IncomingMessage:
 * @hono/node-server builds the web Headers of the whole request on the first c.req.header(),
 * a cost every internal call paid for one or two headers. (Node keeps the first of a repeated
 * authorization, content-type or user-agent header where web Headers joins them.)
 */
export function requestHeader(c: Context, name: string): string | undefined {
  const headers = (c.env as { incoming?: NodeIncoming } | undefined)?.incoming?.headers
  if (headers === undefined) return c.req.header(name)
  const value = headers[name.toLowerCase()]
  return Array.isArray(value) ? value.join(', ') : value
}
