/**
 * Goal: the SCM's side of pipelines on Raft groups (issue 12): a new
 * pipeline is ALLOCATED until every member reports its group, then OPEN with the leader and
 * term the members report; createPipeline goes again to a member that does not report it;
 * members are nudged to heartbeat; allocateBlock waits for an ALLOCATED pipeline and then
 * succeeds, or fails naming it; new pipelines' suggested leaders spread (MinLeaderCount); a
 * diverged report or a STALE member closes a pipeline, its open containers go CLOSING, and
 * the members are told to remove the group only after scm.pipeline.destroyTimeoutMs; bad
 * reports are refused with INVALID_ARGUMENT. Method: a real SCM on loopback (LMDB in a temp
 * dir) and scripted datanodes (scripted-datanode.ts) that register and heartbeat over the
 * real RPC as a datanode does, reporting the groups the SCM told them to run. The cases run
 * in order on one SCM, each building on the pipelines the previous left.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../../core/config.ts'
import { RpcClient } from '../../../core/rpc/client.ts'
import type { AllocatedBlock, DatanodeId, Pipeline, PipelineId } from '../../../core/wire.ts'
import { StorageContainerManager } from '../../../control/scm/index.ts'
import { errorCode, until } from '../../helpers.ts'
import { ScriptedDatanode } from './scripted-datanode.ts'

const DESTROY_TIMEOUT_MS = 1500
const dir = mkdtempSync(join(tmpdir(), 'o3-scm-pipelines-'))
const config = loadConfig({
  env: {},
  overrides: {
    'scm.dir': join(dir, 'scm'), 'scm.safemode.minDatanodes': 3,
    'scm.pipeline.destroyTimeoutMs': DESTROY_TIMEOUT_MS, 'scm.heartbeat.staleMs': 3000,
    // DEAD late: a paused node is surely still STALE when its pipelines close.
    'scm.heartbeat.deadMs': 60_000,
    'datanode.heartbeatIntervalMs': 200,
  },
})
const scm = new StorageContainerManager({ config, port: 0, healthCheckIntervalMs: 100 })
let rpc: RpcClient
const nodes = new Map<string, ScriptedDatanode>()
const node = (name: string) => nodes.get(name)!
const idOf = (name: string) => node(name).id
const nameOf = (id: DatanodeId) => [...nodes].find(([, n]) => n.id === id)?.[0] ?? id

async function add(name: string, options: { forms?: boolean; answersNudge?: boolean } = {}): Promise<ScriptedDatanode> {
  const n = new ScriptedDatanode(scm.address, { heartbeatMs: 200, answersNudge: options.answersNudge })
  n.forms = options.forms ?? true
  nodes.set(name, n)
  await n.start()
  return n
}

const pipelines = () => rpc.call<Pipeline[]>('listPipelines', {})
const members = (p: Pipeline) => p.nodes.map((n) => nameOf(n.id)).sort().join(',')
/** The pipeline of `replication` on exactly these nodes and not CLOSED, once there is one. */
const pipelineOn = (replication: string, names: string) => until(`a live ${replication} pipeline on ${names}`, async () =>
  (await pipelines()).find((p) => p.replication === replication && p.state !== 'CLOSED' && members(p) === names))
const stateOf = async (id: PipelineId) => (await pipelines()).find((p) => p.id === id)?.state

test.before(async () => {
  await scm.start()
  rpc = new RpcClient('SCM', scm.address)
})

test.after(async () => {
  for (const n of nodes.values()) await n.stop()
  await scm.stop()
  rmSync(dir, { recursive: true, force: true })
})

test('heartbeat() refuses malformed pipeline reports with INVALID_ARGUMENT naming the field', async () => {
  const a = await add('a')
  const good = { pipelineId: '0f0f0f0f-0000-4000-8000-000000000000', leaderId: '', term: 0, applied: 0, diverged: false }
  const beat = (pipelines: unknown) => rpc.call('heartbeat', { id: a.id, volumes: [], containers: [], pipelines })
  for (const [pipelines, field] of [
    ['nope', /pipelines must be an array/],
    [[{ ...good, term: -1 }], /pipelines\[0\]\.term/],
    [[{ ...good, term: 2 ** 60 }], /pipelines\[0\]\.term/],
    [[{ ...good, applied: '3' }], /pipelines\[0\]\.applied/],
    [[{ ...good, diverged: 'no' }], /pipelines\[0\]\.diverged/],
    [[{ ...good, leaderId: 'x' }], /pipelines\[0\]\.leaderId/],
    [[{ ...good, pipelineId: '../etc' }], /pipelines\[0\]\.pipelineId/],
    [[good, good], /reported twice/],
    [[null], /pipelines\[0\] must be an object/],
  ] as const) {
    const err = await beat(pipelines).then(() => undefined, (e: { code: string; message: string }) => e)
    assert.is(err?.code, 'INVALID_ARGUMENT', JSON.stringify(pipelines))
    assert.match(err!.message, field)
  }
  // A group the SCM has no pipeline for is removed at once.
  const r = await beat([good])
  assert.equal((r as { commands: { type: string; pipelineId?: string }[] }).commands.filter((c) => c.type === 'closePipeline'), [{ type: 'closePipeline', pipelineId: good.pipelineId }])
})

test('a new pipeline is ALLOCATED until every member reports its group, then OPEN with the leader and term they report', async () => {
  await add('b')
  const c = await add('c', { forms: false })
  const three = await pipelineOn('RATIS/THREE', 'a,b,c')
  assert.is(three.state, 'ALLOCATED')
  assert.is(three.leaderId, three.nodes[0].id, 'the suggested leader is first')
  assert.is(three.term, undefined)
  // c ignores createPipeline: it is told again on each heartbeat, and the pipeline stays ALLOCATED.
  await until('createPipeline sent to c', () => c.commandsOf('createPipeline', three.id).length >= 1)
  await until('a and b run the group', () => node('a').groups.has(three.id) && node('b').groups.has(three.id))
  const toA = node('a').commandsOf('createPipeline', three.id).length
  await until('createPipeline sent to c three more times', () => c.commandsOf('createPipeline', three.id).length >= 4)
  assert.is(node('a').commandsOf('createPipeline', three.id).length, toA, 'a member that reports the group is not told again')
  const sent = c.commandsOf('createPipeline', three.id)[0]
  assert.equal(sent.members?.map((m) => m.id), three.nodes.map((n) => n.id))
  assert.is(sent.suggestedLeaderId, three.leaderId)
  assert.is(await stateOf(three.id), 'ALLOCATED')
  assert.ok(node('a').nudges >= 1 && node('b').nudges >= 1, 'the members were nudged to heartbeat')
  c.forms = true
  await until('the pipeline OPEN', async () => (await stateOf(three.id)) === 'OPEN')
  let p = (await pipelines()).find((x) => x.id === three.id)!
  assert.is(p.leaderId, three.leaderId)
  assert.is(p.term, 1)
  // The group elects b in term 2: the SCM follows the members' reports.
  ScriptedDatanode.elect([node('a'), node('b'), c], three.id, idOf('b'), 2)
  p = await until('term 2', async () => (await pipelines()).find((x) => x.id === three.id && x.term === 2))
  assert.is(p.leaderId, idOf('b'))
  // One member in a newer term with no leader yet (an election) does not hide the last one known.
  ScriptedDatanode.elect([c], three.id, '', 3)
  await new Promise((r) => setTimeout(r, 600))
  p = (await pipelines()).find((x) => x.id === three.id)!
  assert.is(p.leaderId, idOf('b'))
  assert.is(p.term, 2)
  ScriptedDatanode.elect([c], three.id, idOf('b'), 2)
  // Every node's RATIS/ONE opened too.
  for (const name of ['a', 'b', 'c']) await until(`${name}'s RATIS/ONE OPEN`, async () => (await pipelineOn('RATIS/ONE', name)).state === 'OPEN')
})

test('allocateBlock waits while the only fitting pipeline is ALLOCATED: it succeeds once it opens, else fails with NO_PIPELINE naming it', async () => {
  const d = await add('d', { forms: false })
  const one = await pipelineOn('RATIS/ONE', 'd')
  assert.is(one.state, 'ALLOCATED')
  const others = ['a', 'b', 'c'].map(idOf)
  const allocate = (exclude: DatanodeId[]) => rpc.call<AllocatedBlock[]>('allocateBlock', { replication: 'RATIS/ONE', excludeList: { datanodes: exclude, containers: [], pipelines: [] } })
  const waiting = allocate(others)
  let settled = false
  void waiting.finally(() => { settled = true })
  await until('a createPipeline for d', () => d.commandsOf('createPipeline', one.id).length > 0)
  assert.is(settled, false, 'allocateBlock waits for the ALLOCATED pipeline')
  d.forms = true
  const [block] = await waiting
  assert.is(block.pipeline.id, one.id)
  assert.is(block.pipeline.state, 'OPEN')
  assert.is(block.pipeline.leaderId, d.id)

  const e = await add('e', { forms: false })
  const eOne = await pipelineOn('RATIS/ONE', 'e')
  const started = Date.now()
  const err = await allocate([...others, d.id]).then(() => undefined, (x: { code: string; message: string }) => x)
  assert.is(err?.code, 'NO_PIPELINE')
  assert.match(err!.message, /still ALLOCATED/)
  assert.ok(err!.message.includes(`no group reported by ${e.address}`), `the silent member is named: ${err!.message}`)
  assert.ok(Date.now() - started >= 5000, 'it waited the 5 s first')
  assert.is(await stateOf(eOne.id), 'ALLOCATED')
  e.forms = true
  await until('e\'s pipelines OPEN', async () => (await pipelines()).filter((p) => p.state !== 'CLOSED').every((p) => p.state === 'OPEN'))
})

test('new RATIS/THREE pipelines are led first by the member leading the fewest (MinLeaderCount)', async () => {
  const threes = (await pipelines()).filter((p) => p.replication === 'RATIS/THREE' && p.state === 'OPEN')
  assert.ok(threes.length >= 3, `five datanodes hold at least three RATIS/THREE pipelines (${threes.length})`)
  const leaders = threes.map((p) => nameOf(p.leaderId!))
  assert.is(new Set(leaders).size, leaders.length, `each led by another node: ${leaders.join(' ')}`)
})

let divergedAtMs = 0
let diverged: Pipeline

test('a member that reports its group diverged closes the pipeline; its open containers go CLOSING', async () => {
  diverged = (await pipelines()).find((p) => p.replication === 'RATIS/THREE' && p.state === 'OPEN' && members(p).includes('d'))!
  const [block] = await rpc.call<AllocatedBlock[]>('allocateBlock', { replication: 'RATIS/THREE', excludeList: { datanodes: [], containers: [], pipelines: (await pipelines()).filter((p) => p.id !== diverged.id).map((p) => p.id) } })
  assert.is(block.pipeline.id, diverged.id)
  const member = nodes.get(nameOf(diverged.nodes[1].id))!
  divergedAtMs = Date.now()
  member.groups.set(diverged.id, { ...member.groups.get(diverged.id)!, diverged: true })
  await until('the pipeline CLOSED', async () => (await stateOf(diverged.id)) === 'CLOSED')
  assert.is((await rpc.call<{ state: string }>('getContainer', { containerId: block.blockId.containerId })).state, 'CLOSING')
  for (const n of diverged.nodes) {
    await until(`closeContainer sent to ${nameOf(n.id)}`, () => nodes.get(nameOf(n.id))!.commandsOf('closeContainer').some((c) => c.containerId === block.blockId.containerId))
  }
})

test('closePipeline goes to the members of a closed pipeline only once scm.pipeline.destroyTimeoutMs has passed', async () => {
  for (const n of diverged.nodes) {
    const dn = nodes.get(nameOf(n.id))!
    const [first] = await until(`closePipeline sent to ${nameOf(n.id)}`, () => { const c = dn.commandsOf('closePipeline', diverged.id); return c.length > 0 && c })
    assert.ok(first.atMs - divergedAtMs >= DESTROY_TIMEOUT_MS, `closePipeline ${first.atMs - divergedAtMs} ms after the close, not before ${DESTROY_TIMEOUT_MS}`)
    assert.is(dn.groups.has(diverged.id), false)
  }
})

test('a STALE member closes its pipelines, which are replaced from healthy nodes only', async () => {
  const c = node('c')
  const ofC = (await pipelines()).filter((p) => p.state === 'OPEN' && p.nodes.some((n) => n.id === c.id))
  assert.ok(ofC.length >= 2, 'c is in its RATIS/ONE and a RATIS/THREE')
  const [block] = await rpc.call<AllocatedBlock[]>('allocateBlock', { replication: 'RATIS/ONE', excludeList: { datanodes: ['a', 'b', 'd', 'e'].map(idOf), containers: [], pipelines: [] } })
  c.pause()
  await until('c\'s pipelines CLOSED', async () => {
    const now = await pipelines()
    return ofC.every((p) => now.find((x) => x.id === p.id)?.state === 'CLOSED')
  }, 15_000)
  const dns = await rpc.call<{ id: string; state: string }[]>('listDatanodes', {})
  assert.is(dns.find((x) => x.id === c.id)?.state, 'STALE', 'closed on STALE, before DEAD')
  assert.is((await rpc.call<{ state: string }>('getContainer', { containerId: block.blockId.containerId })).state, 'CLOSING')
  const live = (await pipelines()).filter((p) => p.state !== 'CLOSED')
  assert.ok(live.every((p) => p.nodes.every((n) => n.id !== c.id)), 'no live pipeline holds c')
  assert.ok(live.some((p) => p.replication === 'RATIS/THREE'), 'RATIS/THREE pipelines remain or were placed anew')
  c.resume()
})

test('a member that registers at another address is told createPipeline again with it, once per pipeline', async () => {
  const a = node('a')
  const ofA = (await pipelines()).filter((p) => p.state === 'OPEN' && p.nodes.some((n) => n.id === a.id))
  assert.ok(ofA.length >= 1, 'a is in an OPEN pipeline')
  const told = () => ofA.map((p) => a.commandsOf('createPipeline', p.id).length)
  const register = (address: string) => rpc.call('register', { id: a.id, address, volumes: [{ dir: '/d', capacityBytes: 1 << 30, usedBytes: 0, availableBytes: 1 << 30 }] })
  const before = told()
  // As a datanode back on another port: its groups still know the old address.
  const moved = '127.0.0.1:9'
  await register(moved)
  await until('createPipeline again to a for each of its pipelines', () => told().every((n, i) => n > before[i]!))
  for (const p of ofA) {
    const last = a.commandsOf('createPipeline', p.id).at(-1)!
    assert.ok(last.members?.some((m) => m.id === a.id && m.address === moved), `pipeline ${p.id} sent with a's new address`)
  }
  const after = told()
  for (let i = 0; i < 3; i++) await a.beat()
  assert.equal(told(), after, 'told once, not on every heartbeat')
  await register(a.address)
})

test('a datanode that sends no pipeline reports (before issue 12) gets no pipeline commands', async () => {
  const f = await add('f')
  f.reports = false
  const r = await rpc.call<{ commands: { type: string }[] }>('heartbeat', f.heartbeatArgs())
  assert.equal(r.commands.filter((x) => x.type === 'createPipeline' || x.type === 'closePipeline'), [])
  assert.is(await errorCode(rpc.call('heartbeat', { ...f.heartbeatArgs(), pipelines: {} })), 'INVALID_ARGUMENT')
})

test.run()
