/**
 * Goal: what the CLI prints for people is right and lines up: sizes in the largest unit up to
 * PiB (formatBytes).
 * Method: the pure formatters called directly; no cluster.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { formatBytes } from '../../cli/output.ts'

test('formatBytes() uses B, KiB ... PiB, one decimal past bytes', () => {
  const cases: [number, string][] = [
    [0, '0 B'], [1023, '1023 B'], [1024, '1.0 KiB'], [100_000, '97.7 KiB'], [1024 ** 3, '1.0 GiB'],
    [1024 ** 4, '1.0 TiB'], [1024 ** 5, '1.0 PiB'], [Number.MAX_SAFE_INTEGER, '8.0 PiB'], [2048 * 1024 ** 5, '2048.0 PiB'],
  ]
  for (const [bytes, text] of cases) assert.is(formatBytes(bytes), text, String(bytes))
})

test.run()
