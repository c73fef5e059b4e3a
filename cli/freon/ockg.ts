/** @module
 * `o3 freon ockg` (Ozone's OzoneClientKeyGenerator): writes -n keys of -s bytes named
 * PREFIX/0 … PREFIX/n-1 into -v/-b through the native client, from -t concurrent writers,
 * creating the volume and bucket if missing. Every key is views of one pattern (payload.ts),
 * lent to the writer without a copy; a key counts only once the OM has committed it at its
 * full size.
 */
import { O3Error } from '../../core/errors.ts'
import { clientSecurity } from '../client-security.ts'
import { O3Client } from '../../datapath/client/index.ts'
import { option, stringOption, UsageError, type Invocation } from '../args.ts'
import { parseReplication } from '../../core/wire.ts'
import { patternFor, payloadParts } from './payload.ts'
import { freonOptions, keyName, report, runOps, summarize } from './runner.ts'

/** Ozone's -s default: 10 KiB. */
const SIZE_BYTES_DEFAULT = 10_240

/** Creates what is missing; another writer creating it at the same time is no failure. */
async function ensureVolumeAndBucket(client: O3Client, volume: string, bucket: string, replication: string | undefined): Promise<void> {
  const missing = (code: string) => (err: unknown) => { if (!(err instanceof O3Error && err.code === code)) throw err; return undefined }
  const exists = (code: string) => (err: unknown) => { if (!(err instanceof O3Error && err.code === code)) throw err }
  if (await client.getVolume(volume).catch(missing('VOLUME_NOT_FOUND')) === undefined) {
    await client.createVolume(volume, { owner: process.env.USER ?? 'o3' }).catch(exists('VOLUME_ALREADY_EXISTS'))
  }
  if (await client.getBucket(volume, bucket).catch(missing('BUCKET_NOT_FOUND')) === undefined) {
    await client.createBucket(volume, bucket, { replication, owner: process.env.USER ?? 'o3' }).catch(exists('BUCKET_ALREADY_EXISTS'))
  }
}

export async function run(inv: Invocation): Promise<void> {
  const o = freonOptions(inv)
  const sizeBytes = o.sizeBytes ?? SIZE_BYTES_DEFAULT
  const volume = option(inv, 'volume'), bucket = option(inv, 'bucket')
  const replication = stringOption(inv, 'replication')
  // Refused before the run, not as each of its operations fails.
  if (replication !== undefined) {
    try { parseReplication(replication) } catch (err) { throw new UsageError(`--replication ${replication}: ${(err as Error).message}`) }
  }
  const client = new O3Client({ om: option(inv, 'om'), scm: option(inv, 'scm'), ...clientSecurity() })
  await ensureVolumeAndBucket(client, volume, bucket, replication)
  const pat = patternFor(sizeBytes)
  const outcome = await runOps({
    label: 'ockg', freon: o, what: `writing keys of ${sizeBytes} bytes to /${volume}/${bucket}`,
    async op(i, signal) {
      const key = keyName(o.prefix, i)
      const w = await client.openKeyWriter(volume, bucket, key, { replication, sizeBytes })
      try {
        // Borrowed: the pattern is never changed, so whole chunks go out without a copy.
        for (const part of payloadParts(pat, sizeBytes)) {
          signal.throwIfAborted()
          await w.write(part, true)
        }
      } catch (err) {
        await w.abort()
        throw err
      }
      const k = await w.close()
      if (k.size !== sizeBytes) throw new Error(`Cannot write /${volume}/${bucket}/${key}: committed ${k.size} of ${sizeBytes} bytes`)
      return sizeBytes
    },
  })
  report(summarize('ockg', { ...o, sizeBytes }, outcome, { volume, bucket, replication: replication ?? null }), o.json)
}
