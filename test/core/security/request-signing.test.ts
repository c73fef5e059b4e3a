/**
 * Goal: a native OM call signed by core/security/request-signing.ts verifies with exactly the
 * secret, path, body and time it was signed with, is real SigV4 (the S3 gateway's canonical
 * request code computes the same proof), and never passes for an S3 signature nor the reverse.
 * Method: sign calls, read them back as the OM does, change one thing at a time.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error } from '../../../core/errors.ts'
import { REQUEST_SIGNATURE_SKEW_MS_MAX } from '../../../core/limits.ts'
import { verifyProof } from '../../../core/s3-signature.ts'
import { readSignedRequest, requestSigner, signRequest } from '../../../core/security/request-signing.ts'
import { canonicalRequest, parseAuth, sha256Hex } from '../../../datapath/s3/sigv4.ts'

const credentials = { accessKey: 'O3ALICE', secret: 'alice-secret' }
const NOW = Date.UTC(2026, 11, 3, 21, 30, 0)
const PATH = '/rpc/OM.createVolume'
const BODY = JSON.stringify({ volume: 'vol1', caller: { client: 'c1', call: 0 } })

function read(headers: Record<string, string>, changes: { path?: string; body?: string; nowMs?: number } = {}) {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]))
  return readSignedRequest({ path: changes.path ?? PATH, header: (n) => lower[n], body: changes.body ?? BODY, nowMs: changes.nowMs ?? NOW })
}

function codeOf(run: () => unknown): string | undefined {
  try { run() } catch (err) { return err instanceof O3Error ? err.code : String(err) }
  return undefined
}

test('signRequest() makes a call readSignedRequest() reads back and verifyProof(o3) accepts with the secret only', () => {
  const headers = signRequest({ credentials, path: PATH, body: BODY, nowMs: NOW })
  assert.is(headers['x-amz-date'], '20261203T213000Z')
  assert.is(headers['x-amz-content-sha256'], sha256Hex(BODY))
  assert.match(headers.authorization, /^AWS4-HMAC-SHA256 Credential=O3ALICE\/20261203\/o3\/o3\/aws4_request, SignedHeaders=x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/)
  const r = read(headers)!
  assert.is(r.accessKey, 'O3ALICE')
  assert.ok(verifyProof(credentials.secret, r.proof, 'o3').ok)
  assert.not.ok(verifyProof('bob-secret', r.proof, 'o3').ok, 'another secret')
  assert.not.ok(verifyProof(credentials.secret, r.proof, 's3').ok, 'not an S3 signature')
})

test('the proof is the one the S3 gateway computes for the same SigV4 request (real SigV4, service o3)', () => {
  const headers = signRequest({ credentials, path: PATH, body: BODY, nowMs: NOW })
  const req = { method: 'POST', rawPath: PATH, rawQuery: '', headers: new Headers(headers) }
  const auth = parseAuth(req, new URLSearchParams())
  assert.is(read(headers)!.proof.canonicalRequestSha256, sha256Hex(canonicalRequest(req, auth)))
})

test('a changed path or body does not verify; a body that is not the hashed one is SIGNATURE_MISMATCH', () => {
  const headers = signRequest({ credentials, path: PATH, body: BODY, nowMs: NOW })
  assert.not.ok(verifyProof(credentials.secret, read(headers, { path: '/rpc/OM.deleteVolume' })!.proof, 'o3').ok)
  assert.is(codeOf(() => read(headers, { body: BODY.replace('vol1', 'vol2') })), 'SIGNATURE_MISMATCH')
  const forgedHash = { ...headers, 'x-amz-content-sha256': sha256Hex(BODY.replace('vol1', 'vol2')) }
  const r = read(forgedHash, { body: BODY.replace('vol1', 'vol2') })!
  assert.not.ok(verifyProof(credentials.secret, r.proof, 'o3').ok, 'the hash is signed')
  const forgedDate = { ...headers, 'x-amz-date': '20261203T213100Z' }
  assert.not.ok(verifyProof(credentials.secret, read(forgedDate)!.proof, 'o3').ok, 'the date is signed')
})

test('readSignedRequest() refuses calls signed too long ago or ahead, and a scope of another day', () => {
  const headers = signRequest({ credentials, path: PATH, body: BODY, nowMs: NOW })
  assert.ok(read(headers, { nowMs: NOW + REQUEST_SIGNATURE_SKEW_MS_MAX }))
  assert.is(codeOf(() => read(headers, { nowMs: NOW + REQUEST_SIGNATURE_SKEW_MS_MAX + 1000 })), 'UNAUTHENTICATED')
  assert.is(codeOf(() => read(headers, { nowMs: NOW - REQUEST_SIGNATURE_SKEW_MS_MAX - 1000 })), 'UNAUTHENTICATED')
  const otherDay = { ...headers, authorization: headers.authorization.replace('/20261203/', '/20261202/') }
  assert.is(codeOf(() => read(otherDay)), 'UNAUTHENTICATED')
})

test('readSignedRequest(): no Authorization is undefined; another scheme, an S3 scope, missing parts are UNAUTHENTICATED', () => {
  assert.is(read({}), undefined)
  const headers = signRequest({ credentials, path: PATH, body: BODY, nowMs: NOW })
  assert.is(codeOf(() => read({ ...headers, authorization: 'Bearer abc' })), 'UNAUTHENTICATED')
  assert.is(codeOf(() => read({ ...headers, authorization: headers.authorization.replace('/o3/aws4_request', '/s3/aws4_request') })), 'UNAUTHENTICATED')
  assert.is(codeOf(() => read({ ...headers, authorization: headers.authorization.replace('SignedHeaders=x-amz-content-sha256;', 'SignedHeaders=') })), 'UNAUTHENTICATED')
  assert.is(codeOf(() => read({ ...headers, authorization: headers.authorization.replace(/, Signature=.*/, '') })), 'UNAUTHENTICATED')
  assert.is(codeOf(() => read({ ...headers, 'x-amz-date': 'yesterday' })), 'UNAUTHENTICATED')
  assert.is(codeOf(() => read({ ...headers, authorization: headers.authorization + 'x'.repeat(2000) })), 'UNAUTHENTICATED')
  assert.is(codeOf(() => read(headers, { path: '/rpc/OM.x?y=1' })), 'UNAUTHENTICATED')
})

test('requestSigner() signs at the time of each call and refuses empty credentials', () => {
  let now = NOW
  const sign = requestSigner(credentials, () => now)
  const a = sign({ service: 'OM', path: PATH, body: BODY })
  now += 60_000
  const b = sign({ service: 'OM', path: PATH, body: BODY })
  assert.is.not(a['x-amz-date'], b['x-amz-date'])
  assert.throws(() => requestSigner({ accessKey: '', secret: 's' }), TypeError)
})

test.run()
