/** Goal: under Deno on glibc, trimMallocHeap() gives back the memory of freed payload buffers
 *  that glibc keeps resident in its heap (what held most of `o3 local`'s steady RSS under Deno),
 *  and under Node it does nothing. Method: under Deno (`deno task test:malloc-trim`), raise
 *  glibc's mmap threshold as payload traffic does (free one large mmapped buffer), fill 32
 *  buffers of 4 MiB from the heap and one kept above them, drop and collect the 32, then
 *  compare the process's anonymous RSS before and after one trim. Under Node: false. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readFileSync } from 'node:fs'
import { collectGarbage } from '../../../datapath/workers/idle.ts'
import { trimMallocHeap } from '../../../datapath/workers/malloc-trim.ts'

const MiB = 1024 * 1024
const isDeno = 'Deno' in globalThis

function rssAnonBytes(): number {
  return Number(/^RssAnon:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

test('trimMallocHeap() does nothing where the runtime has no FFI (Node)', () => {
  if (isDeno) return
  assert.is(trimMallocHeap(), false)
})

test('trimMallocHeap() returns the pages of freed buffers held in glibc\'s heap (Deno, Linux)', async () => {
  if (!isDeno || process.platform !== 'linux') return
  assert.ok(collectGarbage(), 'the test needs V8\'s gc')
  // A freed mmapped chunk raises glibc's mmap threshold to its size: later 4 MiB buffers come
  // from the heap, as they do once `o3 local` has moved a few large objects.
  let raise: ArrayBuffer | null = new ArrayBuffer(8 * MiB)
  new Uint8Array(raise).fill(1)
  raise = null
  collectGarbage()
  await sleep(200)
  let buffers: Uint8Array[] | null = Array.from({ length: 32 }, () => new Uint8Array(4 * MiB).fill(7))
  const kept = new Uint8Array(4 * MiB).fill(9) // above them: glibc cannot shrink the heap's top
  buffers = null
  collectGarbage()
  // V8 frees dead buffers' memory on a background thread, later under load: trim until the
  // pages given back add up (each trim gives back only what glibc holds free by then).
  let releasedBytes = 0
  let seen = ''
  for (let attempt = 0; attempt < 10 && releasedBytes <= 64 * MiB; attempt++) {
    await sleep(500)
    const beforeBytes = rssAnonBytes()
    assert.ok(trimMallocHeap(), 'malloc_trim runs under Deno -A on glibc')
    const afterBytes = rssAnonBytes()
    releasedBytes += Math.max(0, beforeBytes - afterBytes)
    seen += ` ${(beforeBytes / MiB).toFixed(0)}->${(afterBytes / MiB).toFixed(0)}`
  }
  assert.ok(releasedBytes > 64 * MiB, `anonymous RSS (MiB) before and after each trim:${seen}`)
  assert.is(kept[kept.length - 1], 9, 'live buffers are untouched')
})

test.run()
