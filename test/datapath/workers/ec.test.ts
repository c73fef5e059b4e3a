/**
 * Goal: the worker pool encodes and reconstructs EC stripes in place in shared slabs, with the
 * same bytes as the codec on this thread, and refuses bad shapes with a typed error.
 * Method: random cells in a SharedArrayBuffer, runEcEncode/runEcReconstruct, compare.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomFillSync } from 'node:crypto'
import { O3Error } from '../../../core/errors.ts'
import { closeWorkerPool, runEcEncode, runEcReconstruct, type SlabRange } from '../../../datapath/workers/index.ts'
import { createCodec } from '../../../wasm/index.ts'

function cells(count: number, length: number): { slab: SharedArrayBuffer; ranges: SlabRange[] } {
  const slab = new SharedArrayBuffer(count * length)
  return { slab, ranges: Array.from({ length: count }, (_, i) => ({ slab, offset: i * length, length })) }
}
const view = (r: SlabRange) => new Uint8Array(r.slab, r.offset, r.length)

for (const [codec, k, m] of [['rs', 3, 2], ['rs', 6, 3], ['xor', 2, 1]] as const) {
  test(`${codec}-${k}-${m}: parity from the pool matches this thread's codec; two lost cells come back`, async () => {
    const length = 64 * 1024 + 64
    const { ranges } = cells(k + m, length)
    for (const r of ranges.slice(0, k)) randomFillSync(view(r))
    await runEcEncode({ codec, k, m, data: ranges.slice(0, k), parity: ranges.slice(k) })
    const local = await createCodec(codec, k, m)
    const expected = Array.from({ length: m }, () => new Uint8Array(length))
    local.encode(ranges.slice(0, k).map(view), expected)
    for (let p = 0; p < m; p++) assert.ok(Buffer.from(view(ranges[k + p])).equals(expected[p]), `parity ${p}`)

    const original = ranges.map((r) => Buffer.from(view(r)))
    const missing = m >= 2 ? [0, k] : [1]
    for (const i of missing) view(ranges[i]).fill(0)
    await runEcReconstruct({ codec, k, m, shards: ranges, missing })
    for (let i = 0; i < k + m; i++) assert.ok(original[i].equals(view(ranges[i])), `cell ${i}`)
  })
}

test('more lost cells than parity: a typed error, not a crash', async () => {
  const { ranges } = cells(5, 4096)
  try {
    await runEcReconstruct({ codec: 'rs', k: 3, m: 2, shards: ranges, missing: [0, 1, 2] })
    assert.unreachable('three lost cells of rs-3-2 cannot be rebuilt')
  } catch (err) {
    assert.instance(err, O3Error)
    assert.is((err as O3Error).code, 'INVALID_ARGUMENT')
  }
})

test.after(() => closeWorkerPool())
test.run()
