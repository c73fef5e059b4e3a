/**
 * Tests: a secure LocalCluster (security.enabled=1, mutual TLS everywhere) writes and reads
 * keys; the SCM's and datanodes' role tables and the Raft ports refuse callers without a
 * certificate, of the wrong role, or speaking for another datanode.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { request } from 'undici'
import { startMiniCluster, randomBytes } from './mini-cluster.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { PLAIN_TRANSPORT, tlsTransport, urlOf, type Transport } from '../../core/rpc/transport.ts'
import { O3Error } from '../../core/errors.ts'
import { encodeMessage } from '../../core/raft-io/codec.ts'
import type { ServiceRole } from '../../core/security/pki.ts'
import { S3Gateway } from '../../datapath/s3/index.ts'
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import { Agent as HttpsAgent } from 'node:https'

const cluster = await startMiniCluster({ datanodes: 3, overrides: { 'security.enabled': 1 } })
const ca = cluster.caCert!
/** HTTPS trusting the cluster CA, showing no certificate: a stranger. */
const anonymous: Transport = tlsTransport(() => ({ ca }))
const as = async (role: ServiceRole, id: string): Promise<Transport> => (await cluster.issueIdentity(role, id)).transport()

async function refused(p: Promise<unknown>): Promise<string> {
  const e = await p.then(() => undefined, (err: unknown) => err)
  assert.instance(e, O3Error, 'the call is refused')
  return (e as O3Error).code
}

/** A raw POST through `t` to a service; answers the HTTP status. */
async function post(t: Transport, address: string, path: string, body: unknown): Promise<number> {
  const res = await request(urlOf(t, address, path), { method: 'POST', dispatcher: t.dispatcher(), headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  await res.body.dump()
  return res.statusCode
}

test.after(async () => {
  await cluster.dispose()
})

test('a secure cluster serves HTTPS only and writes and reads keys (RATIS/THREE, several chunks) with the administrator client', async () => {
  assert.ok(cluster.secure)
  const plain = await fetch(`http://${cluster.scmAddress}/health`).then(() => 'answered', () => 'refused')
  assert.is(plain, 'refused', 'plain HTTP gets no answer from a service\'s TLS listener (only the S3 gateway explains)')
  const client = cluster.client({ chunkSizeBytes: 64 * 1024 })
  await client.createVolume('vol')
  await client.createBucket('vol', 'bkt', { replication: 'RATIS/THREE' })
  const small = randomBytes(1000)
  const big = randomBytes(300 * 1024)
  await client.putKey('vol', 'bkt', 'small', small)
  await client.putKey('vol', 'bkt', 'big', big)
  assert.ok(Buffer.from(await client.getKey('vol', 'bkt', 'small')).equals(Buffer.from(small)))
  assert.ok(Buffer.from(await client.getKey('vol', 'bkt', 'big')).equals(Buffer.from(big)))
})

test('the S3 gateway calls the OM, SCM and datanodes with its s3g identity and serves HTTPS with it: PUT and GET an object', async () => {
  const identity = await cluster.issueIdentity('s3g', 's3g1')
  const gateway = new S3Gateway({ config: cluster.config, omAddress: cluster.omAddress, scmAddress: cluster.scmAddress, port: 0, transport: identity.transport(), identity })
  await gateway.start()
  try {
    const alice = await cluster.client().getS3Secret('alice')
    assert.match(gateway.endpoint, /^https:/)
    const s3 = new S3Client({
      endpoint: gateway.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: alice.awsAccessKey, secretAccessKey: alice.awsSecret },
      requestHandler: new NodeHttpHandler({ httpsAgent: new HttpsAgent({ ca: cluster.caCert }) }),
    })
    await s3.send(new CreateBucketCommand({ Bucket: 'secure-bucket' }))
    const body = randomBytes(100_000)
    await s3.send(new PutObjectCommand({ Bucket: 'secure-bucket', Key: 'obj', Body: body }))
    const got = await s3.send(new GetObjectCommand({ Bucket: 'secure-bucket', Key: 'obj' }))
    assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(body))
    s3.destroy()
  } finally {
    await gateway.stop()
  }
})

test('SCM: no certificate is UNAUTHENTICATED; the wrong role or a non-administrator user is PERMISSION_DENIED', async () => {
  const scm = (t: Transport) => new RpcClient('SCM', cluster.scmAddress, { transport: t })
  assert.is(await refused(scm(anonymous).call('listDatanodes', {})), 'UNAUTHENTICATED')
  assert.is(await refused(scm(anonymous).call('allocateBlock', { size: 1, count: 1, replication: 'RATIS/ONE' })), 'UNAUTHENTICATED')
  const dn = await as('datanode', cluster.datanodes[0]!.id)
  assert.is(await refused(scm(dn).call('allocateBlock', { size: 1, count: 1, replication: 'RATIS/ONE' })), 'PERMISSION_DENIED')
  assert.is(await refused(scm(dn).call('deleteBlocks', {})), 'PERMISSION_DENIED')
  assert.is(await refused(scm(await as('s3g', 's3g9')).call('getContainerLocations', { containerIds: [1] })), 'PERMISSION_DENIED')
  assert.is(await refused(scm(await as('user', 'mallory')).call('listDatanodes', {})), 'PERMISSION_DENIED')
  assert.is(await refused(scm(await as('om', 'om9')).call('heartbeat', { id: cluster.datanodes[0]!.id })), 'PERMISSION_DENIED')
  // Allowed: an administrator, and the OM for its own routes.
  assert.ok(Array.isArray(await scm(await as('user', 'admin')).call('listDatanodes', {})))
  assert.ok(Array.isArray(await scm(await as('om', 'om9')).call('listPipelines', {})))
})

test('SCM: a datanode registers and heartbeats only as itself (a forged register is refused)', async () => {
  const [a, b] = [cluster.datanodes[0]!, cluster.datanodes[1]!]
  const asA = new RpcClient('SCM', cluster.scmAddress, { transport: await as('datanode', a.id) })
  const forged = await refused(asA.call('register', { id: b.id, address: a.address, volumes: [] }))
  assert.is(forged, 'PERMISSION_DENIED')
  assert.is(await refused(asA.call('heartbeat', { id: b.id })), 'PERMISSION_DENIED')
  // Datanode b still registered where it was.
  const nodes = await cluster.client().admin<{ id: string; address: string }[]>('listDatanodes')
  assert.is(nodes.find((n) => n.id === b.id)?.address, b.address)
  // As itself it may.
  await asA.call('register', { id: a.id, address: a.address, volumes: [] })
})

test('datanode: admin and pipeline routes take SCM/datanode peers or administrators; raw peer routes take datanodes only', async () => {
  const dn = cluster.datanodes[0]!
  const rpc = (t: Transport) => new RpcClient('Datanode', dn.address, { transport: t })
  assert.is(await refused(rpc(anonymous).call('listContainers', {})), 'UNAUTHENTICATED')
  assert.is(await refused(rpc(await as('om', 'om9')).call('listContainers', {})), 'PERMISSION_DENIED')
  assert.is(await refused(rpc(await as('s3g', 's3g9')).call('createPipeline', { pipelineId: 'x', members: [] })), 'PERMISSION_DENIED')
  assert.is(await refused(rpc(await as('user', 'mallory')).call('deleteContainer', { containerId: 1 })), 'PERMISSION_DENIED')
  assert.ok(Array.isArray(await rpc(await as('scm', 'scm9')).call('listContainers', {})))
  assert.ok(Array.isArray(await rpc(await as('user', 'admin')).call('listPipelines', {})))
  // Block routes go to Datanode.blockTokenCheck for callers that are not datanode/SCM peers (block tokens decide).
  const installed = dn.blockTokenCheck
  dn.blockTokenCheck = () => { throw new O3Error('BLOCK_TOKEN_VERIFICATION_FAILED', 'test check') }
  try {
    assert.is(await refused(rpc(anonymous).call('getBlock', { containerId: 1, localId: 1 })), 'BLOCK_TOKEN_VERIFICATION_FAILED')
    assert.is(await post(await as('user', 'admin'), dn.address, '/chunk/read', { containerId: 1, localId: 1, offset: 0, length: 1 }), 403)
    // Peers are not asked: an unknown container, not a refusal.
    assert.is(await refused(rpc(await as('datanode', 'dn9')).call('getBlock', { containerId: 999, localId: 1 })), 'CONTAINER_NOT_FOUND')
  } finally {
    dn.blockTokenCheck = installed
  }
  // Raw routes between datanodes.
  const om = await as('om', 'om9')
  assert.is(await post(anonymous, dn.address, '/pipeline/p/raft/messages', { messages: [] }), 401)
  assert.is(await post(om, dn.address, '/pipeline/p/raft/messages', { messages: [] }), 403)
  assert.is(await post(om, dn.address, '/pipeline/p/chunk-data', { containerId: 1, localId: 1, offset: 0, length: 1 }), 403)
  const exported = await request(urlOf(om, dn.address, '/container/1/export'), { dispatcher: om.dispatcher() })
  await exported.body.dump()
  assert.is(exported.statusCode, 403)
  // A datanode peer passes the check (no such pipeline here: 404, not 401/403).
  assert.is(await post(await as('datanode', 'dn9'), dn.address, '/pipeline/p/raft/messages', { messages: [] }), 404)
  // A pipeline's Raft message must come from the member the certificate names: another datanode
  // (or a member claiming another member's id) cannot speak as the leader.
  const groups = await rpc(await as('scm', 'scm9')).call<{ pipelineId: string; members: { id: string }[] }[]>('listPipelines', {})
  const g = groups.find((p) => p.members.length === 3)
  assert.ok(g !== undefined, 'a RATIS/THREE group on the datanode')
  const self = g.members.findIndex((m) => m.id === dn.id)
  const other = (self + 1) % 3
  const forged = (from: number) => ({ messages: [encodeMessage({ type: 'heartbeat', from, to: self + 1, term: 1_000_000, commit: 0, context: '' })] })
  assert.is(await post(await as('datanode', 'dn9'), dn.address, `/pipeline/${g.pipelineId}/raft/messages`, forged(other + 1)), 403)
  const third = [0, 1, 2].find((i) => i !== self && i !== other)!
  assert.is(await post(await as('datanode', g.members[other]!.id), dn.address, `/pipeline/${g.pipelineId}/raft/messages`, forged(third + 1)), 403)
})

test('the OM Raft port takes OMs only; a secure SCM group of one takes no Raft message', async () => {
  const raftPort = (s: unknown) => (s as { ha: { raft: { port: number } } }).ha.raft.port
  const omRaft = `${cluster.config.host}:${raftPort(cluster.om)}`
  const scmRaft = `${cluster.config.host}:${raftPort(cluster.scm)}`
  assert.is(await post(anonymous, omRaft, '/raft/messages', { messages: [] }), 401)
  assert.is(await post(await as('datanode', 'dn9'), omRaft, '/raft/messages', { messages: [] }), 403)
  assert.is(await post(await as('scm', 'scm9'), omRaft, '/raft/messages', { messages: [] }), 403)
  // The SCM's Raft port serves TLS once its group's CA exists (plain HTTP is not even answered), and alone it takes nothing.
  assert.ok(await post(PLAIN_TRANSPORT, scmRaft, '/raft/messages', { messages: [] }).then(() => false, () => true), 'plain refused')
  assert.is(await post(anonymous, scmRaft, '/raft/messages', { messages: [] }), 403)
  assert.is(await post(await as('scm', 'scm9'), scmRaft, '/raft/messages', { messages: [] }), 403)
  // A peer of the right role gets through to the batch (an empty one is accepted).
  assert.is(await post(await as('om', 'om9'), omRaft, '/raft/messages', { messages: [] }), 204)
})

test('a restarted datanode serves again with the certificate it kept (no second enrollment)', async () => {
  const before = cluster.datanodes[2]!.id
  await cluster.stopDatanode(2)
  const dn = await cluster.startDatanode(2)
  assert.is(dn.id, before)
  const client = cluster.client()
  await client.createBucket('vol', 'after', { replication: 'RATIS/ONE' })
  for (let i = 0; i < 6; i++) await client.putKey('vol', 'after', `k${i}`, randomBytes(5000, i))
  for (let i = 0; i < 6; i++) assert.ok(Buffer.from(await client.getKey('vol', 'after', `k${i}`)).equals(randomBytes(5000, i)))
})

test.run()
