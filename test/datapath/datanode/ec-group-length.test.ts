/**
 * Goal: the reconstruction coordinator rebuilds each block at the group length k indexes
 * hold in full: the largest any source reports when all agree, a shorter one when a stripe
 * reached too few replicas (a writer that failed mid-stripe), never one it cannot decode.
 * Method: groupOf() over block lists as sources answer them (no I/O), rs-3-2 with 1 MiB cells.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { O3Error } from '../../../core/errors.ts'
import { replicaLengthBytes } from '../../../core/ec-layout.ts'
import { MiB } from '../../../core/limits.ts'
import type { DatanodeDetails } from '../../../core/wire.ts'
import { groupOf, parseReconstructCommand, type Reader } from '../../../datapath/datanode/ec-reconstruction.ts'

const node = (n: number) => ({ id: `dn${n}`, address: `127.0.0.1:${9000 + n}` }) as DatanodeDetails
const cmd = parseReconstructCommand({
  type: 'reconstructECContainer', containerId: 7, replication: 'EC/rs-3-2-1024k',
  sources: [1, 2, 3, 4].map((i) => ({ replicaIndex: i, datanode: node(i) })), targets: [{ replicaIndex: 5, datanode: node(5) }],
})
const s = cmd.scheme

/** Index i's reader holding block 1 as a writer's putBlock of a group of `groupLength` left it. */
function reader(i: number, groupLength: number): Reader {
  const b = { localId: 1, length: replicaLengthBytes(s, groupLength, i), blockGroupLength: groupLength, checksumType: 'CRC32C' as const, bytesPerChecksum: 16 * 1024 }
  return { node: node(i), blocks: new Map([[1, b]]) }
}

test('groupOf() takes the group length every source agrees on, and the checksums the chunks were written with', () => {
  const readers = new Map([1, 2, 3, 4].map((i) => [i, reader(i, 5 * MiB + 3)]))
  assert.equal(groupOf(cmd, readers, 1), { length: 5 * MiB + 3, checksumType: 'CRC32C', bytesPerChecksum: 16 * 1024 })
})

test('groupOf() falls back to a shorter length when the longer one reached fewer than k indexes', () => {
  // The last stripe's putBlock reached indexes 1 and 4 only: 2 < k hold 6 MiB, all 4 hold 3 MiB.
  const readers = new Map([[1, reader(1, 6 * MiB)], [2, reader(2, 3 * MiB)], [3, reader(3, 3 * MiB)], [4, reader(4, 6 * MiB)]])
  assert.is(groupOf(cmd, readers, 1).length, 3 * MiB)
  // With three at 6 MiB, 6 MiB can be decoded.
  readers.set(2, reader(2, 6 * MiB))
  assert.is(groupOf(cmd, readers, 1).length, 6 * MiB)
})

test('groupOf() counts an index whose share of the group is empty as held, and refuses a block fewer than k hold', () => {
  // A 1-byte group: indexes 2 and 3 hold nothing of it, so two readers (1 and 4) suffice.
  const tiny = new Map([[1, reader(1, 1)], [4, reader(4, 1)]])
  assert.is(groupOf(cmd, tiny, 1).length, 1)
  const few = new Map([[1, reader(1, 4 * MiB)], [4, reader(4, 4 * MiB)]])
  let err: unknown
  try { groupOf(cmd, few, 1) } catch (e) { err = e }
  assert.ok(err instanceof O3Error && err.code === 'UNAVAILABLE', String(err))
})

test.run()
