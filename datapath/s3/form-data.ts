/** @module
 * A pull reader of multipart/form-data (RFC 7578 over RFC 2046 §5.1.1) for browser uploads:
 * part headers and small fields read whole under a byte limit, one part's body streamed as
 * views of the received buffers (nothing held whole), so a 5 GB file passes through in the
 * pieces it came in. Pure: it reads only the pieces it is given.
 *
 * Hand-written rather than busboy: busboy is push-based (a Node Writable emitting file
 * streams), which needs a pump and its own backpressure between our pulled request body and
 * the pulled key writer; a pull reader is one loop, and PostObject needs only "fields, then
 * the file".
 */
import { S3Error } from './errors.ts'

/** The headers of one part, as PostObject needs them. */
export interface FormPart {
  /** The form field name (Content-Disposition's `name`). */
  name: string
  /** The file name, for a file input (Content-Disposition's `filename`). */
  filename?: string
  /** The part's Content-Type, if it gave one. */
  contentType?: string
}

/** A part's header block longer than this is not a browser's. */
const PART_HEADERS_BYTES_MAX = 8 * 1024
/** Bytes before the first boundary (a preamble) that are skipped at most. */
const PREAMBLE_BYTES_MAX = 8 * 1024
/** RFC 2046: a boundary is 1 to 70 characters. */
const BOUNDARY_LENGTH_MAX = 70

const CRLF = Buffer.from('\r\n')
const CRLFCRLF = Buffer.from('\r\n\r\n')

/** What S3 answers for a body that is not multipart/form-data. */
export function malformedPost(why: string): S3Error {
  return new S3Error('MalformedPOSTRequest', `The body of your POST request is not well-formed multipart/form-data: ${why}`)
}

/** The boundary of a `multipart/form-data; boundary=...` Content-Type; MalformedPOSTRequest if none. */
export function formBoundary(contentType: string | null): string {
  const m = /^multipart\/form-data\s*;(.*)$/i.exec(contentType ?? '')
  const params = m === null ? undefined : parseParams(m[1]!)
  const boundary = params?.get('boundary')
  if (boundary === undefined || boundary.length === 0 || boundary.length > BOUNDARY_LENGTH_MAX) throw malformedPost('the Content-Type names no boundary')
  return boundary
}

/**
 * Reads parts in order: next() gives a part's headers (undefined after the last), then
 * text() or body() reads its content up to the next boundary. `consumedBytes` counts what was
 * read off the body so far (a file's size is at most the request's length minus that).
 */
export class FormDataReader {
  private readonly it: AsyncIterator<Uint8Array>
  /** `\r\n--boundary`: every delimiter, the first too, since the reader starts as if after a CRLF. */
  private readonly delimiter: Buffer
  /** Received bytes not yet consumed (a small carry, or a whole piece while looking in it). */
  private pending: Buffer = CRLF
  private ended = false
  /** The current part's content has been read up to its delimiter (or no part is open yet). */
  private atDelimiter = false
  private finished = false
  private started = false
  consumedBytes = -CRLF.length

  constructor(body: AsyncIterable<Uint8Array>, boundary: string) {
    this.it = body[Symbol.asyncIterator]()
    this.delimiter = Buffer.from(`\r\n--${boundary}`, 'latin1')
  }

  /** The next part's headers, skipping what is left of the current part; undefined after the closing boundary. */
  async next(): Promise<FormPart | undefined> {
    if (this.finished) return undefined
    if (!this.started) {
      this.started = true
      await this.skipTo(PREAMBLE_BYTES_MAX, 'the body does not start with its boundary')
    } else if (!this.atDelimiter) {
      for await (const _ of this.body()) { /* the rest of the part is skipped */ }
    }
    this.atDelimiter = false
    // After a delimiter: "--" closes the body; else transport padding, then CRLF and headers.
    await this.fill(2)
    if (this.pending.subarray(0, 2).toString('latin1') === '--') {
      this.finished = true
      this.consume(this.pending.length)
      return undefined
    }
    const headerEnd = await this.find(CRLFCRLF, PART_HEADERS_BYTES_MAX, 'a part has no end to its headers')
    const block = this.pending.subarray(0, headerEnd).toString('utf8')
    this.consume(headerEnd + CRLFCRLF.length)
    const lines = block.split('\r\n')
    if (lines[0]!.trim() !== '') throw malformedPost('a boundary is followed by more than padding')
    let part: FormPart | undefined
    let contentType: string | undefined
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      if (colon <= 0) throw malformedPost(`a part header is not "name: value": ${JSON.stringify(line.slice(0, 40))}`)
      const name = line.slice(0, colon).trim().toLowerCase()
      const value = line.slice(colon + 1).trim()
      if (name === 'content-type') contentType = value
      if (name !== 'content-disposition') continue
      const semicolon = value.indexOf(';')
      if (semicolon < 0 || value.slice(0, semicolon).trim().toLowerCase() !== 'form-data') throw malformedPost('a part is not form-data')
      const params = parseParams(value.slice(semicolon + 1))
      const fieldName = params.get('name')
      if (fieldName === undefined) throw malformedPost('a part has no name')
      part = { name: fieldName }
      const filename = params.get('filename')
      if (filename !== undefined) part.filename = filename
    }
    if (part === undefined) throw malformedPost('a part has no Content-Disposition')
    if (contentType !== undefined) part.contentType = contentType
    return part
  }

  /** The current part's content as UTF-8 text, at most `maxBytes` (else `tooLong()` is thrown). */
  async text(maxBytes: number, tooLong: () => Error): Promise<string> {
    const end = await this.find(this.delimiter, maxBytes, 'a field has no boundary after it', tooLong)
    const text = this.pending.subarray(0, end).toString('utf8')
    this.consume(end + this.delimiter.length)
    this.atDelimiter = true
    return text
  }

  /**
   * The current part's content, in views of the received pieces (each valid until the next
   * is asked for). At most delimiter-length bytes are held back, in case they start the
   * boundary.
   */
  async *body(): AsyncGenerator<Uint8Array> {
    const size = this.delimiter.length
    for (;;) {
      const at = this.pending.indexOf(this.delimiter)
      if (at >= 0) {
        const content = this.pending.subarray(0, at)
        this.consume(at + size)
        this.atDelimiter = true
        if (content.length > 0) yield content
        return
      }
      // No delimiter in what is held: all but its last size-1 bytes are content.
      if (this.pending.length >= size) {
        const out = this.pending.subarray(0, this.pending.length - size + 1)
        this.consume(out.length)
        yield out
      }
      const piece = await this.nextPiece()
      if (piece === undefined) throw malformedPost('the body ends inside a part')
      // The carry (under `size` bytes) is joined to the piece only if a delimiter may start
      // in it; else it is content, and the piece is looked at where it lies (not copied).
      const carry = this.pending
      const joint = carry.length === 0 || piece.length < size ? -1 : Buffer.concat([carry, piece.subarray(0, size)]).indexOf(this.delimiter)
      if (carry.length === 0 || (joint >= 0 && joint < carry.length) || piece.length < size) {
        this.pending = carry.length === 0 ? piece : Buffer.concat([carry, piece])
        continue
      }
      this.consume(carry.length)
      this.pending = piece
      yield carry
    }
  }

  /** Consumes up to and including the next delimiter, which must come within `maxBytes`. */
  private async skipTo(maxBytes: number, why: string): Promise<void> {
    const at = await this.find(this.delimiter, maxBytes, why)
    this.consume(at + this.delimiter.length)
  }

  /** The offset of `needle` in `pending`, reading more as needed, found within `maxBytes`. */
  private async find(needle: Buffer, maxBytes: number, why: string, tooLong: () => Error = () => malformedPost(why)): Promise<number> {
    let from = 0
    for (;;) {
      const at = this.pending.indexOf(needle, from)
      if (at >= 0) {
        if (at > maxBytes) throw tooLong()
        return at
      }
      if (this.pending.length > maxBytes + needle.length) throw tooLong()
      from = Math.max(0, this.pending.length - needle.length + 1)
      if (!await this.read()) throw malformedPost(why)
    }
  }

  /** Reads until `pending` holds `n` bytes; MalformedPOSTRequest if the body ends first. */
  private async fill(n: number): Promise<void> {
    while (this.pending.length < n) {
      if (!await this.read()) throw malformedPost('the body ends after a boundary')
    }
  }

  /** Appends the next piece to `pending` (a view when nothing is held); false at the end of the body. */
  private async read(): Promise<boolean> {
    const piece = await this.nextPiece()
    if (piece === undefined) return false
    this.pending = this.pending.length === 0 ? piece : Buffer.concat([this.pending, piece])
    return true
  }

  /** The body's next piece as a Buffer view; undefined at its end. */
  private async nextPiece(): Promise<Buffer | undefined> {
    if (this.ended) return undefined
    const r = await this.it.next()
    if (r.done === true) { this.ended = true; return undefined }
    return Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength)
  }

  private consume(n: number): void {
    this.consumedBytes += n
    this.pending = this.pending.subarray(n)
  }
}

/**
 * `; a=b; c="d"` as a map with lower-case names. Quoted values keep what browsers put in them
 * (they escape `"` as %22 and line breaks as %0D%0A, and write the rest of a name raw, UTF-8);
 * a backslash escapes the next character, as in RFC 2045 quoted strings.
 */
function parseParams(text: string): Map<string, string> {
  const out = new Map<string, string>()
  let i = 0
  while (i < text.length) {
    while (i < text.length && (text[i] === ';' || text[i] === ' ' || text[i] === '\t')) i++
    const eq = text.indexOf('=', i)
    if (eq < 0) break
    const name = text.slice(i, eq).trim().toLowerCase()
    i = eq + 1
    let value = ''
    if (text[i] === '"') {
      i++
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\' && i + 1 < text.length) i++
        value += text[i]
        i++
      }
      i++
    } else {
      const end = text.indexOf(';', i)
      value = (end < 0 ? text.slice(i) : text.slice(i, end)).trim()
      i = end < 0 ? text.length : end
    }
    if (!out.has(name)) out.set(name, value)
  }
  return out
}
