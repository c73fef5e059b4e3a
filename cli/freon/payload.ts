/** @module
 * What `o3 freon` writes and checks: every key's bytes are a fixed pseudo-random stream, made
 * once per run as one pattern of min(size, FREON_PATTERN_BYTES) bytes and repeated (Ozone's
 * ContentGenerator repeats one buffer too). Writers send views of that pattern, never a
 * per-operation copy; readers compare what arrives with the same pattern at the same offset,
 * so a reader needs only the key's length to know its content. Also the size parser of -s.
 * Pure: no I/O, no clock, no Math.random (the stream is seeded).
 */
import { assert } from '../../core/assert.ts'
import { FREON_PATTERN_BYTES, FREON_SIZE_BYTES_MAX } from '../../core/limits.ts'
import { UsageError } from '../args.ts'

const UNITS: Record<string, number> = {
  '': 1, b: 1,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
}

/** `-s`: bytes, or a whole number with a unit: KB, MB, GB, TB (powers of 1000) or KiB, MiB,
 *  GiB, TiB (powers of 1024), in any case. Throws UsageError. */
export function parseSize(text: string): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(text.trim())
  const unit = m === null ? undefined : UNITS[m[2].toLowerCase()]
  if (m === null || unit === undefined) throw new UsageError(`--size must be bytes or a number with KB, MB, GB, KiB, MiB or GiB, not ${JSON.stringify(text)}`)
  const bytes = Number(m[1]) * unit
  if (!Number.isSafeInteger(bytes) || bytes > FREON_SIZE_BYTES_MAX) throw new UsageError(`--size ${text} is over the largest key, ${FREON_SIZE_BYTES_MAX} bytes`)
  return bytes
}

/**
 * The first `lengthBytes` (at most FREON_PATTERN_BYTES) of the fixed stream: xorshift32 from a
 * constant seed, one 32-bit word at a time in the machine's byte order (little-endian on every
 * platform Node runs on), so `o3 freon ockr` on another machine checks what ockg wrote.
 */
export function pattern(lengthBytes: number): Uint8Array {
  assert(Number.isSafeInteger(lengthBytes) && lengthBytes >= 0, 'pattern length must be a whole number')
  assert(lengthBytes <= FREON_PATTERN_BYTES, 'pattern longer than FREON_PATTERN_BYTES')
  const words = new Uint32Array(Math.ceil(lengthBytes / 4))
  let x = 0x9e3779b9
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    words[i] = x
  }
  return new Uint8Array(words.buffer, 0, lengthBytes)
}

/** The pattern a key of `sizeBytes` repeats. */
export function patternFor(sizeBytes: number): Uint8Array {
  return pattern(Math.min(sizeBytes, FREON_PATTERN_BYTES))
}

/** The payload of a key of `sizeBytes` as views of `pat` (borrowed: the caller must not
 *  change them); each but the last is the whole pattern. */
export function* payloadParts(pat: Uint8Array, sizeBytes: number): Generator<Uint8Array> {
  assert(sizeBytes === 0 || pat.length > 0, 'empty pattern for a non-empty payload')
  for (let at = 0; at < sizeBytes; at += pat.length) yield pat.subarray(0, Math.min(pat.length, sizeBytes - at))
}

/** Whether `part`, read at `offsetBytes` of a key, holds the stream's bytes there. `pat` must
 *  be the whole pattern (FREON_PATTERN_BYTES) or at least as long as the key. */
export function matchesPattern(pat: Uint8Array, offsetBytes: number, part: Uint8Array): boolean {
  let at = 0
  while (at < part.length) {
    const p = (offsetBytes + at) % pat.length
    const n = Math.min(pat.length - p, part.length - at)
    if (Buffer.compare(part.subarray(at, at + n), pat.subarray(p, p + n)) !== 0) return false
    at += n
  }
  return true
}

/**
 * Checks a key read piece by piece against the stream: call `update` with each piece in order
 * and `end` after the last. Throws an Error naming the key and the first offset that differs,
 * or the length it had.
 */
export class PayloadCheck {
  private offsetBytes = 0

  constructor(private readonly pat: Uint8Array, private readonly sizeBytes: number, private readonly what: string) {
    assert(sizeBytes <= pat.length || pat.length === FREON_PATTERN_BYTES, 'pattern too short for the key')
  }

  update(part: Uint8Array): void {
    if (this.offsetBytes + part.length > this.sizeBytes) throw new Error(`Cannot verify ${this.what}: more than its ${this.sizeBytes} bytes came back`)
    if (!matchesPattern(this.pat, this.offsetBytes, part)) throw new Error(`Cannot verify ${this.what}: wrong bytes within ${this.offsetBytes}..${this.offsetBytes + part.length}`)
    this.offsetBytes += part.length
  }

  end(): void {
    if (this.offsetBytes !== this.sizeBytes) throw new Error(`Cannot verify ${this.what}: ${this.offsetBytes} of its ${this.sizeBytes} bytes came back`)
  }
}
