/**
 * Goal: the EC layout puts each key byte in exactly one data cell, replica lengths add up to
 * the group, and a partial stripe's parity cells are as long as its first cell (Ozone's).
 * Method: every size around cell and stripe boundaries for rs-3-2 and rs-6-3 with small cells.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { cellPieces, groupCapacityBytes, replicaLengthBytes, stripeCellLengths, stripeCount, type EcScheme } from '../../core/ec-layout.ts'

const schemes: EcScheme[] = [{ codec: 'rs', data: 3, parity: 2, cellSizeBytes: 8 }, { codec: 'rs', data: 6, parity: 3, cellSizeBytes: 4 }, { codec: 'xor', data: 2, parity: 1, cellSizeBytes: 16 }]

test('replica lengths: data replicas add up to the group, parity ones match the first data replica', () => {
  for (const s of schemes) {
    const c = s.cellSizeBytes, stripe = s.data * c
    for (const L of [0, 1, c - 1, c, c + 1, stripe - 1, stripe, stripe + 1, 3 * stripe + 2 * c + 1]) {
      const lengths = Array.from({ length: s.data + s.parity }, (_, i) => replicaLengthBytes(s, L, i + 1))
      assert.is(lengths.slice(0, s.data).reduce((a, b) => a + b, 0), L, `sum ${L}`)
      for (let p = 0; p < s.parity; p++) assert.is(lengths[s.data + p], lengths[0])
      const perStripe = Array.from({ length: stripeCount(s, L) }, (_, st) => stripeCellLengths(s, L, st))
      for (let i = 0; i < s.data + s.parity; i++) assert.is(perStripe.reduce((a, cells) => a + cells[i], 0), lengths[i], `replica ${i + 1} of ${L}`)
    }
  }
})

test('cell pieces cover a range once, in order, at the right replica offsets', () => {
  const s = schemes[0]
  const L = 5 * s.data * s.cellSizeBytes + 3
  for (const [off, len] of [[0, L], [1, 7], [7, 2], [8, 24], [23, L - 23], [L, 0]]) {
    const pieces = cellPieces(s, L, off, len)
    let at = off
    for (const p of pieces) {
      assert.is(p.groupOffset, at)
      const cell = Math.floor(at / s.cellSizeBytes)
      assert.is(p.replicaIndex, (cell % s.data) + 1)
      assert.is(p.replicaOffset, Math.floor(cell / s.data) * s.cellSizeBytes + (at % s.cellSizeBytes))
      assert.ok(p.length > 0 && p.length <= s.cellSizeBytes)
      at += p.length
    }
    assert.is(at, off + len)
  }
})

test('a group holds k cells per stripe, as many stripes as cells fit in a block', () => {
  assert.is(groupCapacityBytes({ codec: 'rs', data: 3, parity: 2, cellSizeBytes: 1 << 20 }, 256 << 20), 3 * (256 << 20))
  assert.is(groupCapacityBytes({ codec: 'rs', data: 6, parity: 3, cellSizeBytes: 1 << 20 }, (3 << 20) + 5), 6 * (3 << 20))
  assert.throws(() => groupCapacityBytes(schemes[0], 7))
})

test.run()
