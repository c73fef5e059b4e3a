/**
 * Goal: a replica corrupted on disk heals by itself with real processes (issue 13), as in
 * Ozone: with four datanodes and RATIS/THREE keys in closed containers, one byte of one block
 * file of one replica is flipped, as a disk fault would; the datanode's container scanner marks
 * that replica UNHEALTHY within one pass, the SCM's replication manager copies the container to
 * the datanode that held none and then deletes the corrupt replica (its folder leaves the disk),
 * the container ends HEALTHY with three CLOSED replicas, none on the corrupt node, and that
 * node, killed with kill -9 and started again, does not bring the corrupt replica back. Every
 * key reads back byte for byte all along.
 * Method: `o3 local --processes --datanodes 4 --ports free` (fixture pipeline-cluster.ts),
 * small containers and blocks, a 1 s replication interval, a scanner pass every 3 s at 1 GiB/s
 * through O3_* settings; the pipelines closed through the SCM admin RPC closePipeline; the file
 * found with datapath/datanode/layout.ts's blockFile; state read through the SCM's admin RPCs
 * (getContainer, containerReport, listDatanodes) and the datanode's /prom over real HTTP, with
 * bounded polling. "Within one pass" is counted, not timed: the corrupt datanode's scanner may
 * finish at most as many container scans after the flip as it holds closed replicas (the scan
 * under way at the flip may have read the byte before it changed) before it marks the replica.
 * Each step is logged with its time; O3_TEST_KEEP=1 keeps a failed run's data dir.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { GiB, KiB, MiB } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import type { BlockId, ContainerId, DatanodeId, LocalId } from '../../core/wire.ts'
import { readChunk } from '../../datapath/client/datanode-io.ts'
import { blockFile, containerDir } from '../../datapath/datanode/index.ts'
import { randomBytes, until } from '../helpers.ts'
import { describeError, type Dn, PipelineCluster, REPLICATION_TEST_ENV } from './pipeline-cluster.ts'

interface Replica { datanodeId: string; state: string; nodeState: string; bcsid: number; blockCount: number }
interface Container { id: number; state: string; replication: string; health: string[]; replicas: Replica[] }
interface Location { blockId: { containerId: number; localId: number }; pipeline: { nodes: { id: string }[] } }

const SCANNER_INTERVAL_MS = 3000
const ENV: NodeJS.ProcessEnv = {
  ...REPLICATION_TEST_ENV,
  // No datanode is lost for good here: the restart must not make the node DEAD (its other
  // containers would be copied away) before it is back.
  O3_SCM_HEARTBEAT_STALEMS: '15000',
  O3_SCM_HEARTBEAT_DEADMS: '60000',
  O3_DATANODE_SCANNER_INTERVALMS: String(SCANNER_INTERVAL_MS),
  O3_DATANODE_SCANNER_BYTESPERSEC: String(1 * GiB),
}
const KEYS = 20
const KEY_BYTES = 900 * KiB
const CLOSED_CONTAINERS_MIN = 3

/** Flips every bit of the byte at `at` in `path` (read, xor, write back in place). */
function flipByte(path: string, at: number): void {
  const fd = openSync(path, 'r+')
  try {
    const b = Buffer.alloc(1)
    assert.is(readSync(fd, b, 0, 1, at), 1, `${path} holds byte ${at}`)
    b[0] ^= 0xff
    assert.is(writeSync(fd, b, 0, 1, at), 1)
  } finally { closeSync(fd) }
}

/** The cluster id of datanode `d`'s volume (the one CID-* folder under its o3/). */
function clusterIdOf(d: Dn): string {
  const [cid] = readdirSync(join(d.dir, 'o3')).filter((x) => x.startsWith('CID-'))
  assert.ok(cid !== undefined, `${d.name} has a cluster folder`)
  return cid
}

/** One counter of a /prom text (summed over its labels), 0 when absent. */
function counter(prom: string, name: string): number {
  let sum = 0
  for (const m of prom.matchAll(new RegExp(`^\\w*${name}(?:\\{[^}]*\\})? (\\d+(?:\\.\\d+)?)$`, 'gm'))) sum += Number(m[1])
  return sum
}

test('a flipped byte in one replica: UNHEALTHY within one scanner pass, copied to the spare datanode, deleted, not back after a restart; reads never fail', () => PipelineCluster.run('corrupt-replica', async (c) => {
  const scm = new RpcClient('SCM', c.endpoints.scm)
  const get = (id: number) => scm.call<Container>('getContainer', { containerId: id })
  const containers = async (): Promise<Container[]> => {
    const list = await scm.call<{ id: number }[]>('listContainers', {})
    return Promise.all(list.map((x) => get(x.id)))
  }
  const datanodes = () => scm.call<{ id: string; state: string; lastHeartbeatMs: number }[]>('listDatanodes', {})
  const scannerOf = async (d: Dn) => {
    const prom = await (await fetch(`http://${d.address}/prom`, { signal: AbortSignal.timeout(5000) })).text()
    return { scanned: counter(prom, 'scanner_containers_scanned_total'), failures: counter(prom, 'scanner_failures_total') }
  }
  await until('four HEALTHY datanodes', async () => (await datanodes()).filter((d) => d.state === 'HEALTHY').length === 4, 60_000, 250)
  await c.client.createVolume('vol')
  await c.client.createBucket('vol', 'bkt')

  c.step(`write ${KEYS} RATIS/THREE keys of ${KEY_BYTES / KiB} KiB, closing the pipelines half-way and at the end`)
  const keys = new Map<string, Buffer>()
  const closePipelines = async () => {
    const open = (await c.threePipelines()).filter((p) => p.state === 'OPEN')
    for (const p of open) await scm.call('closePipeline', { pipelineId: p.id })
    return open.length
  }
  for (let i = 0; i < KEYS; i++) {
    const data = randomBytes(KEY_BYTES, i + 1)
    await c.client.putKey('vol', 'bkt', `k${i}`, data, { replication: 'RATIS/THREE' })
    keys.set(`k${i}`, data)
    if (i === KEYS / 2 - 1) c.step(`closed ${await closePipelines()} OPEN RATIS/THREE pipelines`)
  }
  c.step(`closed ${await closePipelines()} OPEN RATIS/THREE pipelines`)
  const closed = await until('every RATIS/THREE container CLOSED with three CLOSED replicas', async () => {
    const cs = (await containers()).filter((x) => x.replication === 'RATIS/THREE' && x.replicas.length > 0)
    return cs.every((x) => x.state === 'CLOSED' && x.replicas.length === 3 && x.replicas.every((r) => r.state === 'CLOSED')) ? cs : undefined
  }, 60_000, 250)
  assert.ok(closed.length >= CLOSED_CONTAINERS_MIN, `at least ${CLOSED_CONTAINERS_MIN} closed containers (${closed.map((x) => x.id).join(' ')})`)

  // The replica corrupted: the last node of a key's pipeline, the one a reader tries last. A
  // reader that met the flipped byte first would report the replica corrupt itself
  // (reportCorruptReplica) and the repair would start without the scanner, which this tests.
  const key = 'k3'
  const info = await c.client.om.call<{ locations: Location[] }>('lookupKey', { volume: 'vol', bucket: 'bkt', key })
  const { containerId: id, localId } = info.locations[0].blockId
  const corrupt = c.dn(info.locations[0].pipeline.nodes.at(-1)!.id)
  const before = closed.find((x) => x.id === id)!
  assert.ok(before.replicas.some((r) => r.datanodeId === corrupt.id), `${corrupt.name} holds container ${id}`)
  const spare = c.datanodes.find((d) => !before.replicas.some((r) => r.datanodeId === d.id))!
  const heldClosed = closed.filter((x) => x.replicas.some((r) => r.datanodeId === corrupt.id)).length
  const cid = clusterIdOf(corrupt)
  const file = blockFile(corrupt.dir, cid, id as ContainerId, localId as LocalId)
  const folder = containerDir(corrupt.dir, cid, id as ContainerId)
  assert.ok(statSync(file).size >= KEY_BYTES / 2, `${file} is a block file of the key`)

  // Readers from now to the end: every key, byte for byte, again and again.
  const readFailures: string[] = []
  let rounds = 0
  let reading = true
  const readers = (async () => {
    while (reading) {
      for (const [k, data] of keys) {
        try {
          if (!(await c.client.getKey('vol', 'bkt', k)).equals(data)) readFailures.push(`${k}: bytes differ (round ${rounds})`)
        } catch (err) {
          readFailures.push(`${k}: ${describeError(err)} (round ${rounds})`)
        }
      }
      rounds++
    }
  })()
  const readRounds = async (n: number, what: string) => {
    const from = rounds
    await until(`${n} more rounds of reads ${what}`, () => rounds >= from + n, 60_000, 50)
    assert.equal(readFailures, [], `reads ${what}`)
  }

  try {
    const scan0 = await scannerOf(corrupt)
    flipByte(file, Math.floor(KEY_BYTES / 2) + 17)
    c.step(`flipped a byte of ${key}'s block ${id}:${localId} on ${corrupt.name} (${heldClosed} closed replicas there, ${scan0.scanned} scans so far); ${spare.name} holds none`)
    let last = scan0
    const found = await until(`${corrupt.name}'s scanner marks container ${id} corrupt`, async () => {
      const now = await scannerOf(corrupt)
      if (now.failures > scan0.failures) return { before: last, now }
      last = now
      return undefined
    }, 4 * SCANNER_INTERVAL_MS + 60_000, 50)
    c.step(`the scanner found it after ${found.before.scanned - scan0.scanned} to ${found.now.scanned - scan0.scanned} container scans`)
    assert.ok(found.before.scanned - scan0.scanned <= heldClosed, `found within one pass: at most ${heldClosed} scans done before it, saw ${found.before.scanned - scan0.scanned}`)
    await until(`the SCM sees ${corrupt.name}'s replica of ${id} UNHEALTHY`, async () => (await get(id)).replicas.find((r) => r.datanodeId === corrupt.id)?.state === 'UNHEALTHY', 30_000, 100)
    // Still read, as Ozone's UNHEALTHY replicas are (readers verify every window): its intact
    // windows come back whole; it once refused every read, so a container corrupt in a
    // different block on each replica lost its intact keys too.
    const intact = await readChunk({ id: corrupt.id as DatanodeId, address: corrupt.address }, { containerId: id, localId } as BlockId, 0, 4096)
    assert.equal(Buffer.from(intact.data.subarray(0, 4096)), keys.get(key)!.subarray(0, 4096), 'an intact window of the UNHEALTHY replica')
    await readRounds(1, 'with the replica UNHEALTHY')

    c.step(`waiting for a copy of ${id} on ${spare.name}`)
    await until(`a CLOSED replica of ${id} on ${spare.name}`, async () => (await get(id)).replicas.some((r) => r.datanodeId === spare.id && r.state === 'CLOSED'), 120_000, 250)
    c.step(`waiting for the corrupt replica of ${id} to leave ${corrupt.name}`)
    let seen = ''
    const healed = await until('three CLOSED replicas, none on the corrupt node, and its folder gone', async () => {
      const x = await get(id)
      seen = `${x.state}, replicas ${x.replicas.map((r) => `${c.dn(r.datanodeId).name}=${r.state}`).join(' ')}, folder ${existsSync(folder) ? 'still there' : 'gone'}`
      const ok = x.state === 'CLOSED' && x.replicas.length === 3 && x.replicas.every((r) => r.state === 'CLOSED' && r.nodeState === 'HEALTHY') &&
        !x.replicas.some((r) => r.datanodeId === corrupt.id) && !existsSync(folder)
      return ok ? x : undefined
    }, 120_000, 250).catch((err: Error) => { throw new Error(`${err.message}; last seen: container ${id} ${seen}`) })
    assert.ok(healed.replicas.some((r) => r.datanodeId === spare.id), `the copy is on ${spare.name}`)
    assert.is(new Set(healed.replicas.map((r) => r.bcsid)).size, 1, `the replicas carry one bcsid (${JSON.stringify(healed.replicas)})`)
    const held = await new RpcClient('Datanode', corrupt.address).call<{ id: number }[]>('listContainers', {})
    assert.not.ok(held.some((x) => x.id === id), `${corrupt.name} no longer lists container ${id}`)
    await until(`container ${id} HEALTHY`, async () => ((await get(id)).health.join() === 'HEALTHY' ? true : undefined), 30_000, 250)
    const report = await until('a container report with nothing unhealthy, under-replicated or missing', async () => {
      const r = await scm.call<{ health: Record<string, number> }>('containerReport', {})
      return !r.health.UNHEALTHY && !r.health.UNDER_REPLICATED && !r.health.MISSING ? r : undefined
    }, 30_000, 500)
    c.step(`container ${id} HEALTHY on ${healed.replicas.map((r) => c.dn(r.datanodeId).name).join(' ')}; report ${JSON.stringify(report.health)}`)
    await readRounds(1, 'after the repair')

    // Once back, a replica brought back could be deleted again before it is looked at: the
    // delete commands the SCM sends and the datanode's log of deletions tell that too.
    const deletesSent = async () => counter(await (await fetch(`http://${c.endpoints.scm}/prom`)).text(), 'scm_replication_commands_sent_total\\{kind="delete"\\}')
    const deletesBefore = await deletesSent()
    const deletedLog = () => readFileSync(join(c.dataDir, 'logs', `${corrupt.name}.log`), 'utf8').split('\n').filter((l) => l.includes(`deleted container ${id} `)).length
    assert.is(deletedLog(), 1, `${corrupt.name} logged the deletion of container ${id} once`)
    c.kill(corrupt)
    const killedAtMs = Date.now()
    await readRounds(1, `with ${corrupt.name} down`)
    c.restart(corrupt)
    await until(`${corrupt.name} answers`, () => c.answers(corrupt), 60_000, 200)
    // Heartbeats carry every replica the datanode holds: three after the restart include
    // whatever it loaded from disk.
    let beats = 0
    let seenMs = killedAtMs
    await until(`three heartbeats of ${corrupt.name} after its restart`, async () => {
      const n = (await datanodes()).find((d) => d.id === corrupt.id)
      if (n !== undefined && n.state === 'HEALTHY' && n.lastHeartbeatMs > seenMs) { beats++; seenMs = n.lastHeartbeatMs }
      const x = await get(id)
      assert.not.ok(x.replicas.some((r) => r.datanodeId === corrupt.id), `the restarted ${corrupt.name} reports no replica of ${id}: ${JSON.stringify(x.replicas)}`)
      return beats >= 3
    }, 60_000, 200)
    const after = await get(id)
    assert.not.ok(after.replicas.some((r) => r.datanodeId === corrupt.id), `the restarted ${corrupt.name} reports no replica of ${id}: ${JSON.stringify(after.replicas)}`)
    assert.is(after.replicas.filter((r) => r.state === 'CLOSED' && r.nodeState === 'HEALTHY').length, 3)
    assert.equal(after.health, ['HEALTHY'])
    assert.not.ok(existsSync(folder), `no folder of ${id} on ${corrupt.name} after the restart`)
    assert.is(await deletesSent(), deletesBefore, 'the SCM sent no delete command since the restart')
    assert.is(deletedLog(), 1, `${corrupt.name} did not delete container ${id} again`)
    const heldAfter = await new RpcClient('Datanode', corrupt.address).call<{ id: number }[]>('listContainers', {})
    assert.not.ok(heldAfter.some((x) => x.id === id), `the restarted ${corrupt.name} lists no container ${id}`)
    await readRounds(1, `after ${corrupt.name} restarted`)
    c.step(`${corrupt.name} restarted without container ${id}; ${rounds} rounds of reads of ${keys.size} keys, none failed`)
  } finally {
    reading = false
    await readers
  }
  assert.equal(readFailures, [], 'every read of every key succeeded byte for byte')
}, { datanodes: 4, env: ENV }))

test.run()
