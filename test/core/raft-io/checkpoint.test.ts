/** Goal: a service's state database travels to a lagging follower as its Raft snapshot
 * (issue 11): a 200 MB LMDB checkpoint is served in checked ranges and fetched with memory
 * bounded by one range, and the installed copy holds every entry; a corrupted range, or a
 * checkpoint replaced meanwhile, fails with a typed error and leaves the target untouched.
 * Method: real LMDB in a temporary directory, the checkpoint app on a loopback port, and a
 * loopback proxy that flips a byte of one range. */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Hono } from 'hono'
import { open, type RootDatabase } from 'lmdb'
import { request } from 'undici'
import { serveApp, type Listener } from '../../../core/http/serve.ts'
import { CheckpointStore, checkpointApp, fetchCheckpoint } from '../../../core/raft-io/checkpoint.ts'
import { RAFT_CHECKPOINT_RANGE_BYTES } from '../../../core/raft-io/limits.ts'
import { errorCode } from '../../helpers.ts'

const root = mkdtempSync(join(tmpdir(), 'o3-checkpoint-'))
const VALUE_BYTES = 64 * 1024
const ENTRIES = 3200 // 200 MiB of values
let db: RootDatabase
let store: CheckpointStore
let server: Listener
let base = ''

/** A digest of every key and value, in key order. */
function digest(d: RootDatabase): { count: number; sha256: string } {
  const h = createHash('sha256')
  let count = 0
  for (const { key, value } of d.getRange()) {
    h.update(String(key))
    h.update(value as Uint8Array)
    count++
  }
  return { count, sha256: h.digest('hex') }
}

test.before(async () => {
  db = open({ path: join(root, 'state.mdb'), compression: false })
  for (let i = 0; i < ENTRIES; i += 100) {
    await db.transaction(() => {
      for (let k = i; k < i + 100; k++) db.put(`key-${String(k).padStart(6, '0')}`, randomBytes(VALUE_BYTES))
    })
  }
  store = new CheckpointStore(join(root, 'checkpoints'))
  server = await serveApp(checkpointApp(store), { host: '127.0.0.1', port: 0, name: 'checkpoint test' })
  base = `http://127.0.0.1:${server.port}`
})

test('a 200 MB state database is checkpointed, fetched range by range with bounded memory, and installs whole', async () => {
  const source = digest(db)
  const info = await store.create(db, { index: 41, term: 3 })
  assert.is(info.name, 'checkpoint-41-3.mdb')
  assert.ok(info.sizeBytes >= ENTRIES * VALUE_BYTES, `checkpoint of ${info.sizeBytes} bytes`)

  const target = join(root, 'follower.mdb')
  const before = process.memoryUsage()
  let peak = 0
  const sampler = setInterval(() => {
    const m = process.memoryUsage()
    peak = Math.max(peak, m.arrayBuffers + m.external - before.arrayBuffers - before.external)
  }, 5)
  const fetched = await fetchCheckpoint(base, info.name, target)
  clearInterval(sampler)
  assert.equal(fetched, info)
  // Buffering the whole checkpoint would take its 200 MB; ranges of 4 MiB stay far below, even
  // with the garbage of both ends (the server runs in this process) waiting for the GC.
  assert.ok(peak < info.sizeBytes / 2, `peak growth ${peak} bytes while fetching ${info.sizeBytes}`)
  assert.not.ok(existsSync(`${target}.partial`))

  const installed = open({ path: target, compression: false, readOnly: true })
  try {
    assert.equal(digest(installed), source)
  } finally {
    await installed.close()
  }
})

test('a range corrupted on the way fails with CHECKSUM_MISMATCH, and the old target stays as it was', async () => {
  const info = store.list()[0]
  // A proxy that flips one byte of the second range and keeps its CRC32C header.
  const proxy = new Hono()
  proxy.get('/raft/checkpoint/:name', async (c) => {
    const res = await request(`${base}${c.req.path}?${new URL(c.req.url).searchParams}`)
    const bytes = Buffer.from(await res.body.arrayBuffer())
    if (c.req.query('offset') === String(RAFT_CHECKPOINT_RANGE_BYTES)) bytes[17] ^= 0x40
    const headers: Record<string, string> = {}
    for (const h of ['x-o3-checkpoint-size', 'x-o3-crc32c', 'content-type']) headers[h] = String(res.headers[h])
    return c.body(bytes, res.statusCode as 200, headers)
  })
  const p = await serveApp(proxy, { host: '127.0.0.1', port: 0, name: 'corrupting proxy' })
  try {
    const target = join(root, 'old-target.mdb')
    writeFileSync(target, 'the follower state before the install')
    assert.is(await errorCode(fetchCheckpoint(`http://127.0.0.1:${p.port}`, info.name, target)), 'CHECKSUM_MISMATCH')
    assert.is(readFileSync(target, 'utf8'), 'the follower state before the install')
    assert.not.ok(existsSync(`${target}.partial`))
  } finally {
    await p.close()
  }
})

test('a node keeps its two newest checkpoints; fetching a replaced one fails with CHECKPOINT_NOT_FOUND', async () => {
  const small = open({ path: join(root, 'small.mdb'), compression: false })
  try {
    await small.put('a', 'b')
    const first = await store.create(small, { index: 50, term: 3 })
    await store.create(small, { index: 60, term: 4 })
    await store.create(small, { index: 70, term: 4 })
    assert.equal(store.list().map((c) => c.name), ['checkpoint-70-4.mdb', 'checkpoint-60-4.mdb'])
    const target = join(root, 'replaced.mdb')
    assert.is(await errorCode(fetchCheckpoint(base, first.name, target)), 'CHECKPOINT_NOT_FOUND')
    assert.not.ok(existsSync(target))
    assert.not.ok(existsSync(`${target}.partial`))
    const last = await fetchCheckpoint(base, 'checkpoint-70-4.mdb', target)
    const installed = open({ path: target, readOnly: true })
    try {
      assert.is(installed.get('a'), 'b')
      assert.is(last.index, 70)
    } finally {
      await installed.close()
    }
  } finally {
    await small.close()
  }
})

test('a checkpoint interrupted mid-copy is never served: the store removes it when it opens', () => {
  const dir = join(root, 'checkpoints')
  writeFileSync(join(dir, 'checkpoint-80-5.mdb.partial'), 'half a copy')
  const reopened = new CheckpointStore(dir)
  assert.not.ok(existsSync(join(dir, 'checkpoint-80-5.mdb.partial')))
  assert.is(reopened.list()[0].index, 70)
})

test.after(async () => {
  await server?.close()
  await db?.close()
  rmSync(root, { recursive: true, force: true })
})

test.run()
