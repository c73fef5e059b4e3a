/** @module
 * `node dist/bench/s3-small-ops.js [count]`: what one 4 KiB S3 PUT and GET cost, in the
 * figures a busy shared machine moves least: internal RPCs per operation (each service's own
 * o3_*_rpc_requests_total) and CPU time per operation (process.cpuUsage over the whole
 * process: load generator, gateway, OM, SCM, one datanode and the worker pool), beside
 * ops/s. One RATIS/ONE cluster in this process on free ports, in a temp dir removed at the
 * end; requests from bench/s3-load.ts (SigV4, UNSIGNED-PAYLOAD), one at a time, then 32 at
 * once. Nothing is asserted.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { randomFillSync } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalCluster } from '../cli/cluster.ts'
import { closeWorkerPool } from '../datapath/workers/index.ts'
import { S3Load } from './s3-load.ts'

const KiB = 1024
const CONCURRENCY = 32

async function rpcTotal(address: string): Promise<number> {
  const text = await (await fetch(`http://${address}/prom`)).text()
  let n = 0
  for (const m of text.matchAll(/^o3_\w+_rpc_requests_total\{[^}]*\} (\d+)$/gm)) n += Number(m[1])
  return n
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 400)
  const dir = mkdtempSync(join(tmpdir(), 'o3-small-ops-'))
  const cluster = new LocalCluster({ dataDir: dir, datanodes: 1, freePorts: true, s3: true, overrides: { 'scm.block.sizeBytes': 16 * 1024 * KiB } })
  await cluster.start()
  try {
    const secret = await cluster.client().getS3Secret('bench')
    const load = new S3Load(cluster.s3g!.endpoint, { accessKeyId: secret.awsAccessKey, secretAccessKey: secret.awsSecret })
    await load.createBucket('small')
    const body = randomFillSync(new Uint8Array(4 * KiB))
    const dn = cluster.datanodes[0]!.address
    const om = cluster.omAddress
    for (let i = 0; i < 50; i++) { await load.put('small', `warm${i}`, body); await load.get('small', `warm${i}`) }

    const measure = async (name: string, concurrency: number, op: (i: number) => Promise<unknown>) => {
      const omBefore = await rpcTotal(om), dnBefore = await rpcTotal(dn)
      const cpu = process.cpuUsage()
      const started = performance.now()
      let next = 0
      await Promise.all(Array.from({ length: concurrency }, async () => { while (next < count) await op(next++) }))
      const seconds = (performance.now() - started) / 1000
      const used = process.cpuUsage(cpu)
      const omCalls = (await rpcTotal(om)) - omBefore, dnCalls = (await rpcTotal(dn)) - dnBefore
      console.log(`${name.padEnd(22)} ${(count / seconds).toFixed(0).padStart(6)} ops/s   CPU ${((used.user + used.system) / count).toFixed(0).padStart(5)} us/op   OM ${(omCalls / count).toFixed(2)}/op   datanode ${(dnCalls / count).toFixed(2)}/op`)
    }
    const idle = process.cpuUsage()
    await new Promise((r) => setTimeout(r, 1000))
    const idleUsed = process.cpuUsage(idle)
    console.log(`4 KiB S3 objects, ${count} per step, RATIS/ONE, one datanode; CPU while idle: ${((idleUsed.user + idleUsed.system) / 1000).toFixed(0)} ms/s`)
    await measure('PUT one at a time', 1, (i) => load.put('small', `seq${i}`, body))
    await measure('GET one at a time', 1, (i) => load.get('small', `seq${i}`))
    await measure(`PUT ${CONCURRENCY} at once`, CONCURRENCY, (i) => load.put('small', `con${i}`, body))
    await measure(`GET ${CONCURRENCY} at once`, CONCURRENCY, (i) => load.get('small', `con${i}`))
    await load.close()
  } finally {
    await cluster.stop()
    await closeWorkerPool()
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
