/** Goal: the RPC edge reads small JSON bodies whole and refuses what it must: a body past
 *  RPC_BODY_BYTES_MAX (declared or chunked) is 413 ENTITY_TOO_LARGE, a body that is not a
 *  JSON object 400, and the server keeps serving. Method: a real service app on a loopback
 *  port (core/http/serve.ts), called with undici. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Readable } from 'node:stream'
import { request } from 'undici'
import { serveApp } from '../../core/http/serve.ts'
import { createServiceApp } from '../../core/rpc/server.ts'
import { ServiceMetrics } from '../../core/metrics.ts'
import { RPC_BODY_BYTES_MAX } from '../../core/limits.ts'

const app = createServiceApp({ service: 'Test', handlers: { echo: (args: unknown) => args }, metrics: new ServiceMetrics('rpcserver'), health: () => ({}) })
const listener = await serveApp(app, { host: '127.0.0.1', port: 0, name: 'rpc server test' })
const url = `http://127.0.0.1:${listener.port}/rpc/Test.echo`

async function call(body: string | AsyncIterable<Uint8Array>): Promise<{ status: number; json: { code?: string; result?: unknown } }> {
  const res = await request(url, { method: 'POST', body: typeof body === 'string' ? body : Readable.from(body) })
  return { status: res.statusCode, json: (await res.body.json()) as { code?: string; result?: unknown } }
}

test('an RPC body is read whole, across many pieces', async () => {
  const value = 'x'.repeat(200_000)
  const text = JSON.stringify({ value })
  async function* pieces() { for (let i = 0; i < text.length; i += 1000) yield new TextEncoder().encode(text.slice(i, i + 1000)) }
  const r = await call(pieces())
  assert.is(r.status, 200)
  assert.equal(r.json.result, { value })
})

test('a body over the limit is 413 ENTITY_TOO_LARGE, declared or chunked', async () => {
  const big = JSON.stringify({ pad: 'x'.repeat(RPC_BODY_BYTES_MAX) })
  const declared = await call(big)
  assert.is(declared.status, 413)
  assert.is(declared.json.code, 'ENTITY_TOO_LARGE')
  async function* chunked() { for (let i = 0; i < big.length; i += 65536) yield Buffer.from(big.slice(i, i + 65536)) }
  const streamed = await call(chunked())
  assert.is(streamed.status, 413)
  assert.is(streamed.json.code, 'ENTITY_TOO_LARGE')
  assert.equal((await call('{"after":1}')).json.result, { after: 1 })
})

test('a body that is not a JSON object is 400 INVALID_ARGUMENT; an empty one is {}', async () => {
  for (const body of ['{', '3', 'null']) {
    const r = await call(body)
    assert.is(r.status, 400, body)
    assert.is(r.json.code, 'INVALID_ARGUMENT')
  }
  assert.equal((await call('')).json.result, {})
})

test.after(async () => { await listener.close() })

test.run()
