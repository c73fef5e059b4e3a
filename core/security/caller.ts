/** @module
 * Who is calling a service: the one answer every RPC handler and raw route gets (RpcContext),
 * from the TLS peer certificate (a service of the cluster), a signed request (a user), or
 * nothing (anonymous). With security off every caller is `open`, trusted as before.
 */
import type { TLSSocket } from 'node:tls'
import type { Context } from 'hono'
import { O3Error } from '../errors.ts'
import { identityOfSan, type ServiceRole } from './service-identity.ts'

export type Caller =
  /** Security is off (`security.enabled` 0): every caller is trusted, as O3 was before. */
  | { readonly kind: 'open' }
  /** A peer that showed a certificate from the cluster CA naming this role and id. */
  | { readonly kind: 'service'; readonly role: ServiceRole; readonly id: string }
  /** A request signed with one of the user's key pairs (or a `user` certificate). */
  | { readonly kind: 'user'; readonly user: string; readonly accessKey?: string }
  | { readonly kind: 'anonymous' }

export interface RpcContext {
  readonly caller: Caller
  /**
   * The user a trusted service (the S3 gateway) acts for, from the `x-o3-on-behalf-of` header;
   * honoured only when the caller is a service allowed to name one.
   */
  readonly onBehalfOf?: string
}

export const OPEN_CONTEXT: RpcContext = Object.freeze({ caller: Object.freeze({ kind: 'open' as const }) })

/**
 * The cluster identity the TLS peer proved: its certificate chained to the CA this listener
 * trusts (node:tls `authorized`) and names an `o3://role/id`. undefined on plain HTTP, on
 * Deno (no client certificates), and for peers without one (users, S3 clients).
 */
export function peerIdentity(c: Context): { role: ServiceRole; id: string } | undefined {
  const socket = (c.env as { incoming?: { socket?: TLSSocket } } | undefined)?.incoming?.socket
  if (socket === undefined || typeof socket.getPeerCertificate !== 'function' || socket.authorized !== true) return undefined
  return identityOfSan(socket.getPeerCertificate().subjectaltname)
}

/** The caller of a request on a secure listener from its peer certificate alone (services' routes). */
export function serviceCaller(c: Context): Caller {
  const peer = peerIdentity(c)
  return peer === undefined ? { kind: 'anonymous' } : { kind: 'service', role: peer.role, id: peer.id }
}

/** Throws UNAUTHENTICATED / PERMISSION_DENIED unless the caller is open or a service in `roles`. */
export function requireRole(ctx: RpcContext, roles: readonly ServiceRole[], what: string): void {
  const c = ctx.caller
  if (c.kind === 'open') return
  if (c.kind === 'service' && roles.includes(c.role)) return
  if (c.kind === 'anonymous') throw new O3Error('UNAUTHENTICATED', `Cannot ${what}: the call carries no cluster certificate (needs ${roles.join(' or ')})`)
  throw new O3Error('PERMISSION_DENIED', `Cannot ${what}: ${describeCaller(c)} is not ${roles.join(' or ')}`)
}

export function describeCaller(c: Caller): string {
  switch (c.kind) {
    case 'open': return 'an open caller'
    case 'service': return `${c.role} ${c.id}`
    case 'user': return `user ${c.user}`
    case 'anonymous': return 'an anonymous caller'
  }
}
