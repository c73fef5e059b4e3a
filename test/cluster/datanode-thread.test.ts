/**
 * Goal: the datanodes of `o3 local` can run on their own worker thread (its default), so
 * that they do not share an event loop with the gateway, the OM and the SCM, and the
 * cluster still serves keys and stops cleanly. Method: a LocalCluster with datanodeThread
 * on free ports in a temp dir; put and read back keys of both replications with the native
 * client; stop, start again on the same data and read them again.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalCluster } from '../../cli/cluster.ts'
import { randomBytes } from '../helpers.ts'

const dataDir = mkdtempSync(join(tmpdir(), 'o3-dn-thread-'))
const overrides = { 'datanode.heartbeatIntervalMs': 100 }

test.after(() => rmSync(dataDir, { recursive: true, force: true }))

test('LocalCluster({ datanodeThread }) serves keys from datanodes on another thread, and keeps them across a restart', async () => {
  const data = randomBytes(300_000, 7)
  let cluster = new LocalCluster({ dataDir, datanodes: 3, freePorts: true, overrides, datanodeThread: true })
  try {
    await cluster.start()
    assert.is(cluster.datanodeAddresses.length, 3)
    assert.is(cluster.datanodes.length, 0, 'no datanode on this thread')
    const client = cluster.client()
    await client.createVolume('vol')
    for (const r of ['RATIS/ONE', 'RATIS/THREE']) {
      const bucket = r === 'RATIS/ONE' ? 'ratis-one' : 'ratis-three'
      await client.createBucket('vol', bucket, { replication: r })
      await client.putKey('vol', bucket, 'k', data)
      assert.ok((await client.getKey('vol', bucket, 'k')).equals(data), `${r}: bytes differ`)
    }
  } finally {
    await cluster.stop()
  }
  cluster = new LocalCluster({ dataDir, datanodes: 3, freePorts: true, overrides, datanodeThread: true })
  try {
    await cluster.start()
    assert.ok((await cluster.client().getKey('vol', 'ratis-three', 'k')).equals(data), 'bytes differ after a restart')
  } finally {
    await cluster.stop()
  }
})

test('LocalCluster({ datanodeThread }) refuses to start or stop a single datanode', async () => {
  const cluster = new LocalCluster({ dataDir: join(dataDir, 'x'), datanodes: 1, freePorts: true, datanodeThread: true })
  try {
    await cluster.startDatanode(0)
    assert.unreachable('startDatanode() should throw')
  } catch (err) {
    assert.instance(err, TypeError)
  }
})

test.run()
