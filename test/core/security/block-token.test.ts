/**
 * Tests: block tokens (core/security/block-token.ts) and SecretKeyCache. Goal: a token opens
 * only its block, in its modes, until it expires, and only if signed by a key the verifier
 * knows; a rotated (older) key still verifies until its own expiry. Method: sign and verify
 * with fixed keys and clocks; the cache with a counting fake fetch.
 */
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { randomBytes } from 'node:crypto'
import { readBlockToken, signBlockToken, verifyBlockToken, type BlockTokenClaims } from '../../../core/security/block-token.ts'
import { SecretKeyCache, type SecretKeysAnswer } from '../../../core/security/secret-keys.ts'
import { O3Error } from '../../../core/errors.ts'
import type { BlockId } from '../../../core/wire.ts'

const k1 = { id: 'k1', secret: randomBytes(32) }
const k2 = { id: 'k2', secret: randomBytes(32) }
const known = new Map([[k1.id, k1.secret], [k2.id, k2.secret]])
const secretOf = (id: string) => known.get(id)
const block = { containerId: 7, localId: 42 } as BlockId
const claims: BlockTokenClaims = { blockId: block, modes: ['read', 'write'], expiresAtMs: 10_000, owner: 'alice', keyId: 'k1' }

function refusal(run: () => unknown): string {
  try {
    run()
  } catch (err) {
    assert.instance(err, O3Error)
    assert.is((err as O3Error).code, 'BLOCK_TOKEN_VERIFICATION_FAILED')
    return (err as O3Error).message
  }
  assert.unreachable('verified')
  return ''
}

test('verifyBlockToken() accepts its block in its modes before expiry and returns the claims', () => {
  const t = signBlockToken(claims, k1)
  const c = verifyBlockToken(t, { blockId: block, mode: 'write', nowMs: 9_999, secretOf })
  assert.equal(c, claims)
  verifyBlockToken(t, { blockId: block, mode: 'read', nowMs: 0, secretOf })
  verifyBlockToken(t, { mode: 'write', nowMs: 0, secretOf })
  assert.equal(readBlockToken(t), claims)
})

test('verifyBlockToken() refuses another block, a mode not granted, and an expired token, saying which', () => {
  const t = signBlockToken(claims, k1)
  assert.match(refusal(() => verifyBlockToken(t, { blockId: { containerId: 7, localId: 43 } as BlockId, mode: 'read', nowMs: 0, secretOf })), 'is for block 7:42, not 7:43')
  assert.match(refusal(() => verifyBlockToken(t, { blockId: { containerId: 8, localId: 42 } as BlockId, mode: 'read', nowMs: 0, secretOf })), 'not 8:42')
  assert.match(refusal(() => verifyBlockToken(t, { blockId: block, mode: 'read', nowMs: 10_000, secretOf })), 'expired')
  const readOnly = signBlockToken({ ...claims, modes: ['read'] }, k1)
  assert.match(refusal(() => verifyBlockToken(readOnly, { blockId: block, mode: 'write', nowMs: 0, secretOf })), 'does not allow write')
})

test('verifyBlockToken() refuses a forged token: changed claims, another key, a made-up key id', () => {
  const t = signBlockToken(claims, k1)
  const [, sig] = t.split('.')
  const widened = Buffer.from(JSON.stringify({ ...claims, blockId: { containerId: 7, localId: 43 }, expiresAtMs: 1e12 })).toString('base64url')
  assert.match(refusal(() => verifyBlockToken(`${widened}.${sig}`, { blockId: { containerId: 7, localId: 43 } as BlockId, mode: 'read', nowMs: 0, secretOf })), 'forged')
  const wrongKey = signBlockToken({ ...claims, keyId: 'k2' }, { id: 'k2', secret: randomBytes(32) })
  assert.match(refusal(() => verifyBlockToken(wrongKey, { blockId: block, mode: 'read', nowMs: 0, secretOf })), 'forged')
  const unknown = signBlockToken({ ...claims, keyId: 'k9' }, { id: 'k9', secret: randomBytes(32) })
  assert.match(refusal(() => verifyBlockToken(unknown, { blockId: block, mode: 'read', nowMs: 0, secretOf })), 'does not know')
  assert.match(refusal(() => verifyBlockToken(`${t.split('.')[0]}.`, { blockId: block, mode: 'read', nowMs: 0, secretOf })), 'forged')
})

test('verifyBlockToken() refuses no token and malformed ones without throwing anything else', () => {
  for (const bad of [undefined, '', 'x', 'a.b.c', '.sig', `${Buffer.from('[]').toString('base64url')}.x`, `${Buffer.from('{"blockId":{"containerId":-1,"localId":1}}').toString('base64url')}.x`, 'é'.repeat(3000), 42]) {
    refusal(() => verifyBlockToken(bad, { blockId: block, mode: 'read', nowMs: 0, secretOf }))
  }
})

test('signBlockToken() refuses a key other than the one the claims name', () => {
  assert.throws(() => signBlockToken(claims, k2), (e: unknown) => e instanceof RangeError)
})

test('SecretKeyCache: a token of the rotated-out key still verifies; an unknown key id fetches once more', async () => {
  const now = Date.now()
  const key = (id: string, secret: Buffer, createdAtMs: number) => ({ id, secret: secret.toString('base64'), createdAtMs, expiresAtMs: createdAtMs + 60_000 })
  let answer: SecretKeysAnswer = { current: 'k1', keys: [key('k1', k1.secret, now)] }
  let fetches = 0
  const cache = new SecretKeyCache({ name: 'test', refreshMs: 3_600_000, fetch: async () => { fetches++; return answer } })
  await cache.start()
  const signing = await cache.current(now)
  assert.is(signing.id, 'k1')
  const old = signBlockToken({ ...claims, expiresAtMs: now + 1000 }, signing)
  // The SCM rotates: k2 is current, k1 stays until it expires.
  answer = { current: 'k2', keys: [key('k1', k1.secret, now), key('k2', k2.secret, now + 1)] }
  const fresh = signBlockToken({ ...claims, keyId: 'k2', expiresAtMs: now + 1000 }, k2)
  assert.is(cache.secretOf('k2'), undefined, 'not seen yet')
  await cache.learn('k2')
  assert.is(fetches, 2)
  verifyBlockToken(fresh, { blockId: block, mode: 'read', nowMs: now, secretOf: (id) => cache.secretOf(id) })
  verifyBlockToken(old, { blockId: block, mode: 'read', nowMs: now, secretOf: (id) => cache.secretOf(id) })
  assert.is((await cache.current(now)).id, 'k2')
  await cache.learn('k2')
  assert.is(fetches, 2, 'a known key fetches nothing')
  // Unknown ids in a burst: one fetch, after the gap.
  await Promise.all([cache.learn('x1'), cache.learn('x2'), cache.learn('x3')])
  assert.is(fetches, 3)
  cache.stop()
})

test('SecretKeyCache.current() is UNAVAILABLE while the SCM cannot be reached', async () => {
  const cache = new SecretKeyCache({ name: 'test', refreshMs: 3_600_000, fetch: async () => { throw new O3Error('UNAVAILABLE', 'no SCM') } })
  await cache.start()
  try {
    await cache.current(Date.now())
    assert.unreachable('signed')
  } catch (err) {
    assert.is((err as O3Error).code, 'UNAVAILABLE')
  }
  cache.stop()
})

test.run()
