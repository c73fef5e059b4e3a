/** @module
 * The digests of a small body (S3 ETag MD5, SHA-256 of a signed payload, x-amz-checksum-*
 * CRC32/CRC32C/SHA-1/SHA-256) computed on the main thread as the pieces arrive, for bodies of
 * at most DIGEST_INLINE_BYTES_MAX: below that, handing the bytes to another thread costs the
 * main thread more than hashing them (bench/digest-inline.ts measures both). Larger bodies go
 * to StreamDigest, on a digest lane. `bodyDigest` picks one by the declared length.
 * CRC-64/NVME has no native hasher here, only a WASM one: it always runs on a lane.
 */
import { assert } from '../../core/assert.ts'
import { DIGEST_INLINE_BYTES_MAX } from '../../core/limits.ts'
import type { DigestName } from '../workers/index.ts'
import { Hashers } from '../workers/hashers.ts'
import { StreamDigest } from './digests.ts'

/** What payload.ts needs of a digest: StreamDigest's methods. */
export interface BodyDigest {
  update(bytes: Uint8Array): Promise<void>
  finish(): Promise<Partial<Record<DigestName, Buffer>>>
  /** The body failed: the digest is given up. */
  drop(): void
}

/**
 * Hashes at most DIGEST_INLINE_BYTES_MAX bytes on the calling thread. update() reads the
 * bytes before it returns and keeps no reference to them.
 */
export class InlineDigest implements BodyDigest {
  private readonly hashers: Hashers
  private hashedBytes = 0

  /** `bytesMax`: the most it will hash (a benchmark measures past the limit). */
  constructor(names: DigestName[], private readonly bytesMax = DIGEST_INLINE_BYTES_MAX) {
    // Hashers refuses CRC-64/NVME without its WASM hasher: bodyDigest sends it to a lane.
    this.hashers = new Hashers(names)
  }

  async update(bytes: Uint8Array): Promise<void> {
    this.hashedBytes += bytes.length
    assert(this.hashedBytes <= this.bytesMax, 'inline digest past its limit')
    this.hashers.update(bytes)
  }

  async finish(): Promise<Partial<Record<DigestName, Buffer>>> {
    return this.hashers.digest()
  }

  drop(): void {}
}

/** The digest for a body of `sizeBytes` (its declared length): inline when small, else on a digest lane. */
export function bodyDigest(names: DigestName[], sizeBytes: number): BodyDigest {
  return sizeBytes <= DIGEST_INLINE_BYTES_MAX && !names.includes('crc64nvme') ? new InlineDigest(names) : new StreamDigest(names)
}
