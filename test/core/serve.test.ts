/**
 * Goal: serveApp takes the options it offers as Node's server does: a headers timeout over
 * Node's default request timeout (300 s) starts and serves. Method: a Hono app served on a
 * free loopback port, one request over real HTTP.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Hono } from 'hono'
import { serveApp } from '../../core/http/serve.ts'

test('a headers timeout over 300 s is taken (Node checks it against the request timeout when built)', async () => {
  const app = new Hono()
  app.get('/', (c) => c.text('up'))
  const listener = await serveApp(app, { host: '127.0.0.1', port: 0, name: 'test server', headersTimeoutMs: 400_000 })
  try {
    assert.is(await (await fetch(`http://127.0.0.1:${listener.port}/`)).text(), 'up')
  } finally {
    await listener.close()
  }
})

test.run()
