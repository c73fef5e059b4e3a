/** @module
 * CORS (S3 "Using cross-origin resource sharing"): Put/Get/DeleteBucketCors, kept with the
 * bucket in the OM (BucketInfo.s3.cors) so every gateway answers alike; the preflight
 * (OPTIONS, unsigned: it reads the bucket itself); and the Access-Control-* headers the
 * gateway adds to any answer, errors too, of a request that names an Origin. Rules match as
 * S3 matches them: the first rule whose AllowedOrigin (one `*` wildcard at most) and
 * AllowedMethod hold, and for a preflight whose AllowedHeader patterns cover every requested
 * header (case-insensitively).
 */
import { O3Error } from '../../core/errors.ts'
import type { CorsRule } from '../../core/s3-access/model.ts'
import type { BucketInfo } from '../client/index.ts'
import { requestBucket, S3_VOLUME, type S3Context } from './context.ts'
import { S3Error } from './errors.ts'
import { readXml, xmlResponse } from './xml.ts'

/** S3: a CORS configuration holds at most 100 rules. */
export const CORS_RULES_COUNT_MAX = 100
/** The methods a CORS rule may allow (S3's list). */
const CORS_METHODS = ['GET', 'PUT', 'HEAD', 'POST', 'DELETE']
/** S3's words for a preflight no rule allows. */
const FORBIDDEN = 'CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource\'s CORS spec.'

/** PutBucketCors: the CORSConfiguration body, checked as S3 checks it, replaces the bucket's. */
export async function putBucketCors(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  const rules = parseCorsXml(await readXml(ctx, 'CORSConfiguration'))
  await ctx.client.setBucketS3(S3_VOLUME, bucket.name, 'cors', rules)
  return new Response(null, { status: 200 })
}

/** GetBucketCors: the rules; NoSuchCORSConfiguration (404) when there are none. */
export async function getBucketCors(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  const rules = bucket.s3?.cors
  if (rules === undefined) throw noSuchCors()
  return xmlResponse('CORSConfiguration', {
    CORSRule: rules.map((r) => ({
      ID: r.id, AllowedHeader: r.allowedHeaders, AllowedMethod: r.allowedMethods, AllowedOrigin: r.allowedOrigins,
      ExposeHeader: r.exposeHeaders, MaxAgeSeconds: r.maxAgeSeconds === undefined ? undefined : String(r.maxAgeSeconds),
    })),
  })
}

/** DeleteBucketCors: 204, with a configuration or without one. */
export async function deleteBucketCors(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  if (bucket.s3?.cors !== undefined) await ctx.client.setBucketS3(S3_VOLUME, bucket.name, 'cors', null)
  return new Response(null, { status: 204 })
}

function noSuchCors(): S3Error {
  return new S3Error('NoSuchCORSConfiguration', 'The CORS configuration does not exist')
}

/** A CORSConfiguration element's rules; MalformedXML or InvalidRequest (S3's codes) for what S3 refuses. */
export function parseCorsXml(body: Record<string, unknown>): CorsRule[] {
  const malformed = (why: string) => new S3Error('MalformedXML', `The XML you provided was not well-formed or did not validate against our published schema: ${why}`)
  const list = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v])
  const texts = (v: unknown, name: string): string[] => list(v).map((t) => {
    if (typeof t !== 'string' && typeof t !== 'number') throw malformed(`${name} must be text`)
    return String(t).trim()
  })
  const raw = list(body.CORSRule)
  if (raw.length === 0) throw malformed('a CORSConfiguration needs at least one CORSRule')
  if (raw.length > CORS_RULES_COUNT_MAX) throw new S3Error('InvalidRequest', `The number of CORS rules should not exceed allowed limit of ${CORS_RULES_COUNT_MAX} rules.`)
  return raw.map((r) => {
    if (typeof r !== 'object' || r === null) throw malformed('a CORSRule must have AllowedOrigin and AllowedMethod')
    const e = r as Record<string, unknown>
    const rule: CorsRule = {
      allowedOrigins: texts(e.AllowedOrigin, 'AllowedOrigin'), allowedMethods: texts(e.AllowedMethod, 'AllowedMethod'),
      allowedHeaders: texts(e.AllowedHeader, 'AllowedHeader'), exposeHeaders: texts(e.ExposeHeader, 'ExposeHeader'),
    }
    if (rule.allowedOrigins.length === 0 || rule.allowedMethods.length === 0) throw malformed('a CORSRule must have AllowedOrigin and AllowedMethod')
    for (const m of rule.allowedMethods) {
      if (!CORS_METHODS.includes(m)) throw new S3Error('InvalidRequest', `Found unsupported HTTP method in CORS config. Unsupported method is ${m}`)
    }
    for (const o of rule.allowedOrigins) {
      if (o.split('*').length > 2) throw new S3Error('InvalidRequest', `AllowedOrigin "${o}" can not have more than one wildcard.`)
    }
    for (const h of rule.allowedHeaders) {
      if (h.split('*').length > 2) throw new S3Error('InvalidRequest', `AllowedHeader "${h}" can not have more than one wildcard.`)
    }
    if (e.ID !== undefined) {
      const id = texts(e.ID, 'ID')
      if (id.length !== 1 || id[0]!.length > 255) throw malformed('ID must be one text of at most 255 characters')
      rule.id = id[0]
    }
    if (e.MaxAgeSeconds !== undefined) {
      const [age] = texts(e.MaxAgeSeconds, 'MaxAgeSeconds')
      if (!/^\d{1,10}$/.test(age ?? '') || !Number.isSafeInteger(Number(age))) throw malformed('MaxAgeSeconds must be a non-negative integer')
      rule.maxAgeSeconds = Number(age)
    }
    return rule
  })
}

/** Whether `text` matches a pattern with at most one `*` (any run of characters). */
function wildcardMatch(pattern: string, text: string): boolean {
  const star = pattern.indexOf('*')
  if (star < 0) return pattern === text
  const head = pattern.slice(0, star), tail = pattern.slice(star + 1)
  return text.length >= head.length + tail.length && text.startsWith(head) && text.endsWith(tail)
}

/**
 * The first rule allowing `origin` to make a `method` request, with `headers` (lower case)
 * for a preflight's Access-Control-Request-Headers; undefined when none does.
 */
export function matchCorsRule(rules: readonly CorsRule[], request: { origin: string; method: string; headers?: readonly string[] }): CorsRule | undefined {
  return rules.find((r) =>
    r.allowedOrigins.some((o) => wildcardMatch(o, request.origin)) &&
    r.allowedMethods.includes(request.method) &&
    (request.headers ?? []).every((h) => r.allowedHeaders.some((a) => wildcardMatch(a.toLowerCase(), h))))
}

/** The Access-Control-* headers of an answer under `rule` (S3 echoes the origin, or `*` for a rule of any origin). */
export function corsHeaders(rule: CorsRule, origin: string): Record<string, string> {
  const any = rule.allowedOrigins.includes('*')
  const headers: Record<string, string> = {
    'access-control-allow-origin': any ? '*' : origin,
    'access-control-allow-methods': rule.allowedMethods.join(', '),
    vary: 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method',
  }
  if (!any) headers['access-control-allow-credentials'] = 'true'
  if (rule.exposeHeaders.length > 0) headers['access-control-expose-headers'] = rule.exposeHeaders.join(', ')
  if (rule.maxAgeSeconds !== undefined) headers['access-control-max-age'] = String(rule.maxAgeSeconds)
  return headers
}

/**
 * A preflight (OPTIONS): unsigned, so the bucket is read here. 200 with the matching rule's
 * headers; 403 AccessForbidden when no rule (or no configuration) allows the request, as S3.
 */
export async function preflightCors(ctx: S3Context): Promise<Response> {
  const origin = ctx.req.headers.get('origin')
  if (origin === null || origin === '') throw new S3Error('InvalidRequest', 'Insufficient information. Origin request header needed.')
  const method = ctx.req.headers.get('access-control-request-method')
  if (method === null || !CORS_METHODS.includes(method)) throw new S3Error('InvalidRequest', `Invalid Access-Control-Request-Method: ${method ?? 'null'}`)
  const requested = (ctx.req.headers.get('access-control-request-headers') ?? '').split(',').map((h) => h.trim().toLowerCase()).filter((h) => h !== '')
  let bucket: BucketInfo
  try {
    bucket = await ctx.client.getBucket(S3_VOLUME, ctx.bucket!)
  } catch (err) {
    if (err instanceof O3Error && (err.code === 'BUCKET_NOT_FOUND' || err.code === 'VOLUME_NOT_FOUND' || err.code === 'INVALID_BUCKET_NAME')) throw new S3Error('NoSuchBucket', `The specified bucket ${ctx.bucket} does not exist`)
    throw err
  }
  const rule = matchCorsRule(bucket.s3?.cors ?? [], { origin, method, headers: requested })
  if (rule === undefined) throw new S3Error('AccessForbidden', FORBIDDEN)
  const headers = corsHeaders(rule, origin)
  if (requested.length > 0) headers['access-control-allow-headers'] = requested.join(', ')
  return new Response(null, { status: 200, headers })
}

/**
 * Adds the Access-Control-* headers of a request with an Origin to its answer, whatever its
 * status, when a rule of its bucket allows the origin and method. Nothing when none does,
 * or the bucket cannot be read.
 */
export function addCorsHeaders(res: Response, bucket: BucketInfo | undefined, origin: string, method: string): void {
  const rules = bucket?.s3?.cors
  if (rules === undefined) return
  const rule = matchCorsRule(rules, { origin, method })
  if (rule === undefined) return
  for (const [k, v] of Object.entries(corsHeaders(rule, origin))) res.headers.set(k, v)
}
