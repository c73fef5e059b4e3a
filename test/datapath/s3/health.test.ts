/**
 * Goal: the S3 gateway's /health (admin port) tells a load balancer whether S3 requests can
 * succeed: 200 UP while an OM leader answers, 503 DOWN saying why while none does (the OM
 * stopped), UP again once it is back; probes in between share one OM call; with the OM frozen
 * it still answers DOWN in bounded time.
 * Method: a mini cluster with a gateway; the OM stopped and started again on its port, real HTTP.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { OzoneManager } from '../../../control/om/index.ts'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { S3G_HEALTH_ANSWER_MS, S3G_HEALTH_PROBE_MS } from '../../../core/limits.ts'
import { S3Gateway } from '../../../datapath/s3/index.ts'
import { until } from '../../helpers.ts'
import { startS3Cluster } from './s3-cluster.ts'

const env = await startS3Cluster()
const health = async () => {
  const res = await fetch(`http://${env.gateway.adminAddress}/health`)
  return { status: res.status, body: await res.json() as { service: string; status: string; om: string } }
}

test.after(async () => { await env.dispose() })

test('/health is UP while the OM answers, DOWN (503) with the reason while it does not, and UP again once it is back', async () => {
  const up = await health()
  assert.is(up.status, 200)
  assert.equal({ service: up.body.service, status: up.body.status }, { service: 'S3Gateway', status: 'UP' })
  const port = Number(env.cluster.omAddress.split(':').pop())
  await env.cluster.oms[0]!.stop()
  const down = await until('/health says DOWN', async () => { const h = await health(); return h.status === 503 && h }, 10_000, 100)
  assert.is(down.body.status, 'DOWN')
  assert.match(down.body.om, env.cluster.omAddress)
  const om = new OzoneManager({ config: env.cluster.config, port, scmAddress: env.cluster.scmAddress })
  await om.start()
  env.cluster.oms[0] = om
  const again = await until('/health says UP again', async () => { const h = await health(); return h.status === 200 && h }, 15_000, 100)
  assert.is(again.body.status, 'UP')
})

test('probes within S3G_HEALTH_PROBE_MS share one OM call', async () => {
  await new Promise((r) => setTimeout(r, S3G_HEALTH_PROBE_MS))
  const count = async () => {
    const text = await (await fetch(`http://${env.cluster.omAddress}/prom`)).text()
    return Number(/o3_om_rpc_requests_total\{[^}]*method="getVolume"[^}]*\} (\d+)/.exec(text)?.[1] ?? 0)
  }
  const before = await count()
  await Promise.all(Array.from({ length: 10 }, () => health()))
  assert.is(await count() - before, 1)
})

test('with a group of frozen OMs (they take connections and never answer) /health answers DOWN within S3G_HEALTH_ANSWER_MS', async () => {
  const frozen = [createServer((req) => { req.resume() }), createServer((req) => { req.resume() })]
  for (const f of frozen) f.listen(0, '127.0.0.1')
  await Promise.all(frozen.map((f) => once(f, 'listening')))
  const omAddress = frozen.map((f) => `127.0.0.1:${(f.address() as AddressInfo).port}`).join(',')
  const gateway = new S3Gateway({ config: env.cluster.config, omAddress, scmAddress: env.cluster.scmAddress, port: 0, adminPort: 0 })
  await gateway.start()
  try {
    for (let i = 0; i < 2; i++) {
      const t0 = Date.now()
      const res = await fetch(`http://${gateway.adminAddress}/health`)
      const ms = Date.now() - t0
      assert.is(res.status, 503)
      assert.ok(ms < S3G_HEALTH_ANSWER_MS + 500, `answered in ${ms} ms`)
      assert.match(((await res.json()) as { om: string }).om, `no OM leader answered in ${S3G_HEALTH_ANSWER_MS} ms`)
    }
  } finally {
    await gateway.stop()
    for (const f of frozen) { f.closeAllConnections(); f.close() }
  }
})

test.run()
