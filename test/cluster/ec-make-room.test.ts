/**
 * Goal: an rs-3-2 container on exactly five datanodes, one replica found corrupt, is rebuilt:
 * no datanode is free for the missing index, so the SCM deletes the corrupt replica to make
 * room and reconstructs the index on that datanode, which then holds its exact bytes, CLOSED,
 * and the container is HEALTHY again.
 * Method: SCM, OM and five datanodes in-process on loopback (mini-cluster.ts), the
 * replication manager every 300 ms; the key written by the EC writer; a byte flipped in one
 * replica's block file, found by a scan on demand (`scanContainer`); replicas read with
 * readChunk before and after.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { join } from 'node:path'
import { replicaLengthBytes, type EcScheme } from '../../core/ec-layout.ts'
import { KiB } from '../../core/limits.ts'
import { parseReplication, type ContainerLocation, type KeyLocation } from '../../core/wire.ts'
import { readChunk } from '../../datapath/client/datanode-io.ts'
import { blockFile } from '../../datapath/datanode/index.ts'
import { flipByte, until } from '../helpers.ts'
import { adminRpc, adminTransport, omRpc, randomBytes, startMiniCluster } from './mini-cluster.ts'

const RS = 'EC/rs-3-2-64k'
const CELL = 64 * KiB
const SCHEME: EcScheme = parseReplication(RS).ec!

test('rs-3-2 on five datanodes with one corrupt replica: it is deleted to make room and its index rebuilt on the same datanode', async () => {
  const cluster = await startMiniCluster({
    datanodes: 5,
    overrides: { 'scm.safemode.minDatanodes': 5, 'scm.block.sizeBytes': 4 * CELL, 'scm.replication.intervalMs': 300, 'scm.replication.commandTimeoutMs': 30_000 },
  })
  try {
    const client = cluster.client()
    await client.createVolume('vol')
    await client.createBucket('vol', 'ecb', { replication: RS })
    const data = randomBytes(2 * 3 * CELL + CELL + 100, 11)
    const location: KeyLocation = (await client.putKey('vol', 'ecb', 'k', data)).locations[0]
    const id = location.blockId.containerId
    const bytesOf = async (node: { id: string; address: string }, index: number) => {
      const length = replicaLengthBytes(SCHEME, location.length, index)
      const r = await readChunk(node as never, location.blockId, 0, length, undefined, location.token, adminTransport(cluster))
      return Buffer.from(r.data.subarray(r.dataOffset, r.dataOffset + length))
    }
    const corrupt = { node: location.pipeline.nodes[1], index: 2 }
    const original = await bytesOf(corrupt.node, corrupt.index)
    const scm = adminRpc(cluster, 'SCM', cluster.scmAddress)
    const scmAsOm = await omRpc(cluster, 'SCM', cluster.scmAddress)
    const located = async () => (await scmAsOm.call<Record<string, ContainerLocation>>('getContainerLocations', { containerIds: [id] }))[id]
    await scm.call('closeContainer', { containerId: id })
    await until('five CLOSED replicas', async () => (await located()).replicas.filter((r) => r.state === 'CLOSED').length === 5, 30_000, 100)

    const i = cluster.datanodes.findIndex((d) => d?.id === corrupt.node.id)
    flipByte(blockFile(join(cluster.options.dataDir, `datanode-${i + 1}`), cluster.datanodes[i]!.clusterId, id, location.blockId.localId), 1000)
    const scan = await adminRpc(cluster, 'Datanode', corrupt.node.address).call<{ result: string }>('scanContainer', { containerId: id })
    assert.is(scan.result, 'UNHEALTHY')
    await until('the SCM to know it corrupt', async () => (await located()).replicas.find((x) => x.id === corrupt.node.id)?.state !== 'CLOSED', 30_000, 50)
    const rebuilt = await until('index 2 CLOSED again on the datanode that held the corrupt replica', async () => {
      const r = (await located()).replicas.find((x) => x.replicaIndex === corrupt.index && x.state === 'CLOSED')
      return r?.id === corrupt.node.id ? r : undefined
    }, 60_000, 100)
    assert.ok((await bytesOf(rebuilt, corrupt.index)).equals(original), 'the rebuilt replica holds index 2\'s bytes')
    const l = await located()
    assert.equal(l.replicas.map((r) => `${r.replicaIndex}:${r.state}`).sort(), ['1:CLOSED', '2:CLOSED', '3:CLOSED', '4:CLOSED', '5:CLOSED'])
    assert.ok((await client.getKey('vol', 'ecb', 'k')).equals(data))
  } finally {
    await cluster.dispose()
  }
})

test.run()
