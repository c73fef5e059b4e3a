/**
 * Goal: the S3 gateway works with the real rclone binary unchanged, for the operations that
 * found defects before: multipart upload (rclone quotes ETags as `&#34;` in
 * CompleteMultipartUpload), `rclone check` and `md5sum` against the local files, server-side
 * copy of a multipart object (UploadPartCopy above --s3-copy-cutoff), keys with `'`, `&` and
 * `<` (rclone writes `&#39;` in XML), `rclone delete`, `rclone purge` (which asks
 * GetBucketVersioning) with nothing logged at ERROR, and `rclone lsjson`.
 * Method: a real gateway over a mini cluster; rclone run as a child process (asynchronously,
 * since the gateway serves from this process) configured only through RCLONE_CONFIG_O3_*
 * environment variables, with 5 MiB cutoffs so multipart happens at small sizes. Without the
 * binary the suite is skipped, except under CI=true, where its absence fails.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { startS3Cluster, type S3TestCluster } from './s3-cluster.ts'

let env: S3TestCluster
let dir: string
const MiB = 1024 * 1024
const present = spawnSync('rclone', ['version'], { stdio: 'ignore' }).status === 0

interface Run { stdout: string; stderr: string }

function rclone(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile('rclone', ['--s3-upload-cutoff', '5M', '--s3-chunk-size', '5M', '--s3-copy-cutoff', '5M', ...args], {
      env: {
        PATH: process.env.PATH, HOME: dir, RCLONE_CONFIG: join(dir, 'rclone.conf'),
        RCLONE_CONFIG_O3_TYPE: 's3', RCLONE_CONFIG_O3_PROVIDER: 'Other', RCLONE_CONFIG_O3_ENDPOINT: env.endpoint,
        RCLONE_CONFIG_O3_ACCESS_KEY_ID: env.alice.awsAccessKey, RCLONE_CONFIG_O3_SECRET_ACCESS_KEY: env.alice.awsSecret,
        RCLONE_CONFIG_O3_REGION: 'us-east-1',
      },
      maxBuffer: 16 * 1024 * 1024,
    }, (err, stdout, stderr) => (err ? reject(new Error(`rclone ${args.join(' ')} failed (${String(err.code)}): ${stderr} ${stdout}`)) : resolve({ stdout, stderr })))
  })
}

/** The ETag the gateway stored, asked with the SDK: `"…-N"` for an object written in N parts. */
async function etagOf(key: string): Promise<string> {
  const s3 = new S3Client({ endpoint: env.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: env.alice.awsAccessKey, secretAccessKey: env.alice.awsSecret } })
  try { return (await s3.send(new HeadObjectCommand({ Bucket: 'rc-bucket', Key: key }))).ETag ?? '' } finally { s3.destroy() }
}

const names = async (remote: string) => (await rclone('lsf', '-R', remote)).stdout.split('\n').filter(Boolean).sort()
const md5hex = (b: Buffer) => createHash('md5').update(b).digest('hex')

if (!present) {
  if (process.env.CI === 'true') test('rclone is installed (CI installs it in .ci/run)', () => assert.unreachable('rclone not found on PATH'))
  else test.skip('rclone suite: rclone is not installed (apt-get install rclone)', () => {})
} else {
  test.before(async () => {
    env = await startS3Cluster()
    dir = mkdtempSync(join(tmpdir(), 'o3-rclone-'))
    writeFileSync(join(dir, 'rclone.conf'), '')
  })

  test.after(async () => {
    await env.dispose()
    rmSync(dir, { recursive: true, force: true })
  })

  test('rclone mkdir, multipart copy up, check, md5sum, copy back', async () => {
    const src = join(dir, 'src')
    mkdirSync(src)
    const big = randomBytes(12 * MiB + 123, 12)
    const small = randomBytes(1000, 1)
    writeFileSync(join(src, 'big.bin'), big)
    writeFileSync(join(src, 'small.txt'), small)
    await rclone('mkdir', 'o3:rc-bucket')
    await rclone('copy', src, 'o3:rc-bucket/data')
    assert.equal(await names('o3:rc-bucket/data'), ['big.bin', 'small.txt'])
    assert.match(await etagOf('data/big.bin'), /-3"$/, 'uploaded in 3 parts of 5 MiB')
    await rclone('check', src, 'o3:rc-bucket/data')
    const sums = (await rclone('md5sum', 'o3:rc-bucket/data')).stdout
    assert.match(sums, `${md5hex(big)}  big.bin`)
    assert.match(sums, `${md5hex(small)}  small.txt`)
    await rclone('copy', 'o3:rc-bucket/data', join(dir, 'back'))
    assert.ok(readFileSync(join(dir, 'back', 'big.bin')).equals(big))
  })

  test('rclone copyto server-side of a multipart object (UploadPartCopy)', async () => {
    const { stderr } = await rclone('-vv', 'copyto', 'o3:rc-bucket/data/big.bin', 'o3:rc-bucket/copy/big.bin')
    assert.match(stderr, /Copied \(server-side copy\)/)
    assert.match(await etagOf('copy/big.bin'), /-3"$/, 'copied in 3 parts (UploadPartCopy)')
    await rclone('check', 'o3:rc-bucket/data', 'o3:rc-bucket/copy', '--include', 'big.bin')
    await rclone('copyto', 'o3:rc-bucket/copy/big.bin', join(dir, 'copied.bin'))
    assert.ok(readFileSync(join(dir, 'copied.bin')).equals(randomBytes(12 * MiB + 123, 12)))
  })

  test("keys with ', & and <: copy, list, delete", async () => {
    const odd = join(dir, 'odd')
    mkdirSync(odd)
    for (const n of ["it's.txt", 'a&b<c.txt', 'keep.txt']) writeFileSync(join(odd, n), n)
    await rclone('copy', odd, 'o3:rc-bucket/odd')
    assert.equal(await names('o3:rc-bucket/odd'), ['a&b<c.txt', "it's.txt", 'keep.txt'])
    await rclone('check', odd, 'o3:rc-bucket/odd')
    await rclone('delete', 'o3:rc-bucket/odd', '--include', "it's.txt", '--include', 'a&b<c.txt')
    assert.equal(await names('o3:rc-bucket/odd'), ['keep.txt'])
  })

  test('rclone lsjson, then purge logs no error and removes the bucket', async () => {
    const list = JSON.parse((await rclone('lsjson', '-R', '--hash', 'o3:rc-bucket')).stdout) as Array<{ Path: string; Size: number; IsDir: boolean; Hashes?: Record<string, string> }>
    const big = list.find((e) => e.Path === 'data/big.bin')
    assert.ok(big, 'lsjson lists data/big.bin')
    assert.is(big.Size, 12 * MiB + 123)
    assert.is(big.Hashes?.md5, md5hex(randomBytes(12 * MiB + 123, 12)))
    assert.ok(list.some((e) => e.Path === 'odd/keep.txt' && !e.IsDir))
    const { stderr } = await rclone('-v', 'purge', 'o3:rc-bucket')
    assert.not.match(stderr, /ERROR|NOTICE: .*[Ff]ailed/)
    const buckets = (await rclone('lsf', 'o3:')).stdout
    assert.not.match(buckets, /rc-bucket/)
  })
}

test.run()
