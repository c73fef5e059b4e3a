/** Goal: `o3 local --ha` in one process (LocalCluster with `ha`): three SCMs and three OMs,
 * each trio one Raft group with one leader; datanodes, the gateway and clients get every
 * address; keys written through S3 and the native client read back after an OM leader
 * stops; the cluster starts again on its data. And `o3 local` refuses a data directory of
 * the other layout. Method: LocalCluster on free loopback ports, LMDB in a temporary
 * directory; the CLI as a child process for the refusal. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LocalCluster } from '../../cli/cluster.ts'
import { RpcClient } from '../../core/rpc/client.ts'
import { randomBytes } from '../helpers.ts'

const dir = mkdtempSync(join(tmpdir(), 'o3-local-ha-'))
const o3 = fileURLToPath(new URL('../../../bin/o3.js', import.meta.url))
let cluster: LocalCluster

async function roles(service: 'OM' | 'SCM', addresses: string[]): Promise<string[]> {
  return Promise.all(addresses.map(async (a) => (await new RpcClient(service, a).call<{ role: string }[]>('roles', {}))[0].role))
}

test.after(async () => {
  await cluster?.stop()
  rmSync(dir, { recursive: true, force: true })
})

test('three SCMs and three OMs, one leader each; clients get every address', async () => {
  cluster = new LocalCluster({ dataDir: join(dir, 'data'), datanodes: 3, freePorts: true, s3: true, ha: true })
  await cluster.start()
  assert.is(cluster.scms.length, 3)
  assert.is(cluster.oms.length, 3)
  assert.is(cluster.omAddress.split(',').length, 3)
  assert.is(cluster.scmAddress.split(',').length, 3)
  for (const [service, list] of [['OM', cluster.oms], ['SCM', cluster.scms]] as const) {
    const r = await roles(service, list.map((n) => n.address))
    assert.is(r.filter((x) => x === 'LEADER').length, 1, service)
    assert.is(r.filter((x) => x === 'FOLLOWER').length, 2, service)
  }
})

test('a key survives the OM leader stopping; the cluster starts again on its data', async () => {
  const client = cluster.client()
  await client.createVolume('vol')
  await client.createBucket('vol', 'bkt')
  await client.putKey('vol', 'bkt', 'k', randomBytes(5000, 1))
  const r = await roles('OM', cluster.oms.map((o) => o.address))
  await cluster.oms[r.indexOf('LEADER')].stop()
  assert.ok((await client.getKey('vol', 'bkt', 'k')).equals(randomBytes(5000, 1)))
  await client.putKey('vol', 'bkt', 'k2', randomBytes(5000, 2))
  // The stopped OM's stop() runs again in cluster.stop(): it is idempotent.
  await cluster.stop()
  cluster = new LocalCluster({ dataDir: join(dir, 'data'), datanodes: 3, freePorts: true, ha: true })
  await cluster.start()
  const again = cluster.client()
  assert.ok((await again.getKey('vol', 'bkt', 'k2')).equals(randomBytes(5000, 2)))
})

test('o3 local refuses a data directory of the other layout', async () => {
  const run = (args: string[]) => new Promise<{ code: number; stderr: string }>((res) => {
    execFile(process.execPath, [o3, 'local', '--ports', 'free', ...args], (err, _out, stderr) => res({ code: err === null ? 0 : (err as { code: number }).code, stderr }))
  })
  const single = join(dir, 'single'), ha = join(dir, 'ha')
  mkdirSync(join(single, 'scm'), { recursive: true })
  mkdirSync(join(ha, 'scm1'), { recursive: true })
  const a = await run(['--ha', '--data', single])
  assert.is(a.code, 2)
  assert.match(a.stderr, /started without --ha/)
  const b = await run(['--data', ha])
  assert.is(b.code, 2)
  assert.match(b.stderr, /started with --ha/)
})

test.run()
