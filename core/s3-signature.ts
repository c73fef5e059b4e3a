/** @module
 * Checks an S3 request's signature where the secret lives (the OM), from a proof the gateway
 * builds (S3SignatureProof): AWS SigV4's string to sign from its parts, SigV2's strings to
 * sign, or a browser form's (PostObject) SigV4-signed policy. The secret never leaves: a caller that needs key material for the body gets the SigV4
 * signing key, scoped to one day, region and service, as AWS designs it ("Signature Version
 * 4 signing process", step 3). Pure but for node:crypto and a bounded cache of signing keys.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { BoundedMemo } from './bounded-memo.ts'
import { O3Error } from './errors.ts'
import { S3_SIGNATURE_BYTES_MAX, S3_SIGNING_KEYS_CACHED_MAX, S3_STRING_TO_SIGN_BYTES_MAX, S3_V2_STRINGS_TO_SIGN_COUNT_MAX } from './limits.ts'

/**
 * What the OM needs to check a request's signature without seeing the request. SigV4: the
 * parts of the string to sign (the OM joins them, so the scope it derives the key for is the
 * scope that was signed). SigV2: each string to sign the request may have been signed over
 * (clients differ in the canonical resource); it verifies if any matches.
 */
export type S3SignatureProof =
  | { version: 4; amzDate: string; scope: string; canonicalRequestSha256: string; signature: string }
  | { version: 2; stringsToSign: string[]; signature: string }
  /**
   * A POST form signed with SigV4 ("Browser-Based Uploads Using POST", "Calculating a
   * Signature"): the string to sign is the form's base64 policy itself, HMAC-SHA256 with the
   * signing key of the x-amz-credential scope. It cannot pass for a request signature: those
   * start with "AWS4-HMAC-SHA256\n", which no base64 text holds (verifyProof takes base64 only). (A SigV2 form signs its
   * policy as a version 2 string to sign.)
   */
  | { version: 'post-v4'; scope: string; policy: string; signature: string }

/**
 * The services a key pair signs for: `s3` (S3 requests through the gateway) and `o3` (the
 * native client's OM calls, core/security/request-signing.ts). Each check names the one it
 * expects, so a signature made for one protocol never verifies as the other's.
 */
export type SigningService = 's3' | 'o3'

/**
 * Signing keys derived lately, by service, scope and secret: a key holds for a day, and its
 * four chained HMACs were 7 % of a 4 KiB S3 GET's CPU when derived per request (AWS's SDKs
 * cache them alike). Bounded; the oldest derived goes first. A changed secret is another key.
 */
const signingKeys = new BoundedMemo<string, Buffer>(S3_SIGNING_KEYS_CACHED_MAX)

/**
 * The SigV4 signing key of `secret` for `scope` (date/region/<service>/aws4_request); RangeError
 * for any other scope. The buffer may be shared with other callers: read it, never write it.
 */
export function signingKeyV4(secret: string, scope: string, service: SigningService = 's3'): Buffer {
  // The scope's length makes the key unambiguous whatever characters scope and secret hold.
  return signingKeys.get(`${service}:${scope.length}:${scope}${secret}`, () => {
    const [date, region, , terminator] = scope.split('/')
    if (!isValidScope(scope, service)) throw new RangeError(`Invalid credential scope ${scope}`)
    return hmac(hmac(hmac(hmac('AWS4' + secret, date!), region!), service), terminator!)
  })
}

/** Whether a SigV4 credential scope is one we sign with: an 8-digit date, a region, `service` (s3 unless named), aws4_request. */
export function isValidScope(scope: string, service: SigningService = 's3'): boolean {
  const [date, , named, terminator] = scope.split('/')
  return terminator === 'aws4_request' && named === service && /^\d{8}$/.test(date ?? '')
}

/** The SigV4 string to sign of a request, from its parts. */
export function stringToSignV4(p: { amzDate: string; scope: string; canonicalRequestSha256: string }): string {
  return ['AWS4-HMAC-SHA256', p.amzDate, p.scope, p.canonicalRequestSha256].join('\n')
}

/** Base64 HMAC-SHA1 of a SigV2 string to sign, as its UTF-8 bytes. */
export function signV2(secret: string, stringToSign: string): string {
  return createHmac('sha1', secret).update(stringToSign, 'utf8').digest('base64')
}

/** Constant-time string comparison (the lengths may differ, and that is not hidden). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a), y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

/**
 * A proof as it came off the wire: INVALID_ARGUMENT when it is not shaped like one;
 * SIGNATURE_MISMATCH when a part is longer than any that verifies (a client's oversized
 * signature or scope must be answered as a wrong signature, which it is).
 */
export function checkProof(raw: unknown): S3SignatureProof {
  const bad = (why: string) => new O3Error('INVALID_ARGUMENT', `Invalid signature proof: ${why}`)
  if (typeof raw !== 'object' || raw === null) throw bad('not an object')
  const p = raw as Record<string, unknown>
  const text = (name: string, max: number): string => {
    const v = p[name]
    if (typeof v !== 'string') throw bad(`${name} must be a string`)
    if (v.length > max) throw new O3Error('SIGNATURE_MISMATCH', `Cannot verify a signature whose ${name} exceeds ${max} characters`)
    return v
  }
  const signature = text('signature', S3_SIGNATURE_BYTES_MAX)
  if (p.version === 4) {
    return { version: 4, amzDate: text('amzDate', S3_STRING_TO_SIGN_BYTES_MAX), scope: text('scope', S3_STRING_TO_SIGN_BYTES_MAX), canonicalRequestSha256: text('canonicalRequestSha256', 64), signature }
  }
  if (p.version === 2) {
    const all = p.stringsToSign
    if (!Array.isArray(all) || all.length === 0 || all.length > S3_V2_STRINGS_TO_SIGN_COUNT_MAX) throw bad(`stringsToSign must hold 1..${S3_V2_STRINGS_TO_SIGN_COUNT_MAX} strings`)
    for (const s of all) if (typeof s !== 'string') throw bad('each string to sign must be a string')
    for (const s of all as string[]) if (s.length > S3_STRING_TO_SIGN_BYTES_MAX) throw new O3Error('SIGNATURE_MISMATCH', `Cannot verify a string to sign of ${s.length} characters: more than ${S3_STRING_TO_SIGN_BYTES_MAX}`)
    return { version: 2, stringsToSign: all as string[], signature }
  }
  if (p.version === 'post-v4') {
    return { version: 'post-v4', scope: text('scope', S3_STRING_TO_SIGN_BYTES_MAX), policy: text('policy', S3_STRING_TO_SIGN_BYTES_MAX), signature }
  }
  throw bad("version must be 2, 4 or 'post-v4'")
}

/** A browser form's policy as S3 takes it: base64, perhaps folded over lines. */
const POST_POLICY_BASE64 = /^[A-Za-z0-9+/\r\n]*={0,2}$/

/**
 * Whether `proof` was signed with `secret`; for SigV4 also the signing key it was checked
 * with. Every SigV2 candidate is computed and compared, so the time taken does not say which
 * matched. An invalid SigV4 scope (or one for another service than `service`) does not verify.
 */
export function verifyProof(secret: string, proof: S3SignatureProof, service: SigningService = 's3'): { ok: boolean; signingKey?: Buffer } {
  if (proof.version === 2) {
    let ok = false
    for (const s of proof.stringsToSign) ok = safeEqual(signV2(secret, s), proof.signature) || ok
    return { ok }
  }
  // A form's policy is base64 (no '-'): a SigV4 request's string to sign ("AWS4-HMAC-SHA256\n...",
  // whose signature a presigned URL shows anyone) never passes for one, whatever the gateway checks.
  if (proof.version === 'post-v4' && !POST_POLICY_BASE64.test(proof.policy)) return { ok: false }
  let key: Buffer
  try {
    key = signingKeyV4(secret, proof.scope, service)
  } catch {
    return { ok: false }
  }
  const stringToSign = proof.version === 4 ? stringToSignV4(proof) : proof.policy
  const expected = createHmac('sha256', key).update(stringToSign).digest('hex')
  return safeEqual(expected, proof.signature) ? { ok: true, signingKey: key } : { ok: false }
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest()
}
