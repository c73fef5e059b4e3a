/**
 * Goal: the S3 gateway works with the real s3cmd unchanged, signing with AWS Signature
 * Version 2 (`--signature-v2`, the header form) and with V4: mb, put of a multipart file
 * (5 MiB chunks) and a small one, ls, get, `s3cmd info` of an object and a bucket, sync,
 * `s3cmd del` (one key, and --recursive, which uses DeleteObjects), rb.
 * Method: a real gateway over a mini cluster; s3cmd run as a child process (asynchronously,
 * since the gateway serves from this process) with a config file in a temp dir only. Without
 * the binary the suite is skipped, except under CI=true, where its absence fails.
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
import { startS3Cluster, type S3TestCluster, s3cmdConfig } from './s3-cluster.ts'

let env: S3TestCluster
let dir: string
const MiB = 1024 * 1024
const present = spawnSync('s3cmd', ['--version'], { stdio: 'ignore' }).status === 0

function s3cmd(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('s3cmd', ['-c', join(dir, 's3cfg'), '--multipart-chunk-size-mb=5', ...args], {
      env: { PATH: process.env.PATH, HOME: dir },
      maxBuffer: 16 * 1024 * 1024,
    }, (err, stdout, stderr) => (err ? reject(new Error(`s3cmd ${args.join(' ')} failed (${String(err.code)}): ${stderr} ${stdout}`)) : resolve(stdout + stderr)))
  })
}

/** The ETag the gateway stored, asked with the SDK: `"…-N"` for an object written in N parts. */
async function etagOf(bucket: string, key: string): Promise<string> {
  const s3 = new S3Client({ endpoint: env.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: env.alice.awsAccessKey, secretAccessKey: env.alice.awsSecret } })
  try { return (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag ?? '' } finally { s3.destroy() }
}

const md5hex = (b: Buffer) => createHash('md5').update(b).digest('hex')
const keysIn = async (url: string, ...opts: string[]) =>
  (await s3cmd('ls', '--recursive', ...opts, url)).split('\n').filter(Boolean).map((l) => /s3:\/\/.*$/.exec(l)?.[0] ?? l).sort()

if (!present) {
  if (process.env.CI === 'true') test('s3cmd is installed (CI installs it in .ci/run)', () => assert.unreachable('s3cmd not found on PATH'))
  else test.skip('s3cmd suite: s3cmd is not installed (apt-get install s3cmd)', () => {})
} else {
  test.before(async () => {
    env = await startS3Cluster()
    dir = mkdtempSync(join(tmpdir(), 'o3-s3cmd-'))
    writeFileSync(join(dir, 's3cfg'), s3cmdConfig(env))
  })

  test.after(async () => {
    await env.dispose()
    rmSync(dir, { recursive: true, force: true })
  })

  // s3cmd signs with V4 unless told --signature-v2; s3cmd has no flag that says V4.
  for (const [name, bucket] of [['--signature-v2', 'cmd-v2'], ['(V4)', 'cmd-v4']] as const) {
    const sig = name === '(V4)' ? '--verbose' : name
    test(`s3cmd ${name}: mb, multipart put, get, ls, info, del, sync, rb`, async () => {
      const big = randomBytes(11 * MiB + 7, 11)
      const small = randomBytes(300, 3)
      writeFileSync(join(dir, 'big.bin'), big)
      writeFileSync(join(dir, 'small.txt'), small)
      await s3cmd(sig, 'mb', `s3://${bucket}`)
      await s3cmd(sig, 'put', join(dir, 'big.bin'), `s3://${bucket}/data/big.bin`)
      assert.match(await etagOf(bucket, 'data/big.bin'), /-3"$/, 'uploaded in 3 parts of 5 MiB')
      await s3cmd(sig, 'put', join(dir, 'small.txt'), `s3://${bucket}/data/small.txt`)
      assert.equal(await keysIn(`s3://${bucket}`, sig), [`s3://${bucket}/data/big.bin`, `s3://${bucket}/data/small.txt`])
      await s3cmd(sig, 'get', '--force', `s3://${bucket}/data/big.bin`, join(dir, `down-${bucket}.bin`))
      assert.ok(readFileSync(join(dir, `down-${bucket}.bin`)).equals(big))
      const info = await s3cmd(sig, 'info', `s3://${bucket}/data/big.bin`)
      assert.match(info, /File size:\s+11534343/)
      assert.match(info, new RegExp(`MD5 sum:\\s+${md5hex(big)}`), 'the md5 s3cmd keeps in x-amz-meta-s3cmd-attrs')
      const binfo = await s3cmd(sig, 'info', `s3://${bucket}`)
      assert.match(binfo, /Location:/)
      await s3cmd(sig, 'del', `s3://${bucket}/data/small.txt`)
      assert.equal(await keysIn(`s3://${bucket}`, sig), [`s3://${bucket}/data/big.bin`])

      const tree = join(dir, `tree-${bucket}`)
      mkdirSync(join(tree, 'sub'), { recursive: true })
      writeFileSync(join(tree, "it's & <odd>.txt"), 'odd')
      writeFileSync(join(tree, 'sub', 'b.txt'), 'b')
      await s3cmd(sig, 'sync', `${tree}/`, `s3://${bucket}/tree/`)
      assert.equal(await keysIn(`s3://${bucket}/tree/`, sig), [`s3://${bucket}/tree/it's & <odd>.txt`, `s3://${bucket}/tree/sub/b.txt`])
      await s3cmd(sig, 'del', '--recursive', '--force', `s3://${bucket}/`)
      assert.equal(await keysIn(`s3://${bucket}`, sig), [])
      await s3cmd(sig, 'rb', `s3://${bucket}`)
      assert.not.match(await s3cmd(sig, 'ls'), bucket)
    })
  }
}

test.run()
