/**
 * Goal: a client's hedged reads are bounded: with its HedgeBudget spent, a read whose replica
 * does not answer waits another hedge time before asking the next replica (HDFS's hedged-read
 * pool), and every hedge is given back once its read settles; without a budget every read
 * hedges at once.
 * Method: readPiece over two datanodes on loopback, node:http servers speaking the chunk-read
 * wire: the first never answers (a frozen datanode), the second answers at once.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { CLIENT_READ_HEDGE_MS } from '../../../core/limits.ts'
import type { BlockId, DatanodeId, KeyLocation, PipelineId } from '../../../core/wire.ts'
import { HedgeBudget, readPiece, type Piece } from '../../../datapath/client/key-reader.ts'

const servers: Server[] = []
test.after(() => { for (const s of servers) { s.closeAllConnections(); s.close() } })

const LENGTH = 4096
const bytes = Buffer.alloc(LENGTH, 0x5a)

async function datanode(answers: boolean): Promise<{ id: DatanodeId; address: string }> {
  const server = createServer((req, res) => {
    req.resume()
    if (!answers) return
    req.once('end', () => {
      const meta = { dataOffset: 0, dataLength: LENGTH, checksumType: 'NONE', bytesPerChecksum: 1024, checksumsLength: 0 }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-o3-args': JSON.stringify(meta) }).end(bytes)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  servers.push(server)
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`
  return { id: `dn-${address.split(':')[1]}` as DatanodeId, address }
}

const frozen = await datanode(false)
const live = await datanode(true)
const location: KeyLocation = {
  blockId: { containerId: 1, localId: 1 } as BlockId, offset: 0, length: LENGTH,
  pipeline: { id: 'p-00000001' as PipelineId, replication: 'RATIS/TWO', state: 'OPEN', nodes: [frozen, live], createdAtMs: 0 },
}
const piece: Piece = { location, blockOffset: 0, length: LENGTH }

/** Two reads at once; how long each took. */
async function twoReads(hedges?: HedgeBudget): Promise<number[]> {
  const t0 = Date.now()
  return Promise.all([0, 1].map(async () => {
    const data = await readPiece(piece, new Set(), { hedges })
    assert.ok(Buffer.from(data).equals(bytes))
    return Date.now() - t0
  }))
}

test('with one hedge to spend, the second read waits for it: one more hedge time', async () => {
  const hedges = new HedgeBudget(1)
  const [a, b] = (await twoReads(hedges)).sort((x, y) => x - y)
  assert.ok(a >= CLIENT_READ_HEDGE_MS - 20, `first read in ${a} ms: it hedged after the hedge time`)
  assert.ok(b >= 2 * CLIENT_READ_HEDGE_MS - 20, `second read in ${b} ms: it hedged only once the first hedge was given back`)
  assert.is(hedges.used, 0, 'every hedge given back')
})

test('without a budget both reads hedge at once', async () => {
  const [a, b] = await twoReads()
  assert.ok(a >= CLIENT_READ_HEDGE_MS - 20 && b >= CLIENT_READ_HEDGE_MS - 20)
  assert.ok(Math.max(a, b) < 2 * CLIENT_READ_HEDGE_MS, `both within one hedge time of each other (${a}, ${b} ms)`)
})

test.run()
