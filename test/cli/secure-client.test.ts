/**
 * Goal: the client commands sign their OM calls with the key pair in O3_CLIENT_ACCESSKEY and
 * O3_CLIENT_SECRET, and a secure OM refuses them without it; client.* settings that cannot
 * work are a usage error. Method: bin/o3.js as a child process with and without the
 * environment against a secure mini cluster (HTTPS, trusting its CA from O3_CLIENT_CAFILE), and
 * clientSecurityOf on settings and PEM files.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEFAULT_CONFIG } from '../../core/config.ts'
import { createRootCa } from '../../core/security/pki.ts'
import { clientSecurityOf } from '../../cli/client-security.ts'
import type { O3Error } from '../../core/errors.ts'
import { O3Client } from '../../datapath/client/index.ts'
import { UsageError } from '../../cli/args.ts'
import { startMiniCluster } from '../cluster/mini-cluster.ts'

const o3 = fileURLToPath(new URL('../../../bin/o3.js', import.meta.url))
const cluster = await startMiniCluster({ datanodes: 1, overrides: { 'security.enabled': 1, 'o3.administrators': 'admin', 'client.replication': 'RATIS/ONE' } })
const admin = await cluster.om.ensureUserSecret('admin')
const alice = await cluster.om.ensureUserSecret('alice')
const work = mkdtempSync(join(tmpdir(), 'o3-secure-cli-'))
const caFile = join(work, 'cluster-ca.pem')
writeFileSync(caFile, cluster.caCert!)
test.after(async () => {
  await cluster.dispose()
  rmSync(work, { recursive: true, force: true })
})

/** `o3 ...args` with the cluster CA and the key pair `as` (or none) in the environment, and `as.login` as $USER if given. */
function run(as: { awsAccessKey: string; awsSecret: string; login?: string } | undefined, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: Record<string, string | undefined> = { ...process.env, O3_CLIENT_CAFILE: caFile, O3_CLIENT_ACCESSKEY: as?.awsAccessKey, O3_CLIENT_SECRET: as?.awsSecret, ...(as?.login === undefined ? {} : { USER: as.login }) }
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k]
  return new Promise((resolve) => {
    execFile(process.execPath, [o3, ...args, '--om', cluster.omAddress, '--scm', cluster.scmAddress], { encoding: 'utf8', env }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

test('o3 sh signs with O3_CLIENT_ACCESSKEY/SECRET; without them the secure OM refuses', async () => {
  const refused = await run(undefined, 'sh', 'volume', 'create', '/nokey')
  assert.is.not(refused.code, 0)
  assert.match(refused.stderr, /neither signed by a user/)
  // Volumes are the administrators' to create (native ACLs, control/om/access.ts): alice is refused, signed as she is.
  const notAdmin = await run(alice, 'sh', 'volume', 'create', '/alicevol')
  assert.is.not(notAdmin.code, 0)
  assert.match(notAdmin.stderr, /not an administrator/)
  const ok = await run(admin, 'sh', 'volume', 'create', '/alicevol')
  assert.is(ok.code, 0, ok.stderr)
  const names = async () => {
    const listed = await run(alice, 'sh', 'volume', 'list', '--json')
    assert.is(listed.code, 0, listed.stderr)
    return (JSON.parse(listed.stdout) as { name: string }[]).map((v) => v.name)
  }
  assert.not.ok((await names()).includes('alicevol'), 'a volume alice neither owns nor may list is not shown to her')
  assert.is((await run(alice, 'sh', 'volume', 'addacl', '/alicevol', '-a', 'user:alice:l')).code, 1, 'nor may she grant herself')
  const granted = await run(admin, 'sh', 'volume', 'addacl', '/alicevol', '-a', 'user:alice:l')
  assert.is(granted.code, 0, granted.stderr)
  assert.ok((await names()).includes('alicevol'))
  const wrong = await run({ ...alice, awsSecret: 'nope' }, 'sh', 'volume', 'list')
  assert.is.not(wrong.code, 0)
  assert.match(wrong.stderr, /signature does not match/)
})

test('new volumes and buckets are the signed-in user\'s, whatever $USER says; a user cannot name another owner', async () => {
  const made = await run({ ...admin, login: 'mallory' }, 'sh', 'volume', 'create', '/ownvol')
  assert.is(made.code, 0, made.stderr)
  const volume = JSON.parse((await run(admin, 'sh', 'volume', 'info', '/ownvol', '--json')).stdout) as { owner: string }
  assert.is(volume.owner, 'admin')
  assert.is((await run(admin, 'sh', 'volume', 'addacl', '/ownvol', '-a', 'user:alice:rlc')).code, 0)
  const bucket = await run({ ...alice, login: 'bob' }, 'sh', 'bucket', 'create', '/ownvol/alicebkt')
  assert.is(bucket.code, 0, bucket.stderr)
  assert.is((JSON.parse((await run(alice, 'sh', 'bucket', 'info', '/ownvol/alicebkt', '--json')).stdout) as { owner: string }).owner, 'alice')
  // Over the wire, signed as alice, naming bob: refused; an administrator may name anyone.
  const settings = { 'client.caFile': caFile, 'client.certFile': '', 'client.keyFile': '' }
  const asAlice = new O3Client({ om: cluster.omAddress, scm: cluster.scmAddress, ...clientSecurityOf({ ...settings, 'client.accessKey': alice.awsAccessKey, 'client.secret': alice.awsSecret }) })
  const refused = await asAlice.createBucket('ownvol', 'bobbkt', { owner: 'bob' }).then(() => undefined, (err: unknown) => err as O3Error)
  assert.is(refused?.code, 'PERMISSION_DENIED', refused?.message)
  assert.match(refused!.message, 'user alice is not an administrator')
  const asAdmin = new O3Client({ om: cluster.omAddress, scm: cluster.scmAddress, ...clientSecurityOf({ ...settings, 'client.accessKey': admin.awsAccessKey, 'client.secret': admin.awsSecret }) })
  assert.is((await asAdmin.createBucket('ownvol', 'forbob', { owner: 'bob' })).owner, 'bob')
})

test('o3 s3 getsecret: a user for itself, an administrator for anyone, not one user for another', async () => {
  const own = await run(alice, 's3', 'getsecret', '--user', 'alice', '--json')
  assert.is(own.code, 0, own.stderr)
  assert.is((JSON.parse(own.stdout) as { awsSecret: string }).awsSecret, alice.awsSecret)
  const other = await run(alice, 's3', 'getsecret', '--user', 'admin')
  assert.is.not(other.code, 0)
  assert.ok(!(other.stdout + other.stderr).includes(admin.awsSecret), "another user does not see the secret")
  const byAdmin = await run(admin, 's3', 'getsecret', '--user', 'bob', '--json')
  assert.is(byAdmin.code, 0, byAdmin.stderr)
  assert.is((JSON.parse(byAdmin.stdout) as { user: string }).user, 'bob')
})

test('clientSecurityOf(): credentials and TLS from client.*; half a pair or a certificate without a CA is a UsageError', async () => {
  const base = { ...DEFAULT_CONFIG }
  const none = clientSecurityOf(base)
  assert.is(none.credentials, undefined)
  assert.is(none.transport.scheme, 'http')
  assert.equal(clientSecurityOf({ ...base, 'client.accessKey': 'AK', 'client.secret': 'S' }).credentials, { accessKey: 'AK', secret: 'S' })
  assert.throws(() => clientSecurityOf({ ...base, 'client.accessKey': 'AK' }), (e: unknown) => e instanceof UsageError)
  assert.throws(() => clientSecurityOf({ ...base, 'client.certFile': 'c.pem', 'client.keyFile': 'k.pem' }), (e: unknown) => e instanceof UsageError)
  assert.throws(() => clientSecurityOf({ ...base, 'client.certFile': 'c.pem', 'client.caFile': 'ca.pem' }), (e: unknown) => e instanceof UsageError)
  assert.throws(() => clientSecurityOf({ ...base, 'client.caFile': join(work, 'missing.pem') }), (e: unknown) => e instanceof UsageError && /Cannot read client.caFile/.test(e.message))
  const ca = await createRootCa({ clusterId: 'CID-cli', nowMs: Date.now(), validityMs: 3600_000 })
  writeFileSync(join(work, 'ca.pem'), ca.cert)
  assert.is(clientSecurityOf({ ...base, 'client.caFile': join(work, 'ca.pem') }).transport.scheme, 'https')
})

test.run()
