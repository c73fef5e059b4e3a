/** @module
 * Listing: ListObjectsV2, ListObjects (v1) and ListObjectVersions (current objects under
 * version id `null`, for tools that clean up with it), over the OM's paged listKeys: prefix,
 * delimiter with CommonPrefixes, max-keys, continuation-token / marker / start-after,
 * encoding-type=url, fetch-owner (each key's own owner: its writer, as its ACL records).
 */
import type { BucketInfo, KeyInfo } from '../client/index.ts'
import { LIST_KEYS_COUNT_MAX } from '../../core/limits.ts'
import { listedChecksum } from './checksums.ts'
import { S3Error } from './errors.ts'
import { keyOwner } from './acl.ts'
import { etagOf, requestBucket, S3_VOLUME, type S3Context } from './context.ts'
import { wholeNumber } from './whole-number.ts'
import { awsEncode } from './sigv4.ts'
import { xmlResponse } from './xml.ts'

/** S3's max-keys ceiling (and default). */
const LIST_MAX_KEYS = 1000

interface Entry { name: string; key?: KeyInfo }

/** Keys and common prefixes after `startAfter`, in UTF-8 byte order, at most `max`. */
async function walk(ctx: S3Context, o: { prefix: string; delimiter: string; startAfter: string; max: number }): Promise<{ entries: Entry[]; truncated: boolean }> {
  const entries: Entry[] = []
  let after = o.startAfter
  let lastPrefix: string | undefined
  for (;;) {
    const page = await ctx.client.listKeys(S3_VOLUME, ctx.bucket!, { prefix: o.prefix, startAfter: after === '' ? undefined : after, maxKeys: LIST_KEYS_COUNT_MAX })
    for (const k of page.keys) {
      after = k.name
      let entry: Entry = { name: k.name, key: k }
      if (o.delimiter !== '') {
        const at = k.name.indexOf(o.delimiter, o.prefix.length)
        if (at >= 0) {
          const cp = k.name.slice(0, at + o.delimiter.length)
          if (cp === lastPrefix) continue
          lastPrefix = cp
          // S3 leaves out a common prefix that does not sort after StartAfter (its documented
          // rule), even when keys after StartAfter fall inside it.
          if (Buffer.compare(Buffer.from(cp), Buffer.from(o.startAfter)) <= 0) continue
          entry = { name: cp }
        }
      }
      if (entries.length >= o.max) return { entries, truncated: true }
      entries.push(entry)
    }
    if (!page.truncated) return { entries, truncated: false }
    // Still inside a common prefix: jump past all its keys rather than page through them.
    // U+10FFFF is the largest code point, so every key under the prefix sorts before it.
    if (lastPrefix !== undefined && after.startsWith(lastPrefix)) after = lastPrefix + '\u{10FFFF}'
  }
}

function maxKeys(ctx: S3Context): number {
  const raw = ctx.query.get('max-keys')
  if (raw === null) return LIST_MAX_KEYS
  const n = wholeNumber(raw)
  if (Number.isNaN(n)) throw new S3Error('InvalidArgument', 'max-keys must be a non-negative integer')
  return Math.min(n, LIST_MAX_KEYS)
}

/** encoding-type=url: S3 then URL-encodes key names (and prefixes, markers, delimiters) in
 *  a listing, so keys XML 1.0 cannot carry (control characters) reach every client. */
export function encoder(ctx: S3Context): (s: string) => string {
  const type = ctx.query.get('encoding-type')
  if (type !== null && type !== 'url') throw new S3Error('InvalidArgument', 'Invalid Encoding Method specified in Request')
  return type === 'url' ? (s) => awsEncode(s, true) : (s) => s
}

/** A listed key; `owner`: the bucket, whose owner owns keys written without an ACL of their own, to show the key's owner (keyOwner). */
function content(k: KeyInfo, enc: (s: string) => string, owner: BucketInfo | undefined): Record<string, unknown> {
  return {
    Key: enc(k.name), LastModified: new Date(k.modifiedAtMs).toISOString(), ETag: etagOf(k), Size: k.size, StorageClass: 'STANDARD',
    ...(owner !== undefined ? { Owner: keyOwner(k.metadata, owner) } : {}),
    ...listedChecksum(k.metadata),
  }
}

export async function listObjectsV2(ctx: S3Context): Promise<Response> {
  const bucket = await requestBucket(ctx)
  const enc = encoder(ctx)
  const prefix = ctx.query.get('prefix') ?? ''
  const delimiter = ctx.query.get('delimiter') ?? ''
  const token = ctx.query.get('continuation-token')
  const startAfterParam = ctx.query.get('start-after') ?? ''
  let startAfter = startAfterParam
  // An empty token is no token: S3 lists from the start and echoes it (as Ozone's HDDS-15739
  // found); clients that pass the last page's absent NextContinuationToken along send one.
  if (token !== null && token !== '') {
    // A token is what NextContinuationToken gave: a key name in base64url. Node decodes any
    // text leniently (skipping what is not base64), so a token is taken only if it encodes back to itself.
    const decoded = Buffer.from(token, 'base64url')
    startAfter = decoded.toString('utf8')
    if (decoded.toString('base64url') !== token || !startAfter.isWellFormed() || Buffer.byteLength(startAfter) !== decoded.length) throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect')
  }
  const max = maxKeys(ctx)
  const { entries, truncated } = max === 0 ? { entries: [], truncated: false } : await walk(ctx, { prefix, delimiter, startAfter, max })
  const owner = ctx.query.get('fetch-owner') === 'true' ? bucket : undefined
  return xmlResponse('ListBucketResult', {
    Name: ctx.bucket, Prefix: enc(prefix), ...(delimiter !== '' ? { Delimiter: enc(delimiter) } : {}), MaxKeys: max, KeyCount: entries.length, IsTruncated: truncated,
    ...(token !== null ? { ContinuationToken: token } : {}),
    ...(truncated ? { NextContinuationToken: Buffer.from(entries[entries.length - 1].name).toString('base64url') } : {}),
    ...(startAfterParam !== '' ? { StartAfter: enc(startAfterParam) } : {}),
    ...(ctx.query.get('encoding-type') === 'url' ? { EncodingType: 'url' } : {}),
    Contents: entries.filter((e) => e.key !== undefined).map((e) => content(e.key!, enc, owner)),
    CommonPrefixes: entries.filter((e) => e.key === undefined).map((e) => ({ Prefix: enc(e.name) })),
  })
}

/** The request's listing parameters and the page they select, `marker` naming the start-after parameter. */
async function page(ctx: S3Context, marker: string) {
  const bucket = await requestBucket(ctx)
  const enc = encoder(ctx)
  const prefix = ctx.query.get('prefix') ?? ''
  const delimiter = ctx.query.get('delimiter') ?? ''
  const after = ctx.query.get(marker) ?? ''
  const max = maxKeys(ctx)
  const { entries, truncated } = max === 0 ? { entries: [], truncated: false } : await walk(ctx, { prefix, delimiter, startAfter: after, max })
  const keys = entries.filter((e) => e.key !== undefined)
  const common = entries.filter((e) => e.key === undefined).map((e) => ({ Prefix: enc(e.name) }))
  const next = truncated ? enc(entries[entries.length - 1].name) : undefined
  return { bucket, enc, prefix, delimiter, after, max, keys, common, truncated, next }
}

export async function listObjectsV1(ctx: S3Context): Promise<Response> {
  const p = await page(ctx, 'marker')
  return xmlResponse('ListBucketResult', {
    Name: ctx.bucket, Prefix: p.enc(p.prefix), Marker: p.enc(p.after), ...(p.delimiter !== '' ? { Delimiter: p.enc(p.delimiter) } : {}), MaxKeys: p.max, IsTruncated: p.truncated,
    // S3 answers NextMarker only to a request with a delimiter; without one a client takes the
    // last key, which it has decoded (minio-js sends an answered NextMarker on still encoded).
    ...(p.next !== undefined && p.delimiter !== '' ? { NextMarker: p.next } : {}),
    ...(ctx.query.get('encoding-type') === 'url' ? { EncodingType: 'url' } : {}),
    Contents: p.keys.map((e) => content(e.key!, p.enc, p.bucket)),
    CommonPrefixes: p.common,
  })
}

export async function listObjectVersions(ctx: S3Context): Promise<Response> {
  const p = await page(ctx, 'key-marker')
  return xmlResponse('ListVersionsResult', {
    Name: ctx.bucket, Prefix: p.enc(p.prefix), KeyMarker: p.enc(p.after), VersionIdMarker: '', ...(p.delimiter !== '' ? { Delimiter: p.enc(p.delimiter) } : {}), MaxKeys: p.max, IsTruncated: p.truncated,
    ...(p.next !== undefined ? { NextKeyMarker: p.next, NextVersionIdMarker: 'null' } : {}),
    // Clients decode the names only when the answer says they are encoded (botocore does).
    ...(ctx.query.get('encoding-type') === 'url' ? { EncodingType: 'url' } : {}),
    Version: p.keys.map((e) => ({ ...content(e.key!, p.enc, p.bucket), VersionId: 'null', IsLatest: true })),
    CommonPrefixes: p.common,
  })
}
