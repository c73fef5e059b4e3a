/**
 * Goal: the container scanner's pacing holds its promises without a wall clock: a reader that
 * takes chunks as fast as it may never gets ahead of bytesPerSec (plus one period's budget),
 * yet is not held far below it; a reader back from idle gets no burst; a chunk larger than a
 * period's budget waits the periods it owes; a pass shorter than the interval waits the rest.
 * Method: throttleStep and passDelayMs are pure; a virtual clock advances by each read's
 * (seeded random) duration and by each wait the throttle asks for.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { AssertionError } from '../../../core/assert.ts'
import { passDelayMs, SCAN_THROTTLE_PERIOD_MS, startThrottle, throttleStep } from '../../../datapath/datanode/scan-throttle.ts'

const MiB = 1024 * 1024
const RATE = 5 * MiB
const PER_PERIOD = (RATE * SCAN_THROTTLE_PERIOD_MS) / 1000

/** A seeded PRNG (mulberry32), so a failure replays. */
function prng(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Reads `chunks` chunks of random sizes back to back from `t0`, obeying every wait; checks the bound before each read. */
function readFlatOut(seed: number, chunks: number, chunkMaxBytes: number): { bytes: number; elapsedMs: number } {
  const random = prng(seed)
  const t0 = 1_000_000
  let now = t0
  let state = startThrottle(now, RATE)
  let bytes = 0
  for (let i = 0; i < chunks; i++) {
    // Before reading chunk i, what was read must fit the budget of the time gone by.
    assert.ok(bytes <= PER_PERIOD * (1 + (now - t0) / SCAN_THROTTLE_PERIOD_MS), `seed ${seed}: ${bytes} bytes read by ${now - t0} ms exceeds the budget`)
    const size = 1 + Math.floor(random() * chunkMaxBytes)
    now += Math.floor(random() * 20) // the read itself takes 0-19 ms
    bytes += size
    const step = throttleStep(state, size, now, RATE)
    assert.ok(step.waitMs >= 0, 'never a negative wait')
    state = step.state
    now += step.waitMs
  }
  return { bytes, elapsedMs: now - t0 }
}

// Catches: a throttle that lets a scanner read faster than bytesPerSec (starving client I/O).
test('throttleStep() keeps a reader at flat out within bytesPerSec plus one period', () => {
  for (const seed of [1, 2, 3, 42]) {
    for (const chunkMax of [4 * 1024, 1 * MiB, 4 * MiB, 16 * MiB]) readFlatOut(seed, 2000, chunkMax)
  }
})

// Catches: a throttle that waits too long (a pass would take far more than its bytes need).
test('throttleStep() lets a reader at flat out reach most of bytesPerSec', () => {
  for (const seed of [5, 6]) {
    const { bytes, elapsedMs } = readFlatOut(seed, 2000, 4 * MiB)
    const rate = (bytes * 1000) / elapsedMs
    assert.ok(rate >= 0.9 * RATE, `seed ${seed}: ${Math.round(rate)} B/s is below 90% of ${RATE}`)
    assert.ok(rate <= 1.01 * RATE, `seed ${seed}: ${Math.round(rate)} B/s is above ${RATE}`)
  }
})

// Catches: a reserve that keeps growing while idle, so a scanner back from a pause bursts.
test('throttleStep() gives a reader back from idle one period\'s budget, no more', () => {
  let state = startThrottle(0, RATE)
  state = throttleStep(state, PER_PERIOD, 10, RATE).state
  const now = 60_000 // a minute of idle
  let taken = 0
  for (;;) {
    const step = throttleStep(state, 64 * 1024, now, RATE)
    state = step.state
    taken += 64 * 1024
    if (step.waitMs > 0) break
  }
  assert.ok(taken <= PER_PERIOD + 64 * 1024, `${taken} bytes without a wait after idle`)
})

// Catches: a chunk above a period's budget that waits one period only (the rate then follows the chunk size).
test('throttleStep() makes a chunk larger than a period\'s budget wait the periods it owes', () => {
  const state = startThrottle(0, RATE)
  const step = throttleStep(state, 4 * PER_PERIOD, 0, RATE)
  assert.is(step.waitMs, 3 * SCAN_THROTTLE_PERIOD_MS)
  assert.is(step.state.reserveBytes, 0)
  const next = throttleStep(step.state, 1, step.waitMs, RATE)
  assert.ok(next.waitMs > 0, 'the debt is paid; the next byte waits for a new period')
})

test('throttleStep() and startThrottle() refuse a rate of zero', () => {
  assert.throws(() => startThrottle(0, 0), (e: unknown) => e instanceof AssertionError)
  assert.throws(() => throttleStep(startThrottle(0, 1), 1, 0, 0), (e: unknown) => e instanceof AssertionError)
})

test('passDelayMs() makes a pass last its interval at least', () => {
  assert.is(passDelayMs(1000, 1300, 1000), 700)
  assert.is(passDelayMs(1000, 2000, 1000), 0)
  assert.is(passDelayMs(1000, 9000, 1000), 0, 'a pass longer than the interval starts the next at once')
})

test.run()
