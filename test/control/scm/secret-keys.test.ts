/**
 * Goal: the SCM's block-token secret keys as the group agrees on them (requests/secret-keys.ts):
 * the leader draws each key in prepare (32 random bytes, an id, its times), every replica
 * stores the same key from the payload, and a new key's creation drops the keys expired by
 * then; the current key is the newest unexpired one. Method: prepare then apply on a real
 * LMDB in a temporary directory, as the state machine runs them, with payloads edited to
 * place keys in time.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open, type RootDatabase } from 'lmdb'
import type { SecretKey } from '../../../core/security/secret-keys.ts'
import { currentSecretKey, liveSecretKeys, rotateSecretKey } from '../../../control/scm/requests/secret-keys.ts'
import { openScmTables, type ScmTables } from '../../../control/scm/tables.ts'
import { errorCode } from '../../helpers.ts'

const root = mkdtempSync(join(tmpdir(), 'o3-scm-secret-keys-'))
const db: RootDatabase = open({ path: join(root, 'state.mdb') })
const tables: ScmTables = openScmTables(db)
const request = rotateSecretKey(() => tables)
let index = 0
const apply = (p: SecretKey) => db.transactionSync(() => request.apply(db, JSON.parse(JSON.stringify(p)) as SecretKey, { index: ++index, term: 1 }))

test('prepare draws a fresh 32-byte key with its id and times; apply stores what the payload says', async () => {
  const a = await request.prepare({ expiryMs: 5000 }, db)
  const b = await request.prepare({ expiryMs: 5000 }, db)
  assert.is(Buffer.from(a.secret, 'base64').length, 32)
  assert.is.not(a.id, b.id)
  assert.is.not(a.secret, b.secret)
  assert.is(a.expiresAtMs - a.createdAtMs, 5000)
  apply(a)
  assert.equal(tables.secretKeys.get(a.id), a)
  assert.is(await errorCode(Promise.resolve().then(() => request.prepare({ expiryMs: 0 }, db))), 'INVALID_ARGUMENT')
})

test('a new key drops the keys expired at its creation; the current key is the newest unexpired one', async () => {
  for (const { key } of tables.secretKeys.getRange()) await tables.secretKeys.remove(key)
  const key = (id: string, createdAtMs: number, expiresAtMs: number): SecretKey => ({ id, createdAtMs, expiresAtMs, secret: Buffer.alloc(32, id.length).toString('base64') })
  apply(key('k1', 1000, 5000))
  apply(key('k2', 2000, 6000))
  apply(key('k3', 3000, 7000))
  assert.is(currentSecretKey(tables, 3500)?.id, 'k3')
  assert.equal(liveSecretKeys(tables, 5500).map((k) => k.id), ['k2', 'k3'], 'k1 expired by then')
  apply(key('k4', 6000, 10000))
  assert.equal([...tables.secretKeys.getRange()].map((e) => e.key).sort(), ['k3', 'k4'], 'k1 and k2 expired by k4\'s creation')
  assert.is(currentSecretKey(tables, 6500)?.id, 'k4')
  assert.is(currentSecretKey(tables, 10000), undefined, 'every key expired')
})

test.after(async () => {
  await db.close()
  rmSync(root, { recursive: true, force: true })
})

test.run()
