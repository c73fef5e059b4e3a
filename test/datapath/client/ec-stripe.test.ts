/**
 * Goal: an EC stripe's cells sit in pooled slabs as the writer needs them: bytes copied in
 * once, in key order across cells and slabs, each cell with its checksum room right before
 * it; slabs taken only when a cell needs one and all given back by release(), also while a
 * slab is awaited.
 * Method: a small real SlabPool, odd-sized fills, compare the cells with the bytes.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { cellSlots, slabsPerStripe, Stripe } from '../../../datapath/client/ec-stripe.ts'
import { SlabPool } from '../../../datapath/workers/index.ts'
import { errorCode, randomBytes } from '../../helpers.ts'

const CELL = 4096
const ROOM = 64
// Two slots to a slab, with some bytes left over.
const SLAB = 2 * (CELL + ROOM) + 100

test('cellSlots() fits whole slots in a slab; slabsPerStripe() rounds up', () => {
  const s = cellSlots({ slabBytes: SLAB, cellSizeBytes: CELL, checksumRoomBytes: ROOM, dataCells: 3, cells: 5 })
  assert.is(s.slotBytes, CELL + ROOM)
  assert.is(s.slotsPerSlab, 2)
  assert.is(slabsPerStripe(s), 3)
  assert.is(cellSlots({ slabBytes: CELL, cellSizeBytes: CELL, checksumRoomBytes: ROOM, dataCells: 3, cells: 5 }).slotsPerSlab, 0)
})

test('Stripe.fill() copies bytes in key order across cells and slabs, up to the stripe\'s end', async () => {
  const pool = new SlabPool(SLAB, 6)
  const slots = cellSlots({ slabBytes: SLAB, cellSizeBytes: CELL, checksumRoomBytes: ROOM, dataCells: 3, cells: 5 })
  const s = new Stripe(slots, pool)
  assert.is(s.slabCount, 0)
  const data = randomBytes(3 * CELL + 500, 7)
  let at = 0
  for (const n of [1, CELL - 2, 3, 2 * CELL]) at += await s.fill(data.subarray(at, at + n))
  assert.is(at, 3 * CELL, 'stops at the stripe\'s end')
  assert.is(s.filled, 3 * CELL)
  assert.is(s.slabCount, 2, 'cells 0-1 in one slab, cell 2 in the next')
  for (let j = 0; j < 3; j++) assert.ok(Buffer.from(s.bytes(j, CELL)).equals(data.subarray(j * CELL, (j + 1) * CELL)), `cell ${j}`)
  assert.ok(Buffer.from(s.copyOut()).equals(data.subarray(0, 3 * CELL)))
  // Each cell's bytes start after its checksum room, and cells do not overlap.
  const r0 = s.range(0, CELL), r1 = s.range(1, CELL), r2 = s.range(2, CELL)
  assert.is(r0.offset, ROOM)
  assert.is(r1.offset, CELL + 2 * ROOM)
  assert.ok(r0.slab === r1.slab && r1.slab !== r2.slab)
  await s.takeAll()
  assert.is(s.slabCount, 3)
  assert.is(pool.inUse, 3)
  s.release()
  assert.is(pool.inUse, 0)
  s.release() // twice: nothing more
  assert.is(pool.inUse, 0)
})

test('Stripe.zero() pads a short cell; joined() is the checksums then the bytes', async () => {
  const pool = new SlabPool(SLAB, 6)
  const slots = cellSlots({ slabBytes: SLAB, cellSizeBytes: CELL, checksumRoomBytes: ROOM, dataCells: 2, cells: 3 })
  const dirty = new Stripe(slots, pool)
  await dirty.fill(randomBytes(2 * CELL, 1))
  dirty.release()
  const s = new Stripe(slots, pool)
  await s.fill(randomBytes(CELL + 10, 2))
  s.zero(1, 10, CELL)
  assert.ok(s.bytes(1, CELL).subarray(10).every((b) => b === 0), 'the reused slab\'s old bytes are zeroed')
  assert.ok(Buffer.from(s.bytes(1, 10)).equals(randomBytes(CELL + 10, 2).subarray(CELL)))
  const r = s.range(1, 10)
  s.checksums[1] = new Uint8Array(r.slab, r.offset - 8, 8)
  const j = s.joined(1, 10)
  assert.is(j.byteOffset, r.offset - 8)
  assert.is(j.length, 18)
  s.release()
})

test('Stripe.release() while a slab is awaited: the slab goes back when it comes and fill() fails', async () => {
  const pool = new SlabPool(SLAB, 1)
  const slots = cellSlots({ slabBytes: SLAB, cellSizeBytes: CELL, checksumRoomBytes: ROOM, dataCells: 2, cells: 3 })
  const holder = new Stripe(slots, pool)
  await holder.fill(new Uint8Array(1))
  const waiting = new Stripe(slots, pool)
  const filling = waiting.fill(new Uint8Array(1))
  waiting.release()
  holder.release()
  assert.is(await errorCode(filling), 'INTERNAL_ERROR')
  assert.is(pool.inUse, 0)
})

test.run()
