/**
 * Goal: the bench's warm-up runs rounds until a server stops getting faster, and no longer
 * than its cap: a server still speeding up is never called settled, a steady one is after
 * two rounds in a row no faster than its best, and every op gets its own index.
 * Method: warmUpSettled on rate sequences (pure); warmUntilSettled through its real clock
 * with a cap equal to the fewest rounds a settled server needs, so that its round count does
 * not depend on the machine's timing.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { warmUntilSettled, warmUpSettled } from '../../bench/measure.ts'

test('a server is settled after two rounds in a row no more than 5 % faster than its best before', () => {
  assert.not.ok(warmUpSettled([]), 'no rounds')
  assert.not.ok(warmUpSettled([100, 100]), 'a first round and one more')
  assert.ok(warmUpSettled([100, 104, 103]), 'two rounds within 5 % of the best')
  assert.not.ok(warmUpSettled([100, 200, 400, 800]), 'each round twice the one before')
  assert.not.ok(warmUpSettled([100, 120, 119, 130, 128]), 'a faster round starts the count again')
  assert.ok(warmUpSettled([100, 120, 119, 130, 128, 127]), 'two in a row after the last faster round')
  assert.ok(warmUpSettled([100, 60, 50]), 'slower rounds are not faster')
})

test('warmUntilSettled stops at its cap, and gives every op its own index', async () => {
  const seen: number[] = []
  const rates = await warmUntilSettled({ roundOps: 4, roundsMax: 3 }, 2, async (i) => {
    seen.push(i)
    await new Promise<void>((r) => setTimeout(r, 2))
  })
  assert.is(rates.length, 3, `a settled server needs three rounds, the cap is three (${rates.join(', ')})`)
  assert.ok(rates.every((r) => r > 0), 'each round has a rate')
  assert.equal([...seen].sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i), 'indexes 0..11, each once')
})

test('warmUntilSettled fails with the first op that fails', async () => {
  let calls = 0
  try {
    await warmUntilSettled({ roundOps: 4, roundsMax: 3 }, 1, async () => { if (++calls === 2) throw new Error('refused') })
    assert.unreachable('a failed op fails the warm-up')
  } catch (err) {
    assert.is((err as Error).message, 'refused')
  }
})

test.run()
