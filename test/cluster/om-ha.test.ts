/** Goal: three OMs as one Raft group (issue 11, `om.nodes`/`om.id`): the native client, given
 * every OM's address, writes and reads through whichever leads; when the leader stops, the
 * others elect a new one and the client fails over without losing an acknowledged key; a
 * commit retried with the same caller id applies once; the OMs' databases converge, also
 * after the stopped one restarts and catches up. Method: an SCM, three OMs and three
 * datanodes in this process on loopback ports, LMDB in a temporary directory. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { RpcClient } from '../../core/rpc/client.ts'
import { O3Client } from '../../datapath/client/index.ts'
import { freePort, randomBytes, until } from '../helpers.ts'
import { OmGroup } from './om-group.ts'

const g = new OmGroup('o3-om-ha-')
const { scm, oms, startOm, addressOf, leaderName } = g
let client: O3Client

test.before(async () => {
  await g.startScmAndDatanodes()
  const ports = await Promise.all([1, 2, 3].map(async () => [await freePort(), await freePort()]))
  const nodes = ports.map(([rpc, raft], i) => `om${i + 1}@127.0.0.1:${rpc}:${raft}`).join(',')
  for (const i of [1, 2, 3]) g.omConfigs.set(`om${i}`, g.omConfig(`om${i}`, nodes, ports[i - 1][0]))
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
  await g.converged('the restarted OM caught up')
})

test('a commitKey retried with the same caller id, even at a new leader, commits once and answers the same', async () => {
  const leader = await leaderName()
  const rpc = new RpcClient('OM', [...oms.keys()].map(addressOf))
  const open = await rpc.call<{ clientId: string; blocks: { blockId: unknown }[] }>('openKey', { volume: 'vol', bucket: 'bkt', key: 'once', sizeBytes: 0 })
  const caller = { client: 'test-client', call: 1 }
  const first = await rpc.call<{ objectId: number }>('commitKey', { clientId: open.clientId, blocks: [], size: 0, caller })
  await g.converged('replicated')
  await oms.get(leader)!.stop()
  oms.delete(leader)
  await leaderName()
  const again = await rpc.call<{ objectId: number }>('commitKey', { clientId: open.clientId, blocks: [], size: 0, caller })
  assert.equal(again, first)
  const keys = (await client.listKeys('vol', 'bkt')).keys.filter((k) => k.name === 'once')
  assert.is(keys.length, 1)
  await startOm(leader)
})

test.after(() => g.stop())

test.run()
