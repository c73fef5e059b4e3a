import { LocalCluster } from './dist/cli/cluster.js'
import { randomFillSync } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
const c = new LocalCluster({ dataDir: mkdtempSync('/tmp/dbg-'), datanodes: 3, freePorts: true, overrides: { 'datanode.heartbeatIntervalMs': 250 } })
await c.start()
const client = c.client()
await client.createVolume('vol1'); await client.createBucket('vol1','one',{replication:'RATIS/ONE'})
const data = randomFillSync(Buffer.allocUnsafe(64 << 20))
for (let i = 0; i < 3; i++) {
  try { await client.putKey('vol1', 'one', 'big' + i, data); console.log('ok', i) } catch (e) { console.log('ERR', e.message) }
}
await c.stop()
