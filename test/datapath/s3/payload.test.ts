/**
 * Goal: the gateway's pure parsing pieces on edge cases that clients rarely produce on
 * demand: aws-chunked framing split at every byte boundary, Range forms, SigV4 canonical
 * query and path encoding. Method: feed inputs directly, compare with hand-computed results.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { decodeChunked } from '../../../datapath/s3/payload.ts'
import { parseRange } from '../../../datapath/s3/objects.ts'
import { canonicalPath, canonicalQuery, type AuthParams } from '../../../datapath/s3/sigv4.ts'
import { S3Error } from '../../../datapath/s3/errors.ts'

const auth: AuthParams = { kind: 'header', accessKey: 'k', scope: '20250101/us-east-1/s3/aws4_request', amzDate: '20250101T000000Z', signedHeaders: ['host'], signature: '', payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' }

async function decode(wire: string, pieceBytes: number, o: { trailer?: boolean; out?: { pieces: number } } = {}): Promise<{ data: string; trailers: Record<string, string> }> {
  const bytes = Buffer.from(wire)
  async function* pieces() { for (let i = 0; i < bytes.length; i += pieceBytes) yield bytes.subarray(i, i + pieceBytes) }
  const trailers: Record<string, string> = {}
  // Each piece kept as handed on (a view, not a copy): a buffer the decoder reused would show.
  const parts: Uint8Array[] = []
  for await (const p of decodeChunked(pieces(), { signed: false, trailer: o.trailer ?? true, auth, key: Buffer.alloc(32), seed: '', trailers })) parts.push(p)
  if (o.out !== undefined) o.out.pieces = parts.length
  return { data: Buffer.concat(parts).toString(), trailers }
}

test('decodeChunked() hands on tiny unsigned chunks gathered in runs, in order, among large ones', async () => {
  const tiny = Array.from({ length: 100_000 }, (_, i) => String.fromCharCode(97 + (i % 26)))
  const large = 'L'.repeat(10_000)
  const wire = tiny.slice(0, 50_000).map((c) => `1\r\n${c}\r\n`).join('') + `${large.length.toString(16)}\r\n${large}\r\n` + tiny.slice(50_000).map((c) => `1\r\n${c}\r\n`).join('') + '0\r\n\r\n'
  const out = { pieces: 0 }
  const { data } = await decode(wire, 65536, { out })
  assert.is(data, tiny.slice(0, 50_000).join('') + large + tiny.slice(50_000).join(''))
  // 100,000 one-byte chunks: a handful of 64 KiB runs (and the large chunk's pieces), not 100,000 pieces.
  assert.ok(out.pieces < 20, `${out.pieces} pieces`)
})

test('decodeChunked() refuses a trailer over 8 KiB, and any trailer where none is declared', async () => {
  const flood = '5\r\nhello\r\n0\r\n' + 'x-a:b\r\n'.repeat(2000) + '\r\n'
  for (const [wire, trailer] of [[flood, true], ['5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n', false]] as const) {
    let err: unknown
    try { await decode(wire, 4096, { trailer }) } catch (e) { err = e }
    assert.instance(err, S3Error, wire.slice(0, 40))
    assert.is((err as S3Error).code, 'IncompleteBody')
  }
  assert.is((await decode('5\r\nhello\r\n0\r\n\r\n', 3, { trailer: false })).data, 'hello')
})

test('decodeChunked() reads unsigned aws-chunked bodies with trailers however the bytes are split', async () => {
  const wire = '5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n'
  for (const n of [1, 2, 3, 7, 1000]) {
    assert.equal(await decode(wire, n), { data: 'hello world', trailers: { 'x-amz-checksum-crc32': 'AAAAAA==' } }, `pieces of ${n}`)
  }
})

test("decodeChunked() reads minio-go's trailer (LF-ended lines, one CRLF more) however the bytes are split", async () => {
  const wire = '5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\n\r\n\r\n'
  for (const n of [1, 2, 5, 1000]) {
    assert.equal(await decode(wire, n), { data: 'hello', trailers: { 'x-amz-checksum-crc32': 'AAAAAA==' } }, `pieces of ${n}`)
  }
})

test('decodeChunked() refuses truncated and malformed framing, and anything after the final chunk', async () => {
  for (const wire of ['5\r\nhel', '5\r\nhelloXX0\r\n\r\n', 'zz\r\n', '5;chunk-signature=\r\nhello\r\n', '5\r\nhello\r\n0\r\n\r\nmore', '5\r\nhello\r\n0\r\n\r\n3\r\nabc\r\n0\r\n\r\n']) {
    let err: unknown
    try { await decode(wire, 3) } catch (e) { err = e }
    assert.instance(err, S3Error, wire)
  }
})

test('parseRange() handles first-last, open-ended and suffix ranges; unsatisfiable is InvalidRange', () => {
  assert.equal(parseRange('bytes=0-9', 100), { offset: 0, length: 10 })
  assert.equal(parseRange('bytes=90-', 100), { offset: 90, length: 10 })
  assert.equal(parseRange('bytes=-10', 100), { offset: 90, length: 10 })
  assert.equal(parseRange('bytes=-500', 100), { offset: 0, length: 100 })
  assert.equal(parseRange('bytes=50-5000', 100), { offset: 50, length: 50 })
  assert.is(parseRange(null, 100), undefined)
  assert.is(parseRange('bytes=0-1,5-6', 100), undefined)
  assert.is(parseRange('bytes=9-3', 100), undefined)
  for (const r of ['bytes=100-', 'bytes=-0']) {
    try { parseRange(r, 100); assert.unreachable(r) } catch (e) { assert.is((e as S3Error).code, 'InvalidRange') }
  }
})

test('canonicalQuery() sorts and re-encodes; canonicalPath() encodes each segment once', () => {
  assert.is(canonicalQuery('prefix=a%2Fb&list-type=2&delimiter=%2F&uploads'), 'delimiter=%2F&list-type=2&prefix=a%2Fb&uploads=')
  assert.is(canonicalQuery('X-Amz-Signature=abc&b=1', 'X-Amz-Signature'), 'b=1')
  assert.is(canonicalQuery("k=a b*'"), 'k=a%20b%2A%27')
  assert.is(canonicalPath('/bkt/a b/c%20d/(x)'), '/bkt/a%20b/c%20d/%28x%29')
  assert.is(canonicalPath('/bkt/a/../b//c'), '/bkt/a/../b//c')
})

test.run()
