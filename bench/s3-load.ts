/** @module
 * The S3 load generator of the benchmarks: an undici Pool to one endpoint and requests
 * signed with AWS Signature V4 by @smithy/signature-v4 (an implementation independent of
 * the gateway's verifier). Bodies are sent as `UNSIGNED-PAYLOAD`, as presigned uploads and
 * the AWS CLI over TLS do, so that the generator hashes nothing: its cost per request is one
 * HMAC chain and one HTTP exchange, and `S3Sink` shows what that costs on this machine.
 * Only loopback endpoints, http or https (trusting a given CA).
 */
import { Hash } from '@smithy/hash-node'
import { SignatureV4 } from '@smithy/signature-v4'
import { Readable } from 'node:stream'
import { Pool } from 'undici'

export interface S3Credentials {
  accessKeyId: string
  secretAccessKey: string
}

/** PUT bodies: bytes in memory, or a stream whose length is given (a generator, never buffered). */
export type S3Body = Uint8Array | { stream: AsyncIterable<Uint8Array>; lengthBytes: number }

export class S3Load {
  private readonly pool: Pool
  private readonly signer: SignatureV4
  private readonly url: URL

  /** `ca`: the CA certificate (PEM) an https endpoint's certificate chains to. */
  constructor(endpoint: string, credentials: S3Credentials, options: { connections?: number; ca?: string } = {}) {
    this.url = new URL(endpoint)
    this.pool = new Pool(this.url.origin, { connections: options.connections ?? 64, pipelining: 1, bodyTimeout: 0, headersTimeout: 0, ...(options.ca === undefined ? {} : { connect: { ca: options.ca } }) })
    this.signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false, applyChecksum: false })
  }

  private async signed(method: string, path: string, headers: Record<string, string> = {}): Promise<Record<string, string>> {
    const all = { ...headers, host: this.url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' }
    const r = await this.signer.sign({ method, protocol: this.url.protocol, hostname: this.url.hostname, port: Number(this.url.port), path, query: {}, headers: all })
    return r.headers as Record<string, string>
  }

  async createBucket(bucket: string): Promise<void> {
    const r = await this.pool.request({ method: 'PUT', path: `/${bucket}`, headers: await this.signed('PUT', `/${bucket}`) })
    const text = await r.body.text()
    if (r.statusCode !== 200 && !text.includes('BucketAlreadyOwnedByYou')) throw new Error(`Cannot create bucket ${bucket}: status ${r.statusCode} ${text}`)
  }

  async put(bucket: string, key: string, body: S3Body): Promise<void> {
    const path = `/${bucket}/${key}`
    const length = body instanceof Uint8Array ? body.length : body.lengthBytes
    const headers = await this.signed('PUT', path, { 'content-length': String(length) })
    const r = await this.pool.request({ method: 'PUT', path, headers, body: body instanceof Uint8Array ? body : Readable.from(body.stream, { objectMode: false }) })
    const text = await r.body.text()
    if (r.statusCode !== 200) throw new Error(`Cannot PUT ${path}: status ${r.statusCode} ${text.slice(0, 300)}`)
  }

  /** Streams an object back, handing each piece to `onPart` (default: counted only); returns its length. */
  async get(bucket: string, key: string, onPart?: (part: Uint8Array) => void): Promise<number> {
    const path = `/${bucket}/${key}`
    const r = await this.pool.request({ method: 'GET', path, headers: await this.signed('GET', path) })
    if (r.statusCode !== 200) throw new Error(`Cannot GET ${path}: status ${r.statusCode} ${(await r.body.text()).slice(0, 300)}`)
    let n = 0
    for await (const part of r.body) {
      n += (part as Buffer).length
      onPart?.(part as Buffer)
    }
    return n
  }

  async close(): Promise<void> {
    await this.pool.close()
  }
}
