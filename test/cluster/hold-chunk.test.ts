/**
 * Goal: a pipeline follower fetching the bytes of a chunk it missed asks the members at their
 * addresses of the moment, on every round of tries. After a restart with --ports free the
 * SCM's new addresses came while a fetch kept trying the old ones for 30 s, and the
 * follower's Raft node stopped (a tester, 1 restart in 3).
 * Method: a real in-process cluster of three datanodes; a key written RATIS/THREE; holdChunk
 * on a follower for the key's chunk, with members that first list only a closed port (a
 * member's old address) and then the leader's address (the SCM's update).
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { checksumsLengthBytes, computeChecksums, initChecksums } from '../../core/checksum.ts'
import { KiB } from '../../core/limits.ts'
import type { ContainerId, LocalId, PipelineId } from '../../core/wire.ts'
import { adminRpc, randomBytes, startMiniCluster } from './mini-cluster.ts'

const cluster = await startMiniCluster({ datanodes: 3 })
test.after(() => cluster.dispose())

test('holdChunk asks for the members again on every round of tries: a member\'s new address is reached', async () => {
  await initChecksums()
  const client = cluster.client()
  await client.createVolume('vhold')
  await client.createBucket('vhold', 'bhold', { replication: 'RATIS/THREE' })
  // Past datanode.smallBlockBytes: a chunk in the block file (a small block is packed in LMDB).
  const data = randomBytes(300 * KiB, 7)
  await client.putKey('vhold', 'bhold', 'k', data)
  const key = await client.headKey('vhold', 'bhold', 'k')
  const loc = key.locations[0]
  const pipelineId = loc.pipeline.id as PipelineId
  type Group = { pipelineId: string; leader: boolean }
  const roles = await Promise.all(cluster.datanodes.map(async (dn) => ((await adminRpc(cluster, 'Datanode', dn!.address).call<Group[]>('listPipelines', {})).find((g) => g.pipelineId === pipelineId))))
  const leader = roles.findIndex((g) => g?.leader === true)
  const follower = roles.findIndex((g, i) => g !== undefined && i !== leader)
  assert.ok(leader >= 0 && follower >= 0, JSON.stringify(roles))
  const checksums = new Uint8Array(checksumsLengthBytes(key.checksumType, data.length, key.bytesPerChecksum))
  computeChecksums(key.checksumType, data, key.bytesPerChecksum, checksums)
  const entry = {
    op: 'writeChunk' as const, containerId: loc.blockId.containerId as ContainerId, localId: loc.blockId.localId as LocalId, offset: 0, length: data.length,
    checksumType: key.checksumType, bytesPerChecksum: key.bytesPerChecksum, checksums, replication: 'RATIS/THREE', commit: false,
  }
  const asked: string[][] = []
  const from = () => {
    const now = asked.length === 0 ? ['127.0.0.1:1'] : [cluster.datanodes[leader]!.address]
    asked.push(now)
    return now
  }
  const t0 = Date.now()
  await cluster.datanodes[follower]!.holdChunk(pipelineId, entry, from)
  assert.equal(asked, [['127.0.0.1:1'], [cluster.datanodes[leader]!.address]], 'the old address once, then the new one')
  assert.ok(Date.now() - t0 < 5000, `held in ${Date.now() - t0} ms`)
  // The bytes it holds are the key's: the key reads back whole.
  assert.ok((await client.getKey('vhold', 'bhold', 'k')).equals(data))
})

test.run()
