/**
 * Goal: decommissioning a datanode under a read load, with real processes (issue 13): with
 * four datanodes and RATIS/THREE keys filling several closed containers, `o3 admin datanode
 * decommission ADDRESS` takes the node holding the most replicas out; meanwhile a reader
 * loops over every key, comparing byte for byte, and no read fails; the node ends
 * DECOMMISSIONED only once every container it held has three CLOSED replicas on other
 * datanodes (made by the SCM's replication manager); it is then safe to stop: after kill -9
 * of it, every key reads back.
 * Method: `o3 local --processes --datanodes 4 --ports free` (a child process per service),
 * small containers (4 MiB) so that 900 KiB keys fill several, a 1 s replication interval
 * through O3_* settings, containers closed through the SCM's admin RPC, the decommission
 * through the real CLI (bin/o3.js) as a child process, SIGKILL by PID file. Each step is
 * logged with its time; O3_TEST_KEEP=1 keeps a failed run's data dir.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile } from 'node:child_process'
import { KiB, MiB } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { randomBytes, until } from '../helpers.ts'
import { o3 } from './ha-cluster.ts'
import { describeError, PipelineCluster, REPLICATION_TEST_ENV } from './pipeline-cluster.ts'

interface Replica { datanodeId: string; state: string; nodeState: string; bcsid: number; blockCount: number }
interface Container { id: number; state: string; replication: string; replicas: Replica[] }
interface Node { id: string; address: string; state: string; operationalState: string }

const ENV: NodeJS.ProcessEnv = {
  ...REPLICATION_TEST_ENV,
  // No node turns STALE under the load of a shared machine: the decommission is the only change.
  O3_SCM_HEARTBEAT_STALEMS: '15000',
  O3_SCM_HEARTBEAT_DEADMS: '60000',
}
const KEYS = 20
const KEY_BYTES = 900 * KiB
const CLOSED_CONTAINERS_MIN = 3
const KEYS_PER_CONTAINER = 4

function cli(c: PipelineCluster, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [o3, 'admin', 'datanode', ...args, '--om', c.endpoints.om, '--scm', c.endpoints.scm], { encoding: 'utf8', timeout: 60_000, env: c.env }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

test('decommission of one of four datanodes under a read load: no read fails, it ends DECOMMISSIONED with its containers three times elsewhere, and kill -9 of it loses nothing', () => PipelineCluster.run('decommission', async (c) => {
  const scm = new RpcClient('SCM', c.endpoints.scm)
  const containers = async (): Promise<Container[]> => {
    const list = await scm.call<{ id: number }[]>('listContainers', {})
    return Promise.all(list.map((x) => scm.call<Container>('getContainer', { containerId: x.id })))
  }
  const nodes = () => scm.call<Node[]>('listDatanodes', {})
  await until('four HEALTHY datanodes', async () => (await nodes()).filter((d) => d.state === 'HEALTHY').length === 4, 60_000, 250)
  await c.client.createVolume('vol')
  await c.client.createBucket('vol', 'bkt')

  c.step(`write ${KEYS} RATIS/THREE keys of ${KEY_BYTES / KiB} KiB`)
  const keys = new Map<string, Buffer>()
  for (let i = 0; i < KEYS; i++) {
    const data = randomBytes(KEY_BYTES, i + 1)
    await c.client.putKey('vol', 'bkt', `k${i}`, data, { replication: 'RATIS/THREE' })
    keys.set(`k${i}`, data)
    // The SCM closes a full container from a heartbeat's report, which a fast writer outruns:
    // close each one after KEYS_PER_CONTAINER keys so that the keys span several containers.
    if ((i + 1) % KEYS_PER_CONTAINER === 0) for (const x of await containers()) if (x.state === 'OPEN') await scm.call('closeContainer', { containerId: x.id })
  }
  for (const x of await containers()) if (x.state === 'OPEN') await scm.call('closeContainer', { containerId: x.id })
  const closed = await until('every RATIS/THREE container CLOSED with three CLOSED replicas', async () => {
    const cs = (await containers()).filter((x) => x.replication === 'RATIS/THREE')
    return cs.every((x) => x.state === 'CLOSED' && x.replicas.filter((r) => r.state === 'CLOSED').length === 3) ? cs : undefined
  }, 60_000, 250)
  assert.ok(closed.length >= CLOSED_CONTAINERS_MIN, `${closed.length} closed containers, want ${CLOSED_CONTAINERS_MIN} or more`)

  // The node holding the most replicas: some of its containers must move to the node without one.
  const count = new Map<string, number>()
  for (const x of closed) for (const r of x.replicas) count.set(r.datanodeId, (count.get(r.datanodeId) ?? 0) + 1)
  const victimId = [...count].sort((a, b) => b[1] - a[1])[0][0]
  const victimNode = (await nodes()).find((d) => d.id === victimId)!
  const victim = c.dn(victimId)
  assert.is(victimNode.address, victim.address, 'the SCM knows the datanode by the address o3 local printed')
  const held = closed.filter((x) => x.replicas.some((r) => r.datanodeId === victimId)).map((x) => x.id)
  c.step(`${closed.length} CLOSED containers; ${victim.name} (${victim.address}) holds ${held.length}: ${held.join(' ')}`)

  // A reader over every key, byte for byte, until the node is DECOMMISSIONED.
  let reads = 0
  const failures: string[] = []
  let reading = true
  let done: Node | undefined
  let atEnd: Container[] = []
  const reader = (async () => {
    while (reading) {
      for (const [key, data] of keys) {
        if (!reading) break
        try {
          if (!(await c.client.getKey('vol', 'bkt', key)).equals(data)) failures.push(`${key}: wrong bytes`)
          reads++
        } catch (err) {
          failures.push(`${key}: ${describeError(err)}`)
        }
      }
    }
  })()
  try {
    await until('a few reads before the decommission', () => reads >= 3 || failures.length > 0, 60_000, 100)
    c.step(`o3 admin datanode decommission ${victim.address} --json (${reads} reads so far)`)
    const r = await cli(c, 'decommission', victim.address, '--json')
    assert.is(r.code, 0, r.stderr)
    const answer = JSON.parse(r.stdout) as { id: string; state: string }[]
    assert.is(answer.length, 1, r.stdout)
    assert.is(answer[0].id, victimId, r.stdout)
    assert.is(answer[0].state, 'DECOMMISSIONING', r.stdout)
    const readsAtStart = reads
    // The containers as the SCM sees them once the node is DECOMMISSIONED (asked after the
    // node's state, so a copy finished late cannot hide a node let go too early).
    ;({ node: done, containers: atEnd } = await until(`${victim.name} DECOMMISSIONED`, async () => {
      const n = (await nodes()).find((x) => x.id === victimId)!
      return n.operationalState === 'DECOMMISSIONED' ? { node: n, containers: await containers() } : undefined
    }, 180_000, 500))
    c.step(`${victim.name} is DECOMMISSIONED (${done.state}); ${reads - readsAtStart} reads during the decommission`)
    // The reader keeps going a moment past the end (the node's pipelines are gone by now).
    const readsAtEnd = reads
    await until('another pass of reads after the end', () => reads >= readsAtEnd + keys.size || failures.length > 0, 120_000, 100)
  } finally {
    reading = false
    await reader
  }
  assert.equal(failures, [], 'no read failed')
  assert.ok(reads >= 2 * keys.size, `reads: ${reads}`)

  assert.is(done?.state, 'HEALTHY')

  // Every container it held has three CLOSED replicas on other, healthy datanodes.
  for (const id of held) {
    const x = atEnd.find((y) => y.id === id)!
    const elsewhere = x.replicas.filter((r) => r.datanodeId !== victimId && r.state === 'CLOSED' && r.nodeState === 'HEALTHY')
    assert.ok(elsewhere.length >= 3, `container ${id}: ${JSON.stringify(x.replicas)}`)
    assert.is(new Set(elsewhere.map((r) => r.bcsid)).size, 1, `container ${id}: the copies carry the same bcsid (${JSON.stringify(elsewhere)})`)
  }
  c.step(`every container ${victim.name} held has three CLOSED replicas elsewhere`)

  // Safe to stop: kill -9 it, and every key reads back from the others.
  c.kill(victim)
  for (const [key, data] of keys) assert.ok((await c.client.getKey('vol', 'bkt', key)).equals(data), `${key} reads back without ${victim.name}`)
  c.step(`all ${keys.size} keys read back byte for byte without ${victim.name}`)
}, { datanodes: 4, env: ENV }))

test.run()
