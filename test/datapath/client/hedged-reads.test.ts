/**
 * Goal: a client's hedged reads are bounded (HDFS's hedged-read pool): with its HedgeBudget
 * spent, a read whose replica does not answer gives that read up for the next replica instead
 * of adding a second one, without waiting longer; every hedge is given back once its read
 * settles; without a budget every read hedges.
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

/** Requests to the frozen datanode its client closed (abandoned reads). */
let abandoned = 0

async function datanode(answers: boolean): Promise<{ id: DatanodeId; address: string }> {
  const server = createServer((req, res) => {
    req.resume()
    if (!answers) {
      res.once('close', () => { abandoned++ })
      return
    }
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

test('with one hedge to spend, one read hedges and the other switches to the next replica: neither waits longer', async () => {
  const hedges = new HedgeBudget(1)
  for (const ms of await twoReads(hedges)) {
    assert.ok(ms >= CLIENT_READ_HEDGE_MS - 20 && ms < 2 * CLIENT_READ_HEDGE_MS, `read in ${ms} ms: after one hedge time, not two`)
  }
  assert.is(hedges.used, 0, 'every hedge given back')
})

test('with no hedge to spend, a read gives its silent replica up for the next one', async () => {
  const hedges = new HedgeBudget(0)
  // The reads of the test before have closed theirs: let the server see it first.
  await new Promise((r) => setTimeout(r, 200))
  const before = abandoned
  const t0 = Date.now()
  assert.ok(Buffer.from(await readPiece(piece, new Set(), { hedges })).equals(bytes))
  const ms = Date.now() - t0
  assert.ok(ms >= CLIENT_READ_HEDGE_MS - 20 && ms < 2 * CLIENT_READ_HEDGE_MS, `read in ${ms} ms`)
  await new Promise((r) => setTimeout(r, 100))
  assert.is(abandoned - before, 1, 'the frozen replica\'s read was abandoned')
})

test('without a budget both reads hedge at once', async () => {
  const [a, b] = await twoReads()
  assert.ok(a >= CLIENT_READ_HEDGE_MS - 20 && b >= CLIENT_READ_HEDGE_MS - 20)
  assert.ok(Math.max(a, b) < 2 * CLIENT_READ_HEDGE_MS, `both within one hedge time of each other (${a}, ${b} ms)`)
})

test.run()
