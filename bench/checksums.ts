/** @module
 * Checksum throughput: each algorithm O3 offers, over 16 KiB windows (Ozone's
 * bytes-per-checksum) of a 4 MiB buffer (one chunk), through core/checksum.ts, the code the
 * client and the datanode run. This is the measurement behind the default
 * 'client.checksumType'.
 */
import { checksumsLengthBytes, computeChecksums, initChecksums } from '../core/checksum.ts'
import type { ChecksumType } from '../core/wire.ts'
import { MB } from './measure.ts'

export const CHECKSUM_TYPES = ['CRC32C', 'XXH64', 'BLAKE3'] as const satisfies readonly ChecksumType[]
const BYTES_PER_CHECKSUM = 16 * 1024

export interface ChecksumResult {
  type: ChecksumType
  mbPerSec: number
}

/**
 * Hashes `data` (borrowed) for about `durationMs` per algorithm, in interleaved rounds so that
 * a noisy neighbour on this shared machine slows them all alike, after a warm-up pass each.
 */
export async function measureChecksums(data: Uint8Array, durationMs: number): Promise<ChecksumResult[]> {
  await initChecksums()
  const rounds = 3
  const sums = CHECKSUM_TYPES.map((type) => new Uint8Array(checksumsLengthBytes(type, data.length, BYTES_PER_CHECKSUM)))
  const bytes = CHECKSUM_TYPES.map(() => 0)
  const seconds = CHECKSUM_TYPES.map(() => 0)
  CHECKSUM_TYPES.forEach((type, t) => computeChecksums(type, data, BYTES_PER_CHECKSUM, sums[t]))
  for (let round = 0; round < rounds; round++) {
    CHECKSUM_TYPES.forEach((type, t) => {
      const started = performance.now()
      let elapsedMs = 0
      while (elapsedMs < durationMs / rounds) {
        computeChecksums(type, data, BYTES_PER_CHECKSUM, sums[t])
        bytes[t] += data.length
        elapsedMs = performance.now() - started
      }
      seconds[t] += elapsedMs / 1000
    })
  }
  return CHECKSUM_TYPES.map((type, t) => ({ type, mbPerSec: bytes[t] / MB / seconds[t] }))
}
