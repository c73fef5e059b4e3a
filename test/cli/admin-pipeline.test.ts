/**
 * Goal: `o3 admin pipeline list|close` as an operator runs them against pipelines on Raft
 * groups (issue 12): the table shows each pipeline's replication, state, members with the
 * leader starred and term, --json the same data; close moves a pipeline to CLOSED and names
 * the containers it closes; a malformed or unknown ID is one clear line and a non-zero exit.
 * Method: bin/o3.js as a child process against a real SCM in this process on a loopback
 * port (LMDB in a temp dir), with three scripted datanodes
 * (test/control/scm/scripted-datanode.ts) heartbeating over the real RPC and reporting the
 * groups the SCM told them to run.
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
import type { AllocatedBlock, Pipeline } from '../../core/wire.ts'
import { StorageContainerManager } from '../../control/scm/index.ts'
import { until } from '../helpers.ts'
import { ScriptedDatanode } from '../control/scm/scripted-datanode.ts'

const o3 = fileURLToPath(new URL('../../../bin/o3.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'o3-cli-pipeline-'))
const config = loadConfig({
  env: {},
  overrides: { 'scm.dir': join(dir, 'scm'), 'scm.safemode.minDatanodes': 3, 'scm.pipeline.destroyTimeoutMs': 0, 'datanode.heartbeatIntervalMs': 200 },
})
const scm = new StorageContainerManager({ config, port: 0 })
const nodes: ScriptedDatanode[] = []

interface Run { code: number; stdout: string; stderr: string }
function run(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [o3, 'admin', 'pipeline', ...args, '--om', scm.address, '--scm', scm.address], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

async function list(): Promise<Pipeline[]> {
  const r = await run('list', '--json')
  assert.is(r.code, 0, r.stderr)
  return JSON.parse(r.stdout) as Pipeline[]
}

test.before(async () => {
  await scm.start()
  for (let i = 0; i < 3; i++) {
    const n = new ScriptedDatanode(scm.address, { heartbeatMs: 200 })
    nodes.push(n)
    await n.start()
  }
})

test.after(async () => {
  for (const n of nodes) await n.stop()
  await scm.stop()
  rmSync(dir, { recursive: true, force: true })
})

test('o3 admin pipeline list: each pipeline\'s replication, state, members with the leader starred, and term', async () => {
  let ps = await list()
  for (const end = Date.now() + 15_000; !(ps.length === 4 && ps.every((p) => p.state === 'OPEN' && p.term !== undefined)) && Date.now() < end;) ps = await list()
  assert.is(ps.filter((p) => p.replication === 'RATIS/ONE').length, 3)
  const three = ps.find((p) => p.replication === 'RATIS/THREE')!
  assert.ok(ps.every((p) => p.state === 'OPEN' && p.term === 1 && p.leaderId === p.nodes[0].id), JSON.stringify(ps))
  // The group elects its second member in term 7: the table follows.
  ScriptedDatanode.elect(nodes, three.id, three.nodes[1].id, 7)
  await until('term 7 listed', async () => (await list()).find((p) => p.id === three.id)?.term === 7)
  const r = await run('list')
  assert.is(r.code, 0, r.stderr)
  assert.match(r.stdout, /│ id\s+│ replication\s+│ state\s+│ members \(\* leader\)\s+│ term/)
  const row = r.stdout.split('\n').find((l) => l.includes(three.id))!
  const [, , , , members, term] = row.split('│').map((c) => c.trim())
  assert.is(term, '7')
  assert.equal(members.split(' '), [three.nodes[0].address, `${three.nodes[1].address}*`, three.nodes[2].address])
})

test('o3 admin pipeline close ID: the pipeline is CLOSED and its open containers close; the datanodes are told to remove it', async () => {
  const three = (await list()).find((p) => p.replication === 'RATIS/THREE' && p.state === 'OPEN')!
  const rpc = new RpcClient('SCM', scm.address)
  const [block] = await rpc.call<AllocatedBlock[]>('allocateBlock', { replication: 'RATIS/THREE' })
  assert.is(block.pipeline.id, three.id)
  const r = await run('close', three.id)
  assert.is(r.code, 0, r.stderr)
  assert.is(r.stdout.trim(), `pipeline ${three.id} is CLOSED; closing containers ${block.blockId.containerId}`)
  assert.is((await list()).find((p) => p.id === three.id)?.state, 'CLOSED')
  // scm.pipeline.destroyTimeoutMs is 0 here: the groups go at the next heartbeat.
  await until('every member removed the group', () => nodes.every((n) => !n.groups.has(three.id)))
  const again = await run('close', three.id, '--json')
  assert.is(again.code, 0, again.stderr)
  assert.equal(JSON.parse(again.stdout), { id: three.id, state: 'CLOSED', closing: [] }, 'closing twice changes nothing')
})

test('o3 admin pipeline close: a malformed ID is a usage error, an unknown one PIPELINE_NOT_FOUND, each one line', async () => {
  const bad = await run('close', '../x')
  assert.is(bad.code, 2)
  assert.match(bad.stderr, /^o3: bad pipeline ID "..\/x".*see 'o3 admin pipeline close --help'\n$/)
  const unknown = await run('close', '0badc0de-0000-4000-8000-000000000000')
  assert.is(unknown.code, 1)
  assert.match(unknown.stderr, /^o3: Cannot close pipeline 0badc0de-0000-4000-8000-000000000000: not found \(PIPELINE_NOT_FOUND\)\n$/)
})

test.run()
