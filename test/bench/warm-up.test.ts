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

test('a server is settled after two rounds in a row, each no more than 5 % faster than the best round before it', () => {
  assert.not.ok(warmUpSettled([]), 'no rounds')
  assert.not.ok(warmUpSettled([100, 100]), 'a first round and one more')
  assert.ok(warmUpSettled([100, 104, 103]), 'two rounds within 5 % of the best')
  assert.not.ok(warmUpSettled([100, 200, 400, 800]), 'each round twice the one before')
  assert.not.ok(warmUpSettled([100, 120, 119, 130, 128]), 'a faster round starts the count again')
  assert.ok(warmUpSettled([100, 120, 119, 130, 128, 127]), 'two in a row after the last faster round')
  assert.ok(warmUpSettled([100, 60, 50]), 'slower rounds are not faster')
  // Against the best round so far, not the one just before: a dip does not make the next round faster.
  assert.ok(warmUpSettled([100, 50, 100]), 'back to the best is not faster than it')
  // The margin is 5 %: 6 % faster is faster, 5 % is not.
  assert.not.ok(warmUpSettled([100, 106, 100]), '6 % faster than the best starts the count again')
  assert.ok(warmUpSettled([100, 105, 100]), '5 % faster is within the margin')
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

test('warmUntilSettled runs no more rounds than its cap for a server that keeps getting faster', async () => {
  // Each round's ops take half as long as the last round's: every round is about twice as fast.
  let round = 0
  let delayMs = 64
  const rates = await warmUntilSettled({ roundOps: 2, roundsMax: 5 }, 1, async (i) => {
    const r = Math.floor(i / 2)
    if (r !== round) { round = r; delayMs /= 2 }
    await new Promise<void>((resolve) => setTimeout(resolve, delayMs))
  })
  assert.is(rates.length, 5, `never settled, so the cap of five ends it (${rates.map((x) => x.toFixed(0)).join(', ')})`)
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
