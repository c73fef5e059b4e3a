/** @module
 * Test helper: requests as an attacker on the same host makes them (issue 16 attack replay):
 * raw HTTPS POSTs through undici, signed or not, with no certificate or one from the attacker's
 * own CA, and the checks that an answer is a typed refusal that reveals nothing.
 */
import * as assert from 'uvu/assert'
import { createHmac } from 'node:crypto'
import { request } from 'undici'
import { PLAIN_TRANSPORT, tlsTransport, urlOf, type Transport } from '../../core/rpc/transport.ts'
import { createRootCa, generateKeyPair, issueCertificate, type ServiceRole } from '../../core/security/pki.ts'
import { signRequest, type UserCredentials } from '../../core/security/request-signing.ts'

/** An answer as curl shows it: status, the error code of a JSON error body, the body as text. */
export interface Answer { status: number; code?: string; text: string; result?: unknown }

export async function post(t: Transport, address: string, path: string, body: string | Uint8Array, headers: Record<string, string>): Promise<Answer> {
  const res = await request(urlOf(t, address, path), { method: 'POST', dispatcher: t.dispatcher(), headers, body })
  const text = Buffer.from(await res.body.arrayBuffer()).toString('latin1')
  let parsed: { code?: string; result?: unknown } = {}
  try { parsed = JSON.parse(text) } catch { /* a chunk body */ }
  return { status: res.statusCode, code: parsed.code, text, result: parsed.result }
}

/** POST /rpc/<target> (e.g. OM.getS3Secret) with a JSON body, optionally signed with `sign`'s key pair (SigV4, service o3). */
export async function rpc(t: Transport, address: string, target: string, args: object, o: { sign?: UserCredentials; headers?: Record<string, string> } = {}): Promise<Answer> {
  const path = `/rpc/${target}`
  const body = JSON.stringify(args)
  const headers: Record<string, string> = { 'content-type': 'application/json', ...o.headers }
  if (o.sign !== undefined) Object.assign(headers, signRequest({ credentials: o.sign, path, body, nowMs: Date.now() }))
  return post(t, address, path, body, headers)
}

/** HTTPS trusting `ca` to see the server, showing no certificate: a stranger with curl. */
export function strangerOf(ca: string): Transport {
  return tlsTransport(() => ({ ca }))
}

/** A certificate from the attacker's own CA naming `role`/`id`, shown over HTTPS that trusts the cluster's `ca`. */
export async function foreignCert(ca: string, role: ServiceRole, id: string, hosts: readonly string[]): Promise<Transport> {
  const nowMs = Date.now()
  const evil = await createRootCa({ clusterId: 'evil', nowMs, validityMs: 3600_000 })
  const keys = await generateKeyPair()
  const cert = await issueCertificate({ ca: { cert: evil.cert, privateKey: evil.privateKey }, publicKey: keys.publicKey, identity: { role, id }, hosts, nowMs, validityMs: 3600_000 })
  return tlsTransport(() => ({ ca, cert, key: keys.privateKey }))
}

/** The answer is the refusal `code` with its HTTP status, and shows none of `secrets`. */
export function refused(a: Answer, status: number, code: string, what: string, secrets: readonly string[]): void {
  assert.is(a.code, code, `${what}: refused with ${code} (got HTTP ${a.status} ${a.code ?? ''} ${a.text.slice(0, 200)})`)
  assert.is(a.status, status, `${what}: HTTP ${status}`)
  for (const s of secrets) assert.not.ok(a.text.includes(s), `${what}: the answer reveals no secret`)
}

/** Plain HTTP to a TLS listener gets no answer at all. */
export async function noPlainAnswer(address: string, path: string): Promise<void> {
  const got = await post(PLAIN_TRANSPORT, address, path, '{}', { 'content-type': 'application/json' }).then((a) => `HTTP ${a.status}`, () => 'no answer')
  assert.is(got, 'no answer', `plain HTTP to ${address}${path}`)
}

/** A block token's claims as the documented format has them (core/security/block-token.ts). */
export interface TokenClaims { blockId: { containerId: number; localId: number }; modes: string[]; expiresAtMs: number; owner: string; keyId: string }

/** A token claiming anything, signed with `secret` (the documented format: base64url(JSON claims) "." base64url(HMAC-SHA256)). */
export function craftToken(claims: TokenClaims, secret: Uint8Array): string {
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url')
  return `${payload}.${createHmac('sha256', secret).update(payload).digest('base64url')}`
}

export function claimsOf(token: string): TokenClaims {
  return JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()) as TokenClaims
}

/** `token` with its claims re-pointed at `blockId`, its signature kept: a forgery. */
export function repointed(token: string, blockId: { containerId: number; localId: number }): string {
  const [, mac] = token.split('.')
  return `${Buffer.from(JSON.stringify({ ...claimsOf(token), blockId })).toString('base64url')}.${mac}`
}
