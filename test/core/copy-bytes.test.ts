/** Goal: copyBytes puts exactly the source's bytes at the offset, into shared and unshared
 * memory alike (Buffers and plain views), and refuses a copy that does not fit.
 * Method: random bytes copied into SharedArrayBuffer and ArrayBuffer views, compared byte for byte. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomFillSync } from 'node:crypto'
import { copyBytes } from '../../core/copy-bytes.ts'

const targets = (size: number) => [
  ['a view of a SharedArrayBuffer', new Uint8Array(new SharedArrayBuffer(size + 8), 8, size)],
  ['a Buffer over a SharedArrayBuffer', Buffer.from(new SharedArrayBuffer(size))],
  ['a view of an ArrayBuffer', new Uint8Array(size)],
  ['a Buffer', Buffer.alloc(size)],
] as const

test('copies the source exactly at the offset and leaves the rest alone', () => {
  for (const [what, target] of targets(1 << 20)) {
    target.fill(0xAB)
    const source = randomFillSync(new Uint8Array(300_001))
    copyBytes(target, 4097, source)
    assert.equal(Buffer.from(target.subarray(4097, 4097 + source.length)).equals(source), true, what)
    assert.is(target[4096], 0xAB, what)
    assert.is(target[4097 + source.length], 0xAB, what)
    copyBytes(target, target.length - 3, source.subarray(0, 3))
    assert.equal([...target.subarray(target.length - 3)], [...source.subarray(0, 3)], what)
  }
})

test('a source from a shared slab copies too, and an empty one changes nothing', () => {
  const from = new Uint8Array(new SharedArrayBuffer(64))
  randomFillSync(from)
  for (const [what, target] of targets(128)) {
    target.fill(1)
    copyBytes(target, 10, from)
    assert.equal([...target.subarray(10, 74)], [...from], what)
    copyBytes(target, 128, new Uint8Array(0))
    assert.is(target[127], 1, what)
  }
})

test('overlapping ranges of one shared slab copy as memmove does', () => {
  const slab = new Uint8Array(new SharedArrayBuffer(64))
  for (let i = 0; i < 64; i++) slab[i] = i
  copyBytes(slab, 8, slab.subarray(0, 32))
  assert.equal([...slab.subarray(8, 40)], Array.from({ length: 32 }, (_, i) => i))
})

test('a copy past the end of the target is refused', () => {
  for (const [what, target] of targets(16)) {
    assert.throws(() => copyBytes(target, 10, new Uint8Array(7)), /fits/, what)
    assert.throws(() => copyBytes(target, -1, new Uint8Array(1)), /fits/, what)
  }
})

test.run()
