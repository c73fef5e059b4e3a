/** Goal: three SCMs as one Raft group (issue 11, `scm.nodes`/`scm.id`): datanodes register
 * and heartbeat with all of them and take commands from the leader; the OM allocates blocks
 * through whichever leads; when the leader stops, writes keep allocating blocks at the new
 * one, with ids never handed out twice, and every acknowledged key stays readable; the
 * restarted SCM catches up to identical tables. Method: three SCMs, one OM and three
 * datanodes in this process on loopback ports, LMDB in a temporary directory. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig, type O3Config } from '../../core/config.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { OzoneManager } from '../../control/om/index.ts'
import { StorageContainerManager } from '../../control/scm/index.ts'
import { Datanode } from '../../datapath/datanode/index.ts'
import { O3Client } from '../../datapath/client/index.ts'
import { groupRoles } from '../../cli/group-admin.ts'
import { freePort, randomBytes, until } from '../helpers.ts'

const KiB = 1024
const dir = mkdtempSync(join(tmpdir(), 'o3-scm-ha-'))
// Small blocks, so that keys need fresh blocks from the SCM after the failover.
const base = loadConfig({ env: {}, overrides: { 'om.dir': join(dir, 'om'), 'scm.safemode.minDatanodes': 3, 'client.replication': 'RATIS/ONE', 'datanode.heartbeatIntervalMs': 200, 'scm.block.sizeBytes': 64 * KiB } })
const scms = new Map<string, StorageContainerManager>()
let scmConfigs = new Map<string, O3Config>()
let scmList = ''
const datanodes: Datanode[] = []
let om: OzoneManager
let client: O3Client

async function startScm(name: string): Promise<void> {
  const scm = new StorageContainerManager({ config: scmConfigs.get(name)! })
  scms.set(name, scm)
  await scm.start()
}

const isLeader = (scm: StorageContainerManager) => (scm as unknown as { ha: { isLeader(): boolean } }).ha.isLeader()
const leaderName = () => until('an SCM leader', () => [...scms.entries()].find(([, s]) => isLeader(s))?.[0])

/** A digest of every replicated SCM table. */
function digest(scm: StorageContainerManager): string {
  const t = (scm as unknown as { tables: Record<string, { getRange(): Iterable<{ key: unknown; value: unknown }> }> }).tables
  const h = createHash('sha256')
  for (const [name, table] of Object.entries(t).sort(([a], [b]) => a.localeCompare(b))) {
    h.update(name)
    for (const { key, value } of table.getRange()) h.update(JSON.stringify([key, value]))
  }
  return h.digest('hex')
}

async function blockIdsOf(keys: string[]): Promise<number[]> {
  const ids: number[] = []
  for (const k of keys) for (const l of (await client.headKey('vol', 'bkt', k)).locations) ids.push(l.blockId.localId)
  return ids
}

test.before(async () => {
  const ports = await Promise.all([1, 2, 3].map(async () => [await freePort(), await freePort()]))
  const nodes = ports.map(([rpc, raft], i) => `scm${i + 1}@127.0.0.1:${rpc}:${raft}`).join(',')
  scmList = ports.map(([rpc]) => `127.0.0.1:${rpc}`).join(',')
  scmConfigs = new Map([1, 2, 3].map((i) => [`scm${i}`, { ...base, 'scm.dir': join(dir, `scm${i}`), 'scm.nodes': nodes, 'scm.id': `scm${i}` }]))
  await Promise.all([1, 2, 3].map((i) => startScm(`scm${i}`)))
  for (let i = 1; i <= 3; i++) {
    const dn = new Datanode({ config: { ...base, 'datanode.dirs': join(dir, `dn${i}`) }, port: 0, scmAddress: scmList })
    await dn.start()
    datanodes.push(dn)
  }
  om = new OzoneManager({ config: base, port: 0, scmAddress: scmList })
  await om.start()
  client = new O3Client({ om: om.address, scm: scmList })
  await until('out of safemode', async () => !(await client.admin<{ inSafeMode: boolean }>('safemodeStatus')).inSafeMode || undefined)
})

test('every SCM knows the datanodes; one leads and the others answer NOT_LEADER naming it', async () => {
  const leader = await leaderName()
  const clusterIds = new Set([...scms.values()].map((s) => (s as unknown as { clusterId: string }).clusterId))
  assert.is(clusterIds.size, 1, 'one cluster id for the group')
  assert.equal(new Set(datanodes.map((d) => d.clusterId)), clusterIds)
  for (const [name, scm] of scms) {
    if (name === leader) continue
    // The follower's own answer (a client follows it: see below).
    const res = await fetch(`http://${scm.address}/rpc/SCM.listDatanodes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    const answer = await res.json() as { code?: string; leader?: string }
    assert.is(answer.code, 'NOT_LEADER')
    assert.is(answer.leader, scms.get(leader)!.address)
    // A client given only this follower's address follows it to the leader (as the CLI's do).
    const listed = await new RpcClient('SCM', scm.address, { followsLeaders: true }).call<unknown[]>('listDatanodes', {})
    assert.is(listed.length, 3, 'a client given a follower reaches the leader')
  }
  const dns = await client.admin<{ state: string }[]>('listDatanodes')
  assert.is(dns.filter((d) => d.state === 'HEALTHY').length, 3)
})

test('scm roles lists the three SCMs with one leader; transfer moves the leader and blocks keep coming', async () => {
  const old = await leaderName()
  const rows = await groupRoles('SCM', [scmList.split(',')[0]])
  assert.equal(rows.map((r) => r.name), ['scm1', 'scm2', 'scm3'])
  assert.equal(rows.filter((r) => r.role === 'LEADER').map((r) => r.name), [old])
  const target = ['scm1', 'scm2', 'scm3'].find((n) => n !== old)!
  const r = await new RpcClient('SCM', scmList).call<{ leader: string }>('transferLeadership', { target })
  assert.is(r.leader, target)
  assert.is(await leaderName(), target)
  await client.createVolume('transfer')
  await client.createBucket('transfer', 'bkt')
  await client.putKey('transfer', 'bkt', 'k', randomBytes(100 * KiB, 1))
  assert.ok((await client.getKey('transfer', 'bkt', 'k')).equals(randomBytes(100 * KiB, 1)))
})

test('a datanode\'s maintenance is the group\'s: after a leader transfer the new leader lists it with its end, and ends it then', async () => {
  // The datanode holding a block just written: its RATIS/ONE container has no replica elsewhere
  // (a datanode holding none would go IN_MAINTENANCE at once, and which one holds the earlier
  // tests' blocks is the SCM's choice).
  await client.createVolume('maint')
  await client.createBucket('maint', 'bkt')
  await client.putKey('maint', 'bkt', 'k', randomBytes(10 * KiB, 3))
  const dn = (await client.headKey('maint', 'bkt', 'k')).locations[0].pipeline.nodes[0].id
  assert.ok(datanodes.some((d) => d.id === dn))
  const rpc = new RpcClient('SCM', scmList)
  // 0.005 h = 18 s: time enough to move the leadership first.
  const [r] = await rpc.call<{ state: string; endMs: number }[]>('datanodeAdmin', { action: 'maintenance', datanodes: [dn], endHours: 0.005 })
  assert.is(r.state, 'ENTERING_MAINTENANCE')
  const old = await leaderName()
  const target = ['scm1', 'scm2', 'scm3'].find((n) => n !== old)!
  await rpc.call('transferLeadership', { target })
  assert.is(await leaderName(), target)
  const row = async () => (await rpc.call<{ id: string; operationalState: string; maintenanceEndMs: number | null }[]>('listDatanodes', {})).find((d) => d.id === dn)!
  const listed = await row()
  // Its RATIS/ONE containers have no replica elsewhere: it cannot be IN_MAINTENANCE yet.
  assert.is(listed.operationalState, 'ENTERING_MAINTENANCE')
  assert.is(listed.maintenanceEndMs, r.endMs, 'the end the old leader decided')
  await until('the new leader ends the maintenance', async () => (await row()).operationalState === 'IN_SERVICE', 40_000, 200)
  assert.ok(Date.now() >= r.endMs)
})

test('the SCM leader stops: writes keep allocating blocks at the new leader, never an id twice', async () => {
  await client.createVolume('vol')
  await client.createBucket('vol', 'bkt')
  const before = Array.from({ length: 6 }, (_, i) => `a${i}`)
  for (const [i, k] of before.entries()) await client.putKey('vol', 'bkt', k, randomBytes(200 * KiB + i, i))
  const old = await leaderName()
  await scms.get(old)!.stop()
  scms.delete(old)
  const next = await leaderName()
  assert.is.not(next, old)
  const after = Array.from({ length: 6 }, (_, i) => `b${i}`)
  for (const [i, k] of after.entries()) await client.putKey('vol', 'bkt', k, randomBytes(200 * KiB + i, 100 + i))
  for (const [i, k] of before.entries()) assert.ok((await client.getKey('vol', 'bkt', k)).equals(randomBytes(200 * KiB + i, i)), k)
  for (const [i, k] of after.entries()) assert.ok((await client.getKey('vol', 'bkt', k)).equals(randomBytes(200 * KiB + i, 100 + i)), k)
  const ids = await blockIdsOf([...before, ...after])
  assert.is(new Set(ids).size, ids.length, 'no block id handed out twice')
  await startScm(old)
  await until('the restarted SCM caught up', () => {
    const digests = [...scms.values()].map(digest)
    return digests.every((d) => d === digests[0]) || undefined
  })
})

test.after(async () => {
  await om?.stop()
  for (const dn of datanodes) await dn.stop()
  for (const s of scms.values()) await s.stop()
  rmSync(dir, { recursive: true, force: true })
})

test.run()
