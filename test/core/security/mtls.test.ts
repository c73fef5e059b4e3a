/** Tests: the cluster's X.509 primitives and mutual TLS through serveApp, createServiceApp and RpcClient on loopback. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createRootCa, generateKeyPair, identityOf, issueCertificate, verifyIssued, certifiesKey } from '../../../core/security/pki.ts'
import { requireRole } from '../../../core/security/caller.ts'
import { serviceCaller } from '../../../core/security/caller.ts'
import { serveApp } from '../../../core/http/serve.ts'
import { createServiceApp } from '../../../core/rpc/server.ts'
import { RpcClient } from '../../../core/rpc/client.ts'
import { tlsTransport } from '../../../core/rpc/transport.ts'
import { ServiceMetrics } from '../../../core/metrics.ts'
import { O3Error } from '../../../core/errors.ts'
import { HttpTransport, raftApp } from '../../../core/raft-io/index.ts'
import type { Message } from '../../../core/raft/index.ts'

const now = Date.now()
const ca = await createRootCa({ clusterId: 'CID-test', nowMs: now, validityMs: 3600_000 })
async function credentials(role: 'om' | 'datanode' | 'scm', id: string) {
  const keys = await generateKeyPair()
  const cert = await issueCertificate({ ca: { cert: ca.cert, privateKey: ca.privateKey }, publicKey: keys.publicKey, identity: { role, id }, hosts: ['127.0.0.1', 'localhost'], nowMs: now, validityMs: 3600_000 })
  return { key: keys.privateKey, cert, ca: ca.cert, publicKey: keys.publicKey }
}

test('an issued certificate names its role and id, chains to the CA and certifies its key', async () => {
  const c = await credentials('datanode', 'dn-1')
  assert.equal(identityOf(c.cert), { role: 'datanode', id: 'dn-1' })
  assert.ok(verifyIssued(c.cert, ca.cert, now))
  assert.not.ok(verifyIssued(c.cert, ca.cert, now + 7200_000), 'expired later')
  assert.ok(certifiesKey(c.cert, c.publicKey))
  const other = await createRootCa({ clusterId: 'other', nowMs: now, validityMs: 3600_000 })
  assert.not.ok(verifyIssued(c.cert, other.cert, now), 'another CA did not sign it')
})

test('a mutual-TLS call carries the peer role; no certificate is anonymous; another CA is not trusted', async () => {
  const server = await credentials('scm', 'scm1')
  const app = createServiceApp({
    service: 'T', metrics: new ServiceMetrics('t'), health: () => ({}),
    authenticate: (c) => serviceCaller(c),
    handlers: {
      whoami: (_a, ctx) => ctx.caller,
      omOnly: (_a, ctx) => { requireRole(ctx, ['om'], 'call omOnly'); return 'yes' },
    },
  })
  const tls = { key: server.key, cert: server.cert, ca: ca.cert }
  const listener = await serveApp(app, { host: '127.0.0.1', port: 0, name: 't', tls: { current: () => tls } })
  try {
    const address = `127.0.0.1:${listener.port}`
    const om = await credentials('om', 'om1')
    const omTls = { ca: ca.cert, cert: om.cert, key: om.key }
    const asOm = new RpcClient('T', address, { transport: tlsTransport(() => omTls) })
    assert.equal(await asOm.call('whoami', {}), { kind: 'service', role: 'om', id: 'om1' })
    assert.is(await asOm.call('omOnly', {}), 'yes')
    const dn = await credentials('datanode', 'dn1')
    const dnTls = { ca: ca.cert, cert: dn.cert, key: dn.key }
    const asDn = new RpcClient('T', address, { transport: tlsTransport(() => dnTls) })
    const denied = await asDn.call('omOnly', {}).catch((e: O3Error) => e)
    assert.instance(denied, O3Error)
    assert.is((denied as O3Error).code, 'PERMISSION_DENIED')
    const anonTls = { ca: ca.cert }
    const anon = new RpcClient('T', address, { transport: tlsTransport(() => anonTls) })
    assert.equal(await anon.call('whoami', {}), { kind: 'anonymous' })
    assert.is(((await anon.call('omOnly', {}).catch((e: O3Error) => e)) as O3Error).code, 'UNAUTHENTICATED')
    // A certificate from another CA: the handshake succeeds (certificates are asked for, not
    // required) but the peer is not authorized, so it is anonymous.
    const rogueCa = await createRootCa({ clusterId: 'rogue', nowMs: now, validityMs: 3600_000 })
    const rk = await generateKeyPair()
    const rogueCert = await issueCertificate({ ca: { cert: rogueCa.cert, privateKey: rogueCa.privateKey }, publicKey: rk.publicKey, identity: { role: 'om', id: 'om1' }, hosts: ['127.0.0.1'], nowMs: now, validityMs: 3600_000 })
    const rogueTls = { ca: ca.cert, cert: rogueCert, key: rk.privateKey }
    const rogue = new RpcClient('T', address, { transport: tlsTransport(() => rogueTls) })
    assert.equal(await rogue.call('whoami', {}), { kind: 'anonymous' })
  } finally {
    await listener.close()
  }
})

test('a client checks who answers: an OM client refuses a server whose certificate names another role', async () => {
  const impostor = await credentials('datanode', 'dn-evil')
  const app = createServiceApp({ service: 'OM', metrics: new ServiceMetrics('t3'), health: () => ({}), handlers: { getVolume: () => 'secrets' } })
  const listener = await serveApp(app, { host: '127.0.0.1', port: 0, name: 't3', tls: { current: () => ({ key: impostor.key, cert: impostor.cert, ca: ca.cert }) } })
  try {
    const om = await credentials('om', 'om1')
    const creds = { ca: ca.cert, cert: om.cert, key: om.key }
    const client = new RpcClient('OM', `127.0.0.1:${listener.port}`, { transport: tlsTransport(() => creds) })
    const err = await client.call('getVolume', {}).catch((e: O3Error) => e)
    assert.instance(err, O3Error)
    assert.match((err as O3Error).message, /datanode dn-evil, where om was expected/)
    // The same server is fine for a client that expects a datanode.
    const asDatanodeClient = new RpcClient('Datanode', `127.0.0.1:${listener.port}`, { transport: tlsTransport(() => creds) })
    const wrongService = await asDatanodeClient.call('getVolume', {}).catch((e: O3Error) => e)
    assert.is((wrongService as O3Error).code, 'INVALID_ARGUMENT', 'reached the server (no such method on OM for service Datanode)')
  } finally {
    await listener.close()
  }
})

test('a caller the service cannot name learns nothing of its methods: UNAUTHENTICATED before "no such method"', async () => {
  const app = createServiceApp({
    service: 'T', metrics: new ServiceMetrics('t2'), health: () => ({}),
    authenticate: () => { throw new O3Error('UNAUTHENTICATED', 'Cannot call T: no certificate or signature') },
    handlers: { known: () => 'yes' },
  })
  const listener = await serveApp(app, { host: '127.0.0.1', port: 0, name: 't2' })
  try {
    const client = new RpcClient('T', `127.0.0.1:${listener.port}`)
    for (const method of ['known', 'noSuchMethod']) {
      const err = await client.call(method, {}).catch((e: O3Error) => e)
      assert.is((err as O3Error).code, 'UNAUTHENTICATED', method)
    }
  } finally {
    await listener.close()
  }
})

test('Raft over mutual TLS: a request does not ask the peer to carry its answers back (they could not be bound to the member), and answers nothing extra', async () => {
  const server = await credentials('om', 'om2')
  const asked: boolean[] = []
  const app = raftApp((ms, wantReplies) => {
    asked.push(wantReplies)
    return wantReplies ? Promise.resolve(ms.map((m): Message => ({ type: 'heartbeatResp', from: 2, to: 1, term: m.term, context: '' }))) : undefined
  })
  const listener = await serveApp(app, { host: '127.0.0.1', port: 0, name: 'raft tls', tls: { current: () => ({ key: server.key, cert: server.cert, ca: ca.cert }) } })
  try {
    const om = await credentials('om', 'om1')
    const replies: Message[] = []
    const t = new HttpTransport({
      peers: new Map([[2, `https://127.0.0.1:${listener.port}`]]), batching: true,
      transport: tlsTransport(() => ({ ca: ca.cert, cert: om.cert, key: om.key })), replies: (ms) => replies.push(...ms),
    })
    t.send([{ type: 'heartbeat', from: 1, to: 2, term: 1, commit: 0, context: '' }])
    for (let i = 0; i < 400 && asked.length === 0; i++) await new Promise((r) => setTimeout(r, 5))
    await new Promise((r) => setTimeout(r, 50))
    assert.equal(asked, [false], 'delivered once, without asking for replies')
    assert.is(replies.length, 0)
    assert.is(t.droppedCount(), 0)
    await t.close()
  } finally {
    await listener.close()
  }
})

test.run()
