/** @module
 * RPC calls to another service over undici (HTTP/1.1 keep-alive, one shared Agent per
 * process). Errors come back as O3Error with the remote code; connection failures become
 * UNAVAILABLE. Failover between a service's addresses (its Raft group's members): a
 * NOT_LEADER answer sends the call to the leader it names (with followsLeaders, an OM's or
 * SCM's leader learned as one of the group's addresses when the client was not given it: a
 * CLI given one member), a connection error to the next address, with backoff, until a
 * bounded time; a retryable answer of the leader itself
 * (NO_PIPELINE, SAFE_MODE) gets as few tries as one address would, and is what the caller is
 * told. A call whose outcome is unknown (a timeout, a dropped connection) is sent again only
 * when that is safe: idempotent, or carrying a caller id that the service's retry cache
 * answers once. A service answering in this process is called without HTTP (local-services.ts).
 */
import { randomUUID } from 'node:crypto'
import { request, type Dispatcher } from 'undici'
import { abandonable, localRpc } from './local-services.ts'
import { PLAIN_TRANSPORT, roleOfService, urlOf, type Transport } from './transport.ts'
import { O3Error, fromWire } from '../errors.ts'
import { RPC_FAILOVER_MS_MAX, RPC_GROUP_ADDRESSES_MAX, RPC_GROUP_BACKOFF_MS_MAX, RPC_RETRY_COUNT_MAX, RPC_TIMEOUT_MS_DEFAULT } from '../limits.ts'

export { httpAgent } from './transport.ts'

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
  // Not JSON: whatever answered is no O3 service (a proxy, an S3 gateway's port given as an OM's).
  try { body = JSON.parse(text) } catch { body = { message: `${what}: HTTP ${res.statusCode} from a server that is not an O3 service${text.trim() === '' ? '' : `: ${text.trim().slice(0, 200)}`}` } }
  return fromWire(body, `${what}: HTTP ${res.statusCode}`)
}

function isRefused(err: unknown): boolean {
  const code = (err as { code?: string; cause?: { code?: string } }).code ?? (err as { cause?: { code?: string } }).cause?.code
  return code === 'ECONNREFUSED'
}

/** A group member as its last answer showed it, in a few words. */
function memberState(err: O3Error | undefined): string {
  if (err === undefined) return 'not tried'
  if (err.code === 'NOT_LEADER') return err.leader === undefined || err.leader === '' ? 'up, knows no leader' : `up, names ${err.leader} leader`
  if (err.code === 'TIMEOUT') return 'no answer in time'
  if (err.cause !== undefined && !(err.cause instanceof O3Error)) return 'unreachable'
  return `answered ${err.code}`
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

export interface CallOptions {
  /** Safe to send again after a failure whose outcome is unknown. */
  idempotent?: boolean
  timeoutMs?: number
  /** The user a trusted service acts for (the S3 gateway): sent as x-o3-on-behalf-of. */
  onBehalfOf?: string
  /** How long the call may keep trying, over all its tries (default RPC_FAILOVER_MS_MAX): less for a call its caller can do without. */
  failoverMs?: number
}

/**
 * Headers that authenticate one call (a user's signature over it): given the service, the
 * request path and the exact JSON body sent.
 */
export type RequestSigner = (call: { service: string; path: string; body: string }) => Record<string, string>

export interface RpcClientOptions {
  /** Plain HTTP (the default) or the caller's TLS identity. */
  readonly transport?: Transport
  /** Signs every call as a user (the native client with credentials). */
  readonly signer?: RequestSigner
  /** Extra headers on every call (the S3 gateway's x-o3-on-behalf-of is per call: see CallOptions). */
  /**
   * Tag every call with this client's id and a call number (`caller`), which a replicated
   * service's retry cache answers once: then any call may be sent again after a timeout.
   */
  readonly callerIds?: boolean
  /**
   * Follow an OM's or SCM's NOT_LEADER to the leader it names even when it is not one of
   * `addresses` (a CLI given one member of an HA group): the address joins them. Not for a
   * client that must keep talking to the member it was given (a datanode's heartbeats to
   * each SCM).
   */
  readonly followsLeaders?: boolean
}

export class RpcClient {
  private readonly addresses: string[]
  private current = 0
  private readonly clientId = randomUUID()
  private nextCall = 0

  /** `addresses`: one, a list, or a comma-separated list (a Raft group's members). */
  constructor(readonly service: string, addresses: string | string[], private readonly options: RpcClientOptions = {}) {
    this.addresses = (Array.isArray(addresses) ? addresses : addresses.split(',')).map((a) => a.trim()).filter((a) => a.length > 0)
    if (this.addresses.length === 0) throw new TypeError(`RpcClient(${service}) needs at least one address`)
  }

  async call<T>(method: string, args: object, options: CallOptions = {}): Promise<T> {
    const body = this.options.callerIds ? { ...args, caller: { client: this.clientId, call: this.nextCall++ } } : args
    const resendable = options.idempotent === true || this.options.callerIds === true
    // One address: a few tries. A group: until a new leader had time to be elected. Either
    // way no try follows an answer after `budget`: a service that answers UNAVAILABLE once its
    // own calls gave up (the OM when no SCM leads) has spent that time already, and a caller
    // asking it five times would multiply it. (A try that timed out has not heard from the
    // group: the next member may have been elected meanwhile. One address that timed out has
    // no one else to ask: after `budget`, no try follows that either: a hung server cost five
    // whole timeouts.)
    const startedMs = Date.now()
    const budget = options.failoverMs ?? RPC_FAILOVER_MS_MAX
    let deadline = startedMs + (this.addresses.length > 1 ? budget : 0)
    let last: O3Error | undefined
    // Answers other than NOT_LEADER (the leader's own refusal, say NO_PIPELINE): a group gets
    // as few tries of those as one address, and the last one is what the caller is told.
    let answeredTries = 0
    let lastAnswered: O3Error | undefined
    let followedHint = false
    // A group's members' last answers, for the give-up message: the last address alone (a
    // dead member's refused connection) hid that a live one answered there was no leader.
    const lastByAddress = new Map<string, O3Error>()
    for (let attempt = 0; ; attempt++) {
      const address = this.addresses[this.current % this.addresses.length]
      try {
        return await this.once<T>(address, method, body, options)
      } catch (err) {
        last = transportError(address, err)
        // Plain HTTP to a TLS port: the server closes the connection without a word.
        if ((this.options.transport ?? PLAIN_TRANSPORT).scheme === 'http' && (err as { code?: string }).code === 'UND_ERR_SOCKET') {
          last = new O3Error(last.code, `${last.message} (if it speaks HTTPS, as a secure cluster's services do, the client needs its CA: O3_CLIENT_CAFILE)`, { cause: err })
        }
        lastByAddress.set(address, last)
        // A member naming a leader this client was not given (one member's address, say):
        // that address joins the group's from now on, and the call gets a group's time.
        if (this.learnLeader(last)) deadline = startedMs + budget
        // NOT_LEADER and a refused connection mean the call did nothing: safe to send to
        // another member of a group. (One address keeps the old rule: retried if resendable.)
        const didNothing = this.addresses.length > 1 && (last.code === 'NOT_LEADER' || isRefused(err))
        if (!last.spec.retry || !(resendable || didNothing)) throw last
        const hinted = last.code === 'NOT_LEADER' && last.leader !== undefined && this.addresses.includes(last.leader)
        // A NOT_LEADER is no such answer: it points to the leader a frozen one's timeout let the group elect.
        const answered = err instanceof O3Error && last.code !== 'NOT_LEADER'
        // A group member's own TIMEOUT (its proposal not committed in time) tells as little as
        // no answer: a leader frozen past the group's election timeout answers it once it runs
        // again, before it learns it was deposed. The next member is asked, whatever time is left.
        const groupTimeout = this.addresses.length > 1 && last.code === 'TIMEOUT'
        if (answered) {
          answeredTries++
          lastAnswered = last
        }
        // The member that answered is asked again (it leads, or thinks so); any other failure moves on.
        if (hinted) this.current = this.addresses.indexOf(last.leader!)
        else if (!answered || groupTimeout) this.current++
        const heard = (answered && !groupTimeout) || (this.addresses.length === 1 && last.code === 'TIMEOUT')
        if ((attempt + 1 >= RPC_RETRY_COUNT_MAX && Date.now() >= deadline) || answeredTries >= RPC_RETRY_COUNT_MAX || (heard && Date.now() - startedMs >= budget)) {
          const members = this.addresses.length === 1 ? '' : `; ${this.addresses.map((a) => `${a}: ${memberState(lastByAddress.get(a))}`).join(', ')}`
          // A follower's NOT_LEADER tells less than what the leader answered before it.
          const told = last.code === 'NOT_LEADER' && lastAnswered !== undefined ? lastAnswered : last
          throw new O3Error(told.code, `${told.message} (gave up on ${this.service}.${method} after ${attempt + 1} tries over ${this.addresses.join(', ')}${members})`, { leader: told.leader, node: told.node })
        }
        // A member that names the leader is followed at once (but not twice in a row: two
        // stale hints could send the call back and forth). In a group, the pause grows per
        // round of members and stays short, as an election takes a few hundred ms; alone, up to 1 s.
        if (hinted && !followedHint) {
          followedHint = true
          continue
        }
        followedHint = false
        await sleep(this.addresses.length > 1 && !answered
          ? Math.min(RPC_GROUP_BACKOFF_MS_MAX, 25 * 2 ** Math.min(Math.floor(attempt / this.addresses.length), 4))
          : Math.min(1000, 50 * 2 ** Math.min(this.addresses.length > 1 ? answeredTries - 1 : attempt, 5)))
      }
    }
  }

  /**
   * Adds a NOT_LEADER's leader address to the group's (a few at most; followsLeaders clients
   * only); whether it was new. The OM's and SCM's groups only: a datanode's NOT_LEADER is its
   * pipeline's, which the datapath follows itself (pipeline-leader.ts), with arguments for
   * that leader.
   */
  private learnLeader(err: O3Error): boolean {
    if (this.options.followsLeaders !== true || (this.service !== 'OM' && this.service !== 'SCM')) return false
    const leader = err.code === 'NOT_LEADER' ? err.leader : undefined
    if (leader === undefined || leader === '' || this.addresses.includes(leader) || this.addresses.length >= RPC_GROUP_ADDRESSES_MAX) return false
    this.addresses.push(leader)
    return true
  }

  private async once<T>(address: string, method: string, args: object, options: CallOptions): Promise<T> {
    const transport = this.options.transport ?? PLAIN_TRANSPORT
    const timeoutMs = options.timeoutMs ?? RPC_TIMEOUT_MS_DEFAULT
    const path = `/rpc/${this.service}.${method}`
    const body = JSON.stringify(args)
    // A service in this process (local-services.ts; never a secure one, and never for a
    // signed call): the route's work without the socket, given up as an HTTP call would be.
    const local = this.options.signer === undefined && transport.scheme === 'http' ? localRpc(this.service, address) : undefined
    if (local !== undefined) return (JSON.parse(await abandonable(local(method, body), { answerTimeoutMs: timeoutMs }, () => {})) as { result: T }).result
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (options.onBehalfOf !== undefined) headers['x-o3-on-behalf-of'] = options.onBehalfOf
    if (this.options.signer !== undefined) Object.assign(headers, this.options.signer({ service: this.service, path, body }))
    const res = await request(urlOf(transport, address, path), {
      method: 'POST',
      dispatcher: transport.dispatcher(roleOfService(this.service)),
      headers,
      body,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    })
    if (res.statusCode !== 200) throw await readError(res, `${this.service}.${method}`)
    const parsed = (await res.body.json()) as { result: T }
    return parsed.result
  }
}
