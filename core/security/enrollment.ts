/** @module
 * The bootstrap-token handshake a service gets its first certificate with (Ozone's SCM
 * certificate signing request, a shared one-time secret in place of Kerberos). Both sides
 * prove they hold the token without sending it: the request carries HMAC(token, request),
 * the answer HMAC(token, certificate + CA + nonce). Pure: no I/O, no clock.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { O3Error } from '../errors.ts'

/** What a service sends the SCM's `enroll`: who it is, its public key, and the token proof. */
export interface EnrollRequest {
  readonly role: string
  readonly id: string
  /** SPKI PEM of the key the certificate is for (the private key never leaves the service). */
  readonly publicKey: string
  readonly hosts: readonly string[]
  /** A shorter lifetime than the SCM's security.certValidityMs (0: the SCM's). */
  readonly validityMs: number
  /** Random, fresh per attempt: the SCM's answer proof covers it. */
  readonly nonce: string
  /** The enroller's clock when it made the request; the SCM refuses one too far from its own. */
  readonly timeMs: number
  /** Which token (the part before the dot); the secret stays with the enroller. */
  readonly tokenId: string
  /** HMAC-SHA256(secret, canonical request), hex. */
  readonly proof: string
}

/** The SCM's answer: the certificate, the CA that signed it, and proof that the SCM holds the token. */
export interface EnrollAnswer {
  readonly cert: string
  readonly ca: string
  readonly proof: string
}

/** A bootstrap token as a service is given it: `<id>.<secret>` (id 16 hex digits, secret base64url). */
export function formatBootstrapToken(id: string, secret: string): string {
  return `${id}.${secret}`
}

export function parseBootstrapToken(token: string): { id: string; secret: string } {
  const m = /^([0-9a-f]{16})\.([A-Za-z0-9_-]{32,128})$/.exec(token.trim())
  if (m === null) throw new O3Error('INVALID_ARGUMENT', 'Cannot use the bootstrap token: expected <16 hex digits>.<secret> as `o3 admin cert token` prints it')
  return { id: m[1], secret: m[2] }
}

function canonicalRequest(r: Omit<EnrollRequest, 'proof'>): string {
  // A JSON array: fixed order, unambiguous separators; the key as its SHA-256.
  const keyHash = createHash('sha256').update(r.publicKey).digest('hex')
  return JSON.stringify(['o3-enroll-v1', r.role, r.id, keyHash, [...r.hosts], r.validityMs, r.nonce, r.timeMs, r.tokenId])
}

export function enrollProof(secret: string, r: Omit<EnrollRequest, 'proof'>): string {
  return createHmac('sha256', secret).update(canonicalRequest(r)).digest('hex')
}

export function answerProof(secret: string, a: { cert: string; ca: string; nonce: string }): string {
  return createHmac('sha256', secret).update(JSON.stringify(['o3-enrolled-v1', a.cert, a.ca, a.nonce])).digest('hex')
}

/** Compares two hex proofs in constant time. */
export function proofsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8')
  const y = Buffer.from(b, 'utf8')
  return x.length === y.length && timingSafeEqual(x, y)
}

/** Checks an `enroll` call's arguments' shapes (not the proof): a typed refusal naming the field. */
export function parseEnrollRequest(a: Record<string, unknown>): EnrollRequest {
  const str = (name: string, max: number): string => {
    const v = a[name]
    if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new O3Error('INVALID_ARGUMENT', `Cannot enroll: ${name} must be a string of 1..${max} characters`)
    return v
  }
  const num = (name: string): number => {
    const v = a[name]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new O3Error('INVALID_ARGUMENT', `Cannot enroll: ${name} must be a whole number`)
    return v
  }
  const hosts = a.hosts
  if (!Array.isArray(hosts) || hosts.length > 32 || !hosts.every((h) => typeof h === 'string' && /^[\w.:-]{1,253}$/.test(h))) {
    throw new O3Error('INVALID_ARGUMENT', 'Cannot enroll: hosts must be up to 32 host names or addresses')
  }
  return {
    role: str('role', 16), id: str('id', 128), publicKey: str('publicKey', 4096), hosts: hosts as string[], validityMs: num('validityMs'),
    nonce: str('nonce', 128), timeMs: num('timeMs'), tokenId: str('tokenId', 16), proof: str('proof', 64),
  }
}
