/** Goal: slabs the pool's workers were given are freed once the datapath is idle, also under
 *  Deno, where the workers stay alive and must run their own idle GC (they held 17 MiB slabs
 *  for good while Piscina blocked them in Atomics.wait between tasks). Method: the real pool
 *  (two threads) checksums 8 slabs of 17 MiB four times over; the slabs are dropped; after the
 *  workers' idle time (Deno: their idle GC; Node: they exit), one GC on this thread (and a trim
 *  of the C heap where the runtime allows) must bring the anonymous RSS down by most of the
 *  136 MiB of slabs. Runs under Node and under Deno (`deno task test:worker-idle`). */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { WORKER_IDLE_GC_MS, WORKER_IDLE_MS } from '../../../core/limits.ts'
import { closeSharedPool, runChecksum, workerPool } from '../../../datapath/workers/pool.ts'
import { collectGarbage } from '../../../datapath/workers/idle.ts'
import { trimMallocHeap } from '../../../datapath/workers/malloc-trim.ts'

const MiB = 1024 * 1024
const SLAB_BYTES = 17 * MiB
const SLABS = 8
const isDeno = 'Deno' in globalThis

function rssAnonBytes(): number {
  return Number(/^RssAnon:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

test('slabs sent to the pool\'s workers are freed once the workers are idle', async () => {
  if (process.platform !== 'linux') return
  workerPool(2)
  let slabs: SharedArrayBuffer[] | null = Array.from({ length: SLABS }, () => {
    const s = new SharedArrayBuffer(SLAB_BYTES)
    new Uint8Array(s).fill(7)
    return s
  })
  const before = rssAnonBytes()
  for (let round = 0; round < 4; round++) {
    await Promise.all(slabs.map((slab) => runChecksum({
      type: 'CRC32C', bytesPerChecksum: 16384,
      data: { slab, offset: 0, length: 16 * MiB }, out: { slab, offset: 16 * MiB, length: 4096 },
    })))
  }
  slabs = null
  // Deno: the workers stay and collect WORKER_IDLE_GC_MS after their last task; Node: they exit.
  await sleep((isDeno ? WORKER_IDLE_GC_MS : WORKER_IDLE_MS) + 1_500)
  assert.ok(collectGarbage(), 'the test needs V8\'s gc')
  await sleep(1_000)
  trimMallocHeap()
  const after = rssAnonBytes()
  assert.ok(before - after > 100 * MiB, `anonymous RSS ${(before / MiB).toFixed(0)} MiB with the slabs, ${(after / MiB).toFixed(0)} MiB after`)
  await closeSharedPool()
})

test.run()
