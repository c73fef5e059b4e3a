/** @module
 * Reads an upload body as the client declared it (x-amz-content-sha256): plain (signed with
 * its SHA-256, or UNSIGNED-PAYLOAD) or aws-chunked (STREAMING-AWS4-HMAC-SHA256-PAYLOAD,
 * STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER), verifying
 * chunk signatures, length, Content-MD5, the payload hash and the one x-amz-checksum-* (header
 * or trailer; a multipart upload's own algorithm for its parts) as the bytes pass. Yields
 * views of the received buffers: nothing is held whole.
 * Any mismatch throws at the end of the stream, before the caller commits (with a digest the
 * consumer computes over its stored bytes, storedDigest, `result` rejects instead). A body that sends
 * nothing for idleTimeoutMs throws RequestTimeout (S3's answer to an idle upload); while it is
 * quiet, `onIdle` runs every so often so that the consumer can give back what it holds.
 */
import type { RequestBody } from '../../core/http/body.ts'
import { S3G_BODY_IDLE_CHECK_MS_MAX } from '../../core/limits.ts'
import type { DigestName } from '../workers/index.ts'
import type { RequestAuth } from './auth.ts'
import { StreamDigest } from './digests.ts'
import { bodyDigest } from './inline-digest.ts'
import { CHECKSUM_ALGORITHMS, checkChecksumValue, checksumHeader, parseAlgorithm, type ChecksumAlgorithm } from './checksums.ts'
import { S3Error } from './errors.ts'
import { wholeNumber } from './whole-number.ts'
import { chunkSignature, EMPTY_SHA256, safeEqual, trailerSignature, type AuthParams } from './sigv4.ts'

/** The longest line of an aws-chunked header or trailer we accept. */
const CHUNK_LINE_BYTES_MAX = 4096
/**
 * The least a signed aws-chunked chunk but the last may carry (S3's rule): each costs a
 * SHA-256 and an HMAC, which a body of 1-byte chunks would pay per byte. Unsigned chunks
 * (STREAMING-UNSIGNED-PAYLOAD-TRAILER) cost a header line only and are taken at any size:
 * the JavaScript SDK sends its input stream's pieces as they come.
 */
const SIGNED_CHUNK_BYTES_MIN = 8192
/**
 * Unsigned chunks' data shorter than this is gathered (copied) into runs of STAGED_BYTES
 * before it is handed on: each piece handed on costs far more than its copy.
 */
const SMALL_PIECE_BYTES = 4096
const STAGED_BYTES = 65536
/** The most an aws-chunked trailer may hold (S3's carry a checksum and a signature, about 200 bytes). */
const TRAILER_BYTES_MAX = 8192

export interface PayloadOptions {
  /** The raw body from core/http/body.ts (requestBody), null when there is none. */
  body: RequestBody | null
  headers: Headers
  /** SigV2 signs no body, so it reads as UNSIGNED-PAYLOAD; SigV4 as x-amz-content-sha256 says. */
  auth: RequestAuth
  sizeMaxBytes: number
  /** How long the body may send nothing before RequestTimeout (config s3g.bodyIdleTimeoutMs). */
  idleTimeoutMs: number
  /**
   * The algorithm of the multipart upload a part belongs to: the body is hashed with it
   * whether or not the request names it; a request naming another is InvalidRequest.
   */
  checksumAlgorithm?: ChecksumAlgorithm
}

export interface PayloadResult {
  sizeBytes: number
  md5Hex: string
  /** x-amz-checksum-<alg> → base64, for the algorithm the client asked for (if any). */
  checksums: Record<string, string>
}

export interface Payload {
  /** The declared (decoded) length; undefined for a body sent chunked without one (what arrives, up to the limit). */
  sizeBytes: number | undefined
  source: AsyncIterable<Uint8Array>
  /** Settles after `source` is exhausted and verified. */
  result: Promise<PayloadResult>
  /**
   * Set by the consumer: called while the body is quiet (every S3G_BODY_IDLE_CHECK_MS_MAX at
   * most) and never while the consumer is handling a piece, so it may release what it holds.
   */
  onIdle?: () => Promise<void>
  /** The digests `result` needs of the bytes (md5 always). */
  digestNames: DigestName[]
  /**
   * Set by a consumer that hashes the bytes where it stores them (a key writer's KeyDigest,
   * over its slabs) before it reads `source`: the source then hashes nothing itself, and
   * `result` settles once that digest finishes (after the consumer's last chunk, so not
   * before the source ends).
   */
  storedDigest?: FinishingDigest
}

/** What a payload needs of a digest the consumer computes. */
export interface FinishingDigest {
  finish(): Promise<Partial<Record<DigestName, Buffer>>>
}

export function readPayload(o: PayloadOptions): Payload {
  const v4 = o.auth.version === 4 ? o.auth : undefined
  const mode = v4 === undefined ? 'UNSIGNED-PAYLOAD' : v4.params.payloadHash
  const streaming = mode.startsWith('STREAMING-')
  const signedChunks = mode === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD' || mode === 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER'
  const trailer = mode.endsWith('-TRAILER')
  if (streaming && !signedChunks && mode !== 'STREAMING-UNSIGNED-PAYLOAD-TRAILER') throw new S3Error('InvalidArgument', `Unsupported x-amz-content-sha256 ${mode}`)
  const hashed = !streaming && mode !== 'UNSIGNED-PAYLOAD'
  if (hashed && !/^[0-9a-f]{64}$/.test(mode)) throw new S3Error('InvalidArgument', `x-amz-content-sha256 must be a SHA-256 hex digest, UNSIGNED-PAYLOAD or STREAMING-*`)
  // A transfer coding other than chunked (gzip, chunked) would be stored still coded, as the
  // object's bytes: S3's answer to a header it does not implement.
  const transferEncoding = o.headers.get('transfer-encoding')
  if (transferEncoding !== null && transferEncoding.trim().toLowerCase() !== 'chunked') {
    throw new S3Error('NotImplemented', 'A header you provided implies functionality that is not implemented', { 'x-amz-header': 'Transfer-Encoding' })
  }
  const lengthHeader = streaming ? o.headers.get('x-amz-decoded-content-length') : o.headers.get('content-length')
  // HTTP/1.1 chunked framing with no length (curl -T -, a client streaming what it does not
  // measure first): the body is what arrives, up to sizeMaxBytes. aws-chunked still declares its size.
  const unmeasured = lengthHeader === null && o.body !== null && !streaming && transferEncoding !== null
  if (lengthHeader === null && o.body !== null && !unmeasured) throw new S3Error('MissingContentLength', 'You must provide the Content-Length HTTP header')
  const sizeBytes = unmeasured ? undefined : lengthHeader === null ? 0 : wholeNumber(lengthHeader)
  if (sizeBytes !== undefined && (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0)) throw new S3Error('InvalidArgument', `Invalid content length ${lengthHeader}`)
  if (sizeBytes !== undefined && sizeBytes > o.sizeMaxBytes) throw new S3Error('EntityTooLarge', `Your proposed upload of ${sizeBytes} bytes exceeds the maximum allowed size of ${o.sizeMaxBytes}`)

  // One additional checksum a request (x-amz-checksum-<algorithm>, as a header or a declared
  // trailer, or just x-amz-sdk-checksum-algorithm), as S3 allows.
  const expected: Partial<Record<ChecksumAlgorithm, string>> = {}
  const named: ChecksumAlgorithm[] = []
  for (const a of CHECKSUM_ALGORITHMS) {
    const v = o.headers.get(checksumHeader(a))
    if (v !== null) { checkChecksumValue(a, v); expected[a] = v; named.push(a) }
  }
  const trailerNames = (o.headers.get('x-amz-trailer') ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)
  for (const t of trailerNames) {
    const a = t.replace(/^x-amz-checksum-/, '') as ChecksumAlgorithm
    if (!CHECKSUM_ALGORITHMS.includes(a)) throw new S3Error('InvalidArgument', `Unsupported trailer ${t}`)
    named.push(a)
  }
  if (new Set(named).size > 1) throw new S3Error('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.')
  let algorithm: ChecksumAlgorithm | undefined = named[0]
  const sdkAlgorithm = parseAlgorithm(o.headers.get('x-amz-sdk-checksum-algorithm'))
  if (algorithm === undefined) algorithm = sdkAlgorithm
  else if (sdkAlgorithm !== undefined && sdkAlgorithm !== algorithm) throw new S3Error('InvalidRequest', 'Value for x-amz-sdk-checksum-algorithm header is invalid.')
  if (o.checksumAlgorithm !== undefined) {
    if (algorithm !== undefined && algorithm !== o.checksumAlgorithm) throw new S3Error('InvalidRequest', `Checksum Type mismatch occurred, expected checksum Type: ${o.checksumAlgorithm}, actual checksum Type: ${algorithm}`)
    algorithm = o.checksumAlgorithm
  }
  const contentMd5 = o.headers.get('content-md5')
  if (contentMd5 !== null && !/^[A-Za-z0-9+/]{22}==$/.test(contentMd5)) throw new S3Error('InvalidDigest', 'The Content-MD5 you specified is not valid')

  const names: DigestName[] = ['md5']
  if (algorithm !== undefined && algorithm !== 'sha256') names.push(algorithm)
  if (hashed || algorithm === 'sha256') names.push('sha256')
  let resolve!: (r: PayloadResult) => void, reject!: (e: unknown) => void
  const result = new Promise<PayloadResult>((res, rej) => { resolve = res; reject = rej })
  result.catch(() => {})
  const trailers: Record<string, string> = {}

  const payload: Payload = { sizeBytes, source: source(), result, digestNames: names }
  async function* source(): AsyncGenerator<Uint8Array> {
    const stored = payload.storedDigest
    const digest = stored === undefined ? bodyDigest(names, sizeBytes ?? o.sizeMaxBytes) : undefined
    try {
      const raw = o.body === null ? empty() : bodyPieces(o.body, o.idleTimeoutMs, () => payload.onIdle?.())
      const data = streaming && v4 !== undefined ? decodeChunked(raw, { signed: signedChunks, trailer, auth: v4.params, key: v4.signingKey, seed: v4.seedSignature, trailers }) : raw
      let total = 0
      for await (const piece of data) {
        total += piece.length
        if (sizeBytes === undefined && total > o.sizeMaxBytes) throw new S3Error('EntityTooLarge', `Your upload exceeds the maximum allowed size of ${o.sizeMaxBytes} bytes`)
        if (sizeBytes !== undefined && total > sizeBytes) throw new S3Error('InvalidRequest', `The body is longer than its declared length of ${sizeBytes} bytes`)
        await digest?.update(piece)
        yield piece
      }
      if (sizeBytes !== undefined && total !== sizeBytes) throw new S3Error('IncompleteBody', `You did not provide the number of bytes specified by the Content-Length HTTP header (${total} of ${sizeBytes})`)
      // A stored digest finishes after the consumer's last chunk, which it makes once this
      // source has ended: it is checked beside, and `result` tells.
      if (stored !== undefined) stored.finish().then((d) => verify(d, total)).then(resolve, reject)
      else resolve(verify(await digest!.finish(), total))
    } catch (err) {
      reject(err)
      throw err
    } finally {
      // A body that failed, or that its consumer stopped reading: its digest ends unfinished.
      digest?.drop()
    }
  }
  function verify(d: Partial<Record<DigestName, Buffer>>, total: number): PayloadResult {
    // The trailer carries what x-amz-trailer declared, and no checksum it did not: for an
    // unsigned payload it is the only check of the bytes, and one missing is no pass.
    for (const name of trailerNames) {
      if (trailers[name] === undefined) throw new S3Error('MalformedTrailerError', `x-amz-trailer declares ${name}, which the request's trailer did not carry`)
    }
    for (const name of Object.keys(trailers)) {
      if (name.startsWith('x-amz-checksum-') && !trailerNames.includes(name)) throw new S3Error('MalformedTrailerError', `The trailer carries ${name}, which x-amz-trailer did not declare`)
    }
    if (hashed && d.sha256!.toString('hex') !== mode) throw new S3Error('XAmzContentSHA256Mismatch', 'The provided x-amz-content-sha256 header does not match what was computed')
    if (contentMd5 !== null && d.md5!.toString('base64') !== contentMd5) throw new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received')
    const checksums: Record<string, string> = {}
    if (algorithm !== undefined) {
      const actual = d[algorithm]!.toString('base64')
      const want = expected[algorithm] ?? trailers[checksumHeader(algorithm)]
      if (want !== undefined && want !== expected[algorithm]) checkChecksumValue(algorithm, want)
      if (want !== undefined && want !== actual) throw new S3Error('BadDigest', `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum`)
      checksums[checksumHeader(algorithm)] = actual
    }
    return { sizeBytes: total, md5Hex: d.md5!.toString('hex'), checksums }
  }
  return payload
}

/**
 * A small request body (an XML document, a bucket policy) as UTF-8 text, verified as
 * readPayload verifies any body (the signed x-amz-content-sha256, Content-MD5,
 * x-amz-checksum-*) before a byte of it is used; '' when there is none. One past
 * `o.sizeMaxBytes` (declared or sent) throws `errors.tooLarge()`, text not UTF-8 `errors.notUtf8()`.
 */
export async function readBodyText(o: Omit<PayloadOptions, 'checksumAlgorithm'>, errors: { tooLarge: () => S3Error; notUtf8: () => S3Error }): Promise<string> {
  if (o.body === null) return ''
  const parts: Uint8Array[] = []
  try {
    const payload = readPayload(o)
    for await (const piece of payload.source) parts.push(piece)
    await payload.result
  } catch (err) {
    if (err instanceof S3Error && err.code === 'EntityTooLarge') throw errors.tooLarge()
    throw err
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(parts))
  } catch {
    throw errors.notUtf8()
  }
}

async function* empty(): AsyncGenerator<Uint8Array> {}

/** S3's answer to an upload whose body stops coming (its RequestTimeout, word for word). */
function requestTimeout(): S3Error {
  return new S3Error('RequestTimeout', 'Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.')
}

/**
 * The body's pieces as they arrive. A read that waits longer than `idleTimeoutMs` throws
 * RequestTimeout; while it waits, `onIdle` runs every check interval. This works on the
 * adapter's pieces (core/http/body.ts), so it holds on Node and Deno alike. The body is not
 * cancelled on timeout: that would close the connection before the client reads the answer
 * (the runtime adapter drains what is left once the answer is out).
 */
export async function* bodyPieces(body: RequestBody, idleTimeoutMs: number, onIdle: () => Promise<void> | undefined = () => undefined): AsyncGenerator<Uint8Array> {
  const checkMs = Math.max(1, Math.min(S3G_BODY_IDLE_CHECK_MS_MAX, Math.ceil(idleTimeoutMs / 8)))
  const reader = body[Symbol.asyncIterator]()
  let pending: Promise<IteratorResult<Uint8Array>> | undefined
  try {
    for (;;) {
      const read = reader.next().catch((err: unknown) => {
        throw new S3Error('IncompleteBody', `The request body ended early: ${(err as Error).message}`)
      })
      pending = read
      const quietSince = performance.now()
      let r = await within(read, checkMs)
      while (r === undefined) {
        if (performance.now() - quietSince >= idleTimeoutMs) throw requestTimeout()
        await onIdle()
        r = await within(read, checkMs)
      }
      pending = undefined
      if (r.done) return
      yield r.value
    }
  } finally {
    // A read still pending is left to the adapter, which drains what is left.
    if (pending === undefined) await reader.return?.()
    else pending.catch(() => {})
  }
}

/** What `p` settles to if within `ms`, else undefined (p goes on). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([p, new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

interface ChunkedOptions {
  signed: boolean
  trailer: boolean
  auth: AuthParams
  key: Buffer
  seed: string
  /** Filled with the trailing headers. */
  trailers: Record<string, string>
}

/**
 * Decodes aws-chunked framing (`hex-size[;chunk-signature=sig]\r\n data \r\n ... 0...\r\n
 * trailers \r\n`), checking each chunk's chained signature when signed.
 */
export async function* decodeChunked(raw: AsyncIterable<Uint8Array>, o: ChunkedOptions): AsyncGenerator<Uint8Array> {
  let state: 'header' | 'data' | 'crlf' | 'trailer' | 'done' = 'header'
  let line = ''
  let remaining = 0
  let crlf = 0
  let previous = o.seed
  let chunkSig = ''
  let chunks = 0
  let previousChunkBytes = 0
  // Chunk hashes run in the worker pool; their signatures are checked in order as the hashes
  // arrive, and all of them before the body ends (so before anything is committed).
  let hash = new StreamDigest(['sha256'])
  let checked: Promise<void> = Promise.resolve()
  const trailerLines: string[] = []
  let trailerBytes = 0
  let staged: Buffer | undefined
  let stagedBytes = 0
  function* flushStaged(): Generator<Uint8Array> {
    if (staged === undefined || stagedBytes === 0) return
    // A run of half the buffer or more goes on in it (a fresh buffer for the next: the consumer
    // may hold this one until it has hashed it); a shorter one as a copy of its own size.
    let run: Buffer
    if (stagedBytes >= STAGED_BYTES / 2) {
      run = staged.subarray(0, stagedBytes)
      staged = undefined
    } else run = Buffer.from(staged.subarray(0, stagedBytes))
    stagedBytes = 0
    yield run
  }
  const bad = (why: string) => new S3Error('IncompleteBody', `Malformed aws-chunked body: ${why}`)
  const verifyChunk = (sha: Promise<string> | string) => {
    if (!o.signed) return
    const given = chunkSig
    checked = checked.then(async () => {
      const want = chunkSignature(o.key, o.auth, previous, await sha)
      if (!safeEqual(want, given)) throw new S3Error('SignatureDoesNotMatch', 'The chunk signature does not match')
      previous = want
    })
    checked.catch(() => {})
  }
  const endTrailer = () => {
    let signature: string | undefined
    let canonical = ''
    for (const l of trailerLines) {
      const colon = l.indexOf(':')
      if (colon <= 0) throw bad(`trailer line ${JSON.stringify(l)}`)
      const name = l.slice(0, colon).trim().toLowerCase(), value = l.slice(colon + 1).trim()
      if (name === 'x-amz-trailer-signature') { signature = value; continue }
      o.trailers[name] = value
      canonical += `${name}:${value}\n`
    }
    if (o.signed && o.trailer) {
      if (signature === undefined || !safeEqual(trailerSignature(o.key, o.auth, previous, canonical), signature)) throw new S3Error('SignatureDoesNotMatch', 'The trailer signature does not match')
    }
  }
  try {
    for await (const buf of raw) {
      let at = 0
      while (at < buf.length) {
        if (state === 'done') {
          // minio-go ends its trailer with one CRLF more than the blank line; nothing else may follow.
          if (buf[at] !== 13 && buf[at] !== 10) throw bad('data after the final chunk')
          at++
          continue
        }
        if (state === 'data') {
          const n = Math.min(remaining, buf.length - at)
          const piece = buf.subarray(at, at + n)
          if (o.signed) await hash.update(piece)
          at += n
          remaining -= n
          if (!o.signed && n < SMALL_PIECE_BYTES) {
            if (stagedBytes + n > STAGED_BYTES) yield* flushStaged()
            staged ??= Buffer.allocUnsafe(STAGED_BYTES)
            staged.set(piece, stagedBytes)
            stagedBytes += n
          } else {
            yield* flushStaged()
            yield piece
          }
          if (remaining === 0) { state = 'crlf'; crlf = 0 }
          continue
        }
        if (state === 'crlf') {
          if (buf[at] !== (crlf === 0 ? 13 : 10)) throw bad('missing CRLF after chunk data')
          at++
          if (++crlf === 2) {
            // Unsigned chunks are hashed by nobody: no digest per chunk (a body of 1-byte chunks
            // paid one each).
            if (o.signed) {
              const done = hash
              verifyChunk(done.finish().then((d) => d.sha256!.toString('hex')))
              hash = new StreamDigest(['sha256'])
            }
            state = 'header'
          }
          continue
        }
        // header or trailer: read a line
        const nl = buf.indexOf(10, at)
        const end = nl < 0 ? buf.length : nl + 1
        line += Buffer.from(buf.buffer, buf.byteOffset + at, end - at).toString('latin1')
        at = end
        if (line.length > CHUNK_LINE_BYTES_MAX) throw bad('line too long')
        if (nl < 0) continue
        const text = line.replace(/\r?\n$/, '')
        line = ''
        if (state === 'trailer') {
          if (text === '') { await checked; endTrailer(); state = 'done'; continue }
          // Bounded, and only where the request declared a trailer: nothing else holds the lines.
          if (!o.trailer) throw bad('a trailer the request did not declare (x-amz-content-sha256 names no -TRAILER)')
          trailerBytes += text.length
          if (trailerBytes > TRAILER_BYTES_MAX) throw bad(`a trailer over ${TRAILER_BYTES_MAX} bytes`)
          trailerLines.push(text)
          continue
        }
        const [sizeHex, ...exts] = text.split(';')
        if (!/^[0-9a-fA-F]{1,12}$/.test(sizeHex)) throw bad(`chunk size ${JSON.stringify(sizeHex)}`)
        chunkSig = exts.map((e) => e.trim()).find((e) => e.startsWith('chunk-signature='))?.slice('chunk-signature='.length) ?? ''
        if (o.signed && chunkSig === '') throw new S3Error('SignatureDoesNotMatch', 'A chunk has no signature')
        remaining = parseInt(sizeHex, 16)
        if (o.signed && remaining > 0 && chunks > 0 && previousChunkBytes < SIGNED_CHUNK_BYTES_MIN) {
          throw new S3Error('InvalidChunkSizeError', `Only the last chunk is allowed to have a size less than ${SIGNED_CHUNK_BYTES_MIN} bytes`, {}, { xml: { Chunk: String(chunks + 1), BadChunkSize: String(previousChunkBytes) } })
        }
        chunks++
        previousChunkBytes = remaining
        if (remaining === 0) {
          verifyChunk(EMPTY_SHA256)
          yield* flushStaged()
          state = 'trailer'
        } else state = 'data'
      }
    }
    await checked
    if (state === 'trailer' && line === '') { endTrailer(); return }
    if (state !== 'done') throw bad('body ended inside a chunk')
  } finally {
    // The chunk being hashed when the body failed or its reader stopped (else a fresh one).
    hash.drop()
  }
}
