/**
 * Goal: `o3 admin cert token` as an administrator runs it against a secure SCM (issue 16): with
 * an administrator's user certificate it prints a one-time token a service then enrolls with
 * (once), --reusable and --json as documented; without a certificate, or as a user who is not
 * an administrator, it is refused with one clear line and a non-zero exit; a bad --ttl-hours is
 * a usage error; `o3 admin cert user` writes a user certificate got with the admin token (not
 * with a service token). Method: bin/o3.js as a child process (O3_CLIENT_* environment) against a real
 * secure SCM in this process on loopback (LMDB in a temp dir), ServiceIdentity.obtain to use
 * the token.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../core/config.ts'
import { ServiceIdentity } from '../../core/security/identity.ts'
import { identityOf } from '../../core/security/pki.ts'
import { StorageContainerManager } from '../../control/scm/index.ts'
import { errorCode } from '../helpers.ts'

const o3 = fileURLToPath(new URL('../../../bin/o3.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'o3-cli-cert-'))
const config = loadConfig({ env: {}, overrides: { 'scm.dir': join(dir, 'scm'), 'security.enabled': 1, 'o3.administrators': 'admin' } })
const scm = new StorageContainerManager({ config, port: 0 })

interface Run { code: number; stdout: string; stderr: string }
function run(env: Record<string, string>, ...args: string[]): Promise<Run> {
  return runCert(env, 'token', ...args)
}
function runCert(env: Record<string, string>, verb: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [o3, 'admin', 'cert', verb, ...args, '--scm', scm.address], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

async function userEnv(user: string): Promise<Record<string, string>> {
  const c = await scm.ca!.issueUserCertificate(user)
  writeFileSync(join(dir, `${user}.pem`), c.cert)
  writeFileSync(join(dir, `${user}.key`), c.key, { mode: 0o600 })
  return { O3_CLIENT_CAFILE: scm.ca!.caFile, O3_CLIENT_CERTFILE: join(dir, `${user}.pem`), O3_CLIENT_KEYFILE: join(dir, `${user}.key`) }
}

const obtain = (id: string, token: string) =>
  ServiceIdentity.obtain({ role: 'datanode', id, dir: join(dir, id), hosts: ['127.0.0.1'], scm: scm.address, bootstrapToken: token })

test.before(async () => {
  await scm.start()
})

test.after(async () => {
  await scm.stop()
  rmSync(dir, { recursive: true, force: true })
})

test('an administrator makes a one-time token; a service enrolls with it once', async () => {
  const r = await run(await userEnv('admin'), '--ttl-hours', '2')
  assert.is(r.code, 0, r.stderr)
  const token = r.stdout.trim()
  assert.match(token, /^[0-9a-f]{16}\.[\w-]+$/)
  assert.match(r.stderr, /one-time bootstrap token, valid until/)
  const dn = await obtain('dn-a', token)
  dn.stop()
  assert.is(await errorCode(obtain('dn-b', token)), 'CERTIFICATE_ERROR')
})

test('--reusable --json: a token that enrolls several services', async () => {
  const r = await run(await userEnv('admin'), '--reusable', '--json')
  assert.is(r.code, 0, r.stderr)
  const made = JSON.parse(r.stdout) as { token: string; reusable: boolean; expiresAtMs: number }
  assert.is(made.reusable, true)
  assert.ok(made.expiresAtMs > Date.now() + 23 * 3600_000)
  for (const id of ['dn-c', 'dn-d']) (await obtain(id, made.token)).stop()
})

test('refused without a certificate, or for a user who is not an administrator; a bad --ttl-hours is a usage error', async () => {
  const anonymous = await run({ O3_CLIENT_CAFILE: scm.ca!.caFile })
  assert.is.not(anonymous.code, 0)
  assert.match(anonymous.stderr, /carries no (cluster )?certificate/)
  const bob = await run(await userEnv('bob'))
  assert.is.not(bob.code, 0)
  assert.match(bob.stderr, /not an administrator|user bob may not/)
  const bad = await run(await userEnv('admin'), '--ttl-hours', 'soon')
  assert.is(bad.code, 2)
  assert.match(bad.stderr, /ttl-hours/)
})

test('o3 admin cert list shows the enrolled services; forget lets one enroll again', async () => {
  const env = await userEnv('admin')
  const list = await runCert(env, 'list', '--json')
  assert.is(list.code, 0, list.stderr)
  const rows = JSON.parse(list.stdout) as { role: string; id: string }[]
  assert.ok(rows.some((r) => r.role === 'datanode' && r.id === 'dn-a'), list.stdout)
  const table = await runCert(env, 'list')
  assert.match(table.stdout, /datanode\s*│\s*dn-a/)
  const forgot = await runCert(env, 'forget', 'datanode', 'dn-a')
  assert.is(forgot.code, 0, forgot.stderr)
  assert.match(forgot.stdout, /datanode dn-a may enroll again/)
  const again = await runCert(env, 'forget', 'datanode', 'dn-a')
  assert.is.not(again.code, 0)
  assert.match(again.stderr, /not enrolled/)
  // A role that never enrolls is the caller's mistake: a usage error naming the roles, not 'not enrolled'.
  const bogus = await runCert(env, 'forget', 'bogusrole', 'x')
  assert.is(bogus.code, 2, bogus.stderr)
  assert.is(bogus.stderr.trim(), `o3: unknown role "bogusrole": ROLE is one of om, datanode, s3g, recon (the services that enroll); see 'o3 admin cert forget --help'`)
})

test('o3 admin cert user writes a user certificate got with the admin token; the service token does not do', async () => {
  const out = join(dir, 'certs')
  const r = await runCert({ O3_SCM_DIR: join(dir, 'scm') }, 'user', 'admin', '--out', out)
  assert.is(r.code, 0, r.stderr)
  assert.match(r.stdout, /O3_CLIENT_CERTFILE=.*admin\.pem/)
  assert.is(statSync(join(out, 'admin.key')).mode & 0o777, 0o600)
  assert.equal(identityOf(readFileSync(join(out, 'admin.pem'), 'utf8')), { role: 'user', id: 'admin' })
  const env = { O3_CLIENT_CAFILE: join(out, 'ca.pem'), O3_CLIENT_CERTFILE: join(out, 'admin.pem'), O3_CLIENT_KEYFILE: join(out, 'admin.key') }
  assert.is((await run(env)).code, 0, 'the certificate makes tokens as an administrator')
  const refused = await runCert({}, 'user', 'eve', '--out', out, '--token-file', join(dir, 'scm', 'ca', 'bootstrap-token'))
  assert.is.not(refused.code, 0)
  assert.match(refused.stderr, /admin token/)
  const missing = await runCert({ O3_SCM_DIR: join(dir, 'nowhere') }, 'user', 'admin')
  assert.is(missing.code, 2)
})

test('o3 admin cert user over an earlier, world-readable key file leaves the new key its owner\'s only', async () => {
  const out = join(dir, 'certs-again')
  mkdirSync(out, { recursive: true })
  writeFileSync(join(out, 'admin.key'), 'an older key\n', { mode: 0o644 })
  chmodSync(join(out, 'admin.key'), 0o644)
  const r = await runCert({ O3_SCM_DIR: join(dir, 'scm') }, 'user', 'admin', '--out', out)
  assert.is(r.code, 0, r.stderr)
  assert.is(statSync(join(out, 'admin.key')).mode & 0o777, 0o600)
})

test.run()
