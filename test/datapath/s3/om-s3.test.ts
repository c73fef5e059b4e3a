/**
 * Goal: the OM RPCs the S3 gateway relies on: S3 secrets (create once, look up, revoke),
 * s3Authenticate (the OM verifies a request's signature with a secret it never returns, and
 * only then reads the bucket and opens the key a PUT writes) and commitMultipartKey (a key
 * made of other keys' blocks, no bytes moved). Method: a mini cluster; call the native
 * client with proofs signed as a gateway builds them; count the OM's open keys (its
 * o3_om_open_keys gauge, the size of openKeyTable); read the composed key back byte for byte.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { KiB } from '../../../core/limits.ts'
import { randomBytes, startMiniCluster } from '../../cluster/mini-cluster.ts'
import { errorCode } from '../../helpers.ts'
import { createHmac } from 'node:crypto'
import { signingKeyV4, signV2, stringToSignV4, type S3SignatureProof } from '../../../core/s3-signature.ts'
import type { S3OpenIntent } from '../../../core/om-wire.ts'

let cluster: Awaited<ReturnType<typeof startMiniCluster>>
let client: ReturnType<typeof cluster.client>

test.before(async () => {
  cluster = await startMiniCluster({ datanodes: 1, overrides: { 'client.chunkSizeBytes': 64 * KiB } })
  client = cluster.client({ chunkSizeBytes: 64 * KiB })
  await client.createVolume('vol1')
  await client.createBucket('vol1', 'bkt')
})

test.after(async () => { await cluster.dispose() })


test('getS3Secret() creates a key pair once; lookupS3Secret() finds it until revoked', async () => {
  const a = await client.getS3Secret('alice')
  assert.equal(await client.getS3Secret('alice'), a)
  assert.is.not((await client.getS3Secret('bob')).awsAccessKey, a.awsAccessKey)
  assert.equal(await client.lookupS3Secret(a.awsAccessKey), a)
  assert.equal(await client.revokeS3Secret('alice'), { revoked: 1 })
  assert.is(await errorCode(client.lookupS3Secret(a.awsAccessKey)), 'PERMISSION_DENIED')
  assert.is(await errorCode(client.getS3Secret('no/slash')), 'INVALID_ARGUMENT')
})

const SCOPE = '20260101/us-east-1/s3/aws4_request'

/** A SigV4 proof of a request whose canonical request hashes to `hash`, signed with `secret`. */
function proofV4(secret: string, hash = 'a'.repeat(64)): Extract<S3SignatureProof, { version: 4 }> {
  const parts = { amzDate: '20260101T000000Z', scope: SCOPE, canonicalRequestSha256: hash }
  return { version: 4, ...parts, signature: createHmac('sha256', signingKeyV4(secret, SCOPE)).update(stringToSignV4(parts)).digest('hex') }
}

/** The OM's openKeyTable size, from its own gauge. */
async function openKeys(): Promise<number> {
  return Number(/^o3_om_open_keys(?:\{[^}]*\})? (\d+)/m.exec(await cluster.om.metrics.text())?.[1] ?? -1)
}

const intent = (key: string, more: Partial<S3OpenIntent> = {}): S3OpenIntent => ({ volume: 'vol1', bucket: 'dora', key, sizeBytes: 4 * KiB, metadata: { 'content-type': 'text/plain' }, ...more })

test('s3Authenticate() with a wrong signature or an unknown key opens nothing and returns no record', async () => {
  const dora = await client.getS3Secret('dora')
  await client.createBucket('vol1', 'dora', { owner: 'dora' })
  const before = await openKeys()
  const ask = (proof: S3SignatureProof, accessKey = dora.awsAccessKey) => client.s3Authenticate({ accessKey, proof, signingKey: true, volume: 'vol1', bucket: 'dora', open: intent('k') })
  assert.is(await errorCode(ask(proofV4('not-the-secret'))), 'SIGNATURE_MISMATCH')
  assert.is(await errorCode(ask({ ...proofV4(dora.awsSecret), canonicalRequestSha256: 'b'.repeat(64) })), 'SIGNATURE_MISMATCH')
  assert.is(await errorCode(ask({ ...proofV4(dora.awsSecret), signature: 'f'.repeat(1000) })), 'SIGNATURE_MISMATCH')
  assert.is(await errorCode(ask({ version: 2, stringsToSign: ['PUT\n\n\n\n/dora/k'], signature: signV2('wrong', 'PUT\n\n\n\n/dora/k') })), 'SIGNATURE_MISMATCH')
  assert.is(await errorCode(ask(proofV4(dora.awsSecret), 'NOSUCHKEY')), 'PERMISSION_DENIED')
  assert.is(await openKeys(), before)
  // A null proof asks only whether the key exists: the user, nothing read, nothing opened.
  assert.equal(await client.s3Authenticate({ accessKey: dora.awsAccessKey, proof: null, volume: 'vol1', bucket: 'dora', open: intent('k') }), { user: 'dora' })
  assert.is(await openKeys(), before)
})

test('s3Authenticate() with a good signature returns the bucket and the open key with its first block, never the secret', async () => {
  const dora = await client.getS3Secret('dora')
  const before = await openKeys()
  const r = await client.s3Authenticate({ accessKey: dora.awsAccessKey, proof: proofV4(dora.awsSecret), volume: 'vol1', bucket: 'dora', open: intent('k') })
  assert.is(r.user, 'dora')
  assert.ok(r.bucket?.ok && r.bucket.value.owner === 'dora')
  assert.ok(r.opened?.ok, JSON.stringify(r.opened))
  assert.ok(r.opened.value.blocks.length >= 1)
  assert.is(r.signingKeyHex, undefined)
  assert.not.ok(JSON.stringify(r).includes(dora.awsSecret))
  assert.is(await openKeys(), before + 1)
  // The open key is an ordinary one: written and committed by its writer.
  const writer = await client.keyWriterFor(r.opened.value, { sizeBytes: 4 * KiB })
  const body = randomBytes(4 * KiB, 3)
  await writer.write(body)
  await writer.close()
  assert.ok(Buffer.from(await client.getKey('vol1', 'dora', 'k')).equals(body))
  assert.is(await openKeys(), before)
  // SigV2: any of the strings to sign may match; no signing key exists for it.
  const v2 = await client.s3Authenticate({ accessKey: dora.awsAccessKey, proof: { version: 2, stringsToSign: ['x', 'PUT\n\n\n\n/dora/k'], signature: signV2(dora.awsSecret, 'PUT\n\n\n\n/dora/k') }, signingKey: true, volume: 'vol1', bucket: 'dora' })
  assert.equal(v2, { user: 'dora', bucket: v2.bucket })
})

test("s3Authenticate() returns the scope's signing key only when asked, for an aws-chunked body", async () => {
  const dora = await client.getS3Secret('dora')
  const r = await client.s3Authenticate({ accessKey: dora.awsAccessKey, proof: proofV4(dora.awsSecret), signingKey: true })
  assert.is(r.signingKeyHex, signingKeyV4(dora.awsSecret, SCOPE).toString('hex'))
})

test('s3Authenticate() opens nothing where the handler would refuse: missing or foreign bucket (whose key it still reads), existing key with ifNotExists, missing required key', async () => {
  const dora = await client.getS3Secret('dora')
  await client.createBucket('vol1', 'eds', { owner: 'ed' })
  await client.putKey('vol1', 'dora', 'exists', randomBytes(10, 4))
  const before = await openKeys()
  const ask = (bucket: string, open: S3OpenIntent, key?: string) => client.s3Authenticate({ accessKey: dora.awsAccessKey, proof: proofV4(dora.awsSecret), volume: 'vol1', bucket, key, open })
  const missing = await ask('nosuch', intent('k', { bucket: 'nosuch' }))
  assert.is(missing.bucket?.ok === false && missing.bucket.error.code, 'BUCKET_NOT_FOUND')
  assert.is(missing.opened, undefined)
  // Another's bucket: its key is read (the gateway authorizes), nothing is opened in it.
  const foreign = await ask('eds', intent('k', { bucket: 'eds' }), 'k')
  assert.ok(foreign.bucket?.ok)
  assert.is(foreign.key?.ok === false && foreign.key.error.code, 'KEY_NOT_FOUND')
  assert.is(foreign.opened, undefined)
  const exists = await ask('dora', intent('exists', { ifNotExists: true }), 'exists')
  assert.ok(exists.key?.ok)
  assert.is(exists.opened, undefined)
  const required = await ask('dora', intent('part', { requireKey: { volume: 'vol1', bucket: 'dora', key: 'no-upload' } }))
  assert.is(required.required?.ok === false && required.required.error.code, 'KEY_NOT_FOUND')
  assert.is(required.opened, undefined)
  assert.is(await errorCode(ask('dora', intent('k', { bucket: 'eds' }))), 'INVALID_ARGUMENT')
  assert.is(await openKeys(), before)
  // Each condition met: the key is opened (and aborted here, as the gateway does with one its handler did not take).
  const fresh = await ask('dora', intent('new', { ifNotExists: true }), 'new')
  assert.ok(fresh.opened?.ok)
  await client.abortOpenKey(fresh.opened.value.clientId)
  assert.is(await openKeys(), before)
})

test('s3Authenticate() without an access key (anonymous) reads the bucket and key, names no user and opens nothing', async () => {
  await client.putKey('vol1', 'dora', 'anon', randomBytes(10, 5))
  const before = await openKeys()
  const r = await client.s3Authenticate({ proof: null, volume: 'vol1', bucket: 'dora', key: 'anon', open: intent('anon-new') })
  assert.is(r.user, undefined)
  assert.ok(r.bucket?.ok)
  assert.is(r.key?.ok === true && r.key.value.size, 10)
  assert.is(r.opened, undefined)
  assert.is(await openKeys(), before)
  const none = await client.s3Authenticate({ proof: null, volume: 'vol1', bucket: 'nosuch' })
  assert.is(none.bucket?.ok === false && none.bucket.error.code, 'BUCKET_NOT_FOUND')
})

test('s3Authenticate() refuses a revoked key on the very next call', async () => {
  const fay = await client.getS3Secret('fay')
  assert.is((await client.s3Authenticate({ accessKey: fay.awsAccessKey, proof: proofV4(fay.awsSecret) })).user, 'fay')
  await client.revokeS3Secret('fay')
  assert.is(await errorCode(client.s3Authenticate({ accessKey: fay.awsAccessKey, proof: proofV4(fay.awsSecret) })), 'PERMISSION_DENIED')
})

test('commitMultipartKey() concatenates the parts and removes them', async () => {
  const one = randomBytes(100 * KiB, 1), two = randomBytes(3 * KiB, 2)
  await client.putKey('vol1', 'bkt', 'p1', one)
  await client.putKey('vol1', 'bkt', 'p2', two)
  const key = await client.commitMultipartKey('vol1', 'bkt', 'whole', [{ volume: 'vol1', bucket: 'bkt', key: 'p1' }, { volume: 'vol1', bucket: 'bkt', key: 'p2' }], { etag: 'x' })
  assert.is(key.size, one.length + two.length)
  assert.ok((await client.getKey('vol1', 'bkt', 'whole')).equals(Buffer.concat([one, two])))
  assert.is(await errorCode(client.headKey('vol1', 'bkt', 'p1')), 'KEY_NOT_FOUND')
  const again = await client.commitMultipartKey('vol1', 'bkt', 'whole', [{ volume: 'vol1', bucket: 'bkt', key: 'whole' }], { tag: 'y' })
  assert.equal(again.metadata, { tag: 'y' })
  assert.ok((await client.getKey('vol1', 'bkt', 'whole')).equals(Buffer.concat([one, two])))
  assert.is((await client.getBucket('vol1', 'bkt')).usedNamespace, 1)
  assert.is(await errorCode(client.commitMultipartKey('vol1', 'bkt', 'x', [{ volume: 'vol1', bucket: 'bkt', key: 'gone' }], {})), 'KEY_NOT_FOUND')
  // keepTimes (S3 PutObjectTagging/PutObjectAcl): only the metadata changes, not the key's times.
  await new Promise((r) => setTimeout(r, 5))
  const kept = await client.commitMultipartKey('vol1', 'bkt', 'whole', [{ volume: 'vol1', bucket: 'bkt', key: 'whole' }], { tag: 'z' }, { keepTimes: true })
  assert.equal([kept.metadata, kept.createdAtMs, kept.modifiedAtMs], [{ tag: 'z' }, again.createdAtMs, again.modifiedAtMs])
  assert.is(await errorCode(client.commitMultipartKey('vol1', 'bkt', 'other', [{ volume: 'vol1', bucket: 'bkt', key: 'whole' }], {}, { keepTimes: true })), 'INVALID_ARGUMENT')
})

test.run()
