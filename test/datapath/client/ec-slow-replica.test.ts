/**
 * Goal: an EC read goes around a replica that has not begun to answer in
 * CLIENT_EC_READ_ANSWER_MS, yet one that is only slow is not lost for it: with another
 * replica of the group dead, the slow one is asked again with the whole RPC timeout and the
 * read succeeds (before, the read failed: too few cells).
 * Method: an EcGroupRead of an xor-2-1 group (parity = cell 1 XOR cell 2) over three node:http
 * servers on loopback speaking the chunk-read wire: replica 1 answers after longer than the
 * limit, replica 2 is gone (its port closed), replica 3 (the parity) answers at once.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { CLIENT_EC_READ_ANSWER_MS, KiB } from '../../../core/limits.ts'
import type { BlockId, DatanodeId, KeyLocation, PipelineId } from '../../../core/wire.ts'
import { EcGroupRead, StripeSlabs } from '../../../datapath/client/ec-read-group.ts'
import { FailedNodes } from '../../../datapath/client/failed-nodes.ts'
import { randomBytes } from '../../helpers.ts'

const CELL = 64 * KiB
const cells = [randomBytes(CELL, 1), randomBytes(CELL, 2)]
const parity = Buffer.alloc(CELL)
for (let i = 0; i < CELL; i++) parity[i] = cells[0]![i]! ^ cells[1]![i]!

const servers: Server[] = []
test.after(() => { for (const s of servers) { s.closeAllConnections(); s.close() } })

/** A datanode serving `replica`'s bytes after `delayMs`; counts the reads it got. */
async function datanode(replica: Buffer, delayMs: number): Promise<{ id: DatanodeId; address: string; reads: () => number }> {
  let reads = 0
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8').on('data', (d) => { body += d }).once('end', () => {
      reads++
      const { offset, length } = JSON.parse(body) as { offset: number; length: number }
      const meta = { dataOffset: offset, dataLength: length, checksumType: 'NONE', bytesPerChecksum: 16 * KiB, checksumsLength: 0 }
      setTimeout(() => {
        if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-o3-args': JSON.stringify(meta) }).end(replica.subarray(offset, offset + length))
      }, delayMs).unref()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  servers.push(server)
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`
  return { id: `dn-${address.split(':')[1]}` as DatanodeId, address, reads: () => reads }
}

test('a slow replica is read around after the limit, then asked again with the whole timeout when the group has too few others', async () => {
  const slow = await datanode(cells[0]!, CLIENT_EC_READ_ANSWER_MS + 1000)
  const gone = await datanode(cells[1]!, 0)
  servers.pop()!.close()
  const parityNode = await datanode(parity, 0)
  const location: KeyLocation = {
    blockId: { containerId: 1, localId: 1 } as BlockId, offset: 0, length: 2 * CELL,
    pipeline: { id: 'p-00000002' as PipelineId, replication: 'EC/xor-2-1-64k', state: 'OPEN', nodes: [slow, gone, parityNode].map(({ id, address }) => ({ id, address })), createdAtMs: 0 },
  }
  const failedNodes = new FailedNodes()
  const group = new EcGroupRead(location, undefined, new StripeSlabs('NONE', 16 * KiB, 4 * 1024 * KiB), undefined, failedNodes)
  // Cell 2 (replica 2, gone): rebuilt from replica 1 (slow) and the parity.
  const t0 = Date.now()
  const piece = await group.readPiece({ stripe: 0, replicaIndex: 2, replicaOffset: 0, groupOffset: CELL, length: CELL })
  const ms = Date.now() - t0
  assert.ok(Buffer.from(piece).equals(cells[1]!), 'cell 2 rebuilt right')
  assert.is(slow.reads(), 2, 'the slow replica: given up after the limit, then asked again')
  assert.ok(ms >= CLIENT_EC_READ_ANSWER_MS + 1000, `read in ${ms} ms: the second ask waited for the answer`)
  assert.not.ok(failedNodes.has(slow.address), 'it answered in the end: the client does not go around it')
})

test.run()
