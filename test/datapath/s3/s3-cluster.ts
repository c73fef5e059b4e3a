/** @module
 * Test helper: a mini cluster with an S3 gateway on a free port and key pairs for two users.
 */
import { S3Gateway } from '../../../datapath/s3/index.ts'
import { startMiniCluster } from '../../cluster/mini-cluster.ts'
import type { S3Secret } from '../../../datapath/client/index.ts'
import { CreateBucketCommand, HeadObjectCommand, S3Client, type S3ServiceException } from '@aws-sdk/client-s3'
import type { O3Config } from '../../../core/config.ts'
import { createHash } from 'node:crypto'
import { request } from 'node:http'
import { SignatureV4 } from '@smithy/signature-v4'
import { Hash } from '@smithy/hash-node'

export interface S3TestCluster {
  cluster: Awaited<ReturnType<typeof startMiniCluster>>
  gateway: S3Gateway
  endpoint: string
  alice: S3Secret
  bob: S3Secret
  dispose(): Promise<void>
}

/** `overrides` are config settings for the cluster and its gateway (e.g. a short s3g.bodyIdleTimeoutMs). */
export async function startS3Cluster(options: { domain?: string; overrides?: Partial<O3Config> } = {}): Promise<S3TestCluster> {
  // 16 MiB blocks: keys span several blocks, and a container (5 GiB) takes 320 preallocated
  // blocks before it closes, so that many small concurrent writes do not keep closing it.
  const cluster = await startMiniCluster({ datanodes: 1, overrides: { 'scm.block.sizeBytes': 16 * 1024 * 1024, ...options.overrides } })
  const gateway = new S3Gateway({ config: cluster.config, omAddress: cluster.omAddress, scmAddress: cluster.scmAddress, port: 0, domain: options.domain })
  await gateway.start()
  const client = cluster.client()
  const alice = await client.getS3Secret('alice')
  const bob = await client.getS3Secret('bob')
  return {
    cluster, gateway, endpoint: gateway.endpoint, alice, bob,
    async dispose() { await gateway.stop(); await cluster.dispose() },
  }
}

/** A suite's usual start: a cluster, alice's SDK client (one attempt per call) and `bucket` made through it. */
export async function startWithBucket(bucket: string): Promise<{ env: S3TestCluster; s3: S3Client }> {
  const env = await startS3Cluster()
  const s3 = s3Client(env, env.alice, { maxAttempts: 1 })
  await s3.send(new CreateBucketCommand({ Bucket: bucket }))
  return { env, s3 }
}

/** The end of a suite started with startWithBucket. */
export async function stopWithBucket(started: { env: S3TestCluster; s3: S3Client }): Promise<void> {
  started.s3.destroy()
  await started.env.dispose()
}

/** The S3 error name, status and request id an SDK call fails with, or name 'OK'. */
export async function errorOf(p: Promise<unknown>): Promise<{ name: string; status?: number; requestId?: string; message?: string }> {
  try { await p } catch (err) {
    const e = err as S3ServiceException
    return { name: e.name, status: e.$metadata?.httpStatusCode, requestId: e.$metadata?.requestId, message: e.message }
  }
  return { name: 'OK' }
}

/** Whether `key` exists in `bucket` (HeadObject): 404 is no, any other refusal throws. */
export async function keyExists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  const e = await errorOf(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })))
  if (e.name === 'OK') return true
  if (e.status !== 404) throw new Error(`HEAD ${bucket}/${key}: ${e.name} (${e.status})`)
  return false
}

/** An SDK command's middleware stack, as far as adding a build step goes. */
type BuildSteps = { add(step: (next: (args: { request: unknown }) => Promise<unknown>) => (args: { request: unknown }) => Promise<unknown>, options: { step: 'build' }): void }

/** `command` with `headers` set on its request before it is signed (headers no SDK parameter sends). */
export function withHeaders<C extends { middlewareStack: unknown }>(command: C, headers: Record<string, string>): C {
  (command.middlewareStack as BuildSteps).add((next) => async (args) => {
    Object.assign((args.request as { headers: Record<string, string> }).headers, headers)
    return next(args)
  }, { step: 'build' })
  return command
}

/** An AWS SDK client of the test cluster's gateway, path-style, signing as `secret` (alice by
 *  default) for us-east-1 unless `region` says; `maxAttempts: 1` where a test must see the first answer, not a retried one. */
export function s3Client(env: S3TestCluster, secret: { awsAccessKey: string; awsSecret: string } = env.alice, options: { maxAttempts?: number; region?: string } = {}): S3Client {
  return new S3Client({ endpoint: env.endpoint, region: 'us-east-1', forcePathStyle: true, ...options, credentials: { accessKeyId: secret.awsAccessKey, secretAccessKey: secret.awsSecret } })
}

/**
 * A request to the test cluster's gateway signed with SigV4 as `secret` (alice by default), as
 * the SDKs sign it, with `body` sent byte for byte (bodies no SDK would write); `headers` are
 * signed too, `unsignedHeaders` are added after signing; `beforeBody` runs once the headers are
 * sent, before the body. The answer's status and body.
 */
export async function signedRequest(env: S3TestCluster, method: string, path: string, body: string, options: { headers?: Record<string, string>; unsignedHeaders?: Record<string, string>; secret?: S3Secret; beforeBody?: () => Promise<void> } = {}): Promise<{ status: number; body: string }> {
  const secret = options.secret ?? env.alice
  const signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials: { accessKeyId: secret.awsAccessKey, secretAccessKey: secret.awsSecret }, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false, applyChecksum: false })
  const [p, q] = path.split('?')
  const query: Record<string, string> = {}
  for (const [k, v] of new URLSearchParams(q ?? '')) query[k] = v
  const port = env.gateway.port
  const headers: Record<string, string> = {
    host: `127.0.0.1:${port}`, 'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'), 'content-length': String(Buffer.byteLength(body)), ...options.headers,
  }
  const r = await signer.sign({ method, protocol: 'http:', hostname: '127.0.0.1', port, path: p!, query, headers, body }, {})
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { ...r.headers, ...options.unsignedHeaders } }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (d: Buffer) => parts.push(d))
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts).toString() }))
    })
    req.on('error', reject)
    // As bytes: a string body goes out with the headers in one UTF-8 write, which would send
    // a header value's bytes past 0x7F as two each (Node writes headers alone as latin1).
    const bytes = Buffer.from(body)
    if (options.beforeBody === undefined) req.end(bytes)
    else {
      req.flushHeaders()
      options.beforeBody().then(() => req.end(bytes), reject)
    }
  })
}

/** An s3cmd configuration file's text for the test cluster's gateway, signing as `secret` (alice by default). */
export function s3cmdConfig(env: S3TestCluster, secret: S3Secret = env.alice): string {
  const host = new URL(env.endpoint).host
  return [
    '[default]', `access_key = ${secret.awsAccessKey}`, `secret_key = ${secret.awsSecret}`,
    `host_base = ${host}`, `host_bucket = ${host}`, 'use_https = False', 'bucket_location = us-east-1',
    'check_ssl_certificate = False', 'progress_meter = False', '',
  ].join('\n')
}
