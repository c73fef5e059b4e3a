/**
 * Goal: the pure rules of datapath/s3/checksums.ts hold: S3's table of checksum types per
 * algorithm, the checks on values, the type told by a stored value, and the parts' checksums
 * kept while they fit S3_PART_CHECKSUMS_BYTES_MAX. Method: direct calls, including the
 * bounds (a budget exactly full and one part past it) that a real upload would need
 * hundreds of 5 MiB parts to reach.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { S3_PART_CHECKSUMS_BYTES_MAX } from '../../../core/limits.ts'
import {
  checkChecksumValue, checksumHeaders, encodePartChecksums, parseAlgorithm, partChecksums, PART_CHECKSUMS_METADATA, storedChecksum, uploadChecksumType,
} from '../../../datapath/s3/checksums.ts'
import { S3Error } from '../../../datapath/s3/errors.ts'

const codeOf = (f: () => unknown) => { try { f(); return 'OK' } catch (err) { return err instanceof S3Error ? err.code : String(err) } }

test('uploadChecksumType() follows S3\'s table: defaults, allowed pairs, refusals', () => {
  assert.is(uploadChecksumType('crc64nvme', null), 'FULL_OBJECT')
  assert.is(uploadChecksumType('crc32', null), 'COMPOSITE')
  assert.is(uploadChecksumType('crc32c', 'FULL_OBJECT'), 'FULL_OBJECT')
  assert.is(uploadChecksumType('sha256', 'composite'), 'COMPOSITE')
  assert.is(uploadChecksumType(undefined, null), undefined)
  for (const [a, t] of [['sha1', 'FULL_OBJECT'], ['sha256', 'FULL_OBJECT'], ['crc64nvme', 'COMPOSITE'], ['crc32', 'WHOLE']] as const) {
    assert.is(codeOf(() => uploadChecksumType(a, t)), 'InvalidRequest', `${a} ${t}`)
  }
  assert.is(codeOf(() => uploadChecksumType(undefined, 'COMPOSITE')), 'InvalidRequest')
})

test('parseAlgorithm() takes S3\'s names in any case and refuses others', () => {
  assert.is(parseAlgorithm('CRC64NVME'), 'crc64nvme')
  assert.is(parseAlgorithm(null), undefined)
  assert.is(codeOf(() => parseAlgorithm('MD5')), 'InvalidRequest')
})

test('checkChecksumValue() wants the base64 of exactly the digest\'s bytes', () => {
  assert.is(codeOf(() => checkChecksumValue('crc32', 'AAAAAA==')), 'OK')
  assert.is(codeOf(() => checkChecksumValue('crc64nvme', 'AAAAAAAAAAA=')), 'OK')
  assert.is(codeOf(() => checkChecksumValue('crc64nvme', 'AAAAAA==')), 'InvalidRequest')
  assert.is(codeOf(() => checkChecksumValue('sha256', 'not base64!')), 'InvalidRequest')
})

test('storedChecksum() tells a COMPOSITE checksum by its -N and checksumHeaders() shows the type', () => {
  assert.equal(storedChecksum({ 'x-amz-checksum-sha1': 'abc=-3' }), { algorithm: 'sha1', value: 'abc=-3', type: 'COMPOSITE' })
  assert.equal(checksumHeaders({ 'x-amz-checksum-crc32': 'AAAAAA==', etag: 'x' }), { 'x-amz-checksum-crc32': 'AAAAAA==', 'x-amz-checksum-type': 'FULL_OBJECT' })
  assert.equal(checksumHeaders({ etag: 'x' }), {})
})

test('encodePartChecksums() keeps the parts\' checksums up to S3_PART_CHECKSUMS_BYTES_MAX, and partChecksums() reads them back', () => {
  const value = (i: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(i); return b.toString('base64') }
  // 'crc32:' then 4 base64 characters per 3 bytes.
  const fits = Math.floor(Math.floor((S3_PART_CHECKSUMS_BYTES_MAX - 'crc32:'.length) / 4) * 3 / 4)
  const values = Array.from({ length: fits }, (_, i) => value(i))
  const kept = encodePartChecksums('crc32', values)
  assert.ok(kept !== undefined && kept.length <= S3_PART_CHECKSUMS_BYTES_MAX)
  assert.equal(partChecksums({ [PART_CHECKSUMS_METADATA]: kept! }), { algorithm: 'crc32', values })
  assert.is(encodePartChecksums('crc32', [...values, value(1), value(2), value(3)]), undefined)
  assert.is(partChecksums({}), undefined)
})

test.run()
