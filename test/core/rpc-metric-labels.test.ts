/** Goal: an RPC server's metrics keep a bounded set of labels, whatever method names clients
 *  send. Method: a real service app (core/rpc/server.ts) and its real prom-client registry;
 *  requests for made-up methods, then the /prom text. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServiceApp } from '../../core/rpc/server.ts'
import { ServiceMetrics } from '../../core/metrics.ts'

test('createServiceApp() counts made-up methods under one "unknown" label', async () => {
  const metrics = new ServiceMetrics('labels')
  const app = createServiceApp({ service: 'Test', handlers: { ping: () => 'pong' }, metrics, health: () => ({}) })
  const ok = await app.request('/rpc/Test.ping', { method: 'POST', body: '{}' })
  assert.is(ok.status, 200)
  for (let i = 0; i < 50; i++) {
    const res = await app.request(`/rpc/Test.made-up-${i}`, { method: 'POST', body: '{}' })
    assert.is(res.status, 400)
  }
  const wrongService = await app.request('/rpc/Other.ping', { method: 'POST', body: '{}' })
  assert.is(wrongService.status, 400)
  const text = await (await app.request('/prom')).text()
  assert.not.match(text, /made-up/)
  assert.match(text, /o3_labels_rpc_requests_total\{method="ping",code="OK",service="labels"\} 1/)
  assert.match(text, /o3_labels_rpc_requests_total\{method="unknown",code="INVALID_ARGUMENT",service="labels"\} 51/)
})

test.run()
