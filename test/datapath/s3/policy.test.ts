/**
 * Goal: bucket policies and Block Public Access behave as S3's calls do: Put/Get/Delete
 * BucketPolicy (the document kept as sent, NoSuchBucketPolicy without one, MalformedPolicy
 * for a bad one, which changes nothing), GetBucketPolicyStatus, Put/Get/Delete
 * PublicAccessBlock (NoSuchPublicAccessBlockConfiguration), BlockPublicPolicy refusing a
 * public policy and BlockPublicAcls refusing public ACLs; only the bucket's owner may call
 * them. Method: a real gateway over a mini cluster, driven with @aws-sdk/client-s3 as alice
 * (the owner) and bob, and with the aws CLI (botocore's parsing of the answers).
 */
import { test } from 'uvu'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import {
  CreateBucketCommand, DeleteBucketCommand, DeleteBucketPolicyCommand, DeletePublicAccessBlockCommand, GetBucketPolicyCommand, GetBucketPolicyStatusCommand,
  GetPublicAccessBlockCommand, PutBucketPolicyCommand, PutPublicAccessBlockCommand, type S3Client, type S3ServiceException,
} from '@aws-sdk/client-s3'
import { ALL_USERS_GROUP, AUTHENTICATED_USERS_GROUP, type S3Acl } from '../../../core/s3-access/model.ts'
import type { BucketInfo } from '../../../datapath/client/index.ts'
import { checkPublicAclAllowed } from '../../../datapath/s3/policy.ts'
import { S3Error } from '../../../datapath/s3/errors.ts'
import { errorOf, signedRequest, startS3Cluster, type S3TestCluster, s3Client } from './s3-cluster.ts'

let env: S3TestCluster
let s3: S3Client
let bobS3: S3Client
const B = 'policies'

/** The S3 error code, status and message a call fails with. */
async function failure(p: Promise<unknown>): Promise<{ name: string; status?: number; message: string }> {
  try {
    await p
  } catch (err) {
    const e = err as S3ServiceException
    return { name: e.name, status: e.$metadata?.httpStatusCode, message: e.message }
  }
  return { name: 'OK', message: '' }
}

const statement = (extra: Record<string, unknown> = {}) => ({ Effect: 'Allow', Principal: { AWS: 'bob' }, Action: 's3:GetObject', Resource: `arn:aws:s3:::${B}/*`, ...extra })
const doc = (...statements: Record<string, unknown>[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements }, null, 2)
const PRIVATE = doc(statement())
const PUBLIC = doc(statement({ Principal: '*' }))

test.before(async () => {
  env = await startS3Cluster()
  s3 = s3Client(env)
  bobS3 = s3Client(env, env.bob)
  await s3.send(new CreateBucketCommand({ Bucket: B }))
})

test.after(async () => {
  await env.dispose()
})

test('GetBucketPolicy and GetBucketPolicyStatus answer NoSuchBucketPolicy (404) before any policy', async () => {
  const get = await failure(s3.send(new GetBucketPolicyCommand({ Bucket: B })))
  assert.equal([get.name, get.status], ['NoSuchBucketPolicy', 404])
  const status = await failure(s3.send(new GetBucketPolicyStatusCommand({ Bucket: B })))
  assert.equal([status.name, status.status], ['NoSuchBucketPolicy', 404])
})

test('PutBucketPolicy answers 204; GetBucketPolicy gives the document back as sent', async () => {
  const put = await s3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: PRIVATE }))
  assert.is(put.$metadata.httpStatusCode, 204)
  const got = await s3.send(new GetBucketPolicyCommand({ Bucket: B }))
  assert.is(got.Policy, PRIVATE)
})

test('GetBucketPolicyStatus tells a policy for a named user from one for everyone', async () => {
  assert.is((await s3.send(new GetBucketPolicyStatusCommand({ Bucket: B }))).PolicyStatus?.IsPublic, false)
  await s3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: PUBLIC }))
  assert.is((await s3.send(new GetBucketPolicyStatusCommand({ Bucket: B }))).PolicyStatus?.IsPublic, true)
  const confined = doc(statement({ Principal: '*', Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/32' } } }))
  await s3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: confined }))
  assert.is((await s3.send(new GetBucketPolicyStatusCommand({ Bucket: B }))).PolicyStatus?.IsPublic, false)
  await s3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: PRIVATE }))
})

const malformed: [string, string, string][] = [
  ['not JSON', 'invalid json', "Policies must be valid JSON and the first byte must be '{'"],
  ['broken JSON', '{"Statement": [', 'This policy contains invalid Json'],
  ['no Statement', '{}', 'Missing required field Statement'],
  ['another bucket', doc(statement({ Resource: 'arn:aws:s3:::elsewhere/*' })), 'Policy has invalid resource'],
  ['an unknown action', doc(statement({ Action: 's3:Fly' })), 'Policy has invalid action'],
  ['an object action on the bucket', doc(statement({ Resource: `arn:aws:s3:::${B}` })), 'Action does not apply to any resource(s) in statement'],
  ['an invalid principal', doc(statement({ Principal: { Group: 'x' } })), 'Invalid principal in policy'],
  ['an unknown condition operator', doc(statement({ Condition: { StringIs: { 's3:prefix': 'a' } } })), 'Invalid Condition type : StringIs'],
  ['too large a document', doc(statement({ Action: Array(2000).fill('s3:GetObject') })), 'Normalized policy document exceeds the maximum allowed size of 20480 bytes'],
  ['too large a body', `{"Statement": [${' '.repeat(40_000)}]}`, 'Normalized policy document exceeds the maximum allowed size of 20480 bytes'],
]

for (const [name, policy, message] of malformed) {
  test(`PutBucketPolicy with ${name} answers MalformedPolicy (400) and keeps the policy`, async () => {
    const e = await failure(s3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: policy })))
    assert.equal([e.name, e.status, e.message], ['MalformedPolicy', 400, message])
    assert.is((await s3.send(new GetBucketPolicyCommand({ Bucket: B }))).Policy, PRIVATE)
  })
}

test('only the owner may put, get or delete a bucket policy; a missing bucket is NoSuchBucket', async () => {
  for (const call of [
    () => bobS3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: PUBLIC })),
    () => bobS3.send(new GetBucketPolicyCommand({ Bucket: B })),
    () => bobS3.send(new DeleteBucketPolicyCommand({ Bucket: B })),
    () => bobS3.send(new GetBucketPolicyStatusCommand({ Bucket: B })),
    () => bobS3.send(new PutPublicAccessBlockCommand({ Bucket: B, PublicAccessBlockConfiguration: {} })),
    () => bobS3.send(new GetPublicAccessBlockCommand({ Bucket: B })),
    () => bobS3.send(new DeletePublicAccessBlockCommand({ Bucket: B })),
  ]) {
    const e = await errorOf(call())
    assert.equal([e.name, e.status], ['AccessDenied', 403])
  }
  assert.is((await s3.send(new GetBucketPolicyCommand({ Bucket: B }))).Policy, PRIVATE)
  const missing = await errorOf(s3.send(new GetBucketPolicyCommand({ Bucket: 'no-such-bucket' })))
  assert.equal([missing.name, missing.status], ['NoSuchBucket', 404])
})

test('DeleteBucketPolicy answers 204, with a policy and without one', async () => {
  const del = await s3.send(new DeleteBucketPolicyCommand({ Bucket: B }))
  assert.is(del.$metadata.httpStatusCode, 204)
  assert.is((await errorOf(s3.send(new GetBucketPolicyCommand({ Bucket: B })))).name, 'NoSuchBucketPolicy')
  const again = await s3.send(new DeleteBucketPolicyCommand({ Bucket: B }))
  assert.is(again.$metadata.httpStatusCode, 204)
})

test('GetPublicAccessBlock answers NoSuchPublicAccessBlockConfiguration (404) before any is set', async () => {
  const e = await errorOf(s3.send(new GetPublicAccessBlockCommand({ Bucket: B })))
  assert.equal([e.name, e.status], ['NoSuchPublicAccessBlockConfiguration', 404])
})

test('PutPublicAccessBlock keeps the four flags, those left out false', async () => {
  await s3.send(new PutPublicAccessBlockCommand({ Bucket: B, PublicAccessBlockConfiguration: { BlockPublicPolicy: true, IgnorePublicAcls: true } }))
  const got = await s3.send(new GetPublicAccessBlockCommand({ Bucket: B }))
  assert.equal(got.PublicAccessBlockConfiguration, { BlockPublicAcls: false, IgnorePublicAcls: true, BlockPublicPolicy: true, RestrictPublicBuckets: false })
})

test('BlockPublicPolicy refuses a public policy (AccessDenied) and takes a private one', async () => {
  const e = await errorOf(s3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: PUBLIC })))
  assert.equal([e.name, e.status], ['AccessDenied', 403])
  assert.is((await errorOf(s3.send(new GetBucketPolicyCommand({ Bucket: B })))).name, 'NoSuchBucketPolicy')
  await s3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: PRIVATE }))
  assert.is((await s3.send(new GetBucketPolicyCommand({ Bucket: B }))).Policy, PRIVATE)
})

test('DeletePublicAccessBlock answers 204 and lifts the block', async () => {
  const del = await s3.send(new DeletePublicAccessBlockCommand({ Bucket: B }))
  assert.is(del.$metadata.httpStatusCode, 204)
  assert.is((await errorOf(s3.send(new GetPublicAccessBlockCommand({ Bucket: B })))).name, 'NoSuchPublicAccessBlockConfiguration')
  await s3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: PUBLIC }))
  assert.is((await s3.send(new GetBucketPolicyStatusCommand({ Bucket: B }))).PolicyStatus?.IsPublic, true)
  await s3.send(new DeleteBucketPolicyCommand({ Bucket: B }))
})

test('PutPublicAccessBlock with a flag that is not a boolean answers MalformedXML and changes nothing', async () => {
  const body = '<PublicAccessBlockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><BlockPublicAcls>maybe</BlockPublicAcls></PublicAccessBlockConfiguration>'
  const r = await signedRequest(env, 'PUT', `/${B}?publicAccessBlock`, body)
  assert.is(r.status, 400)
  assert.match(r.body, '<Code>MalformedXML</Code>')
  assert.is((await errorOf(s3.send(new GetPublicAccessBlockCommand({ Bucket: B })))).name, 'NoSuchPublicAccessBlockConfiguration')
})

test('PutBucketPolicy with a Content-MD5 the body does not match answers BadDigest and stores nothing', async () => {
  const r = await signedRequest(env, 'PUT', `/${B}?policy`, PRIVATE, { headers: { 'content-md5': createHash('md5').update('other').digest('base64') } })
  assert.is(r.status, 400)
  assert.match(r.body, '<Code>BadDigest</Code>')
  assert.is((await errorOf(s3.send(new GetBucketPolicyCommand({ Bucket: B })))).name, 'NoSuchBucketPolicy')
})

test('PutBucketPolicy with an empty body answers MalformedPolicy', async () => {
  const r = await signedRequest(env, 'PUT', `/${B}?policy`, '')
  assert.is(r.status, 400)
  assert.match(r.body, '<Code>MalformedPolicy</Code>')
  assert.match(r.body, 'the first byte must be')
})

test('a bucket deleted and created again has neither policy nor public access block', async () => {
  const again = 'policies-again'
  await s3.send(new CreateBucketCommand({ Bucket: again }))
  await s3.send(new PutBucketPolicyCommand({ Bucket: again, Policy: PRIVATE.replaceAll(B, again) }))
  await s3.send(new PutPublicAccessBlockCommand({ Bucket: again, PublicAccessBlockConfiguration: { BlockPublicAcls: true } }))
  await s3.send(new DeleteBucketCommand({ Bucket: again }))
  await s3.send(new CreateBucketCommand({ Bucket: again }))
  assert.is((await errorOf(s3.send(new GetBucketPolicyCommand({ Bucket: again })))).name, 'NoSuchBucketPolicy')
  assert.is((await errorOf(s3.send(new GetPublicAccessBlockCommand({ Bucket: again })))).name, 'NoSuchPublicAccessBlockConfiguration')
})

/** The aws CLI as alice, its output parsed as JSON (empty output: undefined). */
function aws(...args: string[]): Promise<unknown> {
  const home = mkdtempSync(join(tmpdir(), 'o3-policy-aws-'))
  return new Promise<unknown>((resolve, reject) => {
    execFile('aws', ['--endpoint-url', env.endpoint, '--output', 'json', ...args], {
      env: {
        PATH: process.env.PATH, HOME: home, AWS_ACCESS_KEY_ID: env.alice.awsAccessKey, AWS_SECRET_ACCESS_KEY: env.alice.awsSecret,
        AWS_DEFAULT_REGION: 'us-east-1', AWS_CONFIG_FILE: join(home, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(home, 'none'),
      },
    }, (err, stdout, stderr) => (err ? reject(new Error(`aws ${args.join(' ')} failed: ${stderr}`)) : resolve(stdout.trim() === '' ? undefined : JSON.parse(stdout))))
  }).finally(() => rmSync(home, { recursive: true, force: true }))
}

test('the aws CLI puts, reads and deletes a policy and a public access block', async () => {
  const bucket = ['--bucket', B]
  await aws('s3api', 'put-bucket-policy', ...bucket, '--policy', PUBLIC)
  assert.equal(await aws('s3api', 'get-bucket-policy', ...bucket), { Policy: PUBLIC })
  assert.equal(await aws('s3api', 'get-bucket-policy-status', ...bucket), { PolicyStatus: { IsPublic: true } })
  await aws('s3api', 'put-public-access-block', ...bucket, '--public-access-block-configuration', 'BlockPublicAcls=true,RestrictPublicBuckets=true')
  assert.equal(await aws('s3api', 'get-public-access-block', ...bucket), {
    PublicAccessBlockConfiguration: { BlockPublicAcls: true, IgnorePublicAcls: false, BlockPublicPolicy: false, RestrictPublicBuckets: true },
  })
  await aws('s3api', 'delete-public-access-block', ...bucket)
  await aws('s3api', 'delete-bucket-policy', ...bucket)
  const e = await aws('s3api', 'get-bucket-policy', ...bucket).then(() => '', (err: Error) => err.message)
  assert.match(e, 'NoSuchBucketPolicy')
})

test('checkPublicAclAllowed() refuses grants to AllUsers or AuthenticatedUsers under BlockPublicAcls only', () => {
  const bucket = (blockPublicAcls: boolean): BucketInfo => ({ name: B, s3: { publicAccessBlock: { blockPublicAcls, ignorePublicAcls: false, blockPublicPolicy: false, restrictPublicBuckets: false } } }) as BucketInfo
  const acl = (uri?: string): S3Acl => ({
    owner: 'alice',
    grants: [{ grantee: { type: 'CanonicalUser', id: 'alice' }, permission: 'FULL_CONTROL' }, ...(uri === undefined ? [] : [{ grantee: { type: 'Group' as const, uri }, permission: 'READ' as const }])],
  })
  for (const uri of [ALL_USERS_GROUP, AUTHENTICATED_USERS_GROUP]) {
    try {
      checkPublicAclAllowed(bucket(true), acl(uri))
      assert.unreachable('allowed')
    } catch (err) {
      assert.instance(err, S3Error)
      assert.is((err as S3Error).code, 'AccessDenied')
    }
    checkPublicAclAllowed(bucket(false), acl(uri))
  }
  checkPublicAclAllowed(bucket(true), acl())
  checkPublicAclAllowed({ name: B } as BucketInfo, acl(ALL_USERS_GROUP))
})

test.run()
