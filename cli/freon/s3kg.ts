/** @module
 * `o3 freon s3kg` (Ozone's S3KeyGenerator): PUTs -n objects of -s bytes named PREFIX/0 …
 * PREFIX/n-1 into S3 bucket -b through an S3 gateway, from -t concurrent connections,
 * creating the bucket if missing. Requests go out as an SDK sends them over plain HTTP: signed
 * with AWS Signature V4 (@smithy/signature-v4, the AWS SDK's signer, not the gateway's
 * verifier) over the payload's SHA-256, which the gateway checks on every PUT. The payload is
 * one pattern (payload.ts), hashed once per run; an object counts only when the gateway
 * answers 200 with the ETag of that payload (its MD5). An https:// gateway is trusted with the
 * CA of O3_CLIENT_CAFILE or AWS_CA_BUNDLE (s3-trust.ts).
 */
import { SignatureV4 } from '@smithy/signature-v4'
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto'
import { Readable } from 'node:stream'
import { Pool } from 'undici'
import { option, stringOption, UsageError, type Invocation } from '../args.ts'
import { patternFor, payloadParts } from './payload.ts'
import { s3TrustOf, withTrustHint } from './s3-trust.ts'
import { freonOptions, keyName, report, runOps, summarize } from './runner.ts'

/** Ozone's -s default: 10 KiB. */
const SIZE_BYTES_DEFAULT = 10_240

type SourceData = string | ArrayBuffer | ArrayBufferView

function bytesOf(data: SourceData): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data, 'utf8')
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  return new Uint8Array(data)
}

/** The SHA-256 (and HMAC-SHA256, given a secret) the signer asks for, on node:crypto. */
class Sha256 {
  private readonly h: Hash | Hmac
  constructor(secret?: SourceData) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytesOf(secret))
  }
  update(data: SourceData): void { this.h.update(bytesOf(data)) }
  digest(): Promise<Uint8Array> { return Promise.resolve(this.h.digest()) }
}

/** The S3 error code in an error body, for the message. */
function s3Code(body: string): string {
  return /<Code>([^<]*)<\/Code>/.exec(body)?.[1] ?? body.slice(0, 200)
}

/** A key's path, each segment escaped once (S3's canonical URI). */
function objectPath(bucket: string, key: string): string {
  return `/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`
}

export async function run(inv: Invocation): Promise<void> {
  const o = freonOptions(inv)
  const sizeBytes = o.sizeBytes ?? SIZE_BYTES_DEFAULT
  const bucket = option(inv, 'bucket')
  let endpoint: URL
  try { endpoint = new URL(option(inv, 'endpoint')) } catch { throw new UsageError(`--endpoint must be a URL like http://127.0.0.1:9878, not ${JSON.stringify(option(inv, 'endpoint'))}`) }
  if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') throw new UsageError(`--endpoint must be http: or https:, not ${endpoint.protocol}`)
  // Read here, not in the command table, so that --help never shows a secret.
  const accessKeyId = stringOption(inv, 'access-key') ?? process.env.AWS_ACCESS_KEY_ID
  const secretAccessKey = stringOption(inv, 'secret-key') ?? process.env.AWS_SECRET_ACCESS_KEY
  if (!accessKeyId || !secretAccessKey) throw new UsageError('an S3 key pair is needed: --access-key and --secret-key, or $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY (o3 s3 getsecret makes one)')

  // The gateway refuses a signature for another region than its own, as S3 does.
  const region = stringOption(inv, 'region') || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1'
  const signer = new SignatureV4({ service: 's3', region, credentials: { accessKeyId, secretAccessKey }, sha256: Sha256, uriEscapePath: false, applyChecksum: false })
  // undici's Pool takes no CA from the environment but NODE_EXTRA_CA_CERTS: the one o3 users
  // set (O3_CLIENT_CAFILE) and the one aws CLI users set (AWS_CA_BUNDLE) go in here.
  const trust = endpoint.protocol === 'https:' ? s3TrustOf(process.env) : { ca: undefined, sources: [] }
  const pool = new Pool(endpoint.origin, { connections: o.threads, pipelining: 1, ...(trust.ca === undefined ? {} : { connect: { ca: trust.ca } }) })
  const request = async (options: Parameters<Pool['request']>[0]) => {
    try {
      return await pool.request(options)
    } catch (err) {
      throw withTrustHint(err, trust, endpoint.origin)
    }
  }
  const signed = async (method: string, path: string, headers: Record<string, string>) => {
    const r = await signer.sign({ method, protocol: endpoint.protocol, hostname: endpoint.hostname, port: endpoint.port === '' ? undefined : Number(endpoint.port), path, query: {}, headers: { ...headers, host: endpoint.host } })
    return r.headers as Record<string, string>
  }
  try {
    // A bucket that is there already is no failure: BucketAlreadyOwnedByYou, or
    // BucketAlreadyExists when another owns it (whether we may write there, the PUTs tell).
    const bucketPath = `/${encodeURIComponent(bucket)}`
    const empty = createHash('sha256').digest('hex')
    const created = await request({ method: 'PUT', path: bucketPath, headers: await signed('PUT', bucketPath, { 'x-amz-content-sha256': empty }) })
    const createdBody = await created.body.text()
    if (created.statusCode !== 200 && !['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes(s3Code(createdBody))) {
      throw new Error(`Cannot create bucket ${bucket} at ${endpoint.origin}: ${created.statusCode} ${s3Code(createdBody)}`)
    }

    // Hashed once: every object is the same bytes.
    const pat = patternFor(sizeBytes)
    const sha256 = createHash('sha256'), md5 = createHash('md5')
    for (const part of payloadParts(pat, sizeBytes)) { sha256.update(part); md5.update(part) }
    const payloadSha256 = sha256.digest('hex'), etag = `"${md5.digest('hex')}"`

    const outcome = await runOps({
      label: 's3kg', freon: o, what: `putting objects of ${sizeBytes} bytes to ${endpoint.origin}/${bucket}`,
      async op(i, signal) {
        const path = objectPath(bucket, keyName(o.prefix, i))
        const headers = await signed('PUT', path, { 'content-length': String(sizeBytes), 'x-amz-content-sha256': payloadSha256 })
        // One part: the pattern itself, sent as is; more: its views, streamed.
        const body = sizeBytes <= pat.length ? pat : Readable.from(payloadParts(pat, sizeBytes), { objectMode: false })
        // Given up at Ctrl-C: the request is cut, and the gateway aborts the key it was writing.
        const r = await request({ method: 'PUT', path, headers, body, signal })
        const text = await r.body.text()
        if (r.statusCode !== 200) throw new Error(`Cannot PUT ${path}: ${r.statusCode} ${s3Code(text)}`)
        if (r.headers.etag !== etag) throw new Error(`Cannot PUT ${path}: ETag ${String(r.headers.etag)}, not the payload's ${etag}`)
        return sizeBytes
      },
    })
    report(summarize('s3kg', { ...o, sizeBytes }, outcome, { endpoint: endpoint.origin, bucket }), o.json)
  } finally {
    await pool.close()
  }
}
