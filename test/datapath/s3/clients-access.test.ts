/**
 * Goal: S3 access control and browser access work with real clients unchanged: the aws CLI's
 * s3api ACL calls (--acl, --grant-*, --access-control-policy), bucket policies (and their
 * status), Block Public Access, get-object-attributes, bucket tagging, CORS configuration
 * (with curl preflights), and --no-sign-request reads of public and private objects; s3cmd's setacl
 * (--acl-public, --acl-private, --acl-grant, --acl-revoke), setpolicy/delpolicy, setcors/delcors
 * and what `s3cmd info` shows of them; rclone writing as one user into another user's bucket
 * through a bucket policy; boto3's generate_presigned_post (SigV4 and SigV2) sent by requests.
 * An ACL or tag change keeps the object's Last-Modified (as S3), so `aws s3 sync` and
 * `s3cmd info` do not see a newer object.
 * Method: a real gateway over a mini cluster; each tool run as a child process (asynchronously,
 * since the gateway serves from this process) with credentials in its environment or a temp
 * config only, signing as alice, as bob, or not at all. A missing tool skips its tests,
 * except under CI=true, where its absence fails.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { CreateBucketCommand, GetObjectCommand, PutBucketCorsCommand, PutBucketPolicyCommand } from '@aws-sdk/client-s3'
import { errorOf, s3Client, startS3Cluster, type S3TestCluster, s3cmdConfig } from './s3-cluster.ts'

let env: S3TestCluster
let dir: string
const MiB = 1024 * 1024
const ALL_USERS = 'http://acs.amazonaws.com/groups/global/AllUsers'
const tools = {
  aws: spawnSync('aws', ['--version'], { stdio: 'ignore' }).status === 0,
  s3cmd: spawnSync('s3cmd', ['--version'], { stdio: 'ignore' }).status === 0,
  rclone: spawnSync('rclone', ['version'], { stdio: 'ignore' }).status === 0,
  curl: spawnSync('curl', ['--version'], { stdio: 'ignore' }).status === 0,
  // boto3 (generate_presigned_post) and requests (to send the form), in the python3 on PATH.
  boto3: spawnSync('python3', ['-c', 'import boto3, requests'], { stdio: 'ignore' }).status === 0,
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

/** A request made by curl: its status and headers (names lowercased; the last of a repeated one). */
async function curlHead(...args: string[]): Promise<{ status: number; headers: Record<string, string> }> {
  const { stdout } = await run('curl', ['-s', '-o', '/dev/null', '-D', '-', ...args], {})
  const [statusLine, ...rest] = stdout.trim().split(/\r?\n/)
  const headers: Record<string, string> = {}
  for (const line of rest) {
    const i = line.indexOf(':')
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
  }
  return { status: Number(statusLine.split(' ')[1]), headers }
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

  test('aws s3api put-bucket-tagging/get-bucket-tagging/delete-bucket-tagging: order kept, NoSuchTagSet, InvalidTag, only the owner', async () => {
    assert.is(await awsError('alice', 's3api', 'get-bucket-tagging', '--bucket', 'cli-acl'), 'NoSuchTagSet')
    await aws('alice', 's3api', 'put-bucket-tagging', '--bucket', 'cli-acl', '--tagging', JSON.stringify({ TagSet: [{ Key: 'team', Value: 'storage' }, { Key: 'cost-center', Value: '42' }, { Key: 'app', Value: '' }] }))
    assert.equal((await aws('alice', 's3api', 'get-bucket-tagging', '--bucket', 'cli-acl')).TagSet, [{ Key: 'team', Value: 'storage' }, { Key: 'cost-center', Value: '42' }, { Key: 'app', Value: '' }])
    assert.is(await awsError('bob', 's3api', 'get-bucket-tagging', '--bucket', 'cli-acl'), 'AccessDenied')
    assert.is(await awsError('bob', 's3api', 'put-bucket-tagging', '--bucket', 'cli-acl', '--tagging', 'TagSet=[{Key=a,Value=b}]'), 'AccessDenied')
    assert.is(await awsError('alice', 's3api', 'put-bucket-tagging', '--bucket', 'cli-acl', '--tagging', `TagSet=[{Key=${'k'.repeat(129)},Value=v}]`), 'InvalidTag')
    assert.is(await awsError('alice', 's3api', 'put-bucket-tagging', '--bucket', 'cli-acl', '--tagging', 'TagSet=[{Key=a,Value=1},{Key=a,Value=2}]'), 'InvalidTag')
    assert.is((await aws('alice', 's3api', 'get-bucket-tagging', '--bucket', 'cli-acl')).TagSet.length, 3, 'a refused tag set changes nothing')
    await aws('alice', 's3api', 'delete-bucket-tagging', '--bucket', 'cli-acl')
    assert.is(await awsError('alice', 's3api', 'get-bucket-tagging', '--bucket', 'cli-acl'), 'NoSuchTagSet')
  })

  test('aws s3api put-bucket-cors/get-bucket-cors/delete-bucket-cors; curl preflights and CORS headers follow the rules', async () => {
    await aws('alice', 's3api', 'create-bucket', '--bucket', 'cli-cors')
    assert.is(await awsError('alice', 's3api', 'get-bucket-cors', '--bucket', 'cli-cors'), 'NoSuchCORSConfiguration')
    const rules = {
      CORSRules: [
        { AllowedOrigins: ['https://app.example.com'], AllowedMethods: ['GET', 'PUT', 'POST'], AllowedHeaders: ['*'], ExposeHeaders: ['ETag', 'x-amz-request-id'], MaxAgeSeconds: 3000 },
        { AllowedOrigins: ['*'], AllowedMethods: ['GET'] },
      ],
    }
    await aws('alice', 's3api', 'put-bucket-cors', '--bucket', 'cli-cors', '--cors-configuration', JSON.stringify(rules))
    assert.equal((await aws('alice', 's3api', 'get-bucket-cors', '--bucket', 'cli-cors')).CORSRules, [
      { AllowedHeaders: ['*'], AllowedMethods: ['GET', 'PUT', 'POST'], AllowedOrigins: ['https://app.example.com'], ExposeHeaders: ['ETag', 'x-amz-request-id'], MaxAgeSeconds: 3000 },
      { AllowedMethods: ['GET'], AllowedOrigins: ['*'] },
    ])
    assert.is(await awsError('bob', 's3api', 'get-bucket-cors', '--bucket', 'cli-cors'), 'AccessDenied')
    assert.is(await awsError('bob', 's3api', 'put-bucket-cors', '--bucket', 'cli-cors', '--cors-configuration', JSON.stringify(rules)), 'AccessDenied')
    assert.is(await awsError('alice', 's3api', 'put-bucket-cors', '--bucket', 'cli-cors', '--cors-configuration', '{"CORSRules":[{"AllowedOrigins":["*"],"AllowedMethods":["BREW"]}]}'), 'InvalidRequest')

    if (tools.curl) {
      const preflight = await curlHead('-X', 'OPTIONS', `${env.endpoint}/cli-cors/photo.jpg`, '-H', 'Origin: https://app.example.com', '-H', 'Access-Control-Request-Method: PUT', '-H', 'Access-Control-Request-Headers: content-type, x-amz-date')
      assert.is(preflight.status, 200)
      assert.is(preflight.headers['access-control-allow-origin'], 'https://app.example.com')
      assert.match(preflight.headers['access-control-allow-methods'] ?? '', /PUT/)
      assert.match(preflight.headers['access-control-allow-headers'] ?? '', /x-amz-date/)
      assert.is(preflight.headers['access-control-max-age'], '3000')
      const refused = await curlHead('-X', 'OPTIONS', `${env.endpoint}/cli-cors/photo.jpg`, '-H', 'Origin: https://evil.example.com', '-H', 'Access-Control-Request-Method: PUT')
      assert.is(refused.status, 403)
      assert.is(refused.headers['access-control-allow-origin'], undefined)
      // Any origin may GET by the second rule; the answer (here AccessDenied: the key is private) carries the headers.
      const get = await curlHead(`${env.endpoint}/cli-cors/photo.jpg`, '-H', 'Origin: https://other.example.com')
      assert.is(get.status, 403)
      assert.is(get.headers['access-control-allow-origin'], '*')
    }
    await aws('alice', 's3api', 'delete-bucket-cors', '--bucket', 'cli-cors')
    assert.is(await awsError('alice', 's3api', 'get-bucket-cors', '--bucket', 'cli-cors'), 'NoSuchCORSConfiguration')
    if (tools.curl) assert.is((await curlHead('-X', 'OPTIONS', `${env.endpoint}/cli-cors/photo.jpg`, '-H', 'Origin: https://app.example.com', '-H', 'Access-Control-Request-Method: GET')).status, 403)
  })
})

toolTests('s3cmd', () => {
  function s3cmd(...args: string[]): Promise<string> {
    return run('s3cmd', ['-c', join(dir, 's3cfg'), ...args], {}).then(({ stdout, stderr }) => stdout + stderr)
  }
  const aclLines = (info: string) => info.split('\n').filter((l) => /^\s+ACL:/.test(l)).map((l) => l.replace(/^\s+ACL:\s+/, '')).sort()

  test('s3cmd setacl --acl-public/--acl-private, --acl-grant/--acl-revoke, put -P; info shows the ACL (V4 and --signature-v2)', async () => {
    writeFileSync(join(dir, 's3cfg'), s3cmdConfig(env))
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
  test('s3cmd setcors/delcors: info shows the rules, which answer a browser', async () => {
    writeFileSync(join(dir, 'cors.xml'), [
      '<CORSConfiguration>', '<CORSRule>', '<AllowedOrigin>https://site.example</AllowedOrigin>', '<AllowedMethod>GET</AllowedMethod>',
      '<AllowedMethod>HEAD</AllowedMethod>', '<MaxAgeSeconds>60</MaxAgeSeconds>', '</CORSRule>', '</CORSConfiguration>', '',
    ].join('\n'))
    assert.match(await s3cmd('info', 's3://cmd-acl'), /CORS:\s+none/)
    await s3cmd('setcors', join(dir, 'cors.xml'), 's3://cmd-acl')
    const info = await s3cmd('info', 's3://cmd-acl')
    assert.match(info, /CORS:\s+<\?xml/)
    assert.match(info, /<AllowedOrigin>https:\/\/site\.example<\/AllowedOrigin>/)
    assert.match(info, /<MaxAgeSeconds>60<\/MaxAgeSeconds>/)
    const res = await fetch(`${env.endpoint}/cmd-acl/a.txt`, { method: 'OPTIONS', headers: { origin: 'https://site.example', 'access-control-request-method': 'HEAD' } })
    assert.equal([res.status, res.headers.get('access-control-allow-origin'), res.headers.get('access-control-max-age')], [200, 'https://site.example', '60'])
    assert.match(await s3cmd('delcors', 's3://cmd-acl'), /CORS deleted/)
    assert.match(await s3cmd('info', 's3://cmd-acl'), /CORS:\s+none/)
  })
})

toolTests('boto3', () => {
  /** Runs a python3 program with boto3 and requests; `env.json` in its working directory says where and who. */
  async function python(program: string): Promise<any> {
    writeFileSync(join(dir, 'env.json'), JSON.stringify({ endpoint: env.endpoint, alice: env.alice, bob: env.bob }))
    const { stdout } = await run('python3', ['-c', program], { PYTHONPATH: '', PYTHONDONTWRITEBYTECODE: '1' }).catch((e: Error) => { throw new Error(e.message) })
    return JSON.parse(stdout)
  }
  const prelude = () => [
    'import boto3, json, os, requests',
    'from botocore.config import Config',
    `os.chdir(${JSON.stringify(dir)})`,
    "env = json.load(open('env.json'))",
    "def client(who, sig):",
    "    return boto3.client('s3', endpoint_url=env['endpoint'], region_name='us-east-1', aws_access_key_id=env[who]['awsAccessKey'], aws_secret_access_key=env[who]['awsSecret'], config=Config(signature_version=sig, s3={'addressing_style': 'path'}))",
    'def post(p, name, data, headers={}):',
    "    r = requests.post(p['url'], data=p['fields'], files={'file': (name, data)}, headers=headers)",
    "    return {'status': r.status_code, 'headers': {k.lower(): v for k, v in r.headers.items()}, 'body': r.text}",
  ].join('\n')

  test('boto3 generate_presigned_post (SigV4 and SigV2) sent by requests: conditions, ${filename}, acl, tagging, success_action_status, CORS, another user refused', async () => {
    const s3 = s3Client(env)
    try {
      await s3.send(new CreateBucketCommand({ Bucket: 'py-post' }))
      await s3.send(new PutBucketCorsCommand({ Bucket: 'py-post', CORSConfiguration: { CORSRules: [{ AllowedOrigins: ['https://app.example.com'], AllowedMethods: ['POST'], ExposeHeaders: ['ETag'] }] } }))
    } finally { s3.destroy() }
    const out = await python(prelude() + '\n' + [
      'results = {}',
      "for sig in ['s3v4', 's3']:",
      "    p = client('alice', sig).generate_presigned_post('py-post', sig + '/${filename}',",
      "        Fields={'acl': 'public-read', 'success_action_status': '201', 'x-amz-meta-who': 'browser', 'Content-Type': 'text/plain', 'tagging': '<Tagging><TagSet><Tag><Key>from</Key><Value>form</Value></Tag></TagSet></Tagging>'},",
      "        Conditions=[{'acl': 'public-read'}, {'success_action_status': '201'}, ['starts-with', '$key', sig + '/'], ['content-length-range', 1, 1000], {'x-amz-meta-who': 'browser'}, ['starts-with', '$Content-Type', 'text/'], ['starts-with', '$tagging', '']], ExpiresIn=600)",
      "    results[sig] = {'fields': sorted(p['fields'].keys()), 'ok': post(p, 'hello.txt', b'hello from a form', {'Origin': 'https://app.example.com'}), 'big': post(p, 'big.txt', b'x' * 2000)}",
      "p = client('bob', 's3v4').generate_presigned_post('py-post', 'bob/${filename}', ExpiresIn=600)",
      "results['bob'] = post(p, 'b.txt', b'from bob')",
      "p = client('alice', 's3v4').generate_presigned_post('py-post', 'tampered.txt', ExpiresIn=600)",
      "p['fields']['key'] = 'elsewhere.txt'",
      "results['tampered'] = post(p, 't.txt', b'tampered')",
      "a = client('alice', 's3v4')",
      "results['tags'] = a.get_object_tagging(Bucket='py-post', Key='s3v4/hello.txt')['TagSet']",
      "h = a.head_object(Bucket='py-post', Key='s3/hello.txt')",
      "results['head'] = {'type': h['ContentType'], 'meta': h['Metadata'], 'length': h['ContentLength']}",
      "results['keys'] = sorted(o['Key'] for o in a.list_objects_v2(Bucket='py-post').get('Contents', []))",
      'print(json.dumps(results))',
    ].join('\n'))
    assert.ok(out.s3v4.fields.includes('x-amz-signature') && out.s3v4.fields.includes('x-amz-credential'), 'SigV4 form fields')
    assert.ok(out.s3.fields.includes('signature') && out.s3.fields.includes('AWSAccessKeyId'), 'SigV2 form fields')
    for (const sig of ['s3v4', 's3']) {
      const ok = out[sig].ok
      assert.is(ok.status, 201, `${sig}: ${ok.body}`)
      assert.match(ok.body, new RegExp(`<Key>${sig}/hello\\.txt</Key>`))
      assert.match(ok.body, /<ETag>&quot;[0-9a-f]{32}&quot;<\/ETag>/)
      assert.ok(ok.headers.location.endsWith('/hello.txt'))
      assert.is(out[sig].big.status, 400)
      assert.match(out[sig].big.body, /EntityTooLarge/)
      assert.equal(await anonymousGet('py-post', `${sig}/hello.txt`), { status: 200, body: 'hello from a form' }, 'the acl field made it public-read')
    }
    assert.is(out.s3v4.ok.headers['access-control-allow-origin'], 'https://app.example.com')
    assert.match(out.s3v4.ok.headers['access-control-expose-headers'], /ETag/)
    assert.is(out.bob.status, 403, 'bob may not write into alice\'s bucket, signed form or not')
    assert.match(out.bob.body, /AccessDenied/)
    assert.is(out.tampered.status, 403)
    assert.equal(out.tags, [{ Key: 'from', Value: 'form' }])
    assert.equal(out.head, { type: 'text/plain', meta: { who: 'browser' }, length: 17 })
    assert.equal(out.keys, ['s3/hello.txt', 's3v4/hello.txt'])
  })
})

toolTests('rclone', () => {
  /** rclone with the remote `o3:` signing as `who`, or unsigned (no keys: rclone's anonymous access). */
  function rclone(who: Who, ...args: string[]): Promise<Run> {
    return run('rclone', ['--s3-upload-cutoff', '5M', '--s3-chunk-size', '5M', ...args], {
      RCLONE_CONFIG: join(dir, 'rclone.conf'),
      RCLONE_CONFIG_O3_TYPE: 's3', RCLONE_CONFIG_O3_PROVIDER: 'Other', RCLONE_CONFIG_O3_ENDPOINT: env.endpoint,
      ...(who === 'anonymous' ? {} : { RCLONE_CONFIG_O3_ACCESS_KEY_ID: secretOf(who).awsAccessKey, RCLONE_CONFIG_O3_SECRET_ACCESS_KEY: secretOf(who).awsSecret }),
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

  test('rclone --s3-bucket-acl public-read and --s3-acl public-read: an rclone without keys lists, copies and checks; private objects stay closed to it', async () => {
    const src = join(dir, 'rc-src')
    await rclone('alice', 'mkdir', '--s3-bucket-acl', 'public-read', 'o3:rc-public')
    await rclone('alice', 'copy', '--s3-acl', 'public-read', src, 'o3:rc-public/open')
    // rclone creates the bucket again before a process's first write unless --s3-no-check-bucket;
    // S3 in us-east-1 answers its owner 200 and resets the bucket's ACL to the one sent (below).
    await rclone('alice', 'copy', '--s3-no-check-bucket', join(src, 'a.txt'), 'o3:rc-public/closed')
    assert.equal((await rclone('anonymous', 'lsf', '-R', '--files-only', 'o3:rc-public')).stdout.split('\n').filter(Boolean).sort(), ['closed/a.txt', 'open/a.txt', 'open/sub/big.bin'])
    await rclone('anonymous', 'copy', 'o3:rc-public/open', join(dir, 'rc-anon'))
    assert.ok(readFileSync(join(dir, 'rc-anon', 'sub', 'big.bin')).equals(randomBytes(7 * MiB + 3, 7)))
    await rclone('anonymous', 'check', src, 'o3:rc-public/open')
    // rclone takes a 403 on HEAD for "not a file" (as from S3): it copies nothing, and the GET is refused.
    await rclone('anonymous', 'copyto', 'o3:rc-public/closed/a.txt', join(dir, 'rc-anon', 'closed.txt'))
    assert.not.ok(existsSync(join(dir, 'rc-anon', 'closed.txt')))
    assert.is((await anonymousGet('rc-public', 'closed/a.txt')).status, 403)
    await failsWith(rclone('anonymous', 'copy', src, 'o3:rc-public/anon'), /AccessDenied/, 'public-read does not let anyone write')
    await rclone('alice', 'copy', join(src, 'a.txt'), 'o3:rc-public/again')
    await failsWith(rclone('anonymous', 'lsf', 'o3:rc-public'), /AccessDenied/, "rclone's CreateBucket (x-amz-acl: private) made the bucket private again")
  })
})

test.run()
