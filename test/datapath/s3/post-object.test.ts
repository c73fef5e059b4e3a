/**
 * Goal: browser-based uploads (PostObject) work as S3's: a form signed with SigV4 (boto3's
 * generate_presigned_post) or SigV2 stores its file with the form's metadata and tags, under
 * a key that may hold ${filename}, with the ACL its acl field names and the checksums its
 * Content-MD5 / x-amz-checksum-* fields (verified), and answers as
 * success_action_status / _redirect ask; a form that breaks its policy (a condition, an extra
 * field, expiry, content-length-range), carries a wrong signature, or is not allowed a
 * PutObject (another user's bucket, a bucket policy's Deny, an unsigned form to a private
 * bucket) writes nothing and gets S3's error. Other unsigned POSTs are still refused.
 * Method: a real gateway over a mini cluster. Forms are made by boto3's generate_presigned_post
 * itself (python3, when the aws CLI's boto3 is there) and built as it builds them (its fields
 * and conditions) and sent as a browser sends them: by fetch with a
 * FormData (undici's multipart encoder, the file last), or as raw multipart bytes over
 * node:http where a test needs the exact bytes. Results are read back with @aws-sdk/client-s3.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash, createHmac } from 'node:crypto'
import { crc32, crc32c } from '@node-rs/crc32'
import { execFile } from 'node:child_process'
import { request } from 'node:http'
import { CreateBucketCommand, DeleteBucketPolicyCommand, GetObjectAclCommand, GetObjectCommand, GetObjectTaggingCommand, HeadObjectCommand, ListObjectsV2Command, PutBucketPolicyCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { signingKeyV4 } from '../../../core/s3-signature.ts'
import { errorOf, startS3Cluster, s3Client, type S3TestCluster } from './s3-cluster.ts'

let env: S3TestCluster
let s3: S3Client
const B = 'post-form'

interface Creds { awsAccessKey: string; awsSecret: string }

/**
 * boto3's generate_presigned_post (SigV4): the fields to send and the policy's conditions,
 * `fields` and `conditions` added as boto3 adds them (a key ending in ${filename} becomes a
 * starts-with condition).
 */
function presignedPost(o: { bucket?: string; key: string; fields?: Record<string, string>; conditions?: unknown[]; expiresSeconds?: number; creds?: Creds; now?: Date; region?: string }): Record<string, string> {
  const creds = o.creds ?? env.alice
  const now = o.now ?? new Date()
  const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '')
  const scope = `${amzDate.slice(0, 8)}/${o.region ?? 'us-east-1'}/s3/aws4_request`
  const fields: Record<string, string> = { ...o.fields }
  const conditions: unknown[] = [...(o.conditions ?? [])]
  conditions.push({ bucket: o.bucket ?? B })
  if (o.key.endsWith('${filename}')) conditions.push(['starts-with', '$key', o.key.slice(0, -'${filename}'.length)])
  else conditions.push({ key: o.key })
  fields.key = o.key
  fields['x-amz-algorithm'] = 'AWS4-HMAC-SHA256'
  fields['x-amz-credential'] = `${creds.awsAccessKey}/${scope}`
  fields['x-amz-date'] = amzDate
  conditions.push({ 'x-amz-algorithm': 'AWS4-HMAC-SHA256' }, { 'x-amz-credential': `${creds.awsAccessKey}/${scope}` }, { 'x-amz-date': amzDate })
  const expiration = new Date(now.getTime() + (o.expiresSeconds ?? 3600) * 1000).toISOString().replace(/\.\d+Z$/, 'Z')
  const policy = Buffer.from(JSON.stringify({ expiration, conditions })).toString('base64')
  fields.policy = policy
  fields['x-amz-signature'] = createHmac('sha256', signingKeyV4(creds.awsSecret, scope)).update(policy).digest('hex')
  return fields
}

/** A SigV2 form (boto's legacy signer): AWSAccessKeyId, policy, signature = base64 HMAC-SHA1 of the policy. */
function presignedPostV2(key: string, conditions: unknown[] = [], creds: Creds = env.alice): Record<string, string> {
  const policy = Buffer.from(JSON.stringify({ expiration: new Date(Date.now() + 3600_000).toISOString(), conditions: [{ bucket: B }, { key }, ...conditions] })).toString('base64')
  return { key, AWSAccessKeyId: creds.awsAccessKey, policy, signature: createHmac('sha1', creds.awsSecret).update(policy).digest('base64') }
}

/** Sends a form as a browser does: fetch with FormData, the file last. */
async function browserPost(fields: Record<string, string>, file: { bytes: Buffer | string; filename?: string; type?: string }, path = `/${B}`): Promise<{ status: number; headers: Headers; body: string }> {
  const form = new FormData()
  for (const [k, v] of Object.entries(fields)) form.append(k, v)
  form.append('file', new Blob([typeof file.bytes === 'string' ? file.bytes : new Uint8Array(file.bytes)], { type: file.type ?? 'application/octet-stream' }), file.filename ?? 'upload.bin')
  const res = await fetch(env.endpoint + path, { method: 'POST', body: form, redirect: 'manual' })
  return { status: res.status, headers: res.headers, body: await res.text() }
}

/** Sends raw bytes over node:http (for a body fetch would not build). */
function rawPost(path: string, headers: Record<string, string>, body: string | Buffer): Promise<{ status: number; body: string }> {
  const url = new URL(env.endpoint)
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method: 'POST', path, headers: { 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (d: Buffer) => parts.push(d))
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(parts).toString() }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

function multipart(boundary: string, fields: Record<string, string>, file?: string): string {
  return Object.entries(fields).map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('') +
    (file === undefined ? '' : `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.txt"\r\nContent-Type: text/plain\r\n\r\n${file}\r\n`) + `--${boundary}--\r\n`
}

async function exists(key: string): Promise<boolean> {
  const list = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: key }))
  return (list.Contents ?? []).some((o) => o.Key === key)
}

async function read(key: string): Promise<string> {
  return (await s3.send(new GetObjectCommand({ Bucket: B, Key: key }))).Body!.transformToString()
}

test.before(async () => {
  env = await startS3Cluster()
  s3 = s3Client(env)
  await s3.send(new CreateBucketCommand({ Bucket: B }))
})

test.after(async () => {
  s3.destroy()
  await env.dispose()
})

test('PostObject stores a SigV4 form upload with its Content-Type, metadata and website redirect location, and answers 204 with its ETag', async () => {
  const fields = presignedPost({ key: 'photos/cat.txt', fields: { 'Content-Type': 'text/plain', 'x-amz-meta-owner': 'alice', 'x-amz-website-redirect-location': '/dog.txt' }, conditions: [{ 'Content-Type': 'text/plain' }, ['starts-with', '$x-amz-meta-owner', ''], { 'x-amz-website-redirect-location': '/dog.txt' }] })
  const r = await browserPost(fields, { bytes: 'meow' })
  assert.is(r.status, 204, r.body)
  assert.is(r.headers.get('etag'), `"${createHash('md5').update('meow').digest('hex')}"`)
  assert.is(r.headers.get('location'), `${env.endpoint}/${B}/photos/cat.txt`)
  assert.is(await read('photos/cat.txt'), 'meow')
  const head = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'photos/cat.txt' }))
  assert.is(head.ContentType, 'text/plain')
  assert.equal(head.Metadata, { owner: 'alice' })
  assert.is(head.WebsiteRedirectLocation, '/dog.txt')
})

/** boto3's own generate_presigned_post, run in python3 (the aws CLI's boto3), as {url, fields}; undefined when there is no boto3. */
function boto3PresignedPost(key: string, fields: Record<string, string>, conditions: unknown[]): Promise<{ url: string; fields: Record<string, string> } | undefined> {
  const script = [
    'import boto3, json, sys',
    'a = json.loads(sys.argv[1])',
    "s3 = boto3.client('s3', endpoint_url=a['endpoint'], region_name='us-east-1', aws_access_key_id=a['id'], aws_secret_access_key=a['secret'], config=boto3.session.Config(signature_version='s3v4', s3={'addressing_style': 'path'}))",
    "print(json.dumps(s3.generate_presigned_post(a['bucket'], a['key'], Fields=a['fields'], Conditions=a['conditions'], ExpiresIn=600)))",
  ].join('\n')
  const arg = JSON.stringify({ endpoint: env.endpoint, id: env.alice.awsAccessKey, secret: env.alice.awsSecret, bucket: B, key, fields, conditions })
  return new Promise((resolve) => {
    execFile('python3', ['-c', script, arg], { env: { PATH: process.env.PATH, HOME: process.env.HOME } }, (err, stdout) => resolve(err ? undefined : JSON.parse(stdout)))
  })
}

test("PostObject takes the form boto3's generate_presigned_post makes", async () => {
  const post = await boto3PresignedPost('boto/${filename}', { 'Content-Type': 'text/csv', 'x-amz-meta-source': 'boto3' }, [['starts-with', '$Content-Type', 'text/'], { 'x-amz-meta-source': 'boto3' }, ['content-length-range', 1, 1024]])
  if (post === undefined) {
    console.warn('post-object.test: python3 with boto3 not found; the boto3 form is not tested')
    return
  }
  assert.is(post.url, `${env.endpoint}/${B}`)
  const r = await browserPost(post.fields, { bytes: 'a,b\n1,2\n', filename: 'table.csv' })
  assert.is(r.status, 204, r.body)
  assert.is(await read('boto/table.csv'), 'a,b\n1,2\n')
  const head = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'boto/table.csv' }))
  assert.is(head.ContentType, 'text/csv')
  assert.equal(head.Metadata, { source: 'boto3' })
})

test('PostObject answers success_action_status 201 with a PostResponse, and 200 with no body', async () => {
  const r = await browserPost(presignedPost({ key: 'status/201', fields: { success_action_status: '201' }, conditions: [{ success_action_status: '201' }] }), { bytes: 'x' })
  assert.is(r.status, 201)
  assert.match(r.body, `<Bucket>${B}</Bucket>`)
  assert.match(r.body, '<Key>status/201</Key>')
  assert.match(r.body, `<ETag>&quot;${createHash('md5').update('x').digest('hex')}&quot;</ETag>`)
  assert.match(r.body, `<Location>${env.endpoint}/${B}/status/201</Location>`)
  const ok = await browserPost(presignedPost({ key: 'status/200', fields: { success_action_status: '200' }, conditions: [['starts-with', '$success_action_status', '']] }), { bytes: 'y' })
  assert.is(ok.status, 200)
  assert.is(ok.body, '')
})

test('PostObject redirects to success_action_redirect with the bucket, key and ETag', async () => {
  const r = await browserPost(presignedPost({ key: 'redirected', fields: { success_action_redirect: 'https://app.example/done?x=1' }, conditions: [['starts-with', '$success_action_redirect', 'https://app.example/']] }), { bytes: 'z' })
  assert.is(r.status, 303)
  const to = new URL(r.headers.get('location')!)
  assert.is(to.origin + to.pathname, 'https://app.example/done')
  assert.is(to.searchParams.get('x'), '1')
  assert.is(to.searchParams.get('bucket'), B)
  assert.is(to.searchParams.get('key'), 'redirected')
  assert.is(to.searchParams.get('etag'), `"${createHash('md5').update('z').digest('hex')}"`)
  // The older `redirect` field works alike; a redirect that is not an http(s) URL is ignored for the status.
  const legacy = await browserPost(presignedPost({ key: 'legacy', fields: { redirect: 'http://app.example/' }, conditions: [{ redirect: 'http://app.example/' }] }), { bytes: 'l' })
  assert.is(legacy.status, 303)
  assert.is(new URL(legacy.headers.get('location')!).searchParams.get('key'), 'legacy')
  const ignored = await browserPost(presignedPost({ key: 'not-a-url', fields: { success_action_redirect: 'javascript:alert(1)', success_action_status: '201' }, conditions: [['starts-with', '$success_action_redirect', ''], ['starts-with', '$success_action_status', '']] }), { bytes: 'n' })
  assert.is(ignored.status, 201)
})

test('PostObject puts the chosen file name in place of ${filename} and stores the tagging field as tags', async () => {
  const tagging = '<Tagging><TagSet><Tag><Key>kind</Key><Value>photo</Value></Tag><Tag><Key>by</Key><Value>form</Value></Tag></TagSet></Tagging>'
  const r = await browserPost(presignedPost({ key: 'uploads/${filename}', fields: { tagging }, conditions: [{ tagging }] }), { bytes: 'picture', filename: 'me & you.jpg', type: 'image/jpeg' })
  assert.is(r.status, 204, r.body)
  assert.is(await read('uploads/me & you.jpg'), 'picture')
  const tags = await s3.send(new GetObjectTaggingCommand({ Bucket: B, Key: 'uploads/me & you.jpg' }))
  assert.equal(tags.TagSet, [{ Key: 'kind', Value: 'photo' }, { Key: 'by', Value: 'form' }])
  // The file part's own type is not the object's: only a Content-Type field sets it, as in S3.
  assert.is((await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'uploads/me & you.jpg' }))).ContentType, 'binary/octet-stream')
})

test('PostObject streams a file of several chunks and stores it whole', async () => {
  const bytes = Buffer.alloc(5 * 1024 * 1024 + 17)
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + (i >> 12)) & 0xff
  // A checksum over the writer's slabs (a file past the inline digest limit), given and verified.
  const sum = Buffer.alloc(4)
  sum.writeUInt32BE(crc32c(bytes) >>> 0)
  const r = await browserPost(presignedPost({ key: 'big.bin', fields: { 'x-amz-checksum-crc32c': sum.toString('base64') }, conditions: [{ 'x-amz-checksum-crc32c': sum.toString('base64') }] }), { bytes })
  assert.is(r.status, 204, r.body)
  assert.is(r.headers.get('etag'), `"${createHash('md5').update(bytes).digest('hex')}"`)
  assert.is(r.headers.get('x-amz-checksum-crc32c'), sum.toString('base64'))
  const got = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: B, Key: 'big.bin' }))).Body!.transformToByteArray())
  assert.ok(got.equals(bytes))
})

test('PostObject verifies the Content-MD5 and x-amz-checksum-* fields and keeps the checksum, as PutObject its headers', async () => {
  const body = 'checked bytes'
  const md5 = createHash('md5').update(body).digest('base64')
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(Buffer.from(body)) >>> 0)
  const sha = createHash('sha256').update(body).digest('base64')
  const post = (key: string, fields: Record<string, string>) => browserPost(presignedPost({ key, fields, conditions: Object.entries(fields).map(([k, v]) => ({ [k]: v })) }), { bytes: body })
  const good = await post('sum/good', { 'Content-MD5': md5, 'x-amz-checksum-crc32': crc.toString('base64') })
  assert.is(good.status, 204, good.body)
  assert.is(good.headers.get('x-amz-checksum-crc32'), crc.toString('base64'))
  const head = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'sum/good', ChecksumMode: 'ENABLED' }))
  assert.is(head.ChecksumCRC32, crc.toString('base64'))
  const computed = await post('sum/computed', { 'x-amz-checksum-algorithm': 'SHA256' })
  assert.is(computed.status, 204, computed.body)
  assert.is((await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'sum/computed', ChecksumMode: 'ENABLED' }))).ChecksumSHA256, sha)
  const badMd5 = await post('sum/bad-md5', { 'Content-MD5': createHash('md5').update('other').digest('base64') })
  assert.is(badMd5.status, 400)
  assert.match(badMd5.body, '<Code>BadDigest</Code>')
  const badCrc = await post('sum/bad-crc', { 'x-amz-checksum-crc32': 'AAAAAA==' })
  assert.is(badCrc.status, 400)
  assert.match(badCrc.body, '<Code>BadDigest</Code>')
  const two = await post('sum/two', { 'x-amz-checksum-crc32': crc.toString('base64'), 'x-amz-checksum-sha256': sha })
  assert.is(two.status, 400)
  assert.match(two.body, '<Code>InvalidRequest</Code>')
  const malformed = await post('sum/malformed', { 'Content-MD5': 'not-an-md5' })
  assert.is(malformed.status, 400)
  assert.match(malformed.body, '<Code>InvalidDigest</Code>')
  for (const k of ['sum/bad-md5', 'sum/bad-crc', 'sum/two', 'sum/malformed']) assert.not.ok(await exists(k), k)
})

test('PostObject holds the file to content-length-range: EntityTooLarge and EntityTooSmall write nothing', async () => {
  const range = [['content-length-range', 2, 10]]
  const large = await browserPost(presignedPost({ key: 'range/large', conditions: range }), { bytes: 'x'.repeat(11) })
  assert.is(large.status, 400)
  assert.match(large.body, '<Code>EntityTooLarge</Code>')
  const small = await browserPost(presignedPost({ key: 'range/small', conditions: range }), { bytes: 'x' })
  assert.is(small.status, 400)
  assert.match(small.body, '<Code>EntityTooSmall</Code>')
  const fits = await browserPost(presignedPost({ key: 'range/fits', conditions: range }), { bytes: 'x'.repeat(10) })
  assert.is(fits.status, 204)
  assert.not.ok(await exists('range/large'))
  assert.not.ok(await exists('range/small'))
  assert.ok(await exists('range/fits'))
})

test('PostObject refuses a form its policy does not allow: a failed condition, an extra field, an expired policy', async () => {
  const wrongKey = presignedPost({ key: 'allowed' })
  wrongKey.key = 'elsewhere'
  const a = await browserPost(wrongKey, { bytes: 'x' })
  assert.is(a.status, 403)
  assert.match(a.body, '<Code>AccessDenied</Code>')
  assert.match(a.body, 'Invalid according to Policy: Policy Condition failed: {&quot;key&quot;:&quot;allowed&quot;}')
  const extra = await browserPost({ ...presignedPost({ key: 'extra' }), 'x-amz-meta-sneaky': '1' }, { bytes: 'x' })
  assert.is(extra.status, 403)
  assert.match(extra.body, 'Extra input fields: x-amz-meta-sneaky')
  const ignored = await browserPost({ ...presignedPost({ key: 'ignored' }), 'x-ignore-submit': 'Upload' }, { bytes: 'x' })
  assert.is(ignored.status, 204, ignored.body)
  const expired = await browserPost(presignedPost({ key: 'expired', expiresSeconds: -1 }), { bytes: 'x' })
  assert.is(expired.status, 403)
  assert.match(expired.body, 'Policy expired.')
  const bad = await browserPost({ ...presignedPost({ key: 'bad' }), policy: Buffer.from('{"conditions":[]}').toString('base64') }, { bytes: 'x' })
  assert.is(bad.status, 403)
  assert.match(bad.body, '<Code>SignatureDoesNotMatch</Code>')
  for (const k of ['elsewhere', 'allowed', 'extra', 'expired', 'bad']) assert.not.ok(await exists(k), k)
})

test('PostObject refuses a wrong signature, an unknown access key, another region, another user\'s bucket, and a missing bucket', async () => {
  const forged = await browserPost(presignedPost({ key: 'forged', creds: { awsAccessKey: env.alice.awsAccessKey, awsSecret: 'not-the-secret' } }), { bytes: 'x' })
  assert.is(forged.status, 403)
  assert.match(forged.body, '<Code>SignatureDoesNotMatch</Code>')
  const unknown = await browserPost(presignedPost({ key: 'unknown', creds: { awsAccessKey: 'AKIDNOSUCHKEY', awsSecret: 's' } }), { bytes: 'x' })
  assert.is(unknown.status, 403)
  assert.match(unknown.body, '<Code>InvalidAccessKeyId</Code>')
  const bobs = await browserPost(presignedPost({ key: 'by-bob', creds: env.bob }), { bytes: 'x' })
  assert.is(bobs.status, 403)
  assert.match(bobs.body, '<Code>AccessDenied</Code>')
  // Signed for another region than the endpoint's (S3: AuthorizationQueryParametersError, naming the endpoint's region).
  const elsewhere = await browserPost(presignedPost({ key: 'elsewhere', region: 'eu-west-1' }), { bytes: 'x' })
  assert.is(elsewhere.status, 400)
  assert.match(elsewhere.body.replaceAll('&apos;', "'"), "<Code>AuthorizationQueryParametersError</Code><Message>Error parsing the X-Amz-Credential parameter; the region 'eu-west-1' is wrong; expecting 'us-east-1'</Message><Region>us-east-1</Region>")
  assert.is(elsewhere.headers.get('x-amz-bucket-region'), 'us-east-1')
  // An unknown access key is InvalidAccessKeyId first, whatever region it names (as with a header's scope).
  const unknownElsewhere = await browserPost(presignedPost({ key: 'elsewhere', region: 'eu-west-1', creds: { awsAccessKey: 'AKIDNOSUCHKEY', awsSecret: 's' } }), { bytes: 'x' })
  assert.match(unknownElsewhere.body, '<Code>InvalidAccessKeyId</Code>')
  for (const k of ['forged', 'unknown', 'by-bob', 'elsewhere']) assert.not.ok(await exists(k), k)
  const nowhere = await browserPost(presignedPost({ bucket: 'no-such-post-bucket', key: 'k' }), { bytes: 'x' }, '/no-such-post-bucket')
  assert.is(nowhere.status, 404)
  assert.match(nowhere.body, '<Code>NoSuchBucket</Code>')
})

test('PostObject takes a SigV2 form (AWSAccessKeyId, policy, signature)', async () => {
  const r = await browserPost(presignedPostV2('v2/file.txt'), { bytes: 'version two' })
  assert.is(r.status, 204, r.body)
  assert.is(await read('v2/file.txt'), 'version two')
  const forged = await browserPost({ ...presignedPostV2('v2/forged'), signature: Buffer.alloc(20).toString('base64') }, { bytes: 'x' })
  assert.is(forged.status, 403)
  assert.match(forged.body, '<Code>SignatureDoesNotMatch</Code>')
})

test('PostObject answers a malformed form with S3\'s codes: no file, no key, not form-data, fields too large', async () => {
  const boundary = 'b0undary'
  const ct = { 'content-type': `multipart/form-data; boundary=${boundary}` }
  const noFile = await rawPost(`/${B}`, ct, multipart(boundary, presignedPost({ key: 'nofile' })))
  assert.is(noFile.status, 400)
  assert.match(noFile.body, '<Code>IncorrectNumberOfFilesInPostRequest</Code>')
  const { key: _, ...keyless } = presignedPost({ key: 'nokey' })
  const noKey = await rawPost(`/${B}`, ct, multipart(boundary, keyless, 'x'))
  assert.is(noKey.status, 400)
  assert.match(noKey.body, '<Code>InvalidArgument</Code>')
  const garbage = await rawPost(`/${B}`, ct, 'this is not a form')
  assert.is(garbage.status, 400)
  assert.match(garbage.body, '<Code>MalformedPOSTRequest</Code>')
  const huge = await rawPost(`/${B}`, ct, multipart(boundary, { ...presignedPost({ key: 'huge' }), 'x-ignore-pad': 'p'.repeat(30 * 1024) }, 'x'))
  assert.is(huge.status, 400)
  assert.match(huge.body, '<Code>MaxPostPreDataLengthExceeded</Code>')
  // Fields after the file are ignored, as S3 ignores them.
  const late = await rawPost(`/${B}`, ct, multipart(boundary, presignedPost({ key: 'late' }), 'on time').replace(`--${boundary}--`, `--${boundary}\r\nContent-Disposition: form-data; name="x-amz-meta-late"\r\n\r\nv\r\n--${boundary}--`))
  assert.is(late.status, 204, late.body)
  assert.equal((await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'late' }))).Metadata, {})
})

test('PostObject stores the acl field as the key\'s ACL: public-read is readable without a signature', async () => {
  const r = await browserPost(presignedPost({ key: 'acl/public.txt', fields: { acl: 'public-read' }, conditions: [{ acl: 'public-read' }] }), { bytes: 'for all' })
  assert.is(r.status, 204, r.body)
  const anonymous = await fetch(`${env.endpoint}/${B}/acl/public.txt`)
  assert.is(anonymous.status, 200)
  assert.is(await anonymous.text(), 'for all')
  const acl = await s3.send(new GetObjectAclCommand({ Bucket: B, Key: 'acl/public.txt' }))
  assert.ok(acl.Grants!.some((g) => g.Grantee?.URI === 'http://acs.amazonaws.com/groups/global/AllUsers' && g.Permission === 'READ'))
  const priv = await browserPost(presignedPost({ key: 'acl/private.txt', fields: { acl: 'private' }, conditions: [{ acl: 'private' }] }), { bytes: 'mine' })
  assert.is(priv.status, 204, priv.body)
  assert.is((await fetch(`${env.endpoint}/${B}/acl/private.txt`)).status, 403)
  const bad = await browserPost(presignedPost({ key: 'acl/bad.txt', fields: { acl: 'everyone-please' }, conditions: [{ acl: 'everyone-please' }] }), { bytes: 'x' })
  assert.is(bad.status, 400, bad.body)
  assert.not.ok(await exists('acl/bad.txt'))
})

test('PostObject is authorized as a PutObject: a bucket policy\'s Deny holds, its conditions see the acl field, the POST auth type and signature version, an open bucket takes unsigned forms', async () => {
  await s3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Deny', Principal: '*', Action: 's3:PutObject', Resource: `arn:aws:s3:::${B}/locked/*` }],
  }) }))
  try {
    const denied = await browserPost(presignedPost({ key: 'locked/x' }), { bytes: 'x' })
    assert.is(denied.status, 403)
    assert.match(denied.body, '<Code>AccessDenied</Code>')
    assert.not.ok(await exists('locked/x'))
  } finally {
    await s3.send(new DeleteBucketPolicyCommand({ Bucket: B }))
  }
  // The policy's condition keys see the form's fields as a PUT's headers (s3:x-amz-acl).
  await s3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: JSON.stringify({
    Version: '2012-10-17',
    Statement: [{ Effect: 'Deny', Principal: '*', Action: 's3:PutObject', Resource: `arn:aws:s3:::${B}/shared/*`, Condition: { StringNotEquals: { 's3:x-amz-acl': 'bucket-owner-full-control' } } }],
  }) }))
  try {
    const without = await browserPost(presignedPost({ key: 'shared/a' }), { bytes: 'x' })
    assert.is(without.status, 403)
    const withAcl = await browserPost(presignedPost({ key: 'shared/b', fields: { acl: 'bucket-owner-full-control' }, conditions: [{ acl: 'bucket-owner-full-control' }] }), { bytes: 'x' })
    assert.is(withAcl.status, 204, withAcl.body)
  } finally {
    await s3.send(new DeleteBucketPolicyCommand({ Bucket: B }))
  }
  // s3:authType is POST for a form, s3:signatureversion its signature's.
  await s3.send(new PutBucketPolicyCommand({ Bucket: B, Policy: JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      { Effect: 'Deny', Principal: '*', Action: 's3:PutObject', Resource: `arn:aws:s3:::${B}/forms-only/*`, Condition: { StringNotEquals: { 's3:authType': 'POST' } } },
      { Effect: 'Deny', Principal: '*', Action: 's3:PutObject', Resource: `arn:aws:s3:::${B}/v4-only/*`, Condition: { StringEquals: { 's3:signatureversion': 'AWS' } } },
    ],
  }) }))
  try {
    assert.is((await browserPost(presignedPost({ key: 'forms-only/a' }), { bytes: 'x' })).status, 204)
    assert.is((await errorOf(s3.send(new PutObjectCommand({ Bucket: B, Key: 'forms-only/b', Body: 'x' })))).name, 'AccessDenied')
    assert.is((await browserPost(presignedPost({ key: 'v4-only/a' }), { bytes: 'x' })).status, 204)
    assert.is((await browserPost(presignedPostV2('v4-only/b'), { bytes: 'x' })).status, 403)
  } finally {
    await s3.send(new DeleteBucketPolicyCommand({ Bucket: B }))
  }
  await s3.send(new CreateBucketCommand({ Bucket: 'post-open', ACL: 'public-read-write' }))
  const open = await browserPost({ key: 'dropped.txt' }, { bytes: 'anonymous drop' }, '/post-open')
  assert.is(open.status, 204, open.body)
  assert.is(await (await s3.send(new GetObjectCommand({ Bucket: 'post-open', Key: 'dropped.txt' }))).Body!.transformToString(), 'anonymous drop')
})

test('an unsigned form, DeleteObjects or other POST is refused as anonymous', async () => {
  const unsigned = await browserPost({ key: 'anon' }, { bytes: 'x' })
  assert.is(unsigned.status, 403)
  assert.match(unsigned.body, '<Code>AccessDenied</Code>')
  assert.not.ok(await exists('anon'))
  const del = await rawPost(`/${B}?delete`, { 'content-type': 'application/xml' }, '<Delete><Object><Key>k</Key></Object></Delete>')
  assert.is(del.status, 403)
  assert.match(del.body, '<Code>AccessDenied</Code>')
  const other = await rawPost(`/${B}`, { 'content-type': 'application/octet-stream' }, 'x')
  assert.is(other.status, 403)
})

test.run()
