/** @module
 * Role tables of the services that know their callers by certificate alone (the SCM, the
 * datanodes): who a mutual-TLS peer is, and whether a route lets it in (service roles, administrators).
 */
import type { Context } from 'hono'
import { O3Error } from '../errors.ts'
import { describeCaller, peerIdentity, type Caller, type RpcContext } from './caller.ts'
import type { ServiceRole } from './service-identity.ts'

/** Who may call one route; a caller passes when any clause lets it in. */
export interface RouteRule {
  /** Services (peer certificates) of these roles. */
  readonly roles?: readonly ServiceRole[]
  /** An administrator: a `user` certificate naming one of o3.administrators. */
  readonly admins?: boolean
  /** Any caller with a cluster certificate, service or user. */
  readonly authenticated?: boolean
  /** Anyone, even without a certificate (the call proves itself, as enrollment does). */
  readonly anyone?: boolean
}

/**
 * The caller of a request from its peer certificate alone: a service, a user for a `user`
 * certificate (an administrator's `o3 admin`), anonymous without one.
 */
export function certCaller(c: Context): Caller {
  const peer = peerIdentity(c)
  if (peer === undefined) return { kind: 'anonymous' }
  return peer.role === 'user' ? { kind: 'user', user: peer.id } : { kind: 'service', role: peer.role, id: peer.id }
}

/** Throws UNAUTHENTICATED / PERMISSION_DENIED unless `rule` lets the caller in; no rule refuses every caller but `open`. */
export function checkRule(rule: RouteRule | undefined, ctx: RpcContext, admins: ReadonlySet<string>, what: string): void {
  const c = ctx.caller
  if (c.kind === 'open' || rule?.anyone === true) return
  if (rule !== undefined) {
    if (c.kind === 'service' && rule.roles?.includes(c.role) === true) return
    if (c.kind !== 'anonymous' && rule.authenticated === true) return
    if (c.kind === 'user' && rule.admins === true && admins.has(c.user)) return
  }
  if (c.kind === 'anonymous') throw new O3Error('UNAUTHENTICATED', `Cannot ${what}: the call carries no certificate from the cluster CA`)
  if (c.kind === 'user' && rule?.admins === true) throw new O3Error('PERMISSION_DENIED', `Cannot ${what}: user ${c.user} is not an administrator (o3.administrators)`)
  throw new O3Error('PERMISSION_DENIED', `Cannot ${what}: ${describeCaller(c)} may not (${allowed(rule)})`)
}

function allowed(rule: RouteRule | undefined): string {
  if (rule === undefined) return 'no caller may'
  const who = [...(rule.roles ?? []), ...(rule.admins === true ? ['an administrator'] : []), ...(rule.authenticated === true ? ['any cluster certificate'] : [])]
  return `needs ${who.join(' or ')}`
}
