/** @module
 * `o3 freon ockr` (reads what ockg wrote, as Ozone's ockv validates it): reads PREFIX/0 …
 * PREFIX/n-1 of -v/-b through the native client from -t concurrent readers and checks every
 * byte against the pattern ockg wrote (payload.ts), as it arrives: a short, long or wrong read
 * is a failure, never a fast success. With -s, every key must also have that size.
 */
import { FREON_PATTERN_BYTES } from '../../core/limits.ts'
import { clientSecurity } from '../client-security.ts'
import { O3Client } from '../../datapath/client/index.ts'
import { option, type Invocation } from '../args.ts'
import { pattern, patternFor, PayloadCheck } from './payload.ts'
import { freonOptions, keyName, report, runOps, summarize } from './runner.ts'

export async function run(inv: Invocation): Promise<void> {
  const o = freonOptions(inv)
  const volume = option(inv, 'volume'), bucket = option(inv, 'bucket')
  const client = new O3Client({ om: option(inv, 'om'), scm: option(inv, 'scm'), ...clientSecurity() })
  // Without -s a key may be of any size, so the whole pattern is needed to check it.
  const pat = o.sizeBytes === undefined ? pattern(FREON_PATTERN_BYTES) : patternFor(o.sizeBytes)
  const sizes = new Set<number>()
  const outcome = await runOps({
    label: 'ockr', freon: o, what: `reading and verifying keys of /${volume}/${bucket}`,
    async op(i, signal) {
      const key = keyName(o.prefix, i)
      const what = `/${volume}/${bucket}/${key}`
      const r = await client.readKey(volume, bucket, key)
      const sizeBytes = r.key.size
      if (o.sizeBytes !== undefined && sizeBytes !== o.sizeBytes) {
        r.destroy()
        throw new Error(`Cannot verify ${what}: it has ${sizeBytes} bytes, not the ${o.sizeBytes} of --size`)
      }
      const check = new PayloadCheck(pat, sizeBytes, what)
      for await (const part of r) {
        if (signal.aborted) { r.destroy(); signal.throwIfAborted() }
        check.update(part as Uint8Array)
      }
      check.end()
      sizes.add(sizeBytes)
      return sizeBytes
    },
  })
  // The size read back, when every key had the same one.
  const sizeBytes = o.sizeBytes ?? (sizes.size === 1 ? [...sizes][0] : undefined)
  report(summarize('ockr', { ...o, sizeBytes }, outcome, { volume, bucket, verified: outcome.succeeded }), o.json)
}
