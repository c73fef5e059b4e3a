/**
 * Goal: combineCrcs gives the CRC of a concatenation from the pieces' CRCs and lengths, for
 * CRC-32, CRC-32C and CRC-64/NVME (S3's FULL_OBJECT multipart checksums), and is cheap enough
 * for 10,000 parts. Method: pieces of assorted lengths (empty, odd, multi-MiB) hashed whole and
 * one by one with hash-wasm (the digests the worker pool computes), compared.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createCRC32, createCRC64, type IHasher } from 'hash-wasm'
import { CRC32, CRC32C, CRC64NVME, combineCrcs, crcFromBytes, crcToBytes, type CrcSpec } from '../../../datapath/s3/crc-combine.ts'
import { randomBytes } from '../../cluster/mini-cluster.ts'

const hashers: [string, CrcSpec, () => Promise<IHasher>][] = [
  ['CRC32', CRC32, () => createCRC32()],
  ['CRC32C', CRC32C, () => createCRC32(0x82f63b78)],
  ['CRC64NVME', CRC64NVME, () => createCRC64('9a6c9329ac4bc9b5')],
]

for (const [name, spec, make] of hashers) {
  test(`combineCrcs() gives the ${name} of the concatenation`, async () => {
    const h = await make()
    const crc = (b: Uint8Array) => { h.init(); h.update(b); return crcFromBytes(spec, h.digest('binary')) }
    const pieces = [randomBytes(1000, 1), new Uint8Array(0), randomBytes(5 * 1024 * 1024, 2), randomBytes(5 * 1024 * 1024, 3), randomBytes(7, 4), randomBytes(1, 5)]
    const whole = crc(Buffer.concat(pieces))
    assert.is(combineCrcs(spec, pieces.map((p) => [crc(p), p.length] as const)), whole)
    // One piece is itself; none is the CRC of nothing.
    assert.is(combineCrcs(spec, [[crc(pieces[0]), pieces[0].length]]), crc(pieces[0]))
    assert.is(combineCrcs(spec, []), crc(new Uint8Array(0)))
    assert.is(crcFromBytes(spec, crcToBytes(spec, whole)), whole)
  })
}

test('combineCrcs() of 10,000 parts equals combining its two halves (a FULL_OBJECT upload of the most parts S3 allows)', () => {
  const parts = Array.from({ length: 10_000 }, (_, i) => [BigInt(i) * 0x9e3779b97f4a7c15n & 0xffffffffffffffffn, i === 9999 ? 1234 : 5 * 1024 * 1024] as const)
  const whole = combineCrcs(CRC64NVME, parts)
  const lengthOf = (ps: typeof parts) => ps.reduce((s, p) => s + p[1], 0)
  const [a, b] = [parts.slice(0, 3333), parts.slice(3333)]
  assert.is(combineCrcs(CRC64NVME, [[combineCrcs(CRC64NVME, a), lengthOf(a)], [combineCrcs(CRC64NVME, b), lengthOf(b)]]), whole)
})

test.run()
