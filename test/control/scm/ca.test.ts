/**
 * Goal: the SCM as the cluster's CA (issue 16): the CA made once and written for clients, the
 * first bootstrap token and the admin token kept 0600; ServiceIdentity.obtain enrolls over HTTPS with a token
 * proof, keeps its credentials in <dir>/security and loads them on the next start; wrong,
 * unknown, spent, stale and tampered proofs are refused, an identity enrolls once (another key
 * is refused, an exact replay is refused), scm never enrolls, users only with the admin token (enrollUser), which enrolls no service; a forged
 * answer (no token proof) is refused by the enroller; `createBootstrapToken` is for
 * administrators, as are listing enrolled services and letting one that lost its key enroll again; renewal after 2/3 of the lifetime swaps the certificate new connections use,
 * for obtained and forScm identities. Method: a real secure SCM on loopback (LMDB in a temp
 * dir, HTTPS with its forScm identity), real enrollments through RpcClient, a fake SCM for the
 * forged answer, and an mTLS echo server that reports the client certificate it saw.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createServer, type Server } from 'node:https'
import { randomBytes, X509Certificate } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect, type TLSSocket } from 'node:tls'
import { request, Agent } from 'undici'
import { loadConfig } from '../../../core/config.ts'
import { serveApp } from '../../../core/http/serve.ts'
import { ServiceMetrics } from '../../../core/metrics.ts'
import { RpcClient } from '../../../core/rpc/client.ts'
import { createServiceApp } from '../../../core/rpc/server.ts'
import { PLAIN_TRANSPORT, tlsTransport } from '../../../core/rpc/transport.ts'
import { enrollProof, parseBootstrapToken } from '../../../core/security/enrollment.ts'
import { enrollUser, ServiceIdentity } from '../../../core/security/identity.ts'
import { createRootCa, generateKeyPair, identityOf, issueCertificate, verifyIssued } from '../../../core/security/pki.ts'
import { StorageContainerManager } from '../../../control/scm/index.ts'
import { errorCode, until } from '../../helpers.ts'

const dir = mkdtempSync(join(tmpdir(), 'o3-scm-ca-'))
const config = loadConfig({ env: {}, overrides: { 'scm.dir': join(dir, 'scm'), 'security.enabled': 1, 'o3.administrators': 'admin' } })
const scm = new StorageContainerManager({ config, port: 0 })
let token = ''
let caCert = ''
const noVerify = new Agent({ connect: { rejectUnauthorized: false } })
const anonymous = { scheme: 'https' as const, dispatcher: () => noVerify }

/** A hand-made enroll request (what obtain sends), for the refusals obtain would not make. */
async function enrollCall(o: { role?: string; id: string; token?: string; timeMs?: number; publicKey?: string; nonce?: string }) {
  const t = parseBootstrapToken(o.token ?? token)
  const publicKey = o.publicKey ?? (await generateKeyPair()).publicKey
  const r = { role: o.role ?? 'datanode', id: o.id, publicKey, hosts: ['127.0.0.1'], validityMs: 0, nonce: o.nonce ?? randomBytes(8).toString('hex'), timeMs: o.timeMs ?? Date.now(), tokenId: t.id }
  return { ...r, proof: enrollProof(t.secret, r) }
}
const rpc = () => new RpcClient('SCM', scm.address, { transport: anonymous })
const obtain = (id: string, sub: string, extra: { role?: 'om' | 'datanode' | 's3g'; token?: string; validityMs?: number } = {}) =>
  ServiceIdentity.obtain({ role: extra.role ?? 'datanode', id, dir: join(dir, sub), hosts: ['127.0.0.1', 'localhost'], scm: scm.address, bootstrapToken: extra.token ?? token, validityMs: extra.validityMs })

test.before(async () => {
  await scm.start()
  token = scm.ca!.bootstrapToken()
  caCert = scm.ca!.caCert()
})

test.after(async () => {
  await scm.stop()
  await noVerify.close()
  rmSync(dir, { recursive: true, force: true })
})

test('the SCM makes the CA once, writes ca.crt for clients and the first token 0600, and serves HTTPS with its own certificate', async () => {
  assert.is(readFileSync(join(dir, 'scm', 'ca', 'ca.crt'), 'utf8'), caCert)
  assert.is(readFileSync(join(dir, 'scm', 'ca', 'bootstrap-token'), 'utf8').trim(), token)
  assert.is(statSync(join(dir, 'scm', 'ca', 'bootstrap-token')).mode & 0o777, 0o600)
  assert.is((await rpc().call<{ ca: string }>('getCaCertificate', {})).ca, caCert)
  const own = scm.identity!.credentials()
  assert.equal(identityOf(own.cert), { role: 'scm', id: 'scm1' })
  assert.ok(verifyIssued(own.cert, caCert, Date.now()))
})

test('obtain enrolls over HTTPS with the token, keeps its credentials, and loads them on the next start', async () => {
  const id = await obtain('dn-1', 'dn1')
  try {
    const c = id.credentials()
    assert.equal(identityOf(c.cert), { role: 'datanode', id: 'dn-1' })
    assert.ok(verifyIssued(c.cert, caCert, Date.now()))
    assert.is(c.ca, caCert)
    assert.is(readFileSync(join(dir, 'dn1', 'security', 'cert.pem'), 'utf8'), c.cert)
    assert.is(statSync(join(dir, 'dn1', 'security', 'key.pem')).mode & 0o777, 0o600)
    // Its transport is mutual TLS that trusts the CA: the SCM's certificate checks out.
    const viaMtls = new RpcClient('SCM', scm.address, { transport: id.transport() })
    assert.is((await viaMtls.call<{ ca: string }>('getCaCertificate', {})).ca, caCert)
  } finally {
    id.stop()
  }
  const again = await obtain('dn-1', 'dn1', { token: '' })
  assert.is(again.credentials().cert, readFileSync(join(dir, 'dn1', 'security', 'cert.pem'), 'utf8'), 'loaded, not enrolled again (no token needed)')
  again.stop()
  assert.is(await errorCode(obtain('dn-other', 'dn1')), 'CERTIFICATE_ERROR', 'a folder holding another identity is refused')
})

test('wrong, unknown and malformed tokens are refused; the secret never crosses the wire', async () => {
  const t = parseBootstrapToken(token)
  const wrong = `${t.id}.${randomBytes(32).toString('base64url')}`
  assert.is(await errorCode(obtain('dn-wrong', 'dn-wrong', { token: wrong })), 'CERTIFICATE_ERROR')
  const unknown = `${randomBytes(8).toString('hex')}.${t.secret}`
  assert.is(await errorCode(obtain('dn-unknown', 'dn-unknown', { token: unknown })), 'CERTIFICATE_ERROR')
  assert.is(await errorCode(obtain('dn-bad', 'dn-bad', { token: 'letmein' })), 'INVALID_ARGUMENT')
  const call = await enrollCall({ id: 'dn-wire' })
  assert.not.ok(JSON.stringify(call).includes(t.secret))
})

test('an identity enrolls once: another key is refused, an exact replay is refused, a tampered one does not verify, a stale one is refused', async () => {
  const first = await enrollCall({ id: 'dn-once' })
  const answer = await rpc().call<{ cert: string }>('enroll', first)
  assert.equal(identityOf(answer.cert), { role: 'datanode', id: 'dn-once' })
  assert.is(await errorCode(rpc().call('enroll', first)), 'CERTIFICATE_ERROR', 'exact replay')
  assert.is(await errorCode(rpc().call('enroll', await enrollCall({ id: 'dn-once' }))), 'CERTIFICATE_ERROR', 'another key')
  assert.is(await errorCode(obtain('dn-once', 'dn-once-2')), 'CERTIFICATE_ERROR', 'obtain for a taken id')
  const attacker = await generateKeyPair()
  assert.is(await errorCode(rpc().call('enroll', { ...first, nonce: 'fresh', publicKey: attacker.publicKey })), 'CERTIFICATE_ERROR', 'tampered')
  assert.is(await errorCode(rpc().call('enroll', await enrollCall({ id: 'dn-stale', timeMs: Date.now() - 3600_000 }))), 'CERTIFICATE_ERROR', 'stale')
  // The same key again with a fresh request (a retry whose answer was lost) gets the same certificate.
  const retry = await enrollCall({ id: 'dn-once', publicKey: first.publicKey })
  assert.is((await rpc().call<{ cert: string }>('enroll', retry)).cert, answer.cert)
})

test('scm identities never enroll; users only with the admin token, which enrolls nothing else', async () => {
  assert.is(await errorCode(rpc().call('enroll', await enrollCall({ role: 'scm', id: 'scm9' }))), 'CERTIFICATE_ERROR')
  assert.is(await errorCode(rpc().call('enroll', await enrollCall({ role: 'user', id: 'admin' }))), 'CERTIFICATE_ERROR')
  assert.is(await errorCode(enrollUser({ user: 'admin', scm: scm.address, adminToken: token })), 'CERTIFICATE_ERROR')
  const adminToken = readFileSync(join(dir, 'scm', 'ca', 'admin-token'), 'utf8').trim()
  assert.is(statSync(join(dir, 'scm', 'ca', 'admin-token')).mode & 0o777, 0o600)
  assert.is(adminToken, scm.ca!.adminToken())
  assert.is(await errorCode(obtain('dn-admintoken', 'dn-admintoken', { token: adminToken })), 'CERTIFICATE_ERROR')
  const admin = await enrollUser({ user: 'admin', scm: scm.address, adminToken })
  assert.equal(identityOf(admin.cert), { role: 'user', id: 'admin' })
  assert.ok(verifyIssued(admin.cert, caCert, Date.now()))
  // A user may hold several certificates (machines); each is usable over mutual TLS.
  const again = await enrollUser({ user: 'admin', scm: scm.address, adminToken })
  assert.is.not(again.cert, admin.cert)
  const made = await new RpcClient('SCM', scm.address, { transport: tlsTransport(() => again) }).call<{ token: string }>('createBootstrapToken', {})
  assert.match(made.token, /\./)
})

test('createBootstrapToken is for administrators; a one-time token is spent by its first enrollment', async () => {
  const adminCreds = await scm.ca!.issueUserCertificate('admin')
  assert.equal(identityOf(adminCreds.cert), { role: 'user', id: 'admin' })
  const admin = new RpcClient('SCM', scm.address, { transport: tlsTransport(() => adminCreds) })
  const made = await admin.call<{ token: string; reusable: boolean; expiresAtMs: number }>('createBootstrapToken', { ttlMs: 60_000 })
  assert.is(made.reusable, false)
  assert.ok(made.expiresAtMs > Date.now())
  const om = await obtain('om1', 'om1', { role: 'om', token: made.token })
  om.stop()
  assert.is(await errorCode(obtain('om2', 'om2', { role: 'om', token: made.token })), 'CERTIFICATE_ERROR', 'spent')
  const bobCreds = await scm.ca!.issueUserCertificate('bob')
  assert.is(await errorCode(new RpcClient('SCM', scm.address, { transport: tlsTransport(() => bobCreds) }).call('createBootstrapToken', {})), 'PERMISSION_DENIED')
  assert.is(await errorCode(rpc().call('createBootstrapToken', {})), 'UNAUTHENTICATED')
  const dn = await obtain('dn-tok', 'dn-tok')
  assert.is(await errorCode(new RpcClient('SCM', scm.address, { transport: dn.transport() }).call('createBootstrapToken', {})), 'PERMISSION_DENIED')
  dn.stop()
  assert.is(await errorCode(admin.call('createBootstrapToken', { ttlMs: 5 })), 'INVALID_ARGUMENT')
})

test('an administrator lists the enrolled services and lets one that lost its key enroll again', async () => {
  const adminCreds = await scm.ca!.issueUserCertificate('admin')
  const admin = new RpcClient('SCM', scm.address, { transport: tlsTransport(() => adminCreds) })
  const rows = await admin.call<{ role: string; id: string; expiresAtMs: number }[]>('listCertificates', {})
  assert.ok(rows.some((r) => r.role === 'datanode' && r.id === 'dn-1' && r.expiresAtMs > Date.now()))
  assert.is(await errorCode(rpc().call('listCertificates', {})), 'UNAUTHENTICATED')
  const dn = await obtain('dn-lost', 'dn-lost')
  dn.stop()
  rmSync(join(dir, 'dn-lost'), { recursive: true })
  assert.is(await errorCode(obtain('dn-lost', 'dn-lost')), 'CERTIFICATE_ERROR', 'the lost key cannot come back under its id')
  assert.is(await errorCode(new RpcClient('SCM', scm.address, { transport: dn.transport() }).call('forgetEnrollment', { role: 'datanode', id: 'dn-lost' })), 'PERMISSION_DENIED')
  await admin.call('forgetEnrollment', { role: 'datanode', id: 'dn-lost' })
  assert.is(await errorCode(admin.call('forgetEnrollment', { role: 'datanode', id: 'dn-lost' })), 'INVALID_ARGUMENT', 'not enrolled any more')
  const back = await obtain('dn-lost', 'dn-lost')
  assert.equal(identityOf(back.credentials().cert), { role: 'datanode', id: 'dn-lost' })
  back.stop()
})

test('the enroller refuses an answer that does not prove the token (a server impersonating the SCM)', async () => {
  const rogueCa = await createRootCa({ clusterId: 'rogue', nowMs: Date.now(), validityMs: 3600_000 })
  const app = createServiceApp({
    service: 'SCM', metrics: new ServiceMetrics('fake'), health: () => ({}),
    handlers: {
      enroll: async (a: { publicKey: string; id: string }) => {
        const cert = await issueCertificate({ ca: rogueCa, publicKey: a.publicKey, identity: { role: 'datanode', id: a.id }, hosts: [], nowMs: Date.now(), validityMs: 3600_000 })
        return { cert, ca: rogueCa.cert, proof: '00'.repeat(32) }
      },
    },
  })
  const fake = await serveApp(app, { host: '127.0.0.1', port: 0, name: 'fake' })
  try {
    const err = await ServiceIdentity.obtain({ role: 'datanode', id: 'dn-fooled', dir: join(dir, 'fooled'), hosts: [], scm: `127.0.0.1:${fake.port}`, bootstrapToken: token, transport: PLAIN_TRANSPORT })
      .catch((e: Error) => e)
    assert.instance(err, Error)
    assert.is((err as { code?: string }).code, 'CERTIFICATE_ERROR', (err as Error).message)
    assert.match((err as Error).message, /holder of the bootstrap token/)
  } finally {
    await fake.close()
  }
})

test('renewCertificate needs the certificate being renewed', async () => {
  const k = await generateKeyPair()
  assert.is(await errorCode(rpc().call('renewCertificate', { publicKey: k.publicKey, hosts: [] })), 'UNAUTHENTICATED')
  const adminCreds = await scm.ca!.issueUserCertificate('admin')
  assert.is(await errorCode(new RpcClient('SCM', scm.address, { transport: tlsTransport(() => adminCreds) }).call('renewCertificate', { publicKey: k.publicKey, hosts: [] })), 'PERMISSION_DENIED')
})

/** An HTTPS server asking for client certificates, answering the fingerprint of the one it saw. */
async function echoServer(ca: string): Promise<{ server: Server; port: number }> {
  const root = (scm as unknown as { tables: { ca: { get(k: string): { cert: string; privateKey: string } } } }).tables.ca.get('root')
  const self = await generateKeyPair()
  const cert = await issueCertificate({ ca: root, publicKey: self.publicKey, identity: { role: 'scm', id: 'echo' }, hosts: ['127.0.0.1'], nowMs: Date.now(), validityMs: 3600_000 })
  const server = createServer({ key: self.privateKey, cert, ca, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    res.end((req.socket as TLSSocket).getPeerCertificate().fingerprint256 ?? '')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { server, port: (server.address() as { port: number }).port }
}

test('renewal after 2/3 of the lifetime: a new key and certificate, kept on disk and recorded, used by new connections', async () => {
  const id = await obtain('dn-renew', 'dn-renew', { validityMs: 3000 })
  const echo = await echoServer(caCert)
  try {
    const seen = async () => (await (await request(`https://127.0.0.1:${echo.port}/`, { dispatcher: id.transport().dispatcher() })).body.text())
    const first = id.credentials()
    assert.is(await seen(), new X509Certificate(first.cert).fingerprint256)
    const lifetime = id.expiresAtMs() - Date.now()
    assert.ok(lifetime <= 3000 && lifetime > 1000, `lifetime ${lifetime}`)
    const renewed = await until('the certificate renewed', () => id.credentials() !== first && id.credentials(), 5000)
    assert.is.not(renewed.key, first.key)
    assert.equal(identityOf(renewed.cert), { role: 'datanode', id: 'dn-renew' })
    assert.is(await seen(), new X509Certificate(renewed.cert).fingerprint256, 'a new connection shows the new certificate')
    assert.is(readFileSync(join(dir, 'dn-renew', 'security', 'cert.pem'), 'utf8'), renewed.cert)
    assert.is(readFileSync(join(dir, 'dn-renew', 'security', 'key.pem'), 'utf8'), renewed.key)
    // The renewed identity still enrolls nothing new and calls the SCM with its new certificate.
    assert.is((await new RpcClient('SCM', scm.address, { transport: id.transport() }).call<{ ca: string }>('getCaCertificate', {})).ca, caCert)
    // And keeps renewing.
    await until('renewed again', () => id.credentials() !== renewed, 5000)
  } finally {
    id.stop()
    echo.server.close()
  }
})

/** The certificate a fresh TLS connection to 127.0.0.1:port is served, as a fingerprint. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256)
      socket.end()
    })
    socket.once('error', reject)
  })
}

test('forScm self-issues from the CA and renews itself; a listener serving it hands new connections the new certificate', async () => {
  const id = await ServiceIdentity.forScm({ id: 'scm7', hosts: ['127.0.0.1'], issuer: scm.ca!.issuer(), validityMs: 2000 })
  const app = createServiceApp({ service: 'T', metrics: new ServiceMetrics('t'), health: () => ({}), handlers: {} })
  const listener = await serveApp(app, { host: '127.0.0.1', port: 0, name: 't', tls: id.serverTls() })
  try {
    const first = id.credentials()
    assert.equal(identityOf(first.cert), { role: 'scm', id: 'scm7' })
    assert.is(await servedFingerprint(listener.port), new X509Certificate(first.cert).fingerprint256)
    await until('renewed', () => id.credentials() !== first, 5000)
    const renewed = id.credentials()
    assert.ok(verifyIssued(renewed.cert, caCert, Date.now()))
    // (It renews every ~1.3 s here: compare with whatever is current when the connection is made.)
    await until('a new connection served a renewed certificate', async () => {
      const now = id.credentials()
      return now !== first && (await servedFingerprint(listener.port)) === new X509Certificate(now.cert).fingerprint256
    }, 5000)
  } finally {
    id.stop()
    await listener.close()
  }
})

test.run()
