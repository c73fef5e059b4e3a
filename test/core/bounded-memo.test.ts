/**
 * Goal: BoundedMemo (core/bounded-memo.ts) makes a value once per key, keeps at most its
 * bound, drops the one made longest ago first, and keeps nothing when making throws.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { BoundedMemo } from '../../core/bounded-memo.ts'

test('a value is made once per key; past the bound the oldest made is made again', () => {
  const memo = new BoundedMemo<string, number>(2)
  const made: string[] = []
  const get = (k: string) => memo.get(k, () => { made.push(k); return made.length })
  assert.is(get('a'), 1)
  assert.is(get('a'), 1)
  assert.is(get('b'), 2)
  assert.is(get('c'), 3) // drops a
  assert.is(get('b'), 2)
  assert.is(get('a'), 4) // made again, drops b
  assert.equal(made, ['a', 'b', 'c', 'a'])
})

test('a make that throws keeps nothing', () => {
  const memo = new BoundedMemo<string, number>(2)
  assert.throws(() => memo.get('k', () => { throw new RangeError('no') }), RangeError)
  assert.is(memo.get('k', () => 7), 7)
})

test.run()
