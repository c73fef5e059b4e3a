/**
 * Goal: serveApp takes the options it offers as Node's server does: a headers timeout over
 * Node's default request timeout (300 s) starts and serves; a small body read whole
 * (smallBodyText, every RPC's) that stops coming is cut with its connection. Method: a Hono
 * app served on a free loopback port, requests over real HTTP and a raw socket.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { Hono } from 'hono'
import { connect } from 'node:net'
import { serveApp } from '../../core/http/serve.ts'
import { smallBodyText } from '../../core/http/body.ts'
import { O3Error } from '../../core/errors.ts'

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

test('a small body that stops coming is cut after its idle time, connection and all; one that comes is read', async () => {
  const app = new Hono()
  const outcomes: string[] = []
  app.post('/', async (c) => {
    try {
      return c.text(await smallBodyText(c, 1000, 'Cannot test', 300))
    } catch (err) {
      outcomes.push(err instanceof O3Error ? err.code : String(err))
      throw err
    }
  })
  const listener = await serveApp(app, { host: '127.0.0.1', port: 0, name: 'test server' })
  try {
    assert.is(await (await fetch(`http://127.0.0.1:${listener.port}/`, { method: 'POST', body: 'whole' })).text(), 'whole')
    const socket = connect(listener.port, '127.0.0.1')
    socket.on('error', () => {})
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
    // A head and 10 of the 100 bytes it declares, then nothing: it once held the connection for good.
    socket.write('POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789')
    let timer: NodeJS.Timeout | undefined
    const gaveUp = new Promise<string>((resolve) => { timer = setTimeout(() => resolve('still open after 10 s'), 10_000) })
    assert.is(await Promise.race([closed.then(() => 'closed'), gaveUp]), 'closed')
    clearTimeout(timer)
    assert.equal(outcomes, ['TIMEOUT'])
  } finally {
    await listener.close()
  }
})

test.run()
