/**
 * Goal: an EC key survives a datanode killed with kill -9 while it is being written (issue
 * 14), as Ozone's ECKeyOutputStream: the write completes; the group that was being written
 * ends at its last stored stripe (never in the middle of a stripe), the groups after it leave
 * the killed node out; the key reads back byte for byte (its first groups degraded, the
 * killed node's cells rebuilt); a key opened after the kill, whose preallocated groups may
 * still name the killed node, completes too.
 * Method: `o3 local --processes --datanodes 6 --ports free`, rs-3-2 with 256 KiB cells and
 * 1 MiB blocks (3 MiB groups), a stale interval longer than the test (the SCM still offers
 * the killed node: the writer must find out by itself), a native-client writer in this
 * process streaming 24 MiB in 64 KiB writes, SIGKILL by PID file once a few groups are
 * written. Each step is logged with its time; O3_TEST_KEEP=1 keeps a failed run's data dir.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { groupCapacityBytes, stripeDataBytes } from '../../core/ec-layout.ts'
import { KiB, MiB } from '../../core/limits.ts'
import type { OpenKeyResult } from '../../core/om-wire.ts'
import { parseReplication } from '../../core/wire.ts'
import { randomBytes, until } from '../helpers.ts'
import { PIPELINE_TEST_ENV, PipelineCluster, within } from './pipeline-cluster.ts'

const EC = 'EC/rs-3-2-256k'
const SCHEME = parseReplication(EC).ec!
const BLOCK = 1 * MiB
const ENV: NodeJS.ProcessEnv = { ...PIPELINE_TEST_ENV, O3_SCM_BLOCK_SIZEBYTES: String(BLOCK) }
const KEY_BYTES = 24 * MiB
const PIECE = 64 * KiB

test('kill -9 of a datanode mid-write of an EC key: the key commits, cut at a stripe, the later groups without it, and reads back', () => PipelineCluster.run('ec-write', async (c) => {
  const client = c.client
  const stripe = stripeDataBytes(SCHEME)
  const capacity = groupCapacityBytes(SCHEME, BLOCK)
  c.step('create /ecw/bkt with EC/rs-3-2-256k')
  await client.createVolume('ecw')
  await client.createBucket('ecw', 'bkt', { replication: EC })

  const data = randomBytes(KEY_BYTES, 14)
  c.step('open the key; its first group names the node to kill')
  const session = await client.om.call<OpenKeyResult>('openKey', { volume: 'ecw', bucket: 'bkt', key: 'big', sizeBytes: data.length })
  assert.ok(session.blocks.length > 0, 'the OM preallocates block groups')
  const pipeline = session.blocks[0]!.pipeline
  assert.is(pipeline.nodes.length, 5)
  const victim = c.dn(pipeline.nodes[0]!.id)
  const writer = await client.keyWriterFor(session)
  let killed = false
  const writing = (async () => {
    for (let at = 0; at < data.length; at += PIECE) {
      await writer.write(data.subarray(at, at + PIECE))
      // A few groups in, with the writer in full flow: the node goes away under it.
      if (!killed && at >= 2 * capacity + stripe / 2) { c.kill(victim); killed = true }
    }
    return writer.close()
  })()
  const info = await within('the EC write after kill -9', 120_000, writing)
  assert.ok(killed, 'the node was killed mid-write')
  c.step(`committed: ${info.locations.map((l) => `${l.length}@${l.pipeline.nodes.some((n) => n.id === victim.id) ? 'with' : 'without'}`).join(' ')}`)
  assert.is(info.size, data.length)
  let offset = 0
  for (const [g, loc] of info.locations.entries()) {
    assert.is(loc.offset, offset, `group ${g} offset`)
    assert.ok(loc.length <= capacity, `group ${g} within capacity`)
    if (g < info.locations.length - 1) assert.is(loc.length % stripe, 0, `group ${g} ends at a stripe boundary`)
    offset += loc.length
  }
  const withVictim = info.locations.map((l) => l.pipeline.nodes.some((n) => n.id === victim.id))
  const last = withVictim.lastIndexOf(true)
  assert.ok(last >= 1, 'the first groups were on the killed node\'s pipeline')
  assert.ok(last < info.locations.length - 1, 'groups after the kill exist')
  assert.ok(withVictim.slice(last + 1).every((w) => !w), 'no group after the kill on the killed node')

  c.step('read the key back (its first groups without the killed node\'s cells)')
  assert.ok((await client.getKey('ecw', 'bkt', 'big')).equals(data), 'the key reads back')

  c.step('a key opened after the kill (the SCM still offers the killed node) completes too')
  const second = randomBytes(4 * capacity + 1234, 15)
  const info2 = await within('the second EC write', 120_000, client.putKey('ecw', 'bkt', 'after', second))
  assert.is(info2.size, second.length)
  assert.ok((await client.getKey('ecw', 'bkt', 'after')).equals(second), 'the second key reads back')
  await until('no slab held', () => client.slabs.inUse === 0, 5_000)
}, { datanodes: 6, env: ENV }))

test.run()
