/** @module
 * The S3 gateway (Ozone's s3gateway): a Hono app that authenticates every request (SigV4/V2,
 * verified by the OM, which holds the secrets, on every request so a revoked key stops at
 * once; an unsigned request is anonymous; a browser form's POST, signed in its body, is
 * verified by its handler; the same OM call reads the request's bucket, and key for GET/HEAD
 * and other calls judged by the key's ACL, so a deleted bucket is seen at once too and a
 * small GET makes one metadata round trip; for PutObject and UploadPart it also opens the
 * key, so a small PUT makes two), finds the bucket and key (path-style, or virtual-hosted
 * under `domain`), authorizes the route's S3 action (access.ts: bucket policy, ACLs), routes
 * to one handler per operation and answers failures in S3's XML error format with a
 * RequestId. A request with an Origin gets the Access-Control-* headers of its bucket's CORS
 * rules, failures too. Anything it does not implement answers NotImplemented (501). The S3
 * port serves HTTPS when s3g.https or security.enabled says so (https.ts).
 * `GET /prom` and `GET /health` are served on a second listener (the admin port), never on
 * the S3 port, where `/prom` is bucket `prom`.
 */
import { parseGroups } from '../../core/access/native-acl.ts'
import { connectionOf } from '../../core/http/connection.ts'
import { watchResponse, type ResponseWatch } from '../../core/http/body-out.ts'
import { randomBytes } from 'node:crypto'
import { Hono } from 'hono'
import type { O3Config } from '../../core/config.ts'
import { serveApp, type Listener, type ServerReply } from '../../core/http/serve.ts'
import { requestBody, webBody, type RequestBody } from '../../core/http/body.ts'
import { log } from '../../core/log.ts'
import { ServiceMetrics } from '../../core/metrics.ts'
import { createServiceApp } from '../../core/rpc/server.ts'
import { O3Client, type BucketInfo, type S3AuthResult, type S3OpenIntent } from '../client/index.ts'
import { authorizeRequest, type RouteAccess } from './access.ts'
import { S3G_HEALTH_ANSWER_MS, S3G_HEALTH_PROBE_MS } from '../../core/limits.ts'
import { getBucketAcl, getObjectAcl, putBucketAcl, putObjectAcl } from './acl.ts'
import { authenticate, type RequestAuth } from './auth.ts'
import { createBucket, deleteBucket, getBucketLocation, getBucketVersioning, headBucket, listBuckets } from './buckets.ts'
import { S3_VOLUME, type Found, type S3Context, type UnverifiedRequest } from './context.ts'
import { copyObject, uploadPartCopy } from './copy.ts'
import { addCorsHeaders, deleteBucketCors, getBucketCors, preflightCors, putBucketCors } from './cors.ts'
import { S3Error, toS3Error } from './errors.ts'
import { needsObjectAcl } from '../../core/s3-access/authorize.ts'
import { listObjectsV1, listObjectsV2, listObjectVersions } from './list.ts'
import { abortMultipartUpload, completeMultipartUpload, createMultipartUpload, listMultipartUploads, listParts, uploadPart, uploadPartIntent } from './multipart.ts'
import { checkVersionId, deleteObject, deleteObjects, getObject, putObject, putObjectIntent } from './objects.ts'
import { postObject } from './post-object.ts'
import { deleteBucketPolicy, deletePublicAccessBlock, getBucketPolicy, getBucketPolicyStatus, getPublicAccessBlock, putBucketPolicy, putPublicAccessBlock } from './policy.ts'
import type { SignedRequest } from './sigv4.ts'
import { deleteBucketTagging, deleteObjectTagging, getBucketTagging, getObjectTagging, putBucketTagging, putObjectTagging } from './tagging.ts'
import { getObjectAttributes } from './attributes.ts'
import { toXml } from './xml.ts'
import { edgeTls, servesHttps, storedIdentity, type EdgeTls } from './https.ts'
import { O3Error, toO3Error } from '../../core/errors.ts'
import type { Transport } from '../../core/rpc/transport.ts'
import { ServiceIdentity } from '../../core/security/identity.ts'

/** The request line and headers together: Node's default, above S3's 8 KB of headers, so any request S3 takes fits. */
const S3_HEADER_BYTES_MAX = 16 * 1024

export interface S3GatewayOptions {
  config: O3Config
  omAddress: string
  scmAddress?: string
  /** How the gateway's client reaches the OM, SCM and datanodes (security on: its s3g identity's transport). */
  transport?: Transport
  /** config's s3g.port (9878) by default; 0 picks a free port. */
  port?: number
  /**
   * The port of `GET /prom` and `GET /health` (Ozone's s3g web admin port): config's
   * s3g.adminPort (19878) by default, but a free one when `port` is 0 (tests, benchmarks);
   * 0 picks a free one.
   */
  adminPort?: number
  /** Virtual-hosted-style base domain, `bucket.<domain>` naming the bucket: config's s3g.domain by default. */
  domain?: string
  /** The region this endpoint answers for (GetBucketLocation, LocationConstraint) and every SigV4 scope must name: config's s3g.region by default. */
  region?: string
  /** Clock for signature time checks (tests). */
  nowMs?: () => number
  /**
   * The gateway's identity in a secure cluster: its certificate is what the S3 port serves
   * HTTPS with when s3g.https.cert/key are not set (https.ts), and what its client calls the
   * OM, SCM and datanodes with. Without it a secure gateway obtains its own at start
   * (enrolled with security.bootstrapToken, kept in s3g.dir), as the OM and datanodes do.
   */
  identity?: ServiceIdentity
}

/** Bucket subresources S3 has and we do not: answered NotImplemented rather than misread as another call. */
const UNSUPPORTED = ['accelerate', 'analytics', 'encryption', 'intelligent-tiering', 'inventory', 'lifecycle', 'logging', 'metrics', 'notification',
  'object-lock', 'ownershipControls', 'policy', 'policyStatus', 'publicAccessBlock', 'replication', 'requestPayment', 'website', 'versioning', 'legal-hold',
  'retention', 'torrent', 'restore', 'select', 'attributes', 'session', 'renameObject']

/**
 * Request headers of S3 features the gateway does not have (server-side encryption, SSE-C,
 * object lock): answered NotImplemented. Taken and ignored, they would let a client believe
 * its data is encrypted, needs its key to be read, or cannot be deleted until a date.
 */
const UNSUPPORTED_HEADERS = ['x-amz-server-side-encryption', 'x-amz-server-side-encryption-aws-kms-key-id', 'x-amz-server-side-encryption-context',
  'x-amz-server-side-encryption-bucket-key-enabled', 'x-amz-server-side-encryption-customer-algorithm', 'x-amz-server-side-encryption-customer-key',
  'x-amz-server-side-encryption-customer-key-md5', 'x-amz-copy-source-server-side-encryption-customer-algorithm', 'x-amz-copy-source-server-side-encryption-customer-key',
  'x-amz-copy-source-server-side-encryption-customer-key-md5', 'x-amz-object-lock-mode', 'x-amz-object-lock-retain-until-date', 'x-amz-object-lock-legal-hold']

/**
 * S3's storage classes: a request may name any (every object here is stored, and listed, as
 * STANDARD); a name outside them is InvalidStorageClass, as S3 answers, not taken silently.
 */
const STORAGE_CLASSES = new Set(['STANDARD', 'REDUCED_REDUNDANCY', 'STANDARD_IA', 'ONEZONE_IA', 'INTELLIGENT_TIERING', 'GLACIER', 'DEEP_ARCHIVE',
  'OUTPOSTS', 'GLACIER_IR', 'SNOW', 'EXPRESS_ONEZONE'])

/** Why a request naming a feature O3 does not have (or a version, a class that names nothing) is refused, if it is. */
function refusalOf(ctx: Pick<S3Context, 'req' | 'method' | 'query' | 'key'>): S3Error | undefined {
  const header = UNSUPPORTED_HEADERS.find((h) => ctx.req.headers.has(h))
  if (header !== undefined) return new S3Error('NotImplemented', `The ${header} header is not supported by the O3 S3 gateway (no server-side encryption or object lock)`)
  const storageClass = ctx.req.headers.get('x-amz-storage-class')
  if (storageClass !== null && !STORAGE_CLASSES.has(storageClass)) return new S3Error('InvalidStorageClass', 'The storage class you specified is not valid')
  if (ctx.key === undefined && ctx.method === 'PUT' && /^true$/i.test(ctx.req.headers.get('x-amz-bucket-object-lock-enabled') ?? '')) return new S3Error('NotImplemented', 'Object lock is not supported by the O3 S3 gateway')
  if (ctx.key !== undefined) {
    try {
      checkVersionId(ctx.query.get('versionId'))
    } catch (err) {
      return err as S3Error
    }
  }
  return undefined
}

/** What a request its handler authenticates (Route.authenticatesItself) starts with: nobody. */
const UNAUTHENTICATED: { user: string | undefined; auth: RequestAuth; found: S3AuthResult } = { user: undefined, auth: { version: 0 }, found: {} }

/** A request's handler, by the operation name metrics count it under. */
interface Route extends RouteAccess {
  name: string
  run: (ctx: S3Context) => Promise<Response>
  /** The handler reads the request's own key first (headObject): the lookup reads it too. */
  readsObject?: boolean
  /** The key the handler writes right away, if it will: the authentication call opens it (S3OpenIntent). */
  opens?: (r: UnverifiedRequest) => S3OpenIntent | undefined
  /**
   * The gateway does not authenticate the request (it reaches authorization as anonymous); its
   * handler does what it needs: a browser form (PostObject, byHandler) carries its signature
   * in its body, where header authentication cannot look, sets the context's user and found
   * bucket once it verified, and authorizes s3:PutObject then; a CORS preflight (OPTIONS,
   * anyone) is never signed, and reads only the bucket's CORS rules.
   */
  authenticatesItself?: true
}

export class S3Gateway {
  readonly metrics = new ServiceMetrics('s3g')
  /** Response bodies that failed after their status line (the client saw a cut connection). */
  private readonly bodyFailures = this.metrics.counter('body_failures_total', 'Response bodies cut after the status line because their bytes could not be read')
  readonly app: Hono
  readonly client: O3Client
  private listener?: Listener
  private adminListener?: Listener
  /** The region this endpoint answers for and SigV4 scopes must name (s3g.region unless given). */
  readonly region: string
  /** o3.groups by user, for native group ACLs. */
  private readonly groups: Map<string, string[]>
  /** The virtual-host base domain, lower case, if any. */
  private readonly domain: string | undefined
  private readonly now: () => number
  /** The S3 port's TLS, or undefined for plain HTTP; decided (and files checked) at construction, or at start for an identity obtained then. */
  private tls: EdgeTls | undefined
  /** The identity this gateway obtained itself at start (security on, none given); stopped with it. */
  private ownIdentity: ServiceIdentity | undefined

  constructor(private readonly options: S3GatewayOptions) {
    this.groups = parseGroups(options.config['o3.groups'])
    // A secure gateway without an identity given obtains one at start; its client calls through it from then on.
    const obtains = options.config['security.enabled'] === 1 && options.identity === undefined
    const transport = options.transport ?? options.identity?.transport() ?? (obtains ? this.ownTransport() : undefined)
    this.client = new O3Client({ om: options.omAddress, scm: options.scmAddress, chunkSizeBytes: options.config['client.chunkSizeBytes'], transport })
    this.region = options.region ?? options.config['s3g.region']
    this.domain = (options.domain ?? (options.config['s3g.domain'] || undefined))?.toLowerCase()
    this.now = options.nowMs ?? Date.now
    this.tls = obtains && options.config['s3g.https.cert'] === '' ? undefined : edgeTls(options.config, options.identity)
    this.app = new Hono()
    this.app.all('*', (c) => {
      // TLS is the connection's: an absolute-form request line (GET https://host/...) names a scheme the request URL takes.
      const { rawTarget, remoteAddress, secure } = connectionOf(c)
      return this.handle(c.req.raw, rawTarget, watchResponse(c), requestBody(c), remoteAddress, secure)
    })
  }

  get port(): number {
    if (this.listener === undefined) throw new Error('S3 gateway not started')
    return this.listener.port
  }

  get endpoint(): string {
    return `${servesHttps(this.options.config) ? 'https' : 'http'}://${this.options.config.host}:${this.port}`
  }

  /** Where `/prom` and `/health` are served, host:port like the other services' addresses. */
  get adminAddress(): string {
    if (this.adminListener === undefined) throw new Error('S3 gateway not started')
    return `${this.options.config.host}:${this.adminListener.port}`
  }

  /** Calls through the identity obtained at start (security on, none given). */
  private ownTransport(): Transport {
    return {
      scheme: 'https',
      dispatcher: (expect) => {
        if (this.ownIdentity === undefined) throw new O3Error('UNAVAILABLE', 'Cannot call out: the S3 gateway has not obtained its certificate yet (not started)')
        return this.ownIdentity.transport().dispatcher(expect)
      },
    }
  }

  /**
   * A secure gateway's own identity: the one kept in s3g.dir, or a new one enrolled with the
   * bootstrap token under a new id (s3g-<random>), so that every gateway of a cluster has its own.
   */
  private async obtainIdentity(): Promise<ServiceIdentity> {
    const c = this.options.config
    if (this.options.scmAddress === undefined) throw new O3Error('INVALID_ARGUMENT', 'Cannot start a secure S3 gateway: it needs scm.address to obtain its certificate')
    const dir = c['s3g.dir']
    const stored = storedIdentity(dir)
    const id = stored?.role === 's3g' ? stored.id : `s3g-${randomBytes(4).toString('hex')}`
    const hosts = [...new Set([c.host, '127.0.0.1', 'localhost'])].filter((h) => h !== '0.0.0.0' && h !== '::')
    return ServiceIdentity.obtain({ role: 's3g', id, dir, hosts, scm: this.options.scmAddress, bootstrapToken: c['security.bootstrapToken'] })
  }

  private omProbe: { atMs: number; done: boolean; answer: Promise<{ status: 'UP' | 'DOWN'; om: string }> } | undefined

  /**
   * /health: UP while an OM leader answers, else DOWN (503) saying why, so that a load
   * balancer or readiness probe stops sending S3 requests that can only fail. One probe of
   * the OM at a time, at most every S3G_HEALTH_PROBE_MS; /health answers within
   * S3G_HEALTH_ANSWER_MS even while the probe waits on OMs that do not answer (frozen).
   */
  private async health(): Promise<Record<string, unknown>> {
    const now = Date.now()
    if (this.omProbe === undefined || (this.omProbe.done && now - this.omProbe.atMs >= S3G_HEALTH_PROBE_MS)) {
      let timer: ReturnType<typeof setTimeout> | undefined
      const late = new Promise<{ status: 'DOWN'; om: string }>((resolve) => {
        timer = setTimeout(() => resolve({ status: 'DOWN', om: `no OM leader answered in ${S3G_HEALTH_ANSWER_MS} ms` }), S3G_HEALTH_ANSWER_MS)
      })
      const call = this.probeOm()
      const probe = { atMs: now, done: false, answer: Promise.race([call, late]).finally(() => clearTimeout(timer)) }
      void call.finally(() => { probe.done = true })
      this.omProbe = probe
    }
    return { endpoint: this.endpoint, ...(await this.omProbe.answer) }
  }

  private async probeOm(): Promise<{ status: 'UP' | 'DOWN'; om: string }> {
    try {
      await this.client.om.call('getVolume', { volume: S3_VOLUME }, { idempotent: true, timeoutMs: S3G_HEALTH_PROBE_MS, failoverMs: S3G_HEALTH_PROBE_MS })
    } catch (err) {
      const e = toO3Error(err)
      // A leader that answers "no" (no s3v volume yet, a refusal) is an OM that serves.
      if (e.spec.retry || e.code === 'INTERNAL_ERROR') return { status: 'DOWN', om: e.message }
    }
    return { status: 'UP', om: 'a leader answers' }
  }

  async start(): Promise<void> {
    if (this.options.config['security.enabled'] === 1 && this.options.identity === undefined && this.ownIdentity === undefined) {
      this.ownIdentity = await this.obtainIdentity()
      this.tls ??= edgeTls(this.options.config, this.ownIdentity)
    }
    const port = this.options.port ?? this.options.config['s3g.port']
    this.listener = await serveApp(this.app, {
      host: this.options.config.host, port, name: 'S3 gateway', maxHeaderBytes: S3_HEADER_BYTES_MAX, tls: this.tls,
      headersTimeoutMs: this.options.config['s3g.headersTimeoutMs'],
      // Requests Node's parser rejects still get S3's XML error, not a bare 431 or 400.
      parseError: (code) => {
        const e = code === 'HPE_HEADER_OVERFLOW'
          ? { code: 'RequestHeaderSectionTooLarge', message: `Your request header section exceeds the maximum allowed size of ${S3_HEADER_BYTES_MAX} bytes` }
          : code === 'HPE_INVALID_EOF_STATE'
            ? { code: 'IncompleteBody', message: 'You did not provide the number of bytes specified by the Content-Length HTTP header' }
          : code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? { code: 'RequestTimeout', message: 'Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.' }
          : code === 'HPE_INVALID_HOST'
            ? { code: 'InvalidArgument', message: 'The Host header is not a valid host name' }
          : code === 'HPE_INVALID_URL'
            ? { code: 'InvalidURI', message: 'Couldn\'t parse the specified URI.' }
          : code === 'ERR_SSL_HTTP_REQUEST'
            ? { code: 'InvalidRequest', message: `This S3 endpoint serves HTTPS: use ${this.endpoint}, not http://` }
            : { code: 'InvalidRequest', message: `The request could not be parsed (${code})` }
        return xmlReply(400, e.code, e.message)
      },
      stopping: () => xmlReply(503, 'ServiceUnavailable', 'The S3 gateway is stopping; retry the request'),
    })
    // Every path of the S3 port is S3's (path-style /prom is bucket "prom"), so metrics and
    // health get their own listener, as Ozone's s3g serves them on its web admin port.
    const admin = createServiceApp({ service: 'S3Gateway', handlers: {}, metrics: this.metrics, health: () => this.health() })
    try {
      this.adminListener = await serveApp(admin, { host: this.options.config.host, port: this.options.adminPort ?? (port === 0 ? 0 : this.options.config['s3g.adminPort']), name: 'S3 gateway admin' })
    } catch (err) {
      await this.stop()
      throw err
    }
    log.info(`S3 gateway listening on ${this.endpoint}; /prom and /health on http://${this.adminAddress}`)
  }

  async stop(): Promise<void> {
    await this.listener?.close()
    await this.adminListener?.close()
    this.listener = undefined
    this.adminListener = undefined
    if (this.ownIdentity !== undefined) {
      // A later start obtains it again (from s3g.dir) with its renewal timer running.
      this.ownIdentity.stop()
      this.ownIdentity = undefined
      if (this.options.config['s3g.https.cert'] === '') this.tls = undefined
    }
  }

  /**
   * Answers one request; `rawTarget` is the request target as sent (Node), since URL parsing
   * resolves `..`; `responseWatch` says when the response's pieces are sent (core/http/body-out.ts);
   * `body` is the runtime's raw body (core/http/body.ts), else req's stream.
   */
  async handle(req: Request, rawTarget?: string, responseWatch?: ResponseWatch, body: RequestBody | null = webBody(req.body), remoteAddress?: string, secureTransport = false): Promise<Response> {
    const requestId = newRequestId()
    const started = performance.now()
    let op = 'unknown'
    let resource = '/'
    /** The request's key, which a NoSuchKey error names. */
    let requestKey: string | undefined
    let res: Response
    let found: Found = {}
    /** The bucket whose CORS rules answer a request with an Origin (not a preflight, which answers itself). */
    let corsBucket: string | undefined
    try {
      const url = new URL(req.url)
      const target = rawTarget !== undefined && rawTarget.startsWith('/') ? rawTarget : url.pathname + url.search
      const q = target.indexOf('?')
      const rawPath = q < 0 ? target : target.slice(0, q)
      const rawQuery = q < 0 ? '' : target.slice(q + 1)
      resource = rawPath
      const query = new URLSearchParams(rawQuery.replace(/\+/g, '%2B'))
      const { bucket, key, virtualHosted } = this.locate(rawPath, req.headers.get('host') ?? url.host)
      requestKey = key
      const signed: SignedRequest = { method: req.method, rawPath, rawQuery, headers: req.headers }
      // The route is chosen from the request line alone, so that the one OM call that verifies
      // the signature also reads what the handler will need: the bucket and, for GetObject and
      // HeadObject, the key. The handler still runs only after the signature verifies, and
      // learns nothing from the lookup that it would not have asked for.
      const route = this.route({ req, method: req.method, query, bucket, key })
      if (route.name !== 'PreflightCors') corsBucket = bucket
      // A handler that writes the request's key right away has the OM open it in the same
      // call, once the signature verified (two OM calls per small PUT, not three).
      const intent = route.opens?.({ req, method: req.method, query, bucket, key })
      // Routes judged by their key's ACL read the key in the same call.
      const readsObject = route.readsObject === true || (route.action !== undefined && route.byHandler !== true && needsObjectAcl(route.action))
      const { user, auth, found: r } = route.authenticatesItself === true ? UNAUTHENTICATED : await authenticate(signed, query, {
        nowMs: this.now(), hostBucket: virtualHosted ? bucket : undefined, region: this.region,
        verify: (accessKey, proof, signingKey) => this.client.s3Authenticate({
          accessKey, proof, signingKey, volume: S3_VOLUME, bucket, key: readsObject ? key : undefined, open: intent,
        }),
      })
      found = { bucket: r.bucket, key: r.key }
      if (intent !== undefined && r.opened !== undefined) found.opened = { intent, result: r.opened }
      if (intent?.requireKey !== undefined && r.required !== undefined) found.required = { key: intent.requireKey.key, result: r.required }
      const ctx: S3Context = {
        // The user's own OM calls go out on their behalf (what they create is theirs); an
        // anonymous request's as the gateway's, which the authorization below allowed.
        client: user === undefined ? this.client : this.client.as(user), req, body, method: req.method, query, bucket, key, user, remoteAddress, secureTransport, auth, found, region: this.region, requestId,
        bodyFailed: (err) => this.bodyFailed(req.method, resource, requestId, err),
        countBytes: (direction, bytes) => (direction === 'in' ? this.metrics.bytesIn : this.metrics.bytesOut).inc(bytes), bodyIdleTimeoutMs: this.options.config['s3g.bodyIdleTimeoutMs'], sendIdleTimeoutMs: this.options.config['s3g.sendIdleTimeoutMs'],
        responseWatch, groups: user === undefined ? [] : this.groups.get(user) ?? [],
      }
      op = route.name
      // Who may do what is decided here, for every route, before its handler runs.
      await authorizeRequest(ctx, route)
      res = await route.run(ctx)
    } catch (err) {
      res = this.errorResponse(err, requestId, resource, req.method === 'HEAD', requestKey)
      op = `${op}:${res.status}`
    }
    // A key opened early that the handler did not write (it failed first): nobody will.
    if (found.opened?.result.ok === true) await this.abortUnused(found.opened.result.value.clientId, requestId)
    const origin = req.headers.get('origin')
    if (origin !== null && corsBucket !== undefined) addCorsHeaders(res, await this.corsBucketInfo(corsBucket, found), origin, req.method)
    this.metrics.rpcRequests.inc({ method: op, code: String(res.status) })
    this.metrics.rpcSeconds.observe({ method: op }, (performance.now() - started) / 1000)
    res.headers.set('x-amz-request-id', requestId)
    return res
  }

  /** The bucket and key a request names; `virtualHosted` when the Host header names the bucket. */
  private locate(rawPath: string, host: string): { bucket?: string; key?: string; virtualHosted: boolean } {
    const decode = (s: string) => {
      try { return decodeURIComponent(s) } catch { throw new S3Error('InvalidURI', "Couldn't parse the specified URI") }
    }
    const hostname = host.replace(/:\d+$/, '').toLowerCase()
    const domain = this.domain
    let bucket: string | undefined
    let rest = rawPath.replace(/^\//, '')
    const virtualHosted = domain !== undefined && hostname.endsWith('.' + domain)
    if (virtualHosted) {
      bucket = hostname.slice(0, -domain.length - 1)
    } else {
      const slash = rest.indexOf('/')
      bucket = slash < 0 ? rest : rest.slice(0, slash)
      rest = slash < 0 ? '' : rest.slice(slash + 1)
      bucket = bucket === '' ? undefined : decode(bucket)
    }
    const key = rest === '' ? undefined : decode(rest)
    if (key !== undefined) {
      if (key.includes('\0')) throw new S3Error('InvalidArgument', 'Object key must not contain NUL')
      if (!key.isWellFormed()) throw new S3Error('InvalidURI', "Couldn't parse the specified URI")
      if (Buffer.byteLength(key) > 1024) throw new S3Error('KeyTooLongError', 'Your key is too long')
    }
    return { bucket, key, virtualHosted }
  }

  /** The handler of a request, from its method, bucket, key, query and headers alone. */
  private route(ctx: Pick<S3Context, 'req' | 'method' | 'query' | 'bucket' | 'key'>): Route {
    const route = this.handlerOf(ctx)
    if (route.name === 'NotImplemented' || route.name === 'MethodNotAllowed') return route
    // Refused from the request alone, but answered after its authentication and authorization
    // as the operation it names (so the refusal tells an anonymous caller nothing); nothing is
    // read or opened for it.
    const refusal = refusalOf(ctx)
    return refusal === undefined ? route : { ...route, readsObject: false, opens: undefined, run: async () => { throw refusal } }
  }

  private handlerOf(ctx: Pick<S3Context, 'req' | 'method' | 'query' | 'bucket' | 'key'>): Route {
    const q = ctx.query
    const m = ctx.method
    const unsupported = UNSUPPORTED.find((s) => q.has(s))
    const answerNotImplemented = (what: string) => ({ name: 'NotImplemented', run: async (): Promise<Response> => { throw new S3Error('NotImplemented', `${what} is not supported by the O3 S3 gateway`) } })
    if (ctx.bucket === undefined) {
      if (m === 'GET') return { name: 'ListBuckets', run: listBuckets, action: 's3:ListAllMyBuckets' }
      return answerNotImplemented(`${m} on the service`)
    }
    // A browser asks before a cross-origin request; the answer is the bucket's CORS rules'.
    if (m === 'OPTIONS') return { name: 'PreflightCors', run: preflightCors, authenticatesItself: true, anyone: true }
    // Versioning can be read (never enabled) but not set: PutBucketVersioning stays unsupported.
    if (ctx.key === undefined && m === 'GET' && unsupported === 'versioning') return { name: 'GetBucketVersioning', run: getBucketVersioning, action: 's3:GetBucketVersioning' }
    // An object's attributes can be read; no other call takes the subresource.
    if (ctx.key !== undefined && m === 'GET' && unsupported === 'attributes') return { name: 'GetObjectAttributes', run: getObjectAttributes, readsObject: true, action: 's3:GetObjectAttributes' }
    if (ctx.key === undefined && (unsupported === 'policy' || unsupported === 'policyStatus' || unsupported === 'publicAccessBlock')) {
      const policyRoute = bucketPolicyRoute(m, unsupported)
      if (policyRoute !== undefined) return policyRoute
    }
    if (unsupported !== undefined) return answerNotImplemented(`The ${unsupported} subresource`)
    if (ctx.key === undefined) {
      switch (m) {
        case 'GET':
          if (q.has('acl')) return { name: 'GetBucketAcl', run: getBucketAcl, action: 's3:GetBucketAcl' }
          if (q.has('cors')) return { name: 'GetBucketCors', run: getBucketCors, action: 's3:GetBucketCORS' }
          if (q.has('location')) return { name: 'GetBucketLocation', run: getBucketLocation, action: 's3:GetBucketLocation' }
          if (q.has('uploads')) return { name: 'ListMultipartUploads', run: listMultipartUploads, action: 's3:ListBucketMultipartUploads' }
          if (q.has('versions')) return { name: 'ListObjectVersions', run: listObjectVersions, action: 's3:ListBucketVersions' }
          if (q.has('tagging')) return { name: 'GetBucketTagging', run: getBucketTagging, action: 's3:GetBucketTagging' }
          if (q.get('list-type') === '2') return { name: 'ListObjectsV2', run: listObjectsV2, action: 's3:ListBucket' }
          return { name: 'ListObjects', run: listObjectsV1, action: 's3:ListBucket' }
        case 'HEAD': return { name: 'HeadBucket', run: headBucket, action: 's3:ListBucket' }
        case 'PUT':
          if (q.has('cors')) return { name: 'PutBucketCors', run: putBucketCors, action: 's3:PutBucketCORS' }
          if (q.has('tagging')) return { name: 'PutBucketTagging', run: putBucketTagging, action: 's3:PutBucketTagging' }
          if (q.has('acl')) return { name: 'PutBucketAcl', run: putBucketAcl, action: 's3:PutBucketAcl' }
          return { name: 'CreateBucket', run: createBucket, action: 's3:CreateBucket' }
        case 'DELETE':
          if (q.has('cors')) return { name: 'DeleteBucketCors', run: deleteBucketCors, action: 's3:PutBucketCORS' }
          // S3 authorizes DeleteBucketTagging as s3:PutBucketTagging.
          if (q.has('tagging')) return { name: 'DeleteBucketTagging', run: deleteBucketTagging, action: 's3:PutBucketTagging' }
          return { name: 'DeleteBucket', run: deleteBucket, action: 's3:DeleteBucket' }
        case 'POST':
          // Each key is authorized (s3:DeleteObject) as its deletion comes.
          if (q.has('delete')) return { name: 'DeleteObjects', run: deleteObjects, action: 's3:DeleteObject', byHandler: true }
          // A browser-based upload (PostObject: boto3's generate_presigned_post, HTML forms)
          // signs its policy in the multipart form, not in a header or the query.
          if (/^multipart\/form-data\b/i.test(ctx.req.headers.get('content-type') ?? '')) return { name: 'PostObject', run: postObject, authenticatesItself: true, action: 's3:PutObject', byHandler: true }
          return answerNotImplemented('POST on a bucket')
      }
      return { name: 'MethodNotAllowed', run: async () => { throw new S3Error('MethodNotAllowed', `The specified method ${m} is not allowed against this resource`) } }
    }
    const copy = ctx.req.headers.has('x-amz-copy-source')
    switch (m) {
      case 'GET':
        // An upload is judged by its initiator, which its handler reads.
        if (q.has('uploadId')) return { name: 'ListParts', run: listParts, action: 's3:ListMultipartUploadParts', byHandler: true }
        if (q.has('acl')) return { name: 'GetObjectAcl', run: getObjectAcl, action: 's3:GetObjectAcl' }
        if (q.has('tagging')) return { name: 'GetObjectTagging', run: getObjectTagging, action: 's3:GetObjectTagging' }
        return { name: 'GetObject', run: (c) => getObject(c, false), readsObject: true, action: 's3:GetObject' }
      case 'HEAD': return { name: 'HeadObject', run: (c) => getObject(c, true), readsObject: true, action: 's3:GetObject' }
      case 'PUT':
        // A copy's source is authorized (s3:GetObject) by its handler.
        if (q.has('uploadId') && q.has('partNumber')) return copy ? { name: 'UploadPartCopy', run: uploadPartCopy, action: 's3:PutObject' } : { name: 'UploadPart', run: uploadPart, opens: uploadPartIntent, action: 's3:PutObject' }
        if (q.has('acl')) return { name: 'PutObjectAcl', run: putObjectAcl, action: 's3:PutObjectAcl' }
        if (q.has('tagging')) return { name: 'PutObjectTagging', run: putObjectTagging, action: 's3:PutObjectTagging' }
        if (copy) return { name: 'CopyObject', run: copyObject, action: 's3:PutObject' }
        // A conditional PUT (If-None-Match, If-Match) looks at the key before taking the body.
        return { name: 'PutObject', run: putObject, readsObject: ctx.req.headers.has('if-none-match') || ctx.req.headers.has('if-match'), opens: putObjectIntent, action: 's3:PutObject' }
      case 'DELETE':
        if (q.has('uploadId')) return { name: 'AbortMultipartUpload', run: abortMultipartUpload, action: 's3:AbortMultipartUpload', byHandler: true }
        if (q.has('tagging')) return { name: 'DeleteObjectTagging', run: deleteObjectTagging, action: 's3:DeleteObjectTagging' }
        return { name: 'DeleteObject', run: deleteObject, action: 's3:DeleteObject' }
      case 'POST':
        if (q.has('uploads')) return { name: 'CreateMultipartUpload', run: createMultipartUpload, action: 's3:PutObject' }
        if (q.has('uploadId')) return { name: 'CompleteMultipartUpload', run: completeMultipartUpload, action: 's3:PutObject' }
        return answerNotImplemented('POST on an object')
    }
    return { name: 'MethodNotAllowed', run: async () => { throw new S3Error('MethodNotAllowed', `The specified method ${m} is not allowed against this resource`) } }
  }

  /**
   * The bucket a request with an Origin named, for its CORS rules: as its authentication read
   * it, else (the request failed before, or was not signed) read now; undefined if it cannot be.
   */
  private async corsBucketInfo(bucket: string, found: Found): Promise<BucketInfo | undefined> {
    if (found.bucket !== undefined) return found.bucket.ok ? found.bucket.value as BucketInfo : undefined
    try {
      return await this.client.getBucket(S3_VOLUME, bucket)
    } catch {
      return undefined
    }
  }

  /** Aborts a key the OM opened for a request whose handler did not take it; a failure leaves it to the OM's expiry. */
  private async abortUnused(clientId: string, requestId: string): Promise<void> {
    try {
      await this.client.abortOpenKey(clientId)
    } catch (err) {
      log.debug(`S3 gateway: cannot abort the unused open key of request ${requestId}: ${err instanceof Error ? err.message : String(err)}`)
    }
  }

  /** A body cut after its status line: nothing can be answered any more, so it is logged and counted. */
  private bodyFailed(method: string, resource: string, requestId: string, err: unknown): void {
    this.bodyFailures.inc()
    log.warn(`S3 gateway: ${method} ${resource} (request ${requestId}) cut its body after the status line: ${err instanceof Error ? err.message : String(err)}`)
  }

  private errorResponse(err: unknown, requestId: string, resource: string, head: boolean, key?: string): Response {
    const e = toS3Error(err)
    if (e.code === 'InternalError') log.error(`S3 gateway: internal error on ${resource}: ${e.message}`, err)
    // The client gets S3's generic words for a 503 (SlowDown, ServiceUnavailable); why it
    // came (no pipeline, too few datanodes for an EC block, an unreadable stripe) is the
    // O3 cause, which only the log can say.
    else if (e.status >= 500 && e.code !== 'NotImplemented') log.warn(`S3 gateway: ${e.code} on ${resource} (request ${requestId}): ${e.cause instanceof Error ? e.cause.message : e.message}`)
    else log.debug(`S3 gateway: ${e.code} on ${resource}: ${e.message}`)
    const headers: Record<string, string> = { ...e.extraHeaders }
    if (head) return new Response(null, { status: e.status, headers })
    headers['content-type'] = 'application/xml'
    return new Response(errorXml(e.code, e.message, requestId, resource, e.code === 'NoSuchKey' ? key : undefined, e.xml), { status: e.status, headers })
  }
}

/** The bucket policy and public access block calls (datapath/s3/policy.ts), by method and subresource. */
function bucketPolicyRoute(method: string, subresource: 'policy' | 'policyStatus' | 'publicAccessBlock'): Route | undefined {
  switch (`${method} ${subresource}`) {
    case 'GET policy': return { name: 'GetBucketPolicy', run: getBucketPolicy, action: 's3:GetBucketPolicy' }
    case 'PUT policy': return { name: 'PutBucketPolicy', run: putBucketPolicy, action: 's3:PutBucketPolicy' }
    case 'DELETE policy': return { name: 'DeleteBucketPolicy', run: deleteBucketPolicy, action: 's3:DeleteBucketPolicy' }
    case 'GET policyStatus': return { name: 'GetBucketPolicyStatus', run: getBucketPolicyStatus, action: 's3:GetBucketPolicyStatus' }
    case 'GET publicAccessBlock': return { name: 'GetPublicAccessBlock', run: getPublicAccessBlock, action: 's3:GetBucketPublicAccessBlock' }
    case 'PUT publicAccessBlock': return { name: 'PutPublicAccessBlock', run: putPublicAccessBlock, action: 's3:PutBucketPublicAccessBlock' }
    case 'DELETE publicAccessBlock': return { name: 'DeletePublicAccessBlock', run: deletePublicAccessBlock, action: 's3:PutBucketPublicAccessBlock' }
  }
  return undefined
}

/** A request id as S3 shows them: 16 upper-case hex digits. */
/** A random prefix (new every 2^24 requests) and a counter: unique, as S3's request ids must be, without
 *  a call into the OS's random source on every request (about 1% of a small PUT's CPU). */
let requestIdPrefix = ''
let requestCount = 0x1000000

function newRequestId(): string {
  if (++requestCount >= 0x1000000) { requestIdPrefix = randomBytes(5).toString('hex').toUpperCase(); requestCount = 0 }
  return requestIdPrefix + requestCount.toString(16).toUpperCase().padStart(6, '0')
}

/** An answer the server gives before the app (core/http/serve.ts): S3's XML error, its request id in the header too. */
function xmlReply(status: number, code: string, message: string): ServerReply {
  const requestId = newRequestId()
  return { status, contentType: 'application/xml', body: errorXml(code, message, requestId), headers: { 'x-amz-request-id': requestId } }
}

/** S3's XML error body. */
function errorXml(code: string, message: string, requestId: string, resource?: string, key?: string, extra: Readonly<Record<string, string>> = {}): string {
  return toXml('Error', { Code: code, Message: message, ...extra, ...(key === undefined ? {} : { Key: key }), ...(resource === undefined ? {} : { Resource: resource }), RequestId: requestId }, false)
}
