/**
 * Goal: an SCM restarted while one of its datanodes is decommissioning leaves safemode once
 * scm.safemode.minDatanodes datanodes have registered, the decommissioning one among them
 * (found by a probe: it counted only IN_SERVICE nodes, so a restarted SCM with 3 datanodes, one
 * decommissioning, stayed in safemode and replicated nothing).
 * Method: a real SCM on loopback (LMDB in a temp dir) and scripted datanodes
 * (scripted-datanode.ts) that register and heartbeat over the real RPC; the SCM stopped and
 * started again on the same directory, the datanodes registering again with the same ids.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../../core/config.ts'
import { RpcClient } from '../../../core/rpc/client.ts'
import type { DatanodeId } from '../../../core/wire.ts'
import { StorageContainerManager } from '../../../control/scm/index.ts'
import { until } from '../../helpers.ts'
import { ScriptedDatanode } from './scripted-datanode.ts'

const dir = mkdtempSync(join(tmpdir(), 'o3-scm-safemode-'))
const config = loadConfig({ env: {}, overrides: { 'scm.dir': join(dir, 'scm'), 'scm.safemode.minDatanodes': 3, 'datanode.heartbeatIntervalMs': 200 } })

test.after(() => rmSync(dir, { recursive: true, force: true }))

async function run(ids: (DatanodeId | undefined)[], body: (rpc: RpcClient, nodes: ScriptedDatanode[]) => Promise<void>): Promise<void> {
  const scm = new StorageContainerManager({ config, port: 0, healthCheckIntervalMs: 100 })
  await scm.start()
  const nodes: ScriptedDatanode[] = []
  try {
    for (const id of ids) {
      const n = new ScriptedDatanode(scm.address, { heartbeatMs: 200, id })
      nodes.push(n)
      await n.start()
    }
    await body(new RpcClient('SCM', scm.address), nodes)
  } finally {
    for (const n of nodes) await n.stop()
    await scm.stop()
  }
}

const status = (rpc: RpcClient) => rpc.call<{ inSafeMode: boolean; healthyDatanodes: number }>('safemodeStatus', {})

test('an SCM restarted with one of its three datanodes decommissioning leaves safemode when the three register', async () => {
  let ids: DatanodeId[] = []
  await run([undefined, undefined, undefined], async (rpc, nodes) => {
    await until('out of safemode', async () => !(await status(rpc)).inSafeMode, 10_000)
    ids = nodes.map((n) => n.id)
    await rpc.call('datanodeAdmin', { action: 'decommission', datanodes: [ids[0]] })
  })
  await run(ids, async (rpc) => {
    const s = await until('out of safemode after the restart', async () => { const x = await status(rpc); return !x.inSafeMode && x }, 10_000)
    assert.is(s.healthyDatanodes, 3, 'the decommissioning datanode counts')
    const node = (await rpc.call<{ id: string; operationalState: string }[]>('listDatanodes', {})).find((d) => d.id === ids[0])
    // DECOMMISSIONING, or DECOMMISSIONED already (it holds no replica): not IN_SERVICE either way.
    assert.ok(node !== undefined && node.operationalState !== 'IN_SERVICE', `its state after the restart: ${node?.operationalState}`)
  })
})

test.run()
