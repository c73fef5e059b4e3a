/**
 * Goal: real clients work against `o3 local --secure` as README says, over HTTPS trusting
 * DATA/ca.pem: the aws CLI (s3 mb/cp/ls/rm, a 20 MB multipart upload, s3api put-object/get-object,
 * --ca-bundle), rclone (--ca-cert), s3cmd (--ca-certs), boto3 (verify=), and `o3 sh key put/get`
 * of a 30 MB file (block tokens through the CLI); a client without credentials, without the CA,
 * or speaking plain http:// to the https port fails with a clear error.
 * Method: one `o3 local --secure --ports free --datanodes 1` as a child process; each tool run
 * with only the printed environment (HOME a temp dir). A missing tool skips its test, except
 * under CI=true, where its absence fails.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const o3 = fileURLToPath(new URL('../../../bin/o3.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'o3-secure-clients-'))
const dataDir = join(dir, 'data')
const MB = 1_000_000
let child: ChildProcess
let out = ''
let env: Record<string, string> = {}
let endpoint = ''
let at: string[] = []
const tools = {
  aws: spawnSync('aws', ['--version'], { stdio: 'ignore' }).status === 0,
  rclone: spawnSync('rclone', ['version'], { stdio: 'ignore' }).status === 0,
  s3cmd: spawnSync('s3cmd', ['--version'], { stdio: 'ignore' }).status === 0,
  boto3: spawnSync('python3', ['-c', 'import boto3'], { stdio: 'ignore' }).status === 0,
}

interface Run { code: number; stdout: string; stderr: string }

/** `cmd args` with only PATH, a temp HOME and `extra` in its environment. */
function run(cmd: string, args: string[], extra: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', maxBuffer: 16 * MB, env: { PATH: process.env.PATH!, HOME: dir, AWS_CONFIG_FILE: join(dir, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none'), ...extra } },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }))
  })
}
const ok = (r: Run, what: string) => assert.is(r.code, 0, `${what}: ${r.stderr} ${r.stdout}`)
const file = (name: string) => join(dir, name)
const same = (a: string, b: string) => assert.ok(readFileSync(file(a)).equals(readFileSync(file(b))), `${a} and ${b} differ`)

function toolTest(name: keyof typeof tools, title: string, body: () => Promise<void>): void {
  if (tools[name]) test(title, body)
  else if (process.env.CI === 'true') test(`${name} is installed`, () => assert.unreachable(`${name} not found on PATH`))
  else test.skip(`${title}: ${name} is not installed`, () => {})
}

test.before(async () => {
  child = spawn(process.execPath, [o3, 'local', '--secure', '--ports', 'free', '--datanodes', '1', '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, O3_LOG: 'warn' } })
  let err = ''
  child.stderr!.on('data', (d) => (err += d))
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => { out += d; if (out.includes('Stop with Ctrl-C')) resolve() })
    child.once('exit', (code) => reject(new Error(`o3 local --secure exited ${code}: ${err}`)))
  })
  for (const line of out.split('\n').filter((l) => l.trim().startsWith('export '))) {
    for (const [, k, v] of line.replace(/#.*/, '').matchAll(/(\w+)=(\S+)/g)) env[k] = v
  }
  endpoint = out.match(/aws --endpoint-url (https:\/\/\S+)/)![1]
  at = ['--om', out.match(/--om (\S+)/)![1], '--scm', out.match(/--scm (\S+)/)![1]]
  writeFileSync(file('big20'), randomBytes(20 * MB))
  writeFileSync(file('big30'), randomBytes(30 * 1024 * 1024))
})

test.after(async () => {
  child.kill('SIGTERM')
  if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r))
  rmSync(dir, { recursive: true, force: true })
})

const awsEnv = () => ({ AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION: 'us-east-1' })

toolTest('aws', 'aws CLI over HTTPS: s3 mb/cp/ls/rm, a 20 MB multipart upload, s3api put/get, with AWS_CA_BUNDLE or --ca-bundle', async () => {
  const aws = (...args: string[]) => run('aws', ['--endpoint-url', endpoint, ...args], { ...awsEnv(), AWS_CA_BUNDLE: env.AWS_CA_BUNDLE })
  ok(await aws('s3', 'mb', 's3://awsbucket'), 'mb')
  ok(await aws('s3', 'cp', file('big20'), 's3://awsbucket/big20'), 'cp up (multipart)')
  ok(await aws('s3', 'cp', 's3://awsbucket/big20', file('aws20.back')), 'cp down')
  same('big20', 'aws20.back')
  const head = JSON.parse((await aws('s3api', 'head-object', '--bucket', 'awsbucket', '--key', 'big20')).stdout)
  assert.match(head.ETag, /-\d+"$/, 'a multipart ETag')
  ok(await aws('s3api', 'put-object', '--bucket', 'awsbucket', '--key', 'api', '--body', file('big30')), 'put-object')
  ok(await aws('s3api', 'get-object', '--bucket', 'awsbucket', '--key', 'api', file('api.back')), 'get-object')
  same('big30', 'api.back')
  // --ca-bundle alone (no AWS_CA_BUNDLE), as README's table says.
  const ls = await run('aws', ['--endpoint-url', endpoint, '--ca-bundle', env.AWS_CA_BUNDLE, 's3', 'ls', 's3://awsbucket'], awsEnv())
  ok(ls, 'ls --ca-bundle')
  assert.match(ls.stdout, /big20/)
  ok(await aws('s3', 'rm', 's3://awsbucket/big20'), 'rm')
  assert.not.match((await aws('s3', 'ls', 's3://awsbucket')).stdout, /big20/)
  // Refusals: no CA, no signature, plain http:// to the https port.
  const noCa = await run('aws', ['--endpoint-url', endpoint, 's3', 'ls', 's3://awsbucket'], awsEnv())
  assert.match(noCa.stderr, /CERTIFICATE_VERIFY_FAILED/)
  const unsigned = await run('aws', ['--endpoint-url', endpoint, '--ca-bundle', env.AWS_CA_BUNDLE, '--no-sign-request', 's3', 'ls', 's3://awsbucket'], awsEnv())
  assert.match(unsigned.stderr, /AccessDenied/)
  const http = await run('aws', ['--endpoint-url', endpoint.replace('https:', 'http:'), 's3', 'ls', 's3://awsbucket'], awsEnv())
  assert.match(http.stderr, /InvalidRequest.*serves HTTPS/)
})

toolTest('rclone', 'rclone over HTTPS with --ca-cert: copy up, list, copy down, delete', async () => {
  // rclone refuses AWS_CA_BUNDLE ("unsupported transport"): it takes --ca-cert, without that variable.
  const rclone = (...args: string[]) => run('rclone', ['-q', '--ca-cert', env.AWS_CA_BUNDLE, '--s3-provider', 'Other', '--s3-endpoint', endpoint, '--s3-access-key-id', env.AWS_ACCESS_KEY_ID,
    '--s3-secret-access-key', env.AWS_SECRET_ACCESS_KEY, '--s3-region', 'us-east-1', '--s3-force-path-style=true', ...args])
  ok(await rclone('mkdir', ':s3:rclonebucket'), 'mkdir')
  ok(await rclone('copyto', file('big20'), ':s3:rclonebucket/rc20'), 'copyto up')
  assert.match((await rclone('ls', ':s3:rclonebucket')).stdout, /20000000 rc20/)
  ok(await rclone('copyto', ':s3:rclonebucket/rc20', file('rc20.back')), 'copyto down')
  same('big20', 'rc20.back')
  ok(await rclone('deletefile', ':s3:rclonebucket/rc20'), 'deletefile')
})

toolTest('s3cmd', 's3cmd over HTTPS with --ca-certs: mb, put (multipart), ls, get, del', async () => {
  const host = endpoint.replace('https://', '')
  const s3cmd = (...args: string[]) => run('s3cmd', ['-c', join(dir, 'none'), `--access_key=${env.AWS_ACCESS_KEY_ID}`, `--secret_key=${env.AWS_SECRET_ACCESS_KEY}`,
    `--host=${host}`, `--host-bucket=${host}`, '--ssl', `--ca-certs=${env.AWS_CA_BUNDLE}`, '--multipart-chunk-size-mb=5', ...args])
  ok(await s3cmd('mb', 's3://s3cmdbucket'), 'mb')
  ok(await s3cmd('put', file('big20'), 's3://s3cmdbucket/s20'), 'put')
  assert.match((await s3cmd('ls', 's3://s3cmdbucket')).stdout, /20000000\s+s3:\/\/s3cmdbucket\/s20/)
  ok(await s3cmd('get', '--force', 's3://s3cmdbucket/s20', file('s20.back')), 'get')
  same('big20', 's20.back')
  ok(await s3cmd('del', 's3://s3cmdbucket/s20'), 'del')
})

toolTest('boto3', 'boto3 over HTTPS with verify=ca.pem: put/get and a managed (multipart) upload', async () => {
  const script = `
import boto3, sys
s3 = boto3.client('s3', endpoint_url=sys.argv[1], verify=sys.argv[2], region_name='us-east-1')
s3.create_bucket(Bucket='botobucket')
s3.put_object(Bucket='botobucket', Key='small', Body=b'over tls')
assert s3.get_object(Bucket='botobucket', Key='small')['Body'].read() == b'over tls'
s3.upload_file(sys.argv[3], 'botobucket', 'big20')
s3.download_file('botobucket', 'big20', sys.argv[4])
print(s3.head_object(Bucket='botobucket', Key='big20')['ETag'])
`
  const r = await run('python3', ['-c', script, endpoint, env.AWS_CA_BUNDLE, file('big20'), file('boto.back')], awsEnv())
  ok(r, 'boto3')
  assert.match(r.stdout, /-\d+"/, 'a multipart ETag')
  same('big20', 'boto.back')
})

test('o3 sh with the printed O3_CLIENT_* env: a 30 MiB key put and got back (block tokens); without the CA a clear refusal', async () => {
  const sh = (...args: string[]) => run(process.execPath, [o3, 'sh', ...args, ...at], env)
  ok(await sh('volume', 'create', '/vol1'), 'volume create')
  ok(await sh('bucket', 'create', '/vol1/bucket1'), 'bucket create')
  ok(await sh('key', 'put', '/vol1/bucket1/big30', file('big30')), 'key put')
  ok(await sh('key', 'get', '/vol1/bucket1/big30', file('sh30.back')), 'key get')
  same('big30', 'sh30.back')
  const plain = await run(process.execPath, [o3, 'sh', 'key', 'list', '/vol1/bucket1', ...at], { O3_CLIENT_ACCESSKEY: env.O3_CLIENT_ACCESSKEY, O3_CLIENT_SECRET: env.O3_CLIENT_SECRET })
  assert.is.not(plain.code, 0)
  // A service's HTTPS port does not answer plain HTTP (a Raft peer must see that as a failure): the CLI says it cannot reach the OM.
  assert.match(plain.stderr, /Cannot reach|UNAVAILABLE/)
  assert.match(plain.stderr, 'the client needs its CA: O3_CLIENT_CAFILE', 'and what it likely lacks')
})

test.run()
