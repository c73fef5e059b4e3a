/** Goal: blockChunks(), the putBlock commit rule of a pipeline's state machine, commits the
 * chunks covering a block, refuses a gap, and skips a replay: by the block's BCSID, and by
 * the container's when the block was deleted since (the pipeline simulator's finding).
 * Method: the pure function on hand-made chunk lists. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { blockChunks, type ChunkMeta } from '../../../datapath/datanode/pipeline/block-chunks.ts'
import { O3Error } from '../../../core/errors.ts'

const chunk = (offset: number, length: number): ChunkMeta => ({ offset, length, checksums: new Uint8Array([offset & 0xff]) })
const recorded = (...chunks: ChunkMeta[]) => new Map(chunks.map((c) => [c.offset, c]))

test('blockChunks() commits the recorded chunks covering [0, length)', () => {
  const r = blockChunks(undefined, recorded(chunk(0, 4), chunk(4, 4)), 8, 10, 'b')
  assert.equal(r, { kind: 'commit', chunks: [chunk(0, 4), chunk(4, 4)] })
})

test('blockChunks() refuses a gap with CHUNK_NOT_FOUND', () => {
  try {
    blockChunks(undefined, recorded(chunk(0, 4), chunk(8, 4)), 12, 10, 'b')
    assert.unreachable()
  } catch (err) {
    assert.ok(err instanceof O3Error)
    assert.is(err.code, 'CHUNK_NOT_FOUND')
  }
})

test('blockChunks() skips a putBlock at or below the block BCSID', () => {
  const committed = { length: 4, chunks: [chunk(0, 4)], bcsid: 10 }
  assert.equal(blockChunks(committed, recorded(chunk(4, 4)), 8, 10, 'b'), { kind: 'skip' })
  assert.equal(blockChunks(committed, recorded(chunk(4, 4)), 8, 11, 'b').kind, 'commit')
})

test('blockChunks() skips a replayed putBlock of a deleted block by the container BCSID', () => {
  // The block was committed at 10 and deleted at 12; a restart replays its writeChunk and putBlock.
  assert.equal(blockChunks(undefined, recorded(chunk(0, 4)), 4, 10, 'b', 12), { kind: 'skip' })
  assert.equal(blockChunks(undefined, recorded(chunk(0, 4)), 4, 10, 'b', 10), { kind: 'skip' })
  assert.equal(blockChunks(undefined, recorded(chunk(0, 4)), 4, 13, 'b', 12).kind, 'commit')
})

test.run()
