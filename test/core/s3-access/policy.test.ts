/**
 * Goal: bucket policies are checked as S3 checks them on PutBucketPolicy and decide requests
 * as IAM's evaluation logic does. Method: tables of documents with the MalformedPolicy
 * message each must get, and of (policy, request) pairs with the decision each must get;
 * then the public/non-public table of S3's "meaning of public".
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { evaluatePolicy, evaluateStoredPolicy, isPublicPolicy, MalformedPolicyError, parsePolicy, type PolicyDecision, type PolicyRequest } from '../../../core/s3-access/policy.ts'
import { globMatches, ipInCidr, parseIp, resolvePattern } from '../../../core/s3-access/policy-conditions.ts'

const B = 'photos'
const BUCKET = `arn:aws:s3:::${B}`
const OBJECTS = `arn:aws:s3:::${B}/*`

/** A policy of one statement; `extra` adds or replaces statement fields. */
function one(extra: Record<string, unknown>, version = '2012-10-17'): string {
  return JSON.stringify({ Version: version, Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: OBJECTS, ...extra }] })
}

const malformed: [string, string, string][] = [
  ['empty document', '', "Policies must be valid JSON and the first byte must be '{'"],
  ['not JSON', 'invalid json', "Policies must be valid JSON and the first byte must be '{'"],
  ['leading space', ' {}', "Policies must be valid JSON and the first byte must be '{'"],
  ['broken JSON', '{"Statement": [', 'This policy contains invalid Json'],
  ['no Statement', '{}', 'Missing required field Statement'],
  ['empty Statement', '{"Statement": []}', 'Could not parse the policy: Statement is empty!'],
  ['bad Version', one({}, '2020-01-01'), 'The policy must contain a valid version string'],
  ['unknown top-level field', JSON.stringify({ Statement: [], Condition: {} }), 'Policy has an invalid field: Condition'],
  ['no Effect', one({ Effect: undefined }), 'Missing required field Effect'],
  ['lower-case Effect', one({ Effect: 'allow' }), 'Invalid effect: allow'],
  ['no Principal', one({ Principal: undefined }), 'Missing required field Principal'],
  ['empty Principal', one({ Principal: {} }), 'Invalid principal in policy'],
  ['unknown principal type', one({ Principal: { Group: 'x' } }), 'Invalid principal in policy'],
  ['partial wildcard principal', one({ Principal: { AWS: 'arn:aws:iam::*:root' } }), 'Invalid principal in policy'],
  ['Principal and NotPrincipal', one({ NotPrincipal: { AWS: 'bob' } }), 'A statement cannot have both Principal and NotPrincipal'],
  ['NotPrincipal with Allow', one({ Principal: undefined, NotPrincipal: { AWS: 'bob' } }), 'NotPrincipal is only allowed with Effect Deny'],
  ['no Action', one({ Action: undefined }), 'Missing required field Action'],
  ['null Action', one({ Action: null }), 'Invalid policy syntax.'],
  ['unknown action', one({ Action: 's3:PutObjectLockConfiguration' }), 'Policy has invalid action'],
  ['non-S3 action', one({ Action: 'iam:PassRole' }), 'Policy has invalid action'],
  ['wildcard naming nothing', one({ Action: 's3:Frobnicate*' }), 'Policy has invalid action'],
  ['empty action list', one({ Action: [] }), 'Invalid policy syntax.'],
  ['no Resource', one({ Resource: undefined }), 'Missing required field Resource'],
  ['Resource *', one({ Resource: '*' }), 'Policy has invalid resource'],
  ['another bucket', one({ Resource: 'arn:aws:s3:::other/*' }), 'Policy has invalid resource'],
  ['not an S3 ARN', one({ Resource: 'arn:aws:sqs:::photos' }), 'Policy has invalid resource'],
  ['object action on the bucket', one({ Resource: BUCKET }), 'Action does not apply to any resource(s) in statement'],
  ['bucket action on objects', one({ Action: 's3:ListBucket' }), 'Action does not apply to any resource(s) in statement'],
  ['account action', one({ Action: 's3:ListAllMyBuckets' }), 'Action does not apply to any resource(s) in statement'],
  ['unknown operator', one({ Condition: { StringEqualz: { 's3:prefix': 'a' } } }), 'Invalid Condition type : StringEqualz'],
  ['mis-cased operator', one({ Condition: { stringequals: { 's3:prefix': 'a' } } }), 'Invalid Condition type : stringequals'],
  ['NullIfExists', one({ Condition: { NullIfExists: { 's3:prefix': 'true' } } }), 'Invalid Condition type : NullIfExists'],
  ['unknown S3 key', one({ Condition: { StringEquals: { 's3:VersionStatus': 'a' } } }), 'Policy has an invalid condition key'],
  ['unknown key prefix', one({ Condition: { StringEquals: { 'ec2:Vpc': 'a' } } }), 'Policy has an invalid condition key'],
  ['bad CIDR', one({ Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.300/8' } } }), 'Invalid IP address in Conditions'],
  ['bad number', one({ Condition: { NumericLessThan: { 's3:max-keys': 'ten' } } }), 'Invalid numeric value in Conditions: ten'],
  ['bad date', one({ Condition: { DateLessThan: { 'aws:CurrentTime': 'tomorrow' } } }), 'Invalid date value in Conditions: tomorrow'],
  ['bad bool', one({ Condition: { Bool: { 'aws:SecureTransport': 'yes' } } }), 'Invalid boolean value in Conditions: yes'],
  ['object condition value', one({ Condition: { StringEquals: { 's3:prefix': { a: 1 } } } }), 'Invalid policy syntax.'],
  ['unknown statement field', one({ Sids: 'x' }), 'Statement has an invalid field: Sids'],
  ['deep nesting', `{"Statement":${'['.repeat(30_000)}${']'.repeat(30_000)}}`, 'Invalid policy syntax.'],
  ['deep nesting in a condition', one({ Condition: { StringEquals: { 's3:prefix': JSON.parse('['.repeat(40) + ']'.repeat(40)) } } }), 'Invalid policy syntax.'],
  ['too large', one({ Action: Array(2000).fill('s3:GetObject') }), 'Normalized policy document exceeds the maximum allowed size of 20480 bytes'],
]

for (const [name, json, message] of malformed) {
  test(`parsePolicy() refuses ${name}: ${message}`, () => {
    try {
      parsePolicy(json, B)
      assert.unreachable('parsed')
    } catch (err) {
      assert.instance(err, MalformedPolicyError)
      assert.is((err as MalformedPolicyError).code, 'MalformedPolicy')
      assert.is((err as Error).message, message)
    }
  })
}

const accepted: [string, string][] = [
  ['AWS sample (2008 version, account ids)', JSON.stringify({ Version: '2008-10-17', Id: 'aaaa-bbbb-cccc-dddd', Statement: [{ Effect: 'Allow', Sid: '1', Principal: { AWS: ['111122223333', '444455556666'] }, Action: ['s3:*'], Resource: `${OBJECTS}` }] })],
  ['no Version, Statement as an object', JSON.stringify({ Statement: { Effect: 'Deny', Principal: { AWS: '*' }, Action: '*', Resource: [BUCKET, OBJECTS] } })],
  ['bucket wildcard ARNs (s3-tests another_bucket)', one({ Action: 's3:*', Resource: ['arn:aws:s3:::*', 'arn:aws:s3:::*/*'] })],
  ['user ARNs and canonical ids', one({ Principal: { AWS: ['arn:aws:iam::alice:root', 'arn:aws:iam::123:user/team/bob'], CanonicalUser: 'carol' } })],
  ['service principal', one({ Principal: { Service: 'cloudfront.amazonaws.com' } })],
  ['every operator family', one({ Condition: {
    StringLike: { 's3:x-amz-acl': 'public*' }, NumericLessThanEquals: { 's3:max-keys': 10 }, DateGreaterThan: { 'aws:CurrentTime': '2020-01-01T00:00:00Z' },
    Bool: { 'aws:SecureTransport': true }, IpAddress: { 'aws:SourceIp': ['10.0.0.0/8', '2001:db8::/32'] }, Null: { 's3:prefix': 'false' },
    ArnLike: { 'aws:SourceArn': 'arn:aws:s3:::*' }, 'ForAnyValue:StringEqualsIgnoreCase': { 'aws:UserAgent': 'x' },
    StringNotEqualsIfExists: { 's3:ExistingObjectTag/security': 'secret' },
  } })],
  ['NotAction and NotResource with Deny', one({ Effect: 'Deny', Action: undefined, NotAction: 's3:GetObject', Resource: undefined, NotResource: OBJECTS })],
  ['mixed-case action', one({ Action: 'S3:getobject' })],
]

for (const [name, json] of accepted) {
  test(`parsePolicy() accepts ${name}`, () => {
    const p = parsePolicy(json, B)
    assert.ok(p.statements.length >= 1)
  })
}

test('parsePolicy() keeps the version, the id and each statement’s parts', () => {
  const p = parsePolicy(JSON.stringify({ Version: '2012-10-17', Id: 'x', Statement: [{ Sid: 's', Effect: 'Deny', NotPrincipal: { AWS: ['alice', 'arn:aws:iam::bob:root'] }, Action: 's3:Get*', Resource: OBJECTS }] }), B)
  assert.is(p.version, '2012-10-17')
  assert.is(p.id, 'x')
  assert.equal(p.statements[0]!.notPrincipal!.users, ['alice', 'bob'])
  assert.equal(p.statements[0]!.actions, ['s3:get*'])
  assert.is(p.statements[0]!.sid, 's')
})

// ---- evaluation -------------------------------------------------------------------------

const obj = (key: string) => `${BUCKET}/${key}`
type Case = [name: string, statements: Record<string, unknown>[], request: Partial<PolicyRequest>, decision: PolicyDecision, version?: string]

const get = (extra: Partial<PolicyRequest> = {}): Partial<PolicyRequest> => ({ principal: 'bob', action: 's3:GetObject', resource: obj('a.txt'), ...extra })
const allow = (extra: Record<string, unknown> = {}) => ({ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: OBJECTS, ...extra })
const deny = (extra: Record<string, unknown> = {}) => ({ ...allow(extra), Effect: 'Deny', ...extra })
const cond = (c: Record<string, unknown>) => allow({ Condition: c })

const cases: Case[] = [
  // Principal
  ['* allows anonymous', [allow()], get({ principal: undefined }), 'Allow'],
  ['{AWS: *} allows anonymous', [allow({ Principal: { AWS: '*' } })], get({ principal: undefined }), 'Allow'],
  ['named user allowed', [allow({ Principal: { AWS: 'bob' } })], get(), 'Allow'],
  ['root ARN names the user', [allow({ Principal: { AWS: 'arn:aws:iam::bob:root' } })], get(), 'Allow'],
  ['IAM user ARN names the user', [allow({ Principal: { AWS: 'arn:aws:iam::111122223333:user/bob' } })], get(), 'Allow'],
  ['canonical user', [allow({ Principal: { CanonicalUser: 'bob' } })], get(), 'Allow'],
  ['other user not allowed', [allow({ Principal: { AWS: 'alice' } })], get(), 'NotApplicable'],
  ['named user does not cover anonymous', [allow({ Principal: { AWS: 'bob' } })], get({ principal: undefined }), 'NotApplicable'],
  ['service principal never matches', [allow({ Principal: { Service: 's3.amazonaws.com' } })], get(), 'NotApplicable'],
  ['NotPrincipal denies everyone else', [deny({ Principal: undefined, NotPrincipal: { AWS: 'alice' } })], get(), 'Deny'],
  ['NotPrincipal spares the named', [deny({ Principal: undefined, NotPrincipal: { AWS: 'bob' } })], get(), 'NotApplicable'],
  ['NotPrincipal covers anonymous', [deny({ Principal: undefined, NotPrincipal: { AWS: 'bob' } })], get({ principal: undefined }), 'Deny'],
  // Action
  ['action case-insensitive', [allow({ Action: 'S3:GETOBJECT' })], get(), 'Allow'],
  ['action wildcard', [allow({ Action: 's3:Get*' })], get(), 'Allow'],
  ['action ? wildcard', [allow({ Action: 's3:GetObjec?' })], get(), 'Allow'],
  ['action *', [allow({ Action: '*' })], get(), 'Allow'],
  ['other action', [allow({ Action: 's3:PutObject' })], get(), 'NotApplicable'],
  ['NotAction excludes', [allow({ Action: undefined, NotAction: 's3:GetObject' })], get(), 'NotApplicable'],
  ['NotAction covers the rest', [allow({ Action: undefined, NotAction: 's3:PutObject' })], get(), 'Allow'],
  // Resource
  ['prefix wildcard', [allow({ Resource: `${BUCKET}/public/*` })], get({ resource: obj('public/a') }), 'Allow'],
  ['prefix wildcard, other key', [allow({ Resource: `${BUCKET}/public/*` })], get({ resource: obj('private/a') }), 'NotApplicable'],
  ['* spans slashes (IAM example)', [allow({ Resource: `${BUCKET}/*/test/*` })], get({ resource: obj('1///test///object.jpg') }), 'Allow'],
  ['IAM example non-match', [allow({ Resource: `${BUCKET}/*/test/*` })], get({ resource: obj('1-test/object.jpg') }), 'NotApplicable'],
  ['resource case-sensitive', [allow({ Resource: `${BUCKET}/Public/*` })], get({ resource: obj('public/a') }), 'NotApplicable'],
  ['bucket ARN is not its objects', [allow({ Action: 's3:*', Resource: BUCKET })], get(), 'NotApplicable'],
  ['NotResource', [deny({ Resource: undefined, NotResource: `${BUCKET}/public/*` })], get({ resource: obj('secret') }), 'Deny'],
  ['any-bucket ARN', [allow({ Resource: 'arn:aws:s3:::*/*' })], get(), 'Allow'],
  ['${aws:username} in resource', [allow({ Principal: { AWS: 'bob' }, Resource: `${BUCKET}/home/\${aws:username}/*` })], get({ resource: obj('home/bob/x'), conditions: { 'aws:username': 'bob' } }), 'Allow'],
  ['${aws:username} of another', [allow({ Principal: { AWS: 'bob' }, Resource: `${BUCKET}/home/\${aws:username}/*` })], get({ resource: obj('home/alice/x'), conditions: { 'aws:username': 'bob' } }), 'NotApplicable'],
  ['variable without value matches nothing', [allow({ Resource: `${BUCKET}/home/\${aws:username}/*` })], get({ resource: obj('home//x') }), 'NotApplicable'],
  ['variable default', [allow({ Resource: `${BUCKET}/home/\${aws:username, 'guest'}/*` })], get({ resource: obj('home/guest/x'), principal: undefined }), 'Allow'],
  ['${*} is a literal star', [allow({ Resource: `${BUCKET}/a\${*}` })], get({ resource: obj('ab') }), 'NotApplicable'],
  ['${*} matches a star', [allow({ Resource: `${BUCKET}/a\${*}` })], get({ resource: obj('a*') }), 'Allow'],
  ['2008 version: variables are literal', [allow({ Resource: `${BUCKET}/home/\${aws:username}/*` })], get({ resource: obj('home/bob/x'), conditions: { 'aws:username': 'bob' } }), 'NotApplicable', '2008-10-17'],
  // Deny wins
  ['Deny beats Allow', [allow(), deny()], get(), 'Deny'],
  ['Deny first beats Allow', [deny(), allow()], get(), 'Deny'],
  ['Deny elsewhere does not apply', [allow(), deny({ Resource: `${BUCKET}/secret/*` })], get(), 'Allow'],
  ['nothing applies', [allow({ Action: 's3:PutObject' })], get(), 'NotApplicable'],
  // String conditions
  ['StringEquals match', [cond({ StringEquals: { 's3:x-amz-acl': 'private' } })], get({ conditions: { 's3:x-amz-acl': 'private' } }), 'Allow'],
  ['StringEquals case-sensitive', [cond({ StringEquals: { 's3:x-amz-acl': 'Private' } })], get({ conditions: { 's3:x-amz-acl': 'private' } }), 'NotApplicable'],
  ['StringEquals no wildcards', [cond({ StringEquals: { 's3:prefix': 'a*' } })], get({ conditions: { 's3:prefix': 'ab' } }), 'NotApplicable'],
  ['StringEquals values ORed', [cond({ StringEquals: { 's3:x-amz-acl': ['private', 'public-read'] } })], get({ conditions: { 's3:x-amz-acl': 'public-read' } }), 'Allow'],
  ['key names case-insensitive', [cond({ StringEquals: { 'S3:X-AMZ-ACL': 'private' } })], get({ conditions: { 's3:x-amz-acl': 'private' } }), 'Allow'],
  ['StringEquals key absent', [cond({ StringEquals: { 's3:x-amz-acl': 'private' } })], get(), 'NotApplicable'],
  ['StringNotEquals key absent is true', [cond({ StringNotEquals: { 's3:x-amz-acl': 'private' } })], get(), 'Allow'],
  ['StringNotEquals values NORed', [cond({ StringNotEquals: { 's3:x-amz-acl': ['private', 'public-read'] } })], get({ conditions: { 's3:x-amz-acl': 'public-read' } }), 'NotApplicable'],
  ['StringNotEquals other value', [cond({ StringNotEquals: { 's3:x-amz-acl': ['private'] } })], get({ conditions: { 's3:x-amz-acl': 'public-read' } }), 'Allow'],
  ['StringEqualsIgnoreCase', [cond({ StringEqualsIgnoreCase: { 's3:x-amz-acl': 'PRIVATE' } })], get({ conditions: { 's3:x-amz-acl': 'private' } }), 'Allow'],
  ['StringNotEqualsIgnoreCase', [cond({ StringNotEqualsIgnoreCase: { 's3:x-amz-acl': 'PRIVATE' } })], get({ conditions: { 's3:x-amz-acl': 'private' } }), 'NotApplicable'],
  ['StringLike *', [cond({ StringLike: { 's3:prefix': 'home/*' } })], get({ conditions: { 's3:prefix': 'home/bob/' } }), 'Allow'],
  ['StringLike ?', [cond({ StringLike: { 's3:prefix': 'a?c' } })], get({ conditions: { 's3:prefix': 'abc' } }), 'Allow'],
  ['StringLike no match', [cond({ StringLike: { 's3:prefix': 'home/*' } })], get({ conditions: { 's3:prefix': 'etc/' } }), 'NotApplicable'],
  ['StringNotLike', [deny({ Condition: { StringNotLike: { 's3:prefix': 'home/*' } } })], get({ conditions: { 's3:prefix': 'etc/' } }), 'Deny'],
  ['Deny StringLike public* refuses public-read (s3-tests)', [allow({ Action: 's3:PutObject' }), deny({ Action: 's3:PutObject', Condition: { StringLike: { 's3:x-amz-acl': 'public*' } } })], get({ action: 's3:PutObject', conditions: { 's3:x-amz-acl': 'public-read' } }), 'Deny'],
  ['string condition with variable', [cond({ StringEquals: { 's3:prefix': 'home/${aws:username}/' } })], get({ conditions: { 's3:prefix': 'home/bob/', 'aws:username': 'bob' } }), 'Allow'],
  ['string variable without value: StringNotEquals matches', [cond({ StringNotEquals: { 's3:prefix': '${aws:username}' } })], get({ conditions: { 's3:prefix': 'x' } }), 'Allow'],
  ['ExistingObjectTag', [cond({ StringEquals: { 's3:ExistingObjectTag/security': 'public' } })], get({ conditions: { 's3:ExistingObjectTag/security': 'public' } }), 'Allow'],
  ['ExistingObjectTag other value', [cond({ StringEquals: { 's3:ExistingObjectTag/security': 'public' } })], get({ conditions: { 's3:ExistingObjectTag/security': 'secret' } }), 'NotApplicable'],
  // IfExists, Null
  ['IfExists with key absent', [cond({ StringEqualsIfExists: { 's3:x-amz-acl': 'private' } })], get(), 'Allow'],
  ['IfExists with key present, no match', [cond({ StringEqualsIfExists: { 's3:x-amz-acl': 'private' } })], get({ conditions: { 's3:x-amz-acl': 'public-read' } }), 'NotApplicable'],
  ['Null true, key absent', [cond({ Null: { 's3:x-amz-acl': 'true' } })], get(), 'Allow'],
  ['Null true, key present', [cond({ Null: { 's3:x-amz-acl': 'true' } })], get({ conditions: { 's3:x-amz-acl': 'private' } }), 'NotApplicable'],
  ['Null false, key present', [cond({ Null: { 's3:x-amz-acl': false } })], get({ conditions: { 's3:x-amz-acl': 'private' } }), 'Allow'],
  ['undefined context value is absent', [cond({ Null: { 's3:x-amz-acl': 'true' } })], get({ conditions: { 's3:x-amz-acl': undefined } }), 'Allow'],
  // Numeric
  ['NumericLessThanEquals', [cond({ NumericLessThanEquals: { 's3:max-keys': '10' } })], get({ conditions: { 's3:max-keys': '10' } }), 'Allow'],
  ['NumericLessThan', [cond({ NumericLessThan: { 's3:max-keys': 10 } })], get({ conditions: { 's3:max-keys': '10' } }), 'NotApplicable'],
  ['NumericGreaterThan', [cond({ NumericGreaterThan: { 's3:max-keys': '10' } })], get({ conditions: { 's3:max-keys': '11' } }), 'Allow'],
  ['NumericGreaterThanEquals', [cond({ NumericGreaterThanEquals: { 's3:max-keys': '10.5' } })], get({ conditions: { 's3:max-keys': '10' } }), 'NotApplicable'],
  ['NumericEquals', [cond({ NumericEquals: { 's3:max-keys': '10' } })], get({ conditions: { 's3:max-keys': '10.0' } }), 'Allow'],
  ['NumericNotEquals', [cond({ NumericNotEquals: { 's3:max-keys': '10' } })], get({ conditions: { 's3:max-keys': '10' } }), 'NotApplicable'],
  ['Numeric on non-number request value', [cond({ NumericLessThan: { 's3:max-keys': '10' } })], get({ conditions: { 's3:max-keys': 'abc' } }), 'NotApplicable'],
  // Date
  ['DateLessThan', [cond({ DateLessThan: { 'aws:CurrentTime': '2030-01-01T00:00:00Z' } })], get({ conditions: { 'aws:CurrentTime': '2026-12-03T18:00:00Z' } }), 'Allow'],
  ['DateGreaterThan', [cond({ DateGreaterThan: { 'aws:CurrentTime': '2030-01-01T00:00:00Z' } })], get({ conditions: { 'aws:CurrentTime': '2026-12-03T18:00:00Z' } }), 'NotApplicable'],
  ['Date epoch seconds', [cond({ DateGreaterThanEquals: { 'aws:EpochTime': '1700000000' } })], get({ conditions: { 'aws:EpochTime': '1800000000' } }), 'Allow'],
  ['Date epoch policy, ISO request', [cond({ DateLessThan: { 'aws:CurrentTime': 1893456000 } })], get({ conditions: { 'aws:CurrentTime': '2026-12-03T18:00:00Z' } }), 'Allow'],
  ['DateEquals', [cond({ DateEquals: { 'aws:CurrentTime': '2026-12-03' } })], get({ conditions: { 'aws:CurrentTime': '2026-12-03T00:00:00Z' } }), 'Allow'],
  ['DateNotEquals', [cond({ DateNotEquals: { 'aws:CurrentTime': '2026-12-03' } })], get({ conditions: { 'aws:CurrentTime': '2026-12-03T00:00:00Z' } }), 'NotApplicable'],
  ['DateLessThanEquals', [cond({ DateLessThanEquals: { 'aws:CurrentTime': '2026-12-03T00:00:00Z' } })], get({ conditions: { 'aws:CurrentTime': '2026-12-03T00:00:00Z' } }), 'Allow'],
  // Bool
  ['Bool SecureTransport false denies', [allow(), deny({ Condition: { Bool: { 'aws:SecureTransport': 'false' } } })], get({ conditions: { 'aws:SecureTransport': 'false' } }), 'Deny'],
  ['Bool SecureTransport true passes', [allow(), deny({ Condition: { Bool: { 'aws:SecureTransport': 'false' } } })], get({ conditions: { 'aws:SecureTransport': 'true' } }), 'Allow'],
  ['Bool is case-insensitive', [cond({ Bool: { 'aws:SecureTransport': 'TRUE' } })], get({ conditions: { 'aws:SecureTransport': 'true' } }), 'Allow'],
  // IP
  ['IpAddress in CIDR', [cond({ IpAddress: { 'aws:SourceIp': '192.0.2.0/24' } })], get({ conditions: { 'aws:SourceIp': '192.0.2.77' } }), 'Allow'],
  ['IpAddress outside CIDR', [cond({ IpAddress: { 'aws:SourceIp': '192.0.2.0/24' } })], get({ conditions: { 'aws:SourceIp': '192.0.3.1' } }), 'NotApplicable'],
  ['IpAddress bare address is /32', [cond({ IpAddress: { 'aws:SourceIp': '192.0.2.1' } })], get({ conditions: { 'aws:SourceIp': '192.0.2.1' } }), 'Allow'],
  ['IpAddress IPv4-mapped client', [cond({ IpAddress: { 'aws:SourceIp': '127.0.0.0/8' } })], get({ conditions: { 'aws:SourceIp': '::ffff:127.0.0.1' } }), 'Allow'],
  ['IpAddress IPv6', [cond({ IpAddress: { 'aws:SourceIp': '2001:db8::/32' } })], get({ conditions: { 'aws:SourceIp': '2001:db8:1::5' } }), 'Allow'],
  ['IpAddress IPv6 outside', [cond({ IpAddress: { 'aws:SourceIp': '2001:db8::/32' } })], get({ conditions: { 'aws:SourceIp': '2001:db9::5' } }), 'NotApplicable'],
  ['IpAddress families differ', [cond({ IpAddress: { 'aws:SourceIp': '0.0.0.0/0' } })], get({ conditions: { 'aws:SourceIp': '2001:db8::1' } }), 'NotApplicable'],
  ['NotIpAddress denies outsiders', [allow(), deny({ Condition: { NotIpAddress: { 'aws:SourceIp': ['10.0.0.0/8', '192.168.0.0/16'] } } })], get({ conditions: { 'aws:SourceIp': '203.0.113.9' } }), 'Deny'],
  ['NotIpAddress spares insiders', [allow(), deny({ Condition: { NotIpAddress: { 'aws:SourceIp': ['10.0.0.0/8', '192.168.0.0/16'] } } })], get({ conditions: { 'aws:SourceIp': '192.168.1.2' } }), 'Allow'],
  // ARN
  ['ArnLike per part', [cond({ ArnLike: { 'aws:SourceArn': 'arn:aws:s3:::photos*' } })], get({ conditions: { 'aws:SourceArn': 'arn:aws:s3:::photos-logs' } }), 'Allow'],
  ['ArnLike no match', [cond({ ArnLike: { 'aws:SourceArn': 'arn:aws:s3:::photos*' } })], get({ conditions: { 'aws:SourceArn': 'arn:aws:sqs:::photos' } }), 'NotApplicable'],
  ['ArnEquals', [cond({ ArnEquals: { 'aws:SourceArn': 'arn:aws:s3:::photos' } })], get({ conditions: { 'aws:SourceArn': 'arn:aws:s3:::photos' } }), 'Allow'],
  ['ArnNotLike', [cond({ ArnNotLike: { 'aws:SourceArn': 'arn:aws:s3:::photos*' } })], get({ conditions: { 'aws:SourceArn': 'arn:aws:s3:::other' } }), 'Allow'],
  ['Arn request not an ARN', [cond({ ArnLike: { 'aws:SourceArn': 'arn:aws:s3:::*' } })], get({ conditions: { 'aws:SourceArn': 'photos' } }), 'NotApplicable'],
  // Several conditions are ANDed
  ['two operators both hold', [cond({ StringEquals: { 's3:x-amz-acl': 'private' }, IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } })], get({ conditions: { 's3:x-amz-acl': 'private', 'aws:SourceIp': '10.1.1.1' } }), 'Allow'],
  ['two operators, one fails', [cond({ StringEquals: { 's3:x-amz-acl': 'private' }, IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } })], get({ conditions: { 's3:x-amz-acl': 'private', 'aws:SourceIp': '11.1.1.1' } }), 'NotApplicable'],
  ['two keys under one operator ANDed', [cond({ StringEquals: { 's3:x-amz-acl': 'private', 's3:prefix': 'a' } })], get({ conditions: { 's3:x-amz-acl': 'private', 's3:prefix': 'b' } }), 'NotApplicable'],
  // Set qualifiers
  ['ForAllValues all in set', [cond({ 'ForAllValues:StringEquals': { 's3:RequestObjectTagKeys': ['a', 'b'] } })], get({ conditions: { 's3:RequestObjectTagKeys': ['a', 'b'] } }), 'Allow'],
  ['ForAllValues one outside', [cond({ 'ForAllValues:StringEquals': { 's3:RequestObjectTagKeys': ['a', 'b'] } })], get({ conditions: { 's3:RequestObjectTagKeys': ['a', 'c'] } }), 'NotApplicable'],
  ['ForAllValues key absent is true', [cond({ 'ForAllValues:StringEquals': { 's3:RequestObjectTagKeys': ['a'] } })], get(), 'Allow'],
  ['ForAllValues empty list is absent', [cond({ 'ForAllValues:StringEquals': { 's3:RequestObjectTagKeys': ['a'] } })], get({ conditions: { 's3:RequestObjectTagKeys': [] } }), 'Allow'],
  ['ForAnyValue one in set', [cond({ 'ForAnyValue:StringEquals': { 's3:RequestObjectTagKeys': ['a'] } })], get({ conditions: { 's3:RequestObjectTagKeys': ['x', 'a'] } }), 'Allow'],
  ['ForAnyValue key absent is false', [cond({ 'ForAnyValue:StringEquals': { 's3:RequestObjectTagKeys': ['a'] } })], get(), 'NotApplicable'],
  ['ForAnyValue:StringNotEquals', [cond({ 'ForAnyValue:StringNotEquals': { 's3:RequestObjectTagKeys': ['a'] } })], get({ conditions: { 's3:RequestObjectTagKeys': ['a', 'b'] } }), 'Allow'],
  ['ForAllValues:StringNotEquals', [cond({ 'ForAllValues:StringNotEquals': { 's3:RequestObjectTagKeys': ['a'] } })], get({ conditions: { 's3:RequestObjectTagKeys': ['a', 'b'] } }), 'NotApplicable'],
  // Listing with s3:prefix (s3-tests head_object_404_with_policy_prefix)
  ['ListBucket with prefix', [allow({ Action: 's3:ListBucket', Resource: BUCKET, Condition: { StringLike: { 's3:prefix': 'public/*' } } })], { principal: 'bob', action: 's3:ListBucket', resource: BUCKET, conditions: { 's3:prefix': 'public/object' } }, 'Allow'],
  ['ListBucket other prefix', [allow({ Action: 's3:ListBucket', Resource: BUCKET, Condition: { StringLike: { 's3:prefix': 'public/*' } } })], { principal: 'bob', action: 's3:ListBucket', resource: BUCKET, conditions: { 's3:prefix': 'private/object' } }, 'NotApplicable'],
]

for (const [name, statements, request, decision, version] of cases) {
  test(`evaluatePolicy(): ${name} -> ${decision}`, () => {
    const policy = parsePolicy(JSON.stringify({ Version: version ?? '2012-10-17', Statement: statements }), B)
    const req: PolicyRequest = { principal: undefined, action: 's3:GetObject', resource: obj('a.txt'), conditions: {}, ...request }
    assert.is(evaluatePolicy(policy, req), decision)
  })
}

// ---- public -----------------------------------------------------------------------------

const publicCases: [string, Record<string, unknown>[], boolean][] = [
  ['Allow to *', [allow()], true],
  ['Allow to {AWS: *}', [allow({ Principal: { AWS: '*' } })], true],
  ['Allow to a user', [allow({ Principal: { AWS: 'bob' } })], false],
  ['Deny to *', [deny()], false],
  ['Allow to * within a /24 (s3-tests: 10.0.0.0/32)', [cond({ IpAddress: { 'aws:SourceIp': '10.0.0.0/32' } })], false],
  ['Allow to * within a /8', [cond({ IpAddress: { 'aws:SourceIp': '10.0.0.0/8' } })], false],
  ['Allow to * within a /7', [cond({ IpAddress: { 'aws:SourceIp': '10.0.0.0/7' } })], true],
  ['Allow to * within 0.0.0.0/0', [cond({ IpAddress: { 'aws:SourceIp': '0.0.0.0/0' } })], true],
  ['Allow to * within an IPv6 /32', [cond({ IpAddress: { 'aws:SourceIp': '2001:db8::/32' } })], false],
  ['Allow to * within an IPv6 /16', [cond({ IpAddress: { 'aws:SourceIp': '2001::/16' } })], true],
  ['Allow to * outside a range (NotIpAddress)', [cond({ NotIpAddress: { 'aws:SourceIp': '10.0.0.0/8' } })], true],
  ['Allow to * for a fixed aws:SourceAccount', [cond({ StringEquals: { 'aws:SourceAccount': '111122223333' } })], false],
  ['Allow to * for a wildcard aws:SourceArn', [cond({ ArnLike: { 'aws:SourceArn': 'arn:aws:s3:::*' } })], true],
  ['Allow to * for a fixed aws:SourceArn', [cond({ ArnLike: { 'aws:SourceArn': 'arn:aws:s3:::logs' } })], false],
  ['Allow to * for a fixed aws:username', [cond({ StringEquals: { 'aws:username': 'bob' } })], false],
  ['Allow to * with IfExists', [cond({ StringEqualsIfExists: { 'aws:SourceAccount': '111122223333' } })], true],
  ['Allow to * on a condition that confines nothing', [cond({ Bool: { 'aws:SecureTransport': 'true' } })], true],
  ['Allow to * for an AROLEID:* user id', [cond({ StringLike: { 'aws:userid': 'AROLEID:*' } })], true],
  ['one public statement among private ones', [allow({ Principal: { AWS: 'bob' } }), allow()], true],
]

for (const [name, statements, expected] of publicCases) {
  test(`isPublicPolicy(): ${name} -> ${expected}`, () => {
    assert.is(isPublicPolicy(parsePolicy(JSON.stringify({ Version: '2012-10-17', Statement: statements }), B)), expected)
  })
}

test('evaluateStoredPolicy() decides as evaluatePolicy and tells whether the document is public, parse remembered within its bound', () => {
  const document = JSON.stringify({ Version: '2012-10-17', Statement: [allow(), deny({ Resource: `${BUCKET}/secret/*` })] })
  const req = (key: string): PolicyRequest => ({ principal: undefined, action: 's3:GetObject', resource: obj(key), conditions: {} })
  assert.equal(evaluateStoredPolicy(document, B, req('a')), { effect: 'Allow', isPublic: true })
  assert.equal(evaluateStoredPolicy(document, B, req('secret/a')), { effect: 'Deny', isPublic: true })
  // More documents than the cache holds: each still decided from its own text.
  for (let i = 0; i < 300; i++) {
    const d = JSON.stringify({ Statement: [allow({ Principal: { AWS: `user${i}` } })] })
    assert.is(evaluateStoredPolicy(d, B, { ...req('a'), principal: `user${i}` }).effect, 'Allow')
  }
  assert.equal(evaluateStoredPolicy(document, B, req('a')), { effect: 'Allow', isPublic: true })
  assert.throws(() => evaluateStoredPolicy('{}', B, req('a')), (e: unknown) => e instanceof MalformedPolicyError)
})

// ---- helpers ----------------------------------------------------------------------------

test('globMatches() backtracks over several stars and matches whole strings only', () => {
  const g = (p: string) => resolvePattern({ raw: p, variables: false }, new Map(), true)!
  assert.ok(globMatches(g('a*b*c'), 'axxbyyc'))
  assert.ok(globMatches(g('a*b*c'), 'abbbc'))
  assert.not.ok(globMatches(g('a*b*c'), 'abcd'))
  assert.ok(globMatches(g('*'), ''))
  assert.not.ok(globMatches(g('?'), ''))
  assert.ok(globMatches(g('é?'), 'éü'))
  // A long key against many stars stays fast (no exponential backtracking).
  const started = performance.now()
  assert.not.ok(globMatches(g('*a*a*a*a*a*a*a*a*b'), 'a'.repeat(1024)))
  assert.ok(performance.now() - started < 500)
})

test('parseIp() and ipInCidr() handle IPv4, IPv6 and IPv4-mapped forms', () => {
  assert.is(parseIp('10.0.0.1')!.bits, 32)
  assert.is(parseIp('::1')!.value, 1n)
  assert.is(parseIp('::ffff:10.0.0.1')!.bits, 32)
  assert.is(parseIp('1:2:3:4:5:6:7:8')!.bits, 128)
  assert.is(parseIp('1:2:3:4:5:6:7'), undefined)
  assert.is(parseIp('1::2::3'), undefined)
  assert.is(parseIp('256.0.0.1'), undefined)
  assert.is(parseIp('::1.2.3.4')!.value, 0x01020304n)
  assert.ok(ipInCidr('10.255.0.1', '10.0.0.0/8'))
  assert.not.ok(ipInCidr('11.0.0.1', '10.0.0.0/8'))
  assert.ok(ipInCidr('2001:db8::1', '2001:db8::/64'))
})

test.run()
