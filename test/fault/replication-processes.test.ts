/**
 * Goal: the SCM repairs the loss of a datanode by itself (issue 13), as Ozone's replication
 * manager does: with four datanodes, RATIS/THREE keys filling several closed containers, one
 * datanode is killed with kill -9 for good; once the SCM calls it DEAD, every container it
 * held (closed ones, and open ones, which close on the survivors and never stay CLOSING) has
 * three CLOSED replicas on live datanodes again, the container report shows none
 * under-replicated, and every key reads back byte for byte from the new locations; a key
 * deleted while the datanode is down, and one deleted after the repair, lose their blocks on
 * every live replica, the copies included.
 * Method: `o3 local --processes --datanodes 4 --ports free` (a child process per service),
 * small containers (4 MiB) so that 1 MiB keys fill and close several, short stale/dead
 * intervals and a 1 s replication interval through O3_* settings, SIGKILL by PID file, the
 * SCM's admin RPCs (getContainer, containerReport) over real HTTP. Each step is logged with
 * its time; O3_TEST_KEEP=1 keeps a failed run's data dir.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { KiB, MiB } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { randomBytes, until } from '../helpers.ts'
import { PipelineCluster, REPLICATION_TEST_ENV } from './pipeline-cluster.ts'

interface Replica { datanodeId: string; state: string; nodeState: string; bcsid: number; blockCount: number }
interface Container { id: number; state: string; replication: string; health: string[]; replicas: Replica[] }

const ENV: NodeJS.ProcessEnv = {
  ...REPLICATION_TEST_ENV,
  O3_SCM_HEARTBEAT_STALEMS: '3000',
  O3_SCM_HEARTBEAT_DEADMS: '8000',
  O3_OM_DELETEDBLOCKS_GRACEMS: '0',
  O3_OM_OPENKEY_CHECKINTERVALMS: '500',
}
const KEYS = 24
const KEY_BYTES = 900 * KiB
const CLOSED_CONTAINERS_MIN = 3

test('kill -9 of one of four datanodes for good: every container it held has three healthy replicas again, and every key reads back', () => PipelineCluster.run('replication', async (c) => {
  const scm = new RpcClient('SCM', c.endpoints.scm)
  const containers = async (): Promise<Container[]> => {
    const list = await scm.call<{ id: number }[]>('listContainers', {})
    return Promise.all(list.map((x) => scm.call<Container>('getContainer', { containerId: x.id })))
  }
  /** A key with a block in container `id` (one of those written above). */
  const keyIn = async (id: number): Promise<string> => {
    for (const key of keys.keys()) {
      const info = await c.client.om.call<{ locations: { blockId: { containerId: number } }[] }>('lookupKey', { volume: 'vol', bucket: 'bkt', key })
      if (info.locations.some((l) => l.blockId.containerId === id)) return key
    }
    throw new Error(`no key in container ${id}`)
  }
  await until('four HEALTHY datanodes', async () => (await scm.call<{ state: string }[]>('listDatanodes', {})).filter((d) => d.state === 'HEALTHY').length === 4, 60_000, 250)
  await c.client.createVolume('vol')
  await c.client.createBucket('vol', 'bkt')
  c.step(`write ${KEYS} RATIS/THREE keys of ${KEY_BYTES / KiB} KiB`)
  const keys = new Map<string, Buffer>()
  for (let i = 0; i < KEYS; i++) {
    const data = randomBytes(KEY_BYTES)
    await c.client.putKey('vol', 'bkt', `k${i}`, data, { replication: 'RATIS/THREE' })
    keys.set(`k${i}`, data)
  }
  await until(`${CLOSED_CONTAINERS_MIN} CLOSED RATIS/THREE containers`, async () => (await containers()).filter((x) => x.replication === 'RATIS/THREE' && x.state === 'CLOSED').length >= CLOSED_CONTAINERS_MIN, 60_000, 250)
  // And an open container at the kill: it must close on the survivors, not stay CLOSING.
  for (const key of ['open-a', 'open-b']) {
    const data = randomBytes(200 * KiB)
    await c.client.putKey('vol', 'bkt', key, data, { replication: 'RATIS/THREE' })
    keys.set(key, data)
  }
  const before = await until('every replica reported', async () => {
    const cs = (await containers()).filter((x) => x.replication === 'RATIS/THREE')
    return cs.every((x) => x.replicas.length === 3) ? cs : undefined
  }, 30_000, 250)
  const held = new Map<string, number>()
  for (const x of before) for (const r of x.replicas) held.set(r.datanodeId, (held.get(r.datanodeId) ?? 0) + 1)
  const victim = c.dn([...held].sort((a, b) => b[1] - a[1])[0][0])
  const lost = before.filter((x) => x.replicas.some((r) => r.datanodeId === victim.id)).map((x) => x.id)
  c.step(`${before.length} containers (${before.filter((x) => x.state === 'CLOSED').length} CLOSED); ${victim.name} holds ${lost.length}: ${lost.join(' ')}`)
  c.kill(victim)
  // A deletion while the victim is down: it stays pending for the victim, and the copies
  // made later get it too (addDeleteHolder), so no replica keeps the key's blocks.
  const doomed = await keyIn(lost[0])
  const blocksBefore = before.find((x) => x.id === lost[0])!.replicas[0].blockCount
  await c.client.deleteKey('vol', 'bkt', doomed)
  keys.delete(doomed)
  c.step(`deleted ${doomed} (container ${lost[0]}, ${blocksBefore} blocks) while ${victim.name} is down`)

  await until(`${victim.name} DEAD`, async () => (await scm.call<{ id: string; state: string }[]>('listDatanodes', {})).find((d) => d.id === victim.id)?.state === 'DEAD', 60_000, 250)
  c.step(`${victim.name} is DEAD; waiting for three healthy replicas of each of its containers`)
  const live = new Set(c.live().map((d) => d.id))
  const repaired = await until('three CLOSED replicas on live datanodes for every container the victim held', async () => {
    const cs = (await containers()).filter((x) => lost.includes(x.id))
    const ok = cs.every((x) => x.state === 'CLOSED' && x.replicas.filter((r) => r.state === 'CLOSED' && live.has(r.datanodeId) && r.nodeState === 'HEALTHY').length === 3)
    return ok ? cs : undefined
  }, 180_000, 500)
  for (const x of repaired) {
    const good = x.replicas.filter((r) => live.has(r.datanodeId) && r.state === 'CLOSED')
    assert.is(new Set(good.map((r) => r.bcsid)).size, 1, `container ${x.id}: the copies carry the same bcsid (${JSON.stringify(good)})`)
  }
  c.step('every container of the victim has three CLOSED replicas on live datanodes')
  await until(`the deleted key's blocks gone from every live replica of container ${lost[0]}, the copy too`, async () => {
    const x = await scm.call<Container>('getContainer', { containerId: lost[0] })
    const liveReplicas = x.replicas.filter((r) => live.has(r.datanodeId))
    return liveReplicas.length === 3 && liveReplicas.every((r) => r.blockCount < blocksBefore && r.blockCount === liveReplicas[0].blockCount)
  }, 60_000, 500)
  // A deletion after the repair reaches the copies as it does the original replicas.
  const later = await keyIn(lost[lost.length - 1])
  const laterBefore = (await scm.call<Container>('getContainer', { containerId: lost[lost.length - 1] })).replicas.filter((r) => live.has(r.datanodeId)).map((r) => r.blockCount)
  await c.client.deleteKey('vol', 'bkt', later)
  keys.delete(later)
  await until(`${later}'s blocks gone from all three live replicas`, async () => {
    const now = (await scm.call<Container>('getContainer', { containerId: lost[lost.length - 1] })).replicas.filter((r) => live.has(r.datanodeId))
    return now.length === 3 && now.every((r) => r.blockCount < Math.min(...laterBefore))
  }, 60_000, 500)
  c.step(`deletions reached the copies: ${doomed} (while down) and ${later} (after the repair)`)
  const report = await until('a container report with nothing under-replicated or missing', async () => {
    const r = await scm.call<{ health: Record<string, number> }>('containerReport', {})
    return r.health.UNDER_REPLICATED === 0 && r.health.MISSING === 0 ? r : undefined
  }, 30_000, 500)
  c.step(`container report: ${JSON.stringify(report.health)}`)
  const prom = await (await fetch(`http://${c.endpoints.scm}/prom`)).text()
  const metric = (re: RegExp) => Number(re.exec(prom)?.[1] ?? 0)
  assert.ok(metric(/^o3_scm_replication_commands_completed_total\{[^}]*kind="replicate"[^}]*\} (\d+)$/m) >= lost.length, 'every copy counted done on /prom')
  assert.ok(metric(/^o3_scm_replication_bytes_total\{[^}]*\} (\d+)$/m) > 0, 'bytes re-replicated counted on /prom')

  for (const [key, data] of keys) assert.ok((await c.client.getKey('vol', 'bkt', key)).equals(data), `${key} reads back`)
  c.step(`all ${keys.size} keys read back byte for byte`)
}, { datanodes: 4, env: ENV }))

test.run()
