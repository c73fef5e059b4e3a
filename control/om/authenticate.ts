/** @module
 * Who calls the OM when security is on (its `authenticate` option): a service by its TLS peer
 * certificate, a user by a `user` certificate or by a call signed with one of the user's key
 * pairs (core/security/request-signing.ts); anyone else is refused on every route with
 * UNAUTHENTICATED. x-o3-on-behalf-of is honoured only from the S3 gateway (role s3g), which
 * authenticates and authorizes its own users (Hadoop's proxy user). Also the one rule of the
 * S3 secrets: only their user or an administrator. Deciding what a caller may do with volumes,
 * buckets and keys is the authorizer's (access.ts), not this module's.
 */
import type { Context } from 'hono'
import { O3Error } from '../../core/errors.ts'
import { requestHeader } from '../../core/http/connection.ts'
import type { S3Secret } from '../../core/om-wire.ts'
import { verifyProof } from '../../core/s3-signature.ts'
import { isAdministrator } from '../../core/security/administrators.ts'
import { describeCaller, peerIdentity, type Caller, type RpcContext } from '../../core/security/caller.ts'
import { NATIVE_SIGNING_SERVICE, readSignedRequest } from '../../core/security/request-signing.ts'
import { checkCaller, type CallerId } from '../ha/replicated-service.ts'

export interface OmAuthenticateOptions {
  /** The key pair of an access key, as the OM's s3Secrets table holds it now (a revoked one is gone). */
  secretOf: (accessKey: string) => S3Secret | undefined
  nowMs?: () => number
}

/**
 * The OM's `authenticate` (createServiceApp): the caller of one call from its peer certificate
 * or signature over `body`, the exact text received. Never returns `anonymous`: throws
 * UNAUTHENTICATED (no credentials, unknown access key, malformed or stale signature),
 * SIGNATURE_MISMATCH (a signature or body that does not verify) or PERMISSION_DENIED
 * (x-o3-on-behalf-of from anyone but the S3 gateway).
 */
export function omAuthenticate(options: OmAuthenticateOptions): (c: Context, body: string) => Caller {
  const nowMs = options.nowMs ?? Date.now
  return (c, body) => {
    const path = c.req.path
    const caller = callerOf(c, path, body, options.secretOf, nowMs())
    if (requestHeader(c, 'x-o3-on-behalf-of') !== undefined && !(caller.kind === 'service' && caller.role === 's3g')) {
      throw new O3Error('PERMISSION_DENIED', `Cannot call ${path} on behalf of another user: only the S3 gateway may, not ${describeCaller(caller)}`)
    }
    return caller
  }
}

function callerOf(c: Context, path: string, body: string, secretOf: OmAuthenticateOptions['secretOf'], nowMs: number): Caller {
  // A certificate of the cluster CA says who the peer is; a signature on top adds nothing.
  const peer = peerIdentity(c)
  if (peer !== undefined) return peer.role === 'user' ? { kind: 'user', user: peer.id } : { kind: 'service', role: peer.role, id: peer.id }
  const signed = readSignedRequest({ path, header: (name) => requestHeader(c, name.toLowerCase()), body, nowMs })
  if (signed === undefined) {
    throw new O3Error('UNAUTHENTICATED', `Cannot call ${path}: the call is neither signed by a user (client.accessKey and client.secret) nor made with a certificate of the cluster CA`)
  }
  const secret = secretOf(signed.accessKey)
  if (secret === undefined) throw new O3Error('UNAUTHENTICATED', `Cannot authenticate access key ${signed.accessKey}: no such key (never issued, or revoked)`)
  if (!verifyProof(secret.awsSecret, signed.proof, NATIVE_SIGNING_SERVICE).ok) {
    throw new O3Error('SIGNATURE_MISMATCH', `Cannot authenticate access key ${signed.accessKey}: the signature does not match (wrong secret, or the call was changed)`)
  }
  return { kind: 'user', user: secret.user, accessKey: signed.accessKey }
}

/**
 * Throws PERMISSION_DENIED unless the caller may read or change `user`'s S3 secrets: that user
 * or an administrator (Ozone's S3SecretManager checks the same); no service may, and an open
 * caller (security off) always may.
 */
export function checkSecretAccess(ctx: RpcContext, user: string, administrators: ReadonlySet<string>, what: string): void {
  const c = ctx.caller
  if (c.kind === 'open') return
  if (c.kind === 'user' && (c.user === user || isAdministrator(c, administrators))) return
  if (c.kind === 'anonymous') throw new O3Error('UNAUTHENTICATED', `Cannot ${what}: the caller is not authenticated`)
  throw new O3Error('PERMISSION_DENIED', `Cannot ${what}: ${describeCaller(c)} is neither ${user} nor an administrator (o3.administrators)`)
}

/**
 * Throws PERMISSION_DENIED unless the caller is the S3 gateway (or open): s3Authenticate
 * checks any user's S3 signature and can hand out the day's signing key of a verified one,
 * which only the gateway, serving that user's request, may have.
 */
export function checkGateway(ctx: RpcContext, what: string): void {
  const c = ctx.caller
  if (c.kind === 'open' || (c.kind === 'service' && c.role === 's3g')) return
  throw new O3Error('PERMISSION_DENIED', `Cannot ${what}: only the S3 gateway may, not ${describeCaller(c)}`)
}

/**
 * A call's retry-cache id (its `caller` field) bound to who made it: the retry cache answers a
 * (client, call) pair once, so without the caller's name in it one user who learnt another's
 * client id could be given that user's recorded answer. Open callers keep the id as sent.
 */
export function callerIdOf(raw: unknown, ctx: RpcContext): CallerId | undefined {
  const id = checkCaller(raw)
  if (id === undefined) return undefined
  const c = ctx.caller
  switch (c.kind) {
    case 'open': return id
    case 'user': return { client: `user:${c.user}/${id.client}`, call: id.call }
    case 'service': return { client: `${c.role}:${c.id}/${id.client}`, call: id.call }
    case 'anonymous': return { client: `anonymous/${id.client}`, call: id.call }
  }
}
