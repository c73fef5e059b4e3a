/**
 * Goal: clients that misbehave on the wire never stop the gateway for everyone else. Uploads
 * that stall mid-body are answered 400 RequestTimeout once their body has been idle for
 * s3g.bodyIdleTimeoutMs and give their payload slabs back, and while they stall a normal
 * client's PUTs and GETs go on; an error the gateway answers before the body is read (bad
 * signature, missing bucket) reaches a client that is still sending its body as the S3 XML
 * error, not as a connection reset; a download whose client stops reading is cut and frees
 * what it holds. Method: a real gateway over a mini cluster with a short
 * body idle timeout; raw sockets (node:net) send signed request heads and then as much of
 * the body as the case needs (64 KiB and stall; nothing; all of it before reading the answer,
 * with and without Connection: close), and @aws-sdk/client-s3 is the normal client and the
 * one sending large bodies, fast and paced, that the gateway refuses before reading them. A
 * GET whose client reads nothing is cut after s3g.sendIdleTimeoutMs, its read buffers back.
 * A request head that trickles in is answered after s3g.headersTimeoutMs and its connection
 * closed; a malformed request pipelined behind a GET leaves that GET's answer whole.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { connect, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import { SignatureV4 } from '@smithy/signature-v4'
import { Hash } from '@smithy/hash-node'
import { S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3'
import { randomBytes } from '../../cluster/mini-cluster.ts'
import { S3Gateway } from '../../../datapath/s3/index.ts'
import { HTTP_PIPELINED_REQUESTS_MAX } from '../../../core/limits.ts'
import { errorOf, startS3Cluster, type S3TestCluster, s3Client } from './s3-cluster.ts'

/** Short, so that stalled uploads are answered within the test; real gateways use S3's ~20 s. */
const BODY_IDLE_TIMEOUT_MS = 3000
/** Short too: a GET whose client takes nothing is cut after it (real gateways: 120 s). */
const SEND_IDLE_TIMEOUT_MS = 2000
/** Short too: a request head still arriving after it is answered RequestTimeout (real gateways: 60 s). */
const HEADERS_TIMEOUT_MS = 1500
/** More than the gateway's 64 payload slabs: before the fix these alone stopped every PUT. */
const STALLED_UPLOADS = 100
const KiB = 1024
const MiB = 1024 * KiB
const B = 'slow-clients'

let env: S3TestCluster
let port: number
let s3: S3Client

interface Secret { awsAccessKey: string; awsSecret: string }

/** The request head (request line and signed headers) of a PUT whose body is UNSIGNED-PAYLOAD. */
function putHead(path: string, contentLength: number, secret: Secret = env.alice, connection = 'keep-alive'): Promise<string> {
  return requestHead('PUT', path, contentLength, secret, connection)
}

async function requestHead(method: string, target: string, contentLength: number | 'chunked', secret: Secret = env.alice, connection = 'keep-alive'): Promise<string> {
  const signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials: { accessKeyId: secret.awsAccessKey, secretAccessKey: secret.awsSecret }, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false, applyChecksum: false })
  const [path, q] = target.split('?')
  const query = Object.fromEntries(new URLSearchParams(q ?? ''))
  const headers = { host: `127.0.0.1:${port}`, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...(contentLength === 'chunked' ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(contentLength) }) }
  const signed = await signer.sign({ method, protocol: 'http:', hostname: '127.0.0.1', port, path, query, headers })
  return `${method} ${target} HTTP/1.1\r\nconnection: ${connection}\r\n${Object.entries(signed.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`
}

interface RawReply {
  /** Undefined when the connection ended before a whole response arrived. */
  status?: number
  body: string
  /** A socket error seen before the whole response was read (ECONNRESET, EPIPE). */
  error?: string
}

/** Reads one HTTP response from a socket: settles once it is whole, or when the socket ends or fails first. */
function readReply(socket: Socket): Promise<RawReply> {
  return new Promise((resolve) => {
    let data = Buffer.alloc(0)
    let settled = false
    const settle = (r: RawReply) => { if (!settled) { settled = true; resolve(r) } }
    const parse = (): RawReply | undefined => {
      const end = data.indexOf('\r\n\r\n')
      if (end < 0) return undefined
      const head = data.subarray(0, end).toString('latin1')
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1])
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0)
      if (data.length < end + 4 + length) return undefined
      return { status, body: data.subarray(end + 4, end + 4 + length).toString() }
    }
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d])
      const r = parse()
      if (r !== undefined) settle(r)
    })
    socket.on('error', (err: NodeJS.ErrnoException) => settle({ body: data.toString(), error: err.code ?? err.message }))
    socket.on('close', () => settle({ body: data.toString(), error: 'closed before a whole response' }))
  })
}

const code = (r: RawReply) => /<Code>([^<]*)<\/Code>/.exec(r.body)?.[1]

function open(to = port): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(to, '127.0.0.1', () => resolve(s))
    s.once('error', reject)
  })
}

/** Fails the test instead of hanging it when `p` does not settle in time. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([p, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms) })]).finally(() => clearTimeout(timer))
}

/** Waits until `check` holds, polling; fails after `ms`. */
async function eventually(ms: number, what: string, check: () => boolean): Promise<void> {
  for (const until = Date.now() + ms; !check();) {
    if (Date.now() > until) throw new Error(`${what}: still false after ${ms} ms`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/**
 * Sends a PUT declaring `contentLength` bytes and writes the whole body before it reads the
 * answer, as simple clients do (Python's http.client under boto3): an answer sent early must
 * still be there to read once the body is out, not lost to a connection reset.
 */
function putThenRead(path: string, contentLength: number, options: { secret?: Secret; connection?: string } = {}): Promise<RawReply> {
  let socket: Socket | undefined
  return within(60_000, `PUT ${path}`, sendThenRead(path, contentLength, options, (s) => { socket = s })).finally(() => socket?.destroy())
}

async function sendThenRead(path: string, contentLength: number, options: { secret?: Secret; connection?: string }, opened: (s: Socket) => void): Promise<RawReply> {
  const socket = await open()
  opened(socket)
  socket.pause()
  let failure: string | undefined
  socket.on('error', (err: NodeJS.ErrnoException) => { failure ??= err.code ?? err.message })
  socket.write(await putHead(path, contentLength, options.secret, options.connection))
  const piece = Buffer.alloc(1 * MiB, 7)
  for (let sent = 0; sent < contentLength && !socket.destroyed; sent += piece.length) {
    if (!socket.write(piece.subarray(0, Math.min(piece.length, contentLength - sent)))) {
      await new Promise<void>((resolve) => {
        const done = () => { socket.off('drain', done); socket.off('close', done); resolve() }
        socket.on('drain', done)
        socket.on('close', done)
      })
    }
  }
  if (socket.destroyed) return { body: '', error: failure ?? 'closed while sending the body' }
  const reply = readReply(socket)
  socket.resume()
  return reply
}

test.before(async () => {
  env = await startS3Cluster({ overrides: { 's3g.bodyIdleTimeoutMs': BODY_IDLE_TIMEOUT_MS, 's3g.sendIdleTimeoutMs': SEND_IDLE_TIMEOUT_MS, 's3g.headersTimeoutMs': HEADERS_TIMEOUT_MS } })
  port = env.gateway.port
  s3 = s3Client(env)
  await s3.send(new CreateBucketCommand({ Bucket: B }))
})

test.after(async () => {
  s3.destroy()
  await env.dispose()
})

/** Opens `count` uploads to the gateway on `to` that declare 64 MiB, send 64 KiB and stall. */
async function stallUploads(count: number, prefix: string, to = port) {
  const stalled = await Promise.all(Array.from({ length: count }, async (_, i) => {
    const socket = await open(to)
    socket.on('error', () => {})
    const reply = readReply(socket)
    socket.write(await putHead(`/${B}/${prefix}-${i}`, 64 * MiB))
    socket.write(Buffer.alloc(64 * KiB, i))
    return { socket, reply, answered: false }
  }))
  for (const s of stalled) void s.reply.then(() => { s.answered = true })
  return stalled
}

test('100 stalled uploads do not stop a normal client: idle writers give their slabs back', async () => {
  // A second gateway on the same cluster, as patient as S3 itself (and more), so that the
  // normal client cannot be getting slabs only because stalled uploads timed out.
  const patient = new S3Gateway({ config: { ...env.cluster.config, 's3g.bodyIdleTimeoutMs': 120_000 }, omAddress: env.cluster.omAddress, scmAddress: env.cluster.scmAddress, port: 0 })
  await patient.start()
  try {
    await besidePatient(patient)
  } finally {
    await patient.stop()
  }
})

async function besidePatient(patient: S3Gateway): Promise<void> {
  const client = new S3Client({ endpoint: patient.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: env.alice.awsAccessKey, secretAccessKey: env.alice.awsSecret } })
  const slabs = patient.client.slabs
  const stalled = await stallUploads(STALLED_UPLOADS, 'stalled-patient', patient.port)
  try {
    // The stalled uploads have taken every payload slab (and more of them wait for one).
    await eventually(10_000, 'stalled uploads hold every slab', () => slabs.inUse === slabs.count || slabs.waiting > 0)
    // While they stall, a normal client writes keys spanning several slabs and reads them back.
    const one = randomBytes(1 * MiB), nine = randomBytes(9 * MiB)
    await within(60_000, 'PUT beside stalled uploads', Promise.all([
      client.send(new PutObjectCommand({ Bucket: B, Key: 'normal-1', Body: one })),
      client.send(new PutObjectCommand({ Bucket: B, Key: 'normal-9', Body: nine })),
    ]))
    const got = await within(60_000, 'GET beside stalled uploads', client.send(new GetObjectCommand({ Bucket: B, Key: 'normal-9' })))
    assert.equal(Buffer.from(await got.Body!.transformToByteArray()), Buffer.from(nine))
    assert.is(stalled.filter((s) => s.answered).length, 0, 'no stalled upload was answered (or timed out) meanwhile')
  } finally {
    for (const s of stalled) s.socket.destroy()
    client.destroy()
  }
  // Clients that hang up abort their uploads, and every slab comes back.
  await eventually(10_000, 'every slab back in the pool', () => slabs.inUse === 0)
}

test('100 stalled uploads are answered RequestTimeout (XML) and give their slabs back', async () => {
  const slabs = env.gateway.client.slabs
  const stalled = await stallUploads(STALLED_UPLOADS, 'stalled')
  try {
    const replies = await within(60_000, 'stalled uploads', Promise.all(stalled.map((s) => s.reply)))
    for (const r of replies) {
      assert.is(r.error, undefined)
      assert.is(r.status, 400)
      assert.is(code(r), 'RequestTimeout')
      assert.match(r.body, 'Your socket connection to the server was not read from or written to within the timeout period')
    }
  } finally {
    for (const s of stalled) s.socket.destroy()
  }
  await eventually(10_000, 'every slab back in the pool', () => slabs.inUse === 0)
  // Nothing of the stalled uploads was committed, and the gateway goes on writing.
  const gone = await errorOf(s3.send(new GetObjectCommand({ Bucket: B, Key: 'stalled-0' })))
  assert.equal([gone.name, gone.status], ['NoSuchKey', 404])
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'after', Body: 'ok' }))
})

test('100 uploads that trickle (never quiet, never done) do not stop a normal client either', async () => {
  const slabs = env.gateway.client.slabs
  const trickles = await Promise.all(Array.from({ length: STALLED_UPLOADS }, async (_, i) => {
    const socket = await open()
    socket.on('error', () => {})
    socket.write(await putHead(`/${B}/trickle-${i}`, 64 * MiB))
    socket.write(Buffer.alloc(16 * KiB + 100, i))
    // Half a KiB every 50 ms: the body never goes quiet for a whole idle check.
    const timer = setInterval(() => socket.write(Buffer.alloc(512, i)), 50)
    return { socket, timer }
  }))
  try {
    await eventually(10_000, 'trickling uploads hold every slab', () => slabs.inUse === slabs.count || slabs.waiting > 0)
    const nine = randomBytes(9 * MiB, 9)
    await within(30_000, 'PUT beside trickling uploads', s3.send(new PutObjectCommand({ Bucket: B, Key: 'beside-trickles', Body: nine })))
    const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'beside-trickles' }))
    assert.equal(Buffer.from(await got.Body!.transformToByteArray()), Buffer.from(nine))
  } finally {
    for (const t of trickles) { clearInterval(t.timer); t.socket.destroy() }
  }
  await eventually(10_000, 'every slab back in the pool', () => slabs.inUse === 0)
})

test('a GET whose client takes no byte is cut after s3g.sendIdleTimeoutMs and gives its read buffers back; a normal GET meanwhile is served', async () => {
  const data = randomBytes(32 * MiB + 3)
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'unread', Body: data }))
  const pool = env.gateway.client.readBuffers
  const socket = await open()
  socket.pause()
  let received = 0
  try {
    socket.write(await requestHead('GET', `/${B}/unread`, 0))
    await eventually(10_000, 'the unread GET holds read buffers', () => pool.inUse > 0)
    const got = await within(60_000, 'GET beside the unread one', s3.send(new GetObjectCommand({ Bucket: B, Key: 'unread' })))
    assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(data), 'the normal GET returns the object')
    // Cut (the socket's bytes stay in the kernel for the reader): every piece comes back.
    await eventually(10 * SEND_IDLE_TIMEOUT_MS, 'the unread GET is cut and its buffers come back', () => pool.inUse === 0)
    const ended = new Promise<void>((resolve) => { socket.on('close', () => resolve()); socket.on('error', () => resolve()) })
    socket.on('data', (d: Buffer) => { received += d.length })
    socket.resume()
    await within(30_000, 'the cut connection ends', ended)
    assert.ok(received < data.length, `the client got part of the body only (${received} bytes)`)
  } finally {
    socket.destroy()
  }
})

test('a GET whose client reads slowly (a slice of the body per much less than s3g.sendIdleTimeoutMs, a piece per more) is not cut', async () => {
  const data = randomBytes(32 * MiB + 5)
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'slow-read', Body: data }))
  const socket = await open()
  socket.pause()
  try {
    const ended = new Promise<void>((resolve) => { socket.on('close', () => resolve()); socket.on('error', () => resolve()) })
    socket.write(await requestHead('GET', `/${B}/slow-read`, 0, env.alice, 'close'))
    const parts: Buffer[] = []
    // 64 KiB per 50 ms (1.3 MB/s) for 4 * SEND_IDLE_TIMEOUT_MS: a 4 MiB piece takes over 3 s.
    for (const until = Date.now() + 4 * SEND_IDLE_TIMEOUT_MS; Date.now() < until;) {
      const d = socket.read(64 * KiB) as Buffer | null
      if (d !== null) parts.push(d)
      await new Promise((r) => setTimeout(r, 50))
    }
    socket.on('data', (d: Buffer) => parts.push(d))
    socket.resume()
    await within(60_000, 'the slow GET ends', ended)
    const all = Buffer.concat(parts)
    const body = all.subarray(all.indexOf('\r\n\r\n') + 4)
    assert.ok(body.equals(data), `the slow reader got the whole object (${body.length} of ${data.length} bytes)`)
  } finally {
    socket.destroy()
  }
})

test('an upload, or an XML body, that stalls before it is whole is answered RequestTimeout', async () => {
  for (const [method, target, sent] of [['PUT', `/${B}/no-body`, ''], ['POST', `/${B}?delete`, '<Delete><Object><Key>a</Key>']] as const) {
    const socket = await open()
    const reply = readReply(socket)
    socket.write(await requestHead(method, target, 1 * KiB))
    socket.write(sent)
    const r = await within(30_000, `stalled ${method} ${target}`, reply).finally(() => socket.destroy())
    assert.is(r.status, 400, `${method} ${target}`)
    assert.is(code(r), 'RequestTimeout')
  }
})

test('an error answered before the body is read reaches a client that sends it all before reading, as S3 XML', async () => {
  for (const connection of ['keep-alive', 'close']) {
    const missing = await putThenRead('/no-such-bucket/k', 128 * MiB, { connection })
    assert.is(missing.error, undefined, `NoSuchBucket, connection: ${connection}`)
    assert.is(missing.status, 404)
    assert.is(code(missing), 'NoSuchBucket')
    const wrong = await putThenRead(`/${B}/k`, 128 * MiB, { connection, secret: { awsAccessKey: env.alice.awsAccessKey, awsSecret: 'not-the-secret' } })
    assert.is(wrong.error, undefined, `SignatureDoesNotMatch, connection: ${connection}`)
    assert.is(wrong.status, 403)
    assert.is(code(wrong), 'SignatureDoesNotMatch')
  }
  // The gateway still serves afterwards.
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'after-errors', Body: 'ok' }))
})

test('Expect: 100-continue gets 100 only when the body is wanted: an early error comes instead', async () => {
  const ask = async (target: string, secret?: Secret) => {
    const socket = await open()
    const reply = readReply(socket)
    const head = await requestHead('PUT', target, 64 * MiB, secret)
    socket.write(head.replace('\r\n', '\r\nexpect: 100-continue\r\n'))
    return within(30_000, `PUT ${target}`, reply).finally(() => socket.destroy())
  }
  // Deno.serve (hyper) sends 100 Continue itself before the app runs; this is the Node adapter's.
  if ('Deno' in globalThis) return
  const missing = await ask('/no-such-bucket/k')
  assert.is(missing.status, 404)
  assert.is(code(missing), 'NoSuchBucket')
  const wrong = await ask(`/${B}/k`, { awsAccessKey: env.alice.awsAccessKey, awsSecret: 'not-the-secret' })
  assert.is(wrong.status, 403)
  assert.is(code(wrong), 'SignatureDoesNotMatch')
  // A request the gateway takes gets its 100 Continue and then its answer.
  const socket = await open()
  const reply = readReply(socket)
  const body = Buffer.from('continued')
  socket.write((await requestHead('PUT', `/${B}/continued`, body.length)).replace('\r\n', '\r\nexpect: 100-continue\r\n'))
  const first = await within(30_000, '100 Continue', reply)
  assert.is(first.status, 100)
  const final = readReply(socket)
  socket.write(body)
  const r = await within(30_000, 'PUT after 100 Continue', final).finally(() => socket.destroy())
  assert.is(r.status, 200)
  const got = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'continued' }))
  assert.is(await got.Body!.transformToString(), 'continued')
})

test('the AWS SDK sees S3 errors, not EPIPE, on a large PUT answered early', async () => {
  // A fresh client per case: each opens its own connection, as a new SDK process would.
  const paced = async function* () {
    const piece = Buffer.alloc(64 * KiB, 1)
    for (let i = 0; i < 1024; i++) { await new Promise((r) => setTimeout(r, 1)); yield piece }
  }
  const cases = [
    { secret: env.alice, bucket: 'no-such-bucket', body: () => Readable.from(paced()), sizeBytes: 64 * MiB, want: ['NoSuchBucket', 404] },
    { secret: env.alice, bucket: 'no-such-bucket', body: () => Buffer.alloc(160 * MiB, 1), sizeBytes: 160 * MiB, want: ['NoSuchBucket', 404] },
    { secret: { ...env.alice, awsSecret: 'not-the-secret' }, bucket: B, body: () => Readable.from(paced()), sizeBytes: 64 * MiB, want: ['SignatureDoesNotMatch', 403] },
  ]
  for (const c of cases) {
    const client = s3Client(env, c.secret, { maxAttempts: 1 })
    try {
      const e = await errorOf(client.send(new PutObjectCommand({ Bucket: c.bucket, Key: 'k', Body: c.body(), ContentLength: c.sizeBytes })))
      assert.equal([e.name, e.status], c.want)
    } finally {
      client.destroy()
    }
  }
})

test('pipelined requests are answered as if sent one after another: a GET behind a PUT or DELETE of its key sees it', async () => {
  const exchange = async (wire: string, answers: number) => {
    const socket = await open()
    let out = ''
    socket.on('data', (d) => { out += d })
    socket.on('error', () => {})
    socket.write(wire)
    await eventually(30_000, `${answers} answers`, () => (out.match(/HTTP\/1.1 \d{3} /g)?.length ?? 0) >= answers && /(\r\n\r\n[^]*)$/.test(out))
    await new Promise((r) => setTimeout(r, 200))
    socket.destroy()
    return out
  }
  for (let round = 0; round < 5; round++) {
    const key = `in-turn-${round}`
    const put = await exchange((await putHead(`/${B}/${key}`, 2)) + 'v1' + (await requestHead('GET', `/${B}/${key}`, 0)), 2)
    assert.equal(put.match(/HTTP\/1.1 (\d{3})/g), ['HTTP/1.1 200', 'HTTP/1.1 200'], put)
    assert.match(put, /v1$/)
    const del = await exchange((await requestHead('DELETE', `/${B}/${key}`, 0)) + (await requestHead('GET', `/${B}/${key}`, 0)), 2)
    assert.equal(del.match(/HTTP\/1.1 (\d{3})/g), ['HTTP/1.1 204', 'HTTP/1.1 404'], del)
  }
})

test('pipelined requests: up to HTTP_PIPELINED_REQUESTS_MAX waiting are each answered in turn; a flood is cut after those, and the gateway stays responsive', async () => {
  const exchange = async (wire: string) => {
    const socket = await open()
    let out = ''
    socket.on('data', (d) => { out += d })
    socket.on('error', () => {})
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
    socket.write(wire)
    return { socket, closed, out: () => out }
  }
  const keys = Array.from({ length: 40 }, (_, i) => `turn-${String(i).padStart(2, '0')}`)
  for (const key of keys) await s3.send(new PutObjectCommand({ Bucket: B, Key: key, Body: key }))
  const polite = await exchange((await Promise.all(keys.map((k) => requestHead('GET', `/${B}/${k}`, 0)))).join(''))
  try {
    await eventually(30_000, 'every pipelined GET answered', () => (polite.out().match(/HTTP\/1.1 200 /g)?.length ?? 0) === keys.length && polite.out().endsWith(keys.at(-1)!))
    // Each answer carries its own key, in the order asked.
    assert.equal(keys.map((k) => polite.out().indexOf(`\r\n\r\n${k}`) > 0), keys.map(() => true))
    assert.ok(keys.every((k, i) => i === 0 || polite.out().indexOf(`\r\n\r\n${k}`) > polite.out().indexOf(`\r\n\r\n${keys[i - 1]}`)))
  } finally {
    polite.socket.destroy()
  }
  // 20,000 anonymous GETs in one go (0.9 MB): before, every one was parsed and waited, each
  // adding a listener to the answer in flight, and the gateway's loop froze.
  const head = `GET /${B}/flood HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n\r\n`
  const flood = await exchange(head.repeat(20_000))
  try {
    await within(30_000, 'the flooding connection is closed', flood.closed)
    const answers = flood.out().match(/HTTP\/1.1 \d{3} /g)?.length ?? 0
    assert.ok(answers >= 1 && answers <= HTTP_PIPELINED_REQUESTS_MAX + 1, `${answers} answers`)
  } finally {
    flood.socket.destroy()
  }
  const after = await s3.send(new GetObjectCommand({ Bucket: B, Key: keys[0] }))
  assert.is(await after.Body!.transformToString(), keys[0])
})

test('a request pipelined behind one Node answers itself and closes on (no Host) is not run: its answer could not be sent', async () => {
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'not-run', Body: 'kept' }))
  const socket = await open()
  let out = ''
  socket.on('data', (d) => { out += d })
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  try {
    socket.write((await requestHead('GET', `/${B}/pipelined`, 0)) + 'GET / HTTP/1.1\r\n\r\n' + (await requestHead('DELETE', `/${B}/not-run`, 0)))
    await within(60_000, 'the connection closes', closed)
    assert.is(out.match(/HTTP\/1.1 \d{3} /g)?.length, 2, 'the GET and Node\'s 400, nothing for the DELETE')
    const kept = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'not-run' }))
    assert.is(await kept.Body!.transformToString(), 'kept')
  } finally {
    socket.destroy()
  }
})

test('a request head that trickles in is answered RequestTimeout after s3g.headersTimeoutMs and closed, though its client never ends its side', async () => {
  const socket = await open()
  let answer = ''
  socket.on('data', (d) => { answer += d })
  socket.on('error', () => {})
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now())))
  const started = Date.now()
  socket.write(`GET /${B}/trickle HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\n`)
  // A header line every 200 ms, for ever: a slow-header client that keeps every byte coming.
  const timer = setInterval(() => { if (!socket.destroyed) socket.write('x-trickle: 1\r\n') }, 200)
  try {
    const at = await within(4 * HEADERS_TIMEOUT_MS + 10_000, 'the trickling connection is closed by the gateway', closed)
    assert.match(answer, /^HTTP\/1.1 400 /)
    assert.match(answer, '<Code>RequestTimeout</Code>')
    assert.ok(at - started >= HEADERS_TIMEOUT_MS, `closed after ${at - started} ms`)
  } finally {
    clearInterval(timer)
    socket.destroy()
  }
})

test('a malformed request pipelined behind a GET and a PUT: both are answered whole, then the connection closes', async () => {
  const data = randomBytes(8 * MiB + 1)
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'pipelined', Body: data }))
  const socket = await open()
  const parts: Buffer[] = []
  socket.on('data', (d: Buffer) => parts.push(d))
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  try {
    socket.write((await requestHead('GET', `/${B}/pipelined`, 0)) + (await putHead(`/${B}/pipelined-put`, 5)) + 'fiveb' + 'NOT-HTTP / HTTP/1.1\r\nhost: x\r\n\r\n')
    await within(60_000, 'the connection closes after the GET and the PUT', closed)
    const all = Buffer.concat(parts)
    const headEnd = all.indexOf('\r\n\r\n')
    assert.match(all.subarray(0, headEnd).toString(), /^HTTP\/1.1 200 /)
    // Before, the parse error's 400 went out first and was read as the GET's answer.
    const body = all.subarray(headEnd + 4, headEnd + 4 + data.length)
    assert.ok(body.equals(data), 'the GET body whole')
    const rest = all.subarray(headEnd + 4 + data.length).toString()
    assert.match(rest, /^HTTP\/1.1 200 /, 'then the PUT\'s answer')
    assert.not.match(rest, /HTTP\/1.1 400/)
    const put = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'pipelined-put' }))
    assert.is(await put.Body!.transformToString(), 'fiveb')
  } finally {
    socket.destroy()
  }
})

test('a malformed body in a request pipelined behind a GET: the GET is answered whole, the broken request is not run, the connection closes at once', async () => {
  const data = randomBytes(8 * MiB + 1)
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'pipelined', Body: data }))
  // A PUT streamed with chunked framing and no length, whose second chunk size is not hex.
  const chunkedHead = await requestHead('PUT', `/${B}/broken-chunked`, 'chunked')
  const socket = await open()
  const parts: Buffer[] = []
  socket.on('data', (d: Buffer) => parts.push(d))
  socket.on('error', () => {})
  const started = Date.now()
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(Date.now())))
  try {
    socket.write((await requestHead('GET', `/${B}/pipelined`, 0)) + chunkedHead + '5\r\nhello\r\nZZ\r\n')
    const at = await within(60_000, 'the connection closes after the GET', closed)
    const all = Buffer.concat(parts)
    const headEnd = all.indexOf('\r\n\r\n')
    assert.match(all.subarray(0, headEnd).toString(), /^HTTP\/1.1 200 /)
    assert.ok(all.subarray(headEnd + 4, headEnd + 4 + data.length).equals(data), 'the GET body whole')
    assert.is(all.subarray(headEnd + 4 + data.length).toString(), '', 'nothing after the GET\'s answer')
    // Run, the PUT would wait out the body idle timeout for bytes that cannot come.
    assert.ok(at - started < BODY_IDLE_TIMEOUT_MS, `closed ${at - started} ms after the requests were sent`)
    assert.is((await errorOf(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'broken-chunked' })))).name, 'NotFound')
  } finally {
    socket.destroy()
  }
})

test.run()
