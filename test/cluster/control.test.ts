/**
 * Goal: the control plane's own duties: safemode until enough datanodes register, ids never
 * reused, containers closed when full, abandoned open keys expired, /prom and /health on
 * every service. Method: SCM, OM and datanodes started one by one in-process on free ports.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../core/config.ts'
import { KiB } from '../../core/limits.ts'
import { StorageContainerManager } from '../../control/scm/index.ts'
import { OzoneManager } from '../../control/om/index.ts'
import { Datanode, blockFile } from '../../datapath/datanode/index.ts'
import { O3Client } from '../../datapath/client/index.ts'
import { closeWorkerPool } from '../../datapath/workers/index.ts'
import { randomBytes } from './mini-cluster.ts'
import { errorCode } from '../helpers.ts'

const dir = mkdtempSync(join(tmpdir(), 'o3-control-'))
const config = loadConfig({
  env: {},
  overrides: {
    'scm.dir': join(dir, 'scm'), 'om.dir': join(dir, 'om'), 'scm.safemode.minDatanodes': 2,
    'scm.block.sizeBytes': 64 * KiB, 'scm.container.sizeBytes': 256 * KiB, 'client.replication': 'RATIS/ONE',
    'datanode.heartbeatIntervalMs': 100, 'scm.heartbeat.staleMs': 3000, 'scm.heartbeat.deadMs': 6000,
    // Open keys expire after 8 s: long enough for a put on a loaded machine (3 s was not, at a
    // load average of 20 on 2 cores), short enough for the expiry test.
    'om.openKey.expireMs': 8000, 'om.openKey.checkIntervalMs': 200,
    // A replaced key's blocks stay 4 s for the readers that looked it up before.
    'om.deletedBlocks.graceMs': 4000,
  },
})
const scm = new StorageContainerManager({ config, port: 0 })
let om: OzoneManager
const datanodes: Datanode[] = []
let client: O3Client

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
async function startDatanode(i: number): Promise<void> {
  const dn = new Datanode({ config: { ...config, 'datanode.dirs': join(dir, `dn${i}`) }, port: 0, scmAddress: scm.address })
  await dn.start()
  datanodes.push(dn)
}

test.before(async () => {
  await scm.start()
  om = new OzoneManager({ config, port: 0, scmAddress: scm.address })
  await om.start()
  client = new O3Client({ om: om.address, scm: scm.address, chunkSizeBytes: 16 * KiB })
  await client.createVolume('vol')
  await client.createBucket('vol', 'bkt')
})

test.after(async () => {
  for (const dn of datanodes) await dn.stop()
  await om.stop()
  await scm.stop()
  await closeWorkerPool()
  rmSync(dir, { recursive: true, force: true })
})

test('SCM refuses allocation with SAFE_MODE until enough datanodes registered', async () => {
  await startDatanode(1)
  assert.is((await client.admin<{ inSafeMode: boolean }>('safemodeStatus')).inSafeMode, true)
  assert.is(await errorCode(client.putKey('vol', 'bkt', 'early', randomBytes(10))), 'SAFE_MODE')
  assert.equal((await client.listKeys('vol', 'bkt')).keys, [], 'a refused write leaves no key')
  await startDatanode(2)
  for (let i = 0; i < 50 && (await client.admin<{ inSafeMode: boolean }>('safemodeStatus')).inSafeMode; i++) await sleep(50)
  await client.putKey('vol', 'bkt', 'later', randomBytes(10))
})

test('containers close when full and their keys stay readable', async () => {
  const keys = Array.from({ length: 12 }, (_, i) => randomBytes(40 * KiB + i, i + 100))
  for (const [i, data] of keys.entries()) await client.putKey('vol', 'bkt', `fill-${i}`, data)
  let closed: { id: number }[] = []
  for (let i = 0; i < 100 && closed.length === 0; i++) {
    closed = await client.admin<{ id: number }[]>('listContainers', { state: 'CLOSED' })
    await sleep(50)
  }
  assert.ok(closed.length > 0, 'some container reached CLOSED')
  for (const [i, data] of keys.entries()) assert.ok((await client.getKey('vol', 'bkt', `fill-${i}`)).equals(data))
  const ids = (await client.admin<{ id: number }[]>('listContainers')).map((c) => c.id)
  assert.is(new Set(ids).size, ids.length)
})

test('the OM hands out no block twice: not when a writer excludes a node while others wait for blocks from the SCM', async () => {
  type Opened = { clientId: string; blocks: { blockId: { containerId: number; localId: number } }[] }
  const open = (key: string, sizeBytes: number) => client.om.call<Opened>('openKey', { volume: 'vol', bucket: 'bkt', key, sizeBytes })
  const opened: Opened[] = []
  const handedOut: string[] = []
  const took = (blocks: Opened['blocks']) => handedOut.push(...blocks.map((b) => `${b.blockId.containerId}:${b.blockId.localId}`))
  for (let round = 0; round < 16; round++) {
    // Two small keys leave the OM's batch cache holding some blocks, whatever it held before.
    for (const i of [0, 1]) { opened.push(await open(`cache-${round}-${i}`, 1)); took(opened.at(-1)!.blocks) }
    // A key of many blocks waits for a batch from the SCM while a writer's allocation
    // excludes a node: the cache it filters must stay the one the waiting key takes from.
    const big = open(`big-${round}`, 40 * 64 * KiB)
    await sleep(1)
    const excluding = client.om.call<Opened['blocks'][number]>('allocateBlock', { clientId: opened.at(-1)!.clientId, excludeList: { datanodes: ['no-such-datanode'] } })
    opened.push(await big)
    took(opened.at(-1)!.blocks)
    took([await excluding])
    for (const i of [2, 3, 4]) { opened.push(await open(`cache-${round}-${i}`, 1)); took(opened.at(-1)!.blocks) }
  }
  for (const o of opened) await client.om.call('abortKey', { clientId: o.clientId })
  const twice = handedOut.filter((b, i) => handedOut.indexOf(b) !== i)
  assert.equal(twice, [], `blocks handed out twice among ${handedOut.length}`)
})

test('container and local ids are never reused across an SCM restart', async () => {
  const used = async () => {
    const ids: { containerId: number; localId: number }[] = []
    for (const k of (await client.listKeys('vol', 'bkt')).keys) for (const l of (await client.headKey('vol', 'bkt', k.name)).locations) ids.push(l.blockId)
    return ids
  }
  const before = await used()
  const known = (await client.admin<{ id: number }[]>('listContainers')).map((c) => c.id)
  await scm.stop()
  const again = new StorageContainerManager({ config, port: Number(scm.address.split(':')[1]) })
  await again.start()
  Object.assign(scm, { stop: () => again.stop() })
  for (let i = 0; i < 100 && (await client.admin<{ inSafeMode: boolean }>('safemodeStatus')).inSafeMode; i++) await sleep(50)
  // Straight from the SCM (the OM may still hold blocks it fetched before the restart).
  const fresh = await client.admin<{ blockId: { containerId: number; localId: number } }[]>('allocateBlock', { replication: 'RATIS/ONE', count: 4 })
  for (const { blockId } of fresh) {
    assert.ok(before.every((b) => b.localId < blockId.localId), `localId ${blockId.localId} reused`)
    // Either an existing container (still open) or a new id above every earlier one.
    assert.ok(known.includes(blockId.containerId) || known.every((id) => id < blockId.containerId), `container id ${blockId.containerId} reused`)
  }
  await client.putKey('vol', 'bkt', 'after-restart', randomBytes(100))
  assert.ok((await client.getKey('vol', 'bkt', 'after-restart')).equals(randomBytes(100)))
})

test('an open key never committed expires and is removed', async () => {
  const writer = await client.openKeyWriter('vol', 'bkt', 'abandoned')
  await writer.write(randomBytes(100))
  const openKeys = async () => /o3_om_open_keys\{service="om"\} (\d+)/.exec(await (await fetch(`http://${om.address}/prom`)).text())?.[1]
  assert.ok(Number(await openKeys()) >= 1, 'the key is open')
  for (let i = 0; i < 300 && (await openKeys()) !== '0'; i++) await sleep(100)
  assert.is(await openKeys(), '0', 'the abandoned key expired')
  assert.is(await errorCode(writer.close()), 'OPEN_KEY_NOT_FOUND')
  assert.is(await errorCode(client.headKey('vol', 'bkt', 'abandoned')), 'KEY_NOT_FOUND')
})

test('blocks of a replaced or deleted key are deleted from the datanodes', async () => {
  await client.putKey('vol', 'bkt', 'doomed', randomBytes(100 * KiB, 5))
  const files = (await client.headKey('vol', 'bkt', 'doomed')).locations.flatMap((l) => datanodes.map((dn, i) => blockFile(join(dir, `dn${i + 1}`), dn.clusterId, l.blockId.containerId, l.blockId.localId)))
  const present = files.filter((f) => existsSync(f))
  assert.ok(present.length > 0, 'the key has block files')
  const replacedAt = Date.now()
  await client.putKey('vol', 'bkt', 'doomed', randomBytes(10, 6))
  await sleep(500)
  // Still within the grace (unless the machine stalled for seconds): a reader of the old version finishes.
  if (Date.now() - replacedAt < 3000) assert.ok(present.every((f) => existsSync(f)), 'replaced blocks stay through om.deletedBlocks.graceMs')
  for (let i = 0; i < 200 && present.some((f) => existsSync(f)); i++) await sleep(100)
  assert.ok(present.every((f) => !existsSync(f)), 'replaced blocks are gone from disk')
  assert.ok((await client.getKey('vol', 'bkt', 'doomed')).equals(randomBytes(10, 6)))
})

test('every service serves /health and Prometheus metrics on /prom', async () => {
  for (const [name, address] of [['scm', scm.address], ['om', om.address], ['datanode', datanodes[0].address]]) {
    const health = await fetch(`http://${address}/health`)
    assert.is(health.status, 200)
    assert.is(((await health.json()) as { status: string }).status, 'UP')
    const prom = await (await fetch(`http://${address}/prom`)).text()
    assert.match(prom, new RegExp(`o3_${name}_rpc_requests_total\\{`))
    assert.match(prom, new RegExp(`o3_${name}_rpc_seconds_bucket`))
  }
  const dnProm = await (await fetch(`http://${datanodes[0].address}/prom`)).text()
  assert.match(dnProm, /o3_datanode_bytes_in_total\{service="datanode"\} [1-9]/)
  // Each pipeline's Raft group as the datanode sees it: its RATIS/ONE pipeline it leads, and
  // the writes above went through its log.
  for (const [metric, value] of [['term', '[1-9]\\d*'], ['leader', '1'], ['commit_index', '[1-9]\\d*'], ['applied_index', '[1-9]\\d*']]) {
    assert.match(dnProm, new RegExp(`o3_datanode_pipeline_raft_${metric}\\{pipeline="[^"]+",service="datanode"\\} ${value}\\n`), metric)
  }
  const scmProm = await (await fetch(`http://${scm.address}/prom`)).text()
  assert.match(scmProm, /o3_scm_datanodes_healthy\{service="scm"\} 2/)
  assert.match(scmProm, /o3_scm_raft_leader\{service="scm"\} 1/)
  assert.match(scmProm, /o3_scm_raft_term\{service="scm"\} [1-9]/)
  assert.match(scmProm, /o3_scm_raft_applied_index\{service="scm"\} [1-9]/)
  assert.match(scmProm, /o3_scm_raft_proposals_total\{service="scm"\} [1-9]/)
})

test('RPC rejects bad input with typed errors', async () => {
  const res = await fetch(`http://${om.address}/rpc/OM.openKey`, { method: 'POST', body: 'not json' })
  assert.is(res.status, 400)
  assert.is(((await res.json()) as { code: string }).code, 'INVALID_ARGUMENT')
  const unknown = await fetch(`http://${om.address}/rpc/OM.dropEverything`, { method: 'POST', body: '{}' })
  assert.is(((await unknown.json()) as { code: string }).code, 'INVALID_ARGUMENT')
  const big = await fetch(`http://${scm.address}/rpc/SCM.allocateBlock`, { method: 'POST', body: JSON.stringify({ count: 2 ** 60 }) })
  assert.is(((await big.json()) as { code: string }).code, 'INVALID_ARGUMENT')
  // 5,000 levels of arrays: refused, where an error message describing the value once overflowed the stack (500).
  const deep = await fetch(`http://${om.address}/rpc/OM.getVolume`, { method: 'POST', body: `{"volume":${'['.repeat(5000)}${']'.repeat(5000)}}` })
  assert.equal([deep.status, ((await deep.json()) as { code: string }).code], [400, 'INVALID_ARGUMENT'])
  const deepScm = await fetch(`http://${scm.address}/rpc/SCM.getContainer`, { method: 'POST', body: `{"containerId":${'['.repeat(5000)}${']'.repeat(5000)}}` })
  assert.equal([deepScm.status, ((await deepScm.json()) as { code: string }).code], [400, 'INVALID_ARGUMENT'])
})

test('an id longer than the database takes is refused, and the OM goes on: it once stopped its Raft node, and again at every restart', async () => {
  const call = async (method: string, body: unknown) => {
    const res = await fetch(`http://${om.address}/rpc/OM.${method}`, { method: 'POST', body: JSON.stringify(body) })
    return { status: res.status, code: ((await res.json()) as { code: string }).code }
  }
  const long = 'a'.repeat(100_000)
  for (const method of ['commitKey', 'abortKey', 'allocateBlock']) {
    assert.equal(await call(method, { clientId: long, blocks: [], size: 0 }), { status: 400, code: 'INVALID_ARGUMENT' }, method)
  }
  assert.equal(await call('lookupS3Secret', { accessKey: long }), { status: 403, code: 'PERMISSION_DENIED' })
  assert.equal(await call('s3Authenticate', { accessKey: long }), { status: 403, code: 'PERMISSION_DENIED' })
  const data = randomBytes(1000)
  await client.putKey('vol', 'bkt', 'after-long-id', data)
  assert.equal(Buffer.from(await client.getKey('vol', 'bkt', 'after-long-id')), data)
})

test.run()
