/**
 * Goal: the S3 gateway's /health (admin port) tells a load balancer whether S3 requests can
 * succeed: 200 UP while an OM leader answers, 503 DOWN saying why while none does (the OM
 * stopped), UP again once it is back; probes in between share one OM call.
 * Method: a mini cluster with a gateway; the OM stopped and started again on its port, real HTTP.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { OzoneManager } from '../../../control/om/index.ts'
import { S3G_HEALTH_PROBE_MS } from '../../../core/limits.ts'
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

test.run()
