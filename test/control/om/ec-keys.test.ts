/** Goal: the OM accepts EC (issue 14): a bucket's default and a key's own replication may be
 * EC/<codec>-<k>-<m>-<cell>k (schemes the codec cannot run are refused; S3 multipart parts
 * take their S3 bucket's), openKey preallocates
 * block groups by their capacity (k blocks of key bytes each, core/ec-layout.ts), commitKey
 * takes an EC location up to that capacity and no more, and lookupKey's refresh lists a
 * closed EC container's replicas one per index in index order (locations.ts). Method: the
 * OM's requests prepared once and applied to two real LMDB replicas (replicas.ts); the pure
 * refresh on hand-built SCM answers. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { loadConfig } from '../../../core/config.ts'
import { groupCapacityBytes } from '../../../core/ec-layout.ts'
import { O3Error } from '../../../core/errors.ts'
import type { KeyInfo, OpenKeyResult } from '../../../core/om-wire.ts'
import { formatReplication, parseReplication, type ContainerLocation, type DatanodeId, type Pipeline, type PipelineId } from '../../../core/wire.ts'
import { refreshPipeline } from '../../../control/om/locations.ts'
import { errorCode } from '../../helpers.ts'
import { OmReplicas } from './replicas.ts'

const om = new OmReplicas('o3-om-ec-')
const { run } = om
const RS32 = 'EC/rs-3-2-1024k'
const BLOCK = loadConfig({ env: {} })['scm.block.sizeBytes']
const CAPACITY = groupCapacityBytes(parseReplication(RS32).ec!, BLOCK)

test.before(async () => {
  await run('createVolume', { volume: 'vol', owner: 'alice' })
})

test.after(om.close)

test('createBucket takes an EC default replication, and refuses schemes the codec cannot run', async () => {
  assert.is((await run('createBucket', { volume: 'vol', bucket: 'ecb', replication: RS32 }) as { replication: string }).replication, RS32)
  assert.is((await run('createBucket', { volume: 'vol', bucket: 'ratis', replication: 'RATIS/THREE' }) as { replication: string }).replication, 'RATIS/THREE')
  for (const bad of ['EC/rs-3-0-1024k', 'EC/xor-2-2-1024k', 'EC/rs-30-3-1024k', 'EC/rs-3-2-1026k', 'EC/rs-3-2-8192k', 'EC/rs-3-2-0k', 'EC/lrc-3-2-1024k']) {
    assert.is(await errorCode(run('createBucket', { volume: 'vol', bucket: 'bad', replication: bad })), 'INVALID_ARGUMENT', bad)
  }
})

test('cell sizes: any multiple of 4k up to 4096k parses and round-trips; a cell that is not whole checksum windows is refused clearly', async () => {
  for (const r of ['EC/rs-3-2-4k', 'EC/rs-3-2-64k', 'EC/rs-6-3-1024k', 'EC/xor-2-1-4096k']) assert.is(formatReplication(parseReplication(r)), r)
  assert.is(parseReplication('EC/rs-3-2-64k').ec!.cellSizeBytes, 64 * 1024)
  assert.is((await run('createBucket', { volume: 'vol', bucket: 'small-cells', replication: 'EC/rs-3-2-64k' }) as { replication: string }).replication, 'EC/rs-3-2-64k')
  // The default bytesPerChecksum is 16 KiB: a 4k or 20k cell is not whole windows.
  const err = await run('createBucket', { volume: 'vol', bucket: 'tiny', replication: 'EC/rs-3-2-20k' }).then(() => undefined, (e: unknown) => e as O3Error)
  assert.is(err?.code, 'INVALID_ARGUMENT')
  assert.is(err?.message, 'Cannot write with EC/rs-3-2-20k: its cell size (20480 bytes) is not a multiple of bytesPerChecksum (16384)')
  assert.is(await errorCode(run('openKey', { volume: 'vol', bucket: 'ratis', key: 'tiny', replication: 'EC/rs-3-2-4k' })), 'INVALID_ARGUMENT')
})

test('openKey in an EC bucket returns EC blocks, preallocated by group capacity (k blocks of key bytes each)', async () => {
  const one = await run('openKey', { volume: 'vol', bucket: 'ecb', key: 'small', sizeBytes: 10 }) as OpenKeyResult
  assert.is(one.replication, RS32)
  assert.is(one.blocks.length, 1)
  assert.is(one.blocks[0].pipeline.replication, RS32)
  assert.is(CAPACITY, 3 * BLOCK)
  const big = await run('openKey', { volume: 'vol', bucket: 'ecb', key: 'big', sizeBytes: CAPACITY + 1 }) as OpenKeyResult
  assert.is(big.blocks.length, 2, 'a group and one byte: two groups, where RATIS would take four blocks')
  const ratis = await run('openKey', { volume: 'vol', bucket: 'ratis', key: 'big', sizeBytes: CAPACITY + 1 }) as OpenKeyResult
  assert.is(ratis.blocks.length, 4)
})

test('openKey takes a key\'s own replication over its bucket\'s, EC or RATIS', async () => {
  const ec = await run('openKey', { volume: 'vol', bucket: 'ratis', key: 'k1', replication: 'EC/rs-6-3-1024k' }) as OpenKeyResult
  assert.is(ec.replication, 'EC/rs-6-3-1024k')
  assert.is(ec.blocks[0].pipeline.replication, 'EC/rs-6-3-1024k')
  const ratis = await run('openKey', { volume: 'vol', bucket: 'ecb', key: 'k2', replication: 'RATIS/ONE' }) as OpenKeyResult
  assert.is(ratis.replication, 'RATIS/ONE')
  assert.is(await errorCode(run('openKey', { volume: 'vol', bucket: 'ecb', key: 'k3', replication: 'EC/rs-3-0-1024k' })), 'INVALID_ARGUMENT')
})

test('openKey of an S3 multipart part takes the S3 bucket\'s replication, not its parts bucket\'s default', async () => {
  await run('createVolume', { volume: 's3v', owner: 'alice' })
  await run('createVolume', { volume: 's3v-multipart', owner: 'alice' })
  await run('createBucket', { volume: 's3v', bucket: 'photos', replication: RS32 })
  // The gateway makes the parts bucket with no replication: the default (RATIS/THREE).
  assert.is((await run('createBucket', { volume: 's3v-multipart', bucket: 'photos' }) as { replication: string }).replication, 'RATIS/THREE')
  const part = await run('openKey', { volume: 's3v-multipart', bucket: 'photos', key: 'p/1/1' }) as OpenKeyResult
  assert.is(part.replication, RS32)
  assert.is(part.blocks[0].pipeline.replication, RS32)
  const plain = await run('openKey', { volume: 'vol', bucket: 'ratis', key: 'plain' }) as OpenKeyResult
  assert.is(plain.replication, 'RATIS/THREE')
})

test('commitKey takes an EC location up to the group capacity, not past it', async () => {
  const o = await run('openKey', { volume: 'vol', bucket: 'ecb', key: 'full', sizeBytes: CAPACITY }) as OpenKeyResult
  const over = await errorCode(run('commitKey', { clientId: o.clientId, blocks: [{ blockId: o.blocks[0].blockId, length: CAPACITY + 1 }], size: CAPACITY + 1 }))
  assert.is(over, 'INVALID_ARGUMENT')
  const k = await run('commitKey', { clientId: o.clientId, blocks: [{ blockId: o.blocks[0].blockId, length: CAPACITY }], size: CAPACITY }) as KeyInfo
  assert.is(k.replication, RS32)
  assert.equal(k.locations.map((l) => [l.offset, l.length]), [[0, CAPACITY]])
  // A RATIS key's block still holds at most a block.
  const r = await run('openKey', { volume: 'vol', bucket: 'ratis', key: 'r' }) as OpenKeyResult
  assert.is(await errorCode(run('commitKey', { clientId: r.clientId, blocks: [{ blockId: r.blocks[0].blockId, length: BLOCK + 1 }], size: BLOCK + 1 })), 'INVALID_ARGUMENT')
})

const dn = (i: number) => ({ id: `dn-0000000${i}` as DatanodeId, address: `127.0.0.1:${9900 + i}` })
const ecPipeline: Pipeline = { id: 'p' as PipelineId, replication: RS32, state: 'OPEN', nodes: [1, 2, 3, 4, 5].map(dn), createdAtMs: 0 }

test('refreshPipeline() of a closed EC container: one replica per index in index order; the recorded member where an index has none', () => {
  const found: ContainerLocation = {
    state: 'CLOSED', pipeline: { ...ecPipeline, state: 'CLOSED' },
    replicas: [
      // Index 2 was rebuilt on node 7, its replica on node 2 is corrupt; index 4 is gone; the rest where they were written.
      { ...dn(5), state: 'CLOSED', replicaIndex: 5 }, { ...dn(2), state: 'UNHEALTHY', replicaIndex: 2 }, { ...dn(7), state: 'CLOSED', replicaIndex: 2 },
      { ...dn(1), state: 'CLOSED', replicaIndex: 1 }, { ...dn(3), state: 'CLOSED', replicaIndex: 3 },
    ],
  }
  const p = refreshPipeline(ecPipeline, found)
  assert.equal(p.nodes.map((n) => n.id), [dn(1).id, dn(7).id, dn(3).id, dn(4).id, dn(5).id])
  // A rebuild in progress (OPEN, partial) listed before the CLOSED replica of its index is passed over.
  const rebuilding = refreshPipeline(ecPipeline, { ...found, replicas: [{ ...dn(8), state: 'OPEN', replicaIndex: 4 }, ...found.replicas, { ...dn(9), state: 'CLOSED', replicaIndex: 4 }] })
  assert.is(rebuilding.nodes[3].id, dn(9).id)
  assert.is(p.replication, RS32)
  // An open container is read through its pipeline as the SCM has it.
  assert.is(refreshPipeline(ecPipeline, { state: 'OPEN', pipeline: ecPipeline, replicas: [] }), ecPipeline)
  // A RATIS container still lists its healthy replicas, whatever their index field.
  const ratis: Pipeline = { ...ecPipeline, replication: 'RATIS/THREE', nodes: [1, 2, 3].map(dn) }
  assert.equal(refreshPipeline(ratis, { state: 'CLOSED', pipeline: ratis, replicas: [{ ...dn(3), state: 'CLOSED', replicaIndex: 0 }] }).nodes, [dn(3)])
  // Its corrupt replicas come last, still listed: a block bad on one may be good on another,
  // and the healthy holder may be down (then they are all a reader can reach).
  const corrupt = refreshPipeline(ratis, { state: 'CLOSED', pipeline: ratis, replicas: [{ ...dn(1), state: 'UNHEALTHY', replicaIndex: 0 }, { ...dn(3), state: 'CLOSED', replicaIndex: 0 }, { ...dn(2), state: 'UNHEALTHY', replicaIndex: 0 }] })
  assert.equal(corrupt.nodes, [dn(3), dn(1), dn(2)])
})

test.run()
