/**
 * Goal: S3 access control works with real clients unchanged: the aws CLI's s3api ACL calls
 * (--acl, --grant-*, --access-control-policy), bucket policies (and their status), Block
 * Public Access, get-object-attributes, and --no-sign-request reads of public and private
 * objects; s3cmd's setacl (--acl-public, --acl-private, --acl-grant, --acl-revoke),
 * setpolicy/delpolicy and the ACL and policy `s3cmd info` shows; rclone writing as one user
 * into another user's bucket through a bucket policy. An ACL or tag change keeps the object's
 * Last-Modified (as S3), so `aws s3 sync` and `s3cmd info` do not see a newer object.
 * Method: a real gateway over a mini cluster; each tool run as a child process (asynchronously,
 * since the gateway serves from this process) with credentials in its environment or a temp
 * config only, signing as alice, as bob, or not at all. A missing tool skips its tests,
 * except under CI=true, where its absence fails.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { GetObjectCommand, PutBucketPolicyCommand } from '@aws-sdk/client-s3'
import { errorOf, s3Client, startS3Cluster, type S3TestCluster } from './s3-cluster.ts'

let env: S3TestCluster
let dir: string
const MiB = 1024 * 1024
const ALL_USERS = 'http://acs.amazonaws.com/groups/global/AllUsers'
const tools = {
  aws: spawnSync('aws', ['--version'], { stdio: 'ignore' }).status === 0,
  s3cmd: spawnSync('s3cmd', ['--version'], { stdio: 'ignore' }).status === 0,
  rclone: spawnSync('rclone', ['version'], { stdio: 'ignore' }).status === 0,
}

type Who = 'alice' | 'bob' | 'anonymous'

interface Run { stdout: string; stderr: string }

function run(cmd: string, args: string[], extraEnv: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env: { PATH: process.env.PATH, HOME: dir, ...extraEnv }, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')} failed (${String(err.code)}): ${stderr} ${stdout}`)) : resolve({ stdout, stderr })))
  })
}

const secretOf = (who: Who) => (who === 'bob' ? env.bob : env.alice)

/** `aws s3api|s3 …` as `who` (anonymous: --no-sign-request); the parsed JSON output, or {} when there is none. */
async function aws(who: Who, ...args: string[]): Promise<any> {
  const creds: Record<string, string> = who === 'anonymous' ? {} : { AWS_ACCESS_KEY_ID: secretOf(who).awsAccessKey, AWS_SECRET_ACCESS_KEY: secretOf(who).awsSecret }
  const { stdout } = await run('aws', ['--endpoint-url', env.endpoint, '--output', 'json', ...(who === 'anonymous' ? ['--no-sign-request'] : []), ...args], {
    ...creds, AWS_DEFAULT_REGION: 'us-east-1', AWS_CONFIG_FILE: join(dir, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'),
  })
  return stdout.trim() === '' ? {} : JSON.parse(stdout)
}

/** The S3 error code an aws CLI call fails with (`(403)` for a HEAD, which has no body), or 'OK'. */
async function awsError(who: Who, ...args: string[]): Promise<string> {
  try { await aws(who, ...args) } catch (err) {
    return /An error occurred \(([^)]+)\)/.exec((err as Error).message)?.[1] ?? (err as Error).message
  }
  return 'OK'
}

/** The grants of an ACL answer as `grantee permission` strings, sorted. */
const grantsOf = (acl: { Grants: { Grantee: { ID?: string; URI?: string }; Permission: string }[] }) =>
  acl.Grants.map((g) => `${g.Grantee.ID ?? g.Grantee.URI} ${g.Permission}`).sort()

/** An object read without a signature: its status and body. */
async function anonymousGet(bucket: string, key: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${env.endpoint}/${bucket}/${encodeURIComponent(key)}`)
  return { status: res.status, body: await res.text() }
}

/** Asserts that `p` (a tool run) fails with output matching `pattern`. */
async function failsWith(p: Promise<unknown>, pattern: RegExp, message?: string): Promise<void> {
  try { await p } catch (err) {
    assert.match((err as Error).message, pattern, message)
    return
  }
  assert.unreachable(message ?? `expected a failure matching ${String(pattern)}`)
}

const policyOf = (statements: object[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements })

function toolTests(name: keyof typeof tools, body: () => void): void {
  if (tools[name]) body()
  else if (process.env.CI === 'true') test(`${name} is installed (CI installs it in .ci/run)`, () => assert.unreachable(`${name} not found on PATH`))
  else test.skip(`${name} tests: ${name} is not installed`, () => {})
}

test.before(async () => {
  env = await startS3Cluster()
  dir = mkdtempSync(join(tmpdir(), 'o3-clients-access-'))
  writeFileSync(join(dir, 'small.txt'), 'hello, world\n')
})

test.after(async () => {
  await env.dispose()
  rmSync(dir, { recursive: true, force: true })
})

toolTests('aws', () => {
  test('aws s3api bucket ACLs: default, --acl public-read, --grant-*, refusals; anonymous listing follows them', async () => {
    await aws('alice', 's3api', 'create-bucket', '--bucket', 'cli-acl')
    const initial = await aws('alice', 's3api', 'get-bucket-acl', '--bucket', 'cli-acl')
    assert.equal(initial.Owner, { DisplayName: 'alice', ID: 'alice' })
    assert.equal(grantsOf(initial), ['alice FULL_CONTROL'])
    assert.is(await awsError('anonymous', 's3api', 'list-objects-v2', '--bucket', 'cli-acl'), 'AccessDenied')
    assert.is(await awsError('bob', 's3api', 'list-objects-v2', '--bucket', 'cli-acl'), 'AccessDenied')

    await aws('alice', 's3api', 'put-bucket-acl', '--bucket', 'cli-acl', '--acl', 'public-read')
    assert.equal(grantsOf(await aws('alice', 's3api', 'get-bucket-acl', '--bucket', 'cli-acl')), ['alice FULL_CONTROL', `${ALL_USERS} READ`])
    await aws('alice', 's3api', 'put-object', '--bucket', 'cli-acl', '--key', 'a.txt', '--body', join(dir, 'small.txt'))
    assert.equal((await aws('anonymous', 's3api', 'list-objects-v2', '--bucket', 'cli-acl')).Contents.map((c: { Key: string }) => c.Key), ['a.txt'])
    // READ on the bucket lists it; it does not read its objects (they are private) or its ACL.
    assert.is(await awsError('anonymous', 's3api', 'get-object', '--bucket', 'cli-acl', '--key', 'a.txt', join(dir, 'out')), 'AccessDenied')
    assert.is(await awsError('anonymous', 's3api', 'get-bucket-acl', '--bucket', 'cli-acl'), 'AccessDenied')

    await aws('alice', 's3api', 'put-bucket-acl', '--bucket', 'cli-acl', '--grant-read', 'id=bob', '--grant-write', 'id=bob', '--grant-full-control', 'id=alice')
    assert.equal(grantsOf(await aws('alice', 's3api', 'get-bucket-acl', '--bucket', 'cli-acl')), ['alice FULL_CONTROL', 'bob READ', 'bob WRITE'])
    assert.is(await awsError('anonymous', 's3api', 'list-objects-v2', '--bucket', 'cli-acl'), 'AccessDenied')
    assert.is((await aws('bob', 's3api', 'list-objects-v2', '--bucket', 'cli-acl')).Contents.length, 1)
    await aws('bob', 's3api', 'put-object', '--bucket', 'cli-acl', '--key', 'from-bob.txt', '--body', join(dir, 'small.txt'))
    assert.is(await awsError('bob', 's3api', 'get-bucket-acl', '--bucket', 'cli-acl'), 'AccessDenied', 'READ is not READ_ACP')
    assert.is(await awsError('bob', 's3api', 'put-bucket-acl', '--bucket', 'cli-acl', '--acl', 'public-read'), 'AccessDenied')
    await aws('alice', 's3api', 'put-bucket-acl', '--bucket', 'cli-acl', '--grant-read-acp', 'uri="http://acs.amazonaws.com/groups/global/AuthenticatedUsers"', '--grant-full-control', 'id=alice')
    assert.equal(grantsOf(await aws('bob', 's3api', 'get-bucket-acl', '--bucket', 'cli-acl')), ['alice FULL_CONTROL', 'http://acs.amazonaws.com/groups/global/AuthenticatedUsers READ_ACP'])

    assert.is(await awsError('alice', 's3api', 'put-bucket-acl', '--bucket', 'cli-acl', '--acl', 'private', '--grant-read', 'id=bob'), 'InvalidRequest')
    assert.is(await awsError('alice', 's3api', 'put-bucket-acl', '--bucket', 'cli-acl', '--grant-read', 'emailaddress=bob@example.com'), 'UnresolvableGrantByEmailAddress')
    await aws('alice', 's3api', 'put-bucket-acl', '--bucket', 'cli-acl', '--acl', 'private')
    assert.equal(grantsOf(await aws('alice', 's3api', 'get-bucket-acl', '--bucket', 'cli-acl')), ['alice FULL_CONTROL'])
  })

  test('aws s3api object ACLs: public-read and private objects read with --no-sign-request, --grant-read, --access-control-policy; Last-Modified stays', async () => {
    await aws('alice', 's3api', 'put-object', '--bucket', 'cli-acl', '--key', 'public.txt', '--body', join(dir, 'small.txt'), '--acl', 'public-read')
    await aws('alice', 's3api', 'put-object', '--bucket', 'cli-acl', '--key', 'private.txt', '--body', join(dir, 'small.txt'))
    await aws('anonymous', 's3api', 'get-object', '--bucket', 'cli-acl', '--key', 'public.txt', join(dir, 'public.out'))
    assert.is(readFileSync(join(dir, 'public.out'), 'utf8'), 'hello, world\n')
    assert.equal(await anonymousGet('cli-acl', 'public.txt'), { status: 200, body: 'hello, world\n' })
    assert.is(await awsError('anonymous', 's3api', 'get-object', '--bucket', 'cli-acl', '--key', 'private.txt', join(dir, 'private.out')), 'AccessDenied')
    assert.is(await awsError('anonymous', 's3api', 'head-object', '--bucket', 'cli-acl', '--key', 'private.txt'), '403')
    // A caller who may not list the bucket cannot tell a missing key from a private one.
    assert.is(await awsError('anonymous', 's3api', 'get-object', '--bucket', 'cli-acl', '--key', 'missing.txt', join(dir, 'missing.out')), 'AccessDenied')
    assert.is(await awsError('alice', 's3api', 'get-object', '--bucket', 'cli-acl', '--key', 'missing.txt', join(dir, 'missing.out')), 'NoSuchKey')
    assert.equal(grantsOf(await aws('alice', 's3api', 'get-object-acl', '--bucket', 'cli-acl', '--key', 'public.txt')), ['alice FULL_CONTROL', `${ALL_USERS} READ`])
    assert.equal(grantsOf(await aws('alice', 's3api', 'get-object-acl', '--bucket', 'cli-acl', '--key', 'private.txt')), ['alice FULL_CONTROL'])

    const before = (await aws('alice', 's3api', 'head-object', '--bucket', 'cli-acl', '--key', 'private.txt')).LastModified
    await new Promise((r) => setTimeout(r, 1100)) // Last-Modified has whole seconds
    assert.is(await awsError('bob', 's3api', 'get-object', '--bucket', 'cli-acl', '--key', 'private.txt', join(dir, 'bob.out')), 'AccessDenied')
    await aws('alice', 's3api', 'put-object-acl', '--bucket', 'cli-acl', '--key', 'private.txt', '--grant-read', 'id=bob', '--grant-full-control', 'id=alice')
    await aws('bob', 's3api', 'get-object', '--bucket', 'cli-acl', '--key', 'private.txt', join(dir, 'bob.out'))
    assert.is(readFileSync(join(dir, 'bob.out'), 'utf8'), 'hello, world\n')
    assert.is(await awsError('bob', 's3api', 'get-object-acl', '--bucket', 'cli-acl', '--key', 'private.txt'), 'AccessDenied')
    assert.is(await awsError('anonymous', 's3api', 'get-object', '--bucket', 'cli-acl', '--key', 'private.txt', join(dir, 'private.out')), 'AccessDenied')
    await aws('alice', 's3api', 'put-object-tagging', '--bucket', 'cli-acl', '--key', 'private.txt', '--tagging', 'TagSet=[{Key=k,Value=v}]')
    const after = await aws('alice', 's3api', 'head-object', '--bucket', 'cli-acl', '--key', 'private.txt')
    assert.is(after.LastModified, before, 'an ACL or tag change is not a newer object')
    assert.is(after.ContentLength, 13)

    // The ACL as a whole document: the object keeps its owner, bob gets READ_ACP only.
    await aws('alice', 's3api', 'put-object-acl', '--bucket', 'cli-acl', '--key', 'private.txt', '--access-control-policy',
      JSON.stringify({ Owner: { ID: 'alice' }, Grants: [{ Grantee: { Type: 'CanonicalUser', ID: 'alice' }, Permission: 'FULL_CONTROL' }, { Grantee: { Type: 'CanonicalUser', ID: 'bob' }, Permission: 'READ_ACP' }] }))
    const acl = await aws('bob', 's3api', 'get-object-acl', '--bucket', 'cli-acl', '--key', 'private.txt')
    assert.equal(acl.Owner, { DisplayName: 'alice', ID: 'alice' })
    assert.equal(grantsOf(acl), ['alice FULL_CONTROL', 'bob READ_ACP'])
    assert.is(await awsError('bob', 's3api', 'get-object', '--bucket', 'cli-acl', '--key', 'private.txt', join(dir, 'bob.out')), 'AccessDenied')
    assert.is(await awsError('bob', 's3api', 'put-object-acl', '--bucket', 'cli-acl', '--key', 'private.txt', '--acl', 'public-read'), 'AccessDenied')

    await aws('alice', 's3api', 'put-object-acl', '--bucket', 'cli-acl', '--key', 'public.txt', '--acl', 'private')
    assert.is((await anonymousGet('cli-acl', 'public.txt')).status, 403)
    assert.is(await awsError('alice', 's3api', 'put-object-acl', '--bucket', 'cli-acl', '--key', 'missing.txt', '--acl', 'private'), 'NoSuchKey')
  })

  test('aws s3 cp --acl public-read (multipart) and --grants, then get-object-attributes of the parts', async () => {
    const big = randomBytes(9 * MiB + 5, 9)
    writeFileSync(join(dir, 'big.bin'), big)
    await aws('alice', 's3', 'cp', '--only-show-errors', join(dir, 'big.bin'), 's3://cli-acl/big.bin', '--acl', 'public-read')
    await aws('anonymous', 's3', 'cp', '--only-show-errors', 's3://cli-acl/big.bin', join(dir, 'big.out'))
    assert.ok(readFileSync(join(dir, 'big.out')).equals(big))
    await aws('alice', 's3', 'cp', '--only-show-errors', join(dir, 'small.txt'), 's3://cli-acl/granted.txt', '--grants', `read=uri=${ALL_USERS}`, 'full=id=alice', 'readacl=id=bob')
    assert.equal(grantsOf(await aws('bob', 's3api', 'get-object-acl', '--bucket', 'cli-acl', '--key', 'granted.txt')), ['alice FULL_CONTROL', 'bob READ_ACP', `${ALL_USERS} READ`])
    assert.equal(await anonymousGet('cli-acl', 'granted.txt'), { status: 200, body: 'hello, world\n' })

    const first = await aws('alice', 's3api', 'get-object-attributes', '--bucket', 'cli-acl', '--key', 'big.bin', '--object-attributes', 'ETag', 'ObjectParts', 'ObjectSize', 'StorageClass', '--max-parts', '1')
    assert.match(first.ETag, /^[0-9a-f]{32}-2$/, 'the ETag without quotes, as S3 answers it')
    assert.is(first.ObjectSize, big.length)
    assert.is(first.StorageClass, 'STANDARD')
    assert.equal([first.ObjectParts.TotalPartsCount, first.ObjectParts.IsTruncated, first.ObjectParts.NextPartNumberMarker], [2, true, 1])
    assert.equal(first.ObjectParts.Parts.map((p: { PartNumber: number; Size: number }) => [p.PartNumber, p.Size]), [[1, 8 * MiB]])
    const rest = await aws('alice', 's3api', 'get-object-attributes', '--bucket', 'cli-acl', '--key', 'big.bin', '--object-attributes', 'ObjectParts', '--part-number-marker', '1')
    assert.equal(rest.ObjectParts.Parts.map((p: { PartNumber: number; Size: number }) => [p.PartNumber, p.Size]), [[2, MiB + 5]])
    assert.is(rest.ObjectParts.IsTruncated, false)
    // Reading attributes needs the object's READ: public-read gives it to anyone, a private object to no one else.
    assert.is((await aws('anonymous', 's3api', 'get-object-attributes', '--bucket', 'cli-acl', '--key', 'big.bin', '--object-attributes', 'ObjectSize')).ObjectSize, big.length)
    assert.is(await awsError('bob', 's3api', 'get-object-attributes', '--bucket', 'cli-acl', '--key', 'private.txt', '--object-attributes', 'ObjectSize'), 'AccessDenied')
  })

  test('aws s3api bucket policies: put/get/status/delete, anonymous reads of a public prefix only, a policy for bob, MalformedPolicy', async () => {
    await aws('alice', 's3api', 'create-bucket', '--bucket', 'cli-policy')
    await aws('alice', 's3api', 'put-object', '--bucket', 'cli-policy', '--key', 'pub/a.txt', '--body', join(dir, 'small.txt'))
    await aws('alice', 's3api', 'put-object', '--bucket', 'cli-policy', '--key', 'secret/b.txt', '--body', join(dir, 'small.txt'))
    assert.is(await awsError('alice', 's3api', 'get-bucket-policy', '--bucket', 'cli-policy'), 'NoSuchBucketPolicy')
    assert.is((await anonymousGet('cli-policy', 'pub/a.txt')).status, 403)

    const publicRead = policyOf([{ Sid: 'PublicRead', Effect: 'Allow', Principal: '*', Action: ['s3:GetObject'], Resource: ['arn:aws:s3:::cli-policy/pub/*'] }])
    await aws('alice', 's3api', 'put-bucket-policy', '--bucket', 'cli-policy', '--policy', publicRead)
    assert.is((await aws('alice', 's3api', 'get-bucket-policy', '--bucket', 'cli-policy')).Policy, publicRead, 'the document as it was sent')
    assert.equal(await aws('alice', 's3api', 'get-bucket-policy-status', '--bucket', 'cli-policy'), { PolicyStatus: { IsPublic: true } })
    await aws('anonymous', 's3api', 'get-object', '--bucket', 'cli-policy', '--key', 'pub/a.txt', join(dir, 'pub.out'))
    assert.is(readFileSync(join(dir, 'pub.out'), 'utf8'), 'hello, world\n')
    assert.is(await awsError('anonymous', 's3api', 'get-object', '--bucket', 'cli-policy', '--key', 'secret/b.txt', join(dir, 'secret.out')), 'AccessDenied')
    assert.is(await awsError('anonymous', 's3api', 'list-objects-v2', '--bucket', 'cli-policy'), 'AccessDenied')
    assert.is(await awsError('bob', 's3api', 'get-bucket-policy', '--bucket', 'cli-policy'), 'AccessDenied')

    // A policy naming one user is not public; it gives bob listing and reads, not writes.
    const forBob = policyOf([{ Effect: 'Allow', Principal: { AWS: ['bob'] }, Action: ['s3:ListBucket', 's3:GetObject'], Resource: ['arn:aws:s3:::cli-policy', 'arn:aws:s3:::cli-policy/*'] }])
    await aws('alice', 's3api', 'put-bucket-policy', '--bucket', 'cli-policy', '--policy', forBob)
    assert.equal(await aws('alice', 's3api', 'get-bucket-policy-status', '--bucket', 'cli-policy'), { PolicyStatus: { IsPublic: false } })
    assert.is((await aws('bob', 's3api', 'list-objects-v2', '--bucket', 'cli-policy')).Contents.length, 2)
    await aws('bob', 's3api', 'get-object', '--bucket', 'cli-policy', '--key', 'secret/b.txt', join(dir, 'secret.out'))
    assert.is(await awsError('bob', 's3api', 'put-object', '--bucket', 'cli-policy', '--key', 'x', '--body', join(dir, 'small.txt')), 'AccessDenied')
    assert.is((await anonymousGet('cli-policy', 'pub/a.txt')).status, 403)

    assert.is(await awsError('alice', 's3api', 'put-bucket-policy', '--bucket', 'cli-policy', '--policy', '{"Version":"2012-10-17"'), 'MalformedPolicy')
    assert.is(await awsError('alice', 's3api', 'put-bucket-policy', '--bucket', 'cli-policy', '--policy',
      policyOf([{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::another-bucket/*' }])), 'MalformedPolicy')
    assert.is((await aws('alice', 's3api', 'get-bucket-policy', '--bucket', 'cli-policy')).Policy, forBob, 'a refused policy changes nothing')
    await aws('alice', 's3api', 'delete-bucket-policy', '--bucket', 'cli-policy')
    assert.is(await awsError('alice', 's3api', 'get-bucket-policy', '--bucket', 'cli-policy'), 'NoSuchBucketPolicy')
    assert.is(await awsError('bob', 's3api', 'list-objects-v2', '--bucket', 'cli-policy'), 'AccessDenied')
  })

  test('aws s3api put-public-access-block: refuses public ACLs and policies, ignores existing ones, and lets go when deleted', async () => {
    const publicRead = policyOf([{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::cli-policy/pub/*' }])
    await aws('alice', 's3api', 'put-bucket-policy', '--bucket', 'cli-policy', '--policy', publicRead)
    await aws('alice', 's3api', 'put-object', '--bucket', 'cli-policy', '--key', 'acl-public.txt', '--body', join(dir, 'small.txt'), '--acl', 'public-read')
    assert.is((await anonymousGet('cli-policy', 'acl-public.txt')).status, 200)
    assert.is(await awsError('alice', 's3api', 'get-public-access-block', '--bucket', 'cli-policy'), 'NoSuchPublicAccessBlockConfiguration')

    await aws('alice', 's3api', 'put-public-access-block', '--bucket', 'cli-policy', '--public-access-block-configuration', 'IgnorePublicAcls=true,RestrictPublicBuckets=true')
    assert.equal(await aws('alice', 's3api', 'get-public-access-block', '--bucket', 'cli-policy'),
      { PublicAccessBlockConfiguration: { BlockPublicAcls: false, IgnorePublicAcls: true, BlockPublicPolicy: false, RestrictPublicBuckets: true } })
    assert.is((await anonymousGet('cli-policy', 'acl-public.txt')).status, 403, 'IgnorePublicAcls')
    assert.is((await anonymousGet('cli-policy', 'pub/a.txt')).status, 403, 'RestrictPublicBuckets')
    assert.is(await awsError('bob', 's3api', 'get-object', '--bucket', 'cli-policy', '--key', 'pub/a.txt', join(dir, 'pub.out')), 'AccessDenied')

    await aws('alice', 's3api', 'put-public-access-block', '--bucket', 'cli-policy', '--public-access-block-configuration', 'BlockPublicAcls=true,BlockPublicPolicy=true')
    assert.is(await awsError('alice', 's3api', 'put-object', '--bucket', 'cli-policy', '--key', 'more.txt', '--body', join(dir, 'small.txt'), '--acl', 'public-read'), 'AccessDenied')
    assert.is(await awsError('alice', 's3api', 'put-object-acl', '--bucket', 'cli-policy', '--key', 'pub/a.txt', '--acl', 'public-read'), 'AccessDenied')
    assert.is(await awsError('alice', 's3api', 'put-bucket-acl', '--bucket', 'cli-policy', '--grant-read', `uri=${ALL_USERS}`), 'AccessDenied')
    assert.is(await awsError('alice', 's3api', 'put-bucket-policy', '--bucket', 'cli-policy', '--policy', publicRead), 'AccessDenied')
    // Not ignored nor restricted any more: the public ACL and policy already there answer again.
    assert.is((await anonymousGet('cli-policy', 'acl-public.txt')).status, 200)
    assert.is((await anonymousGet('cli-policy', 'pub/a.txt')).status, 200)
    await aws('alice', 's3api', 'put-object', '--bucket', 'cli-policy', '--key', 'more.txt', '--body', join(dir, 'small.txt'), '--acl', 'private')

    await aws('alice', 's3api', 'delete-public-access-block', '--bucket', 'cli-policy')
    assert.is(await awsError('alice', 's3api', 'get-public-access-block', '--bucket', 'cli-policy'), 'NoSuchPublicAccessBlockConfiguration')
    await aws('alice', 's3api', 'put-object-acl', '--bucket', 'cli-policy', '--key', 'more.txt', '--acl', 'public-read')
    assert.is((await anonymousGet('cli-policy', 'more.txt')).status, 200)
  })
})

toolTests('s3cmd', () => {
  function s3cmd(...args: string[]): Promise<string> {
    return run('s3cmd', ['-c', join(dir, 's3cfg'), ...args], {}).then(({ stdout, stderr }) => stdout + stderr)
  }
  const aclLines = (info: string) => info.split('\n').filter((l) => /^\s+ACL:/.test(l)).map((l) => l.replace(/^\s+ACL:\s+/, '')).sort()

  test('s3cmd setacl --acl-public/--acl-private, --acl-grant/--acl-revoke, put -P; info shows the ACL (V4 and --signature-v2)', async () => {
    const host = new URL(env.endpoint).host
    writeFileSync(join(dir, 's3cfg'), [
      '[default]', `access_key = ${env.alice.awsAccessKey}`, `secret_key = ${env.alice.awsSecret}`,
      `host_base = ${host}`, `host_bucket = ${host}`, 'use_https = False', 'bucket_location = us-east-1',
      'check_ssl_certificate = False', 'progress_meter = False', '',
    ].join('\n'))
    await s3cmd('mb', 's3://cmd-acl')
    await s3cmd('put', join(dir, 'small.txt'), 's3://cmd-acl/a.txt')
    assert.equal(aclLines(await s3cmd('info', 's3://cmd-acl/a.txt')), ['alice: FULL_CONTROL'])
    assert.is((await anonymousGet('cmd-acl', 'a.txt')).status, 403)
    const lastMod = /Last mod:\s+(.*)/.exec(await s3cmd('info', 's3://cmd-acl/a.txt'))?.[1]
    await new Promise((r) => setTimeout(r, 1100))

    for (const sig of [[], ['--signature-v2']]) {
      assert.match(await s3cmd(...sig, 'setacl', '--acl-public', 's3://cmd-acl/a.txt'), /ACL set to Public/)
      assert.equal(aclLines(await s3cmd(...sig, 'info', 's3://cmd-acl/a.txt')), ['*anon*: READ', 'alice: FULL_CONTROL'])
      assert.equal(await anonymousGet('cmd-acl', 'a.txt'), { status: 200, body: 'hello, world\n' })
      assert.match(await s3cmd(...sig, 'setacl', '--acl-private', 's3://cmd-acl/a.txt'), /ACL set to Private/)
      assert.equal(aclLines(await s3cmd(...sig, 'info', 's3://cmd-acl/a.txt')), ['alice: FULL_CONTROL'])
      assert.is((await anonymousGet('cmd-acl', 'a.txt')).status, 403)
    }
    assert.is(/Last mod:\s+(.*)/.exec(await s3cmd('info', 's3://cmd-acl/a.txt'))?.[1], lastMod, 'setacl does not make the object newer')

    // Grants add to the ACL s3cmd read (it GETs the ACL, edits it, PUTs it back) and revokes take away.
    await s3cmd('setacl', '--acl-grant=read:bob', '--acl-grant=full_control:alice', 's3://cmd-acl/a.txt')
    assert.equal(aclLines(await s3cmd('info', 's3://cmd-acl/a.txt')), ['alice: FULL_CONTROL', 'bob: READ'])
    if (tools.aws) assert.is((await aws('bob', 's3api', 'head-object', '--bucket', 'cmd-acl', '--key', 'a.txt')).ContentLength, 13)
    await s3cmd('setacl', '--acl-revoke=all:bob', 's3://cmd-acl/a.txt')
    assert.equal(aclLines(await s3cmd('info', 's3://cmd-acl/a.txt')), ['alice: FULL_CONTROL'])

    // The bucket's ACL the same way; put -P uploads public-read.
    await s3cmd('setacl', '--acl-public', 's3://cmd-acl')
    assert.equal(aclLines(await s3cmd('info', 's3://cmd-acl')), ['*anon*: READ', 'alice: FULL_CONTROL'])
    assert.match((await (await fetch(`${env.endpoint}/cmd-acl?list-type=2`)).text()), /<Key>a\.txt<\/Key>/)
    await s3cmd('setacl', '--acl-private', 's3://cmd-acl')
    assert.is((await fetch(`${env.endpoint}/cmd-acl?list-type=2`)).status, 403)
    assert.match(await s3cmd('put', '-P', join(dir, 'small.txt'), 's3://cmd-acl/p.txt'), /Public URL of the object is/)
    assert.equal(await anonymousGet('cmd-acl', 'p.txt'), { status: 200, body: 'hello, world\n' })
    assert.match(await s3cmd('setacl', '--acl-private', '--recursive', 's3://cmd-acl/'), /p\.txt: ACL set to Private/)
    assert.is((await anonymousGet('cmd-acl', 'p.txt')).status, 403)
    await failsWith(s3cmd('setacl', '--acl-grant=read:bob@example.com', 's3://cmd-acl/a.txt'), /UnresolvableGrantByEmailAddress/)
  })

  test('s3cmd setpolicy/delpolicy: info shows the policy, which decides anonymous reads', async () => {
    const policy = policyOf([{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: 'arn:aws:s3:::cmd-acl/*' }])
    writeFileSync(join(dir, 'policy.json'), policy)
    assert.match(await s3cmd('info', 's3://cmd-acl'), /Policy:\s+none/)
    assert.match(await s3cmd('setpolicy', join(dir, 'policy.json'), 's3://cmd-acl'), /Policy updated/)
    assert.ok((await s3cmd('info', 's3://cmd-acl')).includes(`Policy:    ${policy}`))
    assert.equal(await anonymousGet('cmd-acl', 'a.txt'), { status: 200, body: 'hello, world\n' })
    writeFileSync(join(dir, 'bad.json'), '{"Statement": "nope"}')
    await failsWith(s3cmd('setpolicy', join(dir, 'bad.json'), 's3://cmd-acl'), /MalformedPolicy/)
    assert.match(await s3cmd('delpolicy', 's3://cmd-acl'), /Policy deleted/)
    assert.match(await s3cmd('info', 's3://cmd-acl'), /Policy:\s+none/)
    assert.is((await anonymousGet('cmd-acl', 'a.txt')).status, 403)
  })
})

toolTests('rclone', () => {
  function rclone(who: Who, ...args: string[]): Promise<Run> {
    return run('rclone', ['--s3-upload-cutoff', '5M', '--s3-chunk-size', '5M', ...args], {
      RCLONE_CONFIG: join(dir, 'rclone.conf'),
      RCLONE_CONFIG_O3_TYPE: 's3', RCLONE_CONFIG_O3_PROVIDER: 'Other', RCLONE_CONFIG_O3_ENDPOINT: env.endpoint,
      RCLONE_CONFIG_O3_ACCESS_KEY_ID: secretOf(who).awsAccessKey, RCLONE_CONFIG_O3_SECRET_ACCESS_KEY: secretOf(who).awsSecret,
      RCLONE_CONFIG_O3_REGION: 'us-east-1',
    })
  }

  test("rclone as bob copies into alice's bucket through her policy (multipart too), checks, lists, deletes; the Deny and what the policy leaves out stay closed", async () => {
    writeFileSync(join(dir, 'rclone.conf'), '')
    const src = join(dir, 'rc-src')
    mkdirSync(join(src, 'sub'), { recursive: true })
    const big = randomBytes(7 * MiB + 3, 7)
    writeFileSync(join(src, 'sub', 'big.bin'), big)
    writeFileSync(join(src, 'a.txt'), 'from bob')
    await rclone('alice', 'mkdir', 'o3:rc-shared')
    await failsWith(rclone('bob', 'copy', src, 'o3:rc-shared/in'), /AccessDenied/, 'no policy yet: bob cannot write')
    const policy = policyOf([
      { Sid: 'BobWrites', Effect: 'Allow', Principal: { AWS: 'bob' }, Action: ['s3:ListBucket', 's3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload', 's3:ListMultipartUploadParts'], Resource: ['arn:aws:s3:::rc-shared', 'arn:aws:s3:::rc-shared/*'] },
      { Sid: 'NotThere', Effect: 'Deny', Principal: { AWS: 'bob' }, Action: 's3:PutObject', Resource: 'arn:aws:s3:::rc-shared/locked/*' },
    ])
    const s3 = s3Client(env)
    try { await s3.send(new PutBucketPolicyCommand({ Bucket: 'rc-shared', Policy: policy })) } finally { s3.destroy() }

    await rclone('bob', 'copy', src, 'o3:rc-shared/in')
    await rclone('bob', 'check', src, 'o3:rc-shared/in')
    const listed = (await rclone('bob', 'lsf', '-R', 'o3:rc-shared')).stdout.split('\n').filter(Boolean).sort()
    assert.equal(listed, ['in/', 'in/a.txt', 'in/sub/', 'in/sub/big.bin'])
    await rclone('bob', 'copy', 'o3:rc-shared/in', join(dir, 'rc-back'))
    assert.ok(readFileSync(join(dir, 'rc-back', 'sub', 'big.bin')).equals(big))
    await failsWith(rclone('bob', 'copy', src, 'o3:rc-shared/locked'), /AccessDenied/, 'the Deny wins over the Allow')

    // bob's objects are bob's: alice reads them only when bob's upload grants her (bucket-owner-full-control).
    // (rclone itself takes a 403 on HEAD for "not a file" and cats nothing, as it would from S3: ask the SDK.)
    const s3alice = s3Client(env)
    try { assert.is((await errorOf(s3alice.send(new GetObjectCommand({ Bucket: 'rc-shared', Key: 'in/a.txt' })))).name, 'AccessDenied') } finally { s3alice.destroy() }
    await rclone('bob', 'copy', '--s3-acl', 'bucket-owner-full-control', src, 'o3:rc-shared/granted')
    assert.is((await rclone('alice', 'cat', 'o3:rc-shared/granted/a.txt')).stdout, 'from bob')
    await rclone('alice', 'check', src, 'o3:rc-shared/granted')

    await rclone('bob', 'delete', 'o3:rc-shared/in')
    assert.equal((await rclone('alice', 'lsf', '-R', '--files-only', 'o3:rc-shared')).stdout.split('\n').filter(Boolean).sort(), ['granted/a.txt', 'granted/sub/big.bin'])
    await failsWith(rclone('bob', 'rmdir', 'o3:rc-shared'), /AccessDenied/, 'only the owner deletes the bucket')
  })
})

test.run()
