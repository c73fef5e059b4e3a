/**
 * Goal: our LMDB environments store values as msgpack maps (LMDB_VALUE_ENCODING: no
 * per-value record definitions), read what earlier versions stored as msgpackr records, and
 * encode the same value to the same bytes in any environment (replicas compare a table's
 * bytes: control/ha/state-digest.ts). Method: real LMDB environments in a temp dir, one opened
 * as lmdb-js opens by default (records), the same files opened again with openMetadataDb.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open } from 'lmdb'
import { openMetadataDb } from '../../core/metadata-db.ts'

const dir = mkdtempSync(join(tmpdir(), 'o3-metadata-db-'))
const key = { volume: 'v', bucket: 'b', name: 'a/b/c', size: 4096, metadata: { etag: 'x' }, blocks: [{ blockId: { containerId: 1, localId: 2 }, length: 4096 }], checksums: new Uint8Array([1, 2, 3]) }

test.after(() => rmSync(dir, { recursive: true, force: true }))

test('values stored as records by earlier versions read back whole', async () => {
  const path = join(dir, 'old')
  const old = open({ path, compression: false })
  const table = old.openDB({ name: 'keys' })
  await table.put('k', key)
  // lmdb-js's default encoding writes msgpackr's record extension (0xd4 0x72 ...).
  assert.is(table.getBinary('k')![0], 0xd4, 'stored as a record')
  await old.close()
  const db = openMetadataDb(path, { 'db.sync': 0 })
  const read = db.openDB({ name: 'keys' }).get('k') as typeof key
  assert.equal({ ...read, checksums: [...read.checksums] }, { ...key, checksums: [...key.checksums] })
  await db.close()
})

test('values are maps, the same bytes in every environment', async () => {
  const bytes: Buffer[] = []
  for (const name of ['a', 'b']) {
    const db = openMetadataDb(join(dir, name), { 'db.sync': 0 })
    const table = db.openDB({ name: 'keys' })
    // Another shape first in one of them: records would number structures per environment.
    if (name === 'b') await table.put('other', { x: 1, y: [2] })
    await table.put('k', key)
    bytes.push(Buffer.from(table.getBinary('k')!))
    const first = bytes.at(-1)![0]
    assert.ok(first === 0xde || first === 0xdf || (first & 0xf0) === 0x80, `a msgpack map, not ${first.toString(16)}`)
    await db.close()
  }
  assert.ok(bytes[0].equals(bytes[1]))
})

test.run()
