/** Goal: three OMs as one Raft group (issue 11, `om.nodes`/`om.id`): the native client, given
 * every OM's address, writes and reads through whichever leads; when the leader stops, the
 * others elect a new one and the client fails over without losing an acknowledged key; a
 * commit retried with the same caller id applies once; the OMs' databases converge, also
 * after the stopped one restarts and catches up. Method: an SCM, three OMs and three
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
import { freePort, randomBytes, until } from '../helpers.ts'

const dir = mkdtempSync(join(tmpdir(), 'o3-om-ha-'))
const base = loadConfig({ env: {}, overrides: { 'scm.dir': join(dir, 'scm'), 'scm.safemode.minDatanodes': 3, 'client.replication': 'RATIS/ONE', 'datanode.heartbeatIntervalMs': 200 } })
const scm = new StorageContainerManager({ config: base, port: 0 })
const datanodes: Datanode[] = []
const oms = new Map<string, OzoneManager>()
let omConfigs = new Map<string, O3Config>()
let client: O3Client

async function startOm(name: string): Promise<OzoneManager> {
  const om = new OzoneManager({ config: omConfigs.get(name)!, scmAddress: scm.address })
  oms.set(name, om)
  await om.start()
  return om
}

const addressOf = (name: string) => omConfigs.get(name)!['om.address']

async function leaderName(): Promise<string> {
  return until('an OM leader', () => [...oms.entries()].find(([, om]) => (om as unknown as { ha: { isLeader(): boolean } }).ha.isLeader())?.[0])
}

/** A digest of every table of an OM's state database, but the Raft bookkeeping. */
function digest(om: OzoneManager): string {
  const t = (om as unknown as { t: Record<string, { getRange(): Iterable<{ key: unknown; value: unknown }> }> }).t
  const h = createHash('sha256')
  for (const [name, table] of Object.entries(t).sort(([a], [b]) => a.localeCompare(b))) {
    h.update(name)
    for (const { key, value } of table.getRange()) h.update(JSON.stringify([key instanceof Uint8Array ? Buffer.from(key).toString('hex') : key, value]))
  }
  return h.digest('hex')
}

test.before(async () => {
  await scm.start()
  for (let i = 1; i <= 3; i++) {
    const dn = new Datanode({ config: { ...base, 'datanode.dirs': join(dir, `dn${i}`) }, port: 0, scmAddress: scm.address })
    await dn.start()
    datanodes.push(dn)
  }
  const ports = await Promise.all([1, 2, 3].map(async () => [await freePort(), await freePort()]))
  const nodes = ports.map(([rpc, raft], i) => `om${i + 1}@127.0.0.1:${rpc}:${raft}`).join(',')
  omConfigs = new Map([1, 2, 3].map((i) => [`om${i}`, {
    ...base, 'om.dir': join(dir, `om${i}`), 'om.nodes': nodes, 'om.id': `om${i}`, 'om.address': `127.0.0.1:${ports[i - 1][0]}`,
  }]))
  await Promise.all([1, 2, 3].map((i) => startOm(`om${i}`)))
  client = new O3Client({ om: [1, 2, 3].map((i) => addressOf(`om${i}`)).join(','), scm: scm.address })
  await until('out of safemode', async () => !(await client.admin<{ inSafeMode: boolean }>('safemodeStatus')).inSafeMode || undefined)
})

test('three OMs elect one leader; the client writes and reads through it from any address list order', async () => {
  const leader = await leaderName()
  const roles = await new RpcClient('OM', addressOf(leader)).call<{ role: string; members: number[] }[]>('roles', {})
  assert.is(roles[0].role, 'LEADER')
  assert.equal(roles[0].members.sort(), [1, 2, 3])
  await client.createVolume('vol')
  await client.createBucket('vol', 'bkt')
  for (let i = 0; i < 5; i++) await client.putKey('vol', 'bkt', `k${i}`, randomBytes(3000 + i, i))
  // A follower answers reads with NOT_LEADER naming the leader; the client follows it.
  const follower = [...oms.keys()].find((n) => n !== leader)!
  const viaFollower = new O3Client({ om: `${addressOf(follower)},${addressOf(leader)}`, scm: scm.address })
  assert.ok((await viaFollower.getKey('vol', 'bkt', 'k3')).equals(randomBytes(3003, 3)))
})

test('the leader stops: the others elect a new one, the client fails over, no acknowledged key is lost', async () => {
  const old = await leaderName()
  await oms.get(old)!.stop()
  oms.delete(old)
  const next = await leaderName()
  assert.is.not(next, old)
  for (let i = 5; i < 10; i++) await client.putKey('vol', 'bkt', `k${i}`, randomBytes(3000 + i, i))
  for (let i = 0; i < 10; i++) assert.ok((await client.getKey('vol', 'bkt', `k${i}`)).equals(randomBytes(3000 + i, i)), `k${i}`)
  // Restart the stopped OM: it catches up from the leader and holds the same tables.
  await startOm(old)
  await until('the restarted OM caught up', () => {
    const digests = [...oms.values()].map(digest)
    return digests.every((d) => d === digests[0]) || undefined
  })
})

test('a commitKey retried with the same caller id, even at a new leader, commits once and answers the same', async () => {
  const leader = await leaderName()
  const rpc = new RpcClient('OM', [...oms.keys()].map(addressOf))
  const open = await rpc.call<{ clientId: string; blocks: { blockId: unknown }[] }>('openKey', { volume: 'vol', bucket: 'bkt', key: 'once', sizeBytes: 0 })
  const caller = { client: 'test-client', call: 1 }
  const first = await rpc.call<{ objectId: number }>('commitKey', { clientId: open.clientId, blocks: [], size: 0, caller })
  await until('replicated', () => {
    const digests = [...oms.values()].map(digest)
    return digests.every((d) => d === digests[0]) || undefined
  })
  await oms.get(leader)!.stop()
  oms.delete(leader)
  await leaderName()
  const again = await rpc.call<{ objectId: number }>('commitKey', { clientId: open.clientId, blocks: [], size: 0, caller })
  assert.equal(again, first)
  const keys = (await client.listKeys('vol', 'bkt')).keys.filter((k) => k.name === 'once')
  assert.is(keys.length, 1)
  await startOm(leader)
})

test.after(async () => {
  for (const om of oms.values()) await om.stop()
  for (const dn of datanodes) await dn.stop()
  await scm.stop()
  rmSync(dir, { recursive: true, force: true })
})

test.run()
