/**
 * Goal: the OM's authenticate (control/om/authenticate.ts) over TLS: a service certificate of
 * the cluster CA is that service, a `user` certificate that user, a signature over TLS that
 * user; no certificate and no signature, or a certificate of another CA, is refused
 * UNAUTHENTICATED; x-o3-on-behalf-of (O3Client.as) passes only from the S3 gateway's
 * certificate and reaches the handler. Method: createServiceApp with omAuthenticate served by
 * serveApp with TLS on loopback, certificates from core/security/pki.ts, real O3Client and
 * RpcClient callers.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error } from '../../../core/errors.ts'
import { serveApp } from '../../../core/http/serve.ts'
import { ServiceMetrics } from '../../../core/metrics.ts'
import { RpcClient } from '../../../core/rpc/client.ts'
import { createServiceApp } from '../../../core/rpc/server.ts'
import { tlsTransport } from '../../../core/rpc/transport.ts'
import type { RpcContext } from '../../../core/security/caller.ts'
import { createRootCa, generateKeyPair, issueCertificate, type ServiceRole } from '../../../core/security/pki.ts'
import { requestSigner } from '../../../core/security/request-signing.ts'
import { omAuthenticate } from '../../../control/om/authenticate.ts'
import { O3Client } from '../../../datapath/client/index.ts'

const now = Date.now()
const ca = await createRootCa({ clusterId: 'CID-auth', nowMs: now, validityMs: 3600_000 })
async function tlsAs(role: ServiceRole, id: string, root = ca) {
  const keys = await generateKeyPair()
  const cert = await issueCertificate({ ca: { cert: root.cert, privateKey: root.privateKey }, publicKey: keys.publicKey, identity: { role, id }, hosts: ['127.0.0.1'], nowMs: now, validityMs: 3600_000 })
  const tls = { ca: ca.cert, cert, key: keys.privateKey }
  return tlsTransport(() => tls)
}

const alice = { user: 'alice', awsAccessKey: 'O3ALICE', awsSecret: 'alice-secret' }
const omKeys = await generateKeyPair()
const omCert = await issueCertificate({ ca: { cert: ca.cert, privateKey: ca.privateKey }, publicKey: omKeys.publicKey, identity: { role: 'om', id: 'om1' }, hosts: ['127.0.0.1'], nowMs: now, validityMs: 3600_000 })
const app = createServiceApp({
  service: 'OM', metrics: new ServiceMetrics('om_auth_test'), health: () => ({}),
  authenticate: omAuthenticate({ secretOf: (k) => (k === alice.awsAccessKey ? alice : undefined) }),
  // getVolume answers with the context the handler got (what O3Client.getVolume returns here).
  handlers: { getVolume: (_a, ctx: RpcContext) => ctx },
})
const listenerTls = { key: omKeys.privateKey, cert: omCert, ca: ca.cert }
const listener = await serveApp(app, { host: '127.0.0.1', port: 0, name: 'om-auth-test', tls: { current: () => listenerTls } })
const address = `127.0.0.1:${listener.port}`
test.after(() => listener.close())

const whoami = (rpc: RpcClient, onBehalfOf?: string) => rpc.call<RpcContext>('getVolume', { volume: 'v' }, { onBehalfOf })
async function codeOf(p: Promise<unknown>): Promise<string> {
  try { await p } catch (err) { return err instanceof O3Error ? err.code : String(err) }
  return 'OK'
}

test('a service certificate is that service; a user certificate that user', async () => {
  assert.equal(await whoami(new RpcClient('OM', address, { transport: await tlsAs('scm', 'scm1') })), { caller: { kind: 'service', role: 'scm', id: 'scm1' } })
  assert.equal(await whoami(new RpcClient('OM', address, { transport: await tlsAs('user', 'admin') })), { caller: { kind: 'user', user: 'admin' } })
})

test('over TLS without a certificate: a signed call is its user, an unsigned one UNAUTHENTICATED', async () => {
  const caOnly = { ca: ca.cert }
  const plain = tlsTransport(() => caOnly)
  const signed = new RpcClient('OM', address, { transport: plain, signer: requestSigner({ accessKey: alice.awsAccessKey, secret: alice.awsSecret }) })
  assert.equal(await whoami(signed), { caller: { kind: 'user', user: 'alice', accessKey: 'O3ALICE' } })
  assert.is(await codeOf(whoami(new RpcClient('OM', address, { transport: plain }))), 'UNAUTHENTICATED')
})

test('a certificate of another CA names nobody: UNAUTHENTICATED', async () => {
  const rogue = await createRootCa({ clusterId: 'rogue', nowMs: now, validityMs: 3600_000 })
  assert.is(await codeOf(whoami(new RpcClient('OM', address, { transport: await tlsAs('s3g', 's3g1', rogue) }))), 'UNAUTHENTICATED')
})

test('O3Client.as(user) sends x-o3-on-behalf-of: honoured from the S3 gateway, refused from any other caller', async () => {
  const gateway = new O3Client({ om: address, transport: await tlsAs('s3g', 's3g1') })
  assert.equal(await gateway.as('alice').getVolume('v'), { caller: { kind: 'service', role: 's3g', id: 's3g1' }, onBehalfOf: 'alice' })
  assert.equal(await gateway.getVolume('v'), { caller: { kind: 'service', role: 's3g', id: 's3g1' } }, 'the client itself is unchanged')
  const om = new O3Client({ om: address, transport: await tlsAs('om', 'om2') })
  assert.is(await codeOf(om.as('alice').getVolume('v')), 'PERMISSION_DENIED')
  const user = new O3Client({ om: address, transport: await tlsAs('user', 'bob') })
  assert.is(await codeOf(user.as('alice').getVolume('v')), 'PERMISSION_DENIED')
  const caOnly = { ca: ca.cert }
  const signed = new O3Client({ om: address, transport: tlsTransport(() => caOnly), credentials: { accessKey: alice.awsAccessKey, secret: alice.awsSecret } })
  assert.is(await codeOf(signed.as('bob').getVolume('v')), 'PERMISSION_DENIED')
})

test.run()
