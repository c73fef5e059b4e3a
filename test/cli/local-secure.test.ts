/**
 * Goal: `o3 local --secure` gives a user everything to work with a secure cluster: https
 * endpoints, DATA/ca.pem, the administrator's certificate and key (key readable by its owner
 * only), admin's S3 key pair, and lines that, pasted, make `o3 sh`, `o3 admin` and an S3 client
 * work over TLS; without them a client is refused. In-process and as processes. Method: start
 * `o3 local --secure --ports free --datanodes 1` (once `--json`, once as printed for a person),
 * then bin/o3.js with the printed O3_CLIENT_* environment and the AWS SDK trusting DATA/ca.pem;
 * `o3 freon s3kg` against its https gateway with the CA from each variable, and from none.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { Agent as HttpsAgent } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'

const o3 = fileURLToPath(new URL('../../../bin/o3.js', import.meta.url))
const root = mkdtempSync(join(tmpdir(), 'o3-local-secure-'))
const started: ChildProcess[] = []
/** What the in-process cluster of the first test printed: its pasted environment and S3 endpoint. */
let inproc: { env: Record<string, string>; endpoint: string } | undefined

interface Printed { scm: string; om: string; s3: string; s3Key: { awsAccessKey: string; awsSecret: string }; secure?: { caFile: string; admin: string; certFile: string; keyFile: string } }

/** `o3 local --secure ...` until it prints what it prints once ready: the JSON with --json, else the text up to its last line. */
function startLocal(name: string, extra: string[]): Promise<{ out: string; dataDir: string }> {
  const dataDir = join(root, name)
  const child = spawn(process.execPath, [o3, 'local', '--secure', '--ports', 'free', '--datanodes', '1', '--data', dataDir, ...extra], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, O3_LOG: 'warn' } })
  started.push(child)
  let out = '', err = ''
  child.stderr!.on('data', (d) => (err += d))
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d
      if (extra.includes('--json')) { try { JSON.parse(out); resolve({ out, dataDir }) } catch { /* not whole yet */ } }
      else if (out.includes('Stop with Ctrl-C')) resolve({ out, dataDir })
    })
    child.once('exit', (code) => reject(new Error(`o3 local --secure exited ${code}: ${err}`)))
  })
}

function o3Run(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [o3, ...args], { encoding: 'utf8', env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

/** The `export A=B C=D` lines a person pastes, as an environment. */
function pastedEnv(out: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const line of out.split('\n').filter((l) => l.trim().startsWith('export '))) {
    for (const [, k, v] of line.replace(/#.*/, '').matchAll(/(\w+)=(\S+)/g)) env[k] = v
  }
  return env
}

test.after(async () => {
  for (const c of started) c.kill('SIGTERM')
  await Promise.all(started.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(undefined) : c.once('exit', r)))))
  rmSync(root, { recursive: true, force: true })
})

test('o3 local --secure (in-process) prints https endpoints, writes the CA and the administrator\'s files, and its lines make o3 sh, o3 admin and S3 work', async () => {
  const { out, dataDir } = await startLocal('inproc', [])
  assert.match(out, /O3 is ready, secure/)
  assert.match(out, /S3 gateway\s*│\s*https:\/\//)
  const env = pastedEnv(out)
  assert.is(env.O3_CLIENT_CAFILE, join(dataDir, 'ca.pem'))
  assert.is(env.O3_CLIENT_CERTFILE, join(dataDir, 'admin.pem'))
  assert.is(env.AWS_CA_BUNDLE, join(dataDir, 'ca.pem'))
  assert.match(readFileSync(env.O3_CLIENT_CAFILE, 'utf8'), /BEGIN CERTIFICATE/)
  assert.is(statSync(env.O3_CLIENT_KEYFILE).mode & 0o777, 0o600)
  const [, om] = out.match(/--om (\S+)/)!, [, scm] = out.match(/--scm (\S+)/)!
  const at = ['--om', om, '--scm', scm]
  // Without the pasted lines: refused.
  const bare = await o3Run(['sh', 'volume', 'create', '/refused', ...at], { O3_CLIENT_CAFILE: '', O3_CLIENT_ACCESSKEY: '', O3_CLIENT_SECRET: '', O3_CLIENT_CERTFILE: '', O3_CLIENT_KEYFILE: '' })
  assert.is.not(bare.code, 0, bare.stdout)
  const withEnv = (args: string[]) => o3Run([...args, ...at], env)
  for (const args of [['sh', 'volume', 'create', '/vol1'], ['sh', 'bucket', 'create', '/vol1/bucket1']]) {
    const r = await withEnv(args)
    assert.is(r.code, 0, r.stderr)
  }
  const file = join(root, 'hello.txt')
  writeFileSync(file, 'hello over TLS')
  assert.is((await withEnv(['sh', 'key', 'put', '/vol1/bucket1/hello', file])).code, 0)
  const got = join(root, 'hello.back')
  assert.is((await withEnv(['sh', 'key', 'get', '/vol1/bucket1/hello', got])).code, 0)
  assert.is(readFileSync(got, 'utf8'), 'hello over TLS')
  const safemode = await withEnv(['admin', 'safemode', 'status'])
  assert.is(safemode.code, 0, safemode.stderr)
  // S3 with the printed AWS lines, trusting the printed CA.
  const endpoint = out.match(/aws --endpoint-url (https:\/\/\S+)/)![1]
  inproc = { env, endpoint }
  const s3 = new S3Client({
    endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
    requestHandler: new NodeHttpHandler({ httpsAgent: new HttpsAgent({ ca: readFileSync(env.AWS_CA_BUNDLE, 'utf8') }) }),
  })
  try {
    await s3.send(new CreateBucketCommand({ Bucket: 'secure-bucket' }))
    await s3.send(new PutObjectCommand({ Bucket: 'secure-bucket', Key: 'k', Body: 'via https' }))
    const o = await s3.send(new GetObjectCommand({ Bucket: 'secure-bucket', Key: 'k' }))
    assert.is(await o.Body!.transformToString(), 'via https')
  } finally {
    s3.destroy()
  }
})

test('o3 freon s3kg trusts the CA from O3_CLIENT_CAFILE or AWS_CA_BUNDLE; without it, the error names both', async () => {
  assert.ok(inproc, 'the in-process cluster of the first test runs')
  const { env, endpoint } = inproc
  const caFile = env.O3_CLIENT_CAFILE
  const s3kg = (bucket: string, trust: Record<string, string>) => o3Run(
    ['freon', 's3kg', '-n', '3', '-t', '2', '-s', '1KiB', '-b', bucket, '-e', endpoint, '--access-key', env.AWS_ACCESS_KEY_ID, '--secret-key', env.AWS_SECRET_ACCESS_KEY, '--json'],
    // Only what each case names: the host may set AWS_CA_BUNDLE itself.
    { O3_CLIENT_CAFILE: '', AWS_CA_BUNDLE: '', NODE_EXTRA_CA_CERTS: '', ...trust })
  for (const [bucket, trust] of [['freon-o3ca', { O3_CLIENT_CAFILE: caFile }], ['freon-awsca', { AWS_CA_BUNDLE: caFile }]] as const) {
    const r = await s3kg(bucket, trust)
    assert.is(r.code, 0, `${Object.keys(trust)[0]}: ${r.stderr}`)
    assert.is((JSON.parse(r.stdout) as { succeeded: number }).succeeded, 3)
  }
  const none = await s3kg('freon-noca', {})
  assert.is(none.code, 1, none.stdout)
  assert.match(none.stderr, /^o3: Cannot verify the certificate of https:\/\/127\.0\.0\.1:\d+: .*; set O3_CLIENT_CAFILE or AWS_CA_BUNDLE to the CA that signed it/)
  // A CA that did not sign the gateway's certificate (admin's own certificate): named in the hint.
  const wrong = await s3kg('freon-wrongca', { AWS_CA_BUNDLE: env.O3_CLIENT_CERTFILE })
  assert.is(wrong.code, 1, wrong.stdout)
  assert.match(wrong.stderr, `AWS_CA_BUNDLE=${env.O3_CLIENT_CERTFILE} did not verify it`)
  const unreadable = await s3kg('freon-noca', { O3_CLIENT_CAFILE: join(root, 'missing.pem') })
  assert.is(unreadable.code, 2, unreadable.stdout)
  assert.match(unreadable.stderr, `o3: Cannot read O3_CLIENT_CAFILE ${join(root, 'missing.pem')}`)
})

test('a data directory a secure cluster wrote (its ca.pem) is not started without --secure', async () => {
  const dataDir = join(root, 'was-secure')
  mkdirSync(dataDir, { recursive: true })
  writeFileSync(join(dataDir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\n')
  const r = await o3Run(['local', '--ports', 'free', '--datanodes', '1', '--data', dataDir], {})
  assert.is(r.code, 2, r.stderr)
  assert.match(r.stderr, `${dataDir} holds a cluster started with --secure: add --secure, or use another --data`)
  assert.not.ok(existsSync(join(dataDir, 'scm')), 'nothing started')
})

test('o3 local --secure --processes --json names the CA and administrator files and an https gateway that works', async () => {
  const { out, dataDir } = await startLocal('processes', ['--processes', '--json'])
  const p = JSON.parse(out) as Printed
  assert.match(p.s3, /^https:\/\//)
  assert.equal(p.secure, { caFile: join(dataDir, 'ca.pem'), admin: 'admin', certFile: join(dataDir, 'admin.pem'), keyFile: join(dataDir, 'admin.key') })
  // The services' settings carry the reusable bootstrap token (enrolls any om/datanode/s3g
  // identity: an s3g acts for any user): another user of the host must not read it there, nor in a log.
  const token = readFileSync(join(dataDir, 'scm', 'ca', 'bootstrap-token'), 'utf8').trim()
  for (const sub of ['conf', 'logs']) {
    assert.is(statSync(join(dataDir, sub)).mode & 0o077, 0, `DATA/${sub} is for its owner only`)
    for (const f of readdirSync(join(dataDir, sub))) {
      assert.is(statSync(join(dataDir, sub, f)).mode & 0o077, 0, `DATA/${sub}/${f} is readable by its owner only`)
      if (sub === 'logs') assert.not.ok(readFileSync(join(dataDir, sub, f), 'utf8').includes(token.split('.')[1]!), `DATA/logs/${f} holds no bootstrap token`)
    }
  }
  const s3 = new S3Client({
    endpoint: p.s3, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1,
    credentials: { accessKeyId: p.s3Key.awsAccessKey, secretAccessKey: p.s3Key.awsSecret },
    requestHandler: new NodeHttpHandler({ httpsAgent: new HttpsAgent({ ca: readFileSync(p.secure!.caFile, 'utf8') }) }),
  })
  try {
    await s3.send(new CreateBucketCommand({ Bucket: 'processes-bucket' }))
    await s3.send(new PutObjectCommand({ Bucket: 'processes-bucket', Key: 'k', Body: 'across processes' }))
    const o = await s3.send(new GetObjectCommand({ Bucket: 'processes-bucket', Key: 'k' }))
    assert.is(await o.Body!.transformToString(), 'across processes')
  } finally {
    s3.destroy()
  }
})

test.run()
