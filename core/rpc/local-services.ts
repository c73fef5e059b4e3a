/** @module
 * Services answering RPCs in this process, by service and address, which this process's
 * RpcClients call without HTTP: in `o3 local`'s default topology the gateway, OM, SCM and
 * datanodes share one process, and every call went out through a loopback socket and back in.
 * A local call takes the steps of `POST /rpc/<Service>.<method>` (server.ts localServiceCall):
 * the JSON text sent, the answer as the JSON text the route would send, errors as the wire
 * carries them. Only a service without security registers (with it, calls stay on HTTPS,
 * where the caller is authenticated). Also `abandonable`: how any local call is given up.
 */
import { assert } from '../assert.ts'
import { O3Error, toO3Error } from '../errors.ts'
import { RPC_TIMEOUT_MS_DEFAULT } from '../limits.ts'

/** One call: `Service.method`'s JSON arguments in, the route's JSON answer (`{"result": ...}`) out; a refusal throws the O3Error the wire would carry. */
export type LocalRpc = (method: string, body: string) => Promise<string>

const services = new Map<string, LocalRpc>()

/**
 * Lets this process's clients call `service` at `address` directly; returns the call that
 * stops it: no new call arrives after, and it resolves once the calls under way have
 * settled (bounded), as a listener's close waits for the requests in flight.
 */
export function serveRpcLocally(service: string, address: string, call: LocalRpc): () => Promise<void> {
  const key = `${service}@${address}`
  assert(!services.has(key), `one ${service} answers locally at ${address}`)
  const running = new LocalCalls()
  const tracked: LocalRpc = (method, body) => running.track(call(method, body))
  services.set(key, tracked)
  return () => {
    if (services.get(key) === tracked) services.delete(key)
    return running.settled()
  }
}

/** How long a service's stop waits for the local calls under way (as core/http/serve.ts waits for requests in flight). */
const LOCAL_CALLS_SETTLE_MS_MAX = 10_000

/** The local calls a service is answering, for its stop to wait on. */
export class LocalCalls {
  private readonly running = new Set<Promise<unknown>>()

  track<T>(work: Promise<T>): Promise<T> {
    this.running.add(work)
    const done = () => { this.running.delete(work) }
    work.then(done, done)
    return work
  }

  /** Resolves once every call under way now has settled, or after LOCAL_CALLS_SETTLE_MS_MAX. */
  async settled(): Promise<void> {
    if (this.running.size === 0) return
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([
      Promise.allSettled([...this.running]),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, LOCAL_CALLS_SETTLE_MS_MAX) }),
    ])
    clearTimeout(timer)
  }
}

/** `service` at `address` if it answers in this process. */
export function localRpc(service: string, address: string): LocalRpc | undefined {
  return services.size === 0 ? undefined : services.get(`${service}@${address}`)
}

/** How long a local call may take: `signal` abandons it, and so does no answer in `answerTimeoutMs` (default the RPC timeout), as undici's headers timeout would. */
export interface LocalCallLimits {
  readonly signal?: AbortSignal
  readonly answerTimeoutMs?: number
}

/**
 * A local call's answer, or its abandonment as an HTTP call's: the callee's refusal thrown
 * as its answer would carry it (anything else as its INTERNAL_ERROR answer would be); on
 * `signal` its reason, and with no answer in time an error as undici's headers timeout (both
 * not O3Errors: the caller turns them into a transport error). `abandoned` is told of the
 * work still running then, which nothing can stop. Never answers within the current turn of
 * the event loop.
 */
export async function abandonable<T>(work: Promise<T>, limits: LocalCallLimits, abandoned: (running: Promise<unknown>) => void): Promise<T> {
  const outcome = work.then((value) => ({ value }), (err: unknown) => ({ err }))
  const timeoutMs = limits.answerTimeoutMs ?? RPC_TIMEOUT_MS_DEFAULT
  let timer: ReturnType<typeof setTimeout> | undefined
  let onAbort: (() => void) | undefined
  const gaveUp = new Promise<{ gaveUp: unknown }>((resolve) => {
    timer = setTimeout(() => resolve({ gaveUp: Object.assign(new Error(`no answer in ${timeoutMs} ms`), { code: 'UND_ERR_HEADERS_TIMEOUT' }) }), timeoutMs)
    onAbort = () => resolve({ gaveUp: limits.signal!.reason })
    limits.signal?.addEventListener('abort', onAbort, { once: true })
  })
  try {
    // The answer comes after a turn of the event loop at the soonest, as a socket's would: a
    // caller looping on calls that complete in microtasks alone (a read of a packed block, a
    // lookup on the OM) would otherwise starve every timer and socket of the process.
    await new Promise<void>((resolve) => setImmediate(resolve))
    const first = await Promise.race([outcome, gaveUp])
    if ('gaveUp' in first) {
      abandoned(outcome)
      throw first.gaveUp
    }
    if ('err' in first) throw first.err instanceof O3Error ? first.err : toO3Error(first.err)
    return first.value
  } finally {
    clearTimeout(timer)
    if (onAbort !== undefined) limits.signal?.removeEventListener('abort', onAbort)
  }
}
