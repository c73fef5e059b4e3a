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

async function decode(wire: string, pieceBytes: number): Promise<{ data: string; trailers: Record<string, string> }> {
  const bytes = Buffer.from(wire)
  async function* pieces() { for (let i = 0; i < bytes.length; i += pieceBytes) yield bytes.subarray(i, i + pieceBytes) }
  const trailers: Record<string, string> = {}
  let data = ''
  for await (const p of decodeChunked(pieces(), { signed: false, trailer: true, auth, key: Buffer.alloc(32), seed: '', trailers })) data += Buffer.from(p).toString()
  return { data, trailers }
}

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
