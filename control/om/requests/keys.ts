/** @module The key lookups the OM's requests and reads share. */
import { O3Error } from '../../../core/errors.ts'
import type { KeyInfo } from '../../../core/om-wire.ts'
import { bucketOf, keyPath, type OmTables } from '../tables.ts'

/** The committed key, KEY_NOT_FOUND (or the volume's or bucket's error when those are missing). */
export function keyOf(t: OmTables, k: { volume: string; bucket: string; name: string }): KeyInfo {
  const key = t.keys.get(keyPath(k.volume, k.bucket, k.name))
  if (key === undefined) {
    bucketOf(t, k.volume, k.bucket)
    throw new O3Error('KEY_NOT_FOUND', `Key ${k.volume}/${k.bucket}/${k.name} not found`)
  }
  return key
}
