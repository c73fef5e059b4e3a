/** Goal: a SlabPool gives back the slabs it no longer needs, so that a process keeps no payload
 *  buffers once idle, and still bounds and reuses them while busy. Method: a real pool, trim()
 *  called with times past the idle limit, and one run of the real (unref'd) trim timer. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SizedSlabPools, SlabPool } from '../../../datapath/workers/slabs.ts'

const IDLE_MS = 1_000

test('trim() drops free slabs idle for idleMs, and acquire() makes new ones after', async () => {
  const pool = new SlabPool(1024, 4, IDLE_MS)
  const slabs = [await pool.acquire(), await pool.acquire(), await pool.acquire()]
  for (const s of slabs) pool.release(s)
  assert.is(pool.madeCount, 3)
  assert.is(pool.freeCount, 3)
  assert.is(pool.trim(Date.now()), 0, 'nothing is idle yet')
  assert.is(pool.madeCount, 3)
  assert.is(pool.trim(Date.now() + IDLE_MS), 3)
  assert.is(pool.madeCount, 0)
  assert.is(pool.freeCount, 0)
  const again = await pool.acquire()
  assert.is(again.byteLength, 1024)
  assert.is(pool.madeCount, 1)
})

test('trim() leaves slabs that are out alone, and the pool stays bounded by count', async () => {
  const pool = new SlabPool(1024, 2, IDLE_MS)
  const a = await pool.acquire()
  const b = await pool.acquire()
  pool.release(a)
  assert.is(pool.trim(Date.now() + IDLE_MS), 1)
  assert.is(pool.madeCount, 1, 'b is still out')
  const c = await pool.acquire()
  assert.is(pool.madeCount, 2)
  let third: SharedArrayBuffer | undefined
  const waiting = pool.acquire().then((s) => { third = s })
  await Promise.resolve()
  assert.is(third, undefined, 'the pool is at its count: acquire() waits')
  pool.release(b)
  await waiting
  assert.is(third, b, 'a released slab goes to the waiter, not to the free list')
  assert.is(pool.freeCount, 0)
  pool.release(c)
  pool.release(b)
  assert.is(pool.trim(Date.now() + IDLE_MS), 2)
  assert.is(pool.madeCount, 0)
})

test('a released slab is reused while it is not idle', async () => {
  const pool = new SlabPool(1024, 4, IDLE_MS)
  const a = await pool.acquire()
  pool.release(a)
  assert.is(await pool.acquire(), a)
  assert.is(pool.madeCount, 1)
})

test('the pool trims itself on its timer once a slab has been idle', async () => {
  const pool = new SlabPool(1024, 4, 20)
  pool.release(await pool.acquire())
  pool.release(await pool.acquire())
  assert.is(pool.madeCount, 1)
  // Timers fire in order of their due time: the pool's (20 ms) comes before this one.
  await new Promise((r) => setTimeout(r, 200))
  assert.is(pool.madeCount, 0)
  assert.is(pool.freeCount, 0)
})

test('SizedSlabPools gives a chunk the small slab it fits, a larger one a large slab, and bounds each', async () => {
  const pools = new SizedSlabPools(1024, 2, 8192, 1)
  const a = await pools.acquire(1024)
  const b = await pools.acquire(10)
  assert.is(a.byteLength, 1024)
  assert.is(b.byteLength, 1024)
  const large = await pools.acquire(1025)
  assert.is(large.byteLength, 8192)
  // Both classes are out: a third small chunk waits for a small slab, not a large one.
  let got: SharedArrayBuffer | undefined
  const waiting = pools.acquire(100).then((s) => { got = s })
  await new Promise((r) => setTimeout(r, 20))
  assert.is(got, undefined)
  pools.release(large)
  await new Promise((r) => setTimeout(r, 20))
  assert.is(got, undefined, 'a large slab went to a small chunk')
  pools.release(a)
  await waiting
  assert.is(got, a)
  await pools.acquire(1025, 10)
  const error = await pools.acquire(1025, 10).then(() => undefined, (err: Error) => err)
  assert.match(String(error?.message), /in use/)
  assert.throws(() => pools.acquire(8193), /no slab is that large/)
})

test.run()
