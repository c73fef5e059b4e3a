/**
 * Goal: `o3 admin datanode decommission|maintenance|recommission` as an operator runs them
 * (issue 13): a node named by address or id moves through Ozone's operational states and
 * `o3 admin datanode list` shows it; a leaving node's pipelines close and no new pipeline or
 * block lands on it; it is DECOMMISSIONED only once each of its containers has three replicas
 * elsewhere, IN_MAINTENANCE once each keeps maintenance.replica.minimum (2) on IN_SERVICE
 * nodes elsewhere; a node in maintenance that goes DEAD stays in maintenance; a maintenance
 * ends at its time; the states survive an SCM restart; an unknown node or a change its state
 * forbids is one clear line, a non-zero exit, and changes nothing.
 * Method: bin/o3.js as a child process against a real SCM in this process on a loopback
 * port (LMDB in a temp dir), with four scripted datanodes (test/control/scm/scripted-datanode.ts)
 * heartbeating over the real RPC; the test scripts the replicas they report, standing in for
 * the replication manager's copies.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../../core/config.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import type { AllocatedBlock, ContainerId, Pipeline } from '../../core/wire.ts'
import { StorageContainerManager } from '../../control/scm/index.ts'
import { until } from '../helpers.ts'
import { ScriptedDatanode } from '../control/scm/scripted-datanode.ts'

const o3 = fileURLToPath(new URL('../../../bin/o3.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'o3-cli-datanode-'))
const config = loadConfig({
  env: {},
  overrides: {
    'scm.dir': join(dir, 'scm'), 'scm.safemode.minDatanodes': 4, 'scm.pipeline.destroyTimeoutMs': 0, 'datanode.heartbeatIntervalMs': 200,
    'scm.heartbeat.staleMs': 1500, 'scm.heartbeat.deadMs': 3000,
  },
})
let scm = new StorageContainerManager({ config, port: 0, healthCheckIntervalMs: 100 })
const nodes: ScriptedDatanode[] = []

interface Row { id: string; address: string; state: string; operationalState: string; maintenanceEndMs: number | null; adminProgress: string | null }
interface Result { id: string; address: string; from: string; state: string; endMs?: number }
interface Run { code: number; stdout: string; stderr: string }

function run(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [o3, 'admin', 'datanode', ...args, '--om', scm.address, '--scm', scm.address], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

async function admin(...args: string[]): Promise<Result[]> {
  const r = await run(...args, '--json')
  assert.is(r.code, 0, r.stderr)
  return JSON.parse(r.stdout) as Result[]
}

const rpc = () => new RpcClient('SCM', scm.address)
const rows = () => rpc().call<Row[]>('listDatanodes', {})
const row = async (n: ScriptedDatanode) => (await rows()).find((r) => r.id === n.id)!
const opState = async (n: ScriptedDatanode) => (await row(n)).operationalState
const pipelines = () => rpc().call<Pipeline[]>('listPipelines', {})
const replica = (id: ContainerId) => ({ containerId: id, state: 'CLOSED', usedBytes: 1024, blockCount: 1 })

let container: ContainerId
let a: ScriptedDatanode, b: ScriptedDatanode, c: ScriptedDatanode, d: ScriptedDatanode

test.before(async () => {
  await scm.start()
  for (let i = 0; i < 4; i++) {
    const n = new ScriptedDatanode(scm.address, { heartbeatMs: 200 })
    nodes.push(n)
    await n.start()
  }
  await until('RATIS/THREE pipelines open', async () => (await pipelines()).some((p) => p.replication === 'RATIS/THREE' && p.state === 'OPEN'), 30_000)
  // One container on a RATIS/THREE pipeline, its members reporting it open.
  const [block] = await rpc().call<AllocatedBlock[]>('allocateBlock', { replication: 'RATIS/THREE', sizeBytes: 1024 })
  container = block.blockId.containerId
  const members = block.pipeline.nodes.map((m) => nodes.find((n) => n.id === m.id)!)
  ;[a, b, c] = members
  d = nodes.find((n) => !members.includes(n))!
  for (const n of members) n.containers = [{ ...replica(container), state: 'OPEN' }]
})

test.after(async () => {
  for (const n of nodes) await n.stop()
  await scm.stop()
  rmSync(dir, { recursive: true, force: true })
})

test('decommission, maintenance, recommission: an unknown node is NODE_NOT_FOUND, one line, and changes nothing', async () => {
  const r = await run('decommission', a.address, '127.0.0.1:1')
  assert.is(r.code, 1)
  assert.match(r.stderr, /^o3: Cannot decommission 127\.0\.0\.1:1: no such datanode .*\(NODE_NOT_FOUND\)\n$/)
  assert.is(await opState(a), 'IN_SERVICE', 'all or none')
  const m = await run('maintenance', 'feedface-0000-0000-0000-000000000000')
  assert.is(m.code, 1)
  assert.match(m.stderr, /NODE_NOT_FOUND/)
  const usage = await run('recommission')
  assert.is(usage.code, 2)
  assert.match(usage.stderr, /missing HOST\|ID/)
  const bad = await run('maintenance', a.id, '--end-hours', 'soon')
  assert.is(bad.code, 2)
  assert.match(bad.stderr, /bad --end-hours "soon"/)
  const far = await run('maintenance', a.id, '--end-hours', '9000')
  assert.is(far.code, 2)
  assert.match(far.stderr, /bad --end-hours 9000: at most 8760 \(a year\)/)
})

test('decommission HOST: pipelines close, nothing new lands on it, DECOMMISSIONED once its container has three replicas elsewhere', async () => {
  const [r] = await admin('decommission', a.address)
  assert.equal({ ...r, endMs: undefined }, { id: a.id, address: a.address, from: 'IN_SERVICE', state: 'DECOMMISSIONING', endMs: undefined })
  await until('its pipelines closed', async () => (await pipelines()).every((p) => p.state === 'CLOSED' || !p.nodes.some((n) => n.id === a.id)))
  // Its container closed with the pipeline; the replicas report CLOSED.
  await until('container CLOSING', async () => (await rpc().call<{ state: string }>('getContainer', { containerId: container })).state !== 'OPEN')
  for (const n of [a, b, c]) n.containers = [replica(container)]
  await until('container CLOSED', async () => (await rpc().call<{ state: string }>('getContainer', { containerId: container })).state === 'CLOSED')
  // Two replicas elsewhere is not enough to leave for good.
  await until('monitor says why it waits', async () => /1 under-replicated/.test((await row(a)).adminProgress ?? ''))
  assert.is(await opState(a), 'DECOMMISSIONING')
  // The table says it too, under the table (the README's promise), not only --json.
  const waiting = await run('list')
  assert.match(waiting.stdout, new RegExp(`\\n${a.address} DECOMMISSIONING: waiting for 1 under-replicated`))
  for (let i = 0; i < 8; i++) {
    const [block] = await rpc().call<AllocatedBlock[]>('allocateBlock', { replication: 'RATIS/THREE', sizeBytes: 1024 })
    assert.not.ok(block.pipeline.nodes.some((n) => n.id === a.id), 'no block on a decommissioning node')
  }
  // The third replica elsewhere (the replication manager's copy).
  d.containers = [replica(container)]
  await until('DECOMMISSIONED', async () => (await opState(a)) === 'DECOMMISSIONED', 15_000)
  assert.ok((await pipelines()).every((p) => p.state === 'CLOSED' || !p.nodes.some((n) => n.id === a.id)), 'no new pipeline on it')
  const table = await run('list')
  assert.match(table.stdout.split('\n').find((l) => l.includes(a.id))!, /│ HEALTHY\s+│ DECOMMISSIONED\s+│/)
  const again = await admin('decommission', a.id)
  assert.is(again[0].state, 'DECOMMISSIONED', 'decommissioning twice changes nothing')
})

test('maintenance ID --end-hours: IN_MAINTENANCE with two IN_SERVICE replicas elsewhere; DEAD it stays; decommission refused', async () => {
  const [r] = await admin('maintenance', b.id, '--end-hours', '1')
  assert.is(r.state, 'ENTERING_MAINTENANCE')
  assert.ok(r.endMs !== undefined && Math.abs(r.endMs - (Date.now() + 3_600_000)) < 60_000, JSON.stringify(r))
  // c and d hold it IN_SERVICE (a is DECOMMISSIONED and does not count).
  await until('IN_MAINTENANCE', async () => (await opState(b)) === 'IN_MAINTENANCE', 15_000)
  assert.is((await row(b)).maintenanceEndMs, r.endMs)
  assert.match((await run('list')).stdout, new RegExp(`\\n${b.address} IN_MAINTENANCE: .*; maintenance ends `))
  const refused = await run('decommission', b.address)
  assert.is(refused.code, 1)
  assert.match(refused.stderr, /^o3: Cannot decommission datanode .*: it is IN_MAINTENANCE \(recommission it first\) \(INVALID_NODE_STATE\)\n$/)
  b.pause()
  await until('b DEAD', async () => (await row(b)).state === 'DEAD', 15_000)
  assert.is(await opState(b), 'IN_MAINTENANCE', 'down in maintenance is what maintenance is for')
  b.resume()
  // Both back at once, named by address and by id; they get pipelines again.
  const back = await admin('recommission', a.address, b.id)
  assert.equal(back.map((x) => [x.from, x.state]), [['DECOMMISSIONED', 'IN_SERVICE'], ['IN_MAINTENANCE', 'IN_SERVICE']])
  await until('a and b in open pipelines again', async () => {
    const open = (await pipelines()).filter((p) => p.state === 'OPEN' && p.replication === 'RATIS/THREE')
    return [a, b].every((n) => open.some((p) => p.nodes.some((m) => m.id === n.id)))
  }, 30_000)
})

test('maintenance waits for maintenance.replica.minimum IN_SERVICE replicas elsewhere, and survives an SCM restart', async () => {
  // a and b stop heartbeating: of the container's replicas elsewhere only d's counts.
  a.pause()
  b.pause()
  await until('a and b STALE', async () => (await rows()).filter((r) => r.id === a.id || r.id === b.id).every((r) => r.state !== 'HEALTHY'), 15_000)
  await admin('maintenance', c.address)
  await until('monitor says why it waits', async () => /1 under-replicated/.test((await row(c)).adminProgress ?? ''), 15_000)
  assert.is(await opState(c), 'ENTERING_MAINTENANCE')
  b.resume()
  await until('IN_MAINTENANCE', async () => (await opState(c)) === 'IN_MAINTENANCE', 15_000)
  a.resume()

  const port = scm.port
  await scm.stop()
  scm = new StorageContainerManager({ config, port, healthCheckIntervalMs: 100 })
  await scm.start()
  await until('datanodes registered again', async () => (await rows()).length === 4, 15_000)
  assert.is(await opState(c), 'IN_MAINTENANCE')
  assert.is(await opState(a), 'IN_SERVICE')
  await admin('recommission', c.id)
  assert.is(await opState(c), 'IN_SERVICE')
})

test('maintenance ends by itself at its end time', async () => {
  // 0.0005 h = 1.8 s.
  const [r] = await admin('maintenance', d.id, '--end-hours', '0.0005')
  assert.ok(r.endMs !== undefined)
  await until('back IN_SERVICE', async () => (await opState(d)) === 'IN_SERVICE', 15_000)
  assert.ok(Date.now() >= r.endMs!)
  await until('no admin progress listed for an IN_SERVICE node', async () => (await row(d)).adminProgress === null)
  assert.is((await row(d)).maintenanceEndMs, null)
})

test.run()
