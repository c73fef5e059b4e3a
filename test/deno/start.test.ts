/**
 * Goal: `deno task start` runs the whole embedded cluster, S3 gateway included, under Deno,
 * and real S3 clients use it. Method: spawn the task (Deno from npm) on free ports in a temp
 * dir, read the endpoints and key pair it prints as JSON, then PUT, GET, LIST and DELETE
 * with @aws-sdk/client-s3 from Node; stop it with SIGTERM and check it exits cleanly.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { randomBytes } from '../helpers.ts'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const dataDir = mkdtempSync(join(tmpdir(), 'o3-deno-start-'))
let child: ChildProcess
let ready: { s3: string; om: string; s3Key: { awsAccessKey: string; awsSecret: string } }

test.before(async () => {
  child = spawn(join(root, 'node_modules/.bin/deno'), ['task', '-q', 'start', '--ports', 'free', '--json', '--data', dataDir], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, O3_LOG: 'warn', NO_COLOR: '1' } })
  let out = '', err = ''
  child.stderr!.on('data', (d) => (err += d))
  ready = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`deno task start not ready after 90 s: ${err}`)), 90_000)
    child.stdout!.on('data', (d) => { out += d; try { resolve(JSON.parse(out)); clearTimeout(timer) } catch { /* not all of it yet */ } })
    child.once('exit', (code) => reject(new Error(`deno task start exited ${code}: ${err}`)))
  })
})

test.after(async () => {
  if (child.exitCode === null) { child.kill('SIGKILL'); await new Promise((r) => child.once('exit', r)) }
  rmSync(dataDir, { recursive: true, force: true })
})

test('deno task start serves S3 to the AWS SDK', async () => {
  assert.match(ready.s3, /^http:\/\/127\.0\.0\.1:\d+$/)
  const s3 = new S3Client({ endpoint: ready.s3, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: ready.s3Key.awsAccessKey, secretAccessKey: ready.s3Key.awsSecret } })
  await s3.send(new CreateBucketCommand({ Bucket: 'deno-bucket' }))
  const body = randomBytes(3 * 1024 * 1024 + 5, 9)
  await s3.send(new PutObjectCommand({ Bucket: 'deno-bucket', Key: 'dir/obj', Body: body }))
  const got = await s3.send(new GetObjectCommand({ Bucket: 'deno-bucket', Key: 'dir/obj' }))
  assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(body))
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: 'deno-bucket' }))
  assert.equal(listed.Contents?.map((c) => c.Key), ['dir/obj'])
  await s3.send(new DeleteObjectCommand({ Bucket: 'deno-bucket', Key: 'dir/obj' }))
  assert.is((await s3.send(new ListObjectsV2Command({ Bucket: 'deno-bucket' }))).KeyCount, 0)
  s3.destroy()
})

test('deno task start stops on SIGTERM', async () => {
  child.kill('SIGTERM')
  const code = await new Promise((r) => child.once('exit', r))
  assert.is(code, 0)
})

test.run()
