/**
 * Goal: the OM's S3 signature check (core/s3-signature.ts) accepts exactly what AWS signs and
 * nothing else, and refuses proofs that are not shaped like one. Method: AWS's published
 * SigV4 example ("Example: GET Object", secret wJalrXUtnFEMI/...) and the SigV2 guide's
 * example (GET /photos/puppy.jpg), each also with one byte changed; a POST form's policy
 * signed by AWS's recipe for browser uploads.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error } from '../../core/errors.ts'
import { createHmac } from 'node:crypto'
import { S3_SIGNATURE_BYTES_MAX, S3_SIGNING_KEYS_CACHED_MAX, S3_STRING_TO_SIGN_BYTES_MAX, S3_V2_STRINGS_TO_SIGN_COUNT_MAX } from '../../core/limits.ts'
import { checkProof, isValidScope, signingKeyV4, verifyProof, type S3SignatureProof } from '../../core/s3-signature.ts'

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
/** AWS's SigV4 "GET Object" example: GET /test.txt with Range: bytes=0-9. */
const V4: S3SignatureProof = {
  version: 4, amzDate: '20130524T000000Z', scope: '20130524/us-east-1/s3/aws4_request',
  canonicalRequestSha256: '7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972',
  signature: 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
}
/** The SigV2 guide's example: virtual-hosted GET of /photos/puppy.jpg in bucket johnsmith. */
const V2_STRING = 'GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg'
const V2_SIGNATURE = 'bWq2s1WEIj+Ydj0vQ697zp+IXMU='

const code = (run: () => unknown) => {
  try { run() } catch (err) { return err instanceof O3Error ? err.code : String(err) }
  return undefined
}

test("verifyProof() accepts AWS's SigV4 example and returns the signing key of its scope", () => {
  const r = verifyProof(SECRET, V4)
  assert.ok(r.ok)
  assert.ok(r.signingKey!.equals(signingKeyV4(SECRET, V4.scope)))
  assert.is(r.signingKey!.toString('hex'), 'dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378')
})

test('verifyProof() refuses a SigV4 proof with another secret, request hash, date, scope or signature', () => {
  assert.not.ok(verifyProof(SECRET + 'x', V4).ok)
  assert.not.ok(verifyProof(SECRET, { ...V4, canonicalRequestSha256: V4.canonicalRequestSha256.replace('7344', '7345') }).ok)
  assert.not.ok(verifyProof(SECRET, { ...V4, amzDate: '20130524T000001Z' }).ok)
  assert.not.ok(verifyProof(SECRET, { ...V4, scope: '20130524/us-west-2/s3/aws4_request' }).ok)
  assert.not.ok(verifyProof(SECRET, { ...V4, scope: '20130524/us-east-1/iam/aws4_request' }).ok)
  assert.not.ok(verifyProof(SECRET, { ...V4, signature: V4.signature.toUpperCase() }).ok)
  assert.is(verifyProof(SECRET, { ...V4, signature: '' }).signingKey, undefined)
})

test("verifyProof() accepts the SigV2 guide's example when any candidate matches, and no other", () => {
  assert.ok(verifyProof(SECRET, { version: 2, stringsToSign: [V2_STRING], signature: V2_SIGNATURE }).ok)
  assert.ok(verifyProof(SECRET, { version: 2, stringsToSign: [V2_STRING + '/', V2_STRING], signature: V2_SIGNATURE }).ok)
  assert.not.ok(verifyProof(SECRET, { version: 2, stringsToSign: [V2_STRING + '/'], signature: V2_SIGNATURE }).ok)
  assert.not.ok(verifyProof('wrong', { version: 2, stringsToSign: [V2_STRING], signature: V2_SIGNATURE }).ok)
  assert.is(verifyProof(SECRET, { version: 2, stringsToSign: [V2_STRING], signature: V2_SIGNATURE }).signingKey, undefined)
})

/** A SigV4 POST form's policy (base64) and its signature, computed by the recipe of AWS's "Calculating a Signature" (HMAC-SHA256 of the base64 policy with the scope's key, hex). */
const POLICY_B64 = Buffer.from(JSON.stringify({ expiration: '2015-12-30T12:00:00.000Z', conditions: [{ bucket: 'sigv4examplebucket' }, ['starts-with', '$key', 'user/user1/']] })).toString('base64')
const POST_V4: S3SignatureProof = {
  version: 'post-v4', scope: '20151229/us-east-1/s3/aws4_request', policy: POLICY_B64,
  signature: createHmac('sha256', signingKeyV4(SECRET, '20151229/us-east-1/s3/aws4_request')).update(POLICY_B64).digest('hex'),
}

test("verifyProof() accepts a SigV4 POST form's signed policy, and nothing changed in it", () => {
  assert.ok(verifyProof(SECRET, POST_V4).ok)
  assert.not.ok(verifyProof(SECRET + 'x', POST_V4).ok)
  assert.not.ok(verifyProof(SECRET, { ...POST_V4, policy: POST_V4.policy.replace(/^./, 'f') }).ok)
  assert.not.ok(verifyProof(SECRET, { ...POST_V4, scope: '20151230/us-east-1/s3/aws4_request' }).ok)
  assert.not.ok(verifyProof(SECRET, { ...POST_V4, scope: '20151229/us-east-1/sts/aws4_request' }).ok)
  // The same signature does not pass as a request's (whose string to sign is not the policy).
  assert.not.ok(verifyProof(SECRET, { ...V4, scope: POST_V4.scope, signature: POST_V4.signature }).ok)
  assert.equal(checkProof(POST_V4), POST_V4)
  assert.is(code(() => checkProof({ ...POST_V4, policy: 7 })), 'INVALID_ARGUMENT')
  assert.is(code(() => checkProof({ ...POST_V4, policy: 'a'.repeat(S3_STRING_TO_SIGN_BYTES_MAX + 1) })), 'SIGNATURE_MISMATCH')
})

test('signingKeyV4() and isValidScope() take only date/region/s3/aws4_request', () => {
  assert.ok(isValidScope(V4.scope))
  for (const scope of ['2013052/us-east-1/s3/aws4_request', '20130524/us-east-1/s3/aws4', '20130524/us-east-1/sts/aws4_request', '']) {
    assert.not.ok(isValidScope(scope), scope)
    assert.throws(() => signingKeyV4(SECRET, scope), RangeError)
  }
})

test('signingKeyV4() answers from its cache what the four HMACs give, per secret, scope and service, past its bound', () => {
  const derive = (secret: string, scope: string, service: string) => {
    const [date, region, , terminator] = scope.split('/')
    let key: Buffer = createHmac('sha256', 'AWS4' + secret).update(date!).digest()
    for (const part of [region!, service, terminator!]) key = createHmac('sha256', key).update(part).digest()
    return key
  }
  const o3Scope = V4.scope.replace('/s3/', '/o3/')
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < S3_SIGNING_KEYS_CACHED_MAX + 10; i++) {
      const secret = `${SECRET}${i}`
      assert.ok(signingKeyV4(secret, V4.scope).equals(derive(secret, V4.scope, 's3')), `secret ${i}, round ${round}`)
    }
  }
  assert.ok(signingKeyV4(SECRET, o3Scope, 'o3').equals(derive(SECRET, o3Scope, 'o3')))
  assert.not.ok(signingKeyV4(SECRET, V4.scope).equals(signingKeyV4(SECRET, o3Scope, 'o3')))
  // A cached key answers only for its own secret and service: AWS's example with another secret, or checked for o3, fails.
  assert.ok(verifyProof(SECRET, V4).ok)
  assert.not.ok(verifyProof(`${SECRET}0`, V4).ok)
  assert.not.ok(verifyProof(SECRET, V4, 'o3').ok)
  assert.ok(verifyProof(SECRET, V4).ok)
})

test('checkProof() refuses a malformed proof (INVALID_ARGUMENT) and an oversized one as a mismatch', () => {
  assert.equal(checkProof(V4), V4)
  assert.is(code(() => checkProof(null)), 'INVALID_ARGUMENT')
  assert.is(code(() => checkProof({ ...V4, version: 3 })), 'INVALID_ARGUMENT')
  assert.is(code(() => checkProof({ ...V4, scope: 7 })), 'INVALID_ARGUMENT')
  assert.is(code(() => checkProof({ version: 2, stringsToSign: [], signature: 'x' })), 'INVALID_ARGUMENT')
  assert.is(code(() => checkProof({ version: 2, stringsToSign: Array(S3_V2_STRINGS_TO_SIGN_COUNT_MAX + 1).fill('a'), signature: 'x' })), 'INVALID_ARGUMENT')
  assert.is(code(() => checkProof({ version: 2, stringsToSign: [1], signature: 'x' })), 'INVALID_ARGUMENT')
  assert.is(code(() => checkProof({ ...V4, signature: 'a'.repeat(S3_SIGNATURE_BYTES_MAX + 1) })), 'SIGNATURE_MISMATCH')
  assert.is(code(() => checkProof({ ...V4, canonicalRequestSha256: 'a'.repeat(65) })), 'SIGNATURE_MISMATCH')
})

test.run()
