/**
 * Goal: the S3 gateway works with the aws CLI unchanged: `aws s3 cp` of a 40 MiB file up
 * (multipart by default) and down, `aws s3 ls`, `aws s3 sync` of a small tree, `aws s3 rm`,
 * and `aws s3api` with SHA-256 checksums and get-object-attributes.
 * Method: a real gateway over a mini cluster; the CLI run as a child process (asynchronously,
 * since the gateway serves from this process) with credentials in its environment only.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { startS3Cluster, type S3TestCluster } from './s3-cluster.ts'

let env: S3TestCluster
let dir: string

function aws(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('aws', ['--endpoint-url', env.endpoint, ...args], {
      env: {
        PATH: process.env.PATH, HOME: dir, AWS_ACCESS_KEY_ID: env.alice.awsAccessKey, AWS_SECRET_ACCESS_KEY: env.alice.awsSecret,
        AWS_DEFAULT_REGION: 'us-east-1', AWS_CONFIG_FILE: join(dir, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'),
      },
      maxBuffer: 16 * 1024 * 1024,
    }, (err, stdout, stderr) => (err ? reject(new Error(`aws ${args.join(' ')} failed (${String(err.code)}): ${stderr} ${stdout}`)) : resolve(stdout)))
  })
}

async function keyCount(prefix: string): Promise<number> {
  return JSON.parse(await aws('s3api', 'list-objects-v2', '--bucket', 'cli-bucket', '--prefix', prefix, '--output', 'json') || '{}').Contents?.length ?? 0
}

test.before(async () => {
  env = await startS3Cluster()
  dir = mkdtempSync(join(tmpdir(), 'o3-awscli-'))
})

test.after(async () => {
  await env.dispose()
  rmSync(dir, { recursive: true, force: true })
})

test('aws s3 mb, cp of 40 MiB up and down, ls, rm', async () => {
  const big = randomBytes(40 * 1024 * 1024, 40)
  writeFileSync(join(dir, 'big.bin'), big)
  await aws('s3', 'mb', 's3://cli-bucket')
  await aws('s3', 'cp', '--only-show-errors', join(dir, 'big.bin'), 's3://cli-bucket/data/big.bin')
  const ls = await aws('s3', 'ls', 's3://cli-bucket/data/')
  assert.match(ls, /41943040 big\.bin/)
  await aws('s3', 'cp', '--only-show-errors', 's3://cli-bucket/data/big.bin', join(dir, 'down.bin'))
  assert.ok(readFileSync(join(dir, 'down.bin')).equals(big))
  const etag = JSON.parse(await aws('s3api', 'head-object', '--bucket', 'cli-bucket', '--key', 'data/big.bin')).ETag as string
  assert.match(etag, /-\d+"$/, 'uploaded in parts')
  await aws('s3', 'rm', 's3://cli-bucket/data/big.bin')
  // `aws s3 ls` exits 1 when it finds nothing, so ask s3api.
  assert.is(await keyCount('data/'), 0)
})

test('aws s3 sync of a small tree, then rm --recursive', async () => {
  const tree = join(dir, 'tree')
  for (const [name, n] of [['a.txt', 10], ['sub/b.txt', 2000], ['sub/deeper/c.bin', 70_000]] as const) {
    mkdirSync(join(tree, name, '..'), { recursive: true })
    writeFileSync(join(tree, name), randomBytes(n, n))
  }
  await aws('s3', 'sync', tree, 's3://cli-bucket/tree/')
  const ls = await aws('s3', 'ls', '--recursive', 's3://cli-bucket/tree/')
  assert.equal(ls.trim().split('\n').map((l) => l.trim().split(/\s+/).pop()), ['tree/a.txt', 'tree/sub/b.txt', 'tree/sub/deeper/c.bin'])
  // A second sync finds nothing to do.
  assert.is((await aws('s3', 'sync', tree, 's3://cli-bucket/tree/')).trim(), '')
  await aws('s3', 'sync', 's3://cli-bucket/tree/', join(dir, 'back'))
  assert.ok(readFileSync(join(dir, 'back', 'sub/deeper/c.bin')).equals(randomBytes(70_000, 70_000)))
  await aws('s3', 'rm', '--recursive', 's3://cli-bucket/tree/')
  assert.is(await keyCount(''), 0)
})

test('aws s3api with checksums: put-object --checksum-algorithm, get-object --checksum-mode (botocore checks it), get-object-attributes', async () => {
  const body = randomBytes(100_000, 7)
  writeFileSync(join(dir, 'sum.bin'), body)
  const sha256 = createHash('sha256').update(body).digest('base64')
  const put = JSON.parse(await aws('s3api', 'put-object', '--bucket', 'cli-bucket', '--key', 'sum.bin', '--body', join(dir, 'sum.bin'), '--checksum-algorithm', 'SHA256', '--output', 'json'))
  assert.is(put.ChecksumSHA256, sha256)
  const got = JSON.parse(await aws('s3api', 'get-object', '--bucket', 'cli-bucket', '--key', 'sum.bin', '--checksum-mode', 'ENABLED', join(dir, 'sum.back'), '--output', 'json'))
  assert.is(got.ChecksumSHA256, sha256)
  assert.ok(readFileSync(join(dir, 'sum.back')).equals(body))
  const attributes = JSON.parse(await aws('s3api', 'get-object-attributes', '--bucket', 'cli-bucket', '--key', 'sum.bin', '--object-attributes', 'Checksum', 'ObjectSize', '--output', 'json'))
  assert.equal(attributes.Checksum, { ChecksumSHA256: sha256, ChecksumType: 'FULL_OBJECT' })
  assert.is(attributes.ObjectSize, body.length)
  await aws('s3', 'rm', 's3://cli-bucket/sum.bin')
  await aws('s3', 'rb', 's3://cli-bucket')
})

test.run()
