/**
 * Goal: a POST policy (datapath/s3/post-policy.ts) parses as S3 documents it and decides a
 * form as S3 does: exact and starts-with conditions by field name in any case, the bucket
 * from the request, content-length-range returned for the file's reading, extra fields and
 * expiry refused; malformed policies are InvalidPolicyDocument.
 * Method: a table of policies and forms.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { S3Error } from '../../../datapath/s3/errors.ts'
import { checkPostPolicy, parsePostPolicy } from '../../../datapath/s3/post-policy.ts'

const b64 = (doc: unknown) => Buffer.from(typeof doc === 'string' ? doc : JSON.stringify(doc)).toString('base64')
const EXP = '2030-01-01T00:00:00.000Z'
const NOW = Date.parse('2029-06-01T00:00:00Z')

function decide(conditions: unknown[], fields: Record<string, string>, nowMs = NOW): string {
  try {
    const range = checkPostPolicy(parsePostPolicy(b64({ expiration: EXP, conditions })), { fields: new Map(Object.entries(fields)), bucket: 'bkt', nowMs })
    return range === undefined ? 'ok' : `ok ${range.min}-${range.max}`
  } catch (err) {
    if (err instanceof S3Error) return `${err.code}: ${err.message}`
    throw err
  }
}

const CASES: [string, unknown[], Record<string, string>, string][] = [
  ['exact match', [{ key: 'a' }], { key: 'a' }, 'ok'],
  ['exact mismatch', [{ key: 'a' }], { key: 'b' }, 'AccessDenied: Invalid according to Policy: Policy Condition failed: {"key":"a"}'],
  ['eq form', [['eq', '$key', 'a']], { key: 'a' }, 'ok'],
  ['eq on a missing field', [['eq', '$acl', 'private']], {}, 'AccessDenied: Invalid according to Policy: Policy Condition failed: ["eq","$acl","private"]'],
  ['starts-with', [['starts-with', '$key', 'user/']], { key: 'user/x' }, 'ok'],
  ['starts-with fails', [['starts-with', '$key', 'user/']], { key: 'other/x' }, 'AccessDenied: Invalid according to Policy: Policy Condition failed: ["starts-with","$key","user/"]'],
  ['starts-with "" allows anything', [['starts-with', '$x-amz-meta-tag', '']], { 'x-amz-meta-tag': 'q' }, 'ok'],
  ['field names in any case', [{ 'Content-Type': 'text/plain' }], { 'content-type': 'text/plain' }, 'ok'],
  ['Content-Type list: each must start with the prefix', [['starts-with', '$Content-Type', 'image/']], { 'content-type': 'image/png, image/gif' }, 'ok'],
  ['Content-Type list: one does not', [['starts-with', '$Content-Type', 'image/']], { 'content-type': 'image/png, text/plain' }, 'AccessDenied: Invalid according to Policy: Policy Condition failed: ["starts-with","$Content-Type","image/"]'],
  ['bucket from the request', [{ bucket: 'bkt' }], {}, 'ok'],
  ['another bucket', [{ bucket: 'other' }], {}, 'AccessDenied: Invalid according to Policy: Policy Condition failed: {"bucket":"other"}'],
  ['extra field', [{ key: 'a' }], { key: 'a', acl: 'private' }, 'AccessDenied: Invalid according to Policy: Extra input fields: acl'],
  ['signature fields and x-ignore- need no condition', [], { policy: 'p', 'x-amz-signature': 's', signature: 's', awsaccesskeyid: 'k', 'x-ignore-go': 'Upload' }, 'ok'],
  ['content-length-range', [['content-length-range', 1, 100]], {}, 'ok 1-100'],
  ['content-length-range as text, two of them: the tightest', [['content-length-range', '10', '100'], ['content-length-range', 0, 50]], {}, 'ok 10-50'],
]

for (const [name, conditions, fields, want] of CASES) {
  test(`checkPostPolicy(): ${name}`, () => assert.is(decide(conditions, fields), want))
}

test('checkPostPolicy() refuses an expired policy', () => {
  assert.is(decide([], {}, Date.parse(EXP) + 1), 'AccessDenied: Invalid according to Policy: Policy expired.')
})

test('parsePostPolicy() refuses a malformed policy with InvalidPolicyDocument', () => {
  const code = (raw: string) => {
    try { parsePostPolicy(raw); return 'ok' } catch (err) { return err instanceof S3Error ? `${err.code}: ${err.message}` : String(err) }
  }
  assert.is(code('%%%'), 'InvalidPolicyDocument: Invalid Policy: Invalid Base64 Encoding.')
  assert.is(code(b64('{not json')), 'InvalidPolicyDocument: Invalid Policy: Invalid JSON.')
  assert.is(code(b64({ conditions: [] })), 'InvalidPolicyDocument: Invalid Policy: Policy missing expiration.')
  assert.is(code(b64({ expiration: EXP })), 'InvalidPolicyDocument: Invalid Policy: Policy missing conditions.')
  assert.match(code(b64({ expiration: 'tomorrow', conditions: [] })), "Invalid 'expiration' value")
  assert.match(code(b64({ expiration: EXP, conditions: [['in', '$key', 'a']] })), 'unknown operation')
  assert.match(code(b64({ expiration: EXP, conditions: [['eq', 'key', 'a']] })), 'Invalid Condition')
  assert.match(code(b64({ expiration: EXP, conditions: [['content-length-range', -1, 5]] })), 'Invalid content-length-range')
  assert.match(code(b64({ expiration: EXP, conditions: [{ key: 5 }] })), 'Invalid Simple-Condition')
  assert.is(code(b64({ expiration: EXP, conditions: [] })), 'ok')
})

test.run()
