/** @module
 * Object operations: PutObject (with If-None-Match: * create-only), GetObject and HeadObject
 * (Range, If-Match / If-None-Match / If-Modified-Since / If-Unmodified-Since, response-*
 * overrides, checksum mode), DeleteObject and DeleteObjects. Bodies stream both ways.
 */
import { Readable } from 'node:stream'
import type { KeyInfo } from '../client/index.ts'
import { O3Error } from '../../core/errors.ts'
import { S3Error } from './errors.ts'
import {
  etagOf, evaluateConditions, headObject, metadataFromHeaders, objectHeaders, ownedBucket, preconditionFailed, requestPayload, storePayload, S3_VOLUME, type ConditionHeaders, type S3Context,
} from './context.ts'
import { readXml, xmlResponse } from './xml.ts'

/** DeleteObjects takes at most this many keys (S3's limit). */
const DELETE_OBJECTS_COUNT_MAX = 1000

async function keyExists(ctx: S3Context, key: string): Promise<boolean> {
  try {
    await ctx.client.headKey(S3_VOLUME, ctx.bucket!, key)
    return true
  } catch (err) {
    if (err instanceof O3Error && err.code === 'KEY_NOT_FOUND') return false
    throw err
  }
}

export async function putObject(ctx: S3Context): Promise<Response> {
  await ownedBucket(ctx)
  const createOnly = ctx.req.headers.get('if-none-match') === '*'
  // The early look spares uploading a body that will be refused; the OM's conditional commit
  // is what makes create-only atomic when two writers race.
  if (createOnly && await keyExists(ctx, ctx.key!)) throw preconditionFailed()
  const payload = requestPayload(ctx)
  let info: KeyInfo
  try {
    info = await storePayload(ctx, { volume: S3_VOLUME, bucket: ctx.bucket!, key: ctx.key!, ifNotExists: createOnly }, payload, metadataFromHeaders(ctx.req.headers))
  } catch (err) {
    if (createOnly && err instanceof O3Error && err.code === 'KEY_ALREADY_EXISTS') throw preconditionFailed()
    throw err
  }
  const headers: Record<string, string> = { etag: etagOf(info) }
  for (const [k, v] of Object.entries(info.metadata)) if (k.startsWith('x-amz-checksum-')) headers[k] = v
  return new Response(null, { status: 200, headers })
}

const GET_CONDITIONS: ConditionHeaders = { ifMatch: 'if-match', ifNoneMatch: 'if-none-match', ifUnmodifiedSince: 'if-unmodified-since', ifModifiedSince: 'if-modified-since' }

/** A 304 response when GET's conditions find the object not modified; throws 412 when they fail. */
function checkConditions(headers: Headers, info: KeyInfo): Response | undefined {
  const outcome = evaluateConditions(headers, GET_CONDITIONS, info)
  if (outcome === 'failed') throw preconditionFailed()
  if (outcome === 'notModified') return new Response(null, { status: 304, headers: { etag: etagOf(info), 'last-modified': new Date(info.modifiedAtMs).toUTCString() } })
  return undefined
}

/** Parses `bytes=a-b`, `bytes=a-`, `bytes=-n`; undefined means the whole object (also for forms S3 ignores). */
export function parseRange(header: string | null, size: number): { offset: number; length: number } | undefined {
  if (header === null) return undefined
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (m === null || (m[1] === '' && m[2] === '')) return undefined
  const unsatisfiable = () => new S3Error('InvalidRange', 'The requested range is not satisfiable', { 'content-range': `bytes */${size}` })
  if (m[1] === '') {
    const n = Number(m[2])
    if (n === 0 || size === 0) throw unsatisfiable()
    const length = Math.min(n, size)
    return { offset: size - length, length }
  }
  const first = Number(m[1])
  const last = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  if (m[2] !== '' && Number(m[2]) < first) return undefined
  if (first >= size) throw unsatisfiable()
  return { offset: first, length: last - first + 1 }
}

const OVERRIDES = ['content-type', 'content-language', 'expires', 'cache-control', 'content-disposition', 'content-encoding'] as const

export async function getObject(ctx: S3Context, head: boolean): Promise<Response> {
  await ownedBucket(ctx)
  const info = await headObject(ctx, ctx.bucket!, ctx.key!)
  const early = checkConditions(ctx.req.headers, info)
  if (early !== undefined) return early
  if (ctx.query.has('partNumber')) {
    const n = Number(ctx.query.get('partNumber'))
    if (!Number.isSafeInteger(n) || n < 1 || n > 10_000) throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000')
    if (n !== 1) throw new S3Error('InvalidRange', 'The requested part does not exist', { 'content-range': `bytes */${info.size}` })
  }
  const range = parseRange(ctx.req.headers.get('range'), info.size)
  // The stored checksum covers the whole object: S3 returns it only for whole reads.
  const headers = objectHeaders(info, range === undefined && ctx.req.headers.get('x-amz-checksum-mode')?.toUpperCase() === 'ENABLED')
  for (const o of OVERRIDES) {
    const v = ctx.query.get(`response-${o}`)
    if (v !== null) headers[o] = v
  }
  let status = 200
  let length = info.size
  if (range !== undefined) {
    status = 206
    length = range.length
    headers['content-range'] = `bytes ${range.offset}-${range.offset + range.length - 1}/${info.size}`
  }
  headers['content-length'] = String(length)
  if (head || length === 0) return new Response(null, { status, headers })
  const stream = ctx.client.readKeyInfo(info, range ?? { offset: 0, length: info.size })
  return new Response(Readable.toWeb(stream) as ReadableStream<Uint8Array>, { status, headers })
}

export async function deleteObject(ctx: S3Context): Promise<Response> {
  await ownedBucket(ctx)
  try {
    await ctx.client.deleteKey(S3_VOLUME, ctx.bucket!, ctx.key!)
  } catch (err) {
    if (!(err instanceof O3Error && err.code === 'KEY_NOT_FOUND')) throw err
  }
  return new Response(null, { status: 204 })
}

export async function deleteObjects(ctx: S3Context): Promise<Response> {
  await ownedBucket(ctx)
  const body = await readXml(ctx.req, 'Delete', ctx.bodyIdleTimeoutMs)
  const objects = (body.Object ?? []) as { Key?: unknown }[]
  if (!Array.isArray(objects) || objects.length === 0 || objects.length > DELETE_OBJECTS_COUNT_MAX) throw new S3Error('MalformedXML', `Delete must list 1..${DELETE_OBJECTS_COUNT_MAX} objects`)
  const quiet = String(body.Quiet ?? 'false').trim() === 'true'
  const deleted: { Key: string }[] = []
  const errors: { Key: string; Code: string; Message: string }[] = []
  for (const o of objects) {
    const key = typeof o.Key === 'string' ? o.Key : undefined
    if (key === undefined) throw new S3Error('MalformedXML', 'Every Object needs a Key')
    try {
      await ctx.client.deleteKey(S3_VOLUME, ctx.bucket!, key)
      deleted.push({ Key: key })
    } catch (err) {
      if (err instanceof O3Error && err.code === 'KEY_NOT_FOUND') deleted.push({ Key: key })
      else errors.push({ Key: key, Code: err instanceof O3Error && err.code === 'INVALID_KEY_NAME' ? 'InvalidArgument' : 'InternalError', Message: (err as Error).message })
    }
  }
  return xmlResponse('DeleteResult', { Deleted: quiet ? [] : deleted, Error: errors })
}
