/**
 * Goal: a pipeline's log entries round-trip, malformed ones are refused with a typed error,
 * and the putBlock rule commits exactly the chunks covering the block, skipping replays
 * (at or below the block's BCSID) and late shortening retries.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error } from '../../../core/errors.ts'
import type { ContainerId, LocalId } from '../../../core/wire.ts'
import { blockChunks, type ChunkMeta } from '../../../datapath/datanode/pipeline/block-chunks.ts'
import { decodeEntry, encodeEntry, type PipelineEntry } from '../../../datapath/datanode/pipeline/entries.ts'

const cs = (n: number) => new Uint8Array([n, n + 1, n + 2, n + 3])

test('entries round-trip, bytes included', () => {
  const all: PipelineEntry[] = [
    { op: 'writeChunk', containerId: 3 as ContainerId, localId: 9 as LocalId, offset: 4096, length: 4096, checksumType: 'CRC32C', bytesPerChecksum: 4096, checksums: cs(1), replication: 'RATIS/THREE', commit: false },
    { op: 'putSmallFile', containerId: 3 as ContainerId, localId: 10 as LocalId, checksumType: 'CRC32C', bytesPerChecksum: 4096, checksums: cs(2), replication: 'RATIS/THREE', data: new Uint8Array([9, 8, 7]) },
    { op: 'putBlock', containerId: 3 as ContainerId, localId: 9 as LocalId, length: 8192 },
    { op: 'closeContainer', containerId: 3 as ContainerId },
    { op: 'deleteBlocks', containerId: 3 as ContainerId, localIds: [9 as LocalId, 10 as LocalId], txId: 77 },
  ]
  for (const e of all) assert.equal(decodeEntry(encodeEntry(e)), e)
})

test('malformed entries are refused with INVALID_ARGUMENT', () => {
  for (const text of ['nope', '{"op":"writeChunk"}', '{"op":"dance","containerId":1}', '{"op":"putBlock","containerId":-1,"localId":1,"length":1}', '{"op":"deleteBlocks","containerId":1,"localIds":"x","txId":1}']) {
    try {
      decodeEntry(new TextEncoder().encode(text))
      assert.unreachable(text)
    } catch (err) {
      assert.ok(err instanceof O3Error && err.code === 'INVALID_ARGUMENT', `${text}: ${(err as Error).message}`)
    }
  }
})

const chunk = (offset: number, length: number, n = offset): ChunkMeta => ({ offset, length, checksums: cs(n) })

test('putBlock commits the chunks covering its length, later ones stay recorded', () => {
  const recorded = new Map([[0, chunk(0, 10)], [10, chunk(10, 10)], [20, chunk(20, 5)]])
  const r = blockChunks(undefined, recorded, 20, 5, '1:1')
  assert.equal(r, { kind: 'commit', chunks: [chunk(0, 10), chunk(10, 10)] })
})

test('putBlock refuses a gap with CHUNK_NOT_FOUND', () => {
  assert.throws(() => blockChunks(undefined, new Map([[0, chunk(0, 10)], [20, chunk(20, 10)]]), 30, 5, '1:1'), (e: unknown) => e instanceof O3Error && e.code === 'CHUNK_NOT_FOUND')
  assert.throws(() => blockChunks(undefined, new Map([[0, chunk(0, 10)]]), 15, 5, '1:1'), (e: unknown) => e instanceof O3Error && e.code === 'CHUNK_NOT_FOUND')
})

test('a replayed putBlock (index at or below the BCSID) and a shortening one change nothing', () => {
  const committed = { length: 20, chunks: [chunk(0, 10), chunk(10, 10)], bcsid: 9 }
  const more = new Map([[20, chunk(20, 10)]])
  assert.equal(blockChunks(committed, more, 30, 9, '1:1'), { kind: 'skip' })
  assert.equal(blockChunks(committed, more, 30, 3, '1:1'), { kind: 'skip' })
  assert.equal(blockChunks(committed, new Map(), 10, 12, '1:1'), { kind: 'skip' })
  assert.equal(blockChunks(committed, more, 30, 12, '1:1'), { kind: 'commit', chunks: [chunk(0, 10), chunk(10, 10), chunk(20, 10)] })
})

test('a chunk recorded again at an offset replaces the committed one', () => {
  const committed = { length: 20, chunks: [chunk(0, 10), chunk(10, 10)], bcsid: 9 }
  const r = blockChunks(committed, new Map([[10, chunk(10, 10, 99)]]), 20, 10, '1:1')
  assert.equal(r, { kind: 'commit', chunks: [chunk(0, 10), chunk(10, 10, 99)] })
})

test.run()
