/** @module
 * Streaming digests in a worker (S3 ETag MD5, x-amz-checksum-* CRC32/CRC32C/SHA-1/SHA-256):
 * each task resumes the hashers from their saved states, feeds one piece of data, and hands
 * the states back, so a body of any size is hashed piece by piece on whichever worker is free.
 * Uses hash-wasm, whose hashers can save and load their state. Runs only in workers.
 */
import { createCRC32, createMD5, createSHA1, createSHA256, type IHasher } from 'hash-wasm'
import { movedBack, type TaskResult } from './tasks.ts'

export type DigestName = 'md5' | 'crc32' | 'crc32c' | 'sha1' | 'sha256'

export interface DigestTask {
  /** Saved state per digest; null starts it afresh. */
  states: Partial<Record<DigestName, Uint8Array | null>>
  /** A piece of the data, transferred in and moved back. An ArrayBuffer, not a view of one:
   *  Deno 2.9 copies a view's bytes into the message even when its buffer is transferred. */
  data: ArrayBuffer
  /** Also return the final digests. */
  finish: boolean
}

export type DigestResult = TaskResult<{ states: Partial<Record<DigestName, Uint8Array>>; digests: Partial<Record<DigestName, Uint8Array>> }>

/** CRC-32C (Castagnoli), reflected polynomial. */
const CRC32C_POLYNOMIAL = 0x82f63b78

const hashers: Record<DigestName, Promise<IHasher>> = {
  md5: createMD5(),
  crc32: createCRC32(),
  crc32c: createCRC32(CRC32C_POLYNOMIAL),
  sha1: createSHA1(),
  sha256: createSHA256(),
}

export async function digest(task: DigestTask): Promise<DigestResult> {
  return movedBack(await update(task), task.data)
}

async function update(task: DigestTask): Promise<DigestResult> {
  const states: Partial<Record<DigestName, Uint8Array>> = {}
  const digests: Partial<Record<DigestName, Uint8Array>> = {}
  for (const [name, state] of Object.entries(task.states) as [DigestName, Uint8Array | null][]) {
    const h = await hashers[name]
    if (state === null) h.init()
    else h.load(state)
    h.update(new Uint8Array(task.data))
    states[name] = h.save()
    if (task.finish) digests[name] = h.digest('binary')
  }
  return { ok: true, states, digests }
}
