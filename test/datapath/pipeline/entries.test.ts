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

test('a small file\'s bytes are in its entry as they are (no base64), and entries logged as JSON before the binary form still decode', () => {
  const data = new Uint8Array(4096).map((_, i) => (i * 13) & 0xff)
  const e: PipelineEntry = { op: 'putSmallFile', containerId: 3 as ContainerId, localId: 10 as LocalId, checksumType: 'CRC32C', bytesPerChecksum: 4096, checksums: cs(2), replication: 'RATIS/THREE', data }
  const bytes = encodeEntry(e)
  assert.ok(bytes.byteLength < data.byteLength + 300, `${bytes.byteLength} bytes`)
  assert.ok(Buffer.from(bytes).includes(Buffer.from(data)))
  const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64')
  const legacy = new TextEncoder().encode(JSON.stringify({ ...e, checksums: b64(e.checksums), data: b64(data) }))
  assert.equal(decodeEntry(legacy), e)
  const chunk: PipelineEntry = { op: 'writeChunk', containerId: 3 as ContainerId, localId: 9 as LocalId, offset: 0, length: 8, checksumType: 'CRC32C', bytesPerChecksum: 4, checksums: cs(5), replication: 'RATIS/THREE', commit: true }
  assert.equal(decodeEntry(new TextEncoder().encode(JSON.stringify({ ...chunk, checksums: b64(cs(5)) }))), chunk)
})

test('binary entries whose lengths do not account for their bytes are refused with INVALID_ARGUMENT', () => {
  const e: PipelineEntry = { op: 'putSmallFile', containerId: 3 as ContainerId, localId: 10 as LocalId, checksumType: 'CRC32C', bytesPerChecksum: 4096, checksums: cs(2), replication: 'RATIS/THREE', data: new Uint8Array(16) }
  const good = Buffer.from(encodeEntry(e))
  const withHeader = (o: unknown, tail: number) => {
    const json = Buffer.from(JSON.stringify(o))
    const b = Buffer.alloc(5 + json.length + tail)
    b[0] = 1
    b.writeUInt32BE(json.length, 1)
    json.copy(b, 5)
    return b
  }
  for (const [why, bytes] of [
    ['empty', new Uint8Array(0)], ['unknown form', Buffer.from([7, 0, 0, 0, 0])], ['header past the end', good.subarray(0, 9)],
    ['data cut short', good.subarray(0, good.length - 1)], ['bytes left over', Buffer.concat([good, Buffer.from([0])])],
    ['lengths as base64', withHeader({ ...e, checksums: 'AQID', data: 'AQID' }, 0)], ['negative length', withHeader({ ...e, checksums: -4, data: 0 }, 0)],
  ] as const) {
    try {
      decodeEntry(bytes)
      assert.unreachable(why)
    } catch (err) {
      assert.ok(err instanceof O3Error && err.code === 'INVALID_ARGUMENT', `${why}: ${(err as Error).message}`)
    }
  }
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
