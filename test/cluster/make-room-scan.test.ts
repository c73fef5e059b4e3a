/**
 * Goal: a RATIS/THREE container on exactly three datanodes with two replicas corrupt (each in
 * another block) is made whole again: the lone healthy replica is scanned whole first, then a
 * corrupt one is deleted to make room and copied over from it, then the other likewise; every
 * replica ends CLOSED and the key reads byte for byte. (A scan that finds the lone replica
 * corrupt deletes nothing: test/control/scm/replication/manager.test.ts.)
 * Method: SCM, OM and three datanodes in-process on loopback (mini-cluster.ts), the
 * replication manager every 300 ms; a key of three blocks (each with a block file) in one
 * container, closed; bytes flipped in the block files on disk and found by scans on demand
 * (`scanContainer`); the first corrupt replica's datanode decommissioning meanwhile (so that the
 * SCM meets the lone healthy replica, whatever its rounds' timing); the SCM's replicas through
 * getContainerLocations, its scans counted on /prom.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { KiB } from '../../core/limits.ts'
import type { ContainerLocation, KeyLocation } from '../../core/wire.ts'
import { blockFile } from '../../datapath/datanode/index.ts'
import { flipByte, until } from '../helpers.ts'
import { adminRpc, omRpc, randomBytes, startMiniCluster } from './mini-cluster.ts'
import { scmCounter } from './replication-cluster.ts'

const CHUNK = 64 * KiB
const BLOCK = 4 * CHUNK

type Cluster = Awaited<ReturnType<typeof startMiniCluster>>

async function setup(): Promise<{ cluster: Cluster; data: Buffer; blocks: KeyLocation[]; located: () => Promise<ContainerLocation> }> {
  const cluster = await startMiniCluster({
    datanodes: 3,
    overrides: { 'scm.block.sizeBytes': BLOCK, 'client.chunkSizeBytes': CHUNK, 'scm.replication.intervalMs': 300, 'scm.replication.commandTimeoutMs': 30_000 },
  })
  const client = cluster.client({ chunkSizeBytes: CHUNK })
  await client.createVolume('vol')
  await client.createBucket('vol', 'bkt', { replication: 'RATIS/THREE' })
  const data = randomBytes(3 * BLOCK, 5)
  await client.putKey('vol', 'bkt', 'k', data)
  const info = await client.headKey('vol', 'bkt', 'k')
  const id = info.locations[0].blockId.containerId
  const blocks = info.locations.filter((l) => l.blockId.containerId === id)
  assert.is(blocks.length, 3, 'the key\'s three blocks are in one container')
  const scmAsOm = await omRpc(cluster, 'SCM', cluster.scmAddress)
  const located = async () => (await scmAsOm.call<Record<string, ContainerLocation>>('getContainerLocations', { containerIds: [id] }))[id]
  await adminRpc(cluster, 'SCM', cluster.scmAddress).call('closeContainer', { containerId: id })
  await until('three CLOSED replicas', async () => (await located()).replicas.filter((r) => r.state === 'CLOSED').length === 3, 30_000, 100)
  return { cluster, data, blocks, located }
}

/** Flips a byte of `block` on datanode `i` and has it scan the replica: UNHEALTHY. */
async function corrupt(cluster: Cluster, i: number, block: KeyLocation): Promise<void> {
  const dn = cluster.datanodes[i]!
  flipByte(blockFile(join(cluster.options.dataDir, `datanode-${i + 1}`), dn.clusterId, block.blockId.containerId, block.blockId.localId), 1000)
  const scan = await adminRpc(cluster, 'Datanode', dn.address).call<{ result: string }>('scanContainer', { containerId: block.blockId.containerId })
  assert.is(scan.result, 'UNHEALTHY')
}

const scansSent = (cluster: Cluster) => scmCounter(cluster, 'replication_commands_sent_total', 'scan')

// Catches: a container left UNDER_REPLICATED for good on three datanodes (no node free for a
// copy, and a delete beside one healthy replica not allowed), or a scan never asked for. (That
// the delete waits for the scan's answer: test/control/scm/replication/manager.test.ts.)
test('two of three replicas corrupt, no datanode free: the healthy one is scanned, then each corrupt one is replaced', async () => {
  const { cluster, data, blocks, located } = await setup()
  try {
    const scm = adminRpc(cluster, 'SCM', cluster.scmAddress)
    const [, second, third] = cluster.datanodes
    // The SCM must meet one healthy replica beside two corrupt ones; were it to see two healthy
    // first, it would rightly delete the corrupt one without a scan. So the first corrupt one is
    // on a decommissioning datanode (no room made there: it takes no copy) until the second is known.
    await scm.call('datanodeAdmin', { action: 'decommission', datanodes: [second!.id] })
    await corrupt(cluster, 1, blocks[0])
    await until('the SCM to know replica 2 corrupt', async () => (await located()).replicas.find((r) => r.id === second!.id)?.state === 'UNHEALTHY', 30_000, 50)
    assert.is(await scansSent(cluster), 0, 'two healthy replicas: no scan')
    await corrupt(cluster, 2, blocks[1])
    await until('the SCM to know replica 3 corrupt', async () => (await located()).replicas.find((r) => r.id === third!.id)?.state !== 'CLOSED', 30_000, 20)
    await until('replica 3 replaced by a copy of the lone healthy one', async () => (await located()).replicas.find((r) => r.id === third!.id)?.state === 'CLOSED', 60_000, 100)
    assert.ok(await scansSent(cluster) >= 1, 'the lone healthy replica was scanned first')
    // Back in service, the datanode's corrupt replica makes room beside two healthy ones: no scan needed.
    await scm.call('datanodeAdmin', { action: 'recommission', datanodes: [second!.id] })
    await until('every replica CLOSED again', async () => {
      const replicas = (await located()).replicas
      return replicas.length === 3 && replicas.every((r) => r.state === 'CLOSED')
    }, 60_000, 100)
    const client = cluster.client({ chunkSizeBytes: CHUNK })
    assert.ok((await client.getKey('vol', 'bkt', 'k')).equals(data))
  } finally {
    await cluster.dispose()
  }
})

test.run()
