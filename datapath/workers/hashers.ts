/** @module
 * The running digests of one body (S3 ETag MD5, a signed payload's SHA-256, x-amz-checksum-*
 * CRC32/CRC32C/CRC64NVME/SHA-1/SHA-256) in the thread that feeds them: MD5 and the SHAs are
 * node:crypto's (OpenSSL's assembly), CRC32 and CRC32C @node-rs/crc32's, CRC-64/NVME hash-wasm's.
 */
import { createHash, type Hash } from 'node:crypto'
import { crc32, crc32c } from '@node-rs/crc32'
import { createCRC64, type IHasher } from 'hash-wasm'
import { assert } from '../../core/assert.ts'

export type DigestName = 'md5' | 'crc32' | 'crc32c' | 'crc64nvme' | 'sha1' | 'sha256'

/**
 * CRC-64/NVME (S3's CRC64NVME), reflected polynomial, in hash-wasm's hex form. hash-wasm's
 * CRC-64 (WASM) hashed 16 MiB at about 1.3 GB/s where @aws-sdk/crc64-nvme's JavaScript did
 * 0.5 GB/s on this machine.
 */
const CRC64NVME_POLYNOMIAL = '9a6c9329ac4bc9b5'

/** One CRC-64/NVME hasher per thread, loaded on first use; each body keeps its own saved state. */
let crc64Hasher: Promise<IHasher> | undefined

export class Hashers {
  private readonly hashes: Partial<Record<'md5' | 'sha1' | 'sha256', Hash>> = {}
  private readonly crcs: Partial<Record<'crc32' | 'crc32c', number>> = {}
  /** CRC-64/NVME's saved state (null: nothing hashed yet), with the thread's hasher. */
  private crc64: { hasher: IHasher; state: Uint8Array | null } | undefined

  /** Hashers of `names`; CRC-64/NVME needs its WASM hasher loaded first (create()). */
  constructor(readonly names: DigestName[], crc64?: IHasher) {
    assert(names.length > 0, 'hashers of no digest')
    for (const n of names) {
      if (n === 'crc32' || n === 'crc32c') this.crcs[n] = 0
      else if (n === 'crc64nvme') {
        assert(crc64 !== undefined, 'CRC-64/NVME without its hasher: use Hashers.create')
        this.crc64 = { hasher: crc64, state: null }
      } else this.hashes[n] = createHash(n)
    }
  }

  /** Hashers of any of the names, CRC-64/NVME included. */
  static async create(names: DigestName[]): Promise<Hashers> {
    if (!names.includes('crc64nvme')) return new Hashers(names)
    crc64Hasher ??= createCRC64(CRC64NVME_POLYNOMIAL)
    return new Hashers(names, await crc64Hasher)
  }

  /** Feeds the next bytes; reads them before it returns and keeps no reference. */
  update(bytes: Uint8Array): void {
    for (const h of Object.values(this.hashes)) h.update(bytes)
    if (this.crcs.crc32 !== undefined) this.crcs.crc32 = crc32(bytes, this.crcs.crc32)
    if (this.crcs.crc32c !== undefined) this.crcs.crc32c = crc32c(bytes, this.crcs.crc32c)
    if (this.crc64 !== undefined) {
      const { hasher } = this.crc64
      if (this.crc64.state === null) hasher.init()
      else hasher.load(this.crc64.state)
      hasher.update(bytes)
      this.crc64.state = hasher.save()
    }
  }

  /** The digests of everything fed, as S3 sends them before base64 (a CRC big-endian). Ends the hashers. */
  digest(): Partial<Record<DigestName, Buffer>> {
    const out: Partial<Record<DigestName, Buffer>> = {}
    for (const [name, h] of Object.entries(this.hashes)) out[name as DigestName] = h.digest()
    for (const [name, crc] of Object.entries(this.crcs)) {
      const b = Buffer.allocUnsafe(4)
      b.writeUInt32BE(crc >>> 0)
      out[name as DigestName] = b
    }
    if (this.crc64 !== undefined) {
      const { hasher, state } = this.crc64
      if (state === null) hasher.init()
      else hasher.load(state)
      out.crc64nvme = Buffer.from(hasher.digest('binary'))
    }
    return out
  }
}
