/**
 * Tests: a secure LocalCluster with `ha` (three SCMs sharing one CA, three OMs over mutual-TLS
 * Raft, the S3 gateway's client on its s3g identity): keys written through the administrator's
 * client read back after the OM leader stops; the OMs' Raft ports refuse other callers.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { LocalCluster } from '../../cli/cluster.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { tlsTransport, urlOf } from '../../core/rpc/transport.ts'
import { randomBytes } from '../helpers.ts'

const dir = mkdtempSync(join(tmpdir(), 'o3-secure-ha-'))
const cluster = new LocalCluster({ dataDir: dir, datanodes: 3, freePorts: true, ha: true, secure: true, overrides: { 'datanode.heartbeatIntervalMs': 200 } })

/** The OM the first test stopped. */
let stopped = -1

test.after(async () => {
  await cluster.stop()
  rmSync(dir, { recursive: true, force: true })
})

test('three SCMs and three OMs start secure; a key written survives the OM leader stopping', async () => {
  await cluster.start()
  const client = cluster.client()
  await client.createVolume('vol')
  await client.createBucket('vol', 'bkt', { replication: 'RATIS/THREE' })
  const bytes = randomBytes(200_000)
  await client.putKey('vol', 'bkt', 'k', bytes)
  const admin = tlsTransport(() => cluster.adminCredentials!)
  const roles = await Promise.all(cluster.oms.map(async (o) => (await new RpcClient('OM', o.address, { transport: admin }).call<{ role: string }[]>('roles', {}))[0]!.role))
  const leader = roles.indexOf('LEADER')
  assert.ok(leader >= 0)
  await cluster.oms[leader]!.stop()
  stopped = leader
  assert.ok(Buffer.from(await cluster.client().getKey('vol', 'bkt', 'k')).equals(bytes))
})

test('an OM Raft port refuses a caller without a certificate and a datanode', async () => {
  const om = cluster.oms.find((_, i) => i !== stopped)!
  const address = `${cluster.config.host}:${(om as unknown as { ha: { raft: { port: number } } }).ha.raft.port}`
  const ca = cluster.caCert!
  for (const [t, status] of [[tlsTransport(() => ({ ca })), 401], [(await cluster.issueIdentity('datanode', 'dn9')).transport(), 403]] as const) {
    const res = await request(urlOf(t, address, '/raft/messages'), { method: 'POST', dispatcher: t.dispatcher(), headers: { 'content-type': 'application/json' }, body: '{"messages":[]}' })
    await res.body.dump()
    assert.is(res.statusCode, status)
  }
})

test.run()
