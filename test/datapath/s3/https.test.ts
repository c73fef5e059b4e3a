/**
 * Goal: the S3 gateway serves HTTPS at the edge: with s3g.https=1 and PEM files (a certificate
 * renewed on disk takes over from the next connection; a half-written pair does not), or with
 * the gateway's cluster certificate in a secure cluster; S3 clients need not show a
 * certificate, and settings that cannot work fail at start. Method: a real gateway over a mini
 * cluster, the AWS SDK v3 over HTTPS trusting a CA made by core/security/pki.ts, and raw
 * node:tls connections to read the certificate served.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { Agent as HttpsAgent } from 'node:https'
import { connect } from 'node:tls'
import { X509Certificate } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { createRootCa, generateKeyPair, issueCertificate, type CertIdentity } from '../../../core/security/pki.ts'
import { ServiceIdentity } from '../../../core/security/identity.ts'
import { O3Error } from '../../../core/errors.ts'
import { loadConfig } from '../../../core/config.ts'
import { StorageContainerManager } from '../../../control/scm/index.ts'
import type { S3Secret } from '../../../datapath/client/index.ts'
import { S3Gateway } from '../../../datapath/s3/index.ts'
import { edgeTls } from '../../../datapath/s3/https.ts'
import { randomBytes, startMiniCluster } from '../../cluster/mini-cluster.ts'

const now = Date.now()
const ca = await createRootCa({ clusterId: 'CID-edge', nowMs: now, validityMs: 3600_000 })

async function issue(identity: CertIdentity, by = ca): Promise<{ key: string; cert: string; ca: string }> {
  const keys = await generateKeyPair()
  const cert = await issueCertificate({ ca: { cert: by.cert, privateKey: by.privateKey }, publicKey: keys.publicKey, identity, hosts: ['127.0.0.1', 'localhost'], nowMs: now, validityMs: 3600_000 })
  return { key: keys.privateKey, cert, ca: by.cert }
}

const dir = mkdtempSync(join(tmpdir(), 'o3-s3-https-'))
const certFile = join(dir, 's3g.crt'), keyFile = join(dir, 's3g.key')
const first = await issue({ role: 's3g', id: 's3g-edge' })
writeFileSync(certFile, first.cert)
writeFileSync(keyFile, first.key)

const cluster = await startMiniCluster({ datanodes: 1 })
const httpsConfig = { ...cluster.config, 's3g.https': 1, 's3g.https.cert': certFile, 's3g.https.key': keyFile }
const gateway = new S3Gateway({ config: httpsConfig, omAddress: cluster.omAddress, scmAddress: cluster.scmAddress, port: 0 })
await gateway.start()
const alice = await cluster.client().getS3Secret('alice')

function sdk(endpoint: string, trust: string, secret: S3Secret = alice): S3Client {
  return new S3Client({
    endpoint, region: 'us-east-1', forcePathStyle: true, maxAttempts: 1,
    credentials: { accessKeyId: secret.awsAccessKey, secretAccessKey: secret.awsSecret },
    requestHandler: new NodeHttpHandler({ httpsAgent: new HttpsAgent({ ca: trust }) }),
  })
}

/** The certificate a new TLS connection to `port` is served, trusting `trust`; or the handshake's error. */
function servedCert(port: number, trust: string): Promise<X509Certificate | Error> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca: trust, servername: 'localhost' }, () => {
      const raw = socket.getPeerX509Certificate()
      socket.end()
      resolve(raw!)
    })
    socket.once('error', (err) => resolve(err))
  })
}

test.after(async () => {
  await gateway.stop()
  await cluster.dispose()
  rmSync(dir, { recursive: true, force: true })
})

test('S3Gateway with s3g.https=1 serves the certificate files over HTTPS: the AWS SDK writes and reads through it', async () => {
  assert.match(gateway.endpoint, /^https:\/\/127\.0\.0\.1:\d+$/)
  const s3 = sdk(gateway.endpoint, ca.cert)
  try {
    await s3.send(new CreateBucketCommand({ Bucket: 'tls-bucket' }))
    const body = randomBytes(3 * 1024 * 1024 + 17)
    await s3.send(new PutObjectCommand({ Bucket: 'tls-bucket', Key: 'over/tls', Body: body }))
    const got = await s3.send(new GetObjectCommand({ Bucket: 'tls-bucket', Key: 'over/tls' }))
    assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(body), 'read back the bytes written')
  } finally {
    s3.destroy()
  }
})

test('S3Gateway over HTTPS: a client that does not trust the CA gets nothing; one speaking plain HTTP only a 400 that says to use https://', async () => {
  const other = await createRootCa({ clusterId: 'other', nowMs: now, validityMs: 3600_000 })
  const s3 = sdk(gateway.endpoint, other.cert)
  try {
    const err = await s3.send(new CreateBucketCommand({ Bucket: 'never' })).then(() => undefined, (e: Error) => e)
    assert.ok(err !== undefined, 'refused')
    assert.match(String((err as { code?: string }).code ?? err.message), /UNABLE_TO_VERIFY|self.signed|certificate/i)
  } finally {
    s3.destroy()
  }
  // Not a bare reset (which clients report as "connection closed"): S3's XML error, in plain HTTP, then the connection closes.
  const plain = await fetch(`${gateway.endpoint.replace('https:', 'http:')}/bucket?list-type=2`)
  assert.is(plain.status, 400)
  const body = await plain.text()
  assert.match(body, /<Code>InvalidRequest<\/Code><Message>This S3 endpoint serves HTTPS: use https:\/\//)
  assert.not.match(body, /ListBucketResult/)
})

test('S3Gateway over HTTPS does not ask S3 clients for a certificate, and admin stays plain HTTP', async () => {
  const ok = await servedCert(gateway.port, ca.cert)
  assert.instance(ok, X509Certificate)
  const health = await fetch(`http://${gateway.adminAddress}/health`)
  assert.is(health.status, 200)
})

test('edgeTls(): a certificate rewritten on disk is served from the next connection; a mismatched pair keeps the old one', async () => {
  const before = await servedCert(gateway.port, ca.cert) as X509Certificate
  assert.is(before.serialNumber, new X509Certificate(first.cert).serialNumber)
  // A renewal from another CA: only a client trusting that CA connects afterwards.
  const ca2 = await createRootCa({ clusterId: 'CID-edge-2', nowMs: now, validityMs: 3600_000 })
  const second = await issue({ role: 's3g', id: 's3g-edge' }, ca2)
  writeFileSync(keyFile, second.key)
  writeFileSync(certFile, second.cert)
  const after = await servedCert(gateway.port, ca2.cert)
  assert.instance(after, X509Certificate)
  assert.is((after as X509Certificate).serialNumber, new X509Certificate(second.cert).serialNumber)
  // Half-written: a new key beside the old certificate does not go out; the pair served stays.
  const third = await issue({ role: 's3g', id: 's3g-edge' }, ca2)
  writeFileSync(keyFile, third.key)
  const kept = await servedCert(gateway.port, ca2.cert) as X509Certificate
  assert.is(kept.serialNumber, new X509Certificate(second.cert).serialNumber)
  writeFileSync(certFile, third.cert)
  const completed = await servedCert(gateway.port, ca2.cert) as X509Certificate
  assert.is(completed.serialNumber, new X509Certificate(third.cert).serialNumber)
  const s3 = sdk(gateway.endpoint, ca2.cert)
  try {
    await s3.send(new PutObjectCommand({ Bucket: 'tls-bucket', Key: 'after-renewal', Body: 'still here' }))
  } finally {
    s3.destroy()
  }
})

test('S3Gateway in a secure cluster serves its identity\'s cluster certificate, renewed with it', async () => {
  const creds = await issue({ role: 's3g', id: 's3g-secure' })
  const identity = ServiceIdentity.fromCredentials('s3g', 's3g-secure', creds)
  const secure = new S3Gateway({ config: { ...cluster.config, 'security.enabled': 1 }, omAddress: cluster.omAddress, scmAddress: cluster.scmAddress, port: 0, identity })
  await secure.start()
  try {
    assert.match(secure.endpoint, /^https:/)
    const served = await servedCert(secure.port, ca.cert) as X509Certificate
    assert.is(served.serialNumber, new X509Certificate(creds.cert).serialNumber)
    assert.match(served.subjectAltName ?? '', /o3:\/\/s3g\/s3g-secure/)
    // Renewal replaces the identity's credentials; the edge follows.
    const renewed = await issue({ role: 's3g', id: 's3g-secure' })
    ;(identity as unknown as { replace(c: typeof renewed): void }).replace(renewed)
    const next = await servedCert(secure.port, ca.cert) as X509Certificate
    assert.is(next.serialNumber, new X509Certificate(renewed.cert).serialNumber)
  } finally {
    await secure.stop()
  }
})

test('S3Gateway in a secure cluster without an identity given enrolls its own with the bootstrap token, keeps it in s3g.dir, and takes it again after a restart', async () => {
  const scmDir = join(dir, 'secure-scm')
  const config = loadConfig({ env: {}, overrides: { 'security.enabled': 1, 'scm.dir': scmDir, 's3g.dir': join(dir, 'secure-s3g') } })
  const scm = new StorageContainerManager({ config, port: 0 })
  await scm.start()
  try {
    const settings = { ...config, 'security.bootstrapToken': scm.ca!.bootstrapToken() }
    const trust = scm.ca!.caCert()
    const ids: string[] = []
    for (let start = 0; start < 2; start++) {
      const g = new S3Gateway({ config: settings, omAddress: cluster.omAddress, scmAddress: scm.address, port: 0 })
      await g.start()
      try {
        assert.match(g.endpoint, /^https:/)
        const served = await servedCert(g.port, trust)
        assert.instance(served, X509Certificate, String(served))
        const id = /o3:\/\/s3g\/([^,\s]+)/.exec((served as X509Certificate).subjectAltName ?? '')?.[1]
        assert.ok(id?.startsWith('s3g-'), String(id))
        ids.push(id!)
      } finally {
        await g.stop()
      }
    }
    assert.is(ids[1], ids[0], 'the same identity after a restart (one enrollment per id)')
  } finally {
    await scm.stop()
  }
})

test('edgeTls(): plain HTTP by default; HTTPS settings that cannot work are refused at start', async () => {
  assert.is(edgeTls(cluster.config), undefined)
  const code = (f: () => unknown) => { try { f() } catch (err) { return `${(err as O3Error).code}: ${(err as Error).message}` } return 'OK' }
  assert.match(code(() => edgeTls({ ...cluster.config, 's3g.https': 1 })), /^INVALID_ARGUMENT: Cannot serve S3 over HTTPS: set s3g.https.cert/)
  assert.match(code(() => edgeTls({ ...httpsConfig, 's3g.https.cert': join(dir, 'missing.crt') })), /^INVALID_ARGUMENT: .*missing\.crt/)
  // A key that is not the certificate's.
  const otherCert = join(dir, 'other.crt')
  writeFileSync(otherCert, (await issue({ role: 's3g', id: 'x' })).cert)
  writeFileSync(join(dir, 'first.key'), first.key)
  assert.match(code(() => edgeTls({ ...httpsConfig, 's3g.https.cert': otherCert, 's3g.https.key': join(dir, 'first.key') })), /^INVALID_ARGUMENT: Cannot serve S3 over HTTPS .*key values mismatch/)
})

test.run()
