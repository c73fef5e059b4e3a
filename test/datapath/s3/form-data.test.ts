/**
 * Goal: the multipart/form-data reader (datapath/s3/form-data.ts) reads what browsers send,
 * wherever the network splits it, and refuses what is not form-data with
 * MalformedPOSTRequest. Method: a form as a browser builds it, fed in pieces split at every
 * offset (and byte by byte); the file's bytes must come back exactly, delimiter-like bytes
 * inside it included.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { FormDataReader, formBoundary } from '../../../datapath/s3/form-data.ts'
import { S3Error } from '../../../datapath/s3/errors.ts'

const B = '----WebKitFormBoundary7MA4YWxkTrZu0gW'

function form(fields: [string, string][], file: { name?: string; filename: string; type?: string; bytes: Buffer }, after = ''): Buffer {
  const head = fields.map(([k, v]) => `--${B}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`).join('')
  const fileHead = `--${B}\r\nContent-Disposition: form-data; name="${file.name ?? 'file'}"; filename="${file.filename}"\r\n` + (file.type === undefined ? '' : `Content-Type: ${file.type}\r\n`) + '\r\n'
  return Buffer.concat([Buffer.from(head + fileHead), file.bytes, Buffer.from(`\r\n${after}--${B}--\r\n`)])
}

async function* pieces(bytes: Buffer, cuts: number[]): AsyncGenerator<Uint8Array> {
  let at = 0
  for (const c of [...cuts, bytes.length]) {
    if (c > at) yield bytes.subarray(at, c)
    at = Math.max(at, c)
  }
}

async function readAll(body: AsyncIterable<Uint8Array>): Promise<{ fields: Record<string, string>; file?: { part: unknown; bytes: Buffer }; consumedAtFile: number }> {
  const r = new FormDataReader(body, B)
  const fields: Record<string, string> = {}
  let file: { part: unknown; bytes: Buffer } | undefined
  let consumedAtFile = -1
  for (let part = await r.next(); part !== undefined; part = await r.next()) {
    if (part.filename !== undefined) {
      consumedAtFile = r.consumedBytes
      const got: Buffer[] = []
      for await (const p of r.body()) got.push(Buffer.from(p))
      file = { part, bytes: Buffer.concat(got) }
    } else fields[part.name] = await r.text(1024, () => new Error('too long'))
  }
  return { fields, file, consumedAtFile }
}

const FILE = Buffer.from(`line one\r\n--${B.slice(0, 10)} not quite\r\n\r\n--${B.slice(0, -1)} almost the boundary \r\n-- end\r\n-`)

test('FormDataReader reads fields and streams the file exactly, split at every offset', async () => {
  const body = form([['key', 'uploads/${filename}'], ['policy', 'eyJ9'], ['x-amz-meta-ünï', 'välue']], { filename: 'a b.txt', type: 'text/plain', bytes: FILE })
  for (let cut = 0; cut <= body.length; cut++) {
    const r = await readAll(pieces(body, [cut]))
    assert.equal(r.fields, { key: 'uploads/${filename}', policy: 'eyJ9', 'x-amz-meta-ünï': 'välue' }, `cut ${cut}`)
    assert.equal(r.file!.part, { name: 'file', filename: 'a b.txt', contentType: 'text/plain' })
    assert.ok(r.file!.bytes.equals(FILE), `cut ${cut}`)
  }
  const bytewise = await readAll(pieces(body, [...body.keys()]))
  assert.ok(bytewise.file!.bytes.equals(FILE))
  const whole = await readAll(pieces(body, []))
  // What was read before the file's bytes: its size is the body's length less that, less the closing lines.
  assert.is(whole.consumedAtFile, body.length - FILE.length - `\r\n--${B}--\r\n`.length)
})

test('FormDataReader reads an empty file, a preamble, fields after the file and no final CRLF', async () => {
  const empty = await readAll(pieces(form([['key', 'k']], { filename: 'e', bytes: Buffer.alloc(0) }, `--${B}\r\nContent-Disposition: form-data; name="late"\r\n\r\nv\r\n`), [7]))
  assert.is(empty.file!.bytes.length, 0)
  assert.equal(empty.fields, { key: 'k', late: 'v' })
  const withPreamble = Buffer.concat([Buffer.from('ignored preamble\r\n'), form([['a', '1']], { filename: 'f', bytes: FILE })]).subarray(0, -2)
  const r = await readAll(pieces(withPreamble, [3, 40]))
  assert.equal(r.fields, { a: '1' })
  assert.ok(r.file!.bytes.equals(FILE))
})

test('FormDataReader refuses a truncated body, a part without a name, and headers past their limit', async () => {
  const code = async (body: Buffer) => {
    try { await readAll(pieces(body, [5])) } catch (err) { return err instanceof S3Error ? err.code : String(err) }
    return 'no error'
  }
  const good = form([['key', 'k']], { filename: 'f', bytes: FILE })
  assert.is(await code(good.subarray(0, good.length - 20)), 'MalformedPOSTRequest')
  assert.is(await code(Buffer.from('no boundary at all')), 'MalformedPOSTRequest')
  assert.is(await code(Buffer.from(`--${B}\r\nContent-Disposition: form-data\r\n\r\nv\r\n--${B}--\r\n`)), 'MalformedPOSTRequest')
  assert.is(await code(Buffer.from(`--${B}\r\nX-Long: ${'a'.repeat(9000)}\r\n\r\nv\r\n--${B}--\r\n`)), 'MalformedPOSTRequest')
  assert.is(await code(Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="big"\r\n\r\n${'v'.repeat(2000)}\r\n--${B}--\r\n`)), 'Error: too long')
})

test('formBoundary() takes the boundary parameter, quoted or not, and refuses anything else', () => {
  assert.is(formBoundary(`multipart/form-data; boundary=${B}`), B)
  assert.is(formBoundary('Multipart/Form-Data; charset=utf-8; boundary="a b:c"'), 'a b:c')
  for (const bad of [null, 'multipart/form-data', 'multipart/mixed; boundary=x', 'multipart/form-data; boundary=', `multipart/form-data; boundary=${'x'.repeat(71)}`]) {
    assert.throws(() => formBoundary(bad), (e: unknown) => e instanceof S3Error && e.code === 'MalformedPOSTRequest')
  }
})

test.run()
