/** @module
 * RPC calls to another service over undici (HTTP/1.1 keep-alive, one shared Agent per
 * process). Errors come back as O3Error with the remote code; connection failures become
 * UNAVAILABLE. Idempotent calls are retried, failing over between the given addresses.
 */
import { Agent, request, type Dispatcher } from 'undici'
import { O3Error, fromWire } from '../errors.ts'
import { RPC_RETRY_COUNT_MAX, RPC_TIMEOUT_MS_DEFAULT } from '../limits.ts'

let sharedAgent: Agent | undefined

/** The process-wide connection pool; datapath clients send chunk bodies through it too. */
export function httpAgent(): Agent {
  sharedAgent ??= new Agent({ keepAliveTimeout: 10_000, connections: 64, pipelining: 1, headersTimeout: RPC_TIMEOUT_MS_DEFAULT, bodyTimeout: RPC_TIMEOUT_MS_DEFAULT })
  return sharedAgent
}

/** Maps a transport failure (refused, reset, timeout) to a typed, retryable error. */
export function transportError(address: string, err: unknown): O3Error {
  if (err instanceof O3Error) return err
  const e = err as { code?: string; message?: string }
  const code = e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' ? 'TIMEOUT' : 'UNAVAILABLE'
  return new O3Error(code, `Cannot reach ${address}: ${e.code ?? ''} ${e.message ?? String(err)}`.replace(/\s+/g, ' ').trim(), { cause: err })
}

/** Reads a non-2xx response body as a wire error. */
export async function readError(res: Dispatcher.ResponseData, what: string): Promise<O3Error> {
  const text = await res.body.text()
  let body: unknown
  try { body = JSON.parse(text) } catch { body = { message: text } }
  return fromWire(body, `${what}: HTTP ${res.statusCode}`)
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

export interface CallOptions {
  /** Safe to send again after a failure whose outcome is unknown. */
  idempotent?: boolean
  timeoutMs?: number
}

export class RpcClient {
  private readonly addresses: string[]
  private current = 0

  constructor(readonly service: string, addresses: string | string[]) {
    this.addresses = Array.isArray(addresses) ? addresses : [addresses]
    if (this.addresses.length === 0) throw new TypeError(`RpcClient(${service}) needs at least one address`)
  }

  async call<T>(method: string, args: object, options: CallOptions = {}): Promise<T> {
    const attempts = options.idempotent ? RPC_RETRY_COUNT_MAX : 1
    let last: O3Error | undefined
    for (let attempt = 0; attempt < attempts; attempt++) {
      const address = this.addresses[this.current % this.addresses.length]
      try {
        return await this.once<T>(address, method, args, options.timeoutMs ?? RPC_TIMEOUT_MS_DEFAULT)
      } catch (err) {
        last = transportError(address, err)
        if (!last.spec.retry) throw last
        if (last.code === 'NOT_LEADER' && last.leader !== undefined && this.addresses.includes(last.leader)) {
          this.current = this.addresses.indexOf(last.leader)
        } else {
          this.current++
        }
        if (attempt + 1 < attempts) await sleep(Math.min(1000, 50 * 2 ** attempt))
      }
    }
    throw last!
  }

  private async once<T>(address: string, method: string, args: object, timeoutMs: number): Promise<T> {
    const res = await request(`http://${address}/rpc/${this.service}.${method}`, {
      method: 'POST',
      dispatcher: httpAgent(),
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(args),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    })
    if (res.statusCode !== 200) throw await readError(res, `${this.service}.${method}`)
    const body = (await res.body.json()) as { result: T }
    return body.result
  }
}
