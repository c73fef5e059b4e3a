/**
 * Goal: the container scanner's metadata checks catch what they name and pass what a
 * datanode writes: a block record whose chunks leave a gap, overrun or fall short of its
 * length, carry too few checksum bytes, or whose BCSID passes its container's; a container
 * file that is missing, not JSON, edited after its checksum, or another container's.
 * (The scans on a real datanode are test/cluster/container-scanner.test.ts.)
 * Method: blockRecordError is pure; containerFileError reads files written here in a temp
 * dir in the datanode's format (datanode.ts writeContainerFile).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ContainerId, LocalId } from '../../../core/wire.ts'
import { blockRecordError, containerFileError } from '../../../datapath/datanode/container-scanner.ts'
import type { BlockData } from '../../../datapath/datanode/index.ts'

const dir = mkdtempSync(join(tmpdir(), 'o3-scanner-unit-'))
test.after(() => rmSync(dir, { recursive: true, force: true }))

/** A block of `lengths` chunks, XXH64 (8 bytes) per 512-byte window. */
function block(lengths: number[], over: Partial<BlockData> = {}): BlockData {
  let offset = 0
  const chunks = lengths.map((length) => {
    const ch = { offset, length, checksums: new Uint8Array(Math.ceil(length / 512) * 8) }
    offset += length
    return ch
  })
  return { containerId: 7 as ContainerId, localId: 3 as LocalId, length: offset, checksumType: 'XXH64', bytesPerChecksum: 512, chunks, packed: false, committedAtMs: 0, bcsid: 10, ...over }
}

test('blockRecordError() passes a block whose chunks cover its length in order', () => {
  assert.is(blockRecordError(block([1024, 1024, 100]), 10), undefined)
  assert.is(blockRecordError(block([]), 10), undefined, 'an empty block')
  assert.is(blockRecordError(block([1000], { checksumType: 'NONE', chunks: [{ offset: 0, length: 1000, checksums: new Uint8Array(0) }] }), 10), undefined, 'no checksums to hold')
})

test('blockRecordError() names a gap, a wrong length, short checksums and a BCSID past the container\'s', () => {
  const gap = block([1024, 1024])
  gap.chunks[1] = { ...gap.chunks[1], offset: 2048 }
  assert.match(blockRecordError(gap, 10) ?? '', 'no chunk at offset 1024')
  assert.match(blockRecordError(block([1024], { length: 2048 }), 10) ?? '', 'chunks cover 1024 of its 2048 bytes')
  const short = block([1024])
  short.chunks[0] = { ...short.chunks[0], checksums: new Uint8Array(8) }
  assert.match(blockRecordError(short, 10) ?? '', 'has 8 checksum bytes, its 1024 bytes need 16')
  assert.match(blockRecordError(block([1024], { bcsid: 11 }), 10) ?? '', 'BCSID 11 is past its container\'s 10')
  assert.is(blockRecordError(block([1024], { bcsid: undefined }), 0), undefined, 'a block committed outside a pipeline has BCSID 0')
})

/** A container file as the datanode writes it; `edit` changes the text after the checksum is taken. */
function containerFile(name: string, id: number, edit: (text: string) => string = (t) => t): string {
  const body = { containerId: id, state: 'CLOSED', replication: 'RATIS/THREE', pipelineId: 'p', replicaIndex: 0, layout: 'FILE_PER_BLOCK', schemaVersion: 3, createdAtMs: 1 }
  const text = JSON.stringify({ ...body, checksum: createHash('sha256').update(JSON.stringify(body)).digest('hex') }, null, 2)
  const path = join(dir, name)
  writeFileSync(path, edit(text))
  return path
}

test('containerFileError() passes a file as the datanode writes it', async () => {
  assert.is(await containerFileError(containerFile('good', 7), 7 as ContainerId), undefined)
})

test('containerFileError() names a missing, unparsable, edited or foreign container file', async () => {
  assert.match(await containerFileError(join(dir, 'none'), 7 as ContainerId) ?? '', 'cannot be read: ENOENT')
  assert.match(await containerFileError(containerFile('torn', 7, (t) => t.slice(0, 40)), 7 as ContainerId) ?? '', 'is not JSON')
  assert.match(await containerFileError(containerFile('edited', 7, (t) => t.replace('"CLOSED"', '"OPEN"')), 7 as ContainerId) ?? '', 'checksum does not match')
  assert.match(await containerFileError(containerFile('other', 8), 7 as ContainerId) ?? '', 'names container 8')
})

test('containerFileError() names a file whose replica index is not the record\'s (an EC replica that lost its index)', async () => {
  assert.is(await containerFileError(containerFile('ratis', 7), 7 as ContainerId, 0), undefined)
  assert.match(await containerFileError(containerFile('ec', 7), 7 as ContainerId, 3) ?? '', 'says replica index 0, its record 3')
})

test.run()
