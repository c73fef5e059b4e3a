/**
 * Goal: a datanode whose volumes fall below their reserve (datanode.volume.minFreeBytes,
 * Ozone's min free space) stops taking new data: it refuses chunks with DISK_FULL naming
 * itself (the writer moves on), reports its volumes full, the SCM closes
 * its open containers (the datanode's CLOSE container actions) and places no new blocks or
 * pipelines on it; with too few datanodes with room a write fails with a clear NO_PIPELINE
 * and leaves no key; once the space is back the node takes writes again.
 * Method: a mini cluster of four datanodes (RATIS/THREE). A volume is made full by starting
 * its datanode again with a reserve larger than any disk (the real statfs against it).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { request } from 'undici'
import type { O3Error } from '../../core/errors.ts'
import { OM_BLOCK_CACHE_AGE_MS_MAX } from '../../core/limits.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { urlOf } from '../../core/rpc/transport.ts'
import type { ContainerInfo } from '../../control/scm/tables.ts'
import type { BlockId, Pipeline } from '../../core/wire.ts'
import { until } from '../helpers.ts'
import { adminTransport, randomBytes, startMiniCluster } from './mini-cluster.ts'

const FULL = { 'datanode.volume.minFreeBytes': 2 ** 50 }
const ROOMY = { 'datanode.volume.minFreeBytes': 1024 * 1024 }
const cluster = await startMiniCluster({ datanodes: 4, overrides: { ...ROOMY, 'client.replication': 'RATIS/THREE' } })
const client = cluster.client()
const transport = adminTransport(cluster)
const om = new RpcClient('OM', cluster.omAddress, { transport })

type DatanodeRow = { id: string; address: string; full?: boolean; availableBytes: number }
const datanodes = () => client.admin<DatanodeRow[]>('listDatanodes')
const indexOf = (address: string) => cluster.datanodeAddresses.indexOf(address)

async function restart(i: number, overrides: Record<string, number>): Promise<void> {
  await cluster.stopDatanode(i)
  await cluster.startDatanode(i, overrides)
}

/** Every pipeline each of the key's blocks went to. */
async function pipelinesOf(key: string): Promise<Pipeline[]> {
  return (await client.headKey('vol', 'bkt', key)).locations.map((l) => l.pipeline)
}

test.after(async () => { await cluster.dispose() })

let fullId = ''
let fullAddress = ''

test('a full datanode refuses a chunk with DISK_FULL naming itself, and the SCM lists it full', async () => {
  await client.createVolume('vol')
  await client.createBucket('vol', 'bkt')
  await client.putKey('vol', 'bkt', 'before', randomBytes(10_000, 1))
  // A block the OM handed out before the volume filled: the writer still holds it.
  const opened = await om.call<{ blocks: { blockId: BlockId; pipeline: Pipeline; token?: string }[]; clientId: string }>('openKey', { volume: 'vol', bucket: 'bkt', key: 'late' })
  const block = opened.blocks[0]!
  fullAddress = block.pipeline.nodes[0]!.address
  fullId = block.pipeline.nodes[0]!.id
  await restart(indexOf(fullAddress), FULL)
  const data = Buffer.alloc(4096, 7)
  const args = {
    containerId: block.blockId.containerId, localId: block.blockId.localId, offset: 0, length: data.length, checksumType: 'NONE', bytesPerChecksum: 1024,
    replication: block.pipeline.replication, pipelineId: block.pipeline.id, forward: [], whole: false, commit: false,
  }
  const res = await request(urlOf(transport, fullAddress, '/chunk/write'), {
    method: 'POST', body: data, dispatcher: transport.dispatcher(),
    headers: { 'x-o3-args': JSON.stringify(args), 'content-type': 'application/octet-stream', ...(block.token !== undefined ? { 'x-o3-block-token': block.token } : {}) },
  })
  const body = await res.body.json() as { code?: string; message?: string; node?: string }
  assert.is(res.statusCode, 507, JSON.stringify(body))
  assert.is(body.code, 'DISK_FULL')
  assert.match(body.message ?? '', `on datanode ${fullAddress}`)
  assert.match(body.message ?? '', /below its reserve of 1125899906842624 \(datanode\.volume\.minFreeBytes\)/)
  await om.call('abortKey', { clientId: opened.clientId })
  const row = await until('the SCM lists the datanode full', async () => (await datanodes()).find((d) => d.id === fullId && d.full === true))
  assert.ok(row.availableBytes > 0, 'the disk itself has space: only the reserve makes it full')
  assert.equal((await datanodes()).filter((d) => d.full === true).map((d) => d.id), [fullId])
})

test('the SCM closes the full datanode\'s open containers and puts no new block on it', async () => {
  await until('every container with a replica on the full datanode is no longer OPEN', async () => {
    const pipelines = await client.admin<Pipeline[]>('listPipelines')
    const onFull = new Set(pipelines.filter((p) => p.nodes.some((n) => n.id === fullId)).map((p) => p.id))
    const containers = await client.admin<ContainerInfo[]>('listContainers')
    return containers.filter((c) => onFull.has(c.pipelineId)).every((c) => c.state !== 'OPEN')
  }, 20_000)
  for (let i = 0; i < 12; i++) await client.putKey('vol', 'bkt', `after-${i}`, randomBytes(3000 + i * 1000, 10 + i))
  for (let i = 0; i < 12; i++) {
    for (const p of await pipelinesOf(`after-${i}`)) assert.not.ok(p.nodes.some((n) => n.id === fullId), `after-${i} went to pipeline ${p.id} on the full datanode`)
    assert.ok((await client.getKey('vol', 'bkt', `after-${i}`)).equals(randomBytes(3000 + i * 1000, 10 + i)))
  }
  // What it held stays readable.
  assert.ok((await client.getKey('vol', 'bkt', 'before')).equals(randomBytes(10_000, 1)))
})

test('with too few datanodes with room a write fails with NO_PIPELINE saying so, and leaves no key', async () => {
  const second = cluster.datanodeAddresses.findIndex((a) => a !== fullAddress)
  await restart(second, FULL)
  await until('the SCM lists two datanodes full', async () => (await datanodes()).filter((d) => d.full === true).length === 2)
  // Blocks the OM took from the SCM before are handed out for a while (a follower's reserve takes them): let them age out.
  await new Promise((r) => setTimeout(r, OM_BLOCK_CACHE_AGE_MS_MAX + 100))
  let failure: O3Error | undefined
  try {
    await client.putKey('vol', 'bkt', 'nowhere', randomBytes(5000, 99))
  } catch (err) {
    failure = err as O3Error
  }
  assert.ok(failure !== undefined, 'the write succeeded with two of four datanodes full')
  assert.is(failure.code, 'NO_PIPELINE', failure.message)
  assert.match(failure.message, /2 healthy with room, 2 full/)
  assert.equal((await client.listKeys('vol', 'bkt', { prefix: 'nowhere' })).keys, [])
  // Space back: both take writes again.
  await restart(second, ROOMY)
  await restart(indexOf(fullAddress), ROOMY)
  await until('no datanode is listed full', async () => (await datanodes()).every((d) => d.full !== true))
  await until('a write succeeds again', async () => {
    try { await client.putKey('vol', 'bkt', 'again', randomBytes(5000, 98)); return true } catch { return false }
  }, 30_000, 200)
  assert.ok((await client.getKey('vol', 'bkt', 'again')).equals(randomBytes(5000, 98)))
})

test.run()
