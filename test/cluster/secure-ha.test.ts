/**
 * Tests: a secure LocalCluster with `ha` (three SCMs sharing one CA, three OMs over mutual-TLS
 * Raft, the S3 gateway's client on its s3g identity): keys written through the administrator's
 * client read back after the OM leader stops; the OMs' Raft ports refuse other callers; the
 * SCMs' Raft is mutual TLS once their CA exists (plain and non-SCM callers refused), elects
 * again after its leader stops, and a restarted SCM is on TLS from its first message.
 */
import { encodeMessage } from '../../core/raft-io/codec.ts'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { LocalCluster } from '../../cli/cluster.ts'
import { StorageContainerManager } from '../../control/scm/index.ts'
import { PLAIN_TRANSPORT, type Transport } from '../../core/rpc/transport.ts'
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

test('an OM Raft message must come from the member the certificate names: another OM certificate cannot speak as the leader', async () => {
  const [i, om] = [...cluster.oms.entries()].find(([n]) => n !== stopped)!
  const address = `${cluster.config.host}:${(om as unknown as { ha: { raft: { port: number } } }).ha.raft.port}`
  const asLeader = (from: number) => JSON.stringify({ messages: [encodeMessage({ type: 'heartbeat', from, to: i + 1, term: 1_000_000, commit: 0, context: '' })] })
  const post = async (t: Transport, body: string) => {
    const res = await request(urlOf(t, address, '/raft/messages'), { method: 'POST', dispatcher: t.dispatcher(), headers: { 'content-type': 'application/json' }, body })
    const text = await res.body.text()
    return { status: res.statusCode, text }
  }
  const other = (i + 1) % 3 === stopped ? (i + 2) % 3 : (i + 1) % 3
  // A certificate enrolled as some other OM, and a real member's (om<other+1>) claiming member <other+2>'s id.
  for (const [t, from, what] of [
    [(await cluster.issueIdentity('om', 'om-evil')).transport(), other + 1, 'om-evil as a member'],
    [(await cluster.issueIdentity('om', `om${other + 1}`)).transport(), ((other + 1) % 3) + 1, 'a member as another'],
  ] as const) {
    const r = await post(t, asLeader(from))
    assert.is(r.status, 403, what)
    assert.match(r.text, /PERMISSION_DENIED/, what)
  }
  // The group was not moved to the forged term: it still serves.
  const roles = await new RpcClient('OM', om.address, { transport: cluster.transport! }).call<{ term: number }[]>('roles', {})
  assert.ok(roles.every((r) => (r.term ?? 0) < 1_000_000), 'no member took the forged term')
})

/** The status of an empty Raft batch POSTed to `address` through `t`, or 'refused' when no HTTP answer came (plain to a TLS port). */
async function postRaft(t: Transport, address: string): Promise<number | 'refused'> {
  try {
    const res = await request(urlOf(t, address, '/raft/messages'), { method: 'POST', dispatcher: t.dispatcher(), headers: { 'content-type': 'application/json' }, body: '{"messages":[]}' })
    await res.body.dump()
    return res.statusCode
  } catch {
    return 'refused'
  }
}

const raftAddressOf = (s: StorageContainerManager) => `${cluster.config.host}:${(s as unknown as { ha: { raft: { port: number } } }).ha.raft.port}`

test("the SCMs' Raft is mutual TLS: plain, certificate-less and datanode callers refused, an SCM let in", async () => {
  const ca = cluster.caCert!
  const callers: [string, Transport, number | 'refused'][] = [
    ['plain', PLAIN_TRANSPORT, 'refused'], ['no certificate', tlsTransport(() => ({ ca })), 401],
    ['datanode', (await cluster.issueIdentity('datanode', 'dn9')).transport(), 403], ['om', (await cluster.issueIdentity('om', 'om9')).transport(), 403],
    ['scm', (await cluster.issueIdentity('scm', 'scm9')).transport(), 204],
  ]
  for (const scm of cluster.scms) {
    for (const [who, t, expected] of callers) assert.is(await postRaft(t, raftAddressOf(scm)), expected, `${who} -> ${raftAddressOf(scm)}`)
  }
})

test('the SCM group elects again over TLS after its leader stops; the restarted SCM is on TLS from its first message', async () => {
  const admin = tlsTransport(() => cluster.adminCredentials!)
  const roleOf = async (s: StorageContainerManager) => (await new RpcClient('SCM', s.address, { transport: admin }).call<{ role: string; term: number }[]>('roles', {}, { timeoutMs: 2000 }))[0]!
  const leaderIndex = async (among: number[]) => {
    for (const until = Date.now() + 20_000; Date.now() < until; await new Promise((r) => setTimeout(r, 100))) {
      for (const i of among) if ((await roleOf(cluster.scms[i]!).catch(() => undefined))?.role === 'LEADER') return i
    }
    return -1
  }
  const first = await leaderIndex([0, 1, 2])
  assert.ok(first >= 0)
  const stoppedScm = cluster.scms[first]!
  const options = (stoppedScm as unknown as { options: ConstructorParameters<typeof StorageContainerManager>[0] }).options
  const raftAddress = raftAddressOf(stoppedScm)
  await stoppedScm.stop()
  const others = [0, 1, 2].filter((i) => i !== first)
  const next = await leaderIndex(others)
  assert.ok(next >= 0, 'a new SCM leader')
  const client = cluster.client()
  await client.createBucket('vol', 'after-scm', { replication: 'RATIS/THREE' })
  await client.putKey('vol', 'after-scm', 'k', randomBytes(50_000, 3))
  // Restarted: its state holds the CA, so its Raft port serves TLS before it hears anyone.
  const again = new StorageContainerManager(options)
  cluster.scms[first] = again
  await again.start()
  assert.is(raftAddressOf(again), raftAddress)
  assert.is(await postRaft(PLAIN_TRANSPORT, raftAddress), 'refused')
  assert.ok(['FOLLOWER', 'LEADER'].includes((await roleOf(again)).role))
  assert.ok(Buffer.from(await cluster.client().getKey('vol', 'after-scm', 'k')).equals(randomBytes(50_000, 3)))
})

test.run()
